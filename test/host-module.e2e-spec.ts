import { Injectable, Module } from '@nestjs/common';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { Test } from '@nestjs/testing';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { AgentRunner, type AgentRunRequest, type AgentRunResult } from '../src/agent';
import { OnDomainEvent } from '../src/common/domain-events';
import { BUNDLED_VAULT } from '../src/config/example-vault';
import { MemoryOutbox } from '../src/memory';
import { BatchOrchestrator, OrchestratorModule, TaskViewService } from '../src/orchestrator';

/** A host service's own agent runner (e.g. another LLM client). */
class ShoutingRunner extends AgentRunner {
  readonly seen: string[] = [];
  run(req: AgentRunRequest): Promise<AgentRunResult> {
    this.seen.push(req.node.nodeId);
    return Promise.resolve({
      markdown: `SHOUTED: ${req.node.content.toUpperCase().slice(0, 40)}`,
      usage: { inputTokens: 7, outputTokens: 3 },
    });
  }
}

/** A listener of the host that always throws: it must change nothing for the batch. */
@Injectable()
class ThrowingListener {
  calls = 0;
  @OnDomainEvent('agent.completed')
  onCompleted(): void {
    this.calls++;
    throw new Error('listener exploded');
  }
}

@Module({ providers: [ThrowingListener], exports: [ThrowingListener] })
class HostFeatureModule {}

describe('OrchestratorModule imported by another Nest service (no HTTP)', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'canvas-batch-host-'));
  const vault = path.join(root, 'vault');
  cpSync(BUNDLED_VAULT, vault, { recursive: true });
  const runner = new ShoutingRunner();

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('runs a batch with its own AgentRunner through forRootAsync; a throwing listener changes nothing', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        EventEmitterModule.forRoot(),
        HostFeatureModule,
        OrchestratorModule.forRootAsync({
          useFactory: () =>
            Promise.resolve({
              vaultRoot: vault,
              dataDir: path.join(root, 'data'),
              agentRunner: runner,
              globalMaxConcurrent: 2,
            }),
        }),
      ],
    }).compile();
    const app = await moduleRef.init();
    try {
      const orchestrator = app.get(BatchOrchestrator);
      const { task, created } = await orchestrator.submit({
        canvasPath: 'Biology/cells.canvas',
        groups: [
          {
            groupId: 'host',
            agentType: 'scoring',
            nodeIds: ['b10c0ffee0000001', 'b10c0ffee0000002', '4e0b7a91c2d35f68'],
          },
        ],
      });
      expect(created).toBe(true);
      expect(task.status).toBe('running');
      const final = await orchestrator.waitForCompletion(task.taskId);
      expect(final.status).toBe('completed');
      expect(runner.seen.sort()).toEqual(['4e0b7a91c2d35f68', 'b10c0ffee0000001', 'b10c0ffee0000002']);
      const status = await app.get(TaskViewService).status(task.taskId);
      expect(status.groups[0].agent_type).toBe('scoring-agent');
      expect(status.usage).toEqual({ input_tokens: 21, output_tokens: 9 });
      const file = readFileSync(path.join(vault, status.groups[0].results[0].file_path), 'utf8');
      expect(file).toMatch(/SHOUTED: /);
      await new Promise((r) => setImmediate(r));
      expect(app.get(ThrowingListener).calls).toBe(3);
      const outbox = (await app.get(MemoryOutbox).forTask(task.taskId)).filter((e) => e.nodeId);
      expect(outbox.map((e) => e.memoryType)).toEqual([
        'scoring_completed',
        'scoring_completed',
        'scoring_completed',
      ]);
    } finally {
      await app.close();
    }
  });
});
