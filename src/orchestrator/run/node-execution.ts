import { Injectable, Logger } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import {
  AgentRouter,
  type AgentNodeInput,
  AgentRunError,
  AgentRunner,
  type AgentRunResult,
  AUTO_AGENT,
  capNodeInput,
  capResultMarkdown,
  conceptOf,
  resultCacheKey,
  type TokenUsage,
} from '../../agent';
import {
  CanvasService,
  NodeNotFoundError,
  type ResolvedCanvasPath,
  type ResultFile,
  capStructuredOutput,
  resultCardIds,
} from '../../canvas';
import { failpoint, taskLog } from '../../common';
import { InjectCanvasBatchOptions, type ResolvedCanvasBatchOptions } from '../../config';
import {
  BudgetLedger,
  GeneratedNodes,
  NODE_ERROR_TYPES,
  type NodeErrorType,
  type NodeRouting,
  type NodeTruncation,
  ResultCache,
} from '../../session';
import { type BatchRun, NodeAbort, nodeKey } from '../batch-run';
import { DurationEstimates } from '../concurrency/duration-estimates';
import { CostEstimator } from '../cost/cost-estimator';
import { type BudgetView, roundUsd, taskBudget, usdOf } from '../cost/pricing';
import { DeltaCoalescer } from '../deltas/delta-coalescer';
import { OutputDeltas } from '../deltas/output-deltas';
import type { JobContext, NodeJob, NodeRunResult } from '../dispatch/dispatcher';
import { OutcomeRecorder } from './outcome-recorder';

/** Canvases a worker keeps resolved for other processes' batches, and for how long. */
const RESOLVED_CANVASES = 64;
const RESOLVED_CANVAS_MS = 5_000;

/**
 * Node execution: one node's content → agent → result file and canvas cards, owning its slots from start to end.
 * The agent phase (content read + agent call) holds the agent slots (the batch's and the global one) — that is when
 * the node counts as running and what its `duration_ms` measures; they are given back before the result is
 * written, so the next agents start while the canvas queue coalesces finished results into few writes; the write
 * slot goes back once the result file is written. Every error is caught here and becomes this node's failure; it
 * never reaches its siblings.
 */
/** A node the budget does not allow to start (it fails with `BUDGET_EXCEEDED`, no provider call made). */
class BudgetExceededError extends Error {
  readonly errorType: NodeErrorType = 'BUDGET_EXCEEDED';
}

@Injectable()
export class NodeExecution {
  private readonly logger = new Logger(NodeExecution.name);
  private readonly resolvedCanvases = new Map<
    string,
    { canvas: Promise<ResolvedCanvasPath>; until: number }
  >();

  constructor(
    private readonly canvas: CanvasService,
    private readonly runner: AgentRunner,
    private readonly recorder: OutcomeRecorder,
    private readonly estimates: DurationEstimates,
    @InjectCanvasBatchOptions() private readonly options: ResolvedCanvasBatchOptions,
    private readonly cache: ResultCache,
    private readonly generated: GeneratedNodes,
    private readonly router: AgentRouter,
    private readonly ledger: BudgetLedger,
    private readonly cost: CostEstimator,
    private readonly deltas: OutputDeltas,
  ) {}

  /**
   * The batch's nodes without a stored outcome, as jobs, with their agent type's expected duration (a type never
   * seen counts as the longest known, so it starts early): the dispatcher starts the longest first under `fair` —
   * longest-processing-time-first, the classic rule that ends a batch closest to max(longest node, work / cap).
   */
  jobsOf(run: BatchRun): NodeJob[] {
    const known = run.task.groups
      .map((g) => this.estimates.estimate(g.agentType))
      .filter((e) => e !== undefined);
    const unknown = known.length ? Math.max(...known) : 0;
    return run.task.groups.flatMap((g, groupIndex) =>
      g.nodeIds
        .filter((nodeId) => !run.recorded.has(nodeKey(groupIndex, nodeId)))
        .map((nodeId) => ({
          taskId: run.taskId,
          groupIndex,
          groupId: g.groupId,
          nodeId,
          agentType: g.agentType,
          expectedMs: this.estimates.estimate(g.agentType) ?? unknown,
          canvasPath: run.task.canvasPath,
          deadlineAt: run.task.deadlineAt ?? null,
          ...(run.task.cache === false && { cache: false }),
          ...(run.task.budgetUsd !== null && { budgetUsd: run.task.budgetUsd }),
        })),
    );
  }

  /**
   * Runs one node (the dispatcher's handler, in whichever process holds the job): content → agent → the capped
   * result, as data. The result file, the canvas card and the outcome are the owner's part (`settle`): a job holds its
   * global slot only for its agent call (on a queue it cannot give the slot back before it ends). `canvas`: the batch's canvas as its owner resolved
   * it, when the owner is this process; otherwise it is resolved (and checked) here. Every error becomes the node's
   * failure.
   */
  async runJob(job: NodeJob, ctx: JobContext, canvas?: ResolvedCanvasPath): Promise<NodeRunResult> {
    const { nodeId } = job;
    let agentType = job.agentType;
    let routing: NodeRouting | undefined;
    // the model's routing call (an `auto` node the patterns are unsure of) is billed to the node
    const routingUsage = { inputTokens: 0, outputTokens: 0 };
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(ctx.signal.reason);
    if (ctx.signal.aborted) onAbort();
    else ctx.signal.addEventListener('abort', onAbort, { once: true });
    const startedAt = new Date().toISOString();
    const t0 = performance.now();
    const nodeTimer = setTimeout(
      () =>
        controller.abort(
          new NodeAbort('AGENT_TIMEOUT', `the agent call exceeded ${this.options.agentTimeoutMs} ms`),
        ),
      this.options.agentTimeoutMs,
    );
    let concept: string;
    let inputOmitted: number;
    let durationMs = 0;
    let calledAgent = false;
    let cacheKey: string | undefined;
    let cached = false;
    let agentReleased = false;
    /** The budget's reservation of this node, while open. */
    let reserved: string | undefined;
    let billed: TokenUsage | undefined;
    // AGENT_STREAM: the agent's partial text, coalesced, for the task's delta subscribers (in any process)
    const text = this.options.agentStream
      ? new DeltaCoalescer(
          (chunk, offset) =>
            this.deltas.publish({
              taskId: job.taskId,
              nodeId,
              groupId: job.groupId ?? job.groupIndex,
              text: chunk,
              offset,
            }),
          () => this.deltas.wanted(job.taskId),
        )
      : undefined;
    const endAgentPhase = (): void => {
      if (agentReleased) return;
      agentReleased = true;
      text?.close();
      durationMs = Math.round(performance.now() - t0);
      clearTimeout(nodeTimer);
      ctx.releaseAgentSlots();
    };
    try {
      let output;
      try {
        const where = canvas ?? (await this.resolved(job.canvasPath));
        // the agent gets at most `maxInputChars` of the content (with a note saying so); the concept comes from the
        // same part, so a 5 MB node does not hold the event loop for its whole text
        const { input, omitted } = capNodeInput(
          await this.canvas.nodeContent(where, nodeId),
          this.options.maxInputChars,
        );
        inputOmitted = omitted;
        concept = conceptOf(input.content);
        // Retries never sleep past the node's own timeout or the batch deadline, whichever comes first.
        const deadline = Math.min(
          Date.now() + this.options.agentTimeoutMs,
          job.deadlineAt ? Date.parse(job.deadlineAt) : Number.POSITIVE_INFINITY,
        );
        if (agentType === AUTO_AGENT) {
          // routed on its content now, before the agent call (the content read above is the one the agent gets)
          const routed = await abortable(
            this.router.route(input.content, { signal: controller.signal, deadline, nodeId }),
            controller.signal,
          );
          agentType = routed.agentType;
          routing = { agentType, confidence: routed.confidence, routedBy: routed.routedBy };
          routingUsage.inputTokens = routed.usage.inputTokens;
          routingUsage.outputTokens = routed.usage.outputTokens;
        }
        cacheKey = await this.cacheKeyOf(job, agentType, input);
        // a hit is the stored output of the same agent, prompt, model and node: no provider call, no tokens
        const hit = cacheKey && (await this.cachedOutput(cacheKey));
        if (hit) {
          cached = true;
          output = hit;
        } else {
          // a batch with a budget: the node's expected cost is reserved first (refused: BUDGET_EXCEEDED, no call)
          if (job.budgetUsd !== undefined)
            reserved = await this.reserve(job, agentType, input, job.budgetUsd);
          calledAgent = true;
          output = await abortable(
            this.runner.run({
              agentType,
              node: input,
              signal: controller.signal,
              deadline,
              feedback: ctx.feedback,
              ...(text && { onText: (chunk: string, restart?: boolean) => text.push(chunk, restart) }),
            }),
            controller.signal,
          );
          billed = output.usage;
        }
        // a cancel-abort or a timeout that came during the lookup or the call fails the node, hit or miss
        controller.signal.throwIfAborted();
        canvas = where;
      } catch (err) {
        if (err instanceof AgentRunError) billed = err.details.usage;
        throw err;
      } finally {
        // settled before the slots go back: the batch's next node reserves against the actual cost of this one
        // (an `auto` node's routing call, when the model was asked, is part of what it cost)
        if (reserved !== undefined)
          await this.settleReservation(job, reserved, {
            inputTokens: (billed?.inputTokens ?? 0) + routingUsage.inputTokens,
            outputTokens: (billed?.outputTokens ?? 0) + routingUsage.outputTokens,
          });
        endAgentPhase();
      }
      // what is copied into the vault is capped: the file at `maxResultBytes`, the canvas cards per card and result
      const title = `${agentType}: ${concept || nodeId}`;
      const result = capResultMarkdown(output.markdown, {
        title,
        maxBytes: this.options.maxResultBytes,
        inputOmitted,
      });
      const cards = output.structured && capStructuredOutput(output.structured);
      // only a whole, valid output is kept: never a failure, never one the caps cut
      if (cacheKey && !cached && !result.omitted && !cards?.omitted) await this.store(cacheKey, output);
      return {
        kind: 'completed',
        startedAt,
        finishedAt: new Date().toISOString(),
        durationMs,
        concept: concept || nodeId,
        title,
        markdown: result.markdown,
        ...(cards && { structured: cards.structured }),
        inputTokens: output.usage.inputTokens + routingUsage.inputTokens,
        outputTokens: output.usage.outputTokens + routingUsage.outputTokens,
        attempts: cached ? 0 : (output.attempts ?? 1),
        ...truncation(inputOmitted, result.omitted, cards?.omitted ?? 0),
        ...(cached && { cached: true as const }),
        ...(routing && { routing }),
      };
    } catch (err) {
      endAgentPhase();
      if (controller.signal.reason instanceof NodeAbort && controller.signal.reason.errorType === 'SHUTDOWN')
        return { kind: 'shutdown' };
      const { errorType, message } = classify(err, controller.signal);
      const cost = err instanceof AgentRunError ? err.details : {};
      return {
        kind: 'failed',
        startedAt,
        finishedAt: new Date().toISOString(),
        durationMs,
        errorType,
        errorMessage: this.recorder.publicText(message),
        inputTokens: (cost.usage?.inputTokens ?? 0) + routingUsage.inputTokens,
        outputTokens: (cost.usage?.outputTokens ?? 0) + routingUsage.outputTokens,
        attempts: cost.attempts ?? (calledAgent ? 1 : 0),
        ...(routing && { routing }),
      };
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
    }
  }

  /** The budget of `task` as it stands (spent, reserved, remaining), or `undefined` for a task without one. */
  budget(task: { taskId: string; budgetUsd: number | null }): Promise<BudgetView | undefined> {
    return taskBudget(this.ledger, task);
  }

  /**
   * Reserves the node's expected cost in its batch's budget; throws `BudgetExceededError` when spent + reserved +
   * that cost would pass the budget. Returns the reservation's key.
   */
  private async reserve(
    job: NodeJob,
    agentType: string,
    input: AgentNodeInput,
    budgetUsd: number,
  ): Promise<string> {
    const expected = this.cost.nodeCost(agentType, input);
    const key = nodeKey(job.groupIndex, job.nodeId);
    const { granted, account } = await this.ledger.reserve(job.taskId, key, expected.costUsd ?? 0, budgetUsd);
    if (!granted) {
      const usd = (n: number): string => `$${roundUsd(n)}`;
      throw new BudgetExceededError(
        `not started: its expected cost ${usd(expected.costUsd ?? 0)} (${expected.inputTokens} input + ${expected.outputTokens} output tokens) would take the spent ${usd(account.spentUsd)} and reserved ${usd(account.reservedUsd)} past the budget of ${usd(budgetUsd)}`,
      );
    }
    return key;
  }

  /**
   * Settles the node's reservation to what its provider billed (released when nothing was). A ledger that cannot
   * be reached leaves it open: the budget then counts the expected cost, never less.
   */
  private async settleReservation(job: NodeJob, key: string, billed: TokenUsage | undefined): Promise<void> {
    const prices = this.cost.prices;
    const tokens = (billed?.inputTokens ?? 0) + (billed?.outputTokens ?? 0);
    try {
      if (billed && prices && tokens > 0)
        await this.ledger.settle(job.taskId, key, usdOf(prices, billed.inputTokens, billed.outputTokens));
      else await this.ledger.release(job.taskId, key);
    } catch (err) {
      this.logger.warn(
        taskLog(
          job.taskId,
          `budget reservation of node ${job.nodeId} not settled: ${(err as Error).message}`,
        ),
      );
    }
  }

  /**
   * The result cache's key of this node's run, or undefined when the cache is not used: off (`RESULT_CACHE=off`),
   * the batch opted out, or the runner does not say what its output depends on.
   */
  private async cacheKeyOf(
    job: NodeJob,
    agentType: string,
    input: AgentNodeInput,
  ): Promise<string | undefined> {
    if (!this.options.resultCache || job.cache === false) return undefined;
    // `agentType`: the agent that runs (an `auto` node's routed one), not the group's
    const identity = this.runner.identity?.(agentType);
    if (!identity) return undefined;
    return resultCacheKey(agentType, identity, await this.learnersContext(job.canvasPath, input));
  }

  /**
   * `input` with only the learner's neighbours in its context: the service's own cards (result files, question and
   * score cards: `GeneratedNodes`) are left out, or each batch's new result card would make the next batch a miss.
   */
  private async learnersContext(canvasPath: string, input: AgentNodeInput): Promise<AgentNodeInput> {
    const ids = input.context?.neighbourIds;
    if (!input.context || !ids?.length) return input;
    const own = new Set((await this.generated.inCanvas(canvasPath)).nodes.map((n) => n.id));
    const neighbours = input.context.neighbours.filter((_, i) => !own.has(ids[i]));
    return { ...input, context: { ...input.context, neighbours } };
  }

  /** The cached output of `key` as a run's result (zero usage), or undefined; a cache that fails is a miss. */
  private async cachedOutput(key: string): Promise<AgentRunResult | undefined> {
    try {
      const hit = await this.cache.get(key);
      return (
        hit && {
          markdown: hit.markdown,
          ...(hit.structured && { structured: hit.structured }),
          usage: { inputTokens: 0, outputTokens: 0 },
        }
      );
    } catch (err) {
      this.logger.warn(`result cache lookup failed (the agent is called): ${(err as Error).message}`);
      return undefined;
    }
  }

  /** Keeps a fresh output for the next identical node; a cache that fails costs only the saving. */
  private async store(key: string, output: AgentRunResult): Promise<void> {
    try {
      await this.cache.put(key, {
        markdown: output.markdown,
        ...(output.structured && { structured: output.structured }),
        usage: { inputTokens: output.usage.inputTokens, outputTokens: output.usage.outputTokens },
        createdAt: new Date().toISOString(),
      });
    } catch (err) {
      this.logger.warn(`result cache store failed: ${(err as Error).message}`);
    }
  }

  /**
   * One node of `run` from start to recorded outcome in this process (the three parts below in a row): what the
   * in-process engine's handler does for a batch it owns.
   */
  async executeNode(run: BatchRun, job: NodeJob, ctx: JobContext): Promise<void> {
    if (run.stopReason) return; // never started: recorded as skipped when the batch finalizes
    this.started(run, job);
    let agent = true;
    const endAgent = (): void => {
      if (!agent) return;
      agent = false;
      ctx.releaseAgentSlots();
      this.agentEnded(run);
    };
    const result = await this.runJob(job, { ...ctx, releaseAgentSlots: endAgent }, run.canvas);
    endAgent();
    try {
      await this.settle(run, job, result, ctx);
    } finally {
      ctx.releaseWriteSlot(); // also when no file was written (a failure): released once either way
    }
  }

  /**
   * A canvas resolved for jobs of batches another process owns, kept a few seconds (as the owner keeps its batch's
   * for the whole batch): every read and write through it is still opened and checked when it happens.
   */
  private resolved(canvasPath: string): Promise<ResolvedCanvasPath> {
    const now = Date.now();
    const hit = this.resolvedCanvases.get(canvasPath);
    if (hit && hit.until > now) return hit.canvas;
    const canvas = this.canvas.resolve(canvasPath);
    this.resolvedCanvases.delete(canvasPath);
    if (this.resolvedCanvases.size >= RESOLVED_CANVASES) {
      for (const [key, entry] of this.resolvedCanvases)
        if (entry.until <= now) this.resolvedCanvases.delete(key);
      if (this.resolvedCanvases.size >= RESOLVED_CANVASES) this.resolvedCanvases.clear();
    }
    this.resolvedCanvases.set(canvasPath, { canvas, until: now + RESOLVED_CANVAS_MS });
    // a failed resolution is not kept (unless a newer one replaced it meanwhile): the next job tries again
    canvas.catch(() => {
      if (this.resolvedCanvases.get(canvasPath)?.canvas === canvas) this.resolvedCanvases.delete(canvasPath);
    });
    return canvas;
  }

  /** A job of `run` started (it holds its slots): it counts as running. */
  started(run: BatchRun, job: NodeJob): void {
    run.startedNodes.set(nodeKey(job.groupIndex, job.nodeId), Date.now());
    run.dispatched++;
    run.running++;
    run.groups[job.groupIndex].started++;
    if (run.running > run.peak) {
      run.peak = run.running;
      this.recorder.recordPeak(run);
    }
  }

  /** A job of `run` ended its agent phase. */
  agentEnded(run: BatchRun): void {
    run.running--;
  }

  /**
   * The owner's part of a node: the result's cards on the canvas (writes of the batch coalesced), then its outcome
   * recorded with its events and the domain event memory listens to. A result that cannot be placed (its source
   * node was removed meanwhile, the canvas cannot be written) fails the node; its file is kept.
   */
  async settle(
    run: BatchRun,
    job: NodeJob,
    result: NodeRunResult | undefined,
    ctx?: Pick<JobContext, 'releaseWriteSlot'>,
  ): Promise<void> {
    const started = run.startedNodes.delete(nodeKey(job.groupIndex, job.nodeId));
    if (!result || result.kind === 'not-started' || result.kind === 'shutdown') {
      // a queue reports a job active before its worker finds the batch stopped: it did not start after all
      if (started && result?.kind === 'not-started') {
        run.dispatched--;
        run.groups[job.groupIndex].started--;
      }
      return;
    }
    if (run.recorded.has(nodeKey(job.groupIndex, job.nodeId))) return; // a job run twice (a worker's crash)
    const { groupIndex, nodeId } = job;
    // a node of an `auto` group: the agent it was routed to names its file and cards
    const agentType = result.routing?.agentType ?? job.agentType;
    const group = run.groups[groupIndex];
    if (result.kind === 'failed') {
      this.recorder.recordNode(run, { groupIndex, nodeId, outcome: 'failed', ...failure(result) });
      return;
    }
    // a cached result took no agent time: it would teach the estimates that this agent is instant
    if (!result.cached) this.estimates.observe(agentType, result.durationMs, result.outputTokens);
    let file: ResultFile;
    try {
      const where = { canvas: run.canvas, taskId: run.taskId, sourceNodeId: nodeId, agentType };
      file = await this.canvas.writeResultFile({ ...where, title: result.title, markdown: result.markdown });
      ctx?.releaseWriteSlot();
      const cards = { ...where, ...file, structured: result.structured };
      await this.recorder.recordGenerated(run, resultCardIds(cards));
      const placed = await this.canvas.placeResult({
        ...cards,
        // the batch's last result: nothing of it can join a coalesced write any more
        last: run.lastResult,
      });
      failpoint('node.before-record');
      if (!placed.placed) {
        throw new NodeNotFoundError(`${placed.reason}; the result file is kept at ${file.filePath}`);
      }
    } catch (err) {
      const { errorType, message } = classify(err, new AbortController().signal);
      this.recorder.recordNode(run, {
        groupIndex,
        nodeId,
        outcome: 'failed',
        ...failure({ ...result, errorType, errorMessage: this.recorder.publicText(message) }),
      });
      return;
    }
    this.recorder.recordNode(run, {
      groupIndex,
      nodeId,
      outcome: 'completed',
      filePath: file.filePath,
      fileSize: file.fileSize,
      durationMs: result.durationMs,
      inputTokens: result.inputTokens,
      outputTokens: result.outputTokens,
      attempts: result.attempts,
      ...(result.truncated && { truncated: result.truncated }),
      ...(result.cached && { cached: true }),
      startedAt: result.startedAt,
      finishedAt: new Date().toISOString(),
      ...(result.routing && { routing: result.routing }),
    });
    this.recorder.emit('agent.completed', {
      taskId: run.taskId,
      canvasPath: run.task.canvasPath,
      groupId: group.spec.groupId,
      groupIndex,
      nodeId,
      agentType,
      concept: result.concept,
      filePath: file.filePath,
      durationMs: result.durationMs,
      completedAt: new Date().toISOString(),
    });
  }
}

/** What a failed run reports (its result without the kind): the outcome fields of a failed node. */
type FailedRun = Omit<Extract<NodeRunResult, { kind: 'failed' }>, 'kind'>;

/** A failed node's outcome fields, from a failed run (or a completed one that failed after, with its error). */
function failure(r: FailedRun): FailedRun {
  return {
    durationMs: r.durationMs,
    errorType: r.errorType,
    errorMessage: r.errorMessage,
    inputTokens: r.inputTokens,
    outputTokens: r.outputTokens,
    attempts: r.attempts,
    startedAt: r.startedAt,
    finishedAt: r.finishedAt,
    ...(r.routing && { routing: r.routing }),
  };
}

function classify(err: unknown, signal: AbortSignal): { errorType: NodeErrorType; message: string } {
  if (signal.aborted && signal.reason instanceof NodeAbort && signal.reason.errorType !== 'SHUTDOWN') {
    return { errorType: signal.reason.errorType, message: signal.reason.message };
  }
  const typed = (err as { errorType?: unknown } | null)?.errorType;
  const message = err instanceof Error ? err.message : String(err);
  if (typeof typed === 'string' && (NODE_ERROR_TYPES as readonly string[]).includes(typed)) {
    return { errorType: typed as NodeErrorType, message };
  }
  return { errorType: 'AGENT_ERROR', message: message || 'the agent failed without a message' };
}

/** Settles with `promise`, or rejects with the signal's reason as soon as it aborts (a runner that ignores it). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    // Always settle through here: an abandoned runner promise that rejects later is handled, never unhandled.
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** `{ truncated }` when a cap cut anything of the node's run, else nothing. */
function truncation(
  inputChars: number,
  resultChars: number,
  canvasChars: number,
): { truncated?: NodeTruncation } {
  if (!inputChars && !resultChars && !canvasChars) return {};
  return {
    truncated: {
      ...(inputChars && { inputChars }),
      ...(resultChars && { resultChars }),
      ...(canvasChars && { canvasChars }),
    },
  };
}
