export { MemoryModule, createMemoryStore } from './memory.module';
export { MEMORY_OPTIONS, type MemoryModuleOptions } from './memory.module-definition';
export {
  MemoryOutbox,
  type MemoryEvent,
  type MemoryEventDraft,
  type MemoryOutboxStats,
} from './memory-outbox';
export { SqliteMemoryOutbox } from './sqlite-memory-outbox';
export { InMemoryMemoryOutbox } from './in-memory-memory-outbox';
export {
  RedisMemoryOutbox,
  type RedisMemoryOutboxOptions,
  DEFAULT_CLAIM_IDLE_MS,
} from './redis-memory-outbox';
export {
  MemoryStore,
  type DeliveryReceipt,
  type RecallQuery,
  type RecalledMemoryEvent,
} from './memory-store';
export {
  MemoryRecallService,
  MemoryUnavailableError,
  taskMemoryView,
  DEFAULT_CONCEPTS_LIMIT,
  MAX_CONCEPTS_LIMIT,
  type TaskMemoryView,
  type TaskMemoryConceptView,
  type TaskMemoryEventView,
  type MemoryDeliveryOfEvent,
  type StoreReadOutcome,
} from './memory-recall';
export { Neo4jMemoryStore, type Neo4jConnectionOptions } from './neo4j-memory-store';
export { EmbeddedMemoryStore, type StoredMemoryEvent } from './embedded-memory-store';
export {
  MemoryDeliveryService,
  type MemoryDeliveryStatus,
  type MemoryDeliveryState,
} from './memory-delivery.service';
