import { Module } from '@nestjs/common';
import { RESOLVED_OPTIONS, type ResolvedCanvasBatchOptions } from '../config';
import { AgentController } from './agent.controller';
import { AgentRunner } from './agent-runner';
import { OfflineAgentRunner } from './offline-agent-runner';

/** The agent catalogue and the `AgentRunner` port, bound to the host's runner or the offline one. */
@Module({
  controllers: [AgentController],
  providers: [
    {
      provide: AgentRunner,
      inject: [RESOLVED_OPTIONS],
      useFactory: (options: ResolvedCanvasBatchOptions): AgentRunner =>
        options.agentRunner ?? new OfflineAgentRunner(options.agentLatencyMs),
    },
  ],
  exports: [AgentRunner],
})
export class AgentModule {}
