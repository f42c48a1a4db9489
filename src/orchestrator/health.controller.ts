import { Controller, Get, HttpStatus, Res } from '@nestjs/common';
import { ApiOkResponse, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { BatchOrchestrator } from './batch-orchestrator.service';
import { GlobalSlots } from './concurrency/slot-limiter';

export class HealthDto {
  /** `ok`, or `shutting_down` (with 503) once a shutdown began. */
  status!: 'ok' | 'shutting_down';
  uptime_seconds!: number;
  running_tasks!: number;
  running_agents!: number;
  waiting_agents!: number;
  global_max_concurrent!: number;
}

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(
    private readonly orchestrator: BatchOrchestrator,
    private readonly globalSlots: GlobalSlots,
  ) {}

  /** Liveness and readiness: 200 while serving, 503 once shutting down. */
  @Get()
  @ApiOkResponse({ type: HealthDto })
  @ApiServiceUnavailableResponse({ type: HealthDto })
  health(@Res({ passthrough: true }) res: Response): HealthDto {
    const accepting = this.orchestrator.accepting;
    if (!accepting) res.status(HttpStatus.SERVICE_UNAVAILABLE);
    return {
      status: accepting ? 'ok' : 'shutting_down',
      uptime_seconds: Math.round(process.uptime()),
      running_tasks: this.orchestrator.runningTasks,
      running_agents: this.globalSlots.inUse,
      waiting_agents: this.globalSlots.waiting,
      global_max_concurrent: this.globalSlots.capacity,
    };
  }
}
