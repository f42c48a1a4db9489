/**
 * Results files and the figures table.
 *
 * - `writeResults`: a full run writes bench/results/latest.json and a timestamped copy; a run filtered to some
 *   sections writes its timestamped copy and merges its sections into latest.json (each figure keeps its own
 *   `measured_at`, and `reruns` lists what was replaced when).
 * - `npm run bench:table` (this file run directly) prints the markdown table of every figure in latest.json and,
 *   with `--write`, replaces the block between the `figures:start` / `figures:end` markers in bench/README.md.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { type Figure, fmt, out, table, targetText } from './common';

/** The performance issue's figures, in the order of the issue, then the distributed engine's (issue 20). */
export const FIGURE_NAMES = [
  'makespan_ratio_uniform',
  'makespan_ratio_hetero',
  'fairness_small_batch_slowdown',
  'overhead_us_per_node',
  'throughput_nodes_per_s',
  'rss_mb_100k',
  'rss_growth_mb_500_batches',
  'sse_fanout_p99_ms',
  'status_p99_ms_under_load',
  // issue 20: the distributed engine
  'distributed_makespan_ratio_3p',
  'distributed_cancel_p99_ms',
  'distributed_sse_p99_ms',
] as const;

/** Keys of a run that describe the run rather than a section. */
const RUN_KEYS = ['benchmark', 'environment', 'total_bench_s', 'sections'];

function writeJson(file: string, data: unknown): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(data, null, 2)}\n`);
  renameSync(tmp, file);
}

/** Returns the paths written, relative to the repository. */
export function writeResults(
  dir: string,
  results: Record<string, unknown>,
  allSections: readonly string[],
): string[] {
  mkdirSync(dir, { recursive: true });
  const env = results.environment as { date: string };
  const stamp = env.date.replace(/:/g, '-');
  const ran = results.sections as string[];
  const partial = ran.length < allSections.length;
  const latestFile = path.join(dir, 'latest.json');
  const stampFile = path.join(dir, `${stamp}${partial ? '-partial' : ''}.json`);
  writeJson(stampFile, results);
  let latest: Record<string, unknown> = results;
  if (partial && existsSync(latestFile)) {
    const previous = JSON.parse(readFileSync(latestFile, 'utf8')) as Record<string, unknown>;
    const fresh = Object.fromEntries(Object.entries(results).filter(([k]) => !RUN_KEYS.includes(k)));
    latest = {
      ...previous,
      ...fresh,
      reruns: [
        ...((previous.reruns as unknown[] | undefined) ?? []),
        { sections: ran, environment: results.environment, total_bench_s: results.total_bench_s },
      ],
    };
  }
  writeJson(latestFile, latest);
  const rel = (f: string) => path.relative(path.join(dir, '..', '..'), f);
  return [rel(latestFile), rel(stampFile)];
}

function isFigure(v: unknown): v is Figure {
  return typeof v === 'object' && v !== null && 'value' in v && 'target' in v && 'pass' in v;
}

/** "fifo 1.21; …": what the figure is compared with in the same run. */
function besideText(f: Figure): string {
  return Object.entries(f.beside ?? {})
    .map(([k, v]) => `${k.replace(/_/g, ' ')} ${fmt(v, v !== null && Math.abs(v) < 10 ? 3 : 1)}`)
    .join('; ');
}

function valueText(f: Figure): string {
  if (f.value === null) return 'n/a';
  return fmt(f.value, Math.abs(f.value) < 10 ? 3 : 1);
}

/** Plain-text summary for the console. */
export function printFigures(results: Record<string, unknown>): void {
  const rows = figuresOf(results);
  if (!rows.length) return;
  out('figures (issues 7 and 20)');
  out(
    table([
      ['figure', 'value', 'unit', 'target', 'pass', 'beside it (same run)'],
      ...rows.map(([name, f]) => [
        name,
        valueText(f),
        f.unit,
        targetText(f.target),
        f.pass ? 'yes' : 'NO',
        besideText(f),
      ]),
    ]),
  );
  for (const [name, f] of rows) if (f.note) out(`  ${name}: ${f.note}`);
}

function figuresOf(results: Record<string, unknown>): [string, Figure][] {
  const rows: [string, Figure][] = [];
  for (const name of FIGURE_NAMES) {
    const f = results[name];
    if (isFigure(f)) rows.push([name, f]);
  }
  return rows;
}

/** The markdown table of bench/README.md. */
export function markdownTable(results: Record<string, unknown>): string {
  const env = results.environment as
    { date: string; node: string; cpu_count: number; cpu_model: string; total_memory_gb: number } | undefined;
  const lines = [
    env
      ? `Run of ${env.date} (total ${String(results.total_bench_s)} s): ${env.cpu_count} × ${env.cpu_model}, ${env.total_memory_gb} GB RAM, Node ${env.node}.`
      : '',
    ...((results.reruns as { sections: string[]; environment: { date: string } }[] | undefined) ?? []).map(
      (r) => `Rerun since: ${r.sections.join(', ')} at ${r.environment.date} (see \`measured\`).`,
    ),
    '',
    '| figure | value | target | pass | beside it, same run | measured |',
    '| --- | ---: | ---: | :---: | --- | --- |',
  ];
  for (const name of FIGURE_NAMES) {
    const f = results[name];
    if (!isFigure(f)) {
      lines.push(`| \`${name}\` | not measured | | | | |`);
      continue;
    }
    lines.push(
      `| \`${name}\` | **${valueText(f)}** ${f.unit} | ${targetText(f.target)} | ${f.pass ? 'yes' : '**no**'} | ${besideText(f)} | ${f.measured_at.slice(0, 16).replace('T', ' ')} |`,
    );
  }
  const notes = figuresOf(results).filter(([, f]) => f.note);
  if (notes.length) {
    lines.push('');
    for (const [name, f] of notes) lines.push(`- \`${name}\`: ${f.note}`);
  }
  return lines.join('\n');
}

const START = '<!-- figures:start (npm run bench:table -- --write) -->';
const END = '<!-- figures:end -->';

function main(): void {
  const root = path.join(__dirname, '..');
  const results = JSON.parse(readFileSync(path.join(root, 'results', 'latest.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  const md = markdownTable(results);
  if (!process.argv.includes('--write')) {
    out(md);
    return;
  }
  const readme = path.join(root, 'README.md');
  const text = readFileSync(readme, 'utf8');
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  if (a < 0 || b < a) throw new Error(`bench/README.md has no ${START} … ${END} block`);
  writeFileSync(readme, `${text.slice(0, a + START.length)}\n\n${md}\n\n${text.slice(b)}`);
  out('bench/README.md: figures table updated from bench/results/latest.json');
}

if (require.main === module) main();
