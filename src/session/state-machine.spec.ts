import { InvalidStateTransitionError } from './task.errors';
import { assertTransition } from './state-machine';
import { isTerminal, TASK_STATUSES, type TaskStatus } from './task.types';

const LEGAL: Record<TaskStatus, TaskStatus[]> = {
  pending: ['running', 'cancelled', 'failed'],
  running: ['completed', 'partial_failure', 'failed', 'cancelled'],
  completed: [],
  partial_failure: [],
  failed: [],
  cancelled: [],
};

describe('assertTransition', () => {
  const pairs = TASK_STATUSES.flatMap((from) =>
    TASK_STATUSES.map((to) => [from, to] as [TaskStatus, TaskStatus]),
  );

  it.each(pairs)('%s → %s follows the lifecycle', (from, to) => {
    if (LEGAL[from].includes(to)) {
      expect(() => assertTransition('t1', from, to)).not.toThrow();
    } else {
      expect(() => assertTransition('t1', from, to)).toThrow(new InvalidStateTransitionError('t1', from, to));
    }
  });

  it('explains the refused step', () => {
    const err = new InvalidStateTransitionError('t1', 'running', 'running');
    expect(err.message).toBe('Task t1 cannot go from running to running');
    expect(err.code).toBe('invalid-state-transition');
    expect(err.name).toBe('InvalidStateTransitionError');
  });
});

describe('isTerminal', () => {
  it('is true exactly for the four final statuses', () => {
    expect(TASK_STATUSES.filter(isTerminal)).toEqual(['completed', 'partial_failure', 'failed', 'cancelled']);
  });
});
