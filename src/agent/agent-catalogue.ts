/** Learning-memory event types (the original's `MemoryEventType` enum). */
export const MEMORY_EVENT_TYPES = [
  'decomposition_completed',
  'scoring_completed',
  'explanation_generated',
  'review_canvas_created',
  'concept_reviewed',
  'canvas_opened',
  'node_created',
  'node_updated',
] as const;
export type MemoryEventType = (typeof MEMORY_EVENT_TYPES)[number];

/**
 * What an agent produces: `markdown` (an explanation file), `questions` (question nodes), `score` (a score and
 * feedback), `hint` (a short hint), `none` (no output; bookkeeping only).
 */
export type OutputKind = 'markdown' | 'questions' | 'score' | 'hint' | 'none';

export interface AgentDefinition {
  name: string;
  memoryEventType: MemoryEventType;
  outputKind: OutputKind;
  /** Whether a batch may run it over nodes (reserved and bookkeeping agents may not). */
  runnable: boolean;
  description: string;
  aliases: readonly string[];
}

const agent = (
  name: string,
  memoryEventType: MemoryEventType,
  outputKind: OutputKind,
  description: string,
  extra: Partial<Pick<AgentDefinition, 'runnable' | 'aliases'>> = {},
): AgentDefinition => ({
  name,
  memoryEventType,
  outputKind,
  description,
  runnable: true,
  aliases: [],
  ...extra,
});

/** The full catalogue of the original system (`AGENT_MEMORY_MAPPING`), in its order. */
export const AGENT_CATALOGUE: readonly AgentDefinition[] = [
  agent(
    'basic-decomposition',
    'decomposition_completed',
    'questions',
    '3–7 guiding questions that break the concept down.',
  ),
  agent('deep-decomposition', 'decomposition_completed', 'questions', '3–10 deep verification questions.'),
  agent(
    'question-decomposition',
    'decomposition_completed',
    'questions',
    '2–5 test and application questions.',
  ),
  agent(
    'four-level-explanation',
    'explanation_generated',
    'markdown',
    'Explanation at four levels: beginner, intermediate, expert, innovative.',
    { aliases: ['four-level'] },
  ),
  agent('oral-explanation', 'explanation_generated', 'markdown', 'A professor-style spoken explanation.'),
  agent(
    'example-teaching',
    'explanation_generated',
    'markdown',
    'A worked example: problem, approach, steps, pitfalls, variants, answer hints.',
  ),
  agent('clarification-path', 'explanation_generated', 'markdown', 'A four-step in-depth clarification.'),
  agent(
    'comparison-table',
    'explanation_generated',
    'markdown',
    'A comparison table over at least five dimensions.',
  ),
  agent(
    'memory-anchor',
    'node_created',
    'markdown',
    'An analogy, a story and a mnemonic to remember the concept.',
  ),
  agent(
    'verification-question-agent',
    'explanation_generated',
    'questions',
    'Questions that verify understanding.',
  ),
  agent(
    'scoring-agent',
    'scoring_completed',
    'score',
    "Scores the learner's explanation: accuracy, imagery, completeness, originality, with feedback.",
    { aliases: ['scoring'] },
  ),
  agent(
    'hint-generation',
    'explanation_generated',
    'hint',
    'A graded hint that nudges without giving the answer away.',
  ),
  agent(
    'canvas-orchestrator',
    'canvas_opened',
    'none',
    'Bookkeeping: one memory event when a batch opens a canvas.',
    {
      runnable: false,
    },
  ),
  agent('review-board-agent-selector', 'concept_reviewed', 'none', 'Reserved.', { runnable: false }),
  agent('graphiti-memory-agent', 'concept_reviewed', 'none', 'Reserved.', { runnable: false }),
];

const BY_NAME = new Map<string, AgentDefinition>();
for (const def of AGENT_CATALOGUE) {
  BY_NAME.set(def.name, def);
  for (const alias of def.aliases) BY_NAME.set(alias, def);
}

/** The definition for a name or alias, or `undefined`. */
export function findAgent(nameOrAlias: string): AgentDefinition | undefined {
  return BY_NAME.get(nameOrAlias);
}

/** Names (and aliases) a batch may run, for validation messages and the OpenAPI enum. */
export const RUNNABLE_AGENT_NAMES: readonly string[] = [...BY_NAME.entries()]
  .filter(([, def]) => def.runnable)
  .map(([name]) => name);
