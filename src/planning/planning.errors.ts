import { DomainError, type DomainErrorCode, type ProblemFieldError } from '../common';

/** Every node asked about was left out (generated, empty, a group, another colour …): nothing to plan. */
export class NoEligibleNodesError extends DomainError {
  readonly code: DomainErrorCode = 'no-eligible-nodes';
  constructor(canvasPath: string, summary: string, errors: ProblemFieldError[]) {
    super(`no node of "${canvasPath}" can be planned: ${summary}`, errors);
  }
}

/** More nodes than a plan considers (`MAX_PLAN_NODES`): the plan is refused rather than left to run for long. */
export class CanvasTooLargeError extends DomainError {
  readonly code: DomainErrorCode = 'canvas-too-large';
  constructor(canvasPath: string, nodes: number, limit: number) {
    super(
      `"${canvasPath}" has ${nodes} nodes to consider; a plan takes at most ${limit}: ` +
        'pass node_ids or colour to plan part of it',
      [{ field: 'canvas_path', message: `${nodes} nodes, more than the limit of ${limit}` }],
    );
  }
}
