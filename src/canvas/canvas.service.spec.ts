import { execFileSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  promises as fsp,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { resolveOptions } from '../config';
import {
  CanvasNotFoundError,
  CanvasPathOutsideVaultError,
  CanvasWriteError,
  InvalidCanvasError,
  NodeContentMissingError,
  NodeNotFoundError,
  UnknownNodeIdsError,
} from './canvas.errors';
import { CanvasService, type ResultToWrite } from './canvas.service';
import { RESULT_NODE_WIDTH, shortId } from './result-nodes';
import { nameHash } from './file-names';
import type { CanvasNode } from './json-canvas';
import { VaultFs } from './vault-fs';
import { VaultService } from './vault.service';

const TASK_ID = '3f2a9c1e-7b4d-4e5f-8a9b-0c1d2e3f4a5b';

const node = (
  id: string,
  type: string,
  x: number,
  y: number,
  extra: Record<string, unknown> = {},
): CanvasNode => ({
  id,
  type,
  x,
  y,
  width: 300,
  height: 100,
  ...extra,
});

const NODES: CanvasNode[] = [
  node('text1', 'text', 0, 0, { text: '## Cell\nThe basic unit of life.' }),
  node('link1', 'link', 400, 0, { url: 'https://en.wikipedia.org/wiki/Cell_(biology)' }),
  node('group1', 'group', -50, 300, { width: 1000, height: 400, label: 'Organelles' }),
  node('in-text', 'text', 0, 350, { text: 'Mitochondria make ATP.' }),
  node('in-file', 'file', 350, 350, { file: 'Biology/notes/cell.md' }),
  node('in-link', 'link', 0, 500, { url: 'https://example.org/atp' }),
  node('in-empty', 'text', 350, 500, { text: '' }),
  node('in-widget', 'plugin-widget', 700, 500, { width: 100 }),
  node('nested-group', 'group', 600, 320, { label: 'Nested', width: 200, height: 100 }),
  node('partly-out', 'text', 800, 350, { text: 'Half in, half out.' }),
  node('file-md', 'file', 2000, 0, { file: 'Biology/notes/cell.md' }),
  node('file-img', 'file', 2000, 200, { file: 'Biology/img/diagram.png' }),
  node('file-outside', 'file', 2000, 400, { file: 'escape.md' }),
  node('file-dotdot', 'file', 2000, 600, { file: '../outside/secret.md' }),
  node('file-missing', 'file', 2000, 800, { file: 'Biology/notes/missing.md' }),
  node('file-big', 'file', 2000, 1000, { file: 'Biology/notes/big.txt' }),
  node('file-no-path', 'file', 2000, 1200, { file: '' }),
  node('file-dir', 'file', 2000, 1400, { file: 'Biology/notes' }),
  node('widget', 'plugin-widget', 3000, 0),
];

describe('CanvasService (real temp vault)', () => {
  let base: string;
  let vaultRoot: string;
  let canvasFile: string;
  let service: CanvasService;

  const readCanvas = (): { nodes: CanvasNode[]; edges: Record<string, unknown>[] } =>
    JSON.parse(readFileSync(canvasFile, 'utf8')) as { nodes: CanvasNode[]; edges: Record<string, unknown>[] };

  beforeEach(() => {
    base = realpathSync(mkdtempSync(path.join(tmpdir(), 'canvas-service-')));
    vaultRoot = path.join(base, 'vault');
    mkdirSync(path.join(vaultRoot, 'Biology', 'notes'), { recursive: true });
    mkdirSync(path.join(vaultRoot, 'Biology', 'img'));
    mkdirSync(path.join(base, 'outside'));
    canvasFile = path.join(vaultRoot, 'Biology', 'cells.canvas');
    writeFileSync(canvasFile, JSON.stringify({ nodes: NODES, edges: [] }, null, '\t'));
    writeFileSync(path.join(vaultRoot, 'Biology', 'notes', 'cell.md'), '# Cell\n细胞是生命的基本单位。');
    writeFileSync(path.join(vaultRoot, 'Biology', 'notes', 'big.txt'), 'x'.repeat(300 * 1024));
    writeFileSync(
      path.join(vaultRoot, 'Biology', 'img', 'diagram.png'),
      Buffer.from([0x89, 0x50, 0x4e, 0x47]),
    );
    writeFileSync(path.join(base, 'outside', 'secret.md'), 'secret');
    symlinkSync(path.join(base, 'outside', 'secret.md'), path.join(vaultRoot, 'escape.md'));
    service = new CanvasService(
      new VaultService(resolveOptions({ vaultRoot, dataDir: path.join(base, 'data') })),
    );
  });

  afterEach(async () => {
    await service.onModuleDestroy();
    jest.restoreAllMocks();
    rmSync(base, { recursive: true, force: true });
  });

  describe('open', () => {
    it('resolves the canvas when every node id is in it', async () => {
      const ids = [
        { field: 'groups[0].node_ids[0]', nodeId: 'text1' },
        { field: 'groups[0].node_ids[1]', nodeId: 'link1' },
      ];
      await expect(service.open('Biology/cells.canvas', ids)).resolves.toEqual({
        relPath: 'Biology/cells.canvas',
        absPath: canvasFile,
      });
    });

    it('reads a canvas again while an editor is half-way through saving it in place', async () => {
      const full = readFileSync(canvasFile, 'utf8');
      writeFileSync(canvasFile, full.slice(0, 40)); // truncated, then written a moment later
      setTimeout(() => writeFileSync(canvasFile, full), 25);
      await expect(
        service.open('Biology/cells.canvas', [{ field: 'f', nodeId: 'text1' }]),
      ).resolves.toMatchObject({
        relPath: 'Biology/cells.canvas',
      });
    });

    it('lists every unknown node id with the field it came from', async () => {
      const err: unknown = await service
        .open('Biology/cells.canvas', [
          { field: 'groups[0].node_ids[0]', nodeId: 'text1' },
          { field: 'groups[0].node_ids[1]', nodeId: 'nope' },
          { field: 'groups[1].node_ids[0]', nodeId: 'also-missing' },
        ])
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnknownNodeIdsError);
      expect((err as UnknownNodeIdsError).code).toBe('unknown-node-ids');
      expect((err as UnknownNodeIdsError).errors).toEqual([
        { field: 'groups[0].node_ids[1]', message: 'node "nope" is not in the canvas' },
        { field: 'groups[1].node_ids[0]', message: 'node "also-missing" is not in the canvas' },
      ]);
      expect((err as Error).message).toBe(
        '2 node id(s) are not in "Biology/cells.canvas": use ids of nodes in this canvas ' +
          '(GET /canvases/nodes?path=Biology/cells.canvas lists them)',
      );
    });

    it('lists at most 1000 unknown ids, and counts them all', async () => {
      const ids = Array.from({ length: 1200 }, (_, i) => ({
        field: `groups[0].node_ids[${i}]`,
        nodeId: `missing-${i}`,
      }));
      const err = (await service
        .open('Biology/cells.canvas', ids)
        .catch((e: unknown) => e)) as UnknownNodeIdsError;
      expect(err.errors).toHaveLength(1000);
      expect(err.message).toMatch(
        /^1200 node id\(s\) are not in "Biology\/cells\.canvas" \(the first 1000 are listed in errors\): /,
      );
    });

    it('refuses an invalid canvas with every problem found', async () => {
      writeFileSync(
        path.join(vaultRoot, 'broken.canvas'),
        JSON.stringify({ nodes: [{ id: 'a', type: 'text' }] }),
      );
      const err: unknown = await service.open('broken.canvas', []).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidCanvasError);
      expect((err as InvalidCanvasError).errors?.map((e) => e.field)).toEqual([
        'nodes[0].x',
        'nodes[0].y',
        'nodes[0].width',
        'nodes[0].height',
        'nodes[0].text',
      ]);
      expect((err as Error).message).toBe('"broken.canvas" is not a valid JSON Canvas file (5 problem(s))');
    });

    it('refuses a file that is not JSON as an invalid canvas', async () => {
      writeFileSync(path.join(vaultRoot, 'text.canvas'), 'hello');
      await expect(service.open('text.canvas', [])).rejects.toBeInstanceOf(InvalidCanvasError);
    });

    it('passes on path refusals and missing canvases from the vault', async () => {
      await expect(service.open('../x.canvas', [])).rejects.toBeInstanceOf(CanvasPathOutsideVaultError);
      await expect(service.open('Biology/missing.canvas', [])).rejects.toBeInstanceOf(CanvasNotFoundError);
    });

    it('resolve() checks the path again without reading the canvas', async () => {
      writeFileSync(canvasFile, 'no longer json');
      await expect(service.resolve('./Biology/cells.canvas')).resolves.toEqual({
        relPath: 'Biology/cells.canvas',
        absPath: canvasFile,
      });
      await expect(service.resolve('%2e%2e/x.canvas')).rejects.toBeInstanceOf(CanvasPathOutsideVaultError);
    });
  });

  describe('nodeContent', () => {
    const canvas = () => ({ relPath: 'Biology/cells.canvas', absPath: canvasFile });

    it('gives a text node its text', async () => {
      await expect(service.nodeContent(canvas(), 'text1')).resolves.toEqual({
        canvasPath: 'Biology/cells.canvas',
        nodeId: 'text1',
        nodeType: 'text',
        content: '## Cell\nThe basic unit of life.',
        context: { neighbours: [] },
      });
    });

    it("gives the agent the node's surroundings: connected nodes (either direction) and the smallest enclosing group", async () => {
      const doc = readCanvas();
      doc.nodes.push(node('tiny-group', 'group', -10, 340, { label: '  Energy  ', width: 320, height: 120 }));
      doc.edges.push(
        { id: 'e1', fromNode: 'in-text', toNode: 'link1' },
        { id: 'e2', fromNode: 'in-file', toNode: 'in-text' },
        { id: 'e3', fromNode: 'in-empty', toNode: 'in-text' },
        { id: 'e4', fromNode: 'text1', toNode: 'link1' },
      );
      writeFileSync(canvasFile, JSON.stringify(doc));
      await expect(service.nodeContent(canvas(), 'in-text')).resolves.toMatchObject({
        content: 'Mitochondria make ATP.',
        context: {
          neighbours: ['https://en.wikipedia.org/wiki/Cell_(biology)', 'Biology/notes/cell.md'],
          groupLabel: 'Energy',
        },
      });
    });

    it('gives a link node its URL', async () => {
      await expect(service.nodeContent(canvas(), 'link1')).resolves.toMatchObject({
        nodeType: 'link',
        content: 'https://en.wikipedia.org/wiki/Cell_(biology)',
      });
    });

    it('gives a group its label and the content of the nodes fully inside it (no groups, no empties)', async () => {
      const input = await service.nodeContent(canvas(), 'group1');
      expect(input.nodeType).toBe('group');
      expect(input.content).toBe(
        ['Organelles', 'Mitochondria make ATP.', 'Biology/notes/cell.md', 'https://example.org/atp'].join(
          '\n\n',
        ),
      );
    });

    it('gives a group without label just the contained texts', async () => {
      const doc = readCanvas();
      delete doc.nodes.find((n) => n.id === 'group1')!.label;
      writeFileSync(canvasFile, JSON.stringify(doc));
      const input = await service.nodeContent(canvas(), 'group1');
      expect(input.content.startsWith('Mitochondria make ATP.')).toBe(true);
    });

    it('reads a text file of a file node', async () => {
      await expect(service.nodeContent(canvas(), 'file-md')).resolves.toMatchObject({
        nodeType: 'file',
        content: '# Cell\n细胞是生命的基本单位。',
      });
    });

    it('reads at most 256 KiB of a file', async () => {
      const input = await service.nodeContent(canvas(), 'file-big');
      expect(input.content).toHaveLength(256 * 1024);
    });

    it('gives a non-text file (image) as an embed reference', async () => {
      await expect(service.nodeContent(canvas(), 'file-img')).resolves.toMatchObject({
        nodeType: 'file',
        content: '![[Biology/img/diagram.png]]',
      });
    });

    it.each([
      ['file-outside', 'escape.md', 'it resolves outside the vault'],
      ['file-dotdot', '../outside/secret.md', '".." segments are not allowed'],
      ['file-missing', 'Biology/notes/missing.md', 'the file does not exist'],
      ['file-no-path', '', 'it is empty'],
    ])('refuses file node %s with NodeContentMissingError', async (id, file, reason) => {
      const err: unknown = await service.nodeContent(canvas(), id).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NodeContentMissingError);
      expect((err as NodeContentMissingError).errorType).toBe('NODE_CONTENT_MISSING');
      expect((err as Error).message).toBe(`file node ${id} points to "${file}", which is refused: ${reason}`);
    });

    it('refuses a file node pointing at a directory with NodeContentMissingError', async () => {
      const err: unknown = await service.nodeContent(canvas(), 'file-dir').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NodeContentMissingError);
      expect((err as NodeContentMissingError).errorType).toBe('NODE_CONTENT_MISSING');
      expect((err as Error).message).toBe(
        'file node file-dir points to "Biology/notes", which is a directory',
      );
    });

    describe('file nodes: subpaths, embeds, binary files', () => {
      const NOTE = [
        '---',
        '# not a heading: front matter',
        '---',
        '# Cell',
        'The basic unit of life.',
        '## Structure',
        'Membrane and nucleus.',
        '### Membrane',
        'Lipid bilayer.',
        '## Step 1: divide',
        'Mitosis.',
        '```',
        '# Fake heading in code',
        '```',
        '# Other topic',
        'First line',
        'second line ^para1',
        '',
        '- apples',
        '- pears ^item',
        '  - conference',
        '  - comice',
        '- plums',
        '',
        '| a | b |',
        '|---|---|',
        '| 1 | 2 |',
        '',
        '^table1',
        '',
        'See ![[secret]] and ![[../outside/secret.md]] and ![[Biology/notes/cell.md]].',
        'Setext heading',
        '==============',
        'Under setext.',
      ].join('\n');

      let rewrites = 0;
      /** Adds a file node (with an optional subpath) to the canvas and returns what nodeContent gives for it. */
      const contentOf = async (file: string, subpath?: string): Promise<string> => {
        const doc = readCanvas();
        doc.nodes = doc.nodes.filter((n) => n.id !== 'probe');
        doc.nodes.push(node('probe', 'file', 9000, 0, subpath === undefined ? { file } : { file, subpath }));
        writeFileSync(canvasFile, JSON.stringify(doc, null, '\t'));
        // a distinct mtime each time, so the canvas cache never mistakes this rewrite for the previous one
        utimesSync(canvasFile, 1_700_000_000 + ++rewrites, 1_700_000_000 + rewrites);
        return (await service.nodeContent(canvas(), 'probe')).content;
      };
      const failureOf = async (file: string, subpath?: string): Promise<NodeContentMissingError> => {
        const err: unknown = await contentOf(file, subpath).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(NodeContentMissingError);
        expect((err as NodeContentMissingError).errorType).toBe('NODE_CONTENT_MISSING');
        return err as NodeContentMissingError;
      };
      const write = (rel: string, data: string | Buffer): void => {
        mkdirSync(path.dirname(path.join(vaultRoot, rel)), { recursive: true });
        writeFileSync(path.join(vaultRoot, rel), data);
      };

      beforeEach(() => {
        write('Biology/notes/note.md', NOTE);
        writeFileSync(path.join(base, 'outside', 'secret.md'), 'TOP SECRET');
        write('secret.md', 'IN-VAULT SECRET');
      });

      it('reads a #Heading subpath up to the next heading of the same or a higher level', async () => {
        await expect(contentOf('Biology/notes/note.md', '#Structure')).resolves.toBe(
          '## Structure\nMembrane and nucleus.\n### Membrane\nLipid bilayer.',
        );
      });

      it('reads a top-level heading with its sub-headings, stopping at the next top-level one', async () => {
        const content = await contentOf('Biology/notes/note.md', '#Cell');
        expect(content.startsWith('# Cell\nThe basic unit of life.\n## Structure')).toBe(true);
        expect(content.endsWith('```\n# Fake heading in code\n```')).toBe(true);
      });

      it('follows a nested heading path, matches headings as Obsidian links them, and ignores case as a fallback', async () => {
        await expect(contentOf('Biology/notes/note.md', '#Cell#Membrane')).resolves.toBe(
          '### Membrane\nLipid bilayer.',
        );
        await expect(contentOf('Biology/notes/note.md', '#Step 1 divide')).resolves.toContain('Mitosis.');
        await expect(contentOf('Biology/notes/note.md', '#structure')).resolves.toMatch(/^## Structure/);
      });

      it('reads a setext heading section to the end of the note', async () => {
        await expect(contentOf('Biology/notes/note.md', '#Setext heading')).resolves.toBe(
          'Setext heading\n==============\nUnder setext.',
        );
      });

      it('reads a #^blockid paragraph without its marker', async () => {
        await expect(contentOf('Biology/notes/note.md', '#^para1')).resolves.toBe('First line\nsecond line');
      });

      it('reads a #^blockid list item with its sub-items', async () => {
        await expect(contentOf('Biology/notes/note.md', '#^item')).resolves.toBe(
          '- pears\n  - conference\n  - comice',
        );
      });

      it('reads the block above a #^blockid on a line of its own (a table)', async () => {
        await expect(contentOf('Biology/notes/note.md', '#^table1')).resolves.toBe(
          '| a | b |\n|---|---|\n| 1 | 2 |',
        );
      });

      it('fails with NODE_CONTENT_MISSING when the heading or block is not in the note (code and front matter do not count)', async () => {
        expect((await failureOf('Biology/notes/note.md', '#Nucleus')).message).toBe(
          'file node probe points to "Biology/notes/note.md#Nucleus", but the note has no such heading',
        );
        await failureOf('Biology/notes/note.md', '#Fake heading in code');
        await failureOf('Biology/notes/note.md', '#not a heading front matter');
        expect((await failureOf('Biology/notes/note.md', '#^nope')).message).toBe(
          'file node probe points to "Biology/notes/note.md#^nope", but the note has no such block',
        );
      });

      it('does not follow embeds inside a note: they stay text and no other file is read', async () => {
        const open = jest.spyOn(fsp, 'open');
        const content = await contentOf('Biology/notes/note.md');
        expect(content).toBe(NOTE);
        expect(content).not.toMatch(/SECRET|细胞/);
        const opened = open.mock.calls.map(([p]) => String(p)).filter((p) => !p.endsWith('.canvas'));
        expect(opened).toEqual([path.join(vaultRoot, 'Biology/notes/note.md')]);
      });

      it('gives a binary file by extension as an embed reference with its subpath, checked but never read', async () => {
        write('Biology/docs/paper.pdf', 'plain text, but a .pdf');
        write('Biology/media/lecture.MP4', 'not read');
        const openFile = VaultFs.prototype.openFile;
        const reads = jest.fn();
        jest.spyOn(VaultFs.prototype, 'openFile').mockImplementation(async function (this: VaultFs, f) {
          const opened = await openFile.call(this, f);
          if (!f.endsWith('.canvas')) jest.spyOn(opened.handle, 'read').mockImplementation(reads);
          return opened;
        });
        await expect(contentOf('Biology/docs/paper.pdf', '#page=3')).resolves.toBe(
          '![[Biology/docs/paper.pdf#page=3]]',
        );
        await expect(contentOf('Biology/media/lecture.MP4')).resolves.toBe('![[Biology/media/lecture.MP4]]');
        expect(reads).not.toHaveBeenCalled();
      });

      it('gives a file with a NUL byte in its first 8 KiB as an embed reference, whatever its extension', async () => {
        write('Biology/notes/blob.dat', Buffer.from([0x47, 0x49, 0x46, 0x00, 0x01]));
        write('Biology/notes/misnamed.md', Buffer.concat([Buffer.alloc(8191, 'a'), Buffer.from([0])]));
        write('Biology/notes/scan.txt', '%PDF-1.7\nno NUL here');
        await expect(contentOf('Biology/notes/blob.dat')).resolves.toBe('![[Biology/notes/blob.dat]]');
        await expect(contentOf('Biology/notes/misnamed.md', '#X')).resolves.toBe(
          '![[Biology/notes/misnamed.md#X]]',
        );
        await expect(contentOf('Biology/notes/scan.txt')).resolves.toBe('![[Biology/notes/scan.txt]]');
      });

      it('reads text files of any extension, ignoring a subpath outside markdown and a NUL after 8 KiB', async () => {
        write('code/script.py', 'print("hi")\n');
        write('data/late-nul.txt', Buffer.concat([Buffer.alloc(8192, 'a'), Buffer.from([0])]));
        await expect(contentOf('code/script.py', '#Heading')).resolves.toBe('print("hi")\n');
        await expect(contentOf('data/late-nul.txt')).resolves.toHaveLength(8193);
      });

      it('never ends the 256 KiB excerpt inside a character, and drops a BOM', async () => {
        write('Biology/notes/long.md', `\ufeff${'细'.repeat(100_000)}`);
        const content = await contentOf('Biology/notes/long.md');
        expect(content).toBe('细'.repeat(Math.floor((256 * 1024 - 3) / 3)));
      });

      it('reads a section far into a long note and caps it at 256 KiB', async () => {
        write('Biology/notes/huge.md', `${'filler\n'.repeat(60_000)}# Late\n${'z'.repeat(300 * 1024)}`);
        const content = await contentOf('Biology/notes/huge.md', '#Late');
        expect(content.startsWith('# Late\nzzz')).toBe(true);
        expect(Buffer.byteLength(content)).toBe(256 * 1024);
      });

      (process.platform === 'win32' ? it.skip : it)(
        'refuses a FIFO (never blocks on it) with NODE_CONTENT_MISSING',
        async () => {
          execFileSync('mkfifo', [path.join(vaultRoot, 'Biology/notes/pipe.md')]);
          expect((await failureOf('Biology/notes/pipe.md')).message).toBe(
            'file node probe points to "Biology/notes/pipe.md", which is not a regular file',
          );
        },
      );

      it('reports a file that cannot be opened as NODE_CONTENT_MISSING with the reason, never a server path', async () => {
        const realOpen = fsp.open.bind(fsp);
        jest.spyOn(fsp, 'open').mockImplementation((async (p: string, flags: number) => {
          if (String(p).endsWith('note.md'))
            throw Object.assign(new Error(`EACCES: permission denied, open '${String(p)}'`), {
              code: 'EACCES',
            });
          return realOpen(p, flags);
        }) as typeof fsp.open);
        expect((await failureOf('Biology/notes/note.md')).message).toBe(
          'file node probe points to "Biology/notes/note.md", which cannot be read (EACCES)',
        );
      });

      it('refuses a file swapped for a link out of the vault at the moment it is opened, reading nothing outside', async () => {
        writeFileSync(path.join(base, 'outside', 'secret.md'), 'SECRET OUTSIDE');
        const target = path.join(vaultRoot, 'Biology/notes/note.md');
        const realOpen = fsp.open.bind(fsp);
        jest.spyOn(fsp, 'open').mockImplementation((async (p: string, flags: number) => {
          if (String(p) === target) {
            // swapped between any earlier check and this open
            rmSync(target);
            symlinkSync(path.join(base, 'outside', 'secret.md'), target);
          }
          return realOpen(p, flags);
        }) as typeof fsp.open);
        const err = await failureOf('Biology/notes/note.md');
        expect(err.message).toBe(
          'file node probe points to "Biology/notes/note.md", which is refused: it resolves outside the vault',
        );
        expect(err.message).not.toContain('SECRET');
      });
    });

    it('refuses a node of a type no agent can read', async () => {
      await expect(service.nodeContent(canvas(), 'widget')).rejects.toThrow(
        new NodeNotFoundError('node widget has type "plugin-widget", which no agent can read'),
      );
    });

    it('reports a node that is no longer in the canvas', async () => {
      await expect(service.nodeContent(canvas(), 'ghost')).rejects.toThrow(
        new NodeNotFoundError('node ghost is no longer in Biology/cells.canvas'),
      );
    });

    it('reports a canvas deleted since it was opened', async () => {
      rmSync(canvasFile);
      await expect(service.nodeContent(canvas(), 'text1')).rejects.toThrow(
        new NodeNotFoundError('canvas Biology/cells.canvas no longer exists'),
      );
    });

    it('reports a canvas whose folder was replaced by a file since it was opened', async () => {
      rmSync(path.dirname(canvasFile), { recursive: true });
      writeFileSync(path.dirname(canvasFile), 'not a folder');
      await expect(service.nodeContent(canvas(), 'text1')).rejects.toThrow(
        new NodeNotFoundError('canvas Biology/cells.canvas no longer exists'),
      );
    });

    it('shares one read and parse between concurrent requests for a changed canvas', async () => {
      const readSpy = jest.spyOn(VaultFs.prototype, 'readFile');
      const inputs = await Promise.all(
        ['text1', 'link1', 'group1', 'text1'].map((id) => service.nodeContent(canvas(), id)),
      );
      expect(inputs.map((i) => i.nodeId)).toEqual(['text1', 'link1', 'group1', 'text1']);
      expect(readSpy).toHaveBeenCalledTimes(1);
    });

    it('reuses the parse while the file is unchanged and re-reads it after a change', async () => {
      const readSpy = jest.spyOn(VaultFs.prototype, 'readFile');
      await service.nodeContent(canvas(), 'text1');
      await service.nodeContent(canvas(), 'link1');
      expect(readSpy).toHaveBeenCalledTimes(1);

      const doc = readCanvas();
      doc.nodes[0].text = 'Edited in Obsidian, and longer than before.';
      writeFileSync(canvasFile, JSON.stringify(doc, null, '\t'));
      await expect(service.nodeContent(canvas(), 'text1')).resolves.toMatchObject({
        content: 'Edited in Obsidian, and longer than before.',
      });
      expect(readSpy).toHaveBeenCalledTimes(2);
    });
  });

  describe('writeResult', () => {
    const result = (overrides: Partial<ResultToWrite> = {}): ResultToWrite => ({
      canvas: { relPath: 'Biology/cells.canvas', absPath: canvasFile },
      taskId: TASK_ID,
      sourceNodeId: 'text1',
      agentType: 'oral-explanation',
      title: 'Cell — oral explanation',
      markdown: '\n## 引入\n\n细胞是生命的基本单位。\n\n',
      ...overrides,
    });
    const key = (source: string, agent: string) => `${TASK_ID}\0${source}\0${agent}`;
    const hash = (source: string, agent: string) => nameHash(TASK_ID, source, agent);

    it('writes the markdown file beside the canvas with its exact size', async () => {
      const written = await service.writeResult(result());
      expect(written.filePath).toBe(
        `Biology/cells-explanations/oral-explanation - Cell — oral explanation - ${hash('text1', 'oral-explanation')}.md`,
      );
      const body = readFileSync(path.join(vaultRoot, written.filePath), 'utf8');
      expect(body).toBe('# Cell — oral explanation\n\n## 引入\n\n细胞是生命的基本单位。\n');
      expect(written.fileSize).toBe(statSync(path.join(vaultRoot, written.filePath)).size);
      expect(written.fileSize).toBe(Buffer.byteLength(body));
      expect(written.fileSize).toBeGreaterThan(body.length);
    });

    it('recreates the results folder when it is removed after the last result, or between its check and the write', async () => {
      const first = await service.writeResult(result());
      rmSync(path.join(vaultRoot, 'Biology/cells-explanations'), { recursive: true });
      const second = await service.writeResult(result({ sourceNodeId: 'in-text', markdown: 'again' }));
      expect(readFileSync(path.join(vaultRoot, second.filePath), 'utf8')).toContain('again');
      expect(path.dirname(second.filePath)).toBe(path.dirname(first.filePath));
      // removed in the moment between the folder's check and the file's write: checked and created again, once
      const ensure = VaultService.prototype.ensureFolder;
      const spy = jest.spyOn(VaultService.prototype, 'ensureFolder').mockImplementationOnce(async function (
        this: VaultService,
        rel: string,
      ) {
        const dir = await ensure.call(this, rel);
        rmSync(dir.realPath, { recursive: true });
        return dir;
      });
      const third = await service.writeResult(result({ sourceNodeId: 'in-file', markdown: 'raced' }));
      expect(spy).toHaveBeenCalledTimes(2);
      expect(readFileSync(path.join(vaultRoot, third.filePath), 'utf8')).toContain('raced');
      spy.mockRestore();
    });

    it('adds a file node next to the source and an edge from that side labelled with the agent', async () => {
      const written = await service.writeResult(result());
      expect(written.canvas).toEqual({ placed: true, alreadyPresent: false });
      const doc = readCanvas();
      const nodeId = shortId('n', key('text1', 'oral-explanation'));
      const added = doc.nodes.find((n) => n.id === nodeId)!;
      expect(added).toMatchObject({
        type: 'file',
        file: written.filePath,
        width: RESULT_NODE_WIDTH,
        height: 240,
        // a group takes the space under the source and a link its right: the nearest free spot is on its left
        x: -50 - RESULT_NODE_WIDTH,
        y: 0,
      });
      expect(doc.edges).toEqual([
        {
          id: shortId('e', key('text1', 'oral-explanation')),
          fromNode: 'text1',
          fromSide: 'left',
          toNode: nodeId,
          toSide: 'right',
          label: 'oral-explanation',
        },
      ]);
      const text = readFileSync(canvasFile, 'utf8');
      expect(text).toBe(JSON.stringify(JSON.parse(text), null, '\t'));
    });

    it('replaces, not duplicates, the same task/node/agent result', async () => {
      const first = await service.writeResult(result({ markdown: 'first version' }));
      const second = await service.writeResult(result({ markdown: 'second version' }));
      expect(second.filePath).toBe(first.filePath);
      expect(second.canvas).toEqual({ placed: true, alreadyPresent: true });
      expect(readFileSync(path.join(vaultRoot, second.filePath), 'utf8')).toBe(
        '# Cell — oral explanation\n\nsecond version\n',
      );
      const doc = readCanvas();
      expect(doc.nodes.filter((n) => n.file === first.filePath)).toHaveLength(1);
      expect(doc.edges).toHaveLength(1);
      expect(service.writeStats().writes).toBe(1);
    });

    it('keeps the name the canvas links to when a replay sees a changed concept (no second file)', async () => {
      const first = await service.writeResult(result({ concept: 'Cell', markdown: 'first' }));
      const replay = await service.writeResult(
        result({ concept: 'Cell, edited meanwhile', markdown: 'second' }),
      );
      expect(replay.filePath).toBe(first.filePath);
      expect(readFileSync(path.join(vaultRoot, first.filePath), 'utf8')).toContain('second');
      expect(readdirSync(path.join(vaultRoot, 'Biology', 'cells-explanations'))).toHaveLength(1);
    });

    it('never reuses a file the user re-pointed the result node to', async () => {
      const first = await service.writeResult(result({ concept: 'Cell' }));
      const doc = readCanvas();
      const resultNode = doc.nodes.find((n) => n.file === first.filePath)!;
      resultNode.file = 'Biology/notes/cell.md';
      writeFileSync(canvasFile, JSON.stringify(doc, null, '\t'));
      const replay = await service.writeResult(result({ concept: 'Cell', markdown: 'again' }));
      expect(replay.filePath).toBe(first.filePath);
      expect(readFileSync(path.join(vaultRoot, 'Biology/notes/cell.md'), 'utf8')).toBe(
        '# Cell\n细胞是生命的基本单位。',
      );
    });

    it('adds a separate node for another agent on the same source node', async () => {
      await service.writeResult(result());
      const other = await service.writeResult(result({ agentType: 'memory-anchor' }));
      expect(other.filePath).toBe(
        `Biology/cells-explanations/memory-anchor - Cell — oral explanation - ${hash('text1', 'memory-anchor')}.md`,
      );
      const doc = readCanvas();
      expect(doc.nodes).toHaveLength(NODES.length + 2);
      expect(doc.edges.map((e) => e.label)).toEqual(['oral-explanation', 'memory-anchor']);
    });

    it('sizes the node by content length between 240 and 640', async () => {
      const heightOf = async (agentType: string, markdown: string): Promise<number> => {
        await service.writeResult(result({ agentType, markdown }));
        const id = shortId('n', key('text1', agentType));
        return readCanvas().nodes.find((n) => n.id === id)!.height;
      };
      expect(await heightOf('a-short', 'short')).toBe(240);
      expect(await heightOf('a-mid', 'm'.repeat(1200 - '# Cell — oral explanation\n\n\n'.length))).toBe(400);
      expect(await heightOf('a-long', 'l'.repeat(5000))).toBe(640);
    });

    it('names the file from the concept when given, else from the title after its "<agent>: " prefix', async () => {
      const fromConcept = await service.writeResult(
        result({ title: 'oral-explanation: 细胞', concept: '导数的定义', markdown: 'x' }),
      );
      expect(fromConcept.filePath).toBe(
        `Biology/cells-explanations/oral-explanation - 导数的定义 - ${hash('text1', 'oral-explanation')}.md`,
      );
      const fromTitle = await service.writeResult(
        result({ agentType: 'memory-anchor', title: 'memory-anchor: Cell theory' }),
      );
      expect(fromTitle.filePath).toBe(
        `Biology/cells-explanations/memory-anchor - Cell theory - ${hash('text1', 'memory-anchor')}.md`,
      );
      expect(readFileSync(path.join(vaultRoot, fromTitle.filePath), 'utf8')).toMatch(
        /^# memory-anchor: Cell theory\n/,
      );
    });

    it('uses a safe file name for an unsafe node id and concept', async () => {
      const doc = readCanvas();
      doc.nodes.push(node('a/b:c', 'text', 5000, 0, { text: 'odd id' }));
      writeFileSync(canvasFile, JSON.stringify(doc, null, '\t'));
      const written = await service.writeResult(
        result({ sourceNodeId: 'a/b:c', title: 'oral-explanation: CON', concept: '<a>: "b"?\u0000' }),
      );
      expect(written.filePath).toBe(
        `Biology/cells-explanations/oral-explanation - a b - ${hash('a/b:c', 'oral-explanation')}.md`,
      );
      expect(written.filePath.split('/')).toHaveLength(3);
    });

    it('writes results of a canvas at the vault root into a root-level folder', async () => {
      const rootCanvas = path.join(vaultRoot, 'board.canvas');
      writeFileSync(rootCanvas, JSON.stringify({ nodes: [NODES[0]], edges: [] }));
      const written = await service.writeResult(
        result({ canvas: { relPath: 'board.canvas', absPath: rootCanvas } }),
      );
      expect(written.filePath).toBe(
        `board-explanations/oral-explanation - Cell — oral explanation - ${hash('text1', 'oral-explanation')}.md`,
      );
      expect(JSON.parse(readFileSync(rootCanvas, 'utf8')).nodes).toHaveLength(2);
    });

    it('still writes the file but reports the canvas node as not placed when the source node is gone', async () => {
      const doc = readCanvas();
      doc.nodes = doc.nodes.filter((n) => n.id !== 'text1');
      writeFileSync(canvasFile, JSON.stringify(doc, null, '\t'));
      const written = await service.writeResult(result());
      expect(written.canvas).toEqual({
        placed: false,
        reason: 'source node text1 is no longer in the canvas',
      });
      expect(readFileSync(path.join(vaultRoot, written.filePath), 'utf8')).toContain('细胞');
      expect(readCanvas().nodes).toHaveLength(NODES.length - 1);
    });

    it('fails with CanvasWriteError when the result file cannot be written, leaving the canvas alone', async () => {
      writeFileSync(
        path.join(vaultRoot, 'Biology', 'cells-explanations'),
        'a file where the folder should be',
      );
      const before = readFileSync(canvasFile, 'utf8');
      const err: unknown = await service.writeResult(result()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CanvasWriteError);
      expect((err as Error).message).toMatch(/^cannot write the result file: /);
      expect((err as Error).cause).toBeDefined();
      expect(readFileSync(canvasFile, 'utf8')).toBe(before);
    });

    it('counts canvas writes over all canvases, and flush waits for queued writes', async () => {
      expect(service.writeStats()).toEqual({ writes: 0, bytesWritten: 0, restored: 0, repaired: 0 });
      const rootCanvas = path.join(vaultRoot, 'board.canvas');
      writeFileSync(rootCanvas, JSON.stringify({ nodes: [NODES[0]], edges: [] }));
      await Promise.all([
        service.writeResult(result()),
        service.writeResult(result({ canvas: { relPath: 'board.canvas', absPath: rootCanvas } })),
      ]);
      await service.flush();
      const stats = service.writeStats();
      expect(stats.writes).toBe(2);
      expect(stats.bytesWritten).toBe(statSync(canvasFile).size + statSync(rootCanvas).size);
    });
  });
});

describe('shortId', () => {
  it('gives a deterministic 16-hex id that depends on kind and key', () => {
    expect(shortId('n', 'k')).toMatch(/^[0-9a-f]{16}$/);
    expect(shortId('n', 'k')).toBe(shortId('n', 'k'));
    expect(shortId('n', 'k')).not.toBe(shortId('e', 'k'));
    expect(shortId('n', 'k')).not.toBe(shortId('n', 'k2'));
  });
});
