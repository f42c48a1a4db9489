import type { DomainErrorCode } from './domain-error';

/** Maps every domain error code to its HTTP status and problem title. The only place that knows both. */
export const PROBLEM_TABLE: Readonly<Record<DomainErrorCode, { status: number; title: string }>> = {
  'validation-failed': { status: 400, title: 'Request validation failed' },
  'canvas-path-outside-vault': { status: 400, title: 'Canvas path is outside the vault' },
  'invalid-task-id': { status: 400, title: 'Malformed task id' },
  'json-too-deep': { status: 400, title: 'JSON body nested too deeply' },
  'invalid-content-encoding': { status: 400, title: 'Request body does not match its Content-Encoding' },
  'canvas-not-found': { status: 404, title: 'Canvas file not found' },
  'task-not-found': { status: 404, title: 'Task not found' },
  'invalid-state-transition': { status: 409, title: 'Invalid task state transition' },
  'task-already-finished': { status: 409, title: 'Task already finished' },
  'unsupported-charset': { status: 415, title: 'Unsupported request charset' },
  'unsupported-content-encoding': { status: 415, title: 'Unsupported request Content-Encoding' },
  'invalid-canvas': { status: 422, title: 'Not a valid JSON Canvas file' },
  'unknown-node-ids': { status: 422, title: 'Node ids not found in the canvas' },
  'duplicate-group-ids': { status: 422, title: 'Group ids repeated in the request' },
  'idempotency-key-reused': { status: 422, title: 'Idempotency key reused with a different request' },
  'budget-without-price': { status: 422, title: 'A budget needs a known price' },
  'shutting-down': { status: 503, title: 'Service is shutting down' },
  'memory-unavailable': { status: 503, title: 'Learning memory cannot be read right now' },
  'no-eligible-nodes': { status: 422, title: 'No node of the canvas can be planned' },
  'canvas-too-large': { status: 413, title: 'Canvas too large to plan' },
};

/** `type` URI of a problem: a stable, documented identifier (RFC 9457 §3.1.1). */
export function problemType(code: string): string {
  return `https://canvas-batch.dev/problems/${code}`;
}
