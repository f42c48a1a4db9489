import { Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { TaskStore } from '../../session';

/** Weight of a new observation in the running mean (an exponentially weighted moving average). */
const ALPHA = 0.2;

export interface DurationEstimate {
  meanMs: number;
  samples: number;
  /** Output tokens one node reported, the same kind of mean (the cost estimate's expectation); absent before any. */
  meanOutputTokens?: number;
  outputSamples?: number;
}

/**
 * How long each agent type takes, learned from completed nodes (an exponentially weighted mean, so a provider that
 * gets slower is followed) and kept by the `TaskStore`, so a fresh process dispatches longest-expected first from its
 * first batch. The stored estimates are loaded at start (`onModuleInit`, before any batch is admitted);
 * observations are written in one store operation when a batch ends and at shutdown.
 */
@Injectable()
export class DurationEstimates implements OnModuleInit, OnApplicationShutdown {
  private readonly estimates = new Map<string, DurationEstimate>();
  private readonly dirty = new Set<string>();

  constructor(private readonly store: TaskStore) {}

  /** Loads what earlier processes learned (an estimate observed here already is kept). */
  async onModuleInit(): Promise<void> {
    for (const r of await this.store.agentDurations()) {
      if (!this.estimates.has(r.agentType)) {
        const { agentType, ...estimate } = r;
        this.estimates.set(agentType, estimate);
      }
    }
  }

  /** The expected duration of one node of `agentType`, or `undefined` before any was seen. */
  estimate(agentType: string): number | undefined {
    return this.estimates.get(agentType)?.meanMs;
  }

  /** The output tokens one node of `agentType` is expected to produce, or `undefined` before any reported some. */
  outputTokens(agentType: string): number | undefined {
    return this.estimates.get(agentType)?.meanOutputTokens;
  }

  /** A completed node: its duration and, when its provider reported any, its output tokens. */
  observe(agentType: string, durationMs: number, outputTokens?: number): void {
    let e = this.estimates.get(agentType);
    if (!e) this.estimates.set(agentType, (e = { meanMs: durationMs, samples: 1 }));
    else {
      e.meanMs += ALPHA * (durationMs - e.meanMs);
      e.samples++;
    }
    // the offline provider reports 0 tokens: nothing learned from it
    if (outputTokens !== undefined && outputTokens > 0) {
      if (e.meanOutputTokens === undefined) {
        e.meanOutputTokens = outputTokens;
        e.outputSamples = 1;
      } else {
        e.meanOutputTokens += ALPHA * (outputTokens - e.meanOutputTokens);
        e.outputSamples = (e.outputSamples ?? 0) + 1;
      }
    }
    this.dirty.add(agentType);
  }

  /** Every estimate, rounded to the millisecond (for status and metrics). */
  snapshot(): Record<string, DurationEstimate> {
    return Object.fromEntries(
      [...this.estimates].map(([k, e]) => [k, { meanMs: Math.round(e.meanMs), samples: e.samples }]),
    );
  }

  /**
   * Writes what changed since the last save (left to write later when the store is closed already). An observation
   * made while the write is under way is written by the next save.
   */
  async save(): Promise<void> {
    if (!this.dirty.size) return;
    const changed = [...this.dirty].map((agentType) => {
      const e = this.estimates.get(agentType) as DurationEstimate;
      return { agentType, ...e };
    });
    this.dirty.clear();
    let saved = false;
    try {
      saved = await this.store.saveAgentDurations(changed);
    } finally {
      if (!saved) for (const c of changed) this.dirty.add(c.agentType);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.save();
  }
}
