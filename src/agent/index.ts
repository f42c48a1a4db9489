export { AgentModule, createAgentRunner } from './agent.module';
export { AGENT_OPTIONS, type AgentModuleOptions } from './agent.module-definition';
export {
  AgentRunner,
  AgentRunError,
  type AgentErrorType,
  type AgentHint,
  type AgentQuestion,
  type AgentScore,
  type AgentStructuredOutput,
  type ScoreBreakdown,
  type AgentNodeContext,
  type AgentNodeInput,
  type AgentRunRequest,
  type AgentRunResult,
  type CanvasNodeKind,
  type TokenUsage,
  type ProviderFeedback,
  type RunnerIdentity,
  type TextListener,
} from './agent-runner';
export { resultCacheKey } from './result-cache-key';
export type { AgentCatalogueDto } from './agent.dto';
export {
  AGENT_CATALOGUE,
  MEMORY_EVENT_TYPES,
  RUNNABLE_AGENT_NAMES,
  findAgent,
  type AgentDefinition,
  type MemoryEventType,
  type OutputKind,
} from './agent-catalogue';
export { OfflineAgentRunner } from './offline-agent-runner';
export { conceptOf } from './content-analysis';
export { capNodeInput, capResultMarkdown } from './content-limits';
export { LlmAgentRunner } from './llm/llm-agent-runner';
export {
  AUTO_AGENT,
  FALLBACK_AGENT,
  HIGH_CONFIDENCE,
  LOW_CONFIDENCE,
  confidenceLevel,
  routeByRules,
  type RoutedBy,
  type Routing,
} from './agent-router';
export { AgentRouter, type RoutingOutcome } from './agent-router.service';
export { PromptTokens, estimateTokens } from './llm/prompt-tokens';
