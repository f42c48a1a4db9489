import { AGENT_CATALOGUE, findAgent, MEMORY_EVENT_TYPES, RUNNABLE_AGENT_NAMES } from './agent-catalogue';
import { OFFLINE_TEMPLATES } from './offline-templates';

const RUNNABLE = [
  'basic-decomposition',
  'deep-decomposition',
  'question-decomposition',
  'four-level-explanation',
  'oral-explanation',
  'example-teaching',
  'clarification-path',
  'comparison-table',
  'memory-anchor',
  'verification-question-agent',
  'scoring-agent',
  'hint-generation',
];
const NOT_RUNNABLE = ['canvas-orchestrator', 'review-board-agent-selector', 'graphiti-memory-agent'];

describe('agent catalogue', () => {
  it('holds the 15 agents of the original system, in its order, with unique names', () => {
    expect(AGENT_CATALOGUE).toHaveLength(15);
    expect(AGENT_CATALOGUE.map((a) => a.name)).toEqual([...RUNNABLE, ...NOT_RUNNABLE]);
  });

  it('marks the 12 working agents runnable and the bookkeeping/reserved ones not', () => {
    expect(AGENT_CATALOGUE.filter((a) => a.runnable).map((a) => a.name)).toEqual(RUNNABLE);
    for (const name of NOT_RUNNABLE) {
      expect(findAgent(name)).toMatchObject({ runnable: false, outputKind: 'none' });
    }
  });

  it('maps each agent to a known memory event type', () => {
    for (const a of AGENT_CATALOGUE) expect(MEMORY_EVENT_TYPES).toContain(a.memoryEventType);
    expect(findAgent('scoring-agent')?.memoryEventType).toBe('scoring_completed');
    expect(findAgent('memory-anchor')?.memoryEventType).toBe('node_created');
    expect(findAgent('basic-decomposition')?.memoryEventType).toBe('decomposition_completed');
    expect(findAgent('oral-explanation')?.memoryEventType).toBe('explanation_generated');
    expect(findAgent('canvas-orchestrator')?.memoryEventType).toBe('canvas_opened');
  });

  it('gives each agent its output kind', () => {
    const kinds = Object.fromEntries(AGENT_CATALOGUE.map((a) => [a.name, a.outputKind]));
    expect(kinds['deep-decomposition']).toBe('questions');
    expect(kinds['verification-question-agent']).toBe('questions');
    expect(kinds['comparison-table']).toBe('markdown');
    expect(kinds['scoring-agent']).toBe('score');
    expect(kinds['hint-generation']).toBe('hint');
  });

  it('finds agents by alias: four-level and scoring', () => {
    expect(findAgent('four-level')).toBe(findAgent('four-level-explanation'));
    expect(findAgent('four-level')?.name).toBe('four-level-explanation');
    expect(findAgent('scoring')?.name).toBe('scoring-agent');
    expect(AGENT_CATALOGUE.filter((a) => a.aliases.length).map((a) => [a.name, a.aliases])).toEqual([
      ['four-level-explanation', ['four-level']],
      ['scoring-agent', ['scoring']],
    ]);
  });

  it('finds nothing for unknown names (exact, case-sensitive)', () => {
    expect(findAgent('nope')).toBeUndefined();
    expect(findAgent('Scoring')).toBeUndefined();
    expect(findAgent('')).toBeUndefined();
  });

  it('lists runnable names and aliases for validation, and nothing else', () => {
    expect([...RUNNABLE_AGENT_NAMES].sort()).toEqual([...RUNNABLE, 'four-level', 'scoring'].sort());
    for (const name of NOT_RUNNABLE) expect(RUNNABLE_AGENT_NAMES).not.toContain(name);
  });

  it('has an offline template for exactly the runnable agents (by canonical name)', () => {
    expect(Object.keys(OFFLINE_TEMPLATES).sort()).toEqual([...RUNNABLE].sort());
  });
});
