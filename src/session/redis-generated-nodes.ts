import type { Redis } from 'ioredis';
import { type CanvasItemIds, type GeneratedItems, GeneratedNodes, sortedItems } from './generated-nodes';
import type { RedisEventLog } from './redis-event-log';
import type { RedisSessionKeys } from './redis-session-layout';

/**
 * `GeneratedNodes` on Redis, for the distributed engine: one hash per canvas (`P:generated:<canvas path>`), field
 * `n:<id>` or `e:<id>` → the task that added it. A record is one `MULTI` of `HSETNX`s (atomic, and harmless when
 * ioredis sends it again after a dropped connection). Runs on the `RedisEventLog`'s command connection: the log owns
 * and quits it.
 */
export class RedisGeneratedNodes extends GeneratedNodes {
  private readonly redis: Redis;
  private readonly keys: RedisSessionKeys;

  constructor(events: RedisEventLog) {
    super();
    this.redis = events.redis;
    this.keys = events.keys;
  }

  async record(canvasPath: string, taskId: string, items: CanvasItemIds): Promise<void> {
    if (!items.nodeIds.length && !items.edgeIds.length) return;
    const key = this.keys.generated(canvasPath);
    const tx = this.redis.multi();
    for (const id of items.nodeIds) tx.hsetnx(key, `n:${id}`, taskId);
    for (const id of items.edgeIds) tx.hsetnx(key, `e:${id}`, taskId);
    const replies = await tx.exec();
    const failed = replies?.find(([err]) => err);
    if (!replies || failed)
      throw failed?.[0] ?? new Error('the record of generated canvas items was aborted');
  }

  async inCanvas(canvasPath: string): Promise<GeneratedItems> {
    const fields = await this.redis.hgetall(this.keys.generated(canvasPath));
    const found: GeneratedItems = { nodes: [], edges: [] };
    for (const [field, taskId] of Object.entries(fields)) {
      const item = { id: field.slice(2), taskId };
      if (field.startsWith('n:')) found.nodes.push(item);
      else if (field.startsWith('e:')) found.edges.push(item);
    }
    return sortedItems(found);
  }
}
