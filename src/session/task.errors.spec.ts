import {
  IdempotencyKeyReusedError,
  InvalidTaskIdError,
  TaskNotFoundError,
  TaskAlreadyFinishedError,
} from './task.errors';

describe('session errors', () => {
  it('TaskNotFoundError names the task and hints at expiry', () => {
    const err = new TaskNotFoundError('abc');
    expect(err).toMatchObject({ code: 'task-not-found', taskId: 'abc', name: 'TaskNotFoundError' });
    expect(err.message).toBe('No task with id abc (it may have expired)');
  });

  it('InvalidTaskIdError points at the task_id field and truncates huge input', () => {
    const err = new InvalidTaskIdError('x'.repeat(500));
    expect(err.code).toBe('invalid-task-id');
    expect(err.errors).toEqual([{ field: 'task_id', message: 'must be a UUID' }]);
    expect(err.message).toMatch(/^"x{100}" is not a task id \(a UUID/);
  });

  it('TaskAlreadyFinishedError names the final status', () => {
    const err = new TaskAlreadyFinishedError('t1', 'partial_failure');
    expect(err.code).toBe('task-already-finished');
    expect(err.message).toBe('Task t1 already finished with status partial_failure');
  });

  it('IdempotencyKeyReusedError truncates a huge key', () => {
    const err = new IdempotencyKeyReusedError('k'.repeat(300), 't1');
    expect(err.code).toBe('idempotency-key-reused');
    expect(err.message).toContain(`"${'k'.repeat(100)}" was already used for task t1`);
    expect(err.message).not.toContain('k'.repeat(101));
  });
});
