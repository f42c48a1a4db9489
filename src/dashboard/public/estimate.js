// The estimate beside Start in New batch: POST /parallel/estimate with the batch as the form would start it,
// asked again (debounced, the latest answer wins) whenever the groups or the cap change.

/** `$0.0123` to the micro-dollar; `unknown price` without one. */
function money(usd) {
  return usd === null ? 'unknown price' : `$${Number(usd.toFixed(6))}`;
}

/** `850 ms`, `42 s`, `3 min 20 s`; `duration unknown` before any node of these agents completed. */
function duration(ms) {
  if (ms === null) return 'duration unknown';
  if (ms < 1000) return `about ${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  return s < 60 ? `about ${s} s` : `about ${Math.floor(s / 60)} min ${s % 60} s`;
}

/** One line for a person: nodes, tokens, cost, duration. */
export function estimateText(e) {
  const t = e.total;
  const bound = e.groups.some((g) => g.output_basis === 'max_output_tokens') ? ' at most' : '';
  return (
    `Estimate: ${t.nodes} node(s) · ${t.input_tokens.toLocaleString()} in + ${t.output_tokens.toLocaleString()} out tokens${bound}` +
    ` · ${money(t.cost_usd)} · ${duration(t.expected_duration_ms)} · ${e.concurrency} at once`
  );
}

/**
 * Wires `element` to show the estimate of `body()` (the execute body, or null when there is nothing to start yet);
 * returns the function that asks again. `api(method, path, body)` is the dashboard's own client.
 */
export function attachEstimate(element, api, body) {
  let timer;
  let asked = 0;
  return function refresh() {
    clearTimeout(timer);
    const request = body();
    if (!request) {
      asked++;
      element.textContent = '';
      return;
    }
    timer = setTimeout(async () => {
      const mine = ++asked;
      element.textContent = 'Estimating…';
      try {
        const estimate = await api('POST', '/parallel/estimate', request);
        if (mine === asked) element.textContent = estimateText(estimate);
      } catch (err) {
        if (mine === asked) element.textContent = `No estimate: ${err.message}`;
      }
    }, 250);
  };
}
