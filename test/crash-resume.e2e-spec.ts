import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import Database from 'better-sqlite3';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { BUNDLED_VAULT } from '../src/config/example-vault';
import { parseCanvas } from '../src/canvas/json-canvas';
import { writeGridCanvas } from './support/canvas-fixtures';
import { prng } from './support/prng';
import { http, type ReceivedEvent, sseClient } from './support/harness';
import { freePort, runToExit, type ServiceProcess, startService } from './support/service-process';

type Json = Record<string, any>;

/** The SSE envelope schema of specs/: every event of a crash-riddled run must still conform (`resumed` included). */
const taskSchema = JSON.parse(
  readFileSync(path.join(__dirname, '..', 'specs/data/parallel-task.schema.json'), 'utf8'),
) as Json;
const ajv = new Ajv2020({ allErrors: true, allowUnionTypes: true });
addFormats(ajv);
ajv.addSchema(taskSchema);
const validateEvent = ajv.getSchema(`${String(taskSchema.$id)}#/$defs/TaskEvent`)!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Resolves with `undefined` after `ms` without keeping Jest alive. */
const after = (ms: number) => new Promise<undefined>((r) => setTimeout(() => r(undefined), ms).unref());

/** An SSE client that reconnects with Last-Event-ID whenever the stream breaks, until `session_completed`. */
function followAcrossRestarts(url: string): {
  seen: ReceivedEvent[];
  done: Promise<void>;
  reconnects: () => number;
} {
  const seen: ReceivedEvent[] = [];
  let reconnects = 0;
  const done = (async () => {
    for (let attempt = 0; attempt < 2000; attempt++) {
      const client = sseClient(url, seen.length ? { lastEventId: seen.at(-1)!.id } : {});
      try {
        await client.done;
      } catch {
        /* the service was killed mid-stream */
      }
      seen.push(...client.events);
      if (seen.at(-1)?.event === 'session_completed') return;
      reconnects++;
      await sleep(50);
    }
    throw new Error('the stream never completed');
  })();
  return { seen, done, reconnects: () => reconnects };
}

function setup(prefix: string) {
  const root = mkdtempSync(path.join(tmpdir(), prefix));
  const vault = path.join(root, 'vault');
  const dataDir = path.join(root, 'data');
  cpSync(BUNDLED_VAULT, vault, { recursive: true });
  return { root, vault, dataDir };
}

describe('crash and restart (real service processes, SIGKILL at random points and inside canvas writes)', () => {
  const seed = Number(process.env.CRASH_SEED ?? Date.now() % 100_000);
  const { root, vault, dataDir } = setup('canvas-batch-crash-');
  let ids: string[][];
  let service: ServiceProcess | undefined;
  afterAll(async () => {
    await service?.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  });

  it(`keeps every result exactly once and the event stream whole across 6 kills (seed ${seed})`, async () => {
    ids = writeGridCanvas(vault, 'Test/crash.canvas', 4, 50);
    const random = prng(seed);
    const port = String(await freePort());
    const env = {
      PORT: port,
      VAULT_ROOT: vault,
      DATA_DIR: dataDir,
      AGENT_LATENCY_MS: '20-80',
      SHUTDOWN_GRACE_MS: '1000',
    };
    service = await startService(env);
    const res = await http<Json>('POST', `${service.url}/parallel/execute`, {
      canvas_path: 'Test/crash.canvas',
      groups: ids.map((node_ids, g) => ({ group_id: `g${g}`, agent_type: 'oral-explanation', node_ids })),
      max_concurrent: 4,
    });
    expect(res.status).toBe(202);
    const taskId = res.body.task_id as string;
    const follower = followAcrossRestarts(`${service.url}/parallel/events/${taskId}`);

    // Kill schedule: self-kills at exact points inside a canvas write and before recording, and random SIGKILLs.
    const failpoints = [
      'canvas.before-rename@3',
      undefined,
      'node.before-record@6',
      undefined,
      'canvas.after-rename@2',
      undefined,
    ];
    /** After every kill, the canvas on disk is a whole version (old or new), never half a file. */
    const canvasFile = path.join(vault, 'Test/crash.canvas');
    const versions: number[] = [];
    const assertWholeCanvas = (): void => {
      const parsed = parseCanvas(readFileSync(canvasFile, 'utf8'));
      expect('errors' in parsed ? parsed.errors : []).toEqual([]);
      if ('doc' in parsed) versions.push(parsed.doc.nodes.length);
    };
    await sleep(100 + random() * 300);
    await service.kill('SIGKILL');
    assertWholeCanvas();
    let kills = 1;
    for (const fp of failpoints.slice(1)) {
      service = await startService({ ...env, ...(fp ? { CANVAS_BATCH_FAILPOINTS: fp } : {}) });
      if (fp) {
        const exit = await Promise.race([service.exited, after(15_000)]);
        if (!exit)
          await service.kill('SIGKILL'); // the batch finished before the point was reached
        else expect(exit.signal).toBe('SIGKILL');
      } else {
        await sleep(150 + random() * 350);
        await service.kill('SIGKILL');
      }
      assertWholeCanvas();
      kills++;
    }
    // first iteration's kill was random too; add a self-kill at the canvas rename as the 7th start
    service = await startService({ ...env, CANVAS_BATCH_FAILPOINTS: 'canvas.before-rename@2' });
    if (!(await Promise.race([service.exited, after(15_000)]))) await service.kill('SIGKILL');
    assertWholeCanvas();
    kills++;
    // versions only grow: no kill ever rolled the canvas back or tore it
    expect(versions).toEqual([...versions].sort((a, b) => a - b));

    service = await startService(env);
    let status: Json = {};
    for (let i = 0; i < 600; i++) {
      status = (await http<Json>('GET', `${service.url}/parallel/status/${taskId}`)).body;
      if (!['pending', 'running'].includes(status.status)) break;
      await sleep(50);
    }
    await follower.done;

    // status: every node exactly once, all completed
    expect(status.status).toBe('completed');
    expect(status.completed_nodes).toBe(200);
    expect(status.failed_nodes + status.skipped_nodes).toBe(0);
    const results = status.groups.flatMap((g: Json) =>
      g.results.map((r: Json) => `${g.group_id}/${r.node_id}`),
    );
    expect(results).toHaveLength(200);
    expect(new Set(results).size).toBe(200);

    // disk: one file per node, no temp files left
    const folder = path.join(vault, 'Test/crash-explanations');
    const files = readdirSync(folder);
    expect(files).toHaveLength(200);
    expect(files.filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(readdirSync(path.join(vault, 'Test')).filter((f) => f.endsWith('.tmp'))).toEqual([]);

    // canvas: valid, one file node and one edge per result, originals intact
    const canvas = JSON.parse(readFileSync(path.join(vault, 'Test/crash.canvas'), 'utf8'));
    const fileNodes = canvas.nodes.filter((n: Json) => n.type === 'file');
    expect(fileNodes).toHaveLength(200);
    expect(new Set(fileNodes.map((n: Json) => n.file)).size).toBe(200);
    expect(canvas.edges.filter((e: Json) => e.label === 'oral-explanation')).toHaveLength(200);
    expect(canvas.nodes.filter((n: Json) => n.type === 'text')).toHaveLength(200);

    // event log: gap-free, strictly increasing, one task_completed per node, one resumed per restart that found work
    const replay = await sseClient(`${service.url}/parallel/events/${taskId}`).done;
    expect(replay.map((e) => e.id)).toEqual(replay.map((_, i) => i + 1));
    const completedEvents = replay.filter((e) => e.event === 'task_completed');
    expect(completedEvents).toHaveLength(200);
    expect(
      new Set(completedEvents.map((e) => `${String(e.data.data.group_id)}/${String(e.data.data.node_id)}`))
        .size,
    ).toBe(200);
    expect(replay.filter((e) => e.event === 'group_completed')).toHaveLength(4);
    expect(replay.filter((e) => e.event === 'resumed').length).toBeGreaterThanOrEqual(3);
    expect(replay.filter((e) => e.event === 'resumed').length).toBeLessThanOrEqual(kills);
    expect(replay.at(-1)!.event).toBe('session_completed');
    for (const e of replay)
      expect(validateEvent(e.data) ? e.event : ajv.errorsText(validateEvent.errors)).toBe(e.event);

    // the client that reconnected through every restart saw every event exactly once, in order
    const key = (e: ReceivedEvent) => `${e.id}:${e.event}:${JSON.stringify(e.data)}`;
    expect(follower.seen.map(key)).toEqual(replay.map(key));
    expect(follower.reconnects()).toBeGreaterThanOrEqual(1);

    expect((await service.kill('SIGTERM')).code).toBe(0);
    service = undefined;
    const db = new Database(path.join(dataDir, 'canvas-batch.sqlite'), { readonly: true });
    try {
      const rows = db
        .prepare('SELECT node_id FROM memory_outbox WHERE task_id = ? AND node_id IS NOT NULL')
        .all(taskId);
      expect(rows).toHaveLength(200);
    } finally {
      db.close();
    }
  }, 180_000);
});

describe('graceful shutdown (SIGTERM) and resume', () => {
  const { root, vault, dataDir } = setup('canvas-batch-sigterm-');
  let service: ServiceProcess | undefined;
  afterAll(async () => {
    await service?.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  });

  it('refuses new batches with 503, lets running nodes finish, exits 0 within the grace period; the next start resumes', async () => {
    const ids = writeGridCanvas(vault, 'Test/term.canvas', 1, 16);
    const env = {
      PORT: String(await freePort()),
      VAULT_ROOT: vault,
      DATA_DIR: dataDir,
      AGENT_LATENCY_MS: '1000',
      SHUTDOWN_GRACE_MS: '5000',
    };
    service = await startService(env);
    const body = {
      canvas_path: 'Test/term.canvas',
      groups: [{ group_id: 1, agent_type: 'memory-anchor', node_ids: ids[0] }],
      max_concurrent: 4,
    };
    const res = await http<Json>('POST', `${service.url}/parallel/execute`, body, {
      'idempotency-key': 'term-1',
    });
    expect(res.status).toBe(202);
    const taskId = res.body.task_id as string;
    const first = sseClient(`${service.url}/parallel/events/${taskId}`);
    while (first.events.filter((e) => e.event === 'task_completed').length < 4) await sleep(20);
    await sleep(100); // the second wave of 4 is running now

    const t0 = Date.now();
    service.child.kill('SIGTERM');
    await sleep(100);
    const refused = await http<Json>('POST', `${service.url}/parallel/execute`, body);
    expect(refused.status).toBe(503);
    expect(refused.type).toContain('application/problem+json');
    expect(refused.headers.get('retry-after')).toBe('5');
    const exit = await service.exited;
    expect(exit.code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000 + 1500);
    const seenBefore = await first.done; // ended cleanly, without session_completed
    expect(seenBefore.at(-1)?.event).not.toBe('session_completed');

    const db = new Database(path.join(dataDir, 'canvas-batch.sqlite'), { readonly: true });
    const left = db.prepare('SELECT status FROM tasks WHERE task_id = ?').get(taskId) as { status: string };
    const recorded = (
      db.prepare('SELECT count(*) AS n FROM node_results WHERE task_id = ?').get(taskId) as { n: number }
    ).n;
    db.close();
    expect(left.status).toBe('running');
    expect(recorded).toBe(8); // the running wave finished inside the grace period and kept its results

    service = await startService(env);
    const rest = await sseClient(`${service.url}/parallel/events/${taskId}`, {
      lastEventId: seenBefore.at(-1)!.id,
    }).done;
    expect(rest[0].id).toBe(seenBefore.at(-1)!.id + 1);
    expect(rest[0].event).toBe('resumed');
    expect(rest.at(-1)!.event).toBe('session_completed');
    const status = (await http<Json>('GET', `${service.url}/parallel/status/${taskId}`)).body;
    expect(status.status).toBe('completed');
    expect(new Set(status.groups[0].results.map((r: Json) => r.node_id)).size).toBe(16);
    expect(readdirSync(path.join(vault, 'Test/term-explanations'))).toHaveLength(16);

    // the idempotency key survived the restart: the same request returns the same task instead of a new one
    const again = await http<Json>('POST', `${service.url}/parallel/execute`, body, {
      'idempotency-key': 'term-1',
    });
    expect(again.status).toBe(200);
    expect(again.body.task_id).toBe(taskId);
  }, 60_000);
});

describe('the database under DATA_DIR', () => {
  const { root, vault, dataDir } = setup('canvas-batch-db-');
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('refuses a second process on the same DATA_DIR with a clear message', async () => {
    const env = { PORT: String(await freePort()), VAULT_ROOT: vault, DATA_DIR: dataDir };
    const first = await startService(env);
    try {
      const second = await runToExit({ ...env, PORT: '0' });
      expect(second.code).toBe(1);
      expect(second.output).toContain('Another canvas-batch process is using');
      expect((await http('GET', `${first.url}/health`)).status).toBe(200);
    } finally {
      expect((await first.kill('SIGTERM')).code).toBe(0);
    }
  }, 30_000);

  it('stops on a corrupt database file with a clear message and leaves the file untouched', async () => {
    const corruptDir = path.join(root, 'corrupt');
    const file = path.join(corruptDir, 'canvas-batch.sqlite');
    const garbage = Buffer.from(
      'this is not an SQLite database, but a user might have put it here'.repeat(100),
    );
    mkdirSync(corruptDir, { recursive: true });
    writeFileSync(file, garbage);
    const run = await runToExit({ PORT: '0', VAULT_ROOT: vault, DATA_DIR: corruptDir });
    expect(run.code).toBe(1);
    expect(run.output).toContain('Cannot open the database');
    expect(run.output).toContain('left untouched');
    expect(readFileSync(file).equals(garbage)).toBe(true);
  }, 30_000);
});
