import { Injectable } from '@nestjs/common';
import {
  AgentRunner,
  type AgentNodeInput,
  AUTO_AGENT,
  capNodeInput,
  PromptTokens,
  routeByRules,
} from '../../agent';
import { CanvasService, type ResolvedCanvasPath } from '../../canvas';
import { InjectCanvasBatchOptions, type ResolvedCanvasBatchOptions, type TokenPrices } from '../../config';
import { DurationEstimates } from '../concurrency/duration-estimates';
import { Dispatcher } from '../dispatch/dispatcher';
import { Admission } from '../run/admission';
import type { BatchRequest } from '../run/run.types';
import { pricing, providerOf, roundUsd, usdOf } from './pricing';

/** The LLM settings' defaults (`AGENT_CONTEXT_TOKENS`, `AGENT_MAX_OUTPUT_TOKENS`), for a runner without them. */
const DEFAULT_CONTEXT_TOKENS = 4000;
const DEFAULT_MAX_OUTPUT_TOKENS = 2048;
/** How far the token heuristic may be from what a provider reports, for prose (see `estimateTokens`). */
export const INPUT_TOKEN_TOLERANCE = 0.25;
/** Nodes estimated between two turns of the event loop: a large batch never holds it for long. */
const NODES_PER_TURN = 256;

/**
 * Which agent runs a node of a group: the group's own; a node of an `auto` group is estimated with the agent its
 * content patterns route it to (the model a run may ask about an unsure node is not asked for an estimate: it costs).
 * A host may plug in its own (`CostEstimator.useAgentResolver`).
 */
export type AgentResolver = (node: AgentNodeInput, groupAgentType: string) => string | Promise<string>;

/** Where an expectation comes from: learned from completed nodes, or the configured bound. */
export type OutputBasis = 'learned' | 'max_output_tokens';

/** What one node is expected to cost. `costUsd` null: the price is unknown. */
export interface NodeCost {
  agentType: string;
  inputTokens: number;
  outputTokens: number;
  outputBasis: OutputBasis;
  costUsd: number | null;
}

export interface GroupEstimateDto {
  group_id: string | number;
  agent_type: string;
  nodes: number;
  input_tokens: number;
  output_tokens: number;
  /** `learned`: the mean of the output tokens nodes of this agent reported; `max_output_tokens`: the bound. */
  output_basis: OutputBasis;
  cost_usd: number | null;
  /** The group's work: its nodes' expected durations summed (null: no duration of this or any agent known yet). */
  expected_ms: number | null;
}

export interface EstimateDto {
  provider: string;
  model: string | null;
  price: { input_per_mtok: number; output_per_mtok: number } | null;
  /** Nodes of this batch running at once now: min(its `max_concurrent`, the global limit in force). */
  concurrency: number;
  /** How tokens are counted: a per-script heuristic, within `tolerance` (a fraction) of what a provider reports. */
  tokens: { method: 'heuristic'; tolerance: number };
  groups: GroupEstimateDto[];
  total: {
    nodes: number;
    input_tokens: number;
    output_tokens: number;
    cost_usd: number | null;
    price_known: boolean;
    /** The batch's expected wall time: longest-expected-first over `concurrency` slots (null: no duration known). */
    expected_duration_ms: number | null;
  };
}

/**
 * What a batch will cost before it runs (`POST /parallel/estimate`), and what one node is expected to cost (the
 * budget's reservations). Input tokens come from the real prompt — each node's content capped as node execution caps
 * it, in its agent's template — counted by a per-script heuristic; output tokens from what nodes of the agent
 * reported so far (learned, as the durations are), else `AGENT_MAX_OUTPUT_TOKENS`; the cost from the price per
 * token; the duration from the learned per-agent durations at the concurrency in force.
 */
@Injectable()
export class CostEstimator {
  private tokens?: PromptTokens;
  private resolve: AgentResolver = (node, groupAgentType) =>
    groupAgentType === AUTO_AGENT ? routeByRules(node.content).agentType : groupAgentType;

  constructor(
    private readonly admission: Admission,
    private readonly canvas: CanvasService,
    private readonly durations: DurationEstimates,
    private readonly dispatcher: Dispatcher,
    private readonly runner: AgentRunner,
    @InjectCanvasBatchOptions() private readonly options: ResolvedCanvasBatchOptions,
  ) {}

  /** Plugs in per-node agent routing: each node is estimated with the agent it will run with. */
  useAgentResolver(resolver: AgentResolver): void {
    this.resolve = resolver;
  }

  /** The price per token, or `undefined` when unknown. */
  get prices(): TokenPrices | undefined {
    return pricing(this.options, this.runner);
  }

  /** What one node (its input as node execution capped it) is expected to cost with `agentType`. */
  nodeCost(agentType: string, input: AgentNodeInput): NodeCost {
    this.tokens ??= new PromptTokens(this.options.llm?.contextTokens ?? DEFAULT_CONTEXT_TOKENS);
    const inputTokens = this.tokens.inputTokens(agentType, input);
    const learned = this.durations.outputTokens(agentType);
    const outputBasis: OutputBasis = learned === undefined ? 'max_output_tokens' : 'learned';
    // a node without content fails before any provider call: it costs nothing
    const outputTokens =
      inputTokens === 0
        ? 0
        : Math.ceil(learned ?? this.options.llm?.maxOutputTokens ?? DEFAULT_MAX_OUTPUT_TOKENS);
    const prices = this.prices;
    return {
      agentType,
      inputTokens,
      outputTokens,
      outputBasis,
      costUsd: prices ? usdOf(prices, inputTokens, outputTokens) : null,
    };
  }

  /**
   * The estimate of a batch: checked as `POST /parallel/execute` checks it (same 400/404/422), nothing stored. A
   * node whose content cannot be read counts nothing (it fails without a provider call).
   */
  async estimate(request: BatchRequest): Promise<EstimateDto> {
    const checked = await this.admission.check(request);
    const { limit } = await this.dispatcher.state();
    const concurrency = Math.max(1, Math.min(checked.maxConcurrent, limit));
    const prices = this.prices;
    const groups: GroupEstimateDto[] = [];
    /** Expected duration of every node, for the makespan. */
    const nodeMs: number[] = [];
    let unknownDuration = false;
    let done = 0;
    for (const g of checked.groups) {
      const sum = { input: 0, output: 0, usd: 0, ms: 0 };
      let basis: OutputBasis = 'learned';
      for (const nodeId of g.nodeIds) {
        if (++done % NODES_PER_TURN === 0) await new Promise((resolve) => setImmediate(resolve));
        const input = await this.nodeInput(checked.canvas, nodeId);
        const agentType = input ? await this.resolve(input, g.agentType) : g.agentType;
        const cost = input ? this.nodeCost(agentType, input) : undefined;
        if (cost) {
          sum.input += cost.inputTokens;
          sum.output += cost.outputTokens;
          sum.usd += cost.costUsd ?? 0;
          if (cost.outputBasis === 'max_output_tokens') basis = 'max_output_tokens';
        } else if (this.durations.outputTokens(agentType) === undefined) basis = 'max_output_tokens';
        const ms = this.expectedMs(agentType, checked.groups);
        if (ms === undefined) unknownDuration = true;
        else {
          sum.ms += ms;
          nodeMs.push(ms);
        }
      }
      groups.push({
        group_id: g.groupId,
        agent_type: g.agentType,
        nodes: g.nodeIds.length,
        input_tokens: sum.input,
        output_tokens: sum.output,
        output_basis: basis,
        cost_usd: prices ? roundUsd(sum.usd) : null,
        expected_ms: unknownDuration ? null : Math.round(sum.ms),
      });
    }
    const total = (key: 'nodes' | 'input_tokens' | 'output_tokens'): number =>
      groups.reduce((n, g) => n + g[key], 0);
    return {
      ...providerOf(this.options, this.runner),
      price: prices ? { input_per_mtok: prices.inputPerMTok, output_per_mtok: prices.outputPerMTok } : null,
      concurrency,
      tokens: { method: 'heuristic', tolerance: INPUT_TOKEN_TOLERANCE },
      groups,
      total: {
        nodes: total('nodes'),
        input_tokens: total('input_tokens'),
        output_tokens: total('output_tokens'),
        cost_usd: prices ? roundUsd(groups.reduce((n, g) => n + (g.cost_usd ?? 0), 0)) : null,
        price_known: prices !== undefined,
        expected_duration_ms: unknownDuration ? null : Math.round(makespan(nodeMs, concurrency)),
      },
    };
  }

  /** The node's input as node execution gives it to the agent (capped), or `undefined` when it cannot be read. */
  private async nodeInput(canvas: ResolvedCanvasPath, nodeId: string): Promise<AgentNodeInput | undefined> {
    try {
      return capNodeInput(await this.canvas.nodeContent(canvas, nodeId), this.options.maxInputChars).input;
    } catch {
      return undefined;
    }
  }

  /** One node's expected duration: its agent's learned one; an agent never seen counts as the longest known. */
  private expectedMs(agentType: string, groups: readonly { agentType: string }[]): number | undefined {
    const own = this.durations.estimate(agentType);
    if (own !== undefined) return own;
    const known = groups.map((g) => this.durations.estimate(g.agentType)).filter((e) => e !== undefined);
    return known.length ? Math.max(...known) : undefined;
  }
}

/**
 * The wall time of jobs run longest-expected-first on `slots` slots (each job to the slot free first), as the
 * dispatcher starts a batch's nodes: at least max(longest, work / slots), at most 4/3 of the optimum (Graham).
 */
export function makespan(durations: readonly number[], slots: number): number {
  if (!durations.length) return 0;
  const sorted = [...durations].sort((a, b) => b - a);
  const free = new MinHeap(Math.min(slots, sorted.length));
  for (const d of sorted) free.replaceTop(free.top() + d);
  return free.max();
}

/** The slots' busy-until times, the one free first on top. */
class MinHeap {
  private readonly a: number[];

  constructor(size: number) {
    this.a = new Array<number>(Math.max(1, size)).fill(0);
  }

  top(): number {
    return this.a[0];
  }

  max(): number {
    return Math.max(...this.a);
  }

  /** Replaces the smallest with `v` and sifts it down. */
  replaceTop(v: number): void {
    const a = this.a;
    let i = 0;
    a[0] = v;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && a[l] < a[m]) m = l;
      if (r < a.length && a[r] < a[m]) m = r;
      if (m === i) return;
      [a[i], a[m]] = [a[m], a[i]];
      i = m;
    }
  }
}
