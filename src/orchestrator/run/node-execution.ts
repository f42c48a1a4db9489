import { Injectable } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { AgentRunError, AgentRunner, capNodeInput, capResultMarkdown, conceptOf } from '../../agent';
import {
  CanvasService,
  NodeNotFoundError,
  type ResolvedCanvasPath,
  type ResultFile,
  capStructuredOutput,
  resultCardIds,
} from '../../canvas';
import { failpoint } from '../../common';
import { InjectCanvasBatchOptions, type ResolvedCanvasBatchOptions } from '../../config';
import { NODE_ERROR_TYPES, type NodeErrorType, type NodeTruncation } from '../../session';
import { type BatchRun, NodeAbort, nodeKey } from '../batch-run';
import { DurationEstimates } from '../concurrency/duration-estimates';
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
@Injectable()
export class NodeExecution {
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
    const { nodeId, agentType } = job;
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
    let agentReleased = false;
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
        controller.signal.throwIfAborted();
        canvas = where;
      } finally {
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
      return {
        kind: 'completed',
        startedAt,
        finishedAt: new Date().toISOString(),
        durationMs,
        concept: concept || nodeId,
        title,
        markdown: result.markdown,
        ...(cards && { structured: cards.structured }),
        inputTokens: output.usage.inputTokens,
        outputTokens: output.usage.outputTokens,
        attempts: output.attempts ?? 1,
        ...truncation(inputOmitted, result.omitted, cards?.omitted ?? 0),
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
        inputTokens: cost.usage?.inputTokens ?? 0,
        outputTokens: cost.usage?.outputTokens ?? 0,
        attempts: cost.attempts ?? (calledAgent ? 1 : 0),
      };
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
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
    run.startedNodes.add(nodeKey(job.groupIndex, job.nodeId));
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
    const { groupIndex, nodeId, agentType } = job;
    const group = run.groups[groupIndex];
    if (result.kind === 'failed') {
      this.recorder.recordNode(run, { groupIndex, nodeId, outcome: 'failed', ...failure(result) });
      return;
    }
    this.estimates.observe(agentType, result.durationMs);
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
      startedAt: result.startedAt,
      finishedAt: new Date().toISOString(),
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
