import { type DynamicModule, Module } from '@nestjs/common';
import { PlanningController } from './planning.controller';
import { PlannerService } from './planner.service';

/**
 * `POST /parallel/plan`: suggested groups for a batch. Import it with `register(orchestrator)`, `orchestrator` being
 * the application's `OrchestratorModule.forRoot(...)`, which exports what it reads with: `VaultService`,
 * `CanvasService`, `AgentRouter` and `GeneratedNodes`.
 */
@Module({ controllers: [PlanningController], providers: [PlannerService], exports: [PlannerService] })
export class PlanningModule {
  static register(orchestrator: DynamicModule): DynamicModule {
    return { module: PlanningModule, imports: [orchestrator] };
  }
}
