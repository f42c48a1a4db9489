// The public surface of config/ (environment, module options, data directory, start-up errors). config/ is the
// bottom of the folder graph: it imports no other folder at run time (its options name the agent and memory ports
// by type only; see src/architecture.spec.ts).
export {
  CANVAS_BATCH_ASYNC_OPTIONS_TYPE,
  CANVAS_BATCH_OPTIONS,
  CANVAS_BATCH_OPTIONS_TYPE,
  CanvasBatchConfigurableModule,
  DEFAULT_MAX_INPUT_CHARS,
  DEFAULT_MAX_RESULT_BYTES,
  InjectCanvasBatchOptions,
  RESOLVED_OPTIONS,
  resolveOptions,
  type CanvasBatchOptions,
  type MemoryDeliveryOptions,
  type ResolvedCanvasBatchOptions,
} from './canvas-batch-options';
export { ConfigValidationError, isLoopbackHost, loadAppConfig, type AppConfig } from './app.config';
export { costOf, type LlmSettings, type RetrySettings, type TokenPrices } from './llm-settings';
export {
  checkAccess,
  DataDirNotWritableError,
  ensureDataDir,
  processUser,
  type AccessCheck,
} from './data-dir';
export { resolveVaultRoot } from './example-vault';
export { listenFailure, StartupError } from './startup-error';
