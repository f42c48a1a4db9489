import type { MemoryEventType, OutputKind } from './agent-catalogue';

export class AgentDto {
  /** Canonical agent name, used as `agent_type`. */
  name!: string;
  memory_event_type!: MemoryEventType;
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
