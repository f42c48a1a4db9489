export { DashboardModule } from './dashboard.module';
export type { CanvasNodesDto } from './vault-browser.dto';
export { mountDashboard } from './web';
