import type { ProblemFieldError } from '../common';
import { type CanvasDocument, detectFormat, overlaps, parseCanvas, serializeCanvas } from './json-canvas';

const textNode = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  type: 'text',
  text: `text of ${id}`,
  x: 0,
  y: 0,
  width: 100,
  height: 50,
  ...extra,
});

function parseOk(text: string): CanvasDocument {
  const parsed = parseCanvas(text);
  if ('errors' in parsed) throw new Error(`expected a valid canvas, got ${JSON.stringify(parsed.errors)}`);
  return parsed.doc;
}

function parseErrors(value: unknown): ProblemFieldError[] {
  const parsed = parseCanvas(typeof value === 'string' ? value : JSON.stringify(value));
  if (!('errors' in parsed)) throw new Error('expected validation errors');
  return parsed.errors;
}

/** An Obsidian-style file: tab indentation, no final newline. */
const OBSIDIAN_FILE = [
  '{',
  '\t"nodes":[',
  '\t\t{"id":"a1","type":"text","text":"Hello","x":-10,"y":20,"width":250,"height":60}',
  '\t],',
  '\t"edges":[]',
  '}',
].join('\n');

describe('parseCanvas', () => {
  it('parses a valid canvas with every node type and an edge', () => {
    const doc = parseOk(
      JSON.stringify({
        nodes: [
          textNode('t'),
          { id: 'f', type: 'file', file: 'notes/a.md', x: 0, y: 100, width: 100, height: 100 },
          { id: 'l', type: 'link', url: 'https://example.org', x: 0, y: 300, width: 100, height: 100 },
          { id: 'g', type: 'group', label: 'G', x: -50, y: -50, width: 500, height: 500 },
        ],
        edges: [{ id: 'e1', fromNode: 't', toNode: 'f', fromSide: 'bottom', toSide: 'top' }],
      }),
    );
    expect(doc.nodes.map((n) => [n.id, n.type])).toEqual([
      ['t', 'text'],
      ['f', 'file'],
      ['l', 'link'],
      ['g', 'group'],
    ]);
    expect(doc.nodes[1].file).toBe('notes/a.md');
    expect(doc.edges).toEqual([{ id: 'e1', fromNode: 't', toNode: 'f', fromSide: 'bottom', toSide: 'top' }]);
  });

  it('treats missing "nodes" and "edges" as empty (both are optional)', () => {
    const doc = parseOk('{}');
    expect(doc.nodes).toEqual([]);
    expect(doc.edges).toEqual([]);
  });

  it('strips a UTF-8 byte order mark before parsing', () => {
    const doc = parseOk('\uFEFF' + JSON.stringify({ nodes: [textNode('bom')], edges: [] }));
    expect(doc.nodes[0].id).toBe('bom');
  });

  it('keeps unknown fields on nodes, edges and the top level', () => {
    const doc = parseOk(
      JSON.stringify({
        nodes: [textNode('a', { pluginData: { x: 1 }, color: '4' })],
        edges: [{ id: 'e', fromNode: 'a', toNode: 'a', fancy: true }],
        metadata: { version: '1.0' },
      }),
    );
    expect(doc.nodes[0].pluginData).toEqual({ x: 1 });
    expect(doc.nodes[0].color).toBe('4');
    expect(doc.edges[0].fancy).toBe(true);
    expect(doc.raw.metadata).toEqual({ version: '1.0' });
  });

  it('accepts and keeps unknown node types, even ones named like Object.prototype members', () => {
    const doc = parseOk(
      JSON.stringify({
        nodes: [
          { id: 'p', type: 'plugin-widget', x: 0, y: 0, width: 10, height: 10, widget: 'clock' },
          { id: 'c', type: 'constructor', x: 0, y: 0, width: 10, height: 10 },
          { id: 's', type: 'toString', x: 0, y: 0, width: 10, height: 10 },
          { id: 'q', type: '__proto__', x: 0, y: 0, width: 10, height: 10 },
        ],
      }),
    );
    expect(doc.nodes.map((n) => n.type)).toEqual(['plugin-widget', 'constructor', 'toString', '__proto__']);
    expect(doc.nodes[0].widget).toBe('clock');
  });

  it('reports text that is not JSON', () => {
    const errors = parseErrors('{"nodes": [');
    expect(errors).toHaveLength(1);
    expect(errors[0].field).toBe('');
    expect(errors[0].message).toMatch(/^not JSON: /);
  });

  it.each([['[]'], ['null'], ['42'], ['"text"']])('refuses a top level that is not an object: %s', (text) => {
    expect(parseErrors(text)).toEqual([
      { field: '', message: 'the top level must be an object with "nodes" and "edges"' },
    ]);
  });

  it('refuses "nodes" and "edges" that are not arrays, reporting both', () => {
    expect(parseErrors({ nodes: {}, edges: 'none' })).toEqual([
      { field: 'nodes', message: 'must be an array' },
      { field: 'edges', message: 'must be an array' },
    ]);
  });

  it('refuses a node that is not an object', () => {
    expect(parseErrors({ nodes: [textNode('ok'), 'oops', null, []] })).toEqual([
      { field: 'nodes[1]', message: 'must be an object' },
      { field: 'nodes[2]', message: 'must be an object' },
      { field: 'nodes[3]', message: 'must be an object' },
    ]);
  });

  it('refuses a missing, empty or non-string node id', () => {
    const errors = parseErrors({
      nodes: [textNode('a', { id: undefined }), textNode('b', { id: '' }), textNode('c', { id: 7 })],
    });
    expect(errors).toEqual([
      { field: 'nodes[0].id', message: 'must be a non-empty string' },
      { field: 'nodes[1].id', message: 'must be a non-empty string' },
      { field: 'nodes[2].id', message: 'must be a non-empty string' },
    ]);
  });

  it('refuses duplicate node ids, naming the duplicate', () => {
    expect(parseErrors({ nodes: [textNode('dup'), textNode('other'), textNode('dup')] })).toEqual([
      { field: 'nodes[2].id', message: 'duplicate node id "dup"' },
    ]);
  });

  it('refuses a non-string node type', () => {
    expect(parseErrors({ nodes: [textNode('a', { type: 3 })] })).toEqual([
      { field: 'nodes[0].type', message: 'must be a string' },
    ]);
  });

  it('refuses missing or non-numeric geometry', () => {
    const errors = parseErrors({
      nodes: [textNode('a', { x: '1', y: null, width: undefined, height: true })],
    });
    expect(errors).toEqual([
      { field: 'nodes[0].x', message: 'must be a number' },
      { field: 'nodes[0].y', message: 'must be a number' },
      { field: 'nodes[0].width', message: 'must be a number' },
      { field: 'nodes[0].height', message: 'must be a number' },
    ]);
  });

  it('refuses non-finite geometry', () => {
    // JSON has no Infinity literal, but a huge exponent parses to Infinity.
    expect(parseErrors('{"nodes":[{"id":"a","type":"group","x":1e400,"y":0,"width":1,"height":1}]}')).toEqual(
      [{ field: 'nodes[0].x', message: 'must be a number' }],
    );
  });

  it.each([
    ['text', 'text'],
    ['file', 'file'],
    ['link', 'url'],
  ])('requires a string "%s" content field (%s) on a %s node', (type, field) => {
    const node: Record<string, unknown> = { id: 'n', type, x: 0, y: 0, width: 1, height: 1 };
    expect(parseErrors({ nodes: [node] })).toEqual([
      { field: `nodes[0].${field}`, message: `a ${type} node needs a string "${field}"` },
    ]);
    node[field] = 42;
    expect(parseErrors({ nodes: [node] })).toEqual([
      { field: `nodes[0].${field}`, message: `a ${type} node needs a string "${field}"` },
    ]);
  });

  it('needs no content field on a group node', () => {
    expect(
      parseOk(JSON.stringify({ nodes: [{ id: 'g', type: 'group', x: 0, y: 0, width: 1, height: 1 }] })).nodes,
    ).toHaveLength(1);
  });

  it('refuses an edge that is not an object', () => {
    expect(parseErrors({ nodes: [], edges: [5, null] })).toEqual([
      { field: 'edges[0]', message: 'must be an object' },
      { field: 'edges[1]', message: 'must be an object' },
    ]);
  });

  it('refuses edges without id, fromNode or toNode', () => {
    expect(parseErrors({ edges: [{ id: '', fromNode: 3 }] })).toEqual([
      { field: 'edges[0].id', message: 'must be a non-empty string' },
      { field: 'edges[0].fromNode', message: 'must be a non-empty string' },
      { field: 'edges[0].toNode', message: 'must be a non-empty string' },
    ]);
  });

  it('refuses unknown edge sides but accepts every JSON Canvas side', () => {
    expect(
      parseErrors({ edges: [{ id: 'e', fromNode: 'a', toNode: 'b', fromSide: 'middle', toSide: 'down' }] }),
    ).toEqual([
      { field: 'edges[0].fromSide', message: 'must be one of top, right, bottom, left' },
      { field: 'edges[0].toSide', message: 'must be one of top, right, bottom, left' },
    ]);
    for (const side of ['top', 'right', 'bottom', 'left']) {
      expect(
        parseOk(
          JSON.stringify({ edges: [{ id: 'e', fromNode: 'a', toNode: 'b', fromSide: side, toSide: side }] }),
        ).edges,
      ).toHaveLength(1);
    }
  });

  it('collects problems from nodes and edges together, capped at 50', () => {
    const nodes = Array.from({ length: 40 }, (_, i) => ({
      id: `n${i}`,
      type: 'text',
      x: 0,
      y: 0,
      width: 1,
      height: 1,
    }));
    const edges = Array.from({ length: 40 }, () => ({ id: 'e', fromNode: 'a' }));
    const errors = parseErrors({ nodes, edges });
    expect(errors).toHaveLength(50);
    expect(errors[0]).toEqual({ field: 'nodes[0].text', message: 'a text node needs a string "text"' });
    expect(errors[39].field).toBe('nodes[39].text');
    expect(errors[40]).toEqual({ field: 'edges[0].toNode', message: 'must be a non-empty string' });
  });
});

describe('detectFormat', () => {
  it('detects Obsidian tab indentation without a final newline', () => {
    expect(detectFormat(OBSIDIAN_FILE)).toEqual({ indent: '\t', finalNewline: false, eol: '\n' });
  });

  it('detects two- and four-space indentation', () => {
    expect(detectFormat('{\n  "nodes": []\n}\n')).toEqual({ indent: '  ', finalNewline: true, eol: '\n' });
    expect(detectFormat('{\n    "nodes": []\n}')).toEqual({ indent: '    ', finalNewline: false, eol: '\n' });
  });

  it('detects minified JSON (no indentation), with or without a final newline', () => {
    expect(detectFormat('{"nodes":[],"edges":[]}')).toEqual({
      indent: undefined,
      finalNewline: false,
      eol: '\n',
    });
    expect(detectFormat('{"nodes":[],"edges":[]}\n')).toEqual({
      indent: undefined,
      finalNewline: true,
      eol: '\n',
    });
  });

  it('detects CRLF line ends', () => {
    expect(detectFormat('{\r\n\t"nodes": []\r\n}\r\n')).toEqual({
      indent: '\t',
      finalNewline: true,
      eol: '\r\n',
    });
  });

  it('skips blank lines when looking for the indentation', () => {
    expect(detectFormat('{\n\n   "nodes": []\n}')).toEqual({ indent: '   ', finalNewline: false, eol: '\n' });
  });
});

describe('serializeCanvas', () => {
  const roundTrip = (text: string): string => serializeCanvas(parseOk(text), detectFormat(text));

  it('reproduces an Obsidian (tab-indented) file byte for byte', () => {
    const text = JSON.stringify(JSON.parse(OBSIDIAN_FILE), null, '\t');
    expect(roundTrip(text)).toBe(text);
  });

  it.each([
    ['tabs', '\t', ''],
    ['two spaces', 2, '\n'],
    ['four spaces', 4, ''],
    ['minified', undefined, ''],
    ['minified with final newline', undefined, '\n'],
  ])('keeps the formatting of a file (%s)', (_name, indent, tail) => {
    const value = { nodes: [textNode('a')], edges: [{ id: 'e', fromNode: 'a', toNode: 'a' }] };
    const text = JSON.stringify(value, null, indent) + tail;
    expect(roundTrip(text)).toBe(text);
  });

  it('keeps CRLF line ends and the final CRLF', () => {
    const text =
      JSON.stringify({ nodes: [textNode('a')], edges: [] }, null, '\t').replace(/\n/g, '\r\n') + '\r\n';
    const out = roundTrip(text);
    expect(out).toBe(text);
    expect(out.replace(/\r\n/g, '')).not.toContain('\n');
  });

  it('keeps the top-level key order and unknown top-level keys; new nodes are written in place', () => {
    const text = JSON.stringify({ version: 2, edges: [], extra: { keep: true }, nodes: [] }, null, '\t');
    const doc = parseOk(text);
    doc.nodes.push(textNode('added'));
    const out = serializeCanvas(doc, detectFormat(text));
    expect(Object.keys(JSON.parse(out) as object)).toEqual(['version', 'edges', 'extra', 'nodes']);
    expect(JSON.parse(out)).toEqual({
      version: 2,
      edges: [],
      extra: { keep: true },
      nodes: [textNode('added')],
    });
  });

  it('keeps the key order inside nodes', () => {
    const text = JSON.stringify({
      nodes: [{ height: 5, width: 5, y: 1, x: 1, type: 'group', id: 'g', custom: 1 }],
      edges: [],
    });
    expect(roundTrip(text)).toBe(text);
  });

  it('adds "nodes" and "edges" after the existing keys when the file had neither', () => {
    const text = '{\n  "meta": 1\n}';
    expect(roundTrip(text)).toBe('{\n  "meta": 1,\n  "nodes": [],\n  "edges": []\n}');
  });

  it('drops the byte order mark on rewrite but keeps the content', () => {
    const text = '\uFEFF{"nodes":[],"edges":[]}';
    expect(roundTrip(text)).toBe('{"nodes":[],"edges":[]}');
  });
});

describe('overlaps', () => {
  const a = { x: 0, y: 0, width: 100, height: 100 };

  it('detects intersecting rectangles in both argument orders', () => {
    const b = { x: 50, y: 50, width: 100, height: 100 };
    expect(overlaps(a, b)).toBe(true);
    expect(overlaps(b, a)).toBe(true);
  });

  it('detects containment', () => {
    expect(overlaps(a, { x: 10, y: 10, width: 5, height: 5 })).toBe(true);
  });

  it('does not count touching edges as overlap', () => {
    expect(overlaps(a, { x: 100, y: 0, width: 10, height: 10 })).toBe(false);
    expect(overlaps(a, { x: 0, y: 100, width: 10, height: 10 })).toBe(false);
    expect(overlaps(a, { x: -10, y: 0, width: 10, height: 10 })).toBe(false);
    expect(overlaps(a, { x: 0, y: -10, width: 10, height: 10 })).toBe(false);
  });

  it('counts rectangles closer than the margin as overlapping', () => {
    const near = { x: 115, y: 0, width: 10, height: 10 };
    expect(overlaps(a, near)).toBe(false);
    expect(overlaps(a, near, 20)).toBe(true);
    expect(overlaps(a, near, 15)).toBe(false);
  });

  it('separates rectangles apart on only one axis', () => {
    expect(overlaps(a, { x: 0, y: 500, width: 100, height: 100 })).toBe(false);
    expect(overlaps(a, { x: 500, y: 0, width: 100, height: 100 })).toBe(false);
  });
});
