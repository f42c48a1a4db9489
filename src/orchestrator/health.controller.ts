import { Controller, Get, HttpStatus, Res } from '@nestjs/common';
import type { Response } from 'express';
import { IO_STALL_MS, VaultService } from '../canvas';
import { BatchOrchestrator } from './batch-orchestrator.service';
import { Dispatcher } from './dispatch/dispatcher';

export class HealthDto {
  /**
   * `ok`; `degraded` (503) while the vault's file I/O is stuck (no answer for 5 s: reads and writes are not
   * progressing); `shutting_down` (503) once a shutdown began.
   */
  status!: 'ok' | 'degraded' | 'shutting_down';
  uptime_seconds!: number;
  running_tasks!: number;
  running_agents!: number;
  waiting_agents!: number;
  global_max_concurrent!: number;
  /** How long a probe of the vault's file I/O has been waiting for its answer (0 normally). */
  file_io_stalled_ms!: number;
}

@Controller('health')
export class HealthController {
  constructor(
    private readonly orchestrator: BatchOrchestrator,
    private readonly dispatcher: Dispatcher,
    private readonly vault: VaultService,
  ) {}

  /** Liveness and readiness: 200 while serving, 503 while file I/O is stuck or once shutting down. */
  @Get()
  async health(@Res({ passthrough: true }) res: Response): Promise<HealthDto> {
    const accepting = this.orchestrator.accepting;
    const stalled = this.vault.ioStalledMs();
    const slots = await this.dispatcher.state();
    const status = !accepting ? 'shutting_down' : stalled >= IO_STALL_MS ? 'degraded' : 'ok';
    if (status !== 'ok') res.status(HttpStatus.SERVICE_UNAVAILABLE);
    return {
      status,
      uptime_seconds: Math.round(process.uptime()),
      running_tasks: this.orchestrator.runningTasks,
      running_agents: slots.inUse,
      waiting_agents: slots.waiting,
      global_max_concurrent: slots.capacity,
      file_io_stalled_ms: stalled,
    };
  }
}
