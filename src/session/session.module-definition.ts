import { ConfigurableModuleBuilder, Inject } from '@nestjs/common';
import { IMPORTS_EXTRA, OPTION_DEFAULTS, withImports } from '../config';
import type { ResultCacheLimits } from './result-cache';

/** What `SessionModule.forRoot(Async)` is given, besides the `DatabaseModule` it imports. */
export interface SessionModuleOptions {
  /** How often the cleanup loop looks for expired tasks. Default: `OPTION_DEFAULTS.cleanupIntervalMs` (60 s). */
  cleanupIntervalMs?: number;
  /** The distributed engine: tasks and event logs in this Redis, shared by every process. Default: SQLite. */
  redis?: { url: string; prefix: string; instanceId: string };
  /** The result cache's bounds. Default: `RESULT_CACHE_DEFAULTS`. */
  resultCacheLimits?: ResultCacheLimits;
}

/** The result cache's bounds when none are given: `OPTION_DEFAULTS`' (10,000 entries, 30 days). */
export const RESULT_CACHE_DEFAULTS: ResultCacheLimits = {
  maxEntries: OPTION_DEFAULTS.resultCacheMaxEntries,
  ttlMs: OPTION_DEFAULTS.resultCacheTtlHours * 3_600_000,
};

export const { ConfigurableModuleClass: SessionConfigurableModule, MODULE_OPTIONS_TOKEN: SESSION_OPTIONS } =
  new ConfigurableModuleBuilder<SessionModuleOptions>({ moduleName: 'Session' })
    .setClassMethodName('forRoot')
    .setExtras(IMPORTS_EXTRA, withImports)
    .build();

/** Injects the `SessionModuleOptions` into a provider of `SessionModule`. */
export const InjectSessionOptions = (): ParameterDecorator => Inject(SESSION_OPTIONS);
