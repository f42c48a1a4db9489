import { Controller, Get } from '@nestjs/common';
import { MemoryDeliveryService } from './memory-delivery.service';

export class MemoryStatusDto {
  /** `neo4j`, `embedded`, or a host store's kind. */
  store!: string;
  /** Where events go (never credentials). */
  target!: string;
  /** starting, idle, delivering, retrying (the store failed; backing off), or stopped. */
  state!: 'starting' | 'idle' | 'delivering' | 'retrying' | 'stopped';
  /** Events in the outbox the store has not confirmed yet. */
  pending!: number;
  /** Events the store confirmed. */
  delivered!: number;
  /** Failed delivery attempts since this process started. */
  failed_attempts!: number;
  /** The last delivery error, kept after a recovery; `null` if none since start. */
  last_error!: string | null;
  last_error_at!: string | null;
  /** Age of the oldest pending event in seconds; `null` when nothing is pending. */
  oldest_pending_age_seconds!: number | null;
  last_delivery_at!: string | null;
  /** While retrying: when the next attempt is due. */
  next_retry_at!: string | null;
}

@Controller('memory')
export class MemoryStatusController {
  constructor(private readonly delivery: MemoryDeliveryService) {}

  /** Learning-memory delivery: outbox backlog, failures, and where events go. */
  @Get('status')
  async status(): Promise<MemoryStatusDto> {
    const s = await this.delivery.status();
    return {
      store: s.store,
      target: s.target,
      state: s.state,
      pending: s.pending,
      delivered: s.delivered,
      failed_attempts: s.failedAttempts,
      last_error: s.lastError,
      last_error_at: s.lastErrorAt,
      oldest_pending_age_seconds:
        s.oldestPendingAgeSeconds === null ? null : Math.round(s.oldestPendingAgeSeconds * 1000) / 1000,
      last_delivery_at: s.lastDeliveryAt,
      next_retry_at: s.nextRetryAt,
    };
  }
}
