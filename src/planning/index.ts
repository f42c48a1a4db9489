export { PlanningModule } from './planning.module';
export { PlannerService, MAX_PLAN_NODES, MAX_MODEL_ROUTES, PLAN_CONTENT_CHARS } from './planner.service';
export { clusterDocuments, type Clustering, type ClusteringOptions } from './clustering';
export { tokenize } from './tokenize';
export { priorityOf, type Priority } from './priority';
export { NoEligibleNodesError, CanvasTooLargeError } from './planning.errors';
export type {
  PlanRequestDto,
  PlanResponseDto,
  PlannedGroupDto,
  PlanClusteringDto,
  LeftOutNodeDto,
  LeftOutReason,
  PlanExecuteGroupDto,
} from './dto/plan-request.dto';
