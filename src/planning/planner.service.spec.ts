import { AgentRouter, OfflineAgentRunner, type RoutingOutcome } from '../agent';
import { NodeContentMissingError, type CanvasService, type VaultService } from '../canvas';
import { InMemoryGeneratedNodes } from '../session';
import { groupAgent, MAX_MODEL_ROUTES, PlannerService } from './planner.service';
import { CanvasTooLargeError, NoEligibleNodesError } from './planning.errors';
import { priorityOf } from './priority';

const at = { x: 0, y: 0, width: 10, height: 10 };

function plannerFor(
  nodes: Record<string, unknown>[],
  files: Record<string, string> = {},
  router: AgentRouter = new AgentRouter(new OfflineAgentRunner(0)),
) {
  const vault = {
    resolveCanvas: (rel: string) => Promise.resolve({ relPath: rel, absPath: `/v/${rel}` }),
    files: { readFile: () => Promise.resolve(Buffer.from(JSON.stringify({ nodes, edges: [] }))) },
  } as unknown as VaultService;
  const canvas = {
    fileNodeContent: (file: string) =>
      file in files
        ? Promise.resolve(files[file])
        : Promise.reject(new NodeContentMissingError(`no ${file}`)),
  } as unknown as CanvasService;
  const generated = new InMemoryGeneratedNodes();
  return { planner: new PlannerService(vault, canvas, router, generated), generated };
}

const text = (id: string, t: string, extra: Record<string, unknown> = {}) => ({
  id,
  type: 'text',
  text: t,
  ...at,
  ...extra,
});

describe('PlannerService', () => {
  it('leaves out every kind of node that cannot be planned, and says why', async () => {
    const { planner, generated } = plannerFor(
      [
        text('t1', 'Mitochondria vs. chloroplasts: compare them'),
        text('t2', '   '),
        { id: 'g', type: 'group', label: 'G', ...at },
        { id: 'l', type: 'link', url: 'https://x', ...at },
        { id: 'f1', type: 'file', file: 'notes/a.md', ...at },
        { id: 'f2', type: 'file', file: 'img.png', ...at },
        { id: 'f3', type: 'file', file: 'gone.md', ...at },
        { id: 'f4', type: 'file', file: 'c-explanations/r.md', ...at },
        { id: 'x', type: 'plugin-thing', ...at },
        text('gen', 'generated card'),
      ],
      { 'notes/a.md': 'Ribosomes translate mRNA' },
    );
    await generated.record('c.canvas', 'task', { nodeIds: ['gen'], edgeIds: [] });
    const plan = await planner.plan({ canvas_path: 'c.canvas' });
    expect(plan.left_out).toEqual([
      { node_id: 't2', reason: 'empty' },
      { node_id: 'g', reason: 'group' },
      { node_id: 'l', reason: 'link' },
      { node_id: 'f2', reason: 'not_markdown' },
      { node_id: 'f3', reason: 'unreadable' },
      { node_id: 'f4', reason: 'generated' },
      { node_id: 'x', reason: 'unsupported' },
      { node_id: 'gen', reason: 'generated' },
    ]);
    expect(plan.groups.flatMap((g) => g.node_ids).sort()).toEqual(['f1', 't1']);
  });

  it('refuses a plan of nothing (422) and of too many nodes (413)', async () => {
    await expect(plannerFor([]).planner.plan({ canvas_path: 'c.canvas' })).rejects.toThrow(
      new NoEligibleNodesError('c.canvas', 'the canvas has no nodes', []),
    );
    const many = Array.from({ length: 20_001 }, (_, i) => `n${i}`);
    await expect(
      plannerFor([]).planner.plan({ canvas_path: 'c.canvas', node_ids: many }),
    ).rejects.toBeInstanceOf(CanvasTooLargeError);
  });

  it('puts high priority first and names groups by their terms; colour matches hex in any case', async () => {
    const nodes = [
      text('a1', 'photosynthesis chlorophyll light energy', { color: '#AABBCC' }),
      text('a2', 'photosynthesis chlorophyll glucose light', { color: '#aabbcc' }),
      text('b1', 'exam review: newton force mass acceleration', { color: '#aabbcc' }),
      text('b2', 'newton force mass inertia exam', { color: '#aabbcc' }),
      text('c1', 'steam engine coal factory', { color: '#aabbcc' }),
      text('c2', 'coal factory steam britain', { color: '#aabbcc' }),
      text('d', 'not this colour'),
    ];
    const plan = await plannerFor(nodes).planner.plan({ canvas_path: 'c.canvas', colour: '#AaBbCc' });
    expect(plan.groups[0]).toMatchObject({ group_id: 'g1', priority: 'high', node_ids: ['b1', 'b2'] });
    expect(plan.groups[0].priority_reason).toBe('review or exam material: "review", "exam"');
    expect(plan.groups.map((g) => g.group_id)).toEqual(['g1', 'g2', 'g3']);
    expect(plan.groups[1].name).toContain('photosynthesis');
    expect(plan.left_out).toEqual([{ node_id: 'd', reason: 'colour' }]);
  });

  it('splits an execute group over 10,000 nodes', async () => {
    const nodes = Array.from({ length: 10_001 }, (_, i) => text(`n${i}`, 'same words here'));
    const plan = await plannerFor(nodes).planner.plan({ canvas_path: 'c.canvas' });
    expect(plan.groups).toHaveLength(1);
    expect(plan.execute.groups.map((g) => [g.group_id, g.node_ids.length])).toEqual([
      ['g1', 10_000],
      ['g1.2', 1],
    ]);
  });

  it(`asks the model about at most ${MAX_MODEL_ROUTES} unsure nodes`, async () => {
    const asked: string[] = [];
    const router = {
      usesModel: true,
      route: (content: string, o: { nodeId?: string }) => {
        asked.push(o.nodeId!);
        return Promise.resolve({
          agentType: 'memory-anchor',
          confidence: 0.8,
          reason: 'model',
          routedBy: 'model',
          usage: { inputTokens: 1, outputTokens: 1 },
        } satisfies RoutingOutcome);
      },
    } as unknown as AgentRouter;
    const nodes = Array.from({ length: MAX_MODEL_ROUTES + 5 }, (_, i) =>
      text(`n${i}`, `plain note ${i % 3} alpha`),
    );
    const plan = await plannerFor(nodes, {}, router).planner.plan({ canvas_path: 'c.canvas', max_groups: 1 });
    expect(asked).toHaveLength(MAX_MODEL_ROUTES);
    expect(plan.groups[0]).toMatchObject({ agent_type: 'memory-anchor', routed_by: 'model' });
  });
});

describe('groupAgent', () => {
  const r = (
    agentType: string,
    confidence: number,
    routedBy: 'rules' | 'model' = 'rules',
  ): RoutingOutcome => ({
    agentType,
    confidence,
    reason: `why ${agentType}`,
    routedBy,
    usage: { inputTokens: 0, outputTokens: 0 },
  });

  it('takes the majority, then the summed confidence, then the catalogue order', () => {
    expect(
      groupAgent([r('memory-anchor', 0.9), r('memory-anchor', 0.7), r('comparison-table', 0.95)]),
    ).toEqual({
      agentType: 'memory-anchor',
      confidence: 0.53,
      reason: '2 of 3 nodes route to memory-anchor (e.g. why memory-anchor); others: comparison-table',
      routedBy: 'rules',
    });
    expect(groupAgent([r('memory-anchor', 0.75), r('comparison-table', 0.95)]).agentType).toBe(
      'comparison-table',
    );
    expect(groupAgent([r('memory-anchor', 0.75), r('basic-decomposition', 0.75)]).agentType).toBe(
      'basic-decomposition',
    );
    expect(groupAgent([r('hint-generation', 0.8, 'model')])).toMatchObject({
      confidence: 0.8,
      reason: 'all 1 node(s) route to hint-generation (why hint-generation); 1 chosen by the model',
      routedBy: 'model',
    });
  });
});

describe('priorityOf', () => {
  it('mistakes first, then review and exam, then optional; EN and ZH', () => {
    expect(priorityOf(['a bug here', 'exam'])).toEqual({
      priority: 'high',
      reason: 'mentions mistakes to fix: "bug"',
    });
    expect(priorityOf(['期末复习'])).toEqual({
      priority: 'high',
      reason: 'review or exam material: "复习", "期末"',
    });
    expect(priorityOf(['选学内容'])).toEqual({ priority: 'low', reason: 'optional material: "选学"' });
    expect(priorityOf(['testing is not a cue'])).toEqual({ priority: 'normal' });
  });
});
