import { ConfigurableModuleBuilder, Inject } from '@nestjs/common';

/** What `CanvasModule.forRoot(Async)` is given. */
export interface CanvasModuleOptions {
  /** Absolute path of the Obsidian vault. Every canvas path is relative to it and confined to it. */
  vaultRoot: string;
}

export const { ConfigurableModuleClass: CanvasConfigurableModule, MODULE_OPTIONS_TOKEN: CANVAS_OPTIONS } =
  new ConfigurableModuleBuilder<CanvasModuleOptions>({ moduleName: 'Canvas' })
    .setClassMethodName('forRoot')
    .build();

/** Injects the `CanvasModuleOptions` into a provider of `CanvasModule`. */
export const InjectCanvasOptions = (): ParameterDecorator => Inject(CANVAS_OPTIONS);
