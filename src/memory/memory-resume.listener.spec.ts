import { Logger } from '@nestjs/common';
import type { AgentNodeInput } from '../agent';
import type { CanvasService, ResolvedCanvasPath } from '../canvas';
import type { AgentCompletedEvent, BatchResumedEvent } from '../common';
import { InMemoryMemoryOutbox } from './in-memory-memory-outbox';
import type { MemoryDeliveryService } from './memory-delivery.service';
import { memoryEventId } from './memory-outbox';
import type { MemoryModuleOptions } from './memory.module-definition';
import { MemoryResumeListener } from './memory-resume.listener';
import { MemoryListener } from './memory.listener';

const CANVAS = 'Biology/cells.canvas';

/** A canvas whose nodes hold the given contents; a node not listed is no longer in it. */
function fakeCanvas(contents: Record<string, string>, resolves = true): CanvasService {
  return {
    resolve: (canvasPath: string): Promise<ResolvedCanvasPath> =>
      resolves
        ? Promise.resolve({ relPath: canvasPath, absPath: `/vault/${canvasPath}` })
        : Promise.reject(new Error('it resolves outside the vault')),
    nodeContent: (canvas: ResolvedCanvasPath, nodeId: string): Promise<AgentNodeInput> =>
      nodeId in contents
        ? Promise.resolve({ canvasPath: canvas.relPath, nodeId, nodeType: 'text', content: contents[nodeId] })
        : Promise.reject(new Error(`node ${nodeId} is no longer in ${canvas.relPath}`)),
  } as unknown as CanvasService;
}

const node = (nodeId: string, overrides: Partial<BatchResumedEvent['completed'][number]> = {}) => ({
  groupId: 7,
  groupIndex: 0,
  nodeId,
  agentType: 'oral-explanation',
  filePath: `Biology/cells-explanations/${nodeId}.md`,
  durationMs: 12,
  completedAt: `2026-11-26T10:00:0${nodeId.slice(1)}.000Z`,
  ...overrides,
});

const resumed = (completed: BatchResumedEvent['completed']): BatchResumedEvent => ({
  taskId: 't1',
  canvasPath: CANVAS,
  completed,
});

describe('MemoryResumeListener (in-memory outbox)', () => {
  let outbox: InMemoryMemoryOutbox;
  let notify: jest.Mock;
  let listener: MemoryListener;
  let errorLog: jest.SpyInstance;

  const make = (canvas: CanvasService, options: MemoryModuleOptions = {}): MemoryResumeListener =>
    new MemoryResumeListener(canvas, listener, options);

  beforeEach(() => {
    errorLog = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    outbox = new InMemoryMemoryOutbox();
    notify = jest.fn();
    listener = new MemoryListener(outbox, { notify } as unknown as MemoryDeliveryService);
  });

  afterEach(() => jest.restoreAllMocks());

  it('hands every completed node to the outbox, as agent.completed did, its concept read from the canvas', async () => {
    await make(
      fakeCanvas({ n1: '# Mitosis\nCells divide.', n2: 'Meiosis halves the chromosomes. More.' }),
    ).onBatchResumed(resumed([node('n1'), node('n2', { groupIndex: 1, groupId: 'g2' })]));
    expect(await outbox.forTask('t1')).toEqual([
      {
        eventId: memoryEventId('t1', 0, 'n1', 'oral-explanation'),
        taskId: 't1',
        canvasPath: CANVAS,
        nodeId: 'n1',
        agentType: 'oral-explanation',
        memoryType: 'explanation_generated',
        concept: 'Mitosis',
        createdAt: '2026-11-26T10:00:01.000Z',
        payload: { group_id: 7, file_path: 'Biology/cells-explanations/n1.md', duration_ms: 12 },
        deliveredAt: null,
        attempts: 0,
      },
      expect.objectContaining({
        eventId: memoryEventId('t1', 1, 'n2', 'oral-explanation'),
        concept: 'Meiosis halves the chromosomes',
        payload: { group_id: 'g2', file_path: 'Biology/cells-explanations/n2.md', duration_ms: 12 },
      }),
    ]);
    expect(notify).toHaveBeenCalledTimes(2);
  });

  it('doubles nothing: a node whose agent.completed was handed off already keeps its one event', async () => {
    const first: AgentCompletedEvent = {
      ...node('n1'),
      taskId: 't1',
      canvasPath: CANVAS,
      concept: 'Mitosis',
    };
    await listener.onAgentCompleted(first);
    const canvas = fakeCanvas({ n1: '# Mitosis', n2: '# Meiosis' });
    await make(canvas).onBatchResumed(resumed([node('n1'), node('n2')]));
    await make(canvas).onBatchResumed(resumed([node('n1'), node('n2')]));
    expect((await outbox.forTask('t1')).map((e) => [e.nodeId, e.concept])).toEqual([
      ['n1', 'Mitosis'],
      ['n2', 'Meiosis'],
    ]);
    // the drain loop is woken for the one new event only
    expect(notify).toHaveBeenCalledTimes(2);
  });

  it('names a node it cannot read any more by its id, also when the canvas no longer resolves', async () => {
    await make(fakeCanvas({ n1: '# Mitosis' })).onBatchResumed(resumed([node('n1'), node('n2')]));
    await make(fakeCanvas({}, false)).onBatchResumed({ ...resumed([node('n3')]), taskId: 't2' });
    expect((await outbox.forTask('t1')).map((e) => [e.nodeId, e.concept])).toEqual([
      ['n1', 'Mitosis'],
      ['n2', 'n2'],
    ]);
    expect((await outbox.forTask('t2')).map((e) => [e.nodeId, e.concept])).toEqual([['n3', 'n3']]);
  });

  it('records the other nodes when one cannot be (an agent no longer in the catalogue), and never rejects', async () => {
    await expect(
      make(fakeCanvas({ n1: 'a', n2: 'b' })).onBatchResumed(
        resumed([node('n1', { agentType: 'mystery-agent' }), node('n2')]),
      ),
    ).resolves.toBeUndefined();
    expect((await outbox.forTask('t1')).map((e) => e.nodeId)).toEqual(['n2']);
    expect(errorLog).toHaveBeenCalledWith(
      'memory event for agent.completed t1/n1 not recorded: agent "mystery-agent" is not in the catalogue',
    );
  });

  it('reads the concept from the content as an agent is given it (cut at maxInputChars)', async () => {
    const canvas = fakeCanvas({ n1: `plain start ${'x'.repeat(2000)}\n# Late heading` });
    await make(canvas, { maxInputChars: 1000 }).onBatchResumed(resumed([node('n1')]));
    await make(canvas).onBatchResumed({ ...resumed([node('n1')]), taskId: 't2' });
    expect((await outbox.forTask('t1'))[0].concept).toMatch(/^plain start x+/);
    expect((await outbox.forTask('t2'))[0].concept).toBe('Late heading');
  });

  it('does nothing for a batch resumed with no completed node', async () => {
    await make(fakeCanvas({})).onBatchResumed(resumed([]));
    expect(await outbox.counts()).toEqual({ pending: 0, delivered: 0 });
    expect(notify).not.toHaveBeenCalled();
  });
});
