import { ajv, type Json, OPENAPI_ID, openapi, validator } from '../../../test/support/contract';
import { deltaFrame } from '../sse-fanout';

/** The `task_output_delta` frame against the contract (specs/api/parallel-api.openapi.yml). */
describe('task_output_delta in the contract', () => {
  const op = openapi.paths['/parallel/events/{task_id}'].get as Json;
  const live = (op.responses as Json)['200']['x-sse-live-events'] as Record<string, { $ref: string }>;

  it('declares ?include=deltas and the event, apart from the stored events', () => {
    const include = (op.parameters as Json[]).find((p) => p.name === 'include');
    expect(include).toMatchObject({ in: 'query', schema: { enum: ['deltas'] } });
    expect(Object.keys(live)).toEqual(['task_output_delta']);
    expect(Object.keys((op.responses as Json)['200']['x-sse-events'] as Json)).not.toContain(
      'task_output_delta',
    );
  });

  it('frames data that validates against OutputDeltaEvent, without an id line', () => {
    const v = validator(`${OPENAPI_ID}${live.task_output_delta.$ref}`);
    for (const groupId of ['g1', 2]) {
      const frame = deltaFrame({
        taskId: '3f1c2b7e-9a41-4c3d-8e2f-0b5a6c7d8e9f',
        nodeId: 'n1',
        groupId,
        text: 'Some text\n',
        offset: 12,
      }).toString('utf8');
      const [event, data, ...rest] = frame.split('\n');
      expect(event).toBe('event: task_output_delta');
      expect(rest).toEqual(['', '']);
      const json = JSON.parse(data.slice('data: '.length)) as unknown;
      if (!v(json)) throw new Error(ajv.errorsText(v.errors));
    }
  });
});
