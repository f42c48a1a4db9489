import { setTimeout as sleep } from 'node:timers/promises';
import {
  AgentRunError,
  AgentRunner,
  type AgentNodeInput,
  type AgentRunRequest,
  type AgentRunResult,
  type RunnerIdentity,
  type TextListener,
} from './agent-runner';
import { detectLanguage, stableHash } from './content-analysis';
import { factsOf, OFFLINE_TEMPLATE_VERSIONS, OFFLINE_TEMPLATES } from './offline-templates';

/**
 * The default provider: deterministic, no network. Shapes its output per agent from the node's own content, in the
 * content's language; `latencyMs` simulates think time (abortable).
 */
export class OfflineAgentRunner extends AgentRunner {
  private readonly latency: { min: number; max: number };

  /** `latencyMs`: fixed, or a range spread deterministically over (agent, node). */
  constructor(latencyMs: number | { min: number; max: number } = 0) {
    super();
    this.latency = typeof latencyMs === 'number' ? { min: latencyMs, max: latencyMs } : latencyMs;
  }

  override identity(agentType: string): RunnerIdentity | undefined {
    const version = OFFLINE_TEMPLATE_VERSIONS[agentType];
    return version === undefined
      ? undefined
      : { provider: 'offline', model: 'offline', template: `v${version}` };
  }

  async run({ agentType, node, signal, onText }: AgentRunRequest): Promise<AgentRunResult> {
    signal.throwIfAborted();
    const { min, max } = this.latency;
    const latency = min + (max > min ? stableHash(`${agentType}\0${node.nodeId}`) % (max - min + 1) : 0);
    let result: AgentRunResult | undefined;
    let failure: unknown;
    try {
      result = this.output(agentType, node);
    } catch (err) {
      failure = err;
    }
    // a failure still takes the think time, as a provider's would
    if (onText && result) await streamText(result.markdown, latency, signal, onText);
    else if (latency > 0) await sleep(latency, undefined, { signal });
    if (!result) throw failure;
    return result;
  }

  private output(agentType: string, node: AgentNodeInput): AgentRunResult {
    const template = OFFLINE_TEMPLATES[agentType];
    if (!template) throw new AgentRunError(`the offline provider has no template for agent "${agentType}"`);
    if (!node.content.trim()) {
      throw new AgentRunError(
        `node ${node.nodeId} (${node.nodeType}) has no content for ${agentType} to work on`,
      );
    }
    const content = node.nodeType === 'link' ? describeUrl(node.content) : node.content;
    return {
      ...template(factsOf(content, detectLanguage(content))),
      usage: { inputTokens: 0, outputTokens: 0 },
    };
  }
}

/** How often the offline agent writes a piece of its text while it streams (a fast typist, not a token stream). */
export const OFFLINE_STREAM_STEP_MS = 50;

/**
 * Writes `text` to `onText` in pieces spread evenly over `latencyMs` (one every `OFFLINE_STREAM_STEP_MS`, at word
 * boundaries; the last one when the latency is over), abortable. No latency: the whole text at once.
 */
async function streamText(
  text: string,
  latencyMs: number,
  signal: AbortSignal,
  onText: TextListener,
): Promise<void> {
  const pieces = splitText(text, Math.max(1, Math.floor(latencyMs / OFFLINE_STREAM_STEP_MS)));
  const started = performance.now();
  for (let i = 0; i < pieces.length; i++) {
    // against the clock, not step by step: timers that fire late do not stretch the latency
    const due = started + (latencyMs * (i + 1)) / pieces.length - performance.now();
    if (due > 0) await sleep(due, undefined, { signal });
    signal.throwIfAborted();
    onText(pieces[i]);
  }
  if (pieces.length === 0 && latencyMs > 0) await sleep(latencyMs, undefined, { signal });
}

/** `text` cut into at most `count` pieces of about equal length, at word boundaries; their concatenation is `text`. */
export function splitText(text: string, count: number): string[] {
  const words = text.match(/\s*\S+\s*/g) ?? (text ? [text] : []);
  if (words.length <= count) return words;
  const pieces: string[] = [];
  let piece = '';
  let taken = 0;
  for (const word of words) {
    piece += word;
    taken += word.length;
    if (taken >= (text.length * (pieces.length + 1)) / count) {
      pieces.push(piece);
      piece = '';
    }
  }
  if (piece) pieces.push(piece);
  return pieces;
}

/** A link node's URL as words: its last path segment (decoded, `_` as spaces) and the site, e.g. `Cell (biology) — en.wikipedia.org`. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    const last = decodeURIComponent(u.pathname.split('/').filter(Boolean).pop() ?? '')
      .replace(/[_-]+/g, ' ')
      .trim();
    return last ? `${last} — ${u.hostname}` : u.hostname;
  } catch {
    return url;
  }
}
