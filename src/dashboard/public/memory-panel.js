// "What the system now remembers": a finished task's learning memory (GET /parallel/status/<id>/memory), one entry
// per node with its concept and learning events, each marked remembered (the store holds it) or on its way (still in
// the outbox). While events are on their way the panel looks again every few seconds; "Show more" pages concepts.

const PAGE = 50;
/** How often a panel with events on their way asks again (ms). */
const REFRESH_MS = 2000;

/** `explanation_generated` → "explanation generated". */
const words = (type) => String(type).replaceAll('_', ' ');

function timeText(at) {
  const d = new Date(at);
  return Number.isNaN(d.getTime()) ? String(at) : d.toLocaleString();
}

/** The state of one event in words, and its badge class. */
function stateOf(e) {
  if (e.in_store === true) return { text: 'remembered', kind: 'ok' };
  if (e.delivery === 'failing') {
    return { text: `on its way · ${e.attempts} failed attempt${e.attempts === 1 ? '' : 's'}`, kind: 'warn' };
  }
  if (e.delivery === 'pending') return { text: 'on its way', kind: 'wait' };
  // delivered according to the outbox: confirmed by the store, unless it was read and did not have it
  return e.in_store === false
    ? { text: 'delivered, not found in the store', kind: 'warn' }
    : { text: 'delivered', kind: 'ok' };
}

/**
 * Mounts the panel into `section` (an empty element) for `taskId`. `deps`: the page's `api`, `escapeHtml`, `h`
 * (trusted markup → fragment), `announce`, and `onCleanup` (called with a function to run when the view changes).
 */
export function mountMemoryPanel(section, taskId, { api, escapeHtml, h, announce, onCleanup }) {
  const base = `/parallel/status/${encodeURIComponent(taskId)}/memory`;
  let concepts = [];
  let last;
  let timer;
  let closed = false;
  let loaded = PAGE;
  onCleanup(() => {
    closed = true;
    clearTimeout(timer);
  });

  section.hidden = false;
  section.replaceChildren(
    h(`<h3 id="memory-title">What the system now remembers</h3>
    <p id="memory-summary" class="muted" aria-live="polite">Loading…</p>
    <p id="memory-session" class="muted"></p>
    <ul id="memory-concepts" class="memory-concepts"></ul>
    <p><button type="button" class="secondary" id="memory-more" hidden>Show more concepts</button></p>`),
  );
  const summary = section.querySelector('#memory-summary');
  const more = section.querySelector('#memory-more');

  const eventItem = (e) => {
    const state = stateOf(e);
    return `<li class="memory-event" data-event-id="${escapeHtml(e.event_id)}" data-state="${escapeHtml(state.kind)}">
      <span class="memory-type">${escapeHtml(words(e.type))}</span>
      <span class="muted">by <strong>${escapeHtml(e.agent_type)}</strong> · <time datetime="${escapeHtml(e.at)}">${escapeHtml(timeText(e.at))}</time></span>
      <span class="memory-state memory-${escapeHtml(state.kind)}">${escapeHtml(state.text)}</span></li>`;
  };

  const render = () => {
    const onWay = last.pending + last.failing;
    const where =
      last.store_read === 'ok'
        ? `Read back from the ${escapeHtml(last.store)} store (${escapeHtml(last.target)}).`
        : last.store_read === 'unsupported'
          ? `The ${escapeHtml(last.store)} store cannot be read back: shown from the outbox.`
          : `The ${escapeHtml(last.store)} store cannot be read right now (${escapeHtml(last.store_error ?? 'no answer')}): shown from the outbox.`;
    summary.replaceChildren(
      h(`<strong>${last.page.total}</strong> concept${last.page.total === 1 ? '' : 's'} ·
      <strong>${last.delivered}</strong> of ${last.events} learning event${last.events === 1 ? '' : 's'} delivered${
        onWay ? ` · <strong>${onWay}</strong> on ${onWay === 1 ? 'its' : 'their'} way` : ''
      }${last.failing ? ` (${last.failing} after failed attempts)` : ''}. ${where}`),
    );
    const session = last.session_events[0];
    section.querySelector('#memory-session').textContent = session
      ? `Batch session opened ${timeText(session.at)} (${words(session.type)}, ${stateOf(session).text}).`
      : '';
    section.querySelector('#memory-concepts').replaceChildren(
      h(
        concepts.length === 0
          ? '<li class="muted">No learning events: no node of this batch completed.</li>'
          : concepts
              .map(
                (c) => `<li class="memory-concept" data-node-id="${escapeHtml(c.node_id)}">
                <span class="memory-name">${escapeHtml(c.name || '(untitled)')}</span>
                <span class="muted">node <span class="mono">${escapeHtml(c.node_id)}</span></span>
                <ul class="memory-events">${c.events.map(eventItem).join('')}</ul></li>`,
              )
              .join(''),
      ),
    );
    more.hidden = last.page.next_offset === null;
  };

  /** Reads the concepts shown so far again (the first `loaded`), in pages of at most 1,000. */
  const refresh = async () => {
    const pages = [];
    let offset = 0;
    do {
      const page = await api('GET', `${base}?offset=${offset}&limit=${Math.min(1000, loaded - offset)}`);
      pages.push(page);
      offset = page.page.next_offset ?? loaded;
    } while (offset < loaded);
    if (closed) return;
    const wasOnWay = last ? last.pending + last.failing : 0;
    last = pages.at(-1);
    concepts = pages.flatMap((p) => p.concepts);
    render();
    const onWay = last.pending + last.failing;
    if (wasOnWay > 0 && onWay === 0) announce('Every learning event of this task is now remembered');
    if (onWay > 0) timer = setTimeout(() => void refresh().catch(showFailure), REFRESH_MS);
  };

  const showFailure = (err) => {
    if (closed) return;
    summary.textContent = `Learning memory could not be read: ${err instanceof Error ? err.message : String(err)}`;
    summary.className = 'error';
    // a 503 (the outbox is unreachable) may pass: try again later
    timer = setTimeout(() => {
      summary.className = 'muted';
      void refresh().catch(showFailure);
    }, REFRESH_MS * 2);
  };

  more.addEventListener('click', async () => {
    more.disabled = true;
    try {
      const page = await api('GET', `${base}?offset=${concepts.length}&limit=${PAGE}`);
      if (closed) return;
      last = page;
      concepts = concepts.concat(page.concepts);
      loaded = Math.max(PAGE, concepts.length);
      render();
      announce(`${page.concepts.length} more concept(s) shown`);
    } catch (err) {
      showFailure(err);
    } finally {
      more.disabled = false;
    }
  });

  void refresh().catch(showFailure);
}
