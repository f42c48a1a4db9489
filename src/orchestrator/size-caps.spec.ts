import { EventEmitterModule } from '@nestjs/event-emitter';
import type { INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { AgentRunner, type AgentRunRequest, type AgentRunResult } from '../agent';
import { charCount } from '../common';
import { EventLog } from '../session';
import { BatchOrchestrator } from './batch-orchestrator.service';
import { OrchestratorModule } from './orchestrator.module';
import { truncationView } from './dto/task-status.dto';
import { TaskViewService } from './task-view.service';

/** Echoes the content it gets, many times over, as markdown and as one question (like a runaway agent). */
class EchoRunner extends AgentRunner {
  readonly inputs = new Map<string, string>();

  run({ node }: AgentRunRequest): Promise<AgentRunResult> {
    this.inputs.set(node.nodeId, node.content);
    return Promise.resolve({
      markdown: `## Echo\n\n${Array(4).fill(node.content).join('\n\n')}`,
      structured: {
        kind: 'questions',
        questions: [
          { text: `Explain "${node.nodeId === 'big' ? node.content : node.nodeId}"?`, guidance: 'Go.' },
        ],
      },
      usage: { inputTokens: 0, outputTokens: 0 },
    });
  }
}

describe('size caps on what an agent reads and what its result copies into the vault (unit, real SQLite)', () => {
  let root: string;
  let vault: string;
  let app: INestApplicationContext;
  let runner: EchoRunner;

  beforeEach(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'size-caps-spec-'));
    vault = path.join(root, 'vault');
    mkdirSync(vault);
    const big = `# Membranes\n\n${'磷脂双分子层 lipid bilayer 🧬 '.repeat(20_000)}`; // 460,013 characters
    const nodes = [
      { id: 'big', type: 'text', text: big, x: 0, y: 0, width: 400, height: 400 },
      { id: 'small', type: 'text', text: 'Cell theory', x: 600, y: 0, width: 200, height: 100 },
      { id: 'medium', type: 'text', text: 'Mitosis. '.repeat(1_500), x: 900, y: 0, width: 200, height: 100 },
    ];
    writeFileSync(path.join(vault, 'c.canvas'), JSON.stringify({ nodes, edges: [] }, null, '\t'));
    runner = new EchoRunner();
    const moduleRef = await Test.createTestingModule({
      imports: [
        EventEmitterModule.forRoot(),
        OrchestratorModule.forRoot({
          vaultRoot: vault,
          dataDir: path.join(root, 'data'),
          agentRunner: runner,
          maxInputChars: 10_000,
          maxResultBytes: 64 * 1024,
        }),
      ],
    }).compile();
    moduleRef.useLogger(false);
    app = await moduleRef.init();
  });

  afterEach(async () => {
    await app?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('cuts the input, the result file and the cards, says so in each, and reports it in the status and event', async () => {
    const orchestrator = app.get(BatchOrchestrator);
    const { task } = await orchestrator.submit({
      canvasPath: 'c.canvas',
      groups: [{ groupId: 1, agentType: 'basic-decomposition', nodeIds: ['big', 'small', 'medium'] }],
    });
    const final = await orchestrator.waitForCompletion(task.taskId);
    expect(final.status).toBe('completed');

    // the agent got 10,000 characters at most, ending with a note
    const input = runner.inputs.get('big')!;
    expect(charCount(input)).toBeLessThanOrEqual(10_000);
    expect(input).toMatch(
      /\n\n… \(truncated: [\d,]+ characters more; an agent reads at most 10,000 characters/,
    );
    expect(runner.inputs.get('small')).toBe('Cell theory');

    // the status lists what was cut, for the big node only
    const status = await app.get(TaskViewService).status(task.taskId);
    const [big, small] = ['big', 'small'].map((id) =>
      status.groups[0].results.find((r) => r.node_id === id)!,
    );
    expect(big.truncated).toEqual({
      input_chars: 460_013 - charCount(input.slice(0, input.indexOf('\n\n…'))),
      result_chars: expect.any(Number),
      canvas_chars: expect.any(Number),
    });
    expect(small).not.toHaveProperty('truncated');
    // 13,500 characters: only the input is cut, its result and card fit
    const medium = status.groups[0].results.find((r) => r.node_id === 'medium')!;
    expect(medium.truncated).toEqual({ input_chars: expect.any(Number) });
    expect(medium.truncated!.input_chars).toBeGreaterThan(3_500);

    // the result file stays within 64 KiB, and says what was cut at its top and its end
    const file = path.join(vault, big.file_path);
    expect(statSync(file).size).toBeLessThanOrEqual(64 * 1024);
    expect(statSync(file).size).toBe(big.file_size);
    const text = readFileSync(file, 'utf8');
    expect(text).toMatch(
      /^# basic-decomposition: Membranes\n\n> \*\*Truncated input:\*\* this node is longer/,
    );
    expect(text).toMatch(/_… \(truncated: [\d,]+ characters more; a result file holds at most 64 KiB\)_\n$/);
    expect(text).not.toContain('\ufffd');

    // the card in the canvas is capped and points to the file
    const canvas = JSON.parse(readFileSync(path.join(vault, 'c.canvas'), 'utf8')) as {
      nodes: { id: string; text?: string }[];
    };
    const cards = canvas.nodes.filter((n) => n.text?.startsWith('**Q1**'));
    expect(cards).toHaveLength(3);
    const bigCard = cards.find((c) => c.text!.length > 100)!;
    expect(charCount(bigCard.text!)).toBeLessThanOrEqual(2_100);
    expect(bigCard.text).toMatch(/… \(truncated: [\d,]+ characters more, see the result file\)$/);

    // the task_completed event carries the same
    const events = await app.get(EventLog).after(task.taskId, 0);
    const completed = events.filter((e) => e.type === 'task_completed');
    expect(completed.find((e) => e.data.node_id === 'big')?.data.truncated).toEqual(big.truncated);
    expect(completed.find((e) => e.data.node_id === 'small')?.data).not.toHaveProperty('truncated');
  });

  it('shows only what was cut, and nothing when nothing was', () => {
    expect(truncationView(undefined)).toBeUndefined();
    expect(truncationView({})).toBeUndefined();
    expect(truncationView({ inputChars: 0, canvasChars: 3 })).toEqual({ canvas_chars: 3 });
    expect(truncationView({ resultChars: 7 })).toEqual({ result_chars: 7 });
  });
});
