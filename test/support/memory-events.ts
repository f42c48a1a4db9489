import type { MemoryEventDraft } from '../../src/memory';

/** The i-th learning-memory event of task t1 (ids e000, e001, … in creation order, one millisecond apart). */
export function memoryEvent(
  i: number,
  createdAt = new Date(Date.UTC(2026, 10, 26, 10, 0, 0, i)).toISOString(),
): MemoryEventDraft {
  return {
    eventId: `e${String(i).padStart(3, '0')}`,
    taskId: 't1',
    canvasPath: 'Biology/cells.canvas',
    nodeId: `n${i}`,
    agentType: 'oral-explanation',
    memoryType: 'explanation_generated',
    concept: `Concept ${i}`,
    createdAt,
    payload: { duration_ms: i },
  };
}
