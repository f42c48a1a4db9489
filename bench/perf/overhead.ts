/**
 * `overhead_us_per_node` and `throughput_nodes_per_s` under the names, taken from section (a) of
 * bench/run.ts (10,000 zero-latency nodes through the real orchestrator: SQLite, event log, memory outbox, result
 * files and canvas writes), with the bare `Sema(12)` loop over the same agent calls beside them.
 */
import { type Figure, figure, fmt, out, round, table } from './common';

/** The part of section (a)'s result these figures read. */
export interface OverheadSection {
  nodes: number;
  orchestrator: { wall_ms: number; nodes_per_s: number; us_per_node: number; cpu_us_per_node: number };
  bare_loop: { wall_ms: number; nodes_per_s: number; us_per_node: number };
  overhead_us_per_node: number;
  overhead_cpu_us_per_node: number;
  ratio_orchestrator_to_bare_time: number;
}

export function overheadFigures(a: OverheadSection): Record<string, Figure> {
  const figures = {
    overhead_us_per_node: figure(
      'overhead',
      a.overhead_us_per_node,
      'µs/node',
      { max: 200 },
      {
        beside: {
          bare_loop_us_per_node: a.bare_loop.us_per_node,
          orchestrator_us_per_node: a.orchestrator.us_per_node,
          overhead_cpu_us_per_node: a.overhead_cpu_us_per_node,
        },
        details: {
          nodes: a.nodes,
          definition: '(orchestrator wall time − bare Sema(12) wall time) / nodes',
          ratio_orchestrator_to_bare_time: a.ratio_orchestrator_to_bare_time,
        },
      },
    ),
    throughput_nodes_per_s: figure(
      'overhead',
      a.orchestrator.nodes_per_s,
      'nodes/s',
      { min: 5_000 },
      {
        beside: { bare_loop_nodes_per_s: a.bare_loop.nodes_per_s },
        details: { nodes: a.nodes, orchestrator_wall_ms: a.orchestrator.wall_ms },
      },
    ),
  };
  out(
    table([
      ['figure', 'value', 'bare Sema(12)', 'target'],
      ['overhead_us_per_node', fmt(a.overhead_us_per_node, 1), fmt(a.bare_loop.us_per_node, 1), '≤ 200'],
      [
        'throughput_nodes_per_s',
        fmt(round(a.orchestrator.nodes_per_s, 0), 0),
        fmt(a.bare_loop.nodes_per_s, 0),
        '≥ 5,000',
      ],
    ]),
  );
  return figures;
}
