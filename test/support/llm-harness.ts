import { writeGridCanvas } from './canvas-fixtures';
import type { FakeLlmServer, Wire } from './fake-llm-server';
import { http, startServer, type TestServer, waitTerminal } from './harness';

type Json = Record<string, any>;

export const TEST_KEY = 'sk-test-0123456789-secret';

export const PROVIDER_OF: Record<Wire, string> = {
  anthropic: 'anthropic',
  openai: 'openai-compatible',
  google: 'google',
};

/** The service's environment to talk to the fake server in `wire`'s format. */
export function llmEnv(
  fake: FakeLlmServer,
  wire: Wire,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    AGENT_PROVIDER: PROVIDER_OF[wire],
    AGENT_MODEL: 'fake-model',
    AGENT_BASE_URL: fake.baseUrl(wire),
    AGENT_API_KEY: TEST_KEY,
    AGENT_RETRY_BASE_MS: '20',
    AGENT_RETRY_MAX_MS: '200',
    ...extra,
  };
}

/** A real service on the fake provider, with one canvas of `groups × perGroup` text nodes. */
export async function startLlmServer(
  fake: FakeLlmServer,
  wire: Wire,
  extra: Record<string, string> = {},
  grid = { groups: 1, perGroup: 4 },
): Promise<{ server: TestServer; ids: string[][] }> {
  let ids: string[][] = [];
  const server = await startServer(llmEnv(fake, wire, extra), (vault) => {
    ids = writeGridCanvas(vault, 'Test/llm.canvas', grid.groups, grid.perGroup);
  });
  return { server, ids };
}

/** Starts a batch of one agent over `nodeIds`; returns the task id. */
export async function runBatch(
  server: TestServer,
  agentType: string,
  nodeIds: string[],
  extra: Json = {},
): Promise<string> {
  const res = await http<Json>('POST', `${server.url}/parallel/execute`, {
    canvas_path: 'Test/llm.canvas',
    groups: [{ group_id: 'g', agent_type: agentType, node_ids: nodeIds }],
    ...extra,
  });
  if (res.status !== 202) throw new Error(`execute: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.task_id as string;
}

export async function runToEnd(
  server: TestServer,
  agentType: string,
  nodeIds: string[],
  extra: Json = {},
): Promise<Json> {
  return waitTerminal(server, await runBatch(server, agentType, nodeIds, extra), 60_000);
}
