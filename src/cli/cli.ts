import { Command, CommanderError, Option } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseEnv } from 'node:util';
import type { AgentCatalogueDto } from '../agent';
import type { CanvasNodesDto } from '../dashboard';
import type {
  CancelResponseDto,
  EstimateDto,
  ExecuteAcceptedDto,
  TaskListDto,
  TaskStatusDto,
} from '../orchestrator';
import type { PlanResponseDto } from '../planning';
import { ApiClient, ApiError } from './api-client';
import {
  BarsView,
  BatchProgress,
  countsText,
  LinesView,
  type ProgressView,
  renderBar,
  type TerminalStream,
} from './progress';
import { formatTable } from './table';
import { type OutputDeltaData, TextFocus } from './text-focus';

/**
 * Exit codes, one per outcome, the same however the CLI is launched (`node bin/canvas-batch.js`, `npx canvas-batch`,
 * an npm script): first by the batch's final status, then for what happened around it.
 */
export const EXIT = {
  completed: 0,
  /** Every node failed, or the batch could not run. */
  failed: 1,
  /** Some nodes completed, some failed. */
  partialFailure: 2,
  /** The service refused a request (an HTTP error). */
  apiError: 3,
  /** The batch was cancelled (from the Ctrl-C prompt, `canvas-batch cancel` or the dashboard). */
  cancelled: 4,
  usage: 64,
  /** The service could not be reached (EX_UNAVAILABLE). */
  unreachable: 69,
  /** Stopped following (Ctrl-D at the prompt, or Ctrl-C before the batch started): the batch keeps running. */
  interrupted: 130,
} as const;

export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: TerminalStream & { isTTY?: boolean };
  /** A terminal's stdin can be read a key at a time (`setRawMode`); the Ctrl-C prompt needs one. */
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?(mode: boolean): unknown };
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
  if (status === 'cancelled') return EXIT.cancelled;
  return EXIT.failed;
}

/**
 * The service's URL when neither `--url` nor `CANVAS_BATCH_URL` gives it: where a service started with this `PORT`
 * and `HOST` listens (a wildcard bind address is reached on loopback).
 */
export function serviceUrl(env: Record<string, string | undefined>): string {
  if (env.CANVAS_BATCH_URL) return env.CANVAS_BATCH_URL;
  const port = env.PORT?.trim() || '3000';
  if (port === '0')
    throw new UsageError('PORT=0 lets the service pick a free port: give --url (or CANVAS_BATCH_URL)');
  if (!/^\d{1,5}$/.test(port)) throw new UsageError(`PORT "${port}" is not a port number`);
  const host = env.HOST?.trim() || '127.0.0.1';
  const reach =
    host === '0.0.0.0'
      ? '127.0.0.1'
      : host === '::' || host === '[::]'
        ? '[::1]'
        : host.includes(':') && !host.startsWith('[')
          ? `[${host}]`
          : host;
  return `http://${reach}:${port}`;
}

/** The variables of a `.env` file the CLI reads, as the service reads its own at start-up. */
const DOTENV_KEYS = ['CANVAS_BATCH_URL', 'CANVAS_BATCH_TOKEN', 'API_TOKEN', 'PORT', 'HOST'] as const;

/**
 * The CLI's variables from `.env` in `dir` (the service's own configuration file, when the CLI runs where the
 * service does); `{}` without one. The environment wins over the file, as for the service.
 */
export function readDotEnv(dir: string, warn: (line: string) => void): Record<string, string> {
  const file = path.join(dir, '.env');
  if (!existsSync(file)) return {};
  let parsed: NodeJS.Dict<string>;
  try {
    parsed = parseEnv(readFileSync(file, 'utf8'));
  } catch (e) {
    warn(`canvas-batch: ${file} ignored: ${(e as Error).message}`);
    return {};
  }
  const picked: Record<string, string> = {};
  for (const k of DOTENV_KEYS) {
    const v = parsed[k];
    if (v) picked[k] = v;
  }
  return picked;
}

/**
 * Parses `--nodes`: `all`, `color:N` (preset 1–6 or `#rrggbb`), or comma-separated node ids. `all` and `color:`
 * leave out group nodes and every card the service generated (result files, question, score and hint cards),
 * unless `includeGenerated`; ids are taken as given.
 */
export function selectNodes(
  nodes: CanvasNodesDto['nodes'],
  spec: string,
  options: { includeGenerated?: boolean } = {},
): string[] {
  const runnable = nodes.filter((n) => n.type !== 'group' && (options.includeGenerated || !n.result));
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
    .addOption(
      new Option(
        '--url <url>',
        'service URL (or CANVAS_BATCH_URL; default http://HOST:PORT, read as the service reads them: environment, then ./.env; else http://127.0.0.1:3000)',
      ),
    )
    .addOption(new Option('--token <token>', 'API token (or CANVAS_BATCH_TOKEN / API_TOKEN)'))
    .option('--json', 'machine-readable JSON on stdout (no progress bars)')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .showHelpAfterError()
    .addHelpText(
      'after',
      [
        '',
        'Exit codes: 0 completed, 1 failed, 2 partial failure, 3 refused by the service, 4 cancelled,',
        '64 usage error, 69 service unreachable, 130 stopped following (the batch keeps running).',
        'Ctrl-C while following on a terminal asks "Cancel batch <id>? [y/N]" (one key: y or Ctrl-C cancels,',
        'Ctrl-D stops following, anything else goes on); elsewhere it cancels the batch gracefully.',
      ].join('\n'),
    );

  const client = (cmd: Command): { api: ApiClient; g: GlobalOptions } => {
    const g = cmd.optsWithGlobals<GlobalOptions>();
    const url = g.url ?? serviceUrl(io.env);
    const token = g.token ?? (io.env.CANVAS_BATCH_TOKEN || io.env.API_TOKEN);
    return { api: new ApiClient({ baseUrl: url, token: token || undefined }), g };
  };

  const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

  program
    .command('run')
    .description('start a batch over a canvas; with --wait, follow it live and exit by its final status')
    .argument('<canvas>', 'vault-relative canvas path, e.g. Biology/cells.canvas')
    .option(
      '--agent <type>',
      'agent for a group (repeat with --nodes for more groups; see `agents`)',
      collect,
    )
    .option('--auto', 'route each node to an agent on its content when it runs (agent_type auto; no --agent)')
    .option('--nodes <spec>', 'all | color:N | id,id,... (one per --agent; default all)', collect)
    .option(
      '--include-generated',
      'let all and color:N include the cards the service generated (results, questions, scores, hints)',
    )
    .option('--max-concurrent <n>', 'agents of this batch running at once (1-50)', parseIntArg)
    .option('--timeout <seconds>', 'the whole batch deadline in seconds (60-3600)', parseIntArg)
    .option('--wait', 'follow the batch live until it ends')
    .option(
      '--budget <usd>',
      'stop starting nodes once their expected cost would pass USD (needs a price)',
      parseUsdArg,
    )
    .option('--yes', 'start without asking, whatever the estimate says')
    .option('--focus <node-id>', FOCUS_HELP)
    .action(async (canvas: string, opts: RunOptions, cmd: Command) => {
      const { api, g } = client(cmd);
      const specs = opts.nodes ?? [];
      if (opts.auto && opts.agent) throw new UsageError('give --agent or --auto, not both');
      if (!opts.auto && !opts.agent)
        throw new UsageError("required option '--agent <type>' not specified (or --auto)");
      // --auto: one auto group per --nodes (or all nodes)
      opts.agent ??= (specs.length ? specs : ['all']).map(() => AUTO_AGENT);
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
        const ids = selectNodes(listing.nodes, spec, { includeGenerated: opts.includeGenerated });
        if (ids.length === 0) {
          const generated = selectNodes(listing.nodes, spec, { includeGenerated: true }).length;
          throw new UsageError(
            `--nodes ${spec} matches no node of ${listing.canvas_path}` +
              (generated ? ` (${generated} generated card(s) left out: --include-generated)` : ''),
          );
        }
        return { group_id: i + 1, agent_type: agent, node_ids: ids };
      });
      const body = {
        canvas_path: listing.canvas_path,
        groups,
        ...(opts.maxConcurrent === undefined ? {} : { max_concurrent: opts.maxConcurrent }),
        ...(opts.timeout === undefined ? {} : { timeout: opts.timeout }),
        ...(opts.budget === undefined ? {} : { budget_usd: opts.budget }),
      };
      // the estimate first: what it will cost and take; on a terminal, a batch that may cost money asks first
      const estimate = await api
        .request<EstimateDto>('POST', '/parallel/estimate', body)
        .catch((e: unknown) => {
          // a service from before the estimate: go on without it
          const noRoute =
            e instanceof ApiError &&
            (e.status === 405 || (e.status === 404 && !e.problem?.type?.includes('canvas')));
          if (noRoute) return undefined;
          throw e;
        });
      if (estimate && !g.json) estimateLines(estimate, opts.budget).forEach((line) => err(line));
      const paid =
        estimate !== undefined && (estimate.total.cost_usd === null || estimate.total.cost_usd > 0);
      if (paid && !opts.yes && !g.json && io.stdin.isTTY === true && io.stderr.isTTY === true) {
        if (!(await confirm(io, 'Start the batch? [y/N] '))) {
          err('not started');
          return;
        }
      }
      const started = await api.request<ExecuteAcceptedDto>('POST', '/parallel/execute', body);
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
      exitCode = await follow(api, started.task_id, g, io, opts.focus);
    });

  program
    .command('plan')
    .description('suggest groups, agents and priorities for a canvas (nothing is started)')
    .argument('<canvas>', 'vault-relative canvas path, e.g. Biology/cells.canvas')
    .option('--max-groups <n>', 'at most this many groups (1-20)', parseIntArg)
    .option('--colour <colour>', 'only nodes of this colour: 1-6 or #rrggbb')
    .action(async (canvas: string, opts: { maxGroups?: number; colour?: string }, cmd: Command) => {
      const { api, g } = client(cmd);
      const plan = await api.request<PlanResponseDto>('POST', '/parallel/plan', {
        canvas_path: canvas,
        ...(opts.maxGroups === undefined ? {} : { max_groups: opts.maxGroups }),
        ...(opts.colour === undefined ? {} : { colour: opts.colour }),
      });
      if (g.json) return json(plan);
      printPlan(plan, out);
    });

  program
    .command('watch')
    .description('follow a task live until it ends; exit by its final status')
    .argument('<task-id>')
    .option('--focus <node-id>', FOCUS_HELP)
    .action(async (taskId: string, opts: { focus?: string }, cmd: Command) => {
      const { api, g } = client(cmd);
      exitCode = await follow(api, taskId, g, io, opts.focus);
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
          ['TASK', 'STATUS', 'PROGRESS', 'COMPLETED', 'FAILED', 'SKIPPED', 'TOTAL', 'CANVAS', 'CREATED'],
          list.tasks.map((t) => [
            t.task_id,
            t.status,
            // segmented like the live bars: a cancelled or partly failed task is never a full bar
            renderBar(
              {
                total: t.total_nodes,
                completed: t.completed_nodes,
                failed: t.failed_nodes,
                skipped: t.skipped_nodes,
              },
              10,
            ),
            String(t.completed_nodes),
            String(t.failed_nodes),
            String(t.skipped_nodes),
            String(t.total_nodes),
            t.canvas_path,
            t.created_at,
          ]),
          [false, false, false, true, true, true, true],
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
      return e.status === 0 ? EXIT.unreachable : EXIT.apiError;
    }
    err(`error: ${e instanceof Error ? e.message : String(e)}`);
    return EXIT.apiError;
  }
}

const FOCUS_HELP =
  "on a terminal, show this node's text as it is written (AGENT_STREAM=true); default: the node that started last";

/** `agent_type` of a routed group (the agent module's AUTO_AGENT; not imported: the CLI loads no service code). */
const AUTO_AGENT = 'auto';

interface RunOptions {
  focus?: string;
  agent?: string[];
  auto?: boolean;
  nodes?: string[];
  includeGenerated?: boolean;
  maxConcurrent?: number;
  timeout?: number;
  wait?: boolean;
  budget?: number;
  yes?: boolean;
}

const VERSION = (
  JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }
).version;

function parseIntArg(value: string): number {
  if (!/^\d+$/.test(value.trim())) throw new UsageError(`"${value}" is not a whole number`);
  return Number(value);
}

function parseUsdArg(value: string): number {
  if (!/^\d+(\.\d+)?$/.test(value.trim()))
    throw new UsageError(`--budget "${value}" is not an amount of USD (e.g. 0.50)`);
  return Number(value);
}

/** `$0.0123`: a cost to the micro-dollar, trailing zeros dropped. */
function usd(n: number): string {
  return `$${Number(n.toFixed(6))}`;
}

/** `850 ms`, `42 s`, `3 min 20 s`. */
function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

/** The estimate as the run command prints it before starting: per group, then the total. */
export function estimateLines(e: EstimateDto, budget?: number): string[] {
  const price = e.price
    ? `${usd(e.price.input_per_mtok)} in / ${usd(e.price.output_per_mtok)} out per million tokens`
    : 'unknown price';
  const cost = (c: number | null): string => (c === null ? 'unknown price' : usd(c));
  const time = (ms: number | null): string => (ms === null ? 'duration unknown' : `~${duration(ms)}`);
  const lines = [
    `estimate: ${e.provider}${e.model ? `/${e.model}` : ''}, ${price}, ${e.concurrency} at once (tokens ±${Math.round(e.tokens.tolerance * 100)} %)`,
    ...e.groups.map(
      (g) =>
        `  group ${g.group_id} ${g.agent_type}: ${g.nodes} node(s), ${g.input_tokens} in + ${g.output_tokens} out tokens` +
        `${g.output_basis === 'max_output_tokens' ? ' (at most)' : ''}, ${cost(g.cost_usd)}, ${g.expected_ms === null ? 'duration unknown' : `~${duration(g.expected_ms)} of work`}`,
    ),
    `  total: ${e.total.nodes} node(s), ${e.total.input_tokens} in + ${e.total.output_tokens} out tokens, ${cost(e.total.cost_usd)}, ${time(e.total.expected_duration_ms)}`,
  ];
  if (budget !== undefined) {
    const over = e.total.cost_usd !== null && e.total.cost_usd > budget;
    lines.push(
      `  budget: ${usd(budget)}${over ? ' (less than the estimate: nodes past it fail with BUDGET_EXCEEDED)' : ''}`,
    );
  }
  return lines;
}

/** Asks `question` on the terminal; one key: `y` says yes, anything else (or the end of input) no. */
function confirm(io: CliIo, question: string): Promise<boolean> {
  io.stderr.write(question);
  return new Promise((resolve) => {
    const stop = listenKeys(io.stdin, (key) => {
      stop();
      io.stderr.write('\n');
      resolve(key !== undefined && /^[yY]/.test(key));
    });
  });
}

/** What a key pressed at the Ctrl-C prompt means. */
export type PromptAnswer = 'yes' | 'no' | 'detach';

/**
 * The prompt's keys: `y` or Ctrl-C (pressed twice, the user means it) say yes; Ctrl-D (end of input, or stdin
 * closed) stops following and leaves the batch running; any other key says no.
 */
export function answerFor(key: string | undefined): PromptAnswer {
  if (key === undefined || key.startsWith('\x04')) return 'detach';
  if (/^[yY]/.test(key) || key.startsWith('\x03')) return 'yes';
  return 'no';
}

/**
 * A terminal's keys, one at a time, for as long as the CLI follows a batch: stdin in raw mode, so Ctrl-C is the byte
 * 0x03, not a SIGINT. That keeps the signal from the processes that launched the CLI: `npx` and npm scripts run it
 * under `sh -c`, and dash, once its child has exited, kills itself with a SIGINT it saw, whatever the child's exit
 * code — so `npx canvas-batch` would end 130 where `node bin/canvas-batch.js` ends 4. Raw mode also keeps the keys
 * typed meanwhile from being echoed into the bars. `onKey(undefined)`: stdin ended.
 */
function listenKeys(stdin: CliIo['stdin'], onKey: (key: string | undefined) => void): () => void {
  const onData = (chunk: Buffer | string): void => onKey(chunk.toString());
  const onEnd = (): void => onKey(undefined);
  stdin.setRawMode?.(true);
  stdin.on('data', onData);
  stdin.once('end', onEnd);
  stdin.resume();
  return () => {
    stdin.off('data', onData);
    stdin.off('end', onEnd);
    stdin.setRawMode?.(false);
    stdin.pause();
  };
}

/**
 * Follows a task live (bars on a terminal, lines otherwise, nothing with --json) until `session_completed`, then
 * prints the summary (or the final status as JSON) and exits by the final status.
 *
 * On a terminal (stdin and stderr both terminals, no --json), Ctrl-C pauses the bars and asks `Cancel batch <id>?
 * [y/N]` on its own line; the answer is one key. Once a cancel was asked for, the next Ctrl-C asks whether to abort
 * the running nodes too. Anywhere else, the first SIGINT cancels the batch gracefully without a question (later ones
 * are ignored: the cancel is under way). Either way the CLI follows the batch to its end and exits by its status.
 */
async function follow(
  api: ApiClient,
  taskId: string,
  g: GlobalOptions,
  io: CliIo,
  focusOn?: string,
): Promise<number> {
  const out = (line = ''): void => void io.stdout.write(`${line}\n`);
  const initial = await api.request<TaskStatusDto>('GET', `/parallel/status/${encodeURIComponent(taskId)}`);
  const progress = new BatchProgress(initial);
  const interactive =
    !g.json &&
    io.stderr.isTTY === true &&
    io.stdin.isTTY === true &&
    typeof io.stdin.setRawMode === 'function';
  const stream = new AbortController();
  let detached = false;
  let cancelAsked = false;
  let abortAsked = false;
  let question: string | undefined;
  // keys before bars: once a bar is on screen, a Ctrl-C is a key (see `listenKeys`)
  let bars: BarsView | undefined;
  const stopKeys = interactive
    ? listenKeys(io.stdin, (key) => {
        if (!bars) return;
        if (question !== undefined) answer(bars, key);
        else if (key?.includes('\x03')) ask(bars);
      })
    : undefined;
  // on a terminal, the focused node's text grows under the bars (the service sends it with AGENT_STREAM=true)
  const text = new TextFocus(focusOn);
  if (!g.json && io.stderr.isTTY)
    bars = new BarsView(io.stderr, progress, {
      color: !io.env.NO_COLOR && io.env.TERM !== 'dumb',
      panel: (columns, rows) => text.lines(columns, rows),
    });
  const view: ProgressView | undefined = bars ?? (g.json ? undefined : new LinesView(io.stderr, progress));
  const note = (line: string): void => (view ? view.log(line) : void io.stderr.write(`${line}\n`));

  const cancel = async (mode: 'graceful' | 'abort'): Promise<void> => {
    try {
      const res = await api.request<CancelResponseDto>(
        'DELETE',
        `/parallel/cancel/${encodeURIComponent(taskId)}${mode === 'abort' ? '?mode=abort' : ''}`,
      );
      note(res.message);
    } catch (e) {
      note(`cancel failed: ${(e as Error).message}`);
    }
  };

  const ask = (view: BarsView): void => {
    if (question !== undefined || abortAsked) return;
    question = cancelAsked
      ? `Abort the nodes of batch ${taskId} that are running? [y/N] `
      : `Cancel batch ${taskId}? [y/N] `;
    view.pause(question);
  };

  const answer = (view: BarsView, key: string | undefined): void => {
    if (question === undefined) return;
    const a = answerFor(key);
    view.resume(
      `${question}${{ yes: 'yes', no: 'no: continuing', detach: 'no answer: leaving it running' }[a]}`,
    );
    question = undefined;
    if (a === 'detach') {
      detached = true;
      note(`task ${taskId} keeps running (canvas-batch watch ${taskId})`);
      stream.abort();
    } else if (a === 'yes') {
      const mode = cancelAsked ? 'abort' : 'graceful';
      cancelAsked = true;
      abortAsked ||= mode === 'abort';
      void cancel(mode);
    }
  };

  // a SIGINT still comes from `kill -INT`, or from a terminal when stdin is not one
  const unregister = io.onInterrupt(() => {
    if (detached) return;
    if (interactive && bars) return ask(bars);
    if (cancelAsked) return;
    cancelAsked = true;
    note(
      `interrupted: cancelling batch ${taskId}; running nodes finish (canvas-batch cancel ${taskId} --abort stops them)`,
    );
    void cancel('graceful');
  });
  let final: TaskStatusDto | undefined;
  try {
    const onDelta =
      bars &&
      ((d: OutputDeltaData): void => {
        text.apply(d);
        bars?.update();
      });
    for await (const e of api.events(taskId, stream.signal, onDelta)) {
      if (e.type === 'task_completed' || e.type === 'task_failed') text.settle(e.data.node_id);
      view?.update(progress, progress.apply(e));
    }
    if (!detached) {
      final = await api.request<TaskStatusDto>('GET', `/parallel/status/${encodeURIComponent(taskId)}`);
      progress.reconcile(final);
    }
  } finally {
    unregister();
    stopKeys?.();
    if (question !== undefined) {
      // the batch ended while the question was open: nothing is left to ask
      bars?.resume(`${question}(the batch ended)`);
      question = undefined;
    }
    view?.stop();
  }
  if (!final) return EXIT.interrupted;
  if (g.json) out(JSON.stringify(final, null, 2));
  else printSummary(final, out);
  return exitCodeFor(final.status);
}

/** The end-of-batch table: totals, one row per group, then failures and result files. */
/** A plan for people: one line per group, why, the clustering's quality, what was left out, the command to run it. */
export function printPlan(plan: PlanResponseDto, out: (line?: string) => void): void {
  out(
    formatTable(
      ['GROUP', 'PRIORITY', 'AGENT', 'CONFIDENCE', 'NODES', 'NAME'],
      plan.groups.map((p) => [
        p.group_id,
        p.priority,
        p.agent_type + (p.routed_by === 'model' ? ' (model)' : ''),
        p.confidence.toFixed(2),
        String(p.node_ids.length),
        p.name,
      ]),
      [false, false, false, true, true],
    ),
  );
  out();
  for (const p of plan.groups) {
    out(`${p.group_id}: ${p.reason}${p.priority_reason ? `; ${p.priority}: ${p.priority_reason}` : ''}`);
  }
  const { k, silhouette, warning } = plan.clustering;
  out(`clustering: k=${k}, silhouette ${silhouette ?? 'n/a'}${warning ? ` (${warning})` : ''}`);
  if (plan.left_out.length) {
    const counts = new Map<string, number>();
    for (const l of plan.left_out) counts.set(l.reason, (counts.get(l.reason) ?? 0) + 1);
    out(`left out: ${[...counts].map(([reason, n]) => `${n} ${reason}`).join(', ')}`);
  }
  const args = plan.execute.groups.map((e) => `--agent ${e.agent_type} --nodes ${e.node_ids.join(',')}`);
  out(`run it: canvas-batch run ${quoteArg(plan.canvas_path)} ${args.join(' ')}`);
}

/** A shell argument as typed (quoted when it has a space or a quote). */
function quoteArg(s: string): string {
  return /^[\w./\-\p{L}]+$/u.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function printSummary(s: TaskStatusDto, out: (line?: string) => void): void {
  const seconds = s.performance_metrics.total_duration_seconds;
  out(
    `task ${s.task_id} ${s.status}: ${countsText({ total: s.total_nodes, completed: s.completed_nodes, failed: s.failed_nodes, skipped: s.skipped_nodes })} in ${seconds} s`,
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
    // an `auto` group's nodes: the agent each was routed to; a result the cache gave back says so
    const routed = results.some((r) => r.agent_type !== undefined);
    const file = (r: (typeof results)[number]): string =>
      r.cached ? `${r.file_path} (cached)` : r.file_path;
    out(
      formatTable(
        routed ? ['NODE', 'AGENT', 'FILE'] : ['NODE', 'FILE'],
        results
          .slice(0, 20)
          .map((r) => (routed ? [r.node_id, r.agent_type ?? '', file(r)] : [r.node_id, file(r)])),
      ),
    );
    if (results.length > 20)
      out(`… and ${results.length - 20} more (canvas-batch status ${s.task_id} --json)`);
  }
  if (s.error_message) out(`\nerror: ${s.error_message}`);
}
