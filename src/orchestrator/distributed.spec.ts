import type { INestApplicationContext } from '@nestjs/common';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { Test } from '@nestjs/testing';
import { Redis } from 'ioredis';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { deletePrefix, describeWithRedis, uniquePrefix } from '../../test/support/redis';
import { AgentRunner, type AgentRunRequest, type AgentRunResult } from '../agent';
import { RedisKeys } from '../redis';
import { type NewTask, TaskStore } from '../session';
import { BatchOrchestrator } from './batch-orchestrator.service';
import { OrchestratorModule } from './orchestrator.module';
import { TaskLeases } from './ownership/task-leases';

/** Agents that answer after `latencyMs`, or wait for `release()` while `hold` is set; they honour their signal. */
class SharedRunner extends AgentRunner {
  hold = false;
  latencyMs = 5;
  readonly calls: { instance: string; nodeId: string }[] = [];
  private readonly waiting = new Set<() => void>();

  constructor(private readonly instance: string) {
    super();
  }

  run(req: AgentRunRequest): Promise<AgentRunResult> {
    this.calls.push({ instance: this.instance, nodeId: req.node.nodeId });
    return new Promise((resolve, reject) => {
      const done = (): void => {
        this.waiting.delete(done);
        resolve({ markdown: `about ${req.node.nodeId}`, usage: { inputTokens: 1, outputTokens: 1 } });
      };
      req.signal.addEventListener('abort', () => {
        this.waiting.delete(done);
        reject(req.signal.reason as Error);
      });
      if (this.hold) this.waiting.add(done);
      else setTimeout(done, this.latencyMs);
    });
  }

  get held(): number {
    return this.waiting.size;
  }

  release(): void {
    this.hold = false;
    for (const done of [...this.waiting]) done();
  }
}

async function until(condition: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * The distributed engine in one Jest process: several application contexts (each its own `OrchestratorModule` with
 * `redis`, its own data folder, one shared vault) on one Redis — the service's processes, minus the process
 * boundary. The real-process suite is test/distributed.e2e-spec.ts; this one reaches the owner's paths directly.
 */
describeWithRedis('distributed engine, several instances in one process', (url) => {
  let root: string;
  let prefix: string;
  const apps: INestApplicationContext[] = [];
  const runners = new Map<string, SharedRunner>();
  const ids = Array.from({ length: 24 }, (_, i) => `n${i}`);

  beforeEach(() => {
    root = mkdtempSync(path.join(tmpdir(), 'distributed-spec-'));
    prefix = uniquePrefix('orch');
    mkdirSync(path.join(root, 'vault'));
    const nodes = ids.map((id, i) => ({
      id,
      type: 'text',
      text: `Node ${i}`,
      x: i * 300,
      y: 0,
      width: 200,
      height: 100,
    }));
    writeFileSync(path.join(root, 'vault', 'c.canvas'), JSON.stringify({ nodes, edges: [] }, null, '\t'));
  });

  afterEach(async () => {
    for (const r of runners.values()) r.release();
    await Promise.all(apps.splice(0).map((a) => a.close().catch(() => undefined)));
    runners.clear();
    await deletePrefix(url, prefix);
    rmSync(root, { recursive: true, force: true });
  });

  async function instance(name: string, extra: Record<string, unknown> = {}): Promise<BatchOrchestrator> {
    const runner = new SharedRunner(name);
    runners.set(name, runner);
    const moduleRef = await Test.createTestingModule({
      imports: [
        EventEmitterModule.forRoot(),
        OrchestratorModule.forRoot({
          vaultRoot: path.join(root, 'vault'),
          dataDir: path.join(root, `data-${name}`),
          agentRunner: runner,
          globalMaxConcurrent: 4,
          progressIntervalMs: 60_000,
          shutdownGraceMs: 2_000,
          redis: { url, prefix, instanceId: name, leaseMs: 1_000 },
          ...extra,
        }),
      ],
    }).compile();
    moduleRef.useLogger(false);
    const app = await moduleRef.init();
    apps.push(app);
    return app.get(BatchOrchestrator);
  }

  /** Agent calls held open now, and made so far, over every instance. */
  const held = (): number => [...runners.values()].reduce((n, r) => n + r.held, 0);
  const callCount = (): number => [...runners.values()].reduce((n, r) => n + r.calls.length, 0);

  /** A task stored `pending` as a process leaves one that crashed between storing and starting it. */
  const pendingTask = (groupId: string, nodeIds: string[], createdAt: string): NewTask => ({
    taskId: randomUUID(),
    canvasPath: 'c.canvas',
    groups: [{ groupId, agentType: 'oral-explanation', nodeIds }],
    maxConcurrent: 2,
    timeoutMs: 60_000,
    createdAt,
  });

  const request = (nodeIds = ids) => ({
    canvasPath: 'c.canvas',
    groups: [{ groupId: 'g', agentType: 'oral-explanation', nodeIds }],
  });

  it('runs a batch accepted by A on both instances; B waits for it and reads the same outcome', async () => {
    const a = await instance('A');
    const b = await instance('B');
    const { task } = await a.submit(request());
    const final = await b.waitForCompletion(task.taskId);
    expect(final.status).toBe('completed');
    const calls = [...runners.values()].flatMap((r) => r.calls);
    expect(calls.map((c) => c.nodeId).sort()).toEqual([...ids].sort());
    expect(new Set(calls.map((c) => c.instance)).size).toBe(2);
    expect((await b.aggregateResults(task.taskId)).completed).toBe(24);
  });

  it('a graceful cancel through B of a batch A runs: nothing more starts anywhere, A finalises it cancelled', async () => {
    const a = await instance('A');
    const b = await instance('B');
    for (const r of runners.values()) r.hold = true;
    const { task } = await a.submit(request());
    await until(() => held() === 4);
    const reply = await b.cancel(task.taskId, 'graceful');
    expect(reply.message).toMatch(/no new node will start/);
    const started = callCount();
    for (const r of runners.values()) r.release();
    const final = await b.waitForCompletion(task.taskId);
    expect(final.status).toBe('cancelled');
    expect(callCount()).toBe(started);
    const counts = await b.aggregateResults(task.taskId);
    expect(counts.completed).toBe(4);
    expect(counts.skipped).toBe(20);
  });

  it('an abort-cancel through B aborts the running calls on both instances and replies with the final status', async () => {
    const a = await instance('A');
    const b = await instance('B');
    for (const r of runners.values()) r.hold = true;
    const { task } = await a.submit(request());
    await until(() => held() === 4);
    const reply = await b.cancel(task.taskId, 'abort');
    expect(reply.status).toBe('cancelled');
    expect(held()).toBe(0);
    const counts = await b.aggregateResults(task.taskId);
    expect(counts.completed).toBe(0);
    expect(counts.failed).toBe(4);
  });

  it('a cancel of a task nobody started ends it at once, from any instance', async () => {
    const a = await instance('A');
    const b = await instance('B');
    const { task } = await a.submit(request());
    await a.waitForCompletion(task.taskId);
    // a pending task as a process that crashed between storing and starting it leaves one
    const store = apps[0].get(TaskStore);
    const { task: pending } = await store.createTask(pendingTask('p', ['n0'], new Date().toISOString()));
    const reply = await b.cancel(pending.taskId, 'graceful');
    expect(reply).toMatchObject({ status: 'cancelled', message: 'Task cancelled before it started' });
  });

  it('an instance that shuts down hands its batch over: another takes it over at once and finishes it', async () => {
    const a = await instance('A');
    const b = await instance('B');
    for (const r of runners.values()) r.latencyMs = 30;
    const { task } = await a.submit(request());
    await until(() => callCount() >= 6);
    await apps[0].close(); // A: SIGTERM's path
    apps.splice(0, 1);
    const final = await b.waitForCompletion(task.taskId);
    expect(final.status).toBe('completed');
    expect(final.resumeCount).toBeGreaterThanOrEqual(1);
    expect((await b.aggregateResults(task.taskId)).completed).toBe(24);
  });

  it('an owner that lost its lease lets the batch go; the new owner finishes it, every node once', async () => {
    const a = await instance('A');
    const b = await instance('B');
    for (const r of runners.values()) r.latencyMs = 40;
    const { task } = await a.submit(request());
    await until(() => callCount() >= 4);
    // another process takes the lease (A was cut off longer than the lease): A hears it lost at its next renewal
    const redis = new Redis(url);
    await redis.set(new RedisKeys(prefix).key('lease', task.taskId), 'Z', 'PX', 1_500);
    await redis.quit();
    const final = await b.waitForCompletion(task.taskId);
    expect(final.status).toBe('completed');
    const counts = await b.aggregateResults(task.taskId);
    expect(counts.completed + counts.failed).toBe(24);
    expect(counts.completed).toBe(24);
    void a;
  });

  it('a pending task older than a lease is started by whichever instance gets it; a young one is left to its creator', async () => {
    const a = await instance('A');
    const store = apps[0].get(TaskStore);
    const leases = apps[0].get(TaskLeases);
    expect(leases.shared).toBe(true);
    const old = await store.createTask(
      pendingTask('o', ['n1', 'n2'], new Date(Date.now() - 60_000).toISOString()),
    );
    const young = await store.createTask(pendingTask('y', ['n3'], new Date().toISOString()));
    const final = await a.waitForCompletion(old.task.taskId);
    expect(final.status).toBe('completed');
    expect((await store.findTask(young.task.taskId))?.status).toBe('pending');
  });
});
