import { Module } from '@nestjs/common';
import { DatabaseModule } from '../database';
import { SessionCleanupService } from './session-cleanup.service';
import { SqliteTaskStore } from './sqlite-task-store';
import { TaskStore } from './task-store';

/** Task lifecycle and storage: the `TaskStore` port (SQLite adapter) and the cleanup loop. */
@Module({
  imports: [DatabaseModule],
  providers: [{ provide: TaskStore, useClass: SqliteTaskStore }, SessionCleanupService],
  exports: [TaskStore],
})
export class SessionModule {}
