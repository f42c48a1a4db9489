import { hostname } from 'node:os';
import type { MemoryDeliveryService } from '../memory';
import { InProcessDispatcher, type SseFanout } from '../orchestrator';
import { InMemoryEventLog, type TaskStore, type TaskEventRecord } from '../session';
import { MetricsService } from './metrics.service';

const event = (type: string, data: Record<string, unknown>): TaskEventRecord => ({
  id: 1,
  taskId: 't1',
  type,
  timestamp: new Date(0).toISOString(),
  data,
});

/** The exposition without the `instance` label, so that samples read as they are written here. */
const withoutInstance = (text: string): string =>
  text
    .replace(/\{instance="[^"]*"\}/g, '')
    .replace(/,instance="[^"]*"/g, '')
    .replace(/instance="[^"]*",/g, '');

describe('MetricsService', () => {
  const store = {
    statusCounts: () =>
      Promise.resolve({
        pending: 1,
        running: 2,
        completed: 3,
        partial_failure: 0,
        failed: 0,
        cancelled: 4,
      }),
  } as unknown as TaskStore;
  const outbox = {
    status: () => ({ pending: 7, delivered: 1, failedAttempts: 3, oldestPendingAgeSeconds: 12.5 }),
  } as unknown as MemoryDeliveryService;
  const sse = { clientCount: 2 } as unknown as SseFanout;

  it('counts node outcomes from published events, tolerating events without the usual fields', async () => {
    const bus = new InMemoryEventLog();
    const metrics = new MetricsService(
      bus,
      store,
      new InProcessDispatcher({ capacity: 3 }),
      outbox,
      sse,
      'replica-a',
    );
    metrics.onModuleInit();
    bus.publish([
      event('task_completed', { agent_type: 'oral-explanation', duration_ms: 1500 }),
      event('task_completed', { agent_type: 'oral-explanation' }),
      event('task_completed', {}),
      event('task_failed', { agent_type: 'oral-explanation', error_type: 'AGENT_TIMEOUT' }),
      event('task_failed', { agent_type: 'oral-explanation' }),
      event('session_completed', { status: 'completed' }),
      event('session_completed', {}),
      event('progress_update', { progress_percent: 50 }),
    ]);
    const raw = (await metrics.render()).body;
    // every sample says which process it comes from
    const samples = raw.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
    expect(samples.filter((line) => !line.includes('instance="replica-a"'))).toEqual([]);
    const text = withoutInstance(raw);
    expect(text).toContain(
      'canvas_batch_nodes_total{agent="oral-explanation",outcome="completed",error_type=""} 2',
    );
    expect(text).toContain('canvas_batch_nodes_total{agent="unknown",outcome="completed",error_type=""} 1');
    expect(text).toContain(
      'canvas_batch_nodes_total{agent="oral-explanation",outcome="failed",error_type="AGENT_TIMEOUT"} 1',
    );
    expect(text).toContain(
      'canvas_batch_nodes_total{agent="oral-explanation",outcome="failed",error_type="AGENT_ERROR"} 1',
    );
    expect(text).toContain('canvas_batch_agent_duration_seconds_count{agent="oral-explanation"} 1');
    expect(text).toContain('canvas_batch_agent_duration_seconds_sum{agent="oral-explanation"} 1.5');
    expect(text).toContain('canvas_batch_tasks_finished_total{status="completed"} 1');
    expect(text).toContain('canvas_batch_tasks{status="cancelled"} 4');
    expect(text).toContain('canvas_batch_memory_outbox_backlog 7');
    expect(text).toContain('canvas_batch_sse_clients 2');
    expect(text).toContain('canvas_batch_memory_delivered 1');
    expect(text).toContain('canvas_batch_memory_failed_attempts 3');
    expect(text).toContain('canvas_batch_memory_oldest_pending_age_seconds 12.5');
    expect(text).toContain('canvas_batch_global_max_concurrent 3');
    expect(text).toContain('canvas_batch_global_concurrency_limit 3');
    metrics.onModuleDestroy();
    bus.publish([event('task_completed', { agent_type: 'oral-explanation' })]);
    expect(withoutInstance((await metrics.render()).body)).toContain(
      'canvas_batch_nodes_total{agent="oral-explanation",outcome="completed",error_type=""} 2',
    );
  });

  it('labels samples with the host name and pid when given no instance', async () => {
    const metrics = new MetricsService(
      new InMemoryEventLog(),
      store,
      new InProcessDispatcher({ capacity: 1 }),
      outbox,
      sse,
    );
    expect((await metrics.render()).body).toContain(
      `canvas_batch_sse_clients{instance="${hostname()}:${process.pid}"} 2`,
    );
  });

  it('can be destroyed before it was initialised', () => {
    expect(() =>
      new MetricsService(
        new InMemoryEventLog(),
        store,
        new InProcessDispatcher({ capacity: 1 }),
        outbox,
        sse,
      ).onModuleDestroy(),
    ).not.toThrow();
  });
});
