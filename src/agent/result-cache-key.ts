import { createHash } from 'node:crypto';
import type { AgentNodeInput, RunnerIdentity } from './agent-runner';

/** Bumped if what the key covers (or how it is hashed) ever changes: every earlier entry is then a miss. */
const KEY_FORMAT = 'canvas-batch/result-cache/1';

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/**
 * The result cache's key of one node's run: sha256 over the agent, its template version (with the settings that shape
 * the prompt), provider and model, and the node as the agent receives it — its kind, its content after the input cap,
 * and a hash of its context (neighbours in order, the group's label). The node's id and canvas are not in it: the
 * same content elsewhere is the same work.
 */
export function resultCacheKey(agentType: string, identity: RunnerIdentity, node: AgentNodeInput): string {
  const context = sha256(JSON.stringify([node.context?.neighbours ?? [], node.context?.groupLabel ?? null]));
  return sha256(
    JSON.stringify([
      KEY_FORMAT,
      agentType,
      identity.template,
      identity.provider,
      identity.model,
      node.nodeType,
      node.content,
      context,
    ]),
  );
}
