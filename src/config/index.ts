// The public surface of config/ (environment, the plain settings and their one table of defaults, data directory,
// start-up errors). config/ is the bottom of the folder graph: it imports no other folder, not even for types (the
// options that carry a host's own objects, `CanvasBatchOptions`, live in orchestrator/; see src/architecture.spec.ts).
export {
  DEFAULT_MAX_INPUT_CHARS,
  DEFAULT_MAX_RESULT_BYTES,
  InjectCanvasBatchOptions,
  OPTION_DEFAULTS,
  RESOLVED_OPTIONS,
  resolveMemoryDelivery,
  resolveOptions,
  resolveRedisEngine,
  REDIS_DEFAULTS,
  type CanvasBatchSettings,
  type ProcessRole,
  type RedisEngineSettings,
  type ResolvedRedisEngine,
  type MemoryDeliveryOptions,
  type ResolvedCanvasBatchOptions,
} from './canvas-batch-options';
export { IMPORTS_EXTRA, withImports, type ModuleImports } from './module-imports';
export { ConfigValidationError, isLoopbackHost, loadAppConfig, type AppConfig } from './app.config';
export {
  costOf,
  DEFAULT_LOCAL_SEQUENCES,
  ggufProblem,
  type LlmSettings,
  type LocalGpu,
  type LocalModelSettings,
  type RetrySettings,
  type TokenPrices,
} from './llm-settings';
export {
  checkAccess,
  DataDirNotWritableError,
  ensureDataDir,
  processUser,
  type AccessCheck,
} from './data-dir';
export { resolveVaultRoot } from './example-vault';
export { listenFailure, StartupError } from './startup-error';
