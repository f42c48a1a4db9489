import { DomainError, type DomainErrorCode } from '../common';
import type { TaskStatus } from './task.types';

export class TaskNotFoundError extends DomainError {
  readonly code: DomainErrorCode = 'task-not-found';
  constructor(readonly taskId: string) {
    super(`No task with id ${taskId} (it may have expired)`);
  }
}

export class InvalidTaskIdError extends DomainError {
  readonly code: DomainErrorCode = 'invalid-task-id';
  constructor(taskId: string) {
    super(`"${taskId.slice(0, 100)}" is not a task id (a UUID is expected)`, [
      { field: 'task_id', message: 'must be a UUID' },
    ]);
  }
}

export class InvalidStateTransitionError extends DomainError {
  readonly code: DomainErrorCode = 'invalid-state-transition';
  constructor(
    readonly taskId: string,
    readonly from: TaskStatus,
    readonly to: TaskStatus,
  ) {
    super(`Task ${taskId} cannot go from ${from} to ${to}`);
  }
}

export class TaskAlreadyFinishedError extends DomainError {
  readonly code: DomainErrorCode = 'task-already-finished';
  constructor(taskId: string, status: TaskStatus) {
    super(`Task ${taskId} already finished with status ${status}`);
  }
}

export class IdempotencyKeyReusedError extends DomainError {
  readonly code: DomainErrorCode = 'idempotency-key-reused';
  constructor(key: string, taskId: string) {
    super(
      `Idempotency-Key "${key.slice(0, 100)}" was already used for task ${taskId} with a different request; use a new key`,
    );
  }
}
