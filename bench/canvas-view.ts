/**
 * Canvas view (issue 18): frames per second of the dashboard's canvas view while panning, in headless Chromium
 * against a real server. A generated 5,000-node canvas (text cards in a grid, a few lines each, preset colours, an
 * edge from each card to its right neighbour) is panned by a script — a few pixels on every animation frame for
 * PAN_MS — and the frames counted with requestAnimationFrame; beside it, in the same run: the same pan with viewport
 * culling off (every card drawn each frame), a 500-node canvas, and the 5,000-node canvas zoomed to fit (every card
 * on screen: boxes only). `draw_ms` is the view's own time per frame (its `stats()`), which the frame rate hides once
 * it stays below the display's frame. Reported, not asserted. Writes bench/results/canvas-view.json.
 *
 * `npm run bench -- canvas-view`, or on its own: `node -r @swc-node/register bench/canvas-view.ts`.
 */
import { writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { chromiumPath, launchBrowser } from '../test/support/browser';
import { http, startServer } from '../test/support/harness';
import { fmt, out, round, table, runWhenMain, writeBenchResult } from './perf/common';

/** The page's globals inside `page.evaluate` callbacks (this project compiles without the DOM lib). */
declare const window: any;

const BIG = 5_000;
const SMALL = 500;
const COLUMNS = 50;
const STEP_X = 480;
const STEP_Y = 300;
/** How long each scripted pan lasts, and how far it moves per frame (CSS pixels). */
const PAN_MS = 4_000;
const PAN_STEP = { x: -9, y: -4 };

const WORDS =
  'cell membrane energy force motion mass gradient derivative limit series factory steam engine trade'.split(
    ' ',
  );

/** A JSON Canvas of `n` text cards in a grid, each joined to its right neighbour. */
export function gridCanvas(n: number): string {
  const nodes = Array.from({ length: n }, (_, i) => ({
    id: `n${i}`,
    type: 'text',
    text: `## Card ${i}\n${Array.from({ length: 18 }, (_, w) => WORDS[(i * 7 + w) % WORDS.length]).join(' ')}`,
    x: (i % COLUMNS) * STEP_X,
    y: Math.floor(i / COLUMNS) * STEP_Y,
    width: 400,
    height: 220,
    ...(i % 4 === 0 ? { color: String((i % 6) + 1) } : {}),
  }));
  const edges = nodes
    .filter((_, i) => i % COLUMNS !== COLUMNS - 1 && i + 1 < n)
    .map((node, i) => ({
      id: `e${i}`,
      fromNode: node.id,
      toNode: `n${Number(node.id.slice(1)) + 1}`,
      label: i % 10 === 0 ? 'next' : undefined,
    }));
  return JSON.stringify({ nodes, edges });
}

export interface PanRun {
  scenario: string;
  nodes: number;
  culling: boolean;
  zoom: number;
  frames: number;
  fps: number;
  draw_ms_mean: number;
  /** Cards drawn in the last frame. */
  visible: number;
}

/** Pans the open task page's canvas view for PAN_MS, one step per animation frame; counts frames. */
async function pan(
  page: Page,
  scenario: string,
  nodes: number,
  culling: boolean,
  zoom: number | 'fit',
): Promise<PanRun> {
  return page.evaluate(
    async ([name, total, cull, wanted, ms, step]) => {
      const v = window.__canvasView;
      v.setCulling(cull);
      v.fit();
      if (wanted !== 'fit') {
        // at that zoom, the top-left corner of the grid in view
        v.zoomAt(wanted / v.transform().zoom, 0, 0);
        const t = v.transform();
        v.panBy(20 - t.tx, 20 - t.ty);
      }
      // settle (text of the first view measured), then count
      await new Promise((r) => window.requestAnimationFrame(() => window.requestAnimationFrame(r)));
      const before = v.stats();
      let frames = 0;
      const started = window.performance.now();
      await new Promise<void>((resolve) => {
        const tick = () => {
          frames++;
          // back and forth, so the pan stays over the grid
          const dir = Math.floor((window.performance.now() - started) / 1000) % 2 === 0 ? 1 : -1;
          v.panBy(step.x * dir, step.y * dir);
          if (window.performance.now() - started < ms) window.requestAnimationFrame(tick);
          else resolve();
        };
        window.requestAnimationFrame(tick);
      });
      const elapsed = window.performance.now() - started;
      const after = v.stats();
      v.setCulling(true);
      return {
        scenario: name,
        nodes: total,
        culling: cull,
        zoom: Math.round(v.transform().zoom * 1000) / 1000,
        frames,
        fps: Math.round((frames / elapsed) * 10000) / 10,
        draw_ms_mean:
          Math.round(((after.drawMs - before.drawMs) / Math.max(1, after.frames - before.frames)) * 100) /
          100,
        visible: after.visible,
      };
    },
    [scenario, nodes, culling, zoom, PAN_MS, PAN_STEP] as const,
  );
}

export async function benchCanvasView(): Promise<
  { runs: PanRun[]; ratios: Record<string, number> } | { skipped: string }
> {
  const executable = chromiumPath();
  if (!executable)
    return { skipped: 'Chromium not found (apt-get install -y chromium, or set CHROMIUM_PATH)' };
  const server = await startServer({ AGENT_LATENCY_MS: '0', SHUTDOWN_GRACE_MS: '0' }, (vault) => {
    writeFileSync(path.join(vault, 'bench-5000.canvas'), gridCanvas(BIG));
    writeFileSync(path.join(vault, 'bench-500.canvas'), gridCanvas(SMALL));
  });
  const browser = await launchBrowser(executable);
  try {
    const page = await browser.context.newPage();
    /** A one-node batch on the canvas (done at once), and its task page with the canvas view. */
    const open = async (canvas: string): Promise<void> => {
      const res = await http<{ task_id: string }>('POST', `${server.url}/parallel/execute`, {
        canvas_path: canvas,
        groups: [{ group_id: 1, agent_type: 'oral-explanation', node_ids: ['n0'] }],
      });
      await page.goto(`${server.url}/#/tasks/${res.body.task_id}`);
      await page.waitForFunction(() => window.__canvasView?.loaded === true, undefined, { timeout: 60_000 });
      // the result card placed and the task ended: the view read the canvas again after each (so no read lands
      // mid-measurement); two reads when they came together
      await page
        .waitForFunction(() => window.__canvasView.stats().reloads >= 3, undefined, { timeout: 5_000 })
        .catch(() => undefined);
    };
    const runs: PanRun[] = [];
    await open('bench-5000.canvas');
    runs.push(await pan(page, '5,000 nodes, 100 %, culling on', BIG + 1, true, 1));
    runs.push(await pan(page, '5,000 nodes, 100 %, culling off', BIG + 1, false, 1));
    runs.push(await pan(page, '5,000 nodes, 30 % (text), culling on', BIG + 1, true, 0.3));
    runs.push(await pan(page, '5,000 nodes, 10 % (boxes), culling on', BIG + 1, true, 0.1));
    runs.push(await pan(page, '5,000 nodes, fit (all on screen)', BIG + 1, true, 'fit'));
    await open('bench-500.canvas');
    runs.push(await pan(page, '500 nodes, 100 %, culling on', SMALL + 1, true, 1));
    const [on, off] = runs;
    const small = runs[runs.length - 1];
    return {
      runs,
      ratios: {
        fps_culling_on_over_off: round(on.fps / off.fps, 2),
        draw_ms_culling_off_over_on: round(off.draw_ms_mean / on.draw_ms_mean, 1),
        fps_5000_over_500: round(on.fps / small.fps, 2),
      },
    };
  } finally {
    await browser.close();
    await server.close();
  }
}

export function printCanvasView(r: Awaited<ReturnType<typeof benchCanvasView>>): void {
  if ('skipped' in r) {
    out(`canvas view: skipped, ${r.skipped}`);
    return;
  }
  out(
    table([
      ['scenario', 'fps', 'draw ms/frame', 'cards drawn', 'zoom', 'frames'],
      ...r.runs.map((x) => [
        x.scenario,
        fmt(x.fps, 1),
        fmt(x.draw_ms_mean, 2),
        String(x.visible),
        fmt(x.zoom, 3),
        String(x.frames),
      ]),
    ]),
  );
  out(
    `culling on/off: ${fmt(r.ratios.fps_culling_on_over_off)}× the frames, ${fmt(r.ratios.draw_ms_culling_off_over_on, 1)}× less drawing time; 5,000/500 nodes: ${fmt(r.ratios.fps_5000_over_500)}× the frames`,
  );
}

/** Runs the section and writes bench/results/canvas-view.json (with the machine it ran on). */
export async function runCanvasViewBench(): Promise<Awaited<ReturnType<typeof benchCanvasView>>> {
  const loadBefore = os.loadavg();
  const r = await benchCanvasView();
  printCanvasView(r);
  writeBenchResult(
    'canvas-view',
    loadBefore,
    { pan: { duration_ms: PAN_MS, px_per_frame: PAN_STEP }, ...r },
    { browser: 'headless Chromium (--disable-gpu), viewport 1280×900, device pixel ratio 1' },
  );
  return r;
}

runWhenMain(module, runCanvasViewBench);
