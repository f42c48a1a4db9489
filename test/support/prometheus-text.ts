/**
 * A strict parser of the Prometheus text exposition format 0.0.4 for tests: every line must be a `# HELP`, a
 * `# TYPE`, a comment, or a sample `name{label="value",…} value` of a family declared before it; anything else
 * throws. (The npm parser tried first, parse-prometheus-text-format, drops the labels of labelled histograms.)
 */
export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface PromFamily {
  name: string;
  type: string;
  help: string;
  samples: PromSample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})?\\s+(\\S+)(?:\\s+-?\\d+)?$`);
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)/y;
const SUFFIXES = ['_bucket', '_count', '_sum', '_total', '_created'];

export function parsePrometheusText(text: string): Map<string, PromFamily> {
  const families = new Map<string, PromFamily>();
  const family = (name: string): PromFamily => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { name, type: 'untyped', help: '', samples: [] }));
    return f;
  };
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const meta = new RegExp(`^# (HELP|TYPE) (${NAME}) (.*)$`).exec(line);
    if (meta) {
      if (meta[1] === 'HELP') family(meta[2]).help = meta[3];
      else if (['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(meta[3]))
        family(meta[2]).type = meta[3];
      else throw new Error(`line ${i + 1}: unknown type ${meta[3]}`);
      return;
    }
    if (line.startsWith('#')) return;
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`line ${i + 1} is not a sample: ${line}`);
    const labels: Record<string, string> = {};
    if (m[2]) {
      LABEL.lastIndex = 0;
      while (LABEL.lastIndex < m[2].length) {
        const l = LABEL.exec(m[2]);
        if (!l) throw new Error(`line ${i + 1}: bad labels {${m[2]}}`);
        labels[l[1]] = l[2].replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
      }
    }
    // Go's ParseFloat, which Prometheus uses, accepts NaN and Inf in any case (prom-client writes `Nan`)
    const raw = m[3].toLowerCase();
    const value = /^[+]?inf$/.test(raw)
      ? Infinity
      : raw === '-inf'
        ? -Infinity
        : raw === 'nan'
          ? NaN
          : Number(raw);
    if (Number.isNaN(value) && raw !== 'nan') throw new Error(`line ${i + 1}: bad value ${m[3]}`);
    const base = families.has(m[1])
      ? m[1]
      : (SUFFIXES.map((s) => (m[1].endsWith(s) ? m[1].slice(0, -s.length) : '')).find((b) =>
          families.has(b),
        ) ?? undefined);
    if (!base) throw new Error(`line ${i + 1}: sample ${m[1]} of no declared family`);
    family(base).samples.push({ name: m[1], labels, value });
  });
  return families;
}

/** The value of the one sample named `name` (a family's own name or `<family>_count|_sum|_bucket`) with these labels. */
export function promValue(
  families: Map<string, PromFamily>,
  name: string,
  labels: Record<string, string> = {},
): number {
  const all = [...families.values()].flatMap((f) => f.samples);
  const found = all.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (found.length !== 1)
    throw new Error(`${found.length} samples of ${name} with ${JSON.stringify(labels)} (expected 1)`);
  return found[0].value;
}
