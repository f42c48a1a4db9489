export { MemoryModule, createMemoryStore } from './memory.module';
export {
  MemoryOutboxRepository,
  type MemoryEvent,
  type MemoryEventDraft,
  type MemoryOutboxStats,
} from './memory-outbox.repository';
export { MemoryStore, type DeliveryReceipt } from './memory-store';
export { Neo4jMemoryStore, type Neo4jConnectionOptions } from './neo4j-memory-store';
export { EmbeddedMemoryStore, type StoredMemoryEvent } from './embedded-memory-store';
export {
  MemoryDeliveryService,
  type MemoryDeliveryStatus,
  type MemoryDeliveryState,
} from './memory-delivery.service';
