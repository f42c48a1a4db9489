import { Module } from '@nestjs/common';
import { RESOLVED_OPTIONS, type ResolvedCanvasBatchOptions } from '../config';
import { DatabaseModule, SqliteDatabase } from '../database';
import { EmbeddedMemoryStore } from './embedded-memory-store';
import { MemoryDeliveryService } from './memory-delivery.service';
import { MemoryOutboxRepository } from './memory-outbox.repository';
import { MemoryStatusController } from './memory-status.controller';
import { MemoryStore } from './memory-store';
import { MemoryListener } from './memory.listener';
import { Neo4jMemoryStore } from './neo4j-memory-store';

/** The host's store, else Neo4j when configured, else the embedded one. */
export function createMemoryStore(options: ResolvedCanvasBatchOptions, db: SqliteDatabase): MemoryStore {
  if (options.memoryStore) return options.memoryStore;
  if (options.neo4j) return new Neo4jMemoryStore(options.neo4j, options.memoryDelivery.attemptTimeoutMs);
  return new EmbeddedMemoryStore(db);
}

/**
 * Learning memory: the detached `agent.completed` / `batch.started` listener that appends to the durable outbox,
 * the `MemoryStore` port (Neo4j or embedded; the Neo4j driver is created here and closed on shutdown), the drain
 * loop that delivers the outbox, and `GET /memory/status`.
 */
@Module({
  imports: [DatabaseModule],
  controllers: [MemoryStatusController],
  providers: [
    MemoryOutboxRepository,
    { provide: MemoryStore, inject: [RESOLVED_OPTIONS, SqliteDatabase], useFactory: createMemoryStore },
    MemoryDeliveryService,
    MemoryListener,
  ],
  exports: [MemoryOutboxRepository, MemoryStore, MemoryDeliveryService],
})
export class MemoryModule {}
