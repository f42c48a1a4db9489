import type { NestExpressApplication } from '@nestjs/platform-express';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createApp } from '../src/bootstrap';
import { loadAppConfig } from '../src/config/app.config';
import { BUNDLED_VAULT } from '../src/config/example-vault';
import { GeneratedNodes } from '../src/session';
import { http, readCanvas, waitTerminal } from './support/harness';
import { deletePrefix, testRedisUrl, uniquePrefix } from './support/redis';

type Json = Record<string, any>;

const CANVAS = 'Biology/cells.canvas';
/** Learner's cards of the bundled canvas the batches run on. */
const CELL_THEORY = 'b10c0ffee0000001';
const PRO_EU = 'b10c0ffee0000002';
const MEMBRANE = '4e0b7a91c2d35f68';
const MITOCHONDRIA_FILE = '7c1d9e20a4b6f835';
const NUCLEUS = 'e25f03b8d7a4c691';
const RIBOSOMES = '93a6c4e17f0b2d58';

/** A real service on `vault` and `dataDir` (both kept when it closes: a restart opens them again). */
async function serve(
  vault: string,
  dataDir: string,
  env: Record<string, string>,
): Promise<{ url: string; app: NestExpressApplication; close(): Promise<void> }> {
  const config = loadAppConfig({
    PORT: '0',
    LOG_LEVEL: 'error',
    LOG_PRETTY: 'false',
    VAULT_ROOT: vault,
    DATA_DIR: dataDir,
    AGENT_LATENCY_MS: '5',
    ...env,
  });
  const app = await createApp(config);
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, app, close: () => app.close() };
}

async function runBatch(url: string, groups: Json[]): Promise<Json> {
  const res = await http<Json>('POST', `${url}/parallel/execute`, { canvas_path: CANVAS, groups });
  expect(res.status).toBe(202);
  const final = await waitTerminal({ url }, res.body.task_id as string, 120_000);
  expect(final.status).toBe('completed');
  return final;
}

/** `GET /canvases/nodes`: node id → its `result` flag. */
async function resultFlags(url: string): Promise<Map<string, boolean>> {
  const res = await http<Json>('GET', `${url}/canvases/nodes?path=${encodeURIComponent(CANVAS)}`);
  expect(res.status).toBe(200);
  return new Map((res.body.nodes as Json[]).map((n) => [n.id as string, n.result as boolean]));
}

const idsWhere = (flags: Map<string, boolean>, result: boolean): string[] =>
  [...flags]
    .filter(([, r]) => r === result)
    .map(([id]) => id)
    .sort();

const engines: {
  name: string;
  env: () => Record<string, string>;
  skip?: string;
  cleanup?: () => Promise<void>;
}[] = [];
engines.push({ name: 'embedded engine (SQLite in DATA_DIR)', env: () => ({}) });
{
  // the distributed engine when a Redis is given (REDIS_URL); the restart uses the same prefix
  const url = testRedisUrl();
  const prefix = uniquePrefix('generated-e2e');
  engines.push({
    name: 'distributed engine (Redis)',
    env: () => ({ REDIS_URL: url ?? '', REDIS_PREFIX: prefix }),
    skip: url ? undefined : 'REDIS_URL is not set (start a redis-server and export REDIS_URL to run it)',
    cleanup: async () => {
      if (url) await deletePrefix(url, prefix);
    },
  });
}

describe.each(engines)('generated cards are kept in the store: $name', ({ env, skip, cleanup }) => {
  if (skip) {
    if (process.env.REQUIRE_SERVICES === '1') {
      it('has the services it needs', () => {
        throw new Error(skip);
      });
    } else {
      it.skip(`skipped: ${skip}`, () => undefined);
    }
    return;
  }

  let root: string;
  let vault: string;
  let dataDir: string;
  let server: Awaited<ReturnType<typeof serve>>;
  let learner: string[];
  let created: { nodes: string[]; edges: string[] };

  beforeAll(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'generated-nodes-e2e-'));
    vault = path.join(root, 'vault');
    dataDir = path.join(root, 'data');
    cpSync(BUNDLED_VAULT, vault, { recursive: true });
    const before = readCanvas(vault, CANVAS);
    learner = before.nodes.map((n) => n.id as string).sort();
    server = await serve(vault, dataDir, env());
    // a decomposition batch (question cards: text nodes), then explanations (file cards), a score and a hint
    await runBatch(server.url, [
      { group_id: 'q', agent_type: 'basic-decomposition', node_ids: [CELL_THEORY, PRO_EU] },
    ]);
    await runBatch(server.url, [
      { group_id: 'x', agent_type: 'oral-explanation', node_ids: [MEMBRANE, MITOCHONDRIA_FILE] },
      { group_id: 's', agent_type: 'scoring-agent', node_ids: [NUCLEUS] },
      { group_id: 'h', agent_type: 'hint-generation', node_ids: [RIBOSOMES] },
    ]);
    const after = readCanvas(vault, CANVAS);
    const beforeEdges = new Set(before.edges.map((e) => e.id as string));
    created = {
      nodes: after.nodes
        .map((n) => n.id as string)
        .filter((id) => !learner.includes(id))
        .sort(),
      edges: after.edges
        .map((e) => e.id as string)
        .filter((id) => !beforeEdges.has(id))
        .sort(),
    };
  }, 180_000);

  afterAll(async () => {
    await server?.close();
    await cleanup?.();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('marks result: true exactly the cards the batches created, false the learner’s own', async () => {
    const after = readCanvas(vault, CANVAS);
    const byId = new Map(after.nodes.map((n) => [n.id as string, n]));
    const kinds = created.nodes.map((id) => byId.get(id)?.type as string);
    // 2 × 3–7 question cards, 2 file cards, a score card and a hint card
    expect(kinds.filter((k) => k === 'file')).toHaveLength(2);
    expect(kinds.filter((k) => k === 'text').length).toBeGreaterThanOrEqual(2 * 3 + 2);
    const flags = await resultFlags(server.url);
    expect(idsWhere(flags, true)).toEqual(created.nodes);
    expect(idsWhere(flags, false)).toEqual(learner);
  });

  it('keeps every card and edge the service wrote in the store, for that canvas', async () => {
    const known = await server.app.get(GeneratedNodes).inCanvas(CANVAS);
    expect(known.nodes.map((n) => n.id)).toEqual(created.nodes);
    expect(known.edges.map((e) => e.id)).toEqual(created.edges);
    expect(new Set(known.nodes.map((n) => n.taskId)).size).toBe(2);
    expect(await server.app.get(GeneratedNodes).inCanvas('Physics/mechanics.canvas')).toEqual({
      nodes: [],
      edges: [],
    });
  });

  it('marks a card the learner adds later false, even one that reads like a generated card', async () => {
    const doc = readCanvas(vault, CANVAS);
    const question = doc.nodes.find(
      (n) => created.nodes.includes(n.id as string) && n.type === 'text',
    ) as Json;
    doc.nodes.push(
      {
        id: 'learner-card-0001',
        type: 'text',
        text: 'my own note',
        x: -2000,
        y: -2000,
        width: 200,
        height: 80,
      },
      { ...question, id: 'learner-card-0002', x: -2000, y: -1800 },
    );
    writeFileSync(path.join(vault, CANVAS), JSON.stringify(doc, null, '\t'));
    const flags = await resultFlags(server.url);
    expect(flags.get('learner-card-0001')).toBe(false);
    expect(flags.get('learner-card-0002')).toBe(false);
    expect(idsWhere(flags, true)).toEqual(created.nodes);
  });

  it('still counts a file card linking into the results folder that the store does not know (older versions)', async () => {
    const doc = readCanvas(vault, CANVAS);
    const file = doc.nodes.find((n) => created.nodes.includes(n.id as string) && n.type === 'file') as Json;
    expect(file.file).toMatch(/^Biology\/cells-explanations\//);
    doc.nodes.push({ ...file, id: 'older-result-0001', x: -2000, y: -1400 });
    writeFileSync(path.join(vault, CANVAS), JSON.stringify(doc, null, '\t'));
    expect((await resultFlags(server.url)).get('older-result-0001')).toBe(true);
  });

  it('knows them after a restart (a new server on the same DATA_DIR)', async () => {
    const flagsBefore = await resultFlags(server.url);
    await server.close();
    server = await serve(vault, dataDir, env());
    const flags = await resultFlags(server.url);
    expect(flags).toEqual(flagsBefore);
    expect(idsWhere(flags, true)).toEqual([...created.nodes, 'older-result-0001'].sort());
    expect(idsWhere(flags, false).filter((id) => !id.startsWith('learner-card-'))).toEqual(learner);
    const known = await server.app.get(GeneratedNodes).inCanvas(CANVAS);
    expect(known.edges.map((e) => e.id)).toEqual(created.edges);
  });
});
