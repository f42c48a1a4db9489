import { Inject, Injectable, OnModuleDestroy, OnModuleInit, Optional } from '@nestjs/common';
import { hostname } from 'node:os';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Subscription } from 'rxjs';
import { MemoryDeliveryService } from '../memory';
import { Dispatcher, SseFanout, type TaskEvent } from '../orchestrator';
import { EventLog, TaskStore } from '../session';

/** Agent latency buckets in seconds: offline agents answer in milliseconds, LLM calls take seconds to minutes. */
const AGENT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const HTTP_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** DI token of this process's `instance` label (e.g. the resolved instance id); optional. */
export const METRICS_INSTANCE = Symbol('METRICS_INSTANCE');

/** The `instance` label when none is given: one value per process. */
export function defaultMetricsInstance(): string {
  return `${hostname()}:${process.pid}`;
}

/**
 * The service's Prometheus metrics, in a registry of its own (several apps in one process never share counters).
 * Node outcomes and agent latency are counted from the published task events; gauges (tasks by status, running
 * agents, semaphore waiters, SSE clients, memory outbox backlog) are read when scraped. Every sample carries the
 * label `instance`: each process of the service exposes its own figures, and a query sums or compares them.
 */
@Injectable()
export class MetricsService implements OnModuleInit, OnModuleDestroy {
  readonly registry = new Registry();
  private subscription: Subscription | undefined;

  private readonly nodes = new Counter({
    name: 'canvas_batch_nodes_total',
    help: 'Nodes that finished, by agent, outcome (completed|failed) and error type ("" when completed)',
    labelNames: ['agent', 'outcome', 'error_type'] as const,
    registers: [this.registry],
  });

  private readonly agentLatency = new Histogram({
    name: 'canvas_batch_agent_duration_seconds',
    help: 'Agent phase (content read + agent call) of completed nodes, by agent',
    labelNames: ['agent'] as const,
    buckets: AGENT_BUCKETS,
    registers: [this.registry],
  });

  private readonly finished = new Counter({
    name: 'canvas_batch_tasks_finished_total',
    help: 'Tasks that reached a final status in this process, by status',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });

  readonly httpDuration = new Histogram({
    name: 'canvas_batch_http_request_duration_seconds',
    help: 'HTTP request durations by method, route pattern and status code (SSE streams: until the stream ends)',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: HTTP_BUCKETS,
    registers: [this.registry],
  });

  constructor(
    private readonly bus: EventLog,
    store: TaskStore,
    dispatcher: Dispatcher,
    memory: MemoryDeliveryService,
    sse: SseFanout,
    @Optional() @Inject(METRICS_INSTANCE) instance: string = defaultMetricsInstance(),
  ) {
    this.registry.setDefaultLabels({ instance });
    new Gauge({
      name: 'canvas_batch_tasks',
      help: 'Stored tasks by status',
      labelNames: ['status'] as const,
      registers: [this.registry],
      async collect() {
        for (const [status, n] of Object.entries(await store.statusCounts())) this.set({ status }, n);
      },
    });
    new Gauge({
      name: 'canvas_batch_running_agents',
      help: 'Agent calls running now (slots held of GLOBAL_MAX_CONCURRENT)',
      registers: [this.registry],
      async collect() {
        this.set((await dispatcher.state()).inUse);
      },
    });
    new Gauge({
      name: 'canvas_batch_semaphore_waiters',
      help: 'Nodes waiting for a slot of the process-wide semaphore (GLOBAL_MAX_CONCURRENT)',
      registers: [this.registry],
      async collect() {
        this.set((await dispatcher.state()).waiting);
      },
    });
    new Gauge({
      name: 'canvas_batch_global_concurrency_limit',
      help: 'The effective process-wide limit now (lowered below GLOBAL_MAX_CONCURRENT while a provider answers 429)',
      registers: [this.registry],
      async collect() {
        this.set((await dispatcher.state()).limit);
      },
    });
    new Gauge({
      name: 'canvas_batch_global_max_concurrent',
      help: 'The process-wide cap on agent calls running at once',
      registers: [this.registry],
      async collect() {
        this.set((await dispatcher.state()).capacity);
      },
    });
    new Gauge({
      name: 'canvas_batch_sse_clients',
      help: 'Connected SSE clients following a task',
      registers: [this.registry],
      collect() {
        this.set(sse.clientCount);
      },
    });
    new Gauge({
      name: 'canvas_batch_memory_outbox_backlog',
      help: 'Learning-memory events stored in the outbox and not yet delivered',
      registers: [this.registry],
      async collect() {
        this.set((await memory.status()).pending);
      },
    });
    new Gauge({
      name: 'canvas_batch_memory_delivered',
      help: 'Learning-memory events delivered to the memory store (Neo4j or embedded)',
      registers: [this.registry],
      async collect() {
        this.set((await memory.status()).delivered);
      },
    });
    new Gauge({
      name: 'canvas_batch_memory_failed_attempts',
      help: 'Delivery attempts that failed since start (the drain loop backs off and retries)',
      registers: [this.registry],
      async collect() {
        this.set((await memory.status()).failedAttempts);
      },
    });
    new Gauge({
      name: 'canvas_batch_memory_oldest_pending_age_seconds',
      help: 'Age of the oldest undelivered learning-memory event (0 when none is pending)',
      registers: [this.registry],
      async collect() {
        this.set((await memory.status()).oldestPendingAgeSeconds ?? 0);
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'canvas_batch_' });
  }

  onModuleInit(): void {
    this.subscription = this.bus.stored().subscribe((e) => this.observe(e));
  }

  onModuleDestroy(): void {
    this.subscription?.unsubscribe();
  }

  /** Prometheus text exposition format. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /**
   * Counts one published event. The bus checks event names, not payloads: a payload lacking a member (an event not
   * built by the orchestrator's factory) is still counted, under `unknown` / `AGENT_ERROR`, and never throws.
   */
  private observe(e: TaskEvent): void {
    switch (e.type) {
      case 'task_completed': {
        const agent = agentLabel(e.data.agent_type);
        this.nodes.inc({ agent, outcome: 'completed', error_type: '' });
        if (typeof e.data.duration_ms === 'number')
          this.agentLatency.observe({ agent }, e.data.duration_ms / 1000);
        break;
      }
      case 'task_failed': {
        const errorType = typeof e.data.error_type === 'string' ? e.data.error_type : 'AGENT_ERROR';
        this.nodes.inc({ agent: agentLabel(e.data.agent_type), outcome: 'failed', error_type: errorType });
        break;
      }
      case 'session_completed':
        if (typeof e.data.status === 'string') this.finished.inc({ status: e.data.status });
        break;
      default:
        break;
    }
  }
}

function agentLabel(agentType: string | undefined): string {
  return typeof agentType === 'string' ? agentType : 'unknown';
}
