import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { RedisKeys } from '../redis';
import { assertTransition } from './state-machine';
import type { EventDraft } from './task-store';
import { assertTaskEventTypes } from './task-events';
import type { GroupSpec, PerformanceMetrics, TaskEventRecord, TaskRecord, TaskStatus } from './task.types';
import { TASK_STATUSES } from './task.types';

/*
 * How the distributed engine's session state lies in Redis, shared by `RedisEventLog` and `RedisTaskStore`: the key
 * names and the Lua scripts. Every write that stores events is one script (Redis runs a script alone, so ids are
 * gap-free however many processes append, and outcome and events are stored together or not at all). A script
 * checks everything before its first write: Redis does not roll back a script that fails half-way.
 *
 * Keys (P = the prefix):
 *   P:task:<id>                 hash: the task's fields (`TaskFields`), `last` = its last event id (the counter)
 *   P:task:<id>:events          stream: event n has the id `<n>-0`, field `r` = the record's JSON
 *   P:task:<id>:results         hash: `<group>\0<node>` → the node's outcome as JSON
 *   P:task:<id>:result-meta     hash: `<group>\0<node>` → `in,out,dur,<order member>` (what replacing it undoes)
 *   P:task:<id>:result-order    zset, all scores 0: `<group>\0<outcome>\0<finishedAt>\0<node>` (finishing order)
 *   P:task:<id>:summary         hash: `<group>\0<outcome>\0n|in|out|dur` → count and sums
 *   P:task:<id>:budget          hash: `s` spent, `R` reserved, `r:<group>\0<node>` one open reservation (nano-USD)
 *   P:tasks, P:tasks:status:<s> zsets, all scores 0: `<createdAt>\0<seq, 16 digits>\0<id>` (creation order)
 *   P:tasks:seq                 counter for the member above (ties of createdAt by insertion)
 *   P:tasks:expiring            zset, all scores 0: `<expiresAt>\0<id>`
 *   P:idem:<key>                the task id an idempotency key created
 *   P:agent-durations           hash: agent type → `{"meanMs":…,"samples":…}`
 *   P:generated:<canvas path>   hash: `n:<node id>` / `e:<edge id>` → the task that added that card or edge
 *   P:result-cache:<key>        string: one cached agent output as JSON (`CachedResult`), expiring after the TTL
 *   P:result-cache              zset: cache key → its `createdAt` in epoch ms (expiry and oldest-first eviction)
 *   P:op:<uuid>                 a write already done (see `OP_TTL_S`)
 *   P:events                    pub/sub channel: `<origin>\n[<records>]` per script that appended
 *
 * Not for Redis Cluster: scripts reach keys they compute (one Redis, or a primary with replicas).
 */

/**
 * How long a write remembers it was done. ioredis sends a command again when the connection dropped before its
 * reply (`autoResendUnfulfilledCommands`): a script that ran already then answers as it did, instead of appending
 * its events twice or refusing a transition it made itself.
 */
export const OP_TTL_S = 3600;

/** The task hash's fields (absent = null). */
export type TaskFields = Partial<
  Record<
    | 'id'
    | 'canvas'
    | 'status'
    | 'max'
    | 'timeout'
    | 'groups'
    | 'total'
    | 'created'
    | 'started'
    | 'completed'
    | 'deadline'
    | 'error'
    | 'metrics'
    | 'last'
    | 'idem'
    | 'hash'
    | 'resumes'
    | 'peak'
    | 'cancel'
    | 'nocache'
    | 'expires'
    | 'order'
    | 'budget',
    string
  >
>;

export class RedisSessionKeys {
  private readonly keys: RedisKeys;

  constructor(readonly prefix: string) {
    this.keys = new RedisKeys(prefix);
  }

  task(taskId: string): string {
    return this.keys.key('task', taskId);
  }
  events(taskId: string): string {
    return `${this.task(taskId)}:events`;
  }
  results(taskId: string): string {
    return `${this.task(taskId)}:results`;
  }
  resultMeta(taskId: string): string {
    return `${this.task(taskId)}:result-meta`;
  }
  resultOrder(taskId: string): string {
    return `${this.task(taskId)}:result-order`;
  }
  summary(taskId: string): string {
    return `${this.task(taskId)}:summary`;
  }
  /** The task's budget ledger (`RedisBudgetLedger`). */
  budget(taskId: string): string {
    return `${this.task(taskId)}:budget`;
  }
  tasks(status?: TaskStatus): string {
    return status ? this.keys.key('tasks', 'status', status) : this.keys.key('tasks');
  }
  tasksSeq(): string {
    return this.keys.key('tasks', 'seq');
  }
  expiring(): string {
    return this.keys.key('tasks', 'expiring');
  }
  idempotency(key: string): string {
    return this.keys.key('idem', key);
  }
  agentDurations(): string {
    return this.keys.key('agent-durations');
  }
  /** The canvas path comes last: nothing is appended after it, so no path can name another canvas's key. */
  generated(canvasPath: string): string {
    return this.keys.key('generated', canvasPath);
  }
  /** One result-cache entry; the key (a hash) comes last, like the canvas path above. */
  resultCache(key: string): string {
    return this.keys.key('result-cache', key);
  }
  /** The result cache's index: what `resultCache(key)` is prefixed with, without the key. */
  resultCacheIndex(): string {
    return this.keys.key('result-cache');
  }
  /** A fresh key for one write's replay guard. */
  op(): string {
    return this.keys.key('op', randomUUID());
  }
  get channel(): string {
    return this.keys.key('events');
  }
}

/**
 * Appends the events given at ARGV[at] (a count, then each record's JSON after its id) to the task's stream, ids
 * from the task's counter, and publishes them unless `channel` is ''. The records are built by concatenation: the
 * JSON made in JS is stored as it is (cjson would turn an empty array into an object). Returns the first id (0: none).
 */
const APPEND_EVENTS = `
local function append_events(task_key, stream_key, at, channel, origin)
  local count = tonumber(ARGV[at])
  if count == 0 then return 0 end
  local first = redis.call('HINCRBY', task_key, 'last', count) - count + 1
  local records = {}
  for i = 1, count do
    local id = first + i - 1
    local record = '{"id":' .. id .. ARGV[at + i]
    redis.call('XADD', stream_key, id .. '-0', 'r', record)
    records[i] = record
  end
  if channel ~= '' then
    redis.call('PUBLISH', channel, origin .. '\\n[' .. table.concat(records, ',') .. ']')
  end
  return first
end
`;

/** KEYS: task, stream, op. ARGV: channel, origin, events. → first id, -1 for an unknown task. */
const APPEND = `${APPEND_EVENTS}
local done = redis.call('GET', KEYS[3])
if done then return tonumber(done) end
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local first = append_events(KEYS[1], KEYS[2], 3, ARGV[1], ARGV[2])
redis.call('SET', KEYS[3], first, 'EX', ${OP_TTL_S})
return first
`;

/**
 * KEYS: task, tasks, seq, op, idempotency key ('' without one). ARGV: prefix, task id, request hash, createdAt,
 * field/value pairs. → {'created'|'existing', fields} | {'reused', earlier id} | {'exists'}.
 */
const CREATE = `
local task_key, tasks_key, seq_key, op_key, idem_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local prefix, task_id = ARGV[1], ARGV[2]
local done = redis.call('GET', op_key)
if done then return {'created', redis.call('HGETALL', prefix .. ':task:' .. done)} end
if idem_key ~= '' then
  local earlier = redis.call('GET', idem_key)
  if earlier then
    local earlier_key = prefix .. ':task:' .. earlier
    local hash = redis.call('HGET', earlier_key, 'hash')
    if hash then
      if hash ~= ARGV[3] then return {'reused', earlier} end
      return {'existing', redis.call('HGETALL', earlier_key)}
    end
  end
end
if redis.call('EXISTS', task_key) == 1 then return {'exists'} end
local seq = redis.call('INCR', seq_key)
local member = ARGV[4] .. '\\0' .. string.format('%016d', seq) .. '\\0' .. task_id
redis.call('HSET', task_key, 'order', member, unpack(ARGV, 5))
redis.call('ZADD', tasks_key, 0, member)
redis.call('ZADD', prefix .. ':tasks:status:pending', 0, member)
if idem_key ~= '' then redis.call('SET', idem_key, task_id) end
redis.call('SET', op_key, task_id, 'EX', ${OP_TTL_S})
return {'created', redis.call('HGETALL', task_key)}
`;

/**
 * KEYS: task, stream, op, expiring. ARGV: prefix, channel, origin, task id, to, ' <allowed from> ', clear error
 * ('1'/'0'), expiresAt ('' to keep), pair count, field/value pairs, events.
 * → {'ok', fields, first id} | {'not-found'} | {'invalid', from}.
 */
const TRANSITION = `${APPEND_EVENTS}
local task_key = KEYS[1]
local prefix, task_id, to = ARGV[1], ARGV[4], ARGV[5]
local done = redis.call('GET', KEYS[3])
if done then return {'ok', redis.call('HGETALL', task_key), tonumber(done)} end
local from = redis.call('HGET', task_key, 'status')
if not from then return {'not-found'} end
if not string.find(ARGV[6], ' ' .. from .. ' ', 1, true) then return {'invalid', from} end
local order = redis.call('HGET', task_key, 'order')
redis.call('ZREM', prefix .. ':tasks:status:' .. from, order)
redis.call('ZADD', prefix .. ':tasks:status:' .. to, 0, order)
local pairs_end = 9 + tonumber(ARGV[9])
redis.call('HSET', task_key, 'status', to, unpack(ARGV, 10, pairs_end))
if ARGV[7] == '1' then redis.call('HDEL', task_key, 'error') end
local expires = ARGV[8]
if expires ~= '' then
  local old = redis.call('HGET', task_key, 'expires')
  if old then redis.call('ZREM', KEYS[4], old .. '\\0' .. task_id) end
  redis.call('HSET', task_key, 'expires', expires)
  redis.call('ZADD', KEYS[4], 0, expires .. '\\0' .. task_id)
end
local first = append_events(task_key, KEYS[2], pairs_end + 1, ARGV[2], ARGV[3])
redis.call('SET', KEYS[3], first, 'EX', ${OP_TTL_S})
return {'ok', redis.call('HGETALL', task_key), first}
`;

/**
 * KEYS: task, stream, results, result-meta, result-order, summary, op. ARGV: channel, origin, result count, per
 * result: field, JSON, input tokens, output tokens, duration, order member; then events. → first id, -1 unknown task.
 */
const RECORD_RESULTS = `${APPEND_EVENTS}
local done = redis.call('GET', KEYS[7])
if done then return tonumber(done) end
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local function add(member, tin, tout, dur, sign)
  local group = string.match(member, '^([^%z]*%z[^%z]*)%z')
  redis.call('HINCRBY', KEYS[6], group .. '\\0n', sign)
  redis.call('HINCRBYFLOAT', KEYS[6], group .. '\\0in', sign * tonumber(tin))
  redis.call('HINCRBYFLOAT', KEYS[6], group .. '\\0out', sign * tonumber(tout))
  redis.call('HINCRBYFLOAT', KEYS[6], group .. '\\0dur', sign * tonumber(dur))
end
local at = 4
for i = 1, tonumber(ARGV[3]) do
  local field, json, tin, tout, dur, member =
    ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], ARGV[at + 4], ARGV[at + 5]
  at = at + 6
  local old = redis.call('HGET', KEYS[4], field)
  if old then
    local oin, oout, odur, omember = string.match(old, '^([^,]*),([^,]*),([^,]*),(.*)$')
    redis.call('ZREM', KEYS[5], omember)
    add(omember, oin, oout, odur, -1)
  end
  redis.call('HSET', KEYS[3], field, json)
  redis.call('HSET', KEYS[4], field, tin .. ',' .. tout .. ',' .. dur .. ',' .. member)
  redis.call('ZADD', KEYS[5], 0, member)
  add(member, tin, tout, dur, 1)
end
local first = append_events(KEYS[1], KEYS[2], at, ARGV[1], ARGV[2])
redis.call('SET', KEYS[7], first, 'EX', ${OP_TTL_S})
return first
`;

/** KEYS: task, stream, op. ARGV: channel, origin, events. → first id, -1 for an unknown task. */
const MARK_RESUMED = `${APPEND_EVENTS}
local done = redis.call('GET', KEYS[3])
if done then return tonumber(done) end
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
redis.call('HINCRBY', KEYS[1], 'resumes', 1)
local first = append_events(KEYS[1], KEYS[2], 3, ARGV[1], ARGV[2])
redis.call('SET', KEYS[3], first, 'EX', ${OP_TTL_S})
return first
`;

/** KEYS: task. ARGV: peak. Raises the peak, never lowers it. */
const RECORD_PEAK = `
local current = redis.call('HGET', KEYS[1], 'peak')
if current and tonumber(ARGV[1]) > tonumber(current) then redis.call('HSET', KEYS[1], 'peak', ARGV[1]) end
return 0
`;

/** KEYS: task. ARGV: mode. → {'not-found'} | {'finished'|'requested', fields}. */
const REQUEST_CANCEL = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'not-found'} end
if status ~= 'pending' and status ~= 'running' then return {'finished', redis.call('HGETALL', KEYS[1])} end
redis.call('HSETNX', KEYS[1], 'cancel', ARGV[1])
return {'requested', redis.call('HGETALL', KEYS[1])}
`;

/**
 * KEYS: expiring, tasks. ARGV: prefix, bound (`(<now>\\1`: expiresAt <= now), limit. Deletes up to `limit` expired
 * tasks with everything they own. → {members looked at, deleted ids…}.
 */
const DELETE_EXPIRED = `
local prefix = ARGV[1]
local members = redis.call('ZRANGEBYLEX', KEYS[1], '-', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {#members}
for _, member in ipairs(members) do
  local id = string.match(member, '^[^%z]*%z(.*)$')
  local task_key = prefix .. ':task:' .. id
  local f = redis.call('HMGET', task_key, 'status', 'order', 'idem')
  if f[1] then
    redis.call('ZREM', KEYS[2], f[2])
    redis.call('ZREM', prefix .. ':tasks:status:' .. f[1], f[2])
    if f[3] then
      local idem_key = prefix .. ':idem:' .. f[3]
      if redis.call('GET', idem_key) == id then redis.call('DEL', idem_key) end
    end
    redis.call('UNLINK', task_key, task_key .. ':events', task_key .. ':results', task_key .. ':result-meta',
      task_key .. ':result-order', task_key .. ':summary', task_key .. ':budget')
    out[#out + 1] = id
  end
  redis.call('ZREM', KEYS[1], member)
end
return out
`;

/**
 * KEYS: creation-order sets. ARGV: prefix, '1' newest first / '0' oldest first, limit per set (-1: all).
 * → {member, fields, member, fields, …} (tasks gone meanwhile left out).
 */
const LIST_TASKS = `
local out = {}
local limit = tonumber(ARGV[3])
for k = 1, #KEYS do
  local members
  if ARGV[2] == '1' then
    members = redis.call('ZREVRANGEBYLEX', KEYS[k], '+', '-', 'LIMIT', 0, limit)
  else
    members = redis.call('ZRANGEBYLEX', KEYS[k], '-', '+', 'LIMIT', 0, limit)
  end
  for _, member in ipairs(members) do
    local id = string.match(member, '^[^%z]*%z[^%z]*%z(.*)$')
    local fields = redis.call('HGETALL', ARGV[1] .. ':task:' .. id)
    if #fields > 0 then
      out[#out + 1] = member
      out[#out + 1] = fields
    end
  end
end
return out
`;

/** KEYS: result-order, results. ARGV: min, max, offset, limit. → the page's result JSONs, in finishing order. */
const RESULTS_PAGE = `
local members = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], ARGV[2], 'LIMIT', tonumber(ARGV[3]), tonumber(ARGV[4]))
local out = {}
for _, member in ipairs(members) do
  local group, node = string.match(member, '^([^%z]*)%z[^%z]*%z[^%z]*%z(.*)$')
  local json = redis.call('HGET', KEYS[2], group .. '\\0' .. node)
  if json then out[#out + 1] = json end
end
return out
`;

/**
 * Stores one result-cache entry (KEYS[1], with its TTL) and indexes it (KEYS[2]: member ARGV[6], score its creation
 * ms), then removes the entries created at or before ARGV[4] and the oldest beyond ARGV[5]. ARGV[7]: the entry keys'
 * prefix (entry key = prefix .. member).
 */
const RESULT_CACHE_PUT = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[6])
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])) do
  redis.call('DEL', ARGV[7] .. member)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
if over > 0 then
  local oldest = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #oldest, 2 do redis.call('DEL', ARGV[7] .. oldest[i]) end
end
return 1
`;

/**
 * KEYS: agent durations. ARGV: agent type, estimate JSON, … → 1. Every estimate in one step; one saved without output
 * tokens keeps the output tokens stored before (another process may have learned them).
 */
const SAVE_DURATIONS = `
for i = 1, #ARGV, 2 do
  local new = cjson.decode(ARGV[i + 1])
  if new.meanOutputTokens == nil then
    local old = redis.call('HGET', KEYS[1], ARGV[i])
    if old then
      local o = cjson.decode(old)
      new.meanOutputTokens = o.meanOutputTokens
      new.outputSamples = o.outputSamples
    end
  end
  redis.call('HSET', KEYS[1], ARGV[i], cjson.encode(new))
end
return 1
`;

/** Removes every result-cache entry indexed in KEYS[1] (entry key = ARGV[1] .. member) and the index; their count. */
const RESULT_CACHE_CLEAR = `
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, member in ipairs(members) do redis.call('DEL', ARGV[1] .. member) end
redis.call('DEL', KEYS[1])
return #members
`;

/**
 * KEYS: the task's budget hash. ARGV: reservation key, amount, limit (integer micro-USD). → { granted 1|0, spent,
 * reserved } as they are after it. A key reserved already stays as it is (granted): a job run again after a crash
 * finds its own reservation.
 */
const BUDGET_RESERVE = `
local spent = tonumber(redis.call('HGET', KEYS[1], 's') or '0')
local reserved = tonumber(redis.call('HGET', KEYS[1], 'R') or '0')
local field = 'r:' .. ARGV[1]
if redis.call('HEXISTS', KEYS[1], field) == 1 then return { 1, spent, reserved } end
if spent + reserved + tonumber(ARGV[2]) > tonumber(ARGV[3]) then return { 0, spent, reserved } end
redis.call('HSET', KEYS[1], field, ARGV[2])
redis.call('HINCRBY', KEYS[1], 'R', ARGV[2])
return { 1, spent, reserved + tonumber(ARGV[2]) }
`;

/**
 * KEYS: the task's budget hash. ARGV: reservation key, cost (integer micro-USD; 0 releases). → { spent, reserved }.
 * Only an open reservation is settled: settling one twice (a command sent again after a dropped connection) does
 * nothing the second time.
 */
const BUDGET_SETTLE = `
local field = 'r:' .. ARGV[1]
local amount = redis.call('HGET', KEYS[1], field)
if amount then
  redis.call('HDEL', KEYS[1], field)
  redis.call('HINCRBY', KEYS[1], 'R', '-' .. amount)
  if ARGV[2] ~= '0' then redis.call('HINCRBY', KEYS[1], 's', ARGV[2]) end
end
return { tonumber(redis.call('HGET', KEYS[1], 's') or '0'), tonumber(redis.call('HGET', KEYS[1], 'R') or '0') }
`;

export const SESSION_SCRIPTS = {
  cbSessionAppend: APPEND,
  cbSessionCreate: CREATE,
  cbSessionTransition: TRANSITION,
  cbSessionRecordResults: RECORD_RESULTS,
  cbSessionMarkResumed: MARK_RESUMED,
  cbSessionRecordPeak: RECORD_PEAK,
  cbSessionRequestCancel: REQUEST_CANCEL,
  cbSessionDeleteExpired: DELETE_EXPIRED,
  cbSessionSaveDurations: SAVE_DURATIONS,
  cbBudgetReserve: BUDGET_RESERVE,
  cbBudgetSettle: BUDGET_SETTLE,
  cbSessionListTasks: LIST_TASKS,
  cbSessionResultsPage: RESULTS_PAGE,
  cbResultCachePut: RESULT_CACHE_PUT,
  cbResultCacheClear: RESULT_CACHE_CLEAR,
} as const;

export type SessionScript = keyof typeof SESSION_SCRIPTS;

type ScriptCommand = (...args: (string | number)[]) => Promise<unknown>;

/**
 * Runs one of the session scripts on `redis` (EVALSHA; ioredis loads it again after a Redis restart, NOSCRIPT).
 * Registered on a connection at its first use.
 */
export function runScript(
  redis: Redis,
  name: SessionScript,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  const commands = redis as unknown as Partial<Record<SessionScript, ScriptCommand>>;
  if (!commands[name]) redis.defineCommand(name, { lua: SESSION_SCRIPTS[name] });
  const command = commands[name];
  if (!command) throw new Error(`ioredis did not define the script ${name}`);
  return command.call(redis, keys.length, ...keys, ...args);
}

/**
 * Each draft's record JSON after its id (`,"taskId":…}`), the `append_events` argument. Throws before anything is
 * stored: a `TypeError` for a name outside the vocabulary or data JSON cannot hold.
 */
export function eventTails(taskId: string, drafts: readonly EventDraft[]): string[] {
  assertTaskEventTypes(drafts);
  const task = JSON.stringify(taskId);
  return drafts.map(
    (d) =>
      `,"taskId":${task},"type":${JSON.stringify(d.type)},"timestamp":${json(d.timestamp)},"data":${json(d.data ?? {})}}`,
  );
}

/** The records a script stored from `tails`, its first id `first`: parsed from the very JSON it stored. */
export function storedRecords(first: number, tails: readonly string[]): TaskEventRecord[] {
  return tails.map((tail, i) => JSON.parse(`{"id":${first + i}${tail}`) as TaskEventRecord);
}

function json(value: unknown): string {
  return JSON.stringify(value) ?? 'null';
}

/**
 * Stores `drafts` as the task's next events with one script; publishes them on the channel unless `channel` is ''.
 * Returns the records stored, or undefined for an unknown task.
 */
export async function appendEvents(
  redis: Redis,
  keys: RedisSessionKeys,
  taskId: string,
  drafts: readonly EventDraft[],
  channel: string,
  origin: string,
): Promise<TaskEventRecord[] | undefined> {
  const tails = eventTails(taskId, drafts);
  if (tails.length === 0) return [];
  const first = (await runScript(
    redis,
    'cbSessionAppend',
    [keys.task(taskId), keys.events(taskId), keys.op()],
    [channel, origin, tails.length, ...tails],
  )) as number;
  return first < 0 ? undefined : storedRecords(first, tails);
}

/** A stream entry as ioredis returns it: `[id, [field, value, …]]`. */
export type StreamEntry = [string, string[]];

/** The record of a stream entry (its only field, `r`). */
export function entryRecord([, fields]: StreamEntry): TaskEventRecord {
  return JSON.parse(fields[1]) as TaskEventRecord;
}

/** HGETALL's flat reply inside a script's answer, as an object. */
export function fieldsOf(flat: readonly string[]): TaskFields {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]] = flat[i + 1];
  return fields;
}

export function toTask(f: TaskFields): TaskRecord {
  return {
    taskId: f.id ?? '',
    canvasPath: f.canvas ?? '',
    status: (f.status ?? 'failed') as TaskStatus,
    maxConcurrent: Number(f.max ?? 0),
    timeoutMs: Number(f.timeout ?? 0),
    groups: JSON.parse(f.groups ?? '[]') as GroupSpec[],
    totalNodes: Number(f.total ?? 0),
    createdAt: f.created ?? '',
    startedAt: f.started ?? null,
    completedAt: f.completed ?? null,
    deadlineAt: f.deadline ?? null,
    errorMessage: f.error ?? null,
    metrics: f.metrics ? (JSON.parse(f.metrics) as PerformanceMetrics) : null,
    lastEventId: Number(f.last ?? 0),
    idempotencyKey: f.idem ?? null,
    resumeCount: Number(f.resumes ?? 0),
    peakConcurrent: Number(f.peak ?? 0),
    cancelRequested: (f.cancel ?? null) as TaskRecord['cancelRequested'],
    ...(f.nocache === '1' && { cache: false }),
    budgetUsd: f.budget === undefined ? null : Number(f.budget),
  };
}

const allowed = new Map<TaskStatus, string>();

/** The statuses a task may move to `to` from, as the transition script reads them: ` pending running `. */
export function allowedFrom(to: TaskStatus): string {
  let list = allowed.get(to);
  if (list === undefined) {
    const from = TASK_STATUSES.filter((s) => {
      try {
        assertTransition('', s, to);
        return true;
      } catch {
        return false;
      }
    });
    list = ` ${from.join(' ')} `;
    allowed.set(to, list);
  }
  return list;
}
