import { type CanvasItemIds, type GeneratedItems, GeneratedNodes, sortedItems } from './generated-nodes';

/** `GeneratedNodes` in memory, for unit tests: per canvas, one map per kind from id to the task that added it. */
export class InMemoryGeneratedNodes extends GeneratedNodes {
  private readonly canvases = new Map<string, { nodes: Map<string, string>; edges: Map<string, string> }>();

  record(canvasPath: string, taskId: string, items: CanvasItemIds): Promise<void> {
    let canvas = this.canvases.get(canvasPath);
    if (!canvas) this.canvases.set(canvasPath, (canvas = { nodes: new Map(), edges: new Map() }));
    for (const [ids, known] of [
      [items.nodeIds, canvas.nodes],
      [items.edgeIds, canvas.edges],
    ] as const) {
      for (const id of ids) if (!known.has(id)) known.set(id, taskId);
    }
    return Promise.resolve();
  }

  inCanvas(canvasPath: string): Promise<GeneratedItems> {
    const canvas = this.canvases.get(canvasPath);
    const list = (known?: Map<string, string>) => [...(known ?? [])].map(([id, taskId]) => ({ id, taskId }));
    return Promise.resolve(sortedItems({ nodes: list(canvas?.nodes), edges: list(canvas?.edges) }));
  }
}
