import { Body, Controller, Delete, Get, Headers, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import type { Response } from 'express';
import { BatchOrchestrator, type BatchRequest } from './batch-orchestrator.service';
import { CostEstimator, type EstimateDto } from './cost/cost-estimator';
import { ExecuteRequestDto } from './dto/execute-request.dto';
import type { CancelResponseDto, ExecuteAcceptedDto, TaskListDto } from './dto/task-status.dto';
import { CancelQueryDto, StatusQueryDto, TaskListQueryDto } from './dto/task-query.dto';
import { TaskViewService } from './task-view.service';

@Controller('parallel')
export class ParallelController {
  constructor(
    private readonly orchestrator: BatchOrchestrator,
    private readonly views: TaskViewService,
    private readonly cost: CostEstimator,
  ) {}

  /** Starts a batch (202). A repeated `Idempotency-Key` returns the first task (200) instead. */
  @Post('execute')
  async execute(
    @Body() body: ExecuteRequestDto,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<ExecuteAcceptedDto> {
    const { task, created } = await this.orchestrator.submit({
      ...batchRequest(body),
      idempotencyKey: idempotencyKey?.trim() || undefined,
      cache: body.cache,
    });
    res.status(created ? 202 : 200);
    const base = `/parallel`;
    return {
      task_id: task.taskId,
      status: task.status,
      canvas_path: task.canvasPath,
      total_groups: task.groups.length,
      total_nodes: task.totalNodes,
      created_at: task.createdAt,
      links: {
        status: `${base}/status/${task.taskId}`,
        events: `${base}/events/${task.taskId}`,
        cancel: `${base}/cancel/${task.taskId}`,
      },
    };
  }

  /**
   * What the batch would cost and take, per group and in all, before it runs: the same body and checks as
   * `execute` (400/404/422), nothing started or stored.
   */
  @Post('estimate')
  @HttpCode(200)
  estimate(@Body() body: ExecuteRequestDto): Promise<EstimateDto> {
    return this.cost.estimate(batchRequest(body));
  }

  /** Task status with per-group results and errors (paged for large tasks, or a summary). */
  @Get('status/:taskId')
  async status(
    @Param('taskId') taskId: string,
    @Query() query: StatusQueryDto,
    @Res() res: Response,
  ): Promise<void> {
    // the JSON bytes themselves are reused with the view (50 clients polling a big task would otherwise serialize,
    // encode and hash the same tens of kB hundreds of times a second); a matching If-None-Match gets 304
    const { body, etag } = await this.views.statusJson(taskId, {
      offset: query.results_offset,
      limit: query.view === 'summary' ? 0 : query.results_limit,
    });
    res.type('application/json').setHeader('ETag', etag);
    res.send(body);
  }

  /** Graceful cancel: no node that had not started runs after the reply. `?mode=abort` aborts running nodes too. */
  @Delete('cancel/:taskId')
  cancel(@Param('taskId') taskId: string, @Query() query: CancelQueryDto): Promise<CancelResponseDto> {
    return this.orchestrator.cancel(taskId, query.mode);
  }

  /** Same as `DELETE /parallel/cancel/{task_id}`, for clients that cannot send DELETE. */
  @Post('cancel/:taskId')
  @HttpCode(200)
  cancelPost(@Param('taskId') taskId: string, @Query() query: CancelQueryDto): Promise<CancelResponseDto> {
    return this.cancel(taskId, query);
  }

  /** Recent tasks, newest first. */
  @Get('tasks')
  async tasks(@Query() query: TaskListQueryDto): Promise<TaskListDto> {
    return { tasks: await this.views.list(query) };
  }
}

/** The batch of an execute (or estimate) body. */
function batchRequest(body: ExecuteRequestDto): BatchRequest {
  return {
    canvasPath: body.canvas_path,
    groups: body.groups.map((g) => ({ groupId: g.group_id, agentType: g.agent_type, nodeIds: g.node_ids })),
    maxConcurrent: body.max_concurrent,
    timeoutMs: body.timeout === undefined ? undefined : body.timeout * 1000,
    ...(body.budget_usd !== undefined && { budgetUsd: body.budget_usd }),
  };
}
