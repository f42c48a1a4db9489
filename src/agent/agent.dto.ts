import { MEMORY_EVENT_TYPES, type MemoryEventType, type OutputKind } from './agent-catalogue';
import { ApiProperty } from '@nestjs/swagger';

export class AgentDto {
  /** Canonical agent name, used as `agent_type`. */
  name!: string;
  @ApiProperty({ enum: MEMORY_EVENT_TYPES })
  memory_event_type!: MemoryEventType;
  @ApiProperty({ enum: ['markdown', 'questions', 'score', 'hint', 'none'] })
  output_kind!: OutputKind;
  /** Whether a batch may run this agent. */
  runnable!: boolean;
  description!: string;
  /** Other names accepted as `agent_type`. */
  aliases!: string[];
}

export class AgentCatalogueDto {
  agents!: AgentDto[];
}
