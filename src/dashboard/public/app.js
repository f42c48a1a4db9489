// canvas-batch dashboard: plain ES modules, no framework, no external requests. Views by URL hash:
//   #/            recent tasks          #/new          the "new batch" form
//   #/tasks/<id>  one task, live over EventSource (/parallel/events/<id>), with results, failures and cancel
// Result previews are rendered by the server (GET /files?format=html: markdown-it, KaTeX, footnotes, callouts).

import { mountCanvasView } from './canvas-view.js';
import { mountMemoryPanel } from './memory-panel.js';
import { attachPlanner } from './planner.js';
import { attachEstimate } from './estimate.js';

const main = document.getElementById('main');
const announcer = document.getElementById('announce');
const COLOR_NAMES = { 1: 'red', 2: 'orange', 3: 'yellow', 4: 'green', 5: 'cyan', 6: 'purple' };
const COLOR_VALUES = { 1: '#e03e3e', 2: '#e9973f', 3: '#e0c431', 4: '#44b556', 5: '#3fb0c8', 6: '#a371f7' };
const TERMINAL = new Set(['completed', 'partial_failure', 'failed', 'cancelled']);

/** What the current view owns (EventSource, timers), closed when the view changes. */
let cleanup = [];

// ---------------------------------------------------------------------------------------------------------------
// API

class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: {
      accept: 'application/json',
      // the login cookie authorises state changes only with this header (a cross-site form cannot send it)
      'x-requested-with': 'canvas-batch',
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401) {
    window.location.assign('/login');
    throw new ApiError(401, { title: 'Sign-in needed' });
  }
  const text = await res.text();
  const data = text ? JSON.parse(text) : undefined;
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// ---------------------------------------------------------------------------------------------------------------
// helpers

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML content and attribute values. */
function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

function announce(message) {
  announcer.textContent = '';
  setTimeout(() => (announcer.textContent = message), 20);
}

/**
 * Parses trusted markup (every interpolated value goes through escapeHtml). Widths and colours are carried in
 * data-width / data-bg and set through the CSSOM: the CSP allows no inline style attributes.
 */
function h(html) {
  const t = document.createElement('template');
  t.innerHTML = html.trim();
  for (const el of t.content.querySelectorAll('[data-width]')) el.style.width = el.dataset.width;
  for (const el of t.content.querySelectorAll('[data-bg]')) el.style.background = el.dataset.bg;
  return t.content;
}

function statusBadge(status) {
  return `<span class="status status-${escapeHtml(status)}">${escapeHtml(status.replace('_', ' '))}</span>`;
}

/** Share of `n` in `total`, in percent (for widths). */
const share = (n, total) => (total === 0 ? 0 : (n / total) * 100);

/**
 * What a bar says of its counts ({ completed, failed, skipped, total }): its value is the share of nodes run
 * (completed or failed), so a cancelled batch never reads 100 %; failed and skipped nodes are named beside it.
 */
function barText({ completed, failed, skipped, total }) {
  const run = completed + failed;
  const pct = total === 0 ? 100 : Math.floor(share(run, total));
  const extra = `${failed ? ` · ${failed} failed` : ''}${skipped ? ` · ${skipped} skipped` : ''}`;
  return {
    pct,
    label: `${pct} % · ${run}/${total}${extra}`,
    valuetext: `${pct} % (${run} of ${total}: ${completed} completed, ${failed} failed, ${skipped} skipped)`,
  };
}

/**
 * A labelled progress bar (role=progressbar with its value for assistive technology and tests), one segment per
 * outcome: completed (green), failed (red), skipped (grey, hatched); the rest of the track is still to run.
 */
function bar(id, label, counts) {
  const { pct, label: text, valuetext } = barText(counts);
  const seg = (kind) => `<span class="seg ${kind}" data-width="${share(counts[kind], counts.total)}%"></span>`;
  return `<div class="bar" id="${escapeHtml(id)}" role="progressbar" aria-label="${escapeHtml(label)}"
    aria-valuemin="0" aria-valuemax="100" aria-valuenow="${pct}" aria-valuetext="${escapeHtml(valuetext)}">
    <span class="track">${seg('completed')}${seg('failed')}${seg('skipped')}</span>
    <span class="label">${escapeHtml(text)}</span></div>`;
}

/** Sets a bar's counts in place (no re-render, so focus and reading position stay). */
function setBar(el, counts) {
  if (!el) return;
  const { pct, label, valuetext } = barText(counts);
  el.setAttribute('aria-valuenow', String(pct));
  el.setAttribute('aria-valuetext', valuetext);
  for (const kind of ['completed', 'failed', 'skipped']) {
    el.querySelector(`.seg.${kind}`).style.width = `${share(counts[kind], counts.total)}%`;
  }
  el.querySelector('.label').textContent = label;
}

/** The colours of the bars' segments, said in words once per page. */
const LEGEND = `<p class="legend muted" aria-hidden="true"><span class="key completed"></span> completed
  <span class="key failed"></span> failed <span class="key skipped"></span> skipped (not run: cancelled or stopped)</p>`;

function showError(err, where = main) {
  const p = document.createElement('p');
  p.className = 'error';
  p.setAttribute('role', 'alert');
  p.textContent = err instanceof Error ? err.message : String(err);
  where.prepend(p);
}

function swatch(color) {
  const value = color ? (COLOR_VALUES[color] ?? color) : '#ffffff';
  return /^#[0-9a-f]{3,8}$/i.test(value) ? value : '#ffffff';
}

function colorName(color) {
  return COLOR_NAMES[color] ? `colour ${color} (${COLOR_NAMES[color]})` : `colour ${color}`;
}

function setView(nav, title) {
  for (const c of cleanup.splice(0)) c();
  document.title = `${title} · canvas-batch`;
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

/**
 * The server's preview of a markdown file (GET /files?format=html: source HTML escaped, links checked). KaTeX's
 * layout styles come as data-style, set here through the CSSOM: the CSP allows no inline style attributes.
 */
function previewContent(html) {
  const t = document.createElement('template');
  t.innerHTML = html;
  for (const el of t.content.querySelectorAll('.katex [data-style], .katex-error[data-style]')) {
    el.style.cssText = el.dataset.style;
  }
  return t.content;
}

// ---------------------------------------------------------------------------------------------------------------
// views

async function tasksView() {
  setView('tasks', 'Tasks');
  main.replaceChildren(
    h(`<h2>Recent tasks</h2><div id="tasks-table" aria-live="off"><p class="muted">Loading…</p></div>`),
  );
  const render = async () => {
    const { tasks } = await api('GET', '/parallel/tasks?limit=50');
    const box = document.getElementById('tasks-table');
    if (!box) return;
    if (tasks.length === 0) {
      box.replaceChildren(h('<p>No tasks yet. <a href="#/new">Start a batch</a>.</p>'));
      return;
    }
    box.replaceChildren(
      h(`<table><caption class="visually-hidden">Recent tasks, newest first</caption><thead><tr>
        <th scope="col">Task</th><th scope="col">Canvas</th><th scope="col">Status</th><th scope="col">Progress</th>
        <th scope="col" class="num">Completed</th><th scope="col" class="num">Failed</th><th scope="col" class="num">Skipped</th>
        <th scope="col">Created</th></tr></thead><tbody>${tasks
          .map(
            (t) => `<tr><td><a class="mono" href="#/tasks/${escapeHtml(t.task_id)}">${escapeHtml(t.task_id.slice(0, 8))}</a></td>
            <td>${escapeHtml(t.canvas_path)}</td><td>${statusBadge(t.status)}</td>
            <td>${bar(`task-bar-${t.task_id}`, `Progress of task ${t.task_id.slice(0, 8)}`, {
              completed: t.completed_nodes,
              failed: t.failed_nodes,
              skipped: t.skipped_nodes,
              total: t.total_nodes,
            })}</td>
            <td class="num">${t.completed_nodes}/${t.total_nodes}</td><td class="num">${t.failed_nodes}</td>
            <td class="num">${t.skipped_nodes}</td>
            <td><time datetime="${escapeHtml(t.created_at)}">${escapeHtml(new Date(t.created_at).toLocaleString())}</time></td></tr>`,
          )
          .join('')}</tbody></table>${LEGEND}`),
    );
  };
  await render();
  const timer = setInterval(() => void render().catch(() => undefined), 3000);
  cleanup.push(() => clearInterval(timer));
}

async function newBatchView() {
  setView('new', 'New batch');
  main.replaceChildren(
    h(`<h2>New batch</h2>
    <form id="new-batch" novalidate>
      <fieldset><legend>1. Canvas</legend>
        <div class="field"><label for="canvas">Canvas</label>
        <select id="canvas" name="canvas" required><option value="">Loading…</option></select></div>
      </fieldset>
      <fieldset id="nodes-box" disabled><legend>2. Nodes</legend>
        <div class="actions" id="quick-select" aria-label="Quick selection"></div>
        <p class="muted" id="nodes-hint">Choose a canvas first.</p>
        <p><label class="inline"><input type="checkbox" id="show-generated"> Show generated nodes
        <span class="muted">(results and cards an earlier batch added)</span></label></p>
        <ul class="nodes" id="nodes"></ul>
      </fieldset>
      <fieldset id="groups-box" disabled><legend>3. Agents per group</legend>
        <div class="field"><label for="agent">Agent</label><select id="agent" name="agent"></select>
        <span class="muted" id="agent-help"></span></div>
        <div class="actions"><button type="button" id="add-group" class="secondary">Add selected nodes as a group</button>
        <button type="button" id="suggest-groups" class="secondary">Suggest groups</button></div>
        <p class="muted" id="plan-status" role="status"></p>
        <table id="groups-table" hidden><caption class="visually-hidden">Groups of this batch</caption>
        <thead><tr><th scope="col">Group</th><th scope="col">Agent</th><th scope="col" class="num">Nodes</th><th scope="col"><span class="visually-hidden">Remove</span></th></tr></thead><tbody></tbody></table>
        <div class="field"><label for="max-concurrent">Agents running at once (1–50)</label>
        <input id="max-concurrent" name="max_concurrent" type="number" min="1" max="50" value="12" inputmode="numeric"></div>
      </fieldset>
      <div class="actions"><button type="submit" id="start">Start batch</button><span id="estimate" class="muted" role="status"></span><span id="form-status" role="status"></span></div>
    </form>`),
  );
  const form = document.getElementById('new-batch');
  const canvasSelect = document.getElementById('canvas');
  const agentSelect = document.getElementById('agent');
  const nodesList = document.getElementById('nodes');
  const groupsBody = form.querySelector('#groups-table tbody');
  /** Groups added so far: { agent, nodeIds }. */
  const groups = [];
  /** The canvas's nodes but groups; `nodes`: those listed (generated ones only when asked for). */
  let listed = [];
  let nodes = [];
  const showGenerated = document.getElementById('show-generated');

  const [{ canvases }, { agents }] = await Promise.all([api('GET', '/canvases'), api('GET', '/agents')]);
  canvasSelect.replaceChildren(
    h(`<option value="">Choose a canvas…</option>${canvases
      .map((c) => `<option value="${escapeHtml(c.path)}">${escapeHtml(c.path)}</option>`)
      .join('')}`),
  );
  const runnable = agents.filter((a) => a.runnable);
  // auto: each node routed to an agent on its content when it runs
  const agentOptions = (chosen) =>
    [...runnable.map((a) => a.name), 'auto']
      .map((n) => `<option value="${escapeHtml(n)}"${n === chosen ? ' selected' : ''}>${escapeHtml(n)}</option>`)
      .join('');
  agentSelect.replaceChildren(h(agentOptions(runnable[0]?.name)));
  const describeAgent = () => {
    const a = runnable.find((x) => x.name === agentSelect.value);
    document.getElementById('agent-help').textContent = a ? a.description : '';
  };
  agentSelect.addEventListener('change', describeAgent);
  describeAgent();

  const maxInput = document.getElementById('max-concurrent');
  // the estimate beside Start, of the groups added so far
  const refreshEstimate = attachEstimate(document.getElementById('estimate'), api, () => {
    const max = Number(maxInput.value);
    if (!canvasSelect.value || groups.length === 0) return null;
    return {
      canvas_path: canvasSelect.value,
      groups: groups.map((g, i) => ({ group_id: i + 1, agent_type: g.agent, node_ids: g.nodeIds })),
      ...(Number.isInteger(max) && max >= 1 && max <= 50 ? { max_concurrent: max } : {}),
    };
  });
  maxInput.addEventListener('change', () => refreshEstimate());
  const grouped = () => new Map(groups.flatMap((g, gi) => g.nodeIds.map((id) => [id, gi + 1])));
  const checkboxes = () => [...nodesList.querySelectorAll('input[type="checkbox"]')];
  const renderGroups = () => {
    const table = document.getElementById('groups-table');
    table.hidden = groups.length === 0;
    groupsBody.replaceChildren(
      h(
        groups
          .map(
            (g, i) => `<tr${g.title ? ` title="${escapeHtml(g.title)}"` : ''}><td>Group ${i + 1}${g.name ? ` <span class="muted">${escapeHtml(g.name)}</span>` : ''}</td>
          <td>${g.suggested ? `<select data-agent="${i}" aria-label="Agent of group ${i + 1}">${agentOptions(g.agent)}</select>` : escapeHtml(g.agent)}</td><td class="num">${g.nodeIds.length}</td>
          <td><button type="button" class="secondary" data-remove="${i}" aria-label="Remove group ${i + 1}">Remove</button></td></tr>`,
          )
          .join(''),
      ),
    );
    const inGroup = grouped();
    for (const box of checkboxes()) {
      const g = inGroup.get(box.value);
      box.disabled = g !== undefined;
      if (g !== undefined) box.checked = false;
      const tag = box.closest('label').querySelector('.in-group');
      tag.textContent = g === undefined ? '' : `in group ${g}`;
    }
    refreshEstimate();
  };
  // a suggested group's agent can be changed before the start
  groupsBody.addEventListener('change', (e) => {
    const i = e.target.closest('[data-agent]')?.dataset.agent;
    if (i === undefined) return;
    groups[Number(i)].agent = e.target.value;
    refreshEstimate();
  });
  attachPlanner({
    button: document.getElementById('suggest-groups'),
    status: document.getElementById('plan-status'),
    canvasSelect,
    api,
    onGroups: (suggested) => {
      groups.splice(0, groups.length, ...suggested);
      renderGroups();
    },
    announce,
    showError,
  });
  groupsBody.addEventListener('click', (e) => {
    const i = e.target.closest('[data-remove]')?.dataset.remove;
    if (i === undefined) return;
    groups.splice(Number(i), 1);
    renderGroups();
    announce(`Group removed; ${groups.length} group(s) left`);
  });

  canvasSelect.addEventListener('change', async () => {
    groups.length = 0;
    renderGroups();
    const nodesBox = document.getElementById('nodes-box');
    const hint = document.getElementById('nodes-hint');
    nodesList.replaceChildren();
    document.getElementById('quick-select').replaceChildren();
    listed = [];
    if (!canvasSelect.value) {
      nodesBox.disabled = true;
      document.getElementById('groups-box').disabled = true;
      hint.textContent = 'Choose a canvas first.';
      return;
    }
    hint.textContent = 'Loading nodes…';
    try {
      const listing = await api('GET', `/canvases/nodes?path=${encodeURIComponent(canvasSelect.value)}`);
      listed = listing.nodes.filter((n) => n.type !== 'group');
    } catch (err) {
      hint.textContent = '';
      showError(err, nodesBox);
      return;
    }
    nodesBox.disabled = false;
    document.getElementById('groups-box').disabled = false;
    renderNodes();
  });

  /** Lists the nodes to pick from; what the service generated (results, question cards…) only when ticked. */
  const renderNodes = () => {
    const checked = new Set(checkboxes().filter((b) => b.checked).map((b) => b.value));
    nodes = showGenerated.checked ? listed : listed.filter((n) => !n.result);
    const hidden = listed.length - nodes.length;
    document.getElementById('nodes-hint').textContent =
      `${nodes.length} node(s)${hidden ? ` (${hidden} generated node(s) hidden)` : ''}. ` +
      'Pick them by hand or by colour, then add them as a group with an agent.';
    nodesList.replaceChildren(
      h(
        nodes
          .map((n) => {
            const text = n.text ?? n.file ?? n.url ?? n.label ?? '';
            const colour = n.color ? colorName(n.color) : 'no colour';
            return `<li><label><input type="checkbox" name="node" value="${escapeHtml(n.id)}" data-color="${escapeHtml(n.color ?? '')}"${checked.has(n.id) ? ' checked' : ''}>
            ${n.color ? `<span class="swatch" data-bg="${swatch(n.color)}" aria-hidden="true"></span>` : ''}
            <span><span class="node-text">${escapeHtml(text.slice(0, 140))}${text.length > 140 ? '…' : ''}</span>
            <span class="node-meta">${escapeHtml(n.type)} · ${escapeHtml(colour)}${n.result ? ' · generated' : ''} · <span class="mono">${escapeHtml(n.id)}</span></span>
            <span class="in-group"></span></span></label></li>`;
          })
          .join(''),
      ),
    );
    const colours = [...new Set(nodes.map((n) => n.color).filter(Boolean))].sort();
    document.getElementById('quick-select').replaceChildren(
      h(
        `<button type="button" class="secondary" data-pick="all">Select all</button>
         <button type="button" class="secondary" data-pick="none">Clear selection</button>${colours
           .map(
             (c) =>
               `<button type="button" class="secondary" data-pick="color" data-color="${escapeHtml(c)}">All nodes of ${escapeHtml(colorName(c))}</button>`,
           )
           .join('')}`,
      ),
    );
    renderGroups();
  };
  showGenerated.addEventListener('change', () => {
    if (canvasSelect.value && listed.length) renderNodes();
  });

  document.getElementById('quick-select').addEventListener('click', (e) => {
    const button = e.target.closest('[data-pick]');
    if (!button) return;
    let n = 0;
    for (const box of checkboxes()) {
      if (box.disabled) continue;
      box.checked =
        button.dataset.pick === 'all' ? true : button.dataset.pick === 'none' ? false : box.dataset.color === button.dataset.color;
      if (box.checked) n++;
    }
    announce(`${n} node(s) selected`);
  });

  const selected = () => checkboxes().filter((b) => b.checked && !b.disabled).map((b) => b.value);
  document.getElementById('add-group').addEventListener('click', () => {
    const ids = selected();
    if (ids.length === 0) {
      announce('Select nodes first');
      document.getElementById('form-status').textContent = 'Select at least one node for the group.';
      return;
    }
    groups.push({ agent: agentSelect.value, nodeIds: ids });
    renderGroups();
    document.getElementById('form-status').textContent = '';
    announce(`Group ${groups.length} added: ${ids.length} node(s) with ${agentSelect.value}`);
  });

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const status = document.getElementById('form-status');
    const all = [...groups];
    // nodes selected but not yet added form one more group with the chosen agent
    const pending = selected();
    if (pending.length) all.push({ agent: agentSelect.value, nodeIds: pending });
    if (!canvasSelect.value || all.length === 0) {
      status.textContent = 'Choose a canvas and at least one node.';
      return;
    }
    const max = Number(document.getElementById('max-concurrent').value);
    const button = document.getElementById('start');
    button.disabled = true;
    status.textContent = 'Starting…';
    try {
      const started = await api('POST', '/parallel/execute', {
        canvas_path: canvasSelect.value,
        groups: all.map((g, i) => ({ group_id: i + 1, agent_type: g.agent, node_ids: g.nodeIds })),
        ...(Number.isInteger(max) && max >= 1 && max <= 50 ? { max_concurrent: max } : {}),
      });
      window.location.hash = `#/tasks/${started.task_id}`;
    } catch (err) {
      button.disabled = false;
      status.textContent = '';
      showError(err, form);
    }
  });
}

async function taskView(taskId) {
  setView('tasks', `Task ${taskId.slice(0, 8)}`);
  const initial = await api('GET', `/parallel/status/${encodeURIComponent(taskId)}`);
  /** Built only from the event log (replayed from its first event), so a reload shows exactly the same. */
  const state = {
    status: initial.status,
    groups: initial.groups.map((g) => ({
      key: String(g.group_id),
      agent: g.agent_type,
      total: g.total_nodes,
      completed: 0,
      failed: 0,
      skipped: 0,
      closed: false,
    })),
    results: [],
    errors: [],
  };
  const total = initial.total_nodes;
  main.replaceChildren(
    h(`<h2>Task <span class="mono">${escapeHtml(taskId)}</span></h2>
    <div class="card">
      <p>Canvas <strong>${escapeHtml(initial.canvas_path)}</strong> · <span id="task-status">${statusBadge(initial.status)}</span>
      · <span id="counts"></span></p>
      ${bar('overall', 'Overall progress', { completed: 0, failed: 0, skipped: 0, total })}
      ${LEGEND}
      <div class="actions"><button type="button" class="danger" id="cancel" hidden>Cancel batch</button>
      <span id="live" class="muted"></span></div>
    </div>
    <section id="canvas-view" aria-labelledby="cv-heading"></section>
    <h3>Groups</h3>
    <div class="groups card" id="groups">${state.groups
      .map(
        (g) => `<div class="group-row"><span>Group ${escapeHtml(g.key)} · <strong>${escapeHtml(g.agent)}</strong></span>
        ${bar(`group-${g.key}`, `Progress of group ${g.key} (${g.agent})`, { completed: 0, failed: 0, skipped: 0, total: g.total })}
        <span class="muted" id="group-${escapeHtml(g.key)}-counts"></span></div>`,
      )
      .join('')}</div>
    <h3 id="failures-heading">Failures</h3>
    <div id="failures"><p class="muted">None so far.</p></div>
    <h3>Results</h3>
    <div id="results"><p class="muted">None yet.</p></div>
    <section id="memory" class="card memory" aria-labelledby="memory-title" hidden></section>
    <section id="preview" class="preview" hidden aria-labelledby="preview-title" tabindex="-1"></section>`),
  );

  // the canvas itself, drawn live (canvas-view.js): fed the same events as the bars
  const canvasView = mountCanvasView(document.getElementById('canvas-view'), { task: initial, api });
  cleanup.push(() => canvasView.destroy());

  const cancelButton = document.getElementById('cancel');
  const render = () => {
    const sum = { completed: 0, failed: 0, skipped: 0, total };
    for (const g of state.groups) {
      sum.completed += g.completed;
      sum.failed += g.failed;
      sum.skipped += g.skipped;
      setBar(document.getElementById(`group-${g.key}`), g);
      document.getElementById(`group-${g.key}-counts`).textContent =
        `${g.completed} done, ${g.failed} failed${g.skipped ? `, ${g.skipped} skipped` : ''}`;
    }
    setBar(document.getElementById('overall'), sum);
    document.getElementById('counts').textContent =
      `${sum.completed} completed, ${sum.failed} failed${sum.skipped ? `, ${sum.skipped} skipped` : ''} of ${total}`;
    document.getElementById('task-status').innerHTML = statusBadge(state.status);
    // a finished task has nothing to cancel: no button rather than a dead one
    cancelButton.hidden = TERMINAL.has(state.status);
  };
  const renderLists = () => {
    const failures = document.getElementById('failures');
    failures.replaceChildren(
      h(
        state.errors.length === 0
          ? '<p class="muted">None.</p>'
          : `<table id="failures-table"><thead><tr><th scope="col">Node</th><th scope="col">Group</th><th scope="col">Error type</th><th scope="col">Message</th></tr></thead><tbody>${state.errors
              .map(
                (e) => `<tr><td class="mono">${escapeHtml(e.node_id)}</td><td>${escapeHtml(String(e.group_id))}</td>
                <td><code>${escapeHtml(e.error_type)}</code></td><td>${escapeHtml(e.error_message)}</td></tr>`,
              )
              .join('')}</tbody></table>`,
      ),
    );
    const results = document.getElementById('results');
    results.replaceChildren(
      h(
        state.results.length === 0
          ? '<p class="muted">None yet.</p>'
          : `<ul id="results-list">${state.results
              .map(
                (r) => `<li><a href="/files?path=${encodeURIComponent(r.file_path)}" data-preview="${escapeHtml(r.file_path)}">${escapeHtml(
                  r.file_path.split('/').pop(),
                )}</a> <span class="muted">· node <span class="mono">${escapeHtml(r.node_id)}</span> · group ${escapeHtml(String(r.group_id))}</span></li>`,
              )
              .join('')}</ul>`,
      ),
    );
  };
  // results and failures are redrawn at most every 100 ms (a replay of thousands of events draws them once)
  let listsTimer;
  const scheduleLists = () => {
    listsTimer ??= setTimeout(() => {
      listsTimer = undefined;
      renderLists();
    }, 100);
  };
  cleanup.push(() => clearTimeout(listsTimer));

  /**
   * Applies one event: the `data:` JSON of the SSE message, `type` selecting `data`'s members.
   * @param {import('../../orchestrator').WireTaskEvent} e
   */
  const apply = (e) => {
    const d = e.data;
    const g = state.groups.find((x) => x.key === String(d.group_id));
    switch (e.type) {
      case 'task_completed':
        if (g) g.completed++;
        state.results.push(d);
        scheduleLists();
        break;
      case 'task_failed':
        if (g) g.failed++;
        state.errors.push(d);
        scheduleLists();
        break;
      case 'group_completed':
        if (g) {
          g.completed = d.completed_nodes;
          g.failed = d.failed_nodes;
          g.skipped = g.total - d.completed_nodes - d.failed_nodes;
          g.closed = true;
        }
        break;
      case 'progress_update':
      case 'resumed':
        if (state.status === 'pending') state.status = 'running';
        break;
      case 'session_completed':
        state.status = d.status;
        for (const x of state.groups) {
          if (!x.closed) {
            x.skipped = x.total - x.completed - x.failed;
            x.closed = true;
          }
        }
        break;
      default:
        break;
    }
  };

  const live = document.getElementById('live');
  // include=deltas: the agents' text as it is written (live only, never replayed), for the canvas view's focus panel
  const source = new EventSource(`/parallel/events/${encodeURIComponent(taskId)}?include=deltas`);
  source.addEventListener('task_output_delta', (msg) => canvasView.delta(JSON.parse(msg.data)));
  cleanup.push(() => source.close());
  source.addEventListener('open', () => (live.textContent = TERMINAL.has(state.status) ? '' : 'Live'));
  source.addEventListener('error', () => {
    // EventSource reconnects by itself and resumes after the last event id it saw
    if (source.readyState !== EventSource.CLOSED && !TERMINAL.has(state.status)) live.textContent = 'Reconnecting…';
  });
  // every TaskEventType (src/orchestrator/task-events.ts; task-events.spec.ts checks that this list matches)
  const types = ['progress_update', 'task_completed', 'task_failed', 'group_completed', 'cancelled', 'error', 'resumed', 'session_completed'];
  for (const type of types) {
    source.addEventListener(type, (msg) => {
      const e = JSON.parse(msg.data);
      apply(e);
      canvasView.apply(e);
      render();
      if (e.type === 'session_completed') {
        source.close();
        clearTimeout(listsTimer);
        listsTimer = undefined;
        renderLists();
        live.textContent = '';
        announce(`Task ${e.data.status.replace('_', ' ')}`);
        showMemory();
      }
    });
  }
  render();
  renderLists();
  // a finished task: what its learning events left in memory (shown once; the panel refreshes itself while needed)
  let memoryShown = false;
  const showMemory = () => {
    if (memoryShown || !TERMINAL.has(state.status)) return;
    memoryShown = true;
    const onCleanup = (fn) => cleanup.push(fn);
    mountMemoryPanel(document.getElementById('memory'), taskId, { api, escapeHtml, h, announce, onCleanup });
  };
  showMemory();

  cancelButton.addEventListener('click', async () => {
    cancelButton.disabled = true;
    try {
      const res = await api('POST', `/parallel/cancel/${encodeURIComponent(taskId)}`);
      live.textContent = res.message;
      announce(res.message);
    } catch (err) {
      cancelButton.disabled = false;
      showError(err, document.querySelector('.card'));
    }
  });

  document.getElementById('preview').addEventListener('click', (e) => {
    const link = e.target.closest('#preview-body a[href^="#"]');
    if (!link) return;
    // footnote references and back-references: the URL hash is the router's, so scroll to the target instead
    e.preventDefault();
    const target = document.getElementById(decodeURIComponent(link.getAttribute('href').slice(1)));
    if (!target) return;
    target.setAttribute('tabindex', '-1');
    target.focus({ preventScroll: true });
    target.scrollIntoView({ block: 'center' });
  });

  document.getElementById('results').addEventListener('click', async (e) => {
    const link = e.target.closest('a[data-preview]');
    if (!link || e.ctrlKey || e.metaKey || e.shiftKey) return;
    e.preventDefault();
    const file = link.dataset.preview;
    const preview = document.getElementById('preview');
    preview.hidden = false;
    preview.replaceChildren(h(`<h3 id="preview-title">${escapeHtml(file)}</h3><p class="muted">Loading…</p>`));
    try {
      const res = await fetch(`/files?path=${encodeURIComponent(file)}&format=html`, { credentials: 'same-origin' });
      if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => undefined));
      const html = await res.text();
      preview.replaceChildren(
        h(`<h3 id="preview-title">${escapeHtml(file.split('/').pop())}</h3>
        <p class="muted"><a href="/files?path=${encodeURIComponent(file)}">Raw markdown</a> · <button type="button" class="secondary" id="close-preview">Close preview</button></p>
        <article id="preview-body" class="markdown"></article>`),
      );
      document.getElementById('preview-body').append(previewContent(html));
      document.getElementById('close-preview').addEventListener('click', () => {
        preview.hidden = true;
        link.focus();
      });
      preview.focus();
    } catch (err) {
      preview.replaceChildren();
      showError(err, preview);
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------
// router

async function route() {
  const hash = window.location.hash || '#/';
  const task = /^#\/tasks\/([0-9A-Za-z-]+)$/.exec(hash);
  try {
    if (task) await taskView(task[1]);
    else if (hash === '#/new') await newBatchView();
    else await tasksView();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    main.replaceChildren();
    showError(err);
  }
}

window.addEventListener('hashchange', () => {
  void route().then(() => main.focus({ preventScroll: true }));
});
void route();
