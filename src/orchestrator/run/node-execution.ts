import { Injectable } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { AgentRunError, AgentRunner, capNodeInput, capResultMarkdown, conceptOf } from '../../agent';
import { CanvasService, NodeNotFoundError, capStructuredOutput } from '../../canvas';
import { failpoint } from '../../common';
import { InjectCanvasBatchOptions, type ResolvedCanvasBatchOptions } from '../../config';
import { NODE_ERROR_TYPES, type NodeErrorType, type NodeTruncation } from '../../session';
import { type BatchRun, NodeAbort, nodeKey } from '../batch-run';
import { DurationEstimates } from '../concurrency/duration-estimates';
import type { JobContext, NodeJob } from '../dispatch/dispatcher';
import { OutcomeRecorder } from './outcome-recorder';

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
  constructor(
    private readonly canvas: CanvasService,
    private readonly runner: AgentRunner,
    private readonly recorder: OutcomeRecorder,
    private readonly estimates: DurationEstimates,
    @InjectCanvasBatchOptions() private readonly options: ResolvedCanvasBatchOptions,
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
          nodeId,
          agentType: g.agentType,
          expectedMs: this.estimates.estimate(g.agentType) ?? unknown,
        })),
    );
  }

  /** Runs one node of `run`; the dispatcher calls it once the node holds its slots. */
  async executeNode(run: BatchRun, job: NodeJob, ctx: JobContext): Promise<void> {
    if (run.stopReason) return; // never started: recorded as skipped when the batch finalizes
    const { groupIndex, nodeId } = job;
    const group = run.groups[groupIndex];
    const agentType = group.spec.agentType;
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(ctx.signal.reason);
    if (ctx.signal.aborted) onAbort();
    else ctx.signal.addEventListener('abort', onAbort, { once: true });
    run.dispatched++;
    run.running++;
    if (run.running > run.peak) {
      run.peak = run.running;
      this.recorder.recordPeak(run);
    }
    group.started++;
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
    try {
      let output;
      try {
        // the agent gets at most `maxInputChars` of the content (with a note saying so); the concept comes from the
        // same part, so a 5 MB node does not hold the event loop for its whole text
        const { input, omitted } = capNodeInput(
          await this.canvas.nodeContent(run.canvas, nodeId),
          this.options.maxInputChars,
        );
        inputOmitted = omitted;
        concept = conceptOf(input.content);
        // Retries never sleep past the node's own timeout or the batch deadline, whichever comes first.
        const deadline = Math.min(
          Date.now() + this.options.agentTimeoutMs,
          run.task.deadlineAt ? Date.parse(run.task.deadlineAt) : Number.POSITIVE_INFINITY,
        );
        calledAgent = true;
        output = await abortable(
          this.runner.run({
            agentType,
            node: input,
            signal: controller.signal,
            deadline,
            feedback: ctx.feedback,
          }),
          controller.signal,
        );
        controller.signal.throwIfAborted();
      } finally {
        durationMs = Math.round(performance.now() - t0);
        clearTimeout(nodeTimer);
        ctx.releaseAgentSlots();
        run.running--;
      }
      // what is copied into the vault is capped: the file at `maxResultBytes`, the canvas cards per card and result
      const title = `${agentType}: ${concept || nodeId}`;
      const result = capResultMarkdown(output.markdown, {
        title,
        maxBytes: this.options.maxResultBytes,
        inputOmitted,
      });
      const cards = output.structured && capStructuredOutput(output.structured);
      const written = await this.canvas.writeResult({
        canvas: run.canvas,
        taskId: run.taskId,
        sourceNodeId: nodeId,
        agentType,
        title,
        markdown: result.markdown,
        structured: cards?.structured,
        // the batch's last result: nothing of it can join a coalesced write any more
        last: run.lastResult,
        onFileWritten: () => ctx.releaseWriteSlot(),
      });
      this.estimates.observe(agentType, durationMs);
      failpoint('node.before-record');
      if (!written.canvas.placed) {
        throw new NodeNotFoundError(
          `${written.canvas.reason}; the result file is kept at ${written.filePath}`,
        );
      }
      this.recorder.recordNode(run, {
        groupIndex,
        nodeId,
        outcome: 'completed',
        filePath: written.filePath,
        fileSize: written.fileSize,
        durationMs,
        inputTokens: output.usage.inputTokens,
        outputTokens: output.usage.outputTokens,
        attempts: output.attempts ?? 1,
        ...truncation(inputOmitted, result.omitted, cards?.omitted ?? 0),
        startedAt,
        finishedAt: new Date().toISOString(),
      });
      this.recorder.emit('agent.completed', {
        taskId: run.taskId,
        canvasPath: run.task.canvasPath,
        groupId: group.spec.groupId,
        groupIndex,
        nodeId,
        agentType,
        concept: concept || nodeId,
        filePath: written.filePath,
        durationMs,
        completedAt: new Date().toISOString(),
      });
    } catch (err) {
      if (controller.signal.reason instanceof NodeAbort && controller.signal.reason.errorType === 'SHUTDOWN')
        return;
      const { errorType, message } = classify(err, controller.signal);
      const cost = err instanceof AgentRunError ? err.details : {};
      this.recorder.recordNode(run, {
        groupIndex,
        nodeId,
        outcome: 'failed',
        durationMs,
        errorType,
        errorMessage: this.recorder.publicText(message),
        inputTokens: cost.usage?.inputTokens ?? 0,
        outputTokens: cost.usage?.outputTokens ?? 0,
        attempts: cost.attempts ?? (calledAgent ? 1 : 0),
        startedAt,
        finishedAt: new Date().toISOString(),
      });
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
    }
  }
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
