import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { RedisKeys } from '../redis';
import {
  MAX_OUTBOX_ERROR_CHARS,
  type MemoryEvent,
  type MemoryEventDraft,
  MemoryOutbox,
  type MemoryOutboxStats,
} from './memory-outbox';

export interface RedisMemoryOutboxOptions {
  /** This deliverer's name in the consumer group; unique per process. Default: host, pid and a random tag. */
  consumer?: string;
  /**
   * How long an event handed to a deliverer stays its own without an answer before another deliverer may take it
   * (that deliverer died or hangs). Must exceed the drain loop's `attemptTimeoutMs`, or a slow but live delivery is
   * duplicated (harmless for the graph, which MERGEs on the event id, but wasted). Default 60 s.
   */
  claimIdleMs?: number;
  /** Close the connection on application shutdown (after the drain loop's last attempt). Default false. */
  quitOnShutdown?: boolean;
}

export const DEFAULT_CLAIM_IDLE_MS = 60_000;

/** The consumer group every process's drain loop reads the stream through. */
const GROUP = 'deliverers';

/**
 * Stores a new event (one atomic step): its record, its place in the pending and per-task orders, and a stream
 * entry for the consumer group (created with the stream, so no entry is ever appended before the group exists).
 * KEYS: event, created, attempts, entry, pending, task, stream. ARGV: id, draft JSON, createdAt, order member, group.
 */
const APPEND = `
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[1], 0)
redis.call('ZADD', KEYS[5], 0, ARGV[4])
redis.call('ZADD', KEYS[6], 0, ARGV[4])
if redis.call('EXISTS', KEYS[7]) == 0 then
  redis.call('XGROUP', 'CREATE', KEYS[7], ARGV[5], '0', 'MKSTREAM')
end
redis.call('HSET', KEYS[4], ARGV[1], redis.call('XADD', KEYS[7], '*', 'id', ARGV[1]))
return 1`;

/**
 * Marks pending events delivered, all or none (a script runs alone): delivered time, one more attempt, out of the
 * pending order, and its stream entry acknowledged and deleted (whichever deliverer held it).
 * KEYS: event, created, attempts, entry, pending, delivered_at, delivered count, stream. ARGV: group, at, ids….
 */
const MARK = `
local changed = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  if redis.call('HEXISTS', KEYS[1], id) == 1 and redis.call('HEXISTS', KEYS[6], id) == 0 then
    redis.call('HSET', KEYS[6], id, ARGV[2])
    redis.call('HINCRBY', KEYS[3], id, 1)
    redis.call('ZREM', KEYS[5], redis.call('HGET', KEYS[2], id) .. '\\0' .. id)
    local entry = redis.call('HGET', KEYS[4], id)
    if entry then
      redis.call('XACK', KEYS[8], ARGV[1], entry)
      redis.call('XDEL', KEYS[8], entry)
      redis.call('HDEL', KEYS[4], id)
    end
    changed = changed + 1
  end
end
if changed > 0 then redis.call('INCRBY', KEYS[7], changed) end
return changed`;

/** KEYS: event, attempts, delivered_at, error. ARGV: error text, ids…. */
const FAIL = `
for i = 2, #ARGV do
  local id = ARGV[i]
  if redis.call('HEXISTS', KEYS[1], id) == 1 and redis.call('HEXISTS', KEYS[3], id) == 0 then
    redis.call('HINCRBY', KEYS[2], id, 1)
    redis.call('HSET', KEYS[4], id, ARGV[1])
  end
end
return 0`;

/**
 * The `MemoryOutbox` in Redis, shared by every process of the service (made durable by the server's AOF). Each
 * event is a field of a few hashes keyed by its id (`HSETNX` makes `append` idempotent); two sorted sets keep the
 * delivery order (creation time, then id) of the pending events and of each task's; and each pending event has an
 * entry in a stream read through one consumer group by every process's drain loop.
 *
 * `claimBatch` is how the processes share the work: `XREADGROUP` hands each new entry to one deliverer, whose
 * pending list keeps it until `markDelivered` acknowledges it; `XAUTOCLAIM` gives entries a deliverer has held for
 * `claimIdleMs` without an answer (it died mid-batch) to another. `pendingBatch` stays a read of the oldest pending
 * events (status, tests) that claims nothing. The outbox does not own the connection: its creator closes it.
 */
export class RedisMemoryOutbox extends MemoryOutbox {
  readonly consumer: string;
  private readonly claimIdleMs: number;
  /** Where the next `XAUTOCLAIM` scan of the group's pending list starts. */
  private scanFrom = '0-0';
  private readonly k: {
    event: string;
    created: string;
    attempts: string;
    deliveredAt: string;
    error: string;
    entry: string;
    pending: string;
    delivered: string;
    stream: string;
  };

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly options: RedisMemoryOutboxOptions = {},
  ) {
    super();
    this.consumer = options.consumer ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.claimIdleMs = Math.max(0, options.claimIdleMs ?? DEFAULT_CLAIM_IDLE_MS);
    const key = (name: string): string => keys.key('memory', name);
    this.k = {
      event: key('event'),
      created: key('created'),
      attempts: key('attempts'),
      deliveredAt: key('delivered_at'),
      error: key('error'),
      entry: key('entry'),
      pending: key('pending'),
      delivered: key('delivered'),
      stream: key('stream'),
    };
  }
  /** The last phase of a shutdown: the drain loop's final attempt ran before (`beforeApplicationShutdown`). */
  async onApplicationShutdown(): Promise<void> {
    if (this.options.quitOnShutdown) await this.redis.quit().catch(() => undefined);
  }

  async append(event: MemoryEventDraft): Promise<boolean> {
    const k = this.k;
    const stored = await this.redis.eval(
      APPEND,
      7,
      k.event,
      k.created,
      k.attempts,
      k.entry,
      k.pending,
      this.taskKey(event.taskId),
      k.stream,
      event.eventId,
      JSON.stringify(draftOf(event)),
      event.createdAt,
      orderMember(event.createdAt, event.eventId),
      GROUP,
    );
    return stored === 1;
  }

  async pendingBatch(limit: number): Promise<MemoryEvent[]> {
    if (limit <= 0) return [];
    const members = await this.redis.zrange(this.k.pending, '0', String(limit - 1));
    return (await this.read(members.map(idOfMember))).filter((e) => e.deliveredAt === null);
  }

  /**
   * The batch this process delivers: first what it holds already (a failed attempt's events, and any it just took
   * over from a deliverer silent for `claimIdleMs`), then entries no deliverer has had yet. Ordered by creation time
   * within the batch; across batches roughly in order of appending.
   */
  override async claimBatch(limit: number): Promise<MemoryEvent[]> {
    if (limit <= 0) return [];
    try {
      return await this.claim(limit);
    } catch (err) {
      // no stream yet (nothing was ever appended), or its group was removed: make both and look again
      if (!(err instanceof Error && err.message.startsWith('NOGROUP'))) throw err;
      await this.redis.xgroup('CREATE', this.k.stream, GROUP, '0', 'MKSTREAM').catch((e: unknown) => {
        if (!(e instanceof Error && e.message.startsWith('BUSYGROUP'))) throw e;
      });
      return this.claim(limit);
    }
  }

  async markDelivered(eventIds: readonly string[], at: string): Promise<number> {
    if (eventIds.length === 0) return 0;
    const k = this.k;
    const changed = await this.redis.eval(
      MARK,
      8,
      k.event,
      k.created,
      k.attempts,
      k.entry,
      k.pending,
      k.deliveredAt,
      k.delivered,
      k.stream,
      GROUP,
      at,
      ...eventIds,
    );
    return Number(changed);
  }

  async recordFailure(eventIds: readonly string[], error: string): Promise<void> {
    if (eventIds.length === 0) return;
    const k = this.k;
    await this.redis.eval(
      FAIL,
      4,
      k.event,
      k.attempts,
      k.deliveredAt,
      k.error,
      error.slice(0, MAX_OUTBOX_ERROR_CHARS),
      ...eventIds,
    );
  }

  async counts(): Promise<MemoryOutboxStats> {
    // one MULTI: an event being marked is counted on one side, never both or neither
    const replies = await this.redis.multi().zcard(this.k.pending).get(this.k.delivered).exec();
    const [pending, delivered] = results(replies);
    return { pending: Number(pending ?? 0), delivered: Number(delivered ?? 0) };
  }

  async oldestPendingCreatedAt(): Promise<string | null> {
    const [first] = await this.redis.zrange(this.k.pending, '0', '0');
    return first === undefined ? null : first.slice(0, first.lastIndexOf('\0'));
  }

  async forTask(taskId: string): Promise<MemoryEvent[]> {
    const members = await this.redis.zrange(this.taskKey(taskId), '0', '-1');
    return this.read(members.map(idOfMember));
  }

  /** The last error kept for an event (redacted and cut by the caller and here), or `null`. */
  lastError(eventId: string): Promise<string | null> {
    return this.redis.hget(this.k.error, eventId);
  }

  // ---------------------------------------------------------------------------------------------------------------

  private async claim(limit: number): Promise<MemoryEvent[]> {
    const { stream } = this.k;
    // entries another deliverer (or this one, before a restart) held past the idle bound become this one's; one
    // call scans part of a long pending list, so the next call goes on from where this one stopped
    const [next] = (await this.redis.xautoclaim(
      stream,
      GROUP,
      this.consumer,
      this.claimIdleMs,
      this.scanFrom,
      'COUNT',
      limit,
      'JUSTID',
    )) as [string, ...unknown[]];
    this.scanFrom = typeof next === 'string' ? next : '0-0';
    // what this deliverer holds (re-reading it keeps it from looking idle), then new entries
    const held = streamEntries(
      await this.redis.xreadgroup('GROUP', GROUP, this.consumer, 'COUNT', limit, 'STREAMS', stream, '0'),
    );
    const fresh =
      held.length < limit
        ? streamEntries(
            await this.redis.xreadgroup(
              'GROUP',
              GROUP,
              this.consumer,
              'COUNT',
              limit - held.length,
              'STREAMS',
              stream,
              '>',
            ),
          )
        : [];
    const entries = [...held, ...fresh];
    const events = await this.read(entries.flatMap((e) => (e.eventId === null ? [] : [e.eventId])));
    const pending = new Set(events.filter((e) => e.deliveredAt === null).map((e) => e.eventId));
    // an entry whose event is gone or delivered (or whose data was deleted) is done with
    const stale = entries.filter((e) => e.eventId === null || !pending.has(e.eventId)).map((e) => e.entryId);
    if (stale.length)
      await this.redis
        .multi()
        .xack(stream, GROUP, ...stale)
        .xdel(stream, ...stale)
        .exec();
    return events
      .filter((e) => e.deliveredAt === null)
      .sort((a, b) => compare(a.createdAt, b.createdAt) || compare(a.eventId, b.eventId));
  }

  /** The stored events with these ids, in the given order (unknown ids left out), read in one MULTI. */
  private async read(ids: readonly string[]): Promise<MemoryEvent[]> {
    if (ids.length === 0) return [];
    const k = this.k;
    const replies = await this.redis
      .multi()
      .hmget(k.event, ...ids)
      .hmget(k.deliveredAt, ...ids)
      .hmget(k.attempts, ...ids)
      .exec();
    const [drafts, deliveredAt, attempts] = results(replies) as (string | null)[][];
    return ids.flatMap((_, i) => {
      const json = drafts[i];
      if (json === null) return [];
      return [
        {
          ...(JSON.parse(json) as MemoryEventDraft),
          deliveredAt: deliveredAt[i],
          attempts: Number(attempts[i] ?? 0),
        },
      ];
    });
  }

  private taskKey(taskId: string): string {
    return this.keys.key('memory', 'task', taskId);
  }
}

/** The draft's own members only (a caller's object may carry more), in a fixed order. */
function draftOf(e: MemoryEventDraft): MemoryEventDraft {
  return {
    eventId: e.eventId,
    taskId: e.taskId,
    canvasPath: e.canvasPath,
    nodeId: e.nodeId,
    agentType: e.agentType,
    memoryType: e.memoryType,
    concept: e.concept,
    createdAt: e.createdAt,
    payload: e.payload,
  };
}

/**
 * Members of the order sets, all with score 0, so Redis sorts them bytewise: creation time, then id (a NUL
 * separator sorts a shorter time before a longer one it prefixes, as comparing the two strings does).
 */
function orderMember(createdAt: string, eventId: string): string {
  return `${createdAt}\0${eventId}`;
}

function idOfMember(member: string): string {
  return member.slice(member.lastIndexOf('\0') + 1);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A MULTI's replies, or its first error as a rejection. */
function results(replies: [Error | null, unknown][] | null): unknown[] {
  if (replies === null) throw new Error('Redis discarded the transaction');
  return replies.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}

/** `XREADGROUP`'s reply for one stream: each entry's id and the event id it carries (`null` once deleted). */
function streamEntries(reply: unknown): { entryId: string; eventId: string | null }[] {
  if (!Array.isArray(reply) || reply.length === 0) return [];
  const [, entries] = reply[0] as [string, [string, string[] | null][]];
  return entries.map(([entryId, fields]) => {
    const at = fields ? fields.indexOf('id') : -1;
    return { entryId, eventId: fields && at >= 0 && at % 2 === 0 ? (fields[at + 1] ?? null) : null };
  });
}
