import { Injectable } from '@nestjs/common';
import { createHash, randomUUID } from 'node:crypto';
import { AgentRunner, AUTO_AGENT, findAgent } from '../../agent';
import { CanvasService, type ResolvedCanvasPath } from '../../canvas';
import type { ProblemFieldError } from '../../common';
import { InjectCanvasBatchOptions, type ResolvedCanvasBatchOptions } from '../../config';
import { type GroupSpec, TaskStore } from '../../session';
import { pricing } from '../cost/pricing';
import {
  BatchValidationError,
  BudgetWithoutPriceError,
  DuplicateGroupIdsError,
} from '../orchestrator.errors';
import {
  type BatchRequest,
  DEFAULT_MAX_CONCURRENT,
  DEFAULT_TIMEOUT_MS,
  type SubmitResult,
} from './run.types';

/** A batch request checked against the catalogue, the vault and the canvas (nothing stored). */
export interface CheckedBatch {
  groups: GroupSpec[];
  canvas: ResolvedCanvasPath;
  maxConcurrent: number;
  timeoutMs: number;
  budgetUsd: number | undefined;
}

/**
 * Admission: validates a batch against the agent catalogue, the vault and the canvas, and stores it `pending`
 * (agent names canonical). With an idempotency key seen before, returns the earlier task (a repeat with another
 * body is refused by the store). Nothing is written for a bad request.
 */
@Injectable()
export class Admission {
  constructor(
    private readonly store: TaskStore,
    private readonly canvas: CanvasService,
    private readonly runner: AgentRunner,
    @InjectCanvasBatchOptions() private readonly options: ResolvedCanvasBatchOptions,
  ) {}

  /**
   * Checks a batch as `admit` does — agents, caps, budget, the canvas and its node ids (400/404/422) — without
   * storing anything: what `POST /parallel/estimate` answers for.
   */
  async check(request: BatchRequest): Promise<CheckedBatch> {
    const groups = canonicalGroups(request.groups);
    const maxConcurrent = request.maxConcurrent ?? DEFAULT_MAX_CONCURRENT;
    const timeoutMs = request.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const budgetUsd = request.budgetUsd;
    const problems: ProblemFieldError[] = [];
    if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1 || maxConcurrent > 50) {
      problems.push({ field: 'max_concurrent', message: 'must be an integer between 1 and 50' });
    }
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
      problems.push({ field: 'timeout', message: 'must be positive' });
    if (
      budgetUsd !== undefined &&
      (typeof budgetUsd !== 'number' || !Number.isFinite(budgetUsd) || budgetUsd < 0)
    )
      problems.push({ field: 'budget_usd', message: 'must be a finite number of USD, 0 or more' });
    if (problems.length) throw new BatchValidationError(problems);
    const canvas = await this.canvas.open(
      request.canvasPath,
      groups.flatMap((g, gi) =>
        g.nodeIds.map((nodeId, ni) => ({ field: `groups[${gi}].node_ids[${ni}]`, nodeId })),
      ),
    );
    return { groups, canvas, maxConcurrent, timeoutMs, budgetUsd };
  }

  /** Validates and stores the batch; also gives the canvas as checked here, for its run to start from. */
  async admit(request: BatchRequest): Promise<SubmitResult & { canvas: ResolvedCanvasPath }> {
    const { groups, canvas, maxConcurrent, timeoutMs, budgetUsd } = await this.check(request);
    // a budget is held to the price per token: without one it cannot be enforced (refused, not ignored)
    if (budgetUsd !== undefined && !pricing(this.options, this.runner)) throw new BudgetWithoutPriceError();
    const idempotency = request.idempotencyKey
      ? {
          key: request.idempotencyKey,
          requestHash: fingerprint(
            canvas.relPath,
            groups,
            maxConcurrent,
            timeoutMs,
            // the opt-out and the budget only when given: the fingerprints of earlier requests stay as they were
            ...(request.cache === false ? [{ cache: false }] : []),
            ...(budgetUsd === undefined ? [] : [budgetUsd]),
          ),
        }
      : undefined;
    const stored = await this.store.createTask(
      {
        taskId: randomUUID(),
        canvasPath: canvas.relPath,
        maxConcurrent,
        timeoutMs,
        groups,
        createdAt: new Date().toISOString(),
        ...(request.cache === false && { cache: false }),
        ...(budgetUsd !== undefined && { budgetUsd }),
      },
      idempotency,
    );
    return { ...stored, canvas };
  }
}

/** Canonical agent names (aliases resolved), checked to be runnable; group ids unique. */
function canonicalGroups(groups: readonly GroupSpec[]): GroupSpec[] {
  const problems: ProblemFieldError[] = [];
  let duplicates = 0;
  const seen = new Set<string>();
  if (!Array.isArray(groups) || groups.length === 0)
    problems.push({ field: 'groups', message: 'at least one group is needed' });
  const out = (groups ?? []).map((g, i) => {
    // `auto`: each node is routed to an agent when it runs
    const agent = g.agentType === AUTO_AGENT ? undefined : findAgent(g.agentType);
    if (!agent && g.agentType !== AUTO_AGENT)
      problems.push({
        field: `groups[${i}].agent_type`,
        message: `unknown agent "${g.agentType}"; see GET /agents (or "auto")`,
      });
    else if (agent && !agent.runnable)
      problems.push({
        field: `groups[${i}].agent_type`,
        message: `agent "${agent.name}" cannot run in a batch`,
      });
    const key = `${typeof g.groupId}:${String(g.groupId)}`;
    if (seen.has(key)) {
      duplicates += 1;
      problems.push({
        field: `groups[${i}].group_id`,
        message: `duplicate group_id ${JSON.stringify(g.groupId)}`,
      });
    }
    seen.add(key);
    if (!Array.isArray(g.nodeIds) || g.nodeIds.length === 0)
      problems.push({ field: `groups[${i}].node_ids`, message: 'at least one node id is needed' });
    else if (new Set(g.nodeIds).size !== g.nodeIds.length)
      problems.push({ field: `groups[${i}].node_ids`, message: 'node ids must be unique within a group' });
    return { groupId: g.groupId, agentType: agent?.name ?? g.agentType, nodeIds: [...(g.nodeIds ?? [])] };
  });
  // only repeated group ids: a request its schema allows (422); anything else, all problems at once (400)
  if (problems.length && duplicates === problems.length) throw new DuplicateGroupIdsError(problems);
  if (problems.length) throw new BatchValidationError(problems);
  return out;
}

function fingerprint(...parts: unknown[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}
