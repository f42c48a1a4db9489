import { formatCount, truncateChars, truncatedNote, truncateUtf8 } from '../common';
import type { AgentNodeInput } from './agent-runner';

// the defaults live with the module options (config sits below agent); re-exported for the agent's own users
export { DEFAULT_MAX_INPUT_CHARS, DEFAULT_MAX_RESULT_BYTES } from '../config';

/** A node's input as an agent gets it, and how many characters of its content were left out. */
export interface CappedInput {
  input: AgentNodeInput;
  /** 0: the agent got all of the content. */
  omitted: number;
}

/**
 * The node's input with its content cut to `maxChars` characters, ending with a visible note
 * (`… (truncated: N characters more; …)`) so the agent knows it sees only the start. Each neighbour's text and the
 * group label are held to the same limit (not counted in `omitted`). A huge node still gets a useful result from
 * its first part instead of failing. The input is returned as it is when nothing needed cutting.
 */
export function capNodeInput(input: AgentNodeInput, maxChars: number): CappedInput {
  const content = truncateChars(
    input.content,
    maxChars,
    (n) =>
      `\n\n… (truncated: ${formatCount(n)} characters more; an agent reads at most ${formatCount(maxChars)} characters of a node)`,
  );
  const ctx = input.context;
  const context = ctx && {
    ...ctx,
    neighbours: ctx.neighbours.map((n) => truncateChars(n, maxChars, truncatedNote()).text),
    ...(ctx.groupLabel !== undefined && {
      groupLabel: truncateChars(ctx.groupLabel, maxChars, truncatedNote()).text,
    }),
  };
  const contextCut =
    !!ctx &&
    !!context &&
    (ctx.groupLabel !== context.groupLabel || ctx.neighbours.some((n, i) => n !== context.neighbours[i]));
  if (!content.omitted && !contextCut) return { input, omitted: 0 };
  return {
    input: { ...input, content: content.text, ...(context && { context }) },
    omitted: content.omitted,
  };
}

/** The result file's markdown as it is written, and how many characters of the agent's output were left out. */
export interface CappedResult {
  markdown: string;
  /** 0: the file holds the whole output. */
  omitted: number;
}

/**
 * The markdown of a result file: a note first when the agent got only part of the node (`inputOmitted`
 * characters left out), then the agent's output, cut so the whole file — `# <title>`, a blank line, this markdown
 * and a final newline, as the canvas module writes it — stays within `maxBytes` of UTF-8, ending with a visible
 * note when something was cut.
 */
export function capResultMarkdown(
  markdown: string,
  limits: { title: string; maxBytes: number; inputOmitted: number },
): CappedResult {
  const inputNote = limits.inputOmitted
    ? `> **Truncated input:** this node is longer than an agent reads; its last ${formatCount(limits.inputOmitted)} characters were not given to the agent.\n\n`
    : '';
  const budget = limits.maxBytes - Buffer.byteLength(`# ${limits.title}\n\n`) - 1;
  const { text, omitted } = truncateUtf8(
    inputNote + markdown.trim(),
    budget,
    (n) =>
      `\n\n---\n\n_… (truncated: ${formatCount(n)} characters more; a result file holds at most ${formatBytes(limits.maxBytes)})_`,
  );
  return { markdown: text, omitted };
}

/** `1 MiB`, `512 KiB`, `70000 bytes`. */
export function formatBytes(n: number): string {
  if (n % (1024 * 1024) === 0) return `${formatCount(n / (1024 * 1024))} MiB`;
  if (n % 1024 === 0) return `${formatCount(n / 1024)} KiB`;
  return `${formatCount(n)} bytes`;
}
