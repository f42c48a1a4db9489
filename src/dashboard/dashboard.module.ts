import { Module } from '@nestjs/common';
import { CanvasModule } from '../canvas';
import { VaultBrowserController } from './vault-browser.controller';

/**
 * The dashboard's read-only API (canvases, their nodes, result files). The page and its static files are mounted on
 * Express by `mountDashboard` in `configureApp`.
 */
@Module({ imports: [CanvasModule], controllers: [VaultBrowserController] })
export class DashboardModule {}
