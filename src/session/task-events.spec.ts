import type { ValidateFunction } from 'ajv/dist/2020';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { isTerminal, NODE_ERROR_TYPES, TASK_STATUSES, type TaskEventRecord } from './task.types';
import {
  asTaskEvent,
  type ErrorData,
  isTaskEventType,
  TASK_EVENT_TYPES,
  taskEvent,
  type TaskEventDraft,
  type TaskEventPayloads,
  type TaskEventType,
} from './task-events';
import {
  ajv,
  type Json,
  OPENAPI_ID,
  openapi,
  REPO_ROOT as ROOT,
  taskSchema,
  validator,
} from '../../test/support/contract';

/*
 * The typed task events (task-events.ts) against the contract: specs/api/parallel-api.openapi.yml (`x-sse-events`,
 * `TaskEvent`) and specs/data/parallel-task.schema.json. The same names on both sides, and every event the factory
 * builds (every member, every enum value) validates against the event's schema.
 */

const defs = taskSchema.$defs as Record<string, Json>;
const sseEvents = openapi.paths['/parallel/events/{task_id}'].get.responses['200']['x-sse-events'] as Record<
  string,
  { $ref: string }
>;

const jsonSchema = (name: string): ValidateFunction => validator(`${String(taskSchema.$id)}#/$defs/${name}`);

function expectValid(v: ValidateFunction, value: unknown, what: string): void {
  const ok = v(value);
  if (!ok) throw new Error(`${what}: ${ajv.errorsText(v.errors)}\n${JSON.stringify(value, null, 2)}`);
}

const TASK_ID = '3f1c2b7e-9a41-4c3d-8e2f-0b5a6c7d8e9f';
const AT = '2026-01-01T00:00:00.000Z';
const METRICS = {
  total_duration_seconds: 1.5,
  average_duration_per_node: 0.5,
  parallel_efficiency: 0.75,
  peak_concurrent: 2,
};

/**
 * Per event type (the compiler asks for every one): a payload with every member, optional ones included (`Required`),
 * and one with only what the type requires.
 */
const SAMPLES: {
  [K in TaskEventType]: { full: Required<TaskEventPayloads[K]>; minimal: TaskEventPayloads[K] };
} = {
  progress_update: {
    full: {
      progress_percent: 40,
      completed_nodes: 2,
      failed_nodes: 0,
      total_nodes: 5,
      running_nodes: 3,
      concurrency_limit: 12,
      status: 'running',
      usage: { input_tokens: 1200, output_tokens: 800, cost_usd: 0.0156 },
      budget: { limit_usd: 0.05, spent_usd: 0.0156, reserved_usd: 0.02, remaining_usd: 0.0144 },
    },
    minimal: {
      progress_percent: 0,
      completed_nodes: 0,
      failed_nodes: 0,
      total_nodes: 1,
      running_nodes: 0,
      concurrency_limit: 1,
      status: 'running',
    },
  },
  task_completed: {
    full: {
      node_id: 'n1',
      group_id: 'g1',
      agent_type: 'oral-explanation',
      file_path: 'Biology/cells-explanations/oral-explanation - Cell theory - 3f9a2c1d04be.md',
      file_size: 1234,
      duration_ms: 250,
      truncated: { input_chars: 10, result_chars: 20, canvas_chars: 30 },
      cached: true,
      routing: { confidence: 0.75, routed_by: 'rules' },
    },
    minimal: {
      node_id: 'n1',
      group_id: 7,
      agent_type: 'oral-explanation',
      file_path: 'x.md',
      file_size: 0,
      duration_ms: 0,
    },
  },
  task_failed: {
    full: {
      node_id: 'n2',
      group_id: 'g1',
      agent_type: 'oral-explanation',
      error_message: 'the agent timed out',
      error_type: 'AGENT_TIMEOUT',
      routing: { confidence: 0.8, routed_by: 'model' },
    },
    minimal: {
      node_id: 'n2',
      group_id: 3,
      agent_type: 'scoring-agent',
      error_message: '',
      error_type: 'AGENT_ERROR',
    },
  },
  group_completed: {
    full: {
      group_id: 'g1',
      agent_type: 'oral-explanation',
      status: 'partial_failure',
      completed_nodes: 1,
      failed_nodes: 1,
    },
    minimal: {
      group_id: 0,
      agent_type: 'oral-explanation',
      status: 'completed',
      completed_nodes: 0,
      failed_nodes: 0,
    },
  },
  cancelled: {
    full: { status: 'cancelled', completed_before_cancel: 3 },
    minimal: { status: 'cancelled', completed_before_cancel: 0 },
  },
  error: {
    full: { error_type: 'TIMEOUT', message: 'The batch deadline of 60 s passed', recoverable: false },
    minimal: { error_type: 'EXECUTION_ERROR', message: '', recoverable: true },
  },
  resumed: {
    full: { resume_count: 1, completed_nodes: 2, failed_nodes: 1, remaining_nodes: 4 },
    minimal: { resume_count: 1, completed_nodes: 0, failed_nodes: 0, remaining_nodes: 0 },
  },
  session_completed: {
    full: {
      status: 'completed',
      total_duration: 1.5,
      success_count: 3,
      failure_count: 0,
      performance_metrics: METRICS,
    },
    minimal: {
      status: 'failed',
      total_duration: 0,
      success_count: 0,
      failure_count: 2,
      performance_metrics: METRICS,
    },
  },
};

const TERMINAL_STATUSES = TASK_STATUSES.filter(isTerminal);
/** Every task-level error type of `ErrorData` (a missing or an extra one does not compile). */
const TASK_ERROR_TYPES: Record<ErrorData['error_type'], true> = { TIMEOUT: true, EXECUTION_ERROR: true };

/** Events built by the factory: both samples of every type, and every enum value where a payload has one. */
function builtEvents(): TaskEventDraft[] {
  const events: TaskEventDraft[] = [];
  for (const type of TASK_EVENT_TYPES) {
    // SAMPLES pairs each name with its payload type; over the union of names the compiler cannot follow that pairing
    events.push(
      taskEvent(type, AT, SAMPLES[type].full) as TaskEventDraft,
      taskEvent(type, AT, SAMPLES[type].minimal) as TaskEventDraft,
    );
  }
  for (const error_type of NODE_ERROR_TYPES)
    events.push(taskEvent('task_failed', AT, { ...SAMPLES.task_failed.full, error_type }));
  for (const status of TERMINAL_STATUSES) {
    events.push(taskEvent('group_completed', AT, { ...SAMPLES.group_completed.full, status }));
    events.push(taskEvent('session_completed', AT, { ...SAMPLES.session_completed.full, status }));
  }
  for (const error_type of Object.keys(TASK_ERROR_TYPES) as ErrorData['error_type'][])
    events.push(taskEvent('error', AT, { ...SAMPLES.error.full, error_type }));
  return events;
}

/** The SSE `data:` JSON of a draft, as the service sends it. */
const onTheWire = (e: TaskEventDraft): Json =>
  JSON.parse(
    JSON.stringify({ type: e.type, task_id: TASK_ID, timestamp: e.timestamp, data: e.data }),
  ) as Json;

const sorted = (names: Iterable<string>): string[] => [...names].sort();
const dataDef = (type: TaskEventType): Json => {
  const eventRef = sseEvents[type].$ref.split('/').pop()!;
  return defs[String(defs[eventRef].properties.data.$ref).split('/').pop()!];
};

describe('task events (task-events.ts) against the contract', () => {
  it('name the same event types as the OpenAPI file and the JSON Schema', () => {
    const names = sorted(TASK_EVENT_TYPES);
    expect(new Set(TASK_EVENT_TYPES).size).toBe(TASK_EVENT_TYPES.length);
    expect(sorted(openapi.components.schemas.TaskEventType.enum as string[])).toEqual(names);
    expect(sorted(Object.keys(sseEvents))).toEqual(names);
    expect(sorted(defs.TaskEventType.enum as string[])).toEqual(names);
    const branches = (defs.TaskEvent.oneOf as { $ref: string }[]).map(
      (b) => defs[b.$ref.split('/').pop()!].properties.type.const as string,
    );
    expect(sorted(branches)).toEqual(names);
  });

  it('use the spec enums for error types and final statuses', () => {
    expect(sorted(defs.NodeErrorType.enum as string[])).toEqual(sorted(NODE_ERROR_TYPES));
    expect(sorted(defs.TerminalStatus.enum as string[])).toEqual(sorted(TERMINAL_STATUSES));
    expect(sorted(defs.ErrorData.properties.error_type.enum as string[])).toEqual(
      sorted(Object.keys(TASK_ERROR_TYPES)),
    );
  });

  it('have exactly the members the spec gives each payload, the same ones required', () => {
    for (const type of TASK_EVENT_TYPES) {
      const def = dataDef(type);
      expect({ type, members: sorted(Object.keys(SAMPLES[type].full)) }).toEqual({
        type,
        members: sorted(Object.keys(def.properties as Json)),
      });
      expect({ type, required: sorted(Object.keys(SAMPLES[type].minimal)) }).toEqual({
        type,
        required: sorted(def.required as string[]),
      });
    }
  });

  it('validate, as built by taskEvent, against the event schema of the OpenAPI file and the JSON Schema', () => {
    const events = builtEvents();
    expect(new Set(events.map((e) => e.type))).toEqual(new Set(TASK_EVENT_TYPES));
    for (const e of events) {
      const wire = onTheWire(e);
      const what = `${e.type} ${JSON.stringify(e.data)}`;
      expectValid(validator(`${OPENAPI_ID}${sseEvents[e.type].$ref}`), wire, `${what} vs x-sse-events`);
      expectValid(
        validator(`${OPENAPI_ID}#/components/schemas/TaskEvent`),
        wire,
        `${what} vs OpenAPI TaskEvent`,
      );
      expectValid(jsonSchema('TaskEvent'), wire, `${what} vs parallel-task.schema.json TaskEvent`);
    }
  });

  it('are what the dashboard listens for', () => {
    const app = readFileSync(path.join(ROOT, 'src/dashboard/public/app.js'), 'utf8');
    const list = /const types = \[([^\]]*)\]/.exec(app)?.[1] ?? '';
    expect(sorted(list.split(',').map((s) => s.trim().replace(/^'|'$/g, '')))).toEqual(
      sorted(TASK_EVENT_TYPES),
    );
  });

  it('become typed at the log boundary: a known name as it is, an unknown one refused', () => {
    const record: TaskEventRecord = { id: 1, taskId: TASK_ID, type: 'cancelled', timestamp: AT, data: {} };
    expect(asTaskEvent(record)).toBe(record);
    expect(isTaskEventType('task_started')).toBe(false);
    expect(isTaskEventType('toString')).toBe(false);
    expect(() => asTaskEvent({ ...record, type: 'task_started' })).toThrow(
      '"task_started" is not a task event type',
    );
  });
});
