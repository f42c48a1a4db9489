import { setTimeout as sleep } from 'node:timers/promises';
import { AgentRunError, AgentRunner, type AgentRunRequest, type AgentRunResult } from './agent-runner';
import { detectLanguage } from './content-analysis';
import { factsOf, OFFLINE_TEMPLATES } from './offline-templates';

/**
 * The default provider: deterministic, no network. Shapes its output per agent from the node's own content, in the
 * content's language; `latencyMs` simulates think time (abortable).
 */
export class OfflineAgentRunner extends AgentRunner {
  constructor(private readonly latencyMs = 0) {
    super();
  }

  async run({ agentType, node, signal }: AgentRunRequest): Promise<AgentRunResult> {
    signal.throwIfAborted();
    if (this.latencyMs > 0) await sleep(this.latencyMs, undefined, { signal });
    const template = OFFLINE_TEMPLATES[agentType];
    if (!template) throw new AgentRunError(`the offline provider has no template for agent "${agentType}"`);
    if (!node.content.trim()) {
      throw new AgentRunError(`node ${node.nodeId} (${node.nodeType}) has no content for ${agentType} to work on`);
    }
    const markdown = template(factsOf(node.content, detectLanguage(node.content)));
    return { markdown, usage: { inputTokens: 0, outputTokens: 0 } };
  }
}
