import { setTimeout as sleep } from 'node:timers/promises';
import {
  AgentRunError,
  AgentRunner,
  type AgentRunRequest,
  type AgentRunResult,
  type RunnerIdentity,
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

  async run({ agentType, node, signal }: AgentRunRequest): Promise<AgentRunResult> {
    signal.throwIfAborted();
    const { min, max } = this.latency;
    const latency = min + (max > min ? stableHash(`${agentType}\0${node.nodeId}`) % (max - min + 1) : 0);
    if (latency > 0) await sleep(latency, undefined, { signal });
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
