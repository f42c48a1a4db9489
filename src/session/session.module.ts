import { Module } from '@nestjs/common';
import { EventLog } from './event-log';
import { TaskCleanupService } from './task-cleanup.service';
import { SqliteEventLog } from './sqlite-event-log';
import { SessionConfigurableModule } from './session.module-definition';
import { SqliteTaskStore } from './sqlite-task-store';
import { TaskStore } from './task-store';

/**
 * Task lifecycle and storage: the `TaskStore` port (SQLite adapter) and the cleanup loop. Import it with
 * `forRoot({ cleanupIntervalMs, imports: [database] })` (or `forRootAsync`), `database` being the application's one
 * `DatabaseModule.forRoot(...)`.
 */
@Module({
  providers: [
    { provide: TaskStore, useClass: SqliteTaskStore },
    { provide: EventLog, useClass: SqliteEventLog },
    TaskCleanupService,
  ],
  exports: [TaskStore, EventLog],
})
export class SessionModule extends SessionConfigurableModule {}
