import { Module } from '@nestjs/common';
import { resolveMemoryDelivery } from '../config';
import { SqliteDatabase } from '../database';
import { EmbeddedMemoryStore } from './embedded-memory-store';
import { MemoryDeliveryService } from './memory-delivery.service';
import { MemoryOutbox } from './memory-outbox';
import {
  MEMORY_OPTIONS,
  MemoryConfigurableModule,
  type MemoryModuleOptions,
} from './memory.module-definition';
import { MemoryRecallService } from './memory-recall';
import { MemoryResumeListener } from './memory-resume.listener';
import { MemoryStatusController } from './memory-status.controller';
import { MemoryStore } from './memory-store';
import { MemoryListener } from './memory.listener';
import { Neo4jMemoryStore } from './neo4j-memory-store';
import { SqliteMemoryOutbox } from './sqlite-memory-outbox';
import { DEFAULT_CLAIM_IDLE_MS, RedisMemoryOutbox } from './redis-memory-outbox';
import { connectRedis, RedisKeys } from '../redis';

/** The host's store, else Neo4j when configured, else the embedded one. */
export function createMemoryStore(options: MemoryModuleOptions, db: SqliteDatabase): MemoryStore {
  if (options.memoryStore) return options.memoryStore;
  if (options.neo4j)
    return new Neo4jMemoryStore(
      options.neo4j,
      resolveMemoryDelivery(options.memoryDelivery).attemptTimeoutMs,
    );
  return new EmbeddedMemoryStore(db);
}

/** The outbox in Redis (the distributed engine: every process drains it through one consumer group), else SQLite. */
export function createMemoryOutbox(options: MemoryModuleOptions, db: SqliteDatabase): MemoryOutbox {
  if (!options.redis) return new SqliteMemoryOutbox(db);
  const delivery = resolveMemoryDelivery(options.memoryDelivery);
  return new RedisMemoryOutbox(
    connectRedis(options.redis.url, `${options.redis.instanceId}:memory-outbox`),
    new RedisKeys(options.redis.prefix),
    {
      // a restarted process takes its own unfinished batch back at once; a dead one's waits out the claim time
      consumer: options.redis.instanceId,
      claimIdleMs: Math.max(DEFAULT_CLAIM_IDLE_MS, 2 * delivery.attemptTimeoutMs),
      quitOnShutdown: true,
    },
  );
}

/**
 * Learning memory: the detached `agent.completed` / `batch.started` listener that appends to the durable outbox
 * (the `MemoryOutbox` port, SQLite adapter), the detached `batch.resumed` listener that hands a resumed batch's
 * completed nodes to it again (their concepts read through the canvas module), the `MemoryStore` port (Neo4j or
 * embedded; the Neo4j driver is created here and closed on shutdown), the drain loop that delivers the outbox,
 * `GET /memory/status`, and the read side of one task's memory (`MemoryRecallService`). Import it with `forRoot({ ...options, imports: [database, canvas] })` (or `forRootAsync`),
 * `database` and `canvas` being the application's configured `DatabaseModule` and `CanvasModule`.
 */
@Module({
  controllers: [MemoryStatusController],
  providers: [
    { provide: MemoryOutbox, inject: [MEMORY_OPTIONS, SqliteDatabase], useFactory: createMemoryOutbox },
    { provide: MemoryStore, inject: [MEMORY_OPTIONS, SqliteDatabase], useFactory: createMemoryStore },
    MemoryDeliveryService,
    MemoryListener,
    MemoryResumeListener,
    MemoryRecallService,
  ],
  exports: [MemoryOutbox, MemoryStore, MemoryDeliveryService, MemoryRecallService],
})
export class MemoryModule extends MemoryConfigurableModule {}
