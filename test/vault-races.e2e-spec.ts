import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { CanvasService } from '../src/canvas';
import { DESCRIPTOR_PATHS } from '../src/canvas/vault-fs';
import { http, startServer, type TestServer, waitTerminal } from './support/harness';
import { startSwapper } from './support/swapper';

/**
 * Another program swaps a folder or file of the vault for a symlink to the outside in a tight loop while a real batch
 * runs (issue 14, items 1–3): nothing outside the vault may change, and no outside text may reach the vault.
 */
const NODES = 120;
const MARKER = 'OUTSIDE-MARKER-7f3a';
/** What a node may fail with while its canvas, folder or results folder keeps disappearing and coming back. */
const RACE_ERRORS = ['CANVAS_WRITE_FAILED', 'NODE_CONTENT_MISSING', 'NODE_NOT_FOUND'];

function canvasText(prefix: string): string {
  const nodes = Array.from({ length: NODES }, (_, i) => ({
    id: `n-${i}`,
    type: 'text',
    text: `# ${prefix} concept ${i}\n${prefix} text of concept ${i}: how a cell turns light into sugar.`,
    x: (i % 10) * 400,
    y: Math.floor(i / 10) * 600,
    width: 300,
    height: 160,
  }));
  return JSON.stringify({ nodes, edges: [] }, null, '\t');
}

/** Every entry under `dir`: links by target, files by content, size and modification time. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = path.join(d, name);
      const st = lstatSync(p);
      const rel = path.relative(dir, p);
      if (st.isSymbolicLink()) out[rel] = `link → ${readlinkSync(p)}`;
      else if (st.isDirectory()) {
        out[rel] = 'dir';
        walk(p);
      } else out[rel] = `${st.size}@${st.mtimeMs}: ${readFileSync(p, 'utf8')}`;
    }
  };
  walk(dir);
  return out;
}

/** Files under `dir` (links not followed) whose text contains `marker`. */
function filesContaining(dir: string, marker: string): string[] {
  const found: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && readFileSync(p, 'utf8').includes(marker)) found.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return found;
}

interface RaceOutcome {
  task: Record<string, any>;
  swaps: number;
  before: Record<string, string>;
  after: Record<string, string>;
  vault: string;
  errors: { error_type: string; error_message: string }[];
  /** Files in the vault holding text only the outside canvas has. */
  marked: string[];
}

/**
 * A real server and a 120-node batch over `canvasPath`; while it runs, `swapped` (vault-relative) is swapped for a
 * link to `outsideTarget` (relative to the folder beside the vault) again and again.
 */
async function race(
  canvasPath: string,
  swapped: string,
  outsideTarget: string,
  setup: (vault: string, outside: string) => void,
): Promise<RaceOutcome> {
  let outside = '';
  const server: TestServer = await startServer({ AGENT_LATENCY_MS: '50-250' }, (vault) => {
    outside = path.join(path.dirname(vault), 'outside');
    mkdirSync(outside);
    setup(vault, outside);
  });
  try {
    const before = snapshot(outside);
    const swapper = await startSwapper(path.join(server.vault, swapped), path.join(outside, outsideTarget));
    const { status, body } = await http<{ task_id: string }>('POST', `${server.url}/parallel/execute`, {
      canvas_path: canvasPath,
      max_concurrent: 12,
      groups: [
        {
          group_id: 'g',
          agent_type: 'oral-explanation',
          node_ids: Array.from({ length: NODES }, (_, i) => `n-${i}`),
        },
      ],
    });
    expect({ status, body }).toMatchObject({ status: 202 });
    swapper.start();
    let swaps = 0;
    let task: Record<string, any>;
    try {
      task = await waitTerminal(server, body.task_id, 120_000);
    } finally {
      swaps = await swapper.stop();
    }
    await server.app.get(CanvasService).flush();
    const errors = (task.groups as Record<string, any>[]).flatMap((g) => g.errors as RaceOutcome['errors']);
    return {
      task,
      swaps,
      before,
      after: snapshot(outside),
      vault: server.vault,
      errors,
      marked: filesContaining(server.vault, MARKER),
    };
  } finally {
    await server.close({ keepFiles: false });
  }
}

function expectConfined(r: RaceOutcome): void {
  expect(r.swaps).toBeGreaterThan(20);
  // nothing outside the vault changed: no file written, replaced, created or removed there
  expect(r.after).toEqual(r.before);
  // no result, no canvas, nothing in the vault carries text that only the outside canvas has
  expect(r.marked).toEqual([]);
  // every node either completed or failed with a per-node error; the batch itself ended
  expect(r.task.completed_nodes + r.task.failed_nodes).toBe(NODES);
  expect([...new Set(r.errors.map((e) => e.error_type))].filter((t) => !RACE_ERRORS.includes(t))).toEqual([]);
  // no API message names a server path
  for (const e of r.errors) expect(e.error_message).not.toContain(path.dirname(r.vault));
}

/**
 * `race` until the swaps really met the service (a node refused as leaving the vault), at most 3 times — timing on a
 * loaded machine may let one run slip between the swaps; every run must be confined.
 */
async function raceUntilRefused(...args: Parameters<typeof race>): Promise<RaceOutcome> {
  let r: RaceOutcome | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    r = await race(...args);
    expectConfined(r);
    if (r.errors.some((e) => /outside the vault/.test(e.error_message))) return r;
  }
  throw new Error(
    `3 runs without a refusal: the race never met the service (${JSON.stringify(r?.errors.slice(0, 3))})`,
  );
}

// race-free confinement needs descriptor paths (/proc/self/fd, Linux); elsewhere a window of microseconds remains
const onLinux = DESCRIPTOR_PATHS ? describe : describe.skip;

onLinux('vault races: a path swapped for a link to the outside while a batch runs', () => {
  it('1. the canvas’s folder swapped for a link: no canvas rewrite, temp file or check lands outside', async () => {
    const r = await raceUntilRefused('Race/sub/board.canvas', 'Race/sub', 'sub', (vault, outside) => {
      mkdirSync(path.join(vault, 'Race', 'sub'), { recursive: true });
      writeFileSync(path.join(vault, 'Race', 'sub', 'board.canvas'), canvasText('Inside'));
      mkdirSync(path.join(outside, 'sub'));
      writeFileSync(path.join(outside, 'sub', 'board.canvas'), canvasText(MARKER));
    });
    expect(r.task.completed_nodes).toBeGreaterThan(0);
  }, 180_000);

  it('2. the results folder swapped for a link in a tight loop: no result .md or .tmp file lands outside', async () => {
    const r = await raceUntilRefused(
      'Race/board.canvas',
      'Race/board-explanations',
      'results',
      (vault, outside) => {
        mkdirSync(path.join(vault, 'Race', 'board-explanations'), { recursive: true });
        writeFileSync(path.join(vault, 'Race', 'board.canvas'), canvasText('Inside'));
        mkdirSync(path.join(outside, 'results'));
      },
    );
    expect(r.task.completed_nodes).toBeGreaterThan(0);
  }, 180_000);

  it('3. the canvas itself swapped for a link to an outside canvas: no outside text is read, the link is never replaced by a copy', async () => {
    await raceUntilRefused('Race/board.canvas', 'Race/board.canvas', 'board.canvas', (vault, outside) => {
      mkdirSync(path.join(vault, 'Race'), { recursive: true });
      writeFileSync(path.join(vault, 'Race', 'board.canvas'), canvasText('Inside'));
      writeFileSync(path.join(outside, 'board.canvas'), canvasText(MARKER));
    });
  }, 180_000);
});
