import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { MAX_LISTED_CANVASES, MAX_PREVIEW_BYTES } from '../src/dashboard/vault-browser.controller';
import { http, startServer, type TestServer } from './support/harness';

type Json = Record<string, any>;

/** The read-only vault routes on a vault with many canvases, hidden folders, symlinks and odd files. */
describe('vault browsing routes', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({}, (vault) => {
      const many = path.join(vault, 'Many');
      mkdirSync(many);
      for (let i = 0; i < MAX_LISTED_CANVASES + 5; i++) {
        writeFileSync(path.join(many, `c${String(i).padStart(5, '0')}.canvas`), '{"nodes":[],"edges":[]}');
      }
      mkdirSync(path.join(vault, '.obsidian'));
      writeFileSync(path.join(vault, '.obsidian', 'hidden.canvas'), '{}');
      symlinkSync(path.join(vault, 'Biology'), path.join(vault, 'Linked'));
      // a folder of canvases outside the vault (beside it, removed with it), linked into it
      const elsewhere = path.join(path.dirname(vault), 'elsewhere');
      mkdirSync(elsewhere);
      writeFileSync(path.join(elsewhere, 'elsewhere.canvas'), '{"nodes":[],"edges":[]}');
      symlinkSync(elsewhere, path.join(vault, 'Out'));
      mkdirSync(path.join(vault, 'folder.md'));
      writeFileSync(path.join(vault, 'big.md'), 'x'.repeat(MAX_PREVIEW_BYTES + 1));
    });
  });
  afterAll(() => server.close());

  it('lists at most MAX_LISTED_CANVASES, skipping hidden folders and symlinks, and says it truncated', async () => {
    const res = await http<Json>('GET', `${server.url}/canvases`);
    expect(res.status).toBe(200);
    const paths = res.body.canvases.map((c: Json) => c.path as string);
    expect(paths).toHaveLength(MAX_LISTED_CANVASES);
    expect(res.body.truncated).toBe(true);
    expect(paths.some((p: string) => p.startsWith('.obsidian') || p.startsWith('Linked/'))).toBe(false);
    expect([...paths].sort()).toEqual(paths);
    expect(res.body.canvases[0]).toMatchObject({ size: expect.any(Number), modified_at: expect.any(String) });
  });

  it('serves a canvas document through a link inside the vault, and refuses one leading out of it', async () => {
    const inside = await http<Json>('GET', `${server.url}/canvases/document?path=Linked/cells.canvas`);
    expect([inside.status, inside.body.canvas_path]).toEqual([200, 'Linked/cells.canvas']);
    expect(inside.body.nodes.length).toBeGreaterThan(0);
    const outside = await http<Json>('GET', `${server.url}/canvases/document?path=Out/elsewhere.canvas`);
    expect([outside.status, outside.body.type]).toEqual([
      400,
      expect.stringContaining('canvas-path-outside-vault'),
    ]);
  });

  it('refuses folders and oversized files as previews', async () => {
    const folder = await http<Json>('GET', `${server.url}/files?path=folder.md`);
    expect([folder.status, folder.body.detail]).toEqual([404, '"folder.md" is not a file']);
    const big = await http<Json>('GET', `${server.url}/files?path=big.md`);
    expect(big.status).toBe(400);
    expect(big.body.detail).toContain(`larger than ${MAX_PREVIEW_BYTES} bytes`);
    const outside = await http<Json>('GET', `${server.url}/files?path=Linked/../../x.md`);
    expect(outside.status).toBe(400);
  });
});
