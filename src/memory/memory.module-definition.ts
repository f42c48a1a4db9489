import { ConfigurableModuleBuilder, Inject } from '@nestjs/common';
import { IMPORTS_EXTRA, type MemoryDeliveryOptions, withImports } from '../config';
import type { MemoryStore } from './memory-store';
import type { Neo4jConnectionOptions } from './neo4j-memory-store';

/**
 * What `MemoryModule.forRoot(Async)` is given, besides the modules it imports (`DatabaseModule` for the outbox and
 * the embedded store, `CanvasModule` for a resumed batch's concepts). Defaults: `OPTION_DEFAULTS`.
 */
export interface MemoryModuleOptions {
  /** The host's own learning-memory store; takes precedence over `neo4j`. */
  memoryStore?: MemoryStore;
  /** Deliver learning-memory events to this Neo4j. Default: the embedded store (SQLite). */
  neo4j?: Neo4jConnectionOptions;
  /** Tuning of the drain loop (outbox → store), member by member over `OPTION_DEFAULTS.memoryDelivery`. */
  memoryDelivery?: MemoryDeliveryOptions;
  /** Characters of a node's content read for its concept (a resumed batch's events). Default 262,144. */
  maxInputChars?: number;
  /** The distributed engine: the outbox in this Redis, shared by every process. Default: SQLite under `dataDir`. */
  redis?: { url: string; prefix: string; instanceId: string };
}

export const { ConfigurableModuleClass: MemoryConfigurableModule, MODULE_OPTIONS_TOKEN: MEMORY_OPTIONS } =
  new ConfigurableModuleBuilder<MemoryModuleOptions>({ moduleName: 'Memory' })
    .setClassMethodName('forRoot')
    .setExtras(IMPORTS_EXTRA, withImports)
    .build();

/** Injects the `MemoryModuleOptions` into a provider of `MemoryModule`. */
export const InjectMemoryOptions = (): ParameterDecorator => Inject(MEMORY_OPTIONS);
