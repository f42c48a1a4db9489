/** One `task_output_delta` as the CLI reads it (the `data:` of the frame). */
export interface OutputDeltaData {
  node_id: string;
  group_id: string | number;
  text: string;
  offset: number;
}

/** Characters of a node's text kept (the panel shows its end). */
const KEEP_CHARS = 64 * 1024;

interface NodeText {
  group: string;
  text: string;
  /** The service's count of the node's characters after its last delta (its next delta's `offset`). */
  end: number;
}

/**
 * The partial text of a batch's running nodes, from their `task_output_delta` events, and the node in focus: the one
 * chosen with `--focus`, else the running node that started writing most recently. A delta's `offset` places its
 * text: at the end (the usual case), over the end (the node's provider call started over: offset 0), or past it
 * (deltas were dropped for this slow reader: `…` marks the gap). A settled node's text is forgotten.
 */
export class TextFocus {
  private readonly nodes = new Map<string, NodeText>();

  constructor(private readonly chosen?: string) {}

  /** The node shown, if any: the chosen one (once it wrote), else the last running node that started writing. */
  get focus(): string | undefined {
    if (this.chosen !== undefined) return this.nodes.has(this.chosen) ? this.chosen : undefined;
    let last: string | undefined;
    for (const id of this.nodes.keys()) last = id;
    return last;
  }

  apply(d: OutputDeltaData): void {
    let node = this.nodes.get(d.node_id);
    if (!node) {
      node = { group: String(d.group_id), text: '', end: 0 };
      this.nodes.set(d.node_id, node);
    }
    if (d.offset === node.end) node.text += d.text;
    else if (d.offset === 0) node.text = d.text;
    else if (d.offset < node.end)
      node.text = node.text.slice(0, node.text.length - (node.end - d.offset)) + d.text;
    else node.text += `…${d.text}`;
    node.end = d.offset + d.text.length;
    if (node.text.length > KEEP_CHARS) node.text = node.text.slice(-KEEP_CHARS);
  }

  /** The node settled (completed or failed): its partial text is over. */
  settle(nodeId: string): void {
    if (nodeId !== this.chosen) this.nodes.delete(nodeId);
  }

  /** The text of `nodeId` so far (tests). */
  textOf(nodeId: string): string | undefined {
    return this.nodes.get(nodeId)?.text;
  }

  /**
   * The panel under the bars: a title line and the end of the focused node's text, wrapped to `columns - 1` cells,
   * at most `rows` lines in all; nothing without a focused node or room for two lines.
   */
  lines(columns: number, rows: number): string[] {
    const id = this.focus;
    if (id === undefined || rows < 2) return [];
    const node = this.nodes.get(id)!;
    const width = Math.max(10, columns - 1);
    const title = fit(`── ${id} (group ${node.group}) `, width);
    const body = wrap(printable(node.text), width);
    return [title + '─'.repeat(Math.max(0, width - cells(title))), ...body.slice(-(rows - 1))];
  }
}

/** Without control characters (an agent's text must not move the cursor or recolour the terminal); tabs as spaces. */
export function printable(text: string): string {
  return (
    text
      .replace(/\t/g, '  ')
      .replace(/\r\n?/g, '\n')
      // eslint-disable-next-line no-control-regex -- matching control characters is the point
      .replace(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/g, '')
  );
}

/** Terminal cells of one character: 2 for East Asian wide characters and emoji, else 1. */
function cellsOf(ch: string): number {
  const c = ch.codePointAt(0) ?? 0;
  if (
    (c >= 0x1100 && c <= 0x115f) ||
    (c >= 0x2e80 && c <= 0xa4cf) ||
    (c >= 0xac00 && c <= 0xd7a3) ||
    (c >= 0xf900 && c <= 0xfaff) ||
    (c >= 0xfe30 && c <= 0xfe4f) ||
    (c >= 0xff00 && c <= 0xff60) ||
    (c >= 0xffe0 && c <= 0xffe6) ||
    c >= 0x1f300
  )
    return 2;
  return 1;
}

function cells(s: string): number {
  let n = 0;
  for (const ch of s) n += cellsOf(ch);
  return n;
}

/** `s` cut to `width` cells. */
function fit(s: string, width: number): string {
  let out = '';
  let used = 0;
  for (const ch of s) {
    const w = cellsOf(ch);
    if (used + w > width) break;
    out += ch;
    used += w;
  }
  return out;
}

/** `text`'s lines, each cut into rows of at most `width` cells (a row never wraps on the terminal). */
export function wrap(text: string, width: number): string[] {
  const rows: string[] = [];
  for (const line of text.split('\n')) {
    let row = '';
    let used = 0;
    for (const ch of line) {
      const w = cellsOf(ch);
      if (used + w > width) {
        rows.push(row);
        row = '';
        used = 0;
      }
      row += ch;
      used += w;
    }
    rows.push(row);
  }
  return rows;
}
