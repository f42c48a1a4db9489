/** The ids of cards (nodes) and edges one result puts on a canvas. */
export interface CanvasItemIds {
  nodeIds: readonly string[];
  edgeIds: readonly string[];
}

/** One card or edge the service added, and the task that added it first. */
export interface GeneratedItem {
  id: string;
  taskId: string;
}

/** What the service added to one canvas: its cards and its edges, each sorted by id. */
export interface GeneratedItems {
  nodes: GeneratedItem[];
  edges: GeneratedItem[];
}

/**
 * Port: every card and edge the service wrote into a canvas, per canvas (its vault-relative path), kept so that the
 * learner's own nodes can be told from generated ones (`GET /canvases/nodes` marks these `result: true`) without
 * guessing from their content. Kept apart from the tasks: a task's retention ends, its cards stay in the canvas.
 * Adapters: SQLite (embedded engine), Redis (distributed engine), in-memory (unit tests); every adapter passes
 * `generated-nodes.contract.ts`.
 */
export abstract class GeneratedNodes {
  /**
   * Remembers `items` as `taskId`'s in `canvasPath`, in one atomic step. Idempotent: an id known already keeps the
   * task that recorded it first (ids are deterministic, so a node run again after a crash records the same ones).
   */
  abstract record(canvasPath: string, taskId: string, items: CanvasItemIds): Promise<void>;
  /** Everything recorded for `canvasPath` (the exact path: no case folding or normalising here). */
  abstract inCanvas(canvasPath: string): Promise<GeneratedItems>;
}

/** `items` as one sorted list per kind (what every adapter returns). */
export function sortedItems(items: GeneratedItems): GeneratedItems {
  const byId = (a: GeneratedItem, b: GeneratedItem): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  return { nodes: [...items.nodes].sort(byId), edges: [...items.edges].sort(byId) };
}
