/**
 * Fault injection for crash tests, off unless `CANVAS_BATCH_FAILPOINTS` is set (e.g.
 * `canvas.before-rename@3` = kill this process with SIGKILL the 3rd time that point is reached). It lets a test
 * crash the service at an exact point — between writing a temp file and renaming it — instead of hoping a random
 * kill lands there. Costs one lookup in an empty map when unset.
 */
const armed = parse(process.env.CANVAS_BATCH_FAILPOINTS ?? '');
const hits = new Map<string, number>();

export type FailpointName =
  'canvas.before-rename' | 'canvas.after-rename' | 'node.before-record' | 'memory.before-mark';

export function failpoint(name: FailpointName): void {
  const at = armed.get(name);
  if (at === undefined) return;
  const n = (hits.get(name) ?? 0) + 1;
  hits.set(name, n);
  if (n === at) process.kill(process.pid, 'SIGKILL');
}

function parse(spec: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const part of spec.split(',')) {
    const m = /^\s*([\w.-]+)@(\d+)\s*$/.exec(part);
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}
