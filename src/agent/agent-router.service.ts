import { Injectable, Logger } from '@nestjs/common';
import { AgentRunner, type TokenUsage } from './agent-runner';
import { agentNamedIn, LOW_CONFIDENCE, type Routing, routeByRules, routingPrompt } from './agent-router';
import { LlmAgentRunner } from './llm/llm-agent-runner';

/** How long a model routing may take, retries included, when the caller sets no earlier deadline. */
export const MODEL_ROUTING_MS = 20_000;

/** A model's pick counts this sure: it is a classifier without probabilities, as sure as one clear cue. */
export const MODEL_CONFIDENCE = 0.8;

/** A routing, with the tokens the model's classification used (0 when it was not asked). */
export type RoutingOutcome = Routing & { usage: TokenUsage };

/**
 * Routes a node's content to an agent: the content patterns first (`routeByRules`); when they are unsure (below
 * 0.70) and an LLM provider runs the agents, the model is asked to pick from the runnable agents through the
 * runner's retry layer. Any failure of the model keeps the patterns' routing — routing never fails.
 */
@Injectable()
export class AgentRouter {
  private readonly logger = new Logger('AgentRouter');

  constructor(private readonly runner: AgentRunner) {}

  /** Whether unsure routings ask a model (an LLM provider is configured; not the offline agents). */
  get usesModel(): boolean {
    return this.runner instanceof LlmAgentRunner;
  }

  /** `model: false` keeps to the patterns (e.g. past a plan's quota of model calls). */
  async route(
    content: string,
    options: { signal?: AbortSignal; deadline?: number; model?: boolean; nodeId?: string } = {},
  ): Promise<RoutingOutcome> {
    const rules = routeByRules(content);
    const none = { inputTokens: 0, outputTokens: 0 };
    if (
      rules.confidence >= LOW_CONFIDENCE ||
      options.model === false ||
      !(this.runner instanceof LlmAgentRunner)
    )
      return { ...rules, usage: none };
    try {
      const { system, prompt } = routingPrompt(content);
      const answer = await this.runner.complete({
        system,
        prompt,
        signal: options.signal ?? new AbortController().signal,
        deadline: Math.min(options.deadline ?? Number.POSITIVE_INFINITY, Date.now() + MODEL_ROUTING_MS),
        headers: { 'x-canvas-batch-routing': options.nodeId ?? 'plan' },
      });
      const picked = agentNamedIn(answer.text);
      if (!picked)
        return {
          ...rules,
          reason: `${rules.reason}; the model named no agent, the patterns' choice stands`,
          usage: answer.usage,
        };
      return {
        agentType: picked,
        confidence: MODEL_CONFIDENCE,
        reason: `patterns unsure (${rules.agentType} at ${rules.confidence}); the model chose ${picked}`,
        routedBy: 'model',
        usage: answer.usage,
      };
    } catch (err) {
      if (options.signal?.aborted) throw err;
      const why = (err instanceof Error ? err.message : String(err)).slice(0, 200);
      this.logger.warn(`model routing failed, content patterns used: ${why}`);
      return { ...rules, reason: `${rules.reason}; the model could not be asked (${why})`, usage: none };
    }
  }
}
