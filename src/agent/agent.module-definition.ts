import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { LlmSettings } from '../config';
import type { AgentRunner } from './agent-runner';

/** What `AgentModule.forRoot(Async)` is given: which `AgentRunner` the module provides. */
export interface AgentModuleOptions {
  /** The host's own runner (e.g. another LLM client). Takes precedence over `llm`. */
  agentRunner?: AgentRunner;
  /** Run the agents on this LLM provider (`LlmAgentRunner`). */
  llm?: LlmSettings;
  /**
   * Neither given — the deterministic offline runner: its simulated think time per node, fixed or a `{ min, max }`
   * range. Default: `OPTION_DEFAULTS.agentLatencyMs` (0).
   */
  agentLatencyMs?: number | { min: number; max: number };
}

export const { ConfigurableModuleClass: AgentConfigurableModule, MODULE_OPTIONS_TOKEN: AGENT_OPTIONS } =
  new ConfigurableModuleBuilder<AgentModuleOptions>({ moduleName: 'Agent' })
    .setClassMethodName('forRoot')
    .build();
