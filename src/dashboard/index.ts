export { DashboardModule } from './dashboard.module';
export type { CanvasNodesDto } from './vault-browser.dto';
export { authenticate, cookies, corsOptions, mountDashboard, securityHeaders } from './web';
