// The task page's canvas view: the batch's canvas drawn as Obsidian lays it out, live.
//
// Drawn on one <canvas> with the 2D API, not as DOM/SVG elements: a 5,000-node canvas would be 5,000+ elements
// to lay out and style on every pan; here a frame is one pass over plain arrays that skips what lies outside the
// viewport (culling) and draws only boxes when text would be too small to read (level of detail). What the canvas
// says in pixels is also said in words: a list of the batch's nodes with their states, and the focus panel.
//
// Sources: GET /canvases/document (nodes and edges as in the file; read again after each task_completed, so result
// cards appear where the service wrote them), GET /parallel/status (the groups' node_ids; `running` polled while the
// task runs), and the task page's event stream (fed in with apply(); task_output_delta events with delta()).

const COLOR_VALUES = { 1: '#e03e3e', 2: '#e9973f', 3: '#e0c431', 4: '#44b556', 5: '#3fb0c8', 6: '#a371f7' };
const STATE_COLORS = {
  queued: '#55565c',
  running: '#2a4fbf',
  done: '#1f6f3a',
  failed: '#a4161a',
  skipped: '#8b8d94',
};
const TERMINAL = new Set(['completed', 'partial_failure', 'failed', 'cancelled']);
const BG = '#f7f7f5';
const CARD = '#ffffff';
const BORDER = '#b9bac0';
/** World units (canvas pixels at 100 %): font, line height, padding of a card's text. */
const FONT_PX = 16;
const LINE_PX = 24;
const PAD = 12;
/** Below this many screen pixels a font is not drawn (boxes only). */
const MIN_FONT_SCREEN_PX = 4;
const MIN_ZOOM = 0.02;
const MAX_ZOOM = 4;
/** Streamed text kept per node (characters): the tail is what the panel shows. */
const MAX_STREAM_CHARS = 200_000;
/** Nodes listed in words under the canvas (the rest are counted). */
const MAX_LISTED = 500;
const POLL_MS = 1000;
const RELOAD_MIN_MS = 400;
const FOCUS_COLOR = '#ffbf47';
/** Largest side of the far-out layer, in device pixels. */
const LAYER_MAX_PX = 4096;

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const esc = (text) => String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);

/** A node's colour as a CSS hex value: a preset "1"–"6", a hex colour, or `fallback`. */
export function colorOf(color, fallback) {
  const value = color ? (COLOR_VALUES[color] ?? color) : fallback;
  return /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(value) ? value : fallback;
}

/** `hex` mixed with white: `share` of the colour (an opaque tint, so what lies under a card never shows through). */
export function tint(hex, share) {
  const full = hex.length === 4 ? `#${[...hex.slice(1)].map((c) => c + c).join('')}` : hex;
  const n = Number.parseInt(full.slice(1), 16);
  const mix = (v) => Math.round(v * share + 255 * (1 - share));
  const rgb = [(n >> 16) & 255, (n >> 8) & 255, n & 255].map(mix);
  return `#${rgb.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
}

/** A card's fill: white, or its colour's tint. */
export function fillOf(node) {
  if (node.type === 'group') return undefined;
  return node.color ? tint(colorOf(node.color, '#888888'), 0.14) : CARD;
}

/** The lines a card shows: markdown markers dropped, headings bold, list items with a bullet. */
export function plainLines(node) {
  let source;
  if (node.type === 'text') source = typeof node.text === 'string' ? node.text : '';
  else if (node.type === 'file') {
    const file = typeof node.file === 'string' ? node.file : '';
    const cut = file.lastIndexOf('/');
    return [
      { text: file.slice(cut + 1) + (typeof node.subpath === 'string' ? node.subpath : ''), bold: true },
      { text: cut > 0 ? file.slice(0, cut) : 'file', muted: true },
    ];
  } else if (node.type === 'link') {
    return [
      { text: 'link', muted: true },
      { text: typeof node.url === 'string' ? node.url : '', bold: false },
    ];
  } else source = '';
  const lines = [];
  for (const raw of source.split('\n').slice(0, 60)) {
    let text = raw.trim();
    const heading = /^#{1,6}\s+/.test(text);
    text = text
      .replace(/^#{1,6}\s+/, '')
      .replace(/^[-*+]\s+/, '• ')
      .replace(/\*\*|__|`|\[\[|\]\]/g, '')
      .replace(/(^|\s)[*_](\S)/g, '$1$2')
      .replace(/(\S)[*_](\s|$)/g, '$1$2');
    lines.push({ text, bold: heading });
  }
  return lines;
}

/** Where an edge leaves or enters a node: the side's midpoint, and the side's outward direction. */
export function anchor(node, side) {
  const cx = node.x + node.width / 2;
  const cy = node.y + node.height / 2;
  switch (side) {
    case 'top':
      return { x: cx, y: node.y, nx: 0, ny: -1 };
    case 'bottom':
      return { x: cx, y: node.y + node.height, nx: 0, ny: 1 };
    case 'left':
      return { x: node.x, y: cy, nx: -1, ny: 0 };
    default:
      return { x: node.x + node.width, y: cy, nx: 1, ny: 0 };
  }
}

/** The side facing `other` (when the file names none): the axis along which the centres differ most. */
export function facingSide(node, other) {
  const dx = other.x + other.width / 2 - (node.x + node.width / 2);
  const dy = other.y + other.height / 2 - (node.y + node.height / 2);
  if (Math.abs(dx) >= Math.abs(dy)) return dx >= 0 ? 'right' : 'left';
  return dy >= 0 ? 'bottom' : 'top';
}

const SIDES = new Set(['top', 'right', 'bottom', 'left']);

/** An edge's curve in world units: start, two control points, end (as Obsidian draws it: leaving along the side). */
export function edgeCurve(edge, from, to) {
  const a = anchor(from, SIDES.has(edge.fromSide) ? edge.fromSide : facingSide(from, to));
  const b = anchor(to, SIDES.has(edge.toSide) ? edge.toSide : facingSide(to, from));
  const k = Math.min(150, Math.max(30, Math.hypot(b.x - a.x, b.y - a.y) / 2));
  return { a, b, c1: { x: a.x + a.nx * k, y: a.y + a.ny * k }, c2: { x: b.x + b.nx * k, y: b.y + b.ny * k } };
}

/** A point of a cubic Bézier at t. */
function bezier(p0, p1, p2, p3, t) {
  const u = 1 - t;
  return {
    x: u * u * u * p0.x + 3 * u * u * t * p1.x + 3 * u * t * t * p2.x + t * t * t * p3.x,
    y: u * u * u * p0.y + 3 * u * u * t * p1.y + 3 * u * t * t * p2.y + t * t * t * p3.y,
  };
}

/** A batch node's state from its (group) entries: running, then queued, failed, done, skipped. */
export function combinedState(entries) {
  for (const state of ['running', 'queued', 'failed', 'done', 'skipped']) {
    if (entries.some((e) => e.state === state)) return state;
  }
  return undefined;
}

/** What a node's badge says: the state, with the elapsed time of a running node or the error type of a failed one. */
export function stateLabel(entries, now) {
  const state = combinedState(entries);
  if (state === 'running') {
    const since = Math.min(...entries.filter((e) => e.state === 'running').map((e) => e.since ?? now));
    return `running ${(Math.max(0, now - since) / 1000).toFixed(1)} s`;
  }
  if (state === 'failed') return `failed · ${entries.find((e) => e.state === 'failed').errorType ?? 'error'}`;
  return state;
}

/**
 * Puts a streamed chunk at its offset in a node's streamed text `{ text, end, at, from }` (undefined: none yet):
 * appended when it continues the text, written over when it repeats a part, and after a gap marker when chunks in
 * between were dropped (a slow subscriber loses deltas, never events; a page that opens while a node writes gets
 * its text from there on). `end` is the output offset where `text` ends; after a gap `text` holds a marker and not
 * what was missed, so offsets are counted from the text after the last gap: output offset `at` is `text[from]`.
 * An offset before that (the output started over: a retried call restarts at 0) starts the text again. Keeps at
 * most the last `max` characters.
 */
export function applyChunk(stream, offset, chunk, max = Infinity) {
  const s = stream ?? { text: '', end: 0, at: 0, from: 0 };
  let next;
  if (offset === s.end) next = { ...s, text: s.text + chunk, end: s.end + chunk.length };
  else if (offset > s.end) {
    const kept = `${s.text}${s.text ? '\n' : ''}[…]\n`;
    next = { text: kept + chunk, end: offset + chunk.length, at: offset, from: kept.length };
  } else if (offset >= s.at) {
    next = { ...s, text: s.text.slice(0, s.from + offset - s.at) + chunk, end: offset + chunk.length };
  } else return applyChunk(undefined, offset, chunk, max);
  if (next.text.length > max) {
    const cut = next.text.length - max;
    next.text = next.text.slice(cut);
    if (cut > next.from) next.at += cut - next.from;
    next.from = Math.max(0, next.from - cut);
  }
  return next;
}

/**
 * Mounts the view in `root`. `task`: the status the page loaded (task_id, canvas_path, status, groups).
 * `api(method, path)` answers parsed JSON (problem+json thrown). Returns { apply, delta, destroy }.
 */
export function mountCanvasView(root, { task, api }) {
  const taskId = task.task_id;
  const canvasPath = task.canvas_path;
  root.classList.add('canvas-view');
  root.innerHTML = `<h3 id="cv-heading">Canvas</h3>
    <div class="cv-layout">
      <div class="cv-stage">
        <div class="cv-toolbar" role="toolbar" aria-label="Canvas view">
          <button type="button" class="secondary" data-cv="in" aria-label="Zoom in">+</button>
          <button type="button" class="secondary" data-cv="out" aria-label="Zoom out">−</button>
          <button type="button" class="secondary" data-cv="fit">Fit</button>
          <button type="button" class="secondary" data-cv="actual">100 %</button>
          <span class="muted cv-zoom" aria-live="off"></span>
          <span class="muted cv-hint">Drag to pan · wheel or pinch to zoom · click a node</span>
        </div>
        <canvas class="cv-canvas" tabindex="0" role="img" aria-roledescription="canvas"
          aria-label="${esc(canvasPath)}: the batch's canvas; its nodes and states are listed below"></canvas>
        <p class="legend muted cv-legend" aria-hidden="true">${Object.entries(STATE_COLORS)
          .map(([s]) => `<span class="key cv-key-${s}"></span> ${s}`)
          .join(' ')}</p>
        <p class="muted cv-status" role="status"></p>
      </div>
      <aside class="cv-focus card" aria-labelledby="cv-focus-title" tabindex="-1">
        <h4 id="cv-focus-title">Node in focus</h4>
        <div class="cv-focus-body"><p class="muted">Click a node of the canvas (or of the list below).</p></div>
        <div class="cv-stream" hidden><h5>Being written</h5><pre class="cv-stream-text" aria-live="off"></pre></div>
      </aside>
    </div>
    <details class="cv-list-box"><summary>Nodes of this batch, in words</summary><ul class="cv-list"></ul></details>`;
  const canvas = root.querySelector('canvas');
  /** The context drawn into: the <canvas>'s, or an offscreen layer's while one is made. */
  let ctx = canvas.getContext('2d', { alpha: false });
  const statusLine = root.querySelector('.cv-status');
  const zoomLabel = root.querySelector('.cv-zoom');
  const focusBody = root.querySelector('.cv-focus-body');
  const streamBox = root.querySelector('.cv-stream');
  const streamText = root.querySelector('.cv-stream-text');
  const list = root.querySelector('.cv-list');
  const reducedMotion = window.matchMedia?.('(prefers-reduced-motion: reduce)').matches ?? false;

  /** The canvas as last read: nodes in draw order (groups first, then the rest, each in file order). */
  let nodes = [];
  let edges = [];
  let byId = new Map();
  let generated = new Set();
  let loaded = false;
  /** Per node id: its entries, one per group that runs it: { group, state, since, errorType, errorMessage, filePath }. */
  const batch = new Map();
  for (const g of task.groups) {
    for (const id of g.node_ids ?? []) {
      if (!batch.has(id)) batch.set(id, []);
      batch.get(id).push({ group: String(g.group_id), agent: g.agent_type, state: 'queued' });
    }
  }
  for (const g of task.groups) {
    for (const r of g.running ?? []) {
      const e = batch.get(r.node_id)?.find((x) => x.group === String(g.group_id));
      if (e) Object.assign(e, { state: 'running', since: Date.parse(r.started_at) });
    }
  }
  let taskStatus = task.status;
  /** Streamed text per node, and the node it last came for. */
  const streams = new Map();
  let lastStreamed;
  let selected;
  const view = { zoom: 1, tx: 0, ty: 0 };
  let culling = true;
  let width = 0;
  let height = 0;
  let dpr = 1;
  /** Until the user pans or zooms, the view fits the canvas again as it grows (result cards are added). */
  let userMoved = false;
  let frame = 0;
  let drawn = 0;
  let visibleCount = 0;
  let destroyed = false;
  /** Bumped when the canvas is read again: a far-out layer of an older read is made again. */
  let version = 0;
  const layer = { zoom: 0, version: -1, canvas: undefined, x0: 0, y0: 0, width: 0, height: 0, count: 0 };
  let tickTimer;
  /** Whether an entry is running (counted again after a change, once per frame). */
  let running = false;
  let runningDirty = true;
  const stats = { frames: 0, drawMs: 0, reloads: 0 };

  // -------------------------------------------------------------------------------------------------------------
  // drawing

  const scheduleDraw = () => {
    if (!frame && !destroyed) frame = window.requestAnimationFrame(draw);
  };

  function resize() {
    const rect = canvas.getBoundingClientRect();
    dpr = window.devicePixelRatio || 1;
    width = Math.max(1, Math.round(rect.width));
    height = Math.max(1, Math.round(rect.height));
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    if (loaded && !userMoved) fit();
    scheduleDraw();
  }

  function draw() {
    frame = 0;
    const started = window.performance.now();
    const now = Date.now();
    const { zoom, tx, ty } = view;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = BG;
    ctx.fillRect(0, 0, width, height);
    // the world rectangle on screen, with a margin for badges and strokes
    const margin = 40 / zoom;
    const vx0 = -tx / zoom - margin;
    const vy0 = -ty / zoom - margin;
    const vx1 = (width - tx) / zoom + margin;
    const vy1 = (height - ty) / zoom + margin;
    const inView = (x0, y0, x1, y1) => !culling || (x1 >= vx0 && x0 <= vx1 && y1 >= vy0 && y0 <= vy1);
    const textOn = FONT_PX * zoom >= MIN_FONT_SCREEN_PX;
    const px = 1 / zoom; // one screen pixel in world units
    if (!textOn && culling && layerFor(zoom)) {
      // far out, the whole canvas is one picture at this zoom: a pan moves it, nothing is drawn again
      ctx.drawImage(layer.canvas, layer.x0 * zoom + tx, layer.y0 * zoom + ty, layer.width, layer.height);
      visibleCount = layer.count;
    } else {
      ctx.setTransform(dpr * zoom, 0, 0, dpr * zoom, dpr * tx, dpr * ty);
      visibleCount = drawScene(inView, textOn, px, zoom);
    }
    ctx.setTransform(dpr * zoom, 0, 0, dpr * zoom, dpr * tx, dpr * ty);
    // batch states and the selection, over everything
    for (const [id, entries] of batch) {
      const n = byId.get(id);
      if (n && inView(n.x, n.y, n.x + n.width, n.y + n.height)) drawState(n, entries, now, px, textOn);
    }
    const focus = byId.get(selected);
    if (focus) {
      ctx.strokeStyle = FOCUS_COLOR;
      ctx.lineWidth = 4 * px;
      ctx.strokeRect(focus.x - 9 * px, focus.y - 9 * px, focus.width + 18 * px, focus.height + 18 * px);
    }
    drawn++;
    stats.frames++;
    stats.drawMs += window.performance.now() - started;
    zoomLabel.textContent = `${Math.round(zoom * 100)} %`;
    // a running node's clock ticks (and its ring turns)
    if (runningDirty) {
      running = [...batch.values()].some((es) => es.some((e) => e.state === 'running'));
      runningDirty = false;
    }
    if (running) {
      tickTimer ??= setTimeout(
        () => {
          tickTimer = undefined;
          scheduleDraw();
          tickFocus();
        },
        reducedMotion ? 500 : 100,
      );
    }
  }

  /** The running clocks of the focus panel and of the list in words. */
  function tickFocus() {
    const now = Date.now();
    for (const el of list.querySelectorAll('[data-running]')) {
      const es = batch.get(el.dataset.running);
      if (es) el.textContent = stateLabel(es, now);
    }
    for (const li of focusBody.querySelectorAll('li[data-group]')) {
      const x = entry(selected, li.dataset.group);
      if (x?.state === 'running') li.querySelector('.cv-state').textContent = stateLabel([x], now);
    }
  }

  /** Groups, edges and cards (what does not change with the batch's states), through `ctx`'s transform. */
  function drawScene(inView, textOn, px, zoom) {
    let count = 0;
    let i = 0;
    // groups (below everything, as Obsidian draws them)
    for (; i < nodes.length && nodes[i].type === 'group'; i++) {
      const n = nodes[i];
      if (!inView(n.x, n.y, n.x + n.width, n.y + n.height)) continue;
      count++;
      const c = colorOf(n.color, '#9a9ba3');
      ctx.fillStyle = tint(c, 0.08);
      ctx.strokeStyle = c;
      ctx.lineWidth = Math.max(2, px);
      ctx.beginPath();
      ctx.roundRect(n.x, n.y, n.width, n.height, 12);
      ctx.fill();
      ctx.stroke();
      if (textOn && typeof n.label === 'string' && n.label) {
        ctx.font = `600 ${FONT_PX * 1.1}px system-ui, sans-serif`;
        ctx.fillStyle = '#1b1b1f';
        ctx.textBaseline = 'bottom';
        ctx.fillText(n.label, n.x + 4, n.y - 6, n.width);
      }
    }
    const firstCard = i;
    // edges, under the cards they join: one path per colour (a stroke call per edge costs more than its curve)
    const byColor = new Map();
    const labels = [];
    const arrowSize = Math.max(12, px * 8);
    const arrows = arrowSize * zoom >= 3;
    for (const e of edges) {
      const from = byId.get(e.fromNode);
      const to = byId.get(e.toNode);
      if (!from || !to) continue;
      const cv = edgeCurve(e, from, to);
      if (
        culling &&
        !inView(
          Math.min(cv.a.x, cv.b.x, cv.c1.x, cv.c2.x),
          Math.min(cv.a.y, cv.b.y, cv.c1.y, cv.c2.y),
          Math.max(cv.a.x, cv.b.x, cv.c1.x, cv.c2.x),
          Math.max(cv.a.y, cv.b.y, cv.c1.y, cv.c2.y),
        )
      )
        continue;
      const color = colorOf(e.color, '#7b7c84');
      let bucket = byColor.get(color);
      if (!bucket) byColor.set(color, (bucket = []));
      bucket.push(e, cv);
      if (textOn && typeof e.label === 'string' && e.label) labels.push(e.label, cv);
    }
    ctx.lineWidth = Math.max(2, px * 1.5);
    for (const [color, bucket] of byColor) {
      ctx.strokeStyle = color;
      ctx.fillStyle = color;
      ctx.beginPath();
      for (let k = 1; k < bucket.length; k += 2) {
        const cv = bucket[k];
        ctx.moveTo(cv.a.x, cv.a.y);
        ctx.bezierCurveTo(cv.c1.x, cv.c1.y, cv.c2.x, cv.c2.y, cv.b.x, cv.b.y);
      }
      ctx.stroke();
      if (!arrows) continue;
      ctx.beginPath();
      for (let k = 0; k < bucket.length; k += 2) {
        const e = bucket[k];
        const cv = bucket[k + 1];
        if ((e.toEnd ?? 'arrow') === 'arrow') arrow(cv.b, arrowSize);
        if (e.fromEnd === 'arrow') arrow(cv.a, arrowSize);
      }
      ctx.fill();
    }
    if (labels.length) {
      ctx.font = `${FONT_PX * 0.9}px system-ui, sans-serif`;
      ctx.textBaseline = 'middle';
      ctx.textAlign = 'center';
      for (let k = 0; k < labels.length; k += 2) {
        const cv = labels[k + 1];
        const mid = bezier(cv.a, cv.c1, cv.c2, cv.b, 0.5);
        const w = ctx.measureText(labels[k]).width + 12;
        ctx.fillStyle = BG;
        ctx.fillRect(mid.x - w / 2, mid.y - 11, w, 22);
        ctx.fillStyle = '#1b1b1f';
        ctx.fillText(labels[k], mid.x, mid.y);
      }
      ctx.textAlign = 'left';
    }
    // cards
    if (!textOn) {
      // far out: boxes only, one path per fill and per border colour
      const fills = new Map();
      const borders = new Map();
      const add = (map, key, n) => {
        const list = map.get(key);
        if (list) list.push(n);
        else map.set(key, [n]);
      };
      for (i = firstCard; i < nodes.length; i++) {
        const n = nodes[i];
        if (!inView(n.x, n.y, n.x + n.width, n.y + n.height)) continue;
        count++;
        add(fills, n.fill, n);
        add(borders, n.color ? colorOf(n.color, BORDER) : BORDER, n);
      }
      for (const [fill, list] of fills) {
        ctx.fillStyle = fill;
        ctx.beginPath();
        for (const n of list) ctx.rect(n.x, n.y, n.width, n.height);
        ctx.fill();
      }
      ctx.lineWidth = 2 * px;
      for (const [color, list] of borders) {
        ctx.strokeStyle = color;
        ctx.beginPath();
        for (const n of list) ctx.rect(n.x, n.y, n.width, n.height);
        ctx.stroke();
      }
    } else {
      for (i = firstCard; i < nodes.length; i++) {
        const n = nodes[i];
        if (!inView(n.x, n.y, n.x + n.width, n.y + n.height)) continue;
        count++;
        ctx.fillStyle = n.fill;
        ctx.beginPath();
        ctx.roundRect(n.x, n.y, n.width, n.height, 8);
        ctx.fill();
        ctx.strokeStyle = n.color ? colorOf(n.color, BORDER) : BORDER;
        ctx.lineWidth = Math.max(2, px);
        if (generated.has(n.id)) ctx.setLineDash([8, 5]);
        ctx.stroke();
        ctx.setLineDash([]);
        drawText(n);
      }
    }
    return count;
  }

  /**
   * The whole canvas drawn once at `zoom` into an offscreen bitmap (when it is at most LAYER_MAX_PX a side), kept
   * until the zoom or the canvas changes. Returns whether there is one.
   */
  function layerFor(zoom) {
    if (layer.zoom === zoom && layer.version === version) return layer.canvas !== undefined;
    layer.zoom = zoom;
    layer.version = version;
    layer.canvas = undefined;
    let x0 = Infinity;
    let y0 = Infinity;
    let x1 = -Infinity;
    let y1 = -Infinity;
    for (const n of nodes) {
      x0 = Math.min(x0, n.x);
      y0 = Math.min(y0, n.y);
      x1 = Math.max(x1, n.x + n.width);
      y1 = Math.max(y1, n.y + n.height);
    }
    // room for strokes and edges bending out of the cards' box
    const pad = 160;
    x0 -= pad;
    y0 -= pad;
    x1 += pad;
    y1 += pad;
    const w = Math.ceil((x1 - x0) * zoom);
    const h = Math.ceil((y1 - y0) * zoom);
    if (!(w > 0 && h > 0) || w * dpr > LAYER_MAX_PX || h * dpr > LAYER_MAX_PX) return false;
    const bitmap = document.createElement('canvas');
    bitmap.width = Math.ceil(w * dpr);
    bitmap.height = Math.ceil(h * dpr);
    const main = ctx;
    ctx = bitmap.getContext('2d');
    ctx.setTransform(dpr * zoom, 0, 0, dpr * zoom, -x0 * zoom * dpr, -y0 * zoom * dpr);
    layer.count = drawScene(() => true, false, 1 / zoom, zoom);
    ctx = main;
    Object.assign(layer, { canvas: bitmap, x0, y0, width: w, height: h });
    return true;
  }

  function arrow(tip, size) {
    // the arrow points into the node: against the side's outward direction
    const dx = -tip.nx;
    const dy = -tip.ny;
    ctx.beginPath();
    ctx.moveTo(tip.x, tip.y);
    ctx.lineTo(tip.x - dx * size - dy * size * 0.5, tip.y - dy * size + dx * size * 0.5);
    ctx.lineTo(tip.x - dx * size + dy * size * 0.5, tip.y - dy * size - dx * size * 0.5);
    ctx.closePath();
    ctx.fill();
  }

  function drawText(n) {
    if (!n.lines) n.lines = wrap(n);
    ctx.save();
    ctx.beginPath();
    ctx.rect(n.x + PAD, n.y + PAD, n.width - 2 * PAD, n.height - 2 * PAD);
    ctx.clip();
    ctx.textBaseline = 'top';
    let y = n.y + PAD;
    for (const line of n.lines) {
      ctx.font = `${line.bold ? '700 ' : ''}${FONT_PX}px system-ui, sans-serif`;
      ctx.fillStyle = line.muted ? '#55565c' : '#1b1b1f';
      ctx.fillText(line.text, n.x + PAD, y + 4);
      y += LINE_PX;
    }
    ctx.restore();
  }

  /** The card's first lines, wrapped to its width (measured once per card and kept). */
  function wrap(n) {
    const maxWidth = n.width - 2 * PAD;
    const maxLines = Math.max(1, Math.floor((n.height - 2 * PAD) / LINE_PX));
    const out = [];
    for (const line of plainLines(n)) {
      ctx.font = `${line.bold ? '700 ' : ''}${FONT_PX}px system-ui, sans-serif`;
      let current = '';
      for (const word of line.text.split(/\s+/)) {
        const next = current ? `${current} ${word}` : word;
        if (current && ctx.measureText(next).width > maxWidth) {
          out.push({ ...line, text: current });
          current = word;
          if (out.length >= maxLines) return out;
        } else current = next;
      }
      out.push({ ...line, text: current });
      if (out.length >= maxLines) return out;
    }
    return out;
  }

  function drawState(n, entries, now, px, textOn) {
    const state = combinedState(entries);
    const color = STATE_COLORS[state];
    ctx.strokeStyle = color;
    ctx.lineWidth = 3 * px;
    if (state === 'running') {
      ctx.setLineDash([10 * px, 6 * px]);
      ctx.lineDashOffset = reducedMotion ? 0 : -(now / 40) * px;
    } else if (state === 'queued' || state === 'skipped') ctx.setLineDash([4 * px, 4 * px]);
    ctx.strokeRect(n.x - 5 * px, n.y - 5 * px, n.width + 10 * px, n.height + 10 * px);
    ctx.setLineDash([]);
    if (!textOn && view.zoom < 0.1) return;
    // the badge: the state in words, above the card's left corner, a constant size on screen
    ctx.font = `600 ${12 * px}px system-ui, sans-serif`;
    // no wider than the card (neighbours' badges stay readable): the state word alone when the whole is too long
    let label = stateLabel(entries, now);
    if (ctx.measureText(label).width + 12 * px > n.width + 10 * px) label = state;
    const w = ctx.measureText(label).width + 12 * px;
    const h = 18 * px;
    const x = n.x - 5 * px;
    const y = n.y - 8 * px - h;
    ctx.fillStyle = color;
    ctx.fillRect(x, y, w, h);
    ctx.fillStyle = '#ffffff';
    ctx.textBaseline = 'middle';
    ctx.fillText(label, x + 6 * px, y + h / 2 + px);
  }

  // -------------------------------------------------------------------------------------------------------------
  // view transform

  const toScreen = (x, y) => ({ x: x * view.zoom + view.tx, y: y * view.zoom + view.ty });
  const toWorld = (sx, sy) => ({ x: (sx - view.tx) / view.zoom, y: (sy - view.ty) / view.zoom });

  function zoomAt(factor, sx = width / 2, sy = height / 2) {
    const zoom = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, view.zoom * factor));
    const w = toWorld(sx, sy);
    view.zoom = zoom;
    view.tx = sx - w.x * zoom;
    view.ty = sy - w.y * zoom;
    userMoved = true;
    scheduleDraw();
  }

  function fit() {
    if (nodes.length === 0) return;
    let x0 = Infinity;
    let y0 = Infinity;
    let x1 = -Infinity;
    let y1 = -Infinity;
    for (const n of nodes) {
      x0 = Math.min(x0, n.x);
      y0 = Math.min(y0, n.y - (n.type === 'group' ? 30 : 0));
      x1 = Math.max(x1, n.x + n.width);
      y1 = Math.max(y1, n.y + n.height);
    }
    const pad = 40;
    const zoom = Math.min(
      MAX_ZOOM,
      Math.max(
        MIN_ZOOM,
        Math.min((width - 2 * pad) / (x1 - x0 || 1), (height - 2 * pad) / (y1 - y0 || 1), 1),
      ),
    );
    view.zoom = zoom;
    view.tx = (width - (x1 - x0) * zoom) / 2 - x0 * zoom;
    view.ty = (height - (y1 - y0) * zoom) / 2 - y0 * zoom;
    scheduleDraw();
  }

  /** Fits, and follows the canvas again as it grows (until the next pan or zoom). */
  function refit() {
    userMoved = false;
    fit();
  }

  function panBy(dx, dy) {
    view.tx += dx;
    view.ty += dy;
    userMoved = true;
    scheduleDraw();
  }

  /** The top-most node under a screen point (cards over groups). */
  function hit(sx, sy) {
    const p = toWorld(sx, sy);
    const inside = (n) => p.x >= n.x && p.x <= n.x + n.width && p.y >= n.y && p.y <= n.y + n.height;
    for (let i = nodes.length - 1; i >= 0; i--) if (inside(nodes[i])) return nodes[i];
    return undefined;
  }

  // -------------------------------------------------------------------------------------------------------------
  // input: drag to pan, wheel and pinch to zoom, click to focus, keys

  const pointers = new Map();
  let dragged = 0;
  let pinch;
  canvas.addEventListener('pointerdown', (e) => {
    canvas.setPointerCapture(e.pointerId);
    pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    dragged = 0;
    if (pointers.size === 2) {
      const [a, b] = [...pointers.values()];
      pinch = Math.hypot(a.x - b.x, a.y - b.y);
    }
  });
  canvas.addEventListener('pointermove', (e) => {
    const last = pointers.get(e.pointerId);
    if (!last) return;
    const dx = e.clientX - last.x;
    const dy = e.clientY - last.y;
    pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    if (pointers.size === 2) {
      const [a, b] = [...pointers.values()];
      const d = Math.hypot(a.x - b.x, a.y - b.y);
      const rect = canvas.getBoundingClientRect();
      if (pinch) zoomAt(d / pinch, (a.x + b.x) / 2 - rect.left, (a.y + b.y) / 2 - rect.top);
      pinch = d;
      dragged += 10;
      return;
    }
    dragged += Math.abs(dx) + Math.abs(dy);
    panBy(dx, dy);
  });
  const release = (e) => {
    const was = pointers.get(e.pointerId);
    pointers.delete(e.pointerId);
    if (pointers.size < 2) pinch = undefined;
    if (was && e.type === 'pointerup' && dragged < 5 && pointers.size === 0) {
      const rect = canvas.getBoundingClientRect();
      const n = hit(e.clientX - rect.left, e.clientY - rect.top);
      if (n) select(n.id);
    }
  };
  canvas.addEventListener('pointerup', release);
  canvas.addEventListener('pointercancel', release);
  canvas.addEventListener(
    'wheel',
    (e) => {
      e.preventDefault();
      const rect = canvas.getBoundingClientRect();
      // a pinch on a touchpad comes as a wheel with ctrlKey, in finer steps
      zoomAt(Math.exp(-e.deltaY * (e.ctrlKey ? 0.01 : 0.0015)), e.clientX - rect.left, e.clientY - rect.top);
    },
    { passive: false },
  );
  canvas.addEventListener('keydown', (e) => {
    const step = 60;
    const keys = {
      ArrowLeft: () => panBy(step, 0),
      ArrowRight: () => panBy(-step, 0),
      ArrowUp: () => panBy(0, step),
      ArrowDown: () => panBy(0, -step),
      '+': () => zoomAt(1.25),
      '=': () => zoomAt(1.25),
      '-': () => zoomAt(0.8),
      0: () => refit(),
    };
    const act = keys[e.key];
    if (!act) return;
    e.preventDefault();
    act();
  });
  root.querySelector('.cv-toolbar').addEventListener('click', (e) => {
    const action = e.target.closest('[data-cv]')?.dataset.cv;
    if (action === 'in') zoomAt(1.25);
    else if (action === 'out') zoomAt(0.8);
    else if (action === 'fit') refit();
    else if (action === 'actual') zoomAt(1 / view.zoom);
  });
  list.addEventListener('click', (e) => {
    const id = e.target.closest('[data-node]')?.dataset.node;
    if (!id) return;
    select(id);
    const n = byId.get(id);
    if (n) {
      // bring it to the middle of the view
      const c = toScreen(n.x + n.width / 2, n.y + n.height / 2);
      panBy(width / 2 - c.x, height / 2 - c.y);
    }
  });

  const observer = new window.ResizeObserver(() => resize());
  observer.observe(canvas);

  // -------------------------------------------------------------------------------------------------------------
  // the canvas file, the batch's states

  let reloading = false;
  let reloadAgain = false;
  let lastReload = 0;
  let reloadTimer;

  async function load() {
    const docJson = await api('GET', `/canvases/document?path=${encodeURIComponent(canvasPath)}`);
    const all = docJson.nodes.filter(
      (n) => [n.x, n.y, n.width, n.height].every(Number.isFinite) && typeof n.id === 'string',
    );
    const next = [...all.filter((n) => n.type === 'group'), ...all.filter((n) => n.type !== 'group')];
    for (const n of next) n.fill = fillOf(n);
    nodes = next;
    byId = new Map(nodes.map((n) => [n.id, n]));
    edges = docJson.edges;
    generated = new Set(docJson.generated);
    version++;
    loaded = true;
    stats.reloads++;
    if (!userMoved && width > 1) fit();
    scheduleDraw();
    renderList();
  }

  /** Reads the canvas again (after a result was placed): at most one read at a time, at most every 400 ms. */
  function reload() {
    if (reloading) {
      reloadAgain = true;
      return;
    }
    const wait = lastReload + RELOAD_MIN_MS - Date.now();
    if (wait > 0) {
      reloadTimer ??= setTimeout(() => {
        reloadTimer = undefined;
        reload();
      }, wait);
      return;
    }
    reloading = true;
    lastReload = Date.now();
    load()
      .catch((err) => (statusLine.textContent = `Could not read the canvas again: ${err.message}`))
      .finally(() => {
        reloading = false;
        if (reloadAgain && !destroyed) {
          reloadAgain = false;
          reload();
        }
      });
  }

  const entry = (nodeId, groupId) => batch.get(nodeId)?.find((e) => e.group === String(groupId));

  function settle(nodeId, groupId, patch) {
    const e = entry(nodeId, groupId);
    if (!e) return;
    Object.assign(e, patch);
    changed(nodeId);
  }

  let listTimer;
  function changed(nodeId) {
    runningDirty = true;
    scheduleDraw();
    listTimer ??= setTimeout(() => {
      listTimer = undefined;
      renderList();
    }, 300);
    if (nodeId === selected) renderFocus();
    if (nodeId === (selected ?? lastStreamed)) renderStream();
  }

  /** The batch's nodes in words (state, error type), so nothing is said by colour alone. */
  function renderList() {
    const ids = [...batch.keys()];
    const now = Date.now();
    list.innerHTML =
      ids
        .slice(0, MAX_LISTED)
        .map((id) => {
          const n = byId.get(id);
          const title = n ? (plainLines(n)[0]?.text ?? id) : id;
          const label = stateLabel(batch.get(id), now);
          const state = combinedState(batch.get(id));
          // a running node's label is kept ticking by tickFocus (the list itself is rebuilt only on a state change)
          const ticking = state === 'running' ? ` data-running="${esc(id)}"` : '';
          return `<li><button type="button" class="link-like" data-node="${esc(id)}" data-state="${esc(state)}">${esc(title.slice(0, 80))}</button> <span class="muted">· <span${ticking}>${esc(label)}</span> · <span class="mono">${esc(id)}</span></span></li>`;
        })
        .join('') +
      (ids.length > MAX_LISTED ? `<li class="muted">… and ${ids.length - MAX_LISTED} more</li>` : '');
    const counts = {};
    for (const es of batch.values()) {
      const s = combinedState(es);
      counts[s] = (counts[s] ?? 0) + 1;
    }
    statusLine.textContent = `${ids.length} node(s) in this batch: ${Object.entries(counts)
      .map(([s, c]) => `${c} ${s}`)
      .join(', ')}`;
  }

  /** Running nodes, polled from the status while the task runs (the stream has no event for a node's start). */
  let pollTimer;
  async function poll() {
    pollTimer = undefined;
    if (destroyed || TERMINAL.has(taskStatus)) return;
    try {
      const status = await api('GET', `/parallel/status/${encodeURIComponent(taskId)}?view=summary`);
      for (const g of status.groups) {
        for (const r of g.running ?? []) {
          const e = entry(r.node_id, g.group_id);
          if (e?.state === 'queued') {
            e.state = 'running';
            e.since = Date.parse(r.started_at);
            changed(r.node_id);
          }
        }
      }
    } catch {
      // the next poll tries again; the stream still carries outcomes
    }
    if (!destroyed && !TERMINAL.has(taskStatus)) pollTimer = setTimeout(() => void poll(), POLL_MS);
  }

  /** A task event from the page's stream (`data:` JSON, its `type` selecting `data`'s members). */
  function apply(e) {
    const d = e.data;
    switch (e.type) {
      case 'task_completed':
        settle(d.node_id, d.group_id, {
          state: 'done',
          filePath: d.file_path,
          durationMs: d.duration_ms,
          at: Date.parse(e.timestamp),
        });
        reload();
        break;
      case 'task_failed':
        settle(d.node_id, d.group_id, {
          state: 'failed',
          errorType: d.error_type,
          errorMessage: d.error_message,
        });
        break;
      case 'session_completed':
        taskStatus = d.status;
        for (const [id, es] of batch) {
          for (const x of es) if (x.state === 'queued' || x.state === 'running') x.state = 'skipped';
          changed(id);
        }
        clearTimeout(pollTimer);
        reload();
        break;
      default:
        break;
    }
  }

  /** A `task_output_delta` event: the text an agent is writing for a node, chunk by chunk. */
  function delta(e) {
    const d = e.data ?? e;
    if (typeof d.node_id !== 'string' || typeof d.text !== 'string') return;
    streams.set(
      d.node_id,
      applyChunk(streams.get(d.node_id), Number(d.offset) || 0, d.text, MAX_STREAM_CHARS),
    );
    lastStreamed = d.node_id;
    const x = entry(d.node_id, d.group_id);
    if (x?.state === 'queued') {
      x.state = 'running';
      x.since = Date.now();
      changed(d.node_id);
    }
    renderStream();
  }

  /**
   * The node whose streamed text shows: the selected one, else the one that streamed last; until it is done, when
   * its result (the source of truth, in the preview) takes its place.
   */
  function renderStream() {
    const id = selected ?? lastStreamed;
    const text = id === undefined ? undefined : streams.get(id)?.text;
    const state = combinedState(batch.get(id) ?? []);
    streamBox.hidden = text === undefined || state === 'done';
    if (streamBox.hidden) return;
    const what =
      { failed: 'Written before it failed', skipped: 'Written before it stopped' }[state] ?? 'Being written';
    streamBox.querySelector('h5').textContent = selected ? what : `${what} (node ${id})`;
    streamText.textContent = text;
    streamText.scrollTop = streamText.scrollHeight;
  }

  // -------------------------------------------------------------------------------------------------------------
  // the focus panel

  let focusRequest = 0;
  function select(id) {
    selected = id;
    scheduleDraw();
    renderFocus();
    renderStream();
  }

  async function renderFocus() {
    const request = ++focusRequest;
    const n = byId.get(selected);
    const entries = batch.get(selected) ?? [];
    const now = Date.now();
    const title = n ? (plainLines(n)[0]?.text ?? selected) : selected;
    const rows = entries
      .map(
        (x) =>
          `<li data-group="${esc(x.group)}"><strong class="cv-state cv-state-${esc(x.state)}">${esc(
            stateLabel([x], now),
          )}</strong> · group ${esc(x.group)} (${esc(x.agent)})${x.errorMessage ? `<br><span class="cv-error">${esc(x.errorMessage)}</span>` : ''}<span class="cv-attempts"></span></li>`,
      )
      .join('');
    focusBody.innerHTML = `<p class="cv-focus-name"><strong>${esc(title.slice(0, 120))}</strong><br>
      <span class="muted">${esc(n?.type ?? 'node')} · <span class="mono">${esc(selected)}</span>${
        generated.has(selected) ? ' · added by the service' : ''
      }</span></p>
      ${entries.length ? `<ul class="cv-entries">${rows}</ul>` : '<p class="muted">Not a node of this batch.</p>'}
      <div class="cv-preview"></div>`;
    const preview = focusBody.querySelector('.cv-preview');
    const failed = entries.filter((x) => x.state === 'failed');
    if (failed.length) void attempts(request, failed);
    // a result, or a file card (a note, a result card): its markdown rendered by the server; a failed node's own
    // note is not opened (its error says why it could not be read)
    const file =
      entries.find((x) => x.filePath)?.filePath ??
      (n?.type === 'file' && !failed.length ? n.file : undefined);
    if (typeof file === 'string' && /\.md$/i.test(file)) {
      preview.innerHTML = `<p class="muted">Loading ${esc(file)}…</p>`;
      try {
        const res = await fetch(`/files?path=${encodeURIComponent(file)}&format=html`, {
          credentials: 'same-origin',
        });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const html = await res.text();
        if (request !== focusRequest) return;
        preview.innerHTML = `<p class="muted"><a href="/files?path=${encodeURIComponent(file)}">${esc(file)}</a></p>
          <article class="markdown cv-preview-body"></article>`;
        const t = document.createElement('template');
        t.innerHTML = html;
        // KaTeX's layout styles come as data-style: set through the CSSOM (the CSP allows no style attributes)
        for (const el of t.content.querySelectorAll('.katex [data-style], .katex-error[data-style]')) {
          el.style.cssText = el.dataset.style;
        }
        preview.querySelector('article').append(t.content);
      } catch (err) {
        if (request === focusRequest)
          preview.innerHTML = `<p class="error">Could not open ${esc(file)}: ${esc(err.message)}</p>`;
      }
    } else if (n?.type === 'text' && typeof n.text === 'string') {
      preview.innerHTML = `<pre class="cv-node-text"></pre>`;
      preview.querySelector('pre').textContent = n.text.slice(0, 4000);
    }
  }

  /** A failed node's attempts (provider calls, retries included): in the status, not in its event. */
  async function attempts(request, failed) {
    try {
      const status = await api('GET', `/parallel/status/${encodeURIComponent(taskId)}`);
      if (request !== focusRequest) return;
      for (const x of failed) {
        const g = status.groups.find((y) => String(y.group_id) === x.group);
        const err = g?.errors.find((y) => y.node_id === selected);
        const li = focusBody.querySelector(`li[data-group="${window.CSS.escape(x.group)}"] .cv-attempts`);
        if (err && li) li.textContent = ` · ${err.attempts} attempt(s)`;
      }
    } catch {
      // the error itself is shown already
    }
  }

  // -------------------------------------------------------------------------------------------------------------

  /** Read-only view of what is drawn, for tests and the bench (positions in CSS pixels of the <canvas>). */
  const debug = {
    get loaded() {
      return loaded;
    },
    transform: () => ({ ...view, width, height }),
    nodes: () =>
      nodes.map((n) => {
        const p = toScreen(n.x, n.y);
        const entries = batch.get(n.id);
        return {
          id: n.id,
          type: n.type,
          x: n.x,
          y: n.y,
          width: n.width,
          height: n.height,
          color: n.color,
          file: n.file,
          fill: n.fill,
          generated: generated.has(n.id),
          screen: { left: p.x, top: p.y, width: n.width * view.zoom, height: n.height * view.zoom },
          state: entries ? combinedState(entries) : undefined,
          label: entries ? stateLabel(entries, Date.now()) : undefined,
        };
      }),
    edges: () => edges.map((e) => ({ id: e.id, fromNode: e.fromNode, toNode: e.toNode, label: e.label })),
    stats: () => ({ ...stats, drawn, visible: visibleCount, total: nodes.length }),
    selected: () => selected,
    stream: (id) => streams.get(id)?.text,
    setCulling: (on) => {
      culling = !!on;
      scheduleDraw();
    },
    panBy,
    zoomAt,
    fit: refit,
    /** Draws now (not on the next frame) and says how long it took, in ms. */
    drawNow: () => {
      if (frame) window.cancelAnimationFrame(frame);
      const t = window.performance.now();
      draw();
      return window.performance.now() - t;
    },
  };
  window.__canvasView = debug;

  resize();
  load().catch((err) => {
    statusLine.textContent = `Could not read the canvas: ${err.message}`;
    statusLine.classList.add('error');
  });
  renderList();
  void poll();

  return {
    apply,
    delta,
    destroy() {
      destroyed = true;
      observer.disconnect();
      clearTimeout(pollTimer);
      clearTimeout(reloadTimer);
      clearTimeout(listTimer);
      if (frame) window.cancelAnimationFrame(frame);
      if (window.__canvasView === debug) delete window.__canvasView;
    },
  };
}
