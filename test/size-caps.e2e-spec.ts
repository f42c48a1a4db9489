import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { http, sseClient, startServer, type TestServer, waitTerminal } from './support/harness';

/**
 * Issue 14, item 11: a 5 MB text node used to be copied whole into the canvas by the decomposition agent and
 * doubled into a 10 MB result file by the offline agent. The documented caps (docs/results.md "Size caps"): an agent reads at
 * most 262,144 characters of a node, a result file holds at most 1 MiB, a canvas card at most 2,000 characters of
 * the agent's text and one result's cards at most 20,000. Each cut is visible: a note in the agent's input, at the
 * top and end of the result file and at the end of a cut card, and `truncated` in the status and the event.
 */

type Json = Record<string, any>;

const MAX_INPUT_CHARS = 262_144;
const MAX_RESULT_BYTES = 1024 * 1024;
const CARD_MAX_CHARS = 2_000;
const RESULT_CARDS_MAX_CHARS = 20_000;
/** A card's own line (`**Q1** · basic-decomposition · medium`) and separators, on top of the agent's text. */
const CARD_HEADER_CHARS = 100;

const CANVAS = 'Study/huge.canvas';
const MIB5 = 5 * 1024 * 1024;
/** One sentence of 5 MiB (no full stop anywhere): the offline agents quote their first sentence whole. */
const PHRASE = 'membrane proteins carry ions through the lipid bilayer ';
const english = `# Membrane transport\n\n${PHRASE.repeat(Math.ceil(MIB5 / PHRASE.length))}`;
/** 5 MiB of Chinese (3 bytes a character) with an emoji (a surrogate pair, 4 bytes) every 20 characters. */
const UNIT = '细胞膜主要由磷脂双分子层和蛋白质构成🧬';
const chinese = UNIT.repeat(Math.ceil(MIB5 / Buffer.byteLength(UNIT)));
const codePoints = (s: string): number => [...s].length;
const CHARS = { e0: codePoints(english), z0: codePoints(chinese) };

const taskSchema = JSON.parse(
  readFileSync(path.join(__dirname, '..', 'specs/data/parallel-task.schema.json'), 'utf8'),
) as Json;
const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
addFormats(ajv);
ajv.addSchema(taskSchema);
const valid = (def: string, value: unknown): string => {
  const v = ajv.getSchema(`${String(taskSchema.$id)}#/$defs/${def}`)!;
  return v(value) ? 'valid' : ajv.errorsText(v.errors);
};

describe('size caps: a 5 MB node through the decomposition and the offline explanation agent (real server)', () => {
  let server: TestServer;
  let canvasBefore: number;
  let canvasAfter: number;
  let before: { nodes: Json[]; edges: Json[] };
  let after: { nodes: Json[]; edges: Json[] };
  let final: Json;
  let events: Json[];

  beforeAll(async () => {
    server = await startServer({}, (vault) => {
      const nodes = [
        { id: 'e0', type: 'text', text: english, x: 0, y: 0, width: 400, height: 400 },
        { id: 'z0', type: 'text', text: chinese, x: 2000, y: 0, width: 400, height: 400 },
        { id: 's0', type: 'text', text: 'Osmosis moves water.', x: 4000, y: 0, width: 300, height: 100 },
      ];
      mkdirSync(path.join(vault, path.dirname(CANVAS)), { recursive: true });
      writeFileSync(path.join(vault, CANVAS), JSON.stringify({ nodes, edges: [] }, null, '\t'));
    });
    const file = path.join(server.vault, CANVAS);
    canvasBefore = statSync(file).size;
    before = JSON.parse(readFileSync(file, 'utf8')) as typeof before;
    const res = await http<Json>('POST', `${server.url}/parallel/execute`, {
      canvas_path: CANVAS,
      groups: [
        { group_id: 'questions', agent_type: 'basic-decomposition', node_ids: ['e0', 'z0', 's0'] },
        { group_id: 'oral', agent_type: 'oral-explanation', node_ids: ['e0', 'z0', 's0'] },
      ],
    });
    expect(res.status).toBe(202);
    final = await waitTerminal(server, res.body.task_id as string, 150_000);
    events = await sseClient(`${server.url}/parallel/events/${String(res.body.task_id)}`).done;
    canvasAfter = statSync(file).size;
    after = JSON.parse(readFileSync(file, 'utf8')) as typeof after;
  }, 180_000);
  afterAll(() => server?.close());

  const result = (group: string, node: string): Json =>
    final.groups.find((g: Json) => g.group_id === group).results.find((r: Json) => r.node_id === node);
  const fileOf = (r: Json): string => readFileSync(path.join(server.vault, r.file_path as string), 'utf8');

  it('completes every node: a huge node gets a useful result from its first part instead of failing', () => {
    expect(final.status).toBe('completed');
    expect(final.completed_nodes).toBe(6);
  });

  it('reports in the status how much of each huge node the agent did not read, and nothing for the small one', () => {
    for (const group of ['questions', 'oral']) {
      for (const id of ['e0', 'z0'] as const) {
        const r = result(group, id);
        expect(valid('NodeResult', r)).toBe('valid');
        const left = r.truncated?.input_chars as number;
        // the agent got at most 262,144 characters, a note among them
        expect(left).toBeGreaterThanOrEqual(CHARS[id] - MAX_INPUT_CHARS);
        expect(left).toBeLessThan(CHARS[id] - MAX_INPUT_CHARS + 200);
      }
      expect(result(group, 's0')).not.toHaveProperty('truncated');
    }
  });

  it('writes no result file over 1 MiB; each says at its top that the agent read only part of the node', () => {
    const results: Json[] = final.groups.flatMap((g: Json) => g.results as Json[]);
    const sizes = results.map((r) => statSync(path.join(server.vault, r.file_path as string)).size);
    expect(sizes).toEqual(results.map((r) => r.file_size));
    expect(Math.max(...sizes)).toBeLessThanOrEqual(MAX_RESULT_BYTES);
    for (const r of results) {
      const text = fileOf(r);
      expect(text).not.toContain('\ufffd'); // no character cut in half
      if (r.node_id === 's0') expect(text).not.toContain('Truncated input');
      else
        expect(text).toMatch(
          /^# [^\n]+\n\n> \*\*Truncated input:\*\* this node is longer than an agent reads; its last [\d,]+ characters were not given to the agent\.\n/,
        );
    }
  });

  it('cuts an output that would pass 1 MiB, ending the file with a note, and says so in the status', () => {
    // the offline oral explanation quotes the (Chinese, 3 bytes a character) input twice: 1.5 MB before the cap
    const r = result('oral', 'z0');
    expect(r.truncated.result_chars).toBeGreaterThan(100_000);
    expect(r.file_size).toBeGreaterThan(MAX_RESULT_BYTES - 64);
    expect(fileOf(r)).toMatch(
      /\n\n---\n\n_… \(truncated: [\d,]+ characters more; a result file holds at most 1 MiB\)_\n$/,
    );
  });

  it('grows the canvas by capped cards only: 2,000 characters of agent text a card, 20,000 a result', () => {
    // in bytes: 3 question results of at most 20,000 characters (≤ 3 bytes each in UTF-8), their JSON and edges,
    // and 3 file nodes; a 5 MB node copied once would be 20 times that
    expect(canvasAfter - canvasBefore).toBeLessThanOrEqual(
      3 * (3 * (RESULT_CARDS_MAX_CHARS + 2_000) + 16_384),
    );
    expect(after.nodes.slice(0, 3)).toEqual(before.nodes); // the 5 MB nodes themselves stay as they were
    const added = after.nodes.slice(3);
    const cards = added.filter((n) => n.type === 'text');
    expect(added.filter((n) => n.type === 'file')).toHaveLength(3); // the oral explanations
    for (const source of ['e0', 'z0', 's0']) {
      const ids = new Set(
        after.edges.filter((e) => e.fromNode === source && /^Q\d+$/.test(e.label)).map((e) => e.toNode),
      );
      const own = cards.filter((c) => ids.has(c.id));
      expect(own.length).toBeGreaterThan(0);
      for (const c of own)
        expect(codePoints(c.text as string)).toBeLessThanOrEqual(CARD_MAX_CHARS + CARD_HEADER_CHARS);
      const total = own.reduce((n, c) => n + codePoints(c.text as string), 0);
      expect(total).toBeLessThanOrEqual(RESULT_CARDS_MAX_CHARS + own.length * CARD_HEADER_CHARS);
    }
    // the cards quoting a huge node end with a note pointing to the result file
    const cut = cards.filter((c) =>
      /… \(truncated: [\d,]+ characters more, see the result file\)$/.test(c.text),
    );
    expect(cut.length).toBeGreaterThanOrEqual(2);
    expect(result('questions', 'e0').truncated.canvas_chars).toBeGreaterThan(200_000);
    expect(result('questions', 'z0').truncated.canvas_chars).toBeGreaterThan(200_000);
    expect(result('questions', 's0')).not.toHaveProperty('truncated');
    expect(readFileSync(path.join(server.vault, CANVAS), 'utf8')).not.toContain('\ufffd');
  });

  it('carries the same truncated counts in the task_completed events', () => {
    const completed = events.filter((e) => e.event === 'task_completed').map((e) => e.data.data as Json);
    expect(completed).toHaveLength(6);
    for (const d of completed) {
      expect(valid('TaskCompletedData', d)).toBe('valid');
      const r = result(d.group_id as string, d.node_id as string);
      if (r.truncated) expect(d.truncated).toEqual(r.truncated);
      else expect(d).not.toHaveProperty('truncated');
    }
  });
});
