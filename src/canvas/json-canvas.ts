import type { ProblemFieldError } from '../common';

/** A JSON Canvas object as found on disk: known fields typed, every other field kept. */
export type JsonObject = Record<string, unknown>;

export interface CanvasNode extends JsonObject {
  id: string;
  type: string;
  x: number;
  y: number;
  width: number;
  height: number;
  color?: string;
  text?: string;
  file?: string;
  url?: string;
  label?: string;
}

export interface CanvasEdge extends JsonObject {
  id: string;
  fromNode: string;
  toNode: string;
}

/** A parsed canvas. `raw` is the top-level object exactly as parsed, so unknown keys survive a rewrite. */
export interface CanvasDocument {
  raw: JsonObject;
  nodes: CanvasNode[];
  edges: CanvasEdge[];
}

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export const NODE_TYPES = ['text', 'file', 'link', 'group'] as const;
const SIDES = ['top', 'right', 'bottom', 'left'];

/** The field each known node type needs (own keys only: a type named like `constructor` is just unknown). */
const REQUIRED_FIELD: Readonly<Record<string, string>> = { text: 'text', file: 'file', link: 'url' };

/**
 * Parses and validates JSON Canvas 1.0. Returns the problems instead of throwing, so callers can report every one.
 * Unknown node types and unknown fields are accepted and kept (plugins add their own).
 */
export function parseCanvas(text: string): { doc: CanvasDocument } | { errors: ProblemFieldError[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (err) {
    return { errors: [{ field: '', message: `not JSON: ${(err as Error).message}` }] };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { errors: [{ field: '', message: 'the top level must be an object with "nodes" and "edges"' }] };
  }
  const top = raw as JsonObject;
  const errors: ProblemFieldError[] = [];
  const nodes = arrayField(top, 'nodes', errors);
  const edges = arrayField(top, 'edges', errors);
  const ids = new Set<string>();
  nodes.forEach((n, i) => {
    const at = `nodes[${i}]`;
    if (!isObject(n)) return errors.push({ field: at, message: 'must be an object' });
    if (typeof n.id !== 'string' || n.id === '')
      errors.push({ field: `${at}.id`, message: 'must be a non-empty string' });
    else if (ids.has(n.id)) errors.push({ field: `${at}.id`, message: `duplicate node id "${n.id}"` });
    else ids.add(n.id);
    if (typeof n.type !== 'string') errors.push({ field: `${at}.type`, message: 'must be a string' });
    for (const k of ['x', 'y', 'width', 'height']) {
      if (typeof n[k] !== 'number' || !Number.isFinite(n[k]))
        errors.push({ field: `${at}.${k}`, message: 'must be a number' });
    }
    const need =
      typeof n.type === 'string' && Object.hasOwn(REQUIRED_FIELD, n.type)
        ? REQUIRED_FIELD[n.type]
        : undefined;
    if (need && typeof n[need] !== 'string')
      errors.push({ field: `${at}.${need}`, message: `a ${String(n.type)} node needs a string "${need}"` });
  });
  edges.forEach((e, i) => {
    const at = `edges[${i}]`;
    if (!isObject(e)) return errors.push({ field: at, message: 'must be an object' });
    for (const k of ['id', 'fromNode', 'toNode']) {
      if (typeof e[k] !== 'string' || e[k] === '')
        errors.push({ field: `${at}.${k}`, message: 'must be a non-empty string' });
    }
    for (const k of ['fromSide', 'toSide']) {
      if (e[k] !== undefined && !SIDES.includes(e[k] as string))
        errors.push({ field: `${at}.${k}`, message: `must be one of ${SIDES.join(', ')}` });
    }
  });
  if (errors.length) return { errors: errors.slice(0, 50) };
  return { doc: { raw: top, nodes: nodes as CanvasNode[], edges: edges as CanvasEdge[] } };
}

function arrayField(top: JsonObject, key: string, errors: ProblemFieldError[]): unknown[] {
  const v = top[key];
  if (v === undefined) return [];
  if (!Array.isArray(v)) {
    errors.push({ field: key, message: 'must be an array' });
    return [];
  }
  return v;
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** How the file was formatted, so a rewrite keeps it: indentation unit and final newline. */
export interface CanvasFormat {
  indent: string | undefined;
  finalNewline: boolean;
  eol: '\n' | '\r\n';
}

export function detectFormat(text: string): CanvasFormat {
  const m = /\r?\n([ \t]+)\S/.exec(text);
  return { indent: m?.[1], finalNewline: /\n$/.test(text), eol: text.includes('\r\n') ? '\r\n' : '\n' };
}

/** Serializes a document with the formatting the file had. Key order is the parsed order; new keys go last. */
export function serializeCanvas(doc: CanvasDocument, format: CanvasFormat): string {
  const top: JsonObject = { ...doc.raw, nodes: doc.nodes, edges: doc.edges };
  let out = JSON.stringify(top, null, format.indent);
  if (format.eol === '\r\n') out = out.replace(/\n/g, '\r\n');
  return format.finalNewline ? out + format.eol : out;
}

export function overlaps(a: Rect, b: Rect, margin = 0): boolean {
  return (
    a.x < b.x + b.width + margin &&
    b.x < a.x + a.width + margin &&
    a.y < b.y + b.height + margin &&
    b.y < a.y + a.height + margin
  );
}
