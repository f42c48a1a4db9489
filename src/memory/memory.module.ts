import { Module } from '@nestjs/common';
import { DatabaseModule } from '../database/database.module';
import { MemoryOutboxRepository } from './memory-outbox.repository';
import { MemoryListener } from './memory.listener';

/** Learning memory: the detached `agent.completed` listener and the durable outbox it writes to. */
@Module({
  imports: [DatabaseModule],
  providers: [MemoryOutboxRepository, MemoryListener],
  exports: [MemoryOutboxRepository],
})
export class MemoryModule {}
