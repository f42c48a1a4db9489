import { InvalidStateTransitionError } from './task.errors';
import type { TaskStatus } from './task.types';

const ALLOWED: Readonly<Record<TaskStatus, readonly TaskStatus[]>> = {
  pending: ['running', 'cancelled', 'failed'],
  running: ['completed', 'partial_failure', 'failed', 'cancelled'],
  completed: [],
  partial_failure: [],
  failed: [],
  cancelled: [],
};

/** Throws `InvalidStateTransitionError` unless `from → to` is a legal step of a task's lifecycle. */
export function assertTransition(taskId: string, from: TaskStatus, to: TaskStatus): void {
  if (!ALLOWED[from].includes(to)) throw new InvalidStateTransitionError(taskId, from, to);
}
