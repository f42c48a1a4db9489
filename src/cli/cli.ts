import { Command, CommanderError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import type { AgentCatalogueDto } from '../agent';
import type { CanvasNodesDto } from '../dashboard';
import type { CancelResponseDto, ExecuteAcceptedDto, TaskListDto, TaskStatusDto } from '../orchestrator';
import { ApiClient, ApiError } from './api-client';
import { BarsView, BatchProgress, LinesView, type ProgressView } from './progress';
import { formatTable } from './table';

/** Exit codes: by the batch's final status, then for errors around it. */
export const EXIT = {
  completed: 0,
  failedOrCancelled: 1,
  partialFailure: 2,
  /** The service refused a request or could not be reached. */
  apiError: 3,
  usage: 64,
  /** Ctrl-C, then the batch was left running. */
  interrupted: 130,
} as const;

export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  stdin: NodeJS.ReadableStream;
  env: Record<string, string | undefined>;
  /** Routes Ctrl-C (SIGINT) to `handler` until the returned function is called. */
  onInterrupt(handler: () => void): () => void;
}

interface GlobalOptions {
  url?: string;
  token?: string;
  json?: boolean;
}

class UsageError extends Error {}

/** The exit code a finished task's status maps to. */
export function exitCodeFor(status: string): number {
  if (status === 'completed') return EXIT.completed;
  if (status === 'partial_failure') return EXIT.partialFailure;
  return EXIT.failedOrCancelled;
}

/**
 * Parses `--nodes`: `all`, `color:N` (preset 1–6 or `#rrggbb`), or comma-separated node ids. `all` and `color:`
 * leave out group nodes and the result nodes of earlier batches.
 */
export function selectNodes(nodes: CanvasNodesDto['nodes'], spec: string): string[] {
  const runnable = nodes.filter((n) => n.type !== 'group' && !n.result);
  const s = spec.trim();
  if (s === 'all') return runnable.map((n) => n.id);
  if (s.startsWith('color:')) {
    const color = s.slice(6).trim().toLowerCase();
    if (!color) throw new UsageError('--nodes color: needs a colour, e.g. color:4 or color:#ff0000');
    return runnable.filter((n) => n.color?.toLowerCase() === color).map((n) => n.id);
  }
  const ids = s
    .split(',')
    .map((id) => id.trim())
    .filter(Boolean);
  if (ids.length === 0) throw new UsageError(`--nodes "${spec}" names no node`);
  return ids;
}

/** Runs the CLI with `argv` (without `node` and the script) and resolves with the exit code. Never exits itself. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let exitCode: number = EXIT.completed;
  const out = (line = ''): void => void io.stdout.write(`${line}\n`);
  const err = (line: string): void => void io.stderr.write(`${line}\n`);
  const json = (value: unknown): void => out(JSON.stringify(value, null, 2));

  const program = new Command('canvas-batch')
    .description('Run learning agents over many Obsidian canvas nodes through a canvas-batch service.')
    .version(VERSION)
    .addOption(new Option('--url <url>', 'service URL (or CANVAS_BATCH_URL; default http://127.0.0.1:3000)'))
    .addOption(new Option('--token <token>', 'API token (or CANVAS_BATCH_TOKEN / API_TOKEN)'))
    .option('--json', 'machine-readable JSON on stdout (no progress bars)')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .showHelpAfterError();

  const client = (cmd: Command): { api: ApiClient; g: GlobalOptions } => {
    const g = cmd.optsWithGlobals<GlobalOptions>();
    const url = g.url ?? (io.env.CANVAS_BATCH_URL || `http://127.0.0.1:${io.env.PORT || '3000'}`);
    const token = g.token ?? (io.env.CANVAS_BATCH_TOKEN || io.env.API_TOKEN);
    return { api: new ApiClient({ baseUrl: url, token: token || undefined }), g };
  };

  const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

  program
    .command('run')
    .description('start a batch over a canvas; with --wait, follow it live and exit by its final status')
    .argument('<canvas>', 'vault-relative canvas path, e.g. Biology/cells.canvas')
    .requiredOption(
      '--agent <type>',
      'agent for a group (repeat with --nodes for more groups; see `agents`)',
      collect,
    )
    .option('--nodes <spec>', 'all | color:N | id,id,... (one per --agent; default all)', collect)
    .option('--max-concurrent <n>', 'agents of this batch running at once (1-50)', parseIntArg)
    .option('--timeout <seconds>', 'the whole batch deadline in seconds (60-3600)', parseIntArg)
    .option('--wait', 'follow the batch live until it ends')
    .action(async (canvas: string, opts: RunOptions, cmd: Command) => {
      const { api, g } = client(cmd);
      const specs = opts.nodes ?? [];
      if (specs.length > opts.agent.length)
        throw new UsageError(
          `${specs.length} --nodes for ${opts.agent.length} --agent: give one --agent per group`,
        );
      if (opts.agent.length > 1 && specs.length !== opts.agent.length)
        throw new UsageError('with several --agent, give each its own --nodes');
      const listing = await api.request<CanvasNodesDto>(
        'GET',
        `/canvases/nodes?path=${encodeURIComponent(canvas)}`,
      );
      const groups = opts.agent.map((agent, i) => {
        const spec = specs[i] ?? 'all';
        const ids = selectNodes(listing.nodes, spec);
        if (ids.length === 0)
          throw new UsageError(`--nodes ${spec} matches no node of ${listing.canvas_path}`);
        return { group_id: i + 1, agent_type: agent, node_ids: ids };
      });
      const started = await api.request<ExecuteAcceptedDto>('POST', '/parallel/execute', {
        canvas_path: listing.canvas_path,
        groups,
        ...(opts.maxConcurrent === undefined ? {} : { max_concurrent: opts.maxConcurrent }),
        ...(opts.timeout === undefined ? {} : { timeout: opts.timeout }),
      });
      if (!opts.wait) {
        if (g.json) json(started);
        else {
          out(
            `started task ${started.task_id}: ${started.total_nodes} node(s) in ${started.total_groups} group(s)`,
          );
          out(`follow it: canvas-batch watch ${started.task_id}`);
        }
        return;
      }
      if (!g.json) err(`task ${started.task_id} started: ${started.total_nodes} node(s)`);
      exitCode = await follow(api, started.task_id, g, io);
    });

  program
    .command('watch')
    .description('follow a task live until it ends; exit by its final status')
    .argument('<task-id>')
    .action(async (taskId: string, _opts: unknown, cmd: Command) => {
      const { api, g } = client(cmd);
      exitCode = await follow(api, taskId, g, io);
    });

  program
    .command('status')
    .description("a task's status, groups, results and errors")
    .argument('<task-id>')
    .action(async (taskId: string, _opts: unknown, cmd: Command) => {
      const { api, g } = client(cmd);
      const status = await api.request<TaskStatusDto>(
        'GET',
        `/parallel/status/${encodeURIComponent(taskId)}`,
      );
      if (g.json) json(status);
      else printSummary(status, out);
    });

  program
    .command('cancel')
    .description('cancel a running task (running nodes finish unless --abort)')
    .argument('<task-id>')
    .option('--abort', 'abort running nodes too')
    .action(async (taskId: string, opts: { abort?: boolean }, cmd: Command) => {
      const { api, g } = client(cmd);
      const res = await api.request<CancelResponseDto>(
        'DELETE',
        `/parallel/cancel/${encodeURIComponent(taskId)}${opts.abort ? '?mode=abort' : ''}`,
      );
      if (g.json) json(res);
      else out(`${res.message} (status ${res.status})`);
    });

  program
    .command('tasks')
    .description('recent tasks, newest first')
    .option('--status <status>', 'only tasks in this status')
    .option('--limit <n>', 'at most this many (1-100)', parseIntArg)
    .action(async (opts: { status?: string; limit?: number }, cmd: Command) => {
      const { api, g } = client(cmd);
      const q = new URLSearchParams();
      if (opts.status) q.set('status', opts.status);
      if (opts.limit !== undefined) q.set('limit', String(opts.limit));
      const list = await api.request<TaskListDto>(
        'GET',
        `/parallel/tasks${q.size ? `?${q.toString()}` : ''}`,
      );
      if (g.json) return json(list);
      if (list.tasks.length === 0) return out('no tasks');
      out(
        formatTable(
          ['TASK', 'STATUS', 'PROGRESS', 'DONE', 'FAILED', 'CANVAS', 'CREATED'],
          list.tasks.map((t) => [
            t.task_id,
            t.status,
            `${t.progress_percent}%`,
            `${t.completed_nodes}/${t.total_nodes}`,
            String(t.failed_nodes),
            t.canvas_path,
            t.created_at,
          ]),
        ),
      );
    });

  program
    .command('agents')
    .description('the agent catalogue')
    .action(async (_opts: unknown, cmd: Command) => {
      const { api, g } = client(cmd);
      const catalogue = await api.request<AgentCatalogueDto>('GET', '/agents');
      if (g.json) return json(catalogue);
      out(
        formatTable(
          ['AGENT', 'OUTPUT', 'RUNNABLE', 'DESCRIPTION'],
          catalogue.agents.map((a) => [a.name, a.output_kind, a.runnable ? 'yes' : 'no', a.description]),
        ),
      );
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.exitCode === 0 ? EXIT.completed : EXIT.usage;
    }
    if (e instanceof UsageError) {
      err(`error: ${e.message}`);
      return EXIT.usage;
    }
    if (e instanceof ApiError) {
      err(`error: ${e.message}`);
      return EXIT.apiError;
    }
    err(`error: ${e instanceof Error ? e.message : String(e)}`);
    return EXIT.apiError;
  }
}

interface RunOptions {
  agent: string[];
  nodes?: string[];
  maxConcurrent?: number;
  timeout?: number;
  wait?: boolean;
}

const VERSION = (
  JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }
).version;

function parseIntArg(value: string): number {
  if (!/^\d+$/.test(value.trim())) throw new UsageError(`"${value}" is not a whole number`);
  return Number(value);
}

/**
 * Follows a task live (bars on a terminal, lines otherwise, nothing with --json) until `session_completed`, then
 * prints the summary (or the final status as JSON). Ctrl-C asks whether to cancel the batch; a second Ctrl-C or no
 * answer leaves it running and exits 130.
 */
async function follow(api: ApiClient, taskId: string, g: GlobalOptions, io: CliIo): Promise<number> {
  const out = (line = ''): void => void io.stdout.write(`${line}\n`);
  const initial = await api.request<TaskStatusDto>('GET', `/parallel/status/${encodeURIComponent(taskId)}`);
  const progress = new BatchProgress(initial);
  const view: ProgressView | undefined = g.json
    ? undefined
    : io.stderr.isTTY
      ? new BarsView(io.stderr, progress)
      : new LinesView(io.stderr);
  const note = (line: string): void => (view ? view.log(line) : void io.stderr.write(`${line}\n`));
  const stream = new AbortController();
  let detached = false;
  let asking = false;

  const detach = (why: string): void => {
    detached = true;
    note(`${why}: task ${taskId} keeps running (canvas-batch watch ${taskId})`);
    stream.abort();
  };
  const unregister = io.onInterrupt(() => {
    if (asking) return detach('interrupted again');
    asking = true;
    void ask(io, `Cancel batch ${taskId}? [y/N] `).then(async (answer) => {
      asking = false;
      if (answer === undefined) return detach('no answer');
      if (!/^y(es)?$/i.test(answer.trim())) return note('continuing');
      try {
        const res = await api.request<CancelResponseDto>(
          'DELETE',
          `/parallel/cancel/${encodeURIComponent(taskId)}`,
        );
        note(res.message);
      } catch (e) {
        note(`cancel failed: ${(e as Error).message}`);
      }
    });
  });
  try {
    for await (const e of api.events(taskId, stream.signal)) {
      view?.update(progress, progress.apply(e));
    }
  } finally {
    view?.stop();
    unregister();
  }
  if (detached) return EXIT.interrupted;
  const final = await api.request<TaskStatusDto>('GET', `/parallel/status/${encodeURIComponent(taskId)}`);
  if (g.json) out(JSON.stringify(final, null, 2));
  else printSummary(final, out);
  return exitCodeFor(final.status);
}

/** Reads one line of answer from stdin; `undefined` when stdin ends first. */
function ask(io: CliIo, question: string): Promise<string | undefined> {
  io.stderr.write(question);
  return new Promise((resolve) => {
    const rl = createInterface({ input: io.stdin, terminal: false });
    let settled = false;
    rl.once('line', (line) => {
      settled = true;
      rl.close();
      resolve(line);
    });
    rl.once('close', () => {
      if (!settled) resolve(undefined);
    });
  });
}

/** The end-of-batch table: totals, one row per group, then failures and result files. */
export function printSummary(s: TaskStatusDto, out: (line?: string) => void): void {
  const seconds = s.performance_metrics.total_duration_seconds;
  out(
    `task ${s.task_id} ${s.status}: ${s.completed_nodes} completed, ${s.failed_nodes} failed, ${s.skipped_nodes} skipped of ${s.total_nodes} in ${seconds} s`,
  );
  out(`canvas ${s.canvas_path}`);
  out();
  out(
    formatTable(
      ['GROUP', 'AGENT', 'STATUS', 'COMPLETED', 'FAILED', 'SKIPPED', 'TOTAL'],
      s.groups.map((g) => [
        String(g.group_id),
        g.agent_type,
        g.status,
        String(g.completed_nodes),
        String(g.failed_nodes),
        String(g.skipped_nodes),
        String(g.total_nodes),
      ]),
      [false, false, false, true, true, true, true],
    ),
  );
  const errors = s.groups.flatMap((g) => g.errors.map((e) => ({ ...e, group: String(g.group_id) })));
  if (errors.length) {
    out();
    out('failed nodes:');
    out(
      formatTable(
        ['NODE', 'GROUP', 'ERROR', 'MESSAGE'],
        errors.slice(0, 50).map((e) => [e.node_id, e.group, e.error_type, e.error_message]),
      ),
    );
    if (errors.length > 50) out(`… and ${errors.length - 50} more (canvas-batch status ${s.task_id} --json)`);
  }
  const results = s.groups.flatMap((g) => g.results);
  if (results.length) {
    out();
    out('results:');
    out(
      formatTable(
        ['NODE', 'FILE'],
        results.slice(0, 20).map((r) => [r.node_id, r.file_path]),
      ),
    );
    if (results.length > 20)
      out(`… and ${results.length - 20} more (canvas-batch status ${s.task_id} --json)`);
  }
  if (s.error_message) out(`\nerror: ${s.error_message}`);
}
