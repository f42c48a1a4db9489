import { type DynamicModule, Module } from '@nestjs/common';
import { VaultBrowserController } from './vault-browser.controller';

/**
 * The dashboard's read-only API (canvases, their nodes, result files). The page and its static files are mounted on
 * Express by `mountDashboard`, behind the HTTP edge (`configureHttpEdge`). Import it with `register(vault)`, `vault`
 * being a configured module that exports `VaultService`: `CanvasModule.forRoot(...)`, or the application's
 * `OrchestratorModule.forRoot(...)` that re-exports it.
 */
@Module({ controllers: [VaultBrowserController] })
export class DashboardModule {
  static register(vault: DynamicModule): DynamicModule {
    return { module: DashboardModule, imports: [vault] };
  }
}
