/** The kind of canvas node the content came from. */
export type CanvasNodeKind = 'text' | 'file' | 'link' | 'group';

/** What an agent works on: one canvas node's content, resolved by the canvas module. */
export interface AgentNodeInput {
  canvasPath: string;
  nodeId: string;
  nodeType: CanvasNodeKind;
  /** The node's content: text, the vault file's text (or an embed reference), the URL, or the group label. */
  content: string;
  /** What surrounds the node on the canvas: connected nodes' text and the enclosing group's label. */
  context?: AgentNodeContext;
}

export interface AgentNodeContext {
  /** Text of the nodes connected to this one by an edge (either direction), nearest first. */
  neighbours: string[];
  /** Label of the group the node sits in, if any. */
  groupLabel?: string;
  /**
   * The ids of those nodes, in the same order (absent where a caller does not know them): the result cache leaves the
   * service's own cards out of a node's context, so a result card added by one batch does not make the next a miss.
   */
  neighbourIds?: string[];
}

/**
 * Where a runner reports how the provider copes, so the process-wide concurrency can adapt (AIMD): a 429 from a
 * request started at `startedAt` (epoch ms), or a successful call.
 */
export interface ProviderFeedback {
  rateLimited(startedAt: number): void;
  succeeded(): void;
}

export interface AgentRunRequest {
  /** Canonical agent name from the catalogue. */
  agentType: string;
  node: AgentNodeInput;
  /** Fires on cancel-abort, the node's own timeout or the batch deadline. Runners must stop promptly. */
  signal: AbortSignal;
  /**
   * Epoch ms after which the call is aborted anyway (the earlier of the node's `AGENT_TIMEOUT_MS` and the batch
   * deadline). A runner never sleeps for a retry past it.
   */
  deadline?: number;
  /** Where to report 429s and successes (adaptive concurrency); optional. */
  feedback?: ProviderFeedback;
  /**
   * Partial text as it is written (`AGENT_STREAM`): each call appends `chunk` to the node's output so far. `restart`:
   * the output starts over with this chunk (a retried call, or a structured answer asked for once more), what came
   * before is void. Informational only: the returned result is the output (a structured agent may stream raw JSON).
   * Given only when streaming is on; a runner that cannot stream ignores it.
   */
  onText?: TextListener;
}

/** Receives an agent's partial text (`AgentRunRequest.onText`). */
export type TextListener = (chunk: string, restart?: boolean) => void;

export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
}

/** One question of a decomposition or verification agent (the original's `sub_questions[]`). */
export interface AgentQuestion {
  text: string;
  /** What kind of question it is, e.g. `understanding`, `application`, `comparison` (free text). */
  type?: string;
  difficulty?: 'easy' | 'medium' | 'hard';
  /** A nudge for the learner on how to approach it. */
  guidance?: string;
}

/** The four scoring dimensions, each 0–25. */
export interface ScoreBreakdown {
  accuracy: number;
  imagery: number;
  completeness: number;
  originality: number;
}

/** `scoring-agent`'s verdict on the learner's own explanation (total = sum of the breakdown, 0–100). */
export interface AgentScore {
  totalScore: number;
  breakdown: ScoreBreakdown;
  /** `totalScore >= 60`. */
  pass: boolean;
  feedback: string;
}

/** `hint-generation`'s output: a hint and how much it gives away (1 = a nudge … 3 = nearly the answer). */
export interface AgentHint {
  text: string;
  level: 1 | 2 | 3;
}

/**
 * The structured part of an agent's output, by the catalogue's output kind. The canvas module turns it into
 * canvas content (question nodes, a score node and a recoloured source, a hint node); `markdown` stays the file.
 */
export type AgentStructuredOutput =
  | { kind: 'questions'; questions: AgentQuestion[] }
  | { kind: 'score'; score: AgentScore }
  | { kind: 'hint'; hint: AgentHint };

export interface AgentRunResult {
  /** The agent's output as markdown, without the file's top heading (the canvas module adds it). */
  markdown: string;
  /** Present for agents whose output kind is `questions`, `score` or `hint` (and must match that kind). */
  structured?: AgentStructuredOutput;
  usage: TokenUsage;
  /** Provider calls made for this node (1 without retries). Default 1. */
  attempts?: number;
}

/**
 * Error types an agent run may end with (the `error_type` of a failed node):
 * - `AGENT_ERROR`: anything else (no content to work on, an unexpected failure)
 * - `AGENT_TIMEOUT`: the call exceeded `AGENT_TIMEOUT_MS`
 * - `RATE_LIMITED`: the provider kept answering 429 until the attempts (or the time before the deadline) ran out
 * - `AGENT_PROVIDER_ERROR`: the provider kept failing (5xx, connection reset, unreadable response) until the
 *   attempts ran out
 * - `AGENT_AUTH_FAILED`: the provider refused the credential (401/403); never retried
 * - `AGENT_BAD_REQUEST`: the provider rejected the request (400, 404 unknown model, other 4xx); never retried
 * - `AGENT_INVALID_OUTPUT`: the answer did not match the agent's output schema, twice
 */
export type AgentErrorType =
  | 'AGENT_ERROR'
  | 'AGENT_TIMEOUT'
  | 'RATE_LIMITED'
  | 'AGENT_PROVIDER_ERROR'
  | 'AGENT_AUTH_FAILED'
  | 'AGENT_BAD_REQUEST'
  | 'AGENT_INVALID_OUTPUT';

/**
 * A runner's failure with a precise type; any other thrown value counts as `AGENT_ERROR`. `attempts` and `usage`
 * tell what the failed node cost (provider calls made, tokens billed for answers that were rejected).
 */
export class AgentRunError extends Error {
  constructor(
    message: string,
    readonly errorType: AgentErrorType = 'AGENT_ERROR',
    readonly details: { attempts?: number; usage?: TokenUsage } = {},
  ) {
    super(message);
    this.name = 'AgentRunError';
  }
}

/**
 * What a runner's output for one agent depends on besides the node: part of the result cache's key
 * (`resultCacheKey`), so a change of provider, model or prompt template is a miss.
 */
export interface RunnerIdentity {
  provider: string;
  model: string;
  /** The agent's prompt template version and any setting that shapes the prompt, e.g. `v1/ctx4000/out1024`. */
  template: string;
}

/**
 * The port every agent provider implements (abstract class = DI token). One call = one node; it must honour
 * `signal` and report token usage (zeros when it cannot know).
 */
export abstract class AgentRunner {
  /**
   * What this runner's output for `agentType` depends on besides the node, for the result cache. A runner without it
   * (a host's own, unless it says) or answering `undefined` never has its results cached.
   */
  identity?(agentType: string): RunnerIdentity | undefined;

  /**
   * The most nodes this runner can work on at once (a local model's parallel sequences); the dispatcher never runs
   * more than that at once, whatever `GLOBAL_MAX_CONCURRENT` says. `undefined`: no limit of its own.
   */
  declare readonly capacity?: number;

  abstract run(request: AgentRunRequest): Promise<AgentRunResult>;
}
