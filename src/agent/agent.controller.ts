import { Controller, Get } from '@nestjs/common';
import { AGENT_CATALOGUE } from './agent-catalogue';
import type { AgentCatalogueDto } from './agent.dto';

@Controller('agents')
export class AgentController {
  /** The agent catalogue: name, memory event type and output kind of every agent. */
  @Get()
  list(): AgentCatalogueDto {
    return {
      agents: AGENT_CATALOGUE.map((a) => ({
        name: a.name,
        memory_event_type: a.memoryEventType,
        output_kind: a.outputKind,
        runnable: a.runnable,
        description: a.description,
        aliases: [...a.aliases],
      })),
    };
  }
}
