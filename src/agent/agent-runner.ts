/** The kind of canvas node the content came from. */
export type CanvasNodeKind = 'text' | 'file' | 'link' | 'group';

/** What an agent works on: one canvas node's content, resolved by the canvas module. */
export interface AgentNodeInput {
  canvasPath: string;
  nodeId: string;
  nodeType: CanvasNodeKind;
  /** The node's content: text, the vault file's text (or an embed reference), the URL, or the group label. */
  content: string;
}

export interface AgentRunRequest {
  /** Canonical agent name from the catalogue. */
  agentType: string;
  node: AgentNodeInput;
  /** Fires on cancel-abort, the node's own timeout or the batch deadline. Runners must stop promptly. */
  signal: AbortSignal;
}

export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
}

export interface AgentRunResult {
  /** The agent's output as markdown, without the file's top heading (the canvas module adds it). */
  markdown: string;
  usage: TokenUsage;
}

/** Error types an agent run may end with (the `error_type` of a failed node). */
export type AgentErrorType = 'AGENT_ERROR' | 'AGENT_TIMEOUT' | 'RATE_LIMITED';

/** A runner's failure with a precise type; any other thrown value counts as `AGENT_ERROR`. */
export class AgentRunError extends Error {
  constructor(
    message: string,
    readonly errorType: AgentErrorType = 'AGENT_ERROR',
  ) {
    super(message);
    this.name = 'AgentRunError';
  }
}

/**
 * The port every agent provider implements (abstract class = DI token). One call = one node; it must honour
 * `signal` and report token usage (zeros when it cannot know).
 */
export abstract class AgentRunner {
  abstract run(request: AgentRunRequest): Promise<AgentRunResult>;
}
