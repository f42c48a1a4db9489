import { execFileSync } from 'node:child_process';
import {
  closeSync,
  constants,
  mkdirSync,
  mkdtempSync,
  openSync,
  promises as fsp,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { http, startServer, type TestServer, waitTerminal } from './support/harness';
import { freePort, startService } from './support/service-process';
import { startSwapper } from './support/swapper';

/**
 * Issue 14, item 4: a file swapped for a FIFO between the "is it a file" check and the read must not block the file
 * pool (after a few such reads every route that touches the vault hung and SIGTERM no longer stopped the process);
 * `/health` reports stuck file I/O; a shutdown still ends when file calls never return.
 */
const CANVAS = 'Wedge/board.canvas';
const NOTE = 'Wedge/note.md';

function mkfifo(p: string): void {
  execFileSync('mkfifo', [p]);
}

/** Lets every `open` blocked on these FIFOs return (a writer shows up), so a wedged process can be closed. */
function release(fifos: string[]): void {
  for (const f of fifos) {
    for (let i = 0; i < 20; i++) {
      try {
        closeSync(openSync(f, constants.O_WRONLY | constants.O_NONBLOCK));
      } catch {
        break; // no reader waiting (ENXIO) or gone
      }
    }
  }
}

async function healthUntil(url: string, status: string, timeoutMs: number): Promise<Record<string, any>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await http<Record<string, any>>('GET', `${url}/health`);
    if (body.status === status || Date.now() > end) return body;
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('file I/O that could wedge the service', () => {
  let server: TestServer | undefined;
  const fifos: string[] = [];

  afterEach(async () => {
    release(fifos); // only ever needed when something did block on one
    await server?.close();
    server = undefined;
    fifos.splice(0);
  });

  it('a canvas or note swapped for a FIFO between its check and its read never blocks a request or a batch', async () => {
    let canvasFifo = '';
    let noteFifo = '';
    server = await startServer({ AGENT_LATENCY_MS: '1-5', EXECUTE_RATE_LIMIT: '0' }, (vault) => {
      mkdirSync(path.join(vault, 'Wedge'));
      const nodes = [
        { id: 't', type: 'text', text: 'Photosynthesis', x: 0, y: 0, width: 250, height: 60 },
        { id: 'f', type: 'file', file: NOTE, x: 400, y: 0, width: 250, height: 60 },
      ];
      writeFileSync(path.join(vault, CANVAS), JSON.stringify({ nodes, edges: [] }));
      writeFileSync(path.join(vault, NOTE), '# Note\nChlorophyll absorbs light.');
      // another program's FIFOs, inside the vault (one outside would read as a path leaving it, and be refused so)
      mkdirSync(path.join(vault, 'Wedge', '.pipes'));
      canvasFifo = path.join(vault, 'Wedge', '.pipes', 'canvas');
      noteFifo = path.join(vault, 'Wedge', '.pipes', 'note');
      mkfifo(canvasFifo);
      mkfifo(noteFifo);
    });
    fifos.push(canvasFifo, noteFifo);
    const { url, vault } = server;
    const swappers = [
      await startSwapper(path.join(vault, CANVAS), { with: canvasFifo }),
      await startSwapper(path.join(vault, NOTE), { with: noteFifo }),
    ];
    for (const s of swappers) s.start();
    const answers: (number | string)[] = [];
    const taskIds: string[] = [];
    try {
      const request = async (i: number): Promise<void> => {
        const signal = AbortSignal.timeout(15_000);
        const call =
          i % 3 === 0
            ? fetch(`${url}/parallel/execute`, {
                method: 'POST',
                signal,
                headers: { 'content-type': 'application/json' },
                body: JSON.stringify({
                  canvas_path: CANVAS,
                  groups: [{ group_id: 'g', agent_type: 'oral-explanation', node_ids: ['t', 'f'] }],
                }),
              })
            : fetch(`${url}/${i % 3 === 1 ? `canvases/nodes?path=${CANVAS}` : `files?path=${NOTE}`}`, {
                signal,
              });
        try {
          const res = await call;
          const text = await res.text();
          if (res.status === 202) taskIds.push((JSON.parse(text) as { task_id: string }).task_id);
          answers.push(res.status);
        } catch (err) {
          answers.push((err as Error).name); // TimeoutError: the request hung
        }
      };
      // 8 at a time: more than the file pool's 4 threads
      for (let round = 0; round < 30; round++)
        await Promise.all(Array.from({ length: 8 }, (_, k) => request(round * 8 + k)));
    } finally {
      for (const s of swappers) await s.stop();
    }
    expect(answers).toHaveLength(240);
    // every request was answered: none hung, none failed with 500 (refused FIFOs answer 404; others succeed)
    expect(answers.filter((a) => typeof a !== 'number')).toEqual([]);
    expect(answers.filter((a) => a === 500)).toEqual([]);
    expect(answers.filter((a) => a !== 202 && a !== 200 && a !== 404)).toEqual([]);
    // the batches started during the race all end (a node meeting a FIFO fails, the others complete)
    for (const id of taskIds) {
      const task = await waitTerminal(server, id, 30_000);
      for (const e of task.groups[0].errors as { error_type: string }[])
        expect(['NODE_CONTENT_MISSING', 'NODE_NOT_FOUND', 'CANVAS_WRITE_FAILED']).toContain(e.error_type);
    }
    // and the service is fine afterwards
    expect((await http('GET', `${url}/health`)).body).toMatchObject({ status: 'ok', file_io_stalled_ms: 0 });
    const after = await http<{ task_id: string }>('POST', `${url}/parallel/execute`, {
      canvas_path: CANVAS,
      groups: [{ group_id: 'g', agent_type: 'oral-explanation', node_ids: ['t', 'f'] }],
    });
    expect(after.status).toBe(202);
    expect(await waitTerminal(server, after.body.task_id)).toMatchObject({
      status: 'completed',
      completed_nodes: 2,
    });
  }, 120_000);

  it('/health says degraded (503) while the file pool is stuck, and ok again once it moves', async () => {
    server = await startServer();
    const dir = mkdtempSync(path.join(tmpdir(), 'wedge-'));
    // what a hung network drive does: every thread of the pool waits in a file call that does not return
    for (let i = 0; i < 4; i++) {
      const fifo = path.join(dir, `fifo-${i}`);
      mkfifo(fifo);
      fifos.push(fifo);
      void fsp.open(fifo, 'r').then(
        (h) => h.close(),
        () => undefined,
      );
    }
    try {
      const stuck = await healthUntil(server.url, 'degraded', 20_000);
      expect(stuck).toMatchObject({ status: 'degraded' });
      expect(stuck.file_io_stalled_ms).toBeGreaterThanOrEqual(5_000);
      const res = await fetch(`${server.url}/health`);
      expect(res.status).toBe(503);
      release(fifos);
      await expect(healthUntil(server.url, 'ok', 10_000)).resolves.toMatchObject({ status: 'ok' });
    } finally {
      release(fifos);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('SIGTERM still ends a process whose file calls never return, saying why', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'wedge-process-'));
    const wedge = Array.from({ length: 4 }, (_, i) => path.join(root, `fifo-${i}`));
    wedge.forEach(mkfifo);
    fifos.push(...wedge);
    const service = await startService({
      PORT: String(await freePort()),
      DATA_DIR: path.join(root, 'data'),
      SHUTDOWN_GRACE_MS: '1000',
      MEMORY_SHUTDOWN_MS: '1000',
      WEDGE_FIFOS: wedge.join(','),
      NODE_OPTIONS: `--require @swc-node/register --require ${path.join(__dirname, 'support', 'wedge-file-io.ts')}`,
    });
    try {
      service.child.kill('SIGUSR2');
      await expect(healthUntil(service.url, 'degraded', 20_000)).resolves.toMatchObject({
        status: 'degraded',
      });
      service.child.kill('SIGTERM');
      // a liveness bound, not a timing claim: without the fix the process never ends
      const ended = await Promise.race([
        service.exited,
        new Promise<'still running'>((r) => setTimeout(() => r('still running'), 40_000)),
      ]);
      expect(ended).toEqual({ code: null, signal: 'SIGKILL' });
      expect(service.output.join('')).toMatch(/file-system call\(s\) have not returned/);
    } finally {
      release(wedge);
      await service.kill('SIGKILL');
      rmSync(root, { recursive: true, force: true });
    }
  }, 90_000);
});
