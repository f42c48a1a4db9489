import type { INestApplicationContext } from '@nestjs/common';
import { AgentRunner, type AgentRunRequest } from '../../src/agent/agent-runner';

/** Wraps the app's real agent runner to record how many calls run at once and when each started. */
export function instrumentRunner(app: INestApplicationContext): {
  maxRunning: () => number;
  starts: { nodeId: string; at: number }[];
  calls: AgentRunRequest[];
} {
  const runner = app.get(AgentRunner);
  const original = runner.run.bind(runner);
  let running = 0;
  let max = 0;
  const starts: { nodeId: string; at: number }[] = [];
  const calls: AgentRunRequest[] = [];
  jest.spyOn(runner, 'run').mockImplementation(async (req) => {
    running++;
    max = Math.max(max, running);
    starts.push({ nodeId: req.node.nodeId, at: Date.now() });
    calls.push(req);
    try {
      return await original(req);
    } finally {
      running--;
    }
  });
  return { maxRunning: () => max, starts, calls };
}
