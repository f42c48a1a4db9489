export { AgentModule } from './agent.module';
export {
  AgentRunner,
  AgentRunError,
  type AgentErrorType,
  type AgentHint,
  type AgentQuestion,
  type AgentScore,
  type AgentStructuredOutput,
  type ScoreBreakdown,
  type AgentNodeInput,
  type AgentRunRequest,
  type AgentRunResult,
  type CanvasNodeKind,
  type TokenUsage,
} from './agent-runner';
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
