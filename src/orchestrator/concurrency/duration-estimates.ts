import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { Statement } from 'better-sqlite3';
import { SqliteDatabase } from '../../database/sqlite-database';

/** Weight of a new observation in the running mean (an exponentially weighted moving average). */
const ALPHA = 0.2;

export interface DurationEstimate {
  meanMs: number;
  samples: number;
}

/**
 * How long each agent type takes, learned from completed nodes (an exponentially weighted mean, so a provider that
 * gets slower is followed) and kept in the database, so a fresh process dispatches longest-expected first from its
 * first batch. Observations are written in one transaction when a batch ends and at shutdown.
 */
@Injectable()
export class DurationEstimates implements OnApplicationShutdown {
  private readonly estimates = new Map<string, DurationEstimate>();
  private readonly dirty = new Set<string>();
  private readonly upsert: Statement;

  constructor(private readonly db: SqliteDatabase) {
    const rows = db.handle
      .prepare('SELECT agent_type, mean_ms, samples FROM agent_duration_estimates')
      .all() as { agent_type: string; mean_ms: number; samples: number }[];
    for (const r of rows) this.estimates.set(r.agent_type, { meanMs: r.mean_ms, samples: r.samples });
    this.upsert = db.handle.prepare(
      `INSERT INTO agent_duration_estimates (agent_type, mean_ms, samples, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (agent_type) DO UPDATE SET mean_ms = excluded.mean_ms, samples = excluded.samples, updated_at = excluded.updated_at`,
    );
  }

  /** The expected duration of one node of `agentType`, or `undefined` before any was seen. */
  estimate(agentType: string): number | undefined {
    return this.estimates.get(agentType)?.meanMs;
  }

  observe(agentType: string, durationMs: number): void {
    const e = this.estimates.get(agentType);
    if (!e) this.estimates.set(agentType, { meanMs: durationMs, samples: 1 });
    else {
      e.meanMs += ALPHA * (durationMs - e.meanMs);
      e.samples++;
    }
    this.dirty.add(agentType);
  }

  /** Every estimate, rounded to the millisecond (for status and metrics). */
  snapshot(): Record<string, DurationEstimate> {
    return Object.fromEntries(
      [...this.estimates].map(([k, e]) => [k, { meanMs: Math.round(e.meanMs), samples: e.samples }]),
    );
  }

  /** Writes what changed since the last save. */
  save(): void {
    if (!this.dirty.size || !this.db.handle.open) return;
    const now = new Date().toISOString();
    this.db.handle.transaction(() => {
      for (const agentType of this.dirty) {
        const e = this.estimates.get(agentType) as DurationEstimate;
        this.upsert.run(agentType, e.meanMs, e.samples, now);
      }
    })();
    this.dirty.clear();
  }

  onApplicationShutdown(): void {
    this.save();
  }
}
