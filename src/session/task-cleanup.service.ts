import { Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { OPTION_DEFAULTS } from '../config';
import { InjectSessionOptions, type SessionModuleOptions } from './session.module-definition';
import { TaskStore } from './task-store';

/**
 * Removes finished tasks (with their results and event logs) once `SESSION_TTL_MINUTES` have passed since they
 * finished. Started with the module, stopped on shutdown.
 */
@Injectable()
export class TaskCleanupService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(TaskCleanupService.name);
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: TaskStore,
    @InjectSessionOptions() private readonly options: SessionModuleOptions,
  ) {}

  onModuleInit(): void {
    void this.sweep();
    this.timer = setInterval(
      () => void this.sweep(),
      this.options.cleanupIntervalMs ?? OPTION_DEFAULTS.cleanupIntervalMs,
    );
    this.timer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Deletes every expired task now; returns their ids. Never rejects: a failure is logged. */
  async sweep(now = new Date()): Promise<string[]> {
    try {
      const removed = await this.store.deleteExpired(now);
      if (removed.length) this.logger.log(`removed ${removed.length} expired task(s)`);
      return removed;
    } catch (err) {
      this.logger.error(`cleanup failed: ${(err as Error).message}`);
      return [];
    }
  }
}
