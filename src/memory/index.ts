export { MemoryModule } from './memory.module';
export { MemoryOutboxRepository, type MemoryEvent, type MemoryOutboxStats } from './memory-outbox.repository';
