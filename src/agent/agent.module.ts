import { Module } from '@nestjs/common';
import { OPTION_DEFAULTS } from '../config';
import { AGENT_OPTIONS, AgentConfigurableModule, type AgentModuleOptions } from './agent.module-definition';
import { AgentController } from './agent.controller';
import { AgentRunner } from './agent-runner';
import { AgentRouter } from './agent-router.service';
import { LlmAgentRunner } from './llm/llm-agent-runner';
import { OfflineAgentRunner } from './offline-agent-runner';

/**
 * The runner the options choose: the host's own, else the LLM provider's, else the offline one. The local provider
 * loads its model first (a promise then; a model that cannot be loaded stops start-up).
 */
export function createAgentRunner(options: AgentModuleOptions): AgentRunner | Promise<AgentRunner> {
  if (options.agentRunner) return options.agentRunner;
  if (options.llm?.provider === 'local') return LlmAgentRunner.create(options.llm);
  if (options.llm) return new LlmAgentRunner(options.llm);
  return new OfflineAgentRunner(options.agentLatencyMs ?? OPTION_DEFAULTS.agentLatencyMs);
}

/**
 * The agent catalogue (`GET /agents`) and the `AgentRunner` port, bound to the runner its options choose. Import it
 * with `forRoot(options)` (or `forRootAsync`); `forRoot({})` runs the offline agents.
 */
@Module({
  controllers: [AgentController],
  providers: [{ provide: AgentRunner, inject: [AGENT_OPTIONS], useFactory: createAgentRunner }, AgentRouter],
  exports: [AgentRunner, AgentRouter],
})
export class AgentModule extends AgentConfigurableModule {}
