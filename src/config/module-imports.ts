import type { DynamicModule, ModuleMetadata } from '@nestjs/common';

/** The modules a feature module is given to import (e.g. the one `DatabaseModule.forRoot(...)` it shares). */
export type ModuleImports = NonNullable<ModuleMetadata['imports']>;

/**
 * The `imports` extra of a `ConfigurableModuleBuilder`: `forRoot({ ...options, imports: [database] })` (and
 * `forRootAsync({ imports, ... })`, whose own `imports` already serve its factory) adds those modules to the feature
 * module's imports, so it reaches a provider of another configured module without anything being global. Use as
 * `.setExtras(IMPORTS_EXTRA, withImports)`.
 */
export const IMPORTS_EXTRA: { imports: ModuleImports } = { imports: [] };

export function withImports(definition: DynamicModule, extras: { imports: ModuleImports }): DynamicModule {
  return { ...definition, imports: [...new Set([...(definition.imports ?? []), ...extras.imports])] };
}
