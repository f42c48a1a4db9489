import { ConfigurableModuleBuilder, Inject } from '@nestjs/common';

/** What `DatabaseModule.forRoot(Async)` is given. */
export interface DatabaseModuleOptions {
  /** Folder of the embedded SQLite database (`canvas-batch.sqlite`); created when missing. */
  dataDir: string;
}

export const { ConfigurableModuleClass: DatabaseConfigurableModule, MODULE_OPTIONS_TOKEN: DATABASE_OPTIONS } =
  new ConfigurableModuleBuilder<DatabaseModuleOptions>({ moduleName: 'Database' })
    .setClassMethodName('forRoot')
    .build();

/** Injects the `DatabaseModuleOptions` into a provider of `DatabaseModule`. */
export const InjectDatabaseOptions = (): ParameterDecorator => Inject(DATABASE_OPTIONS);
