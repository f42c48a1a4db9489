import { ConfigurableModuleBuilder, Inject } from '@nestjs/common';
import { IMPORTS_EXTRA, withImports } from '../config';

/** What `SessionModule.forRoot(Async)` is given, besides the `DatabaseModule` it imports. */
export interface SessionModuleOptions {
  /** How often the cleanup loop looks for expired tasks. Default: `OPTION_DEFAULTS.cleanupIntervalMs` (60 s). */
  cleanupIntervalMs?: number;
  /** The distributed engine: tasks and event logs in this Redis, shared by every process. Default: SQLite. */
  redis?: { url: string; prefix: string; instanceId: string };
}

export const { ConfigurableModuleClass: SessionConfigurableModule, MODULE_OPTIONS_TOKEN: SESSION_OPTIONS } =
  new ConfigurableModuleBuilder<SessionModuleOptions>({ moduleName: 'Session' })
    .setClassMethodName('forRoot')
    .setExtras(IMPORTS_EXTRA, withImports)
    .build();

/** Injects the `SessionModuleOptions` into a provider of `SessionModule`. */
export const InjectSessionOptions = (): ParameterDecorator => Inject(SESSION_OPTIONS);
