/**
 * A piece of a running node's text, for the SSE subscribers that asked for it (`?include=deltas`): its chunk and
 * `offset`, the characters (UTF-16 code units) of the node's output before it. Never stored, never replayed.
 */
export interface OutputDelta {
  taskId: string;
  nodeId: string;
  /** The group's `group_id` as submitted (string or integer). */
  groupId: string | number;
  text: string;
  offset: number;
}

export type DeltaListener = (delta: OutputDelta) => void;

/**
 * Where the running nodes' coalesced text goes and where a task's subscribers get it, from whichever process runs
 * the node: best effort (a delta may be lost; the final result is the source of truth). `wanted` tells a producer
 * cheaply whether a delta of the task could reach anyone now.
 */
export abstract class OutputDeltas {
  abstract publish(delta: OutputDelta): void;
  /** `listener` gets the task's deltas until the returned function is called. */
  abstract subscribe(taskId: string, listener: DeltaListener): () => void;
  abstract wanted(taskId: string): boolean;
  /** Listeners of a task in this process. */
  abstract listeners(taskId: string): number;
}

/** The task's listeners, per task (both adapters keep their process's listeners here). */
export class DeltaListeners {
  private readonly byTask = new Map<string, Set<DeltaListener>>();

  /** Adds `listener`; true when it is the task's first. */
  add(taskId: string, listener: DeltaListener): boolean {
    let set = this.byTask.get(taskId);
    const first = !set;
    if (!set) this.byTask.set(taskId, (set = new Set()));
    set.add(listener);
    return first;
  }

  /** Removes `listener`; true when it was the task's last. */
  remove(taskId: string, listener: DeltaListener): boolean {
    const set = this.byTask.get(taskId);
    if (!set?.delete(listener) || set.size > 0) return false;
    this.byTask.delete(taskId);
    return true;
  }

  count(taskId: string): number {
    return this.byTask.get(taskId)?.size ?? 0;
  }

  /** Hands `delta` to its task's listeners; one that throws does not keep it from the others. */
  deliver(delta: OutputDelta): void {
    const set = this.byTask.get(delta.taskId);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(delta);
      } catch {
        // a listener's own failure (a closed socket) is its own business
      }
    }
  }
}

/** The embedded engine: nodes run in this process, so do their subscribers. */
export class LocalOutputDeltas extends OutputDeltas {
  private readonly all = new DeltaListeners();

  publish(delta: OutputDelta): void {
    this.all.deliver(delta);
  }

  subscribe(taskId: string, listener: DeltaListener): () => void {
    this.all.add(taskId, listener);
    return () => void this.all.remove(taskId, listener);
  }

  wanted(taskId: string): boolean {
    return this.all.count(taskId) > 0;
  }

  listeners(taskId: string): number {
    return this.all.count(taskId);
  }
}
