import { isIPv4, isIPv6 } from 'node:net';
import * as path from 'node:path';
import {
  OPTION_DEFAULTS,
  type ProcessRole,
  REDIS_DEFAULTS,
  type RedisEngineSettings,
} from './canvas-batch-options';
import { type LlmSettings, parseLlmSettings } from './llm-settings';

/** Every setting of the service, read once from the environment and validated at start-up. */
export interface AppConfig {
  port: number;
  host: string;
  /** Absolute vault path, or `undefined` for the bundled example vault (copied into `DATA_DIR/vault`). */
  vaultRoot: string | undefined;
  dataDir: string;
  agentProvider: 'offline' | LlmSettings['provider'];
  /** The LLM provider's settings; `undefined` for the offline provider. */
  llm: LlmSettings | undefined;
  agentTimeoutMs: number;
  /** Simulated think time: a fixed value, or a range (`MIN-MAX`) spread deterministically over nodes. */
  agentLatencyMs: LatencyRange;
  /**
   * `AGENT_STREAM`: agents report their text as it is written (the offline agent over its latency, the LLM providers
   * from their streaming wire), for the opt-in `task_output_delta` events. Default false.
   */
  agentStream: boolean;
  /** Characters of a node's content an agent is given (`AGENT_MAX_INPUT_CHARS`); the rest is cut, with a note. */
  agentMaxInputChars: number;
  /** Largest result file in bytes (`RESULT_MAX_BYTES`); a longer output is cut, with a note. */
  resultMaxBytes: number;
  globalMaxConcurrent: number;
  /** AIMD on the process-wide limit when the provider answers 429 (`ADAPTIVE_CONCURRENCY`, default on). */
  adaptiveConcurrency: boolean;
  /** The result cache (`RESULT_CACHE=on|off`, default on), its size and its entries' life. */
  resultCache: boolean;
  resultCacheMaxEntries: number;
  resultCacheTtlHours: number;
  sessionTtlMinutes: number;
  bodyLimitBytes: number;
  /** How long a SIGTERM/SIGINT lets running nodes finish before they are left for the next start. */
  shutdownGraceMs: number;
  /** When set (at least 16 characters), every route except `/health` needs `Authorization: Bearer <token>`. */
  apiToken: string | undefined;
  /** Failed token attempts per client per minute before its attempts get 429 (`AUTH_FAILURE_LIMIT`, default 10). */
  authFailureLimit: number;
  /** Start on a non-loopback `HOST` without `API_TOKEN` (`ALLOW_UNAUTHENTICATED`; refused otherwise). */
  allowUnauthenticated: boolean;
  /** Origins allowed by CORS (exact match), default the Obsidian app's `app://obsidian.md`. */
  corsOrigins: string[];
  /** `POST /parallel/execute` requests allowed per client IP per minute; 0 turns the limit off. */
  executeRateLimit: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  logPretty: boolean;
  /** Where learning memory goes: Neo4j when `NEO4J_URI` is set, else `undefined` (the embedded SQLite store). */
  neo4j: { uri: string; user: string; password: string; database: string | undefined } | undefined;
  /**
   * Learning-memory drain loop: events per delivery, longest retry delay, bound of one delivery, bound of the final
   * attempt on shutdown.
   */
  memoryBatchSize: number;
  memoryRetryMaxMs: number;
  memoryAttemptTimeoutMs: number;
  memoryShutdownMs: number;
  /** The distributed engine (`REDIS_URL` set), or undefined for the embedded one. */
  redis: RedisEngineSettings | undefined;
}

export class ConfigValidationError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigValidationError';
  }
}

type Env = Record<string, string | undefined>;

/** Inclusive bounds in ms; `min === max` for a fixed latency. */
export interface LatencyRange {
  min: number;
  max: number;
}

const ROLES: readonly ProcessRole[] = ['both', 'api', 'worker'];
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const NEO4J_SCHEMES = ['bolt:', 'bolt+s:', 'bolt+ssc:', 'neo4j:', 'neo4j+s:', 'neo4j+ssc:'];

/**
 * Parses and validates the environment. Collects every problem before failing, so one start shows them all.
 * Empty strings count as unset (a `.env` copied from `.env.example` keeps its defaults).
 */
export function loadAppConfig(env: Env, cwd = process.cwd()): AppConfig {
  const problems: string[] = [];
  const get = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v === undefined || v === '' ? undefined : v;
  };
  const int = (name: string, def: number, min: number, max: number): number => {
    const raw = get(name);
    if (raw === undefined) return def;
    const n = Number(raw);
    if (!/^-?\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) {
      problems.push(`${name} must be an integer between ${min} and ${max} (got "${raw}")`);
      return def;
    }
    return n;
  };

  const latency = (): LatencyRange => {
    const raw = get('AGENT_LATENCY_MS');
    const m = raw === undefined ? undefined : /^(\d+)(?:\s*-\s*(\d+))?$/.exec(raw);
    const min = m ? Number(m[1]) : OPTION_DEFAULTS.agentLatencyMs;
    const max = m?.[2] !== undefined ? Number(m[2]) : min;
    if (raw !== undefined && (!m || max < min || max > 600_000)) {
      problems.push(
        `AGENT_LATENCY_MS must be milliseconds (e.g. 50) or a range MIN-MAX (e.g. 20-80), at most 600000 (got "${raw}")`,
      );
      return { min: OPTION_DEFAULTS.agentLatencyMs, max: OPTION_DEFAULTS.agentLatencyMs };
    }
    return { min, max };
  };

  const bool = (name: string, def: boolean): boolean => {
    const raw = get(name);
    if (raw === undefined) return def;
    if (!['true', 'false', '1', '0'].includes(raw)) {
      problems.push(`${name} must be true or false (got "${raw}")`);
      return def;
    }
    return raw === 'true' || raw === '1';
  };

  // on/off settings (`RESULT_CACHE`) also take what `bool` takes
  const onOff = (name: string, def: boolean): boolean => {
    const raw = get(name);
    if (raw === undefined) return def;
    if (!['on', 'off', 'true', 'false', '1', '0'].includes(raw)) {
      problems.push(`${name} must be on or off (got "${raw}")`);
      return def;
    }
    return raw === 'on' || raw === 'true' || raw === '1';
  };

  const llm = parseLlmSettings(get, int, problems, cwd);
  const logLevel = (get('LOG_LEVEL') ?? 'info') as AppConfig['logLevel'];
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);
  const pretty = get('LOG_PRETTY');
  if (pretty !== undefined && !['true', 'false', '1', '0'].includes(pretty)) {
    problems.push(`LOG_PRETTY must be true or false (got "${pretty}")`);
  }
  const vault = get('VAULT_ROOT');
  const corsOrigins = (get('CORS_ORIGINS') ?? 'app://obsidian.md')
    .split(',')
    .map((o) => o.trim())
    .filter((o) => o !== '');
  for (const origin of corsOrigins) {
    if (!/^[a-z][a-z0-9+.-]*:\/\/[^/\s?#]+$/i.test(origin))
      problems.push(
        `CORS_ORIGINS must be a comma-separated list of origins like app://obsidian.md or http://localhost:5173 (got "${origin}")`,
      );
  }

  // Never echo NEO4J_PASSWORD (nor a URI that might carry credentials) in a problem.
  const neo4j = (): AppConfig['neo4j'] => {
    const uri = get('NEO4J_URI');
    const user = get('NEO4J_USER');
    const password = env.NEO4J_PASSWORD; // not trimmed: a password may end in a space
    const database = get('NEO4J_DATABASE');
    if (uri === undefined) {
      if (user !== undefined || (password ?? '') !== '' || database !== undefined) {
        problems.push(
          'NEO4J_USER, NEO4J_PASSWORD and NEO4J_DATABASE need NEO4J_URI (unset them for the embedded store)',
        );
      }
      return undefined;
    }
    let parsed: URL | undefined;
    try {
      parsed = new URL(uri);
    } catch {
      /* reported below */
    }
    if (!parsed || !NEO4J_SCHEMES.includes(parsed.protocol) || !parsed.hostname) {
      problems.push(
        `NEO4J_URI must be a URI with scheme ${NEO4J_SCHEMES.map((s) => s.slice(0, -1)).join(', ')} and a host, e.g. bolt://127.0.0.1:7687`,
      );
    } else if (parsed.username || parsed.password) {
      problems.push('NEO4J_URI must not carry credentials: set NEO4J_USER and NEO4J_PASSWORD');
    }
    if (password === undefined || password === '')
      problems.push('NEO4J_PASSWORD is required when NEO4J_URI is set');
    return { uri, user: user ?? 'neo4j', password: password ?? '', database };
  };

  // Never echo REDIS_URL in a problem: it may carry a password.
  const redis = (): AppConfig['redis'] => {
    const url = get('REDIS_URL');
    const prefix = get('REDIS_PREFIX');
    const role = get('PROCESS_ROLE');
    const instanceId = get('INSTANCE_ID');
    const leaseMs = int('TASK_LEASE_MS', REDIS_DEFAULTS.leaseMs, 1_000, 600_000);
    if (role !== undefined && !ROLES.includes(role as ProcessRole))
      problems.push(`PROCESS_ROLE must be one of ${ROLES.join(', ')} (got "${role}")`);
    if (prefix !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(prefix))
      problems.push(`REDIS_PREFIX must be 1-64 letters, digits, '_', '.' or '-' (got "${prefix}")`);
    if (instanceId !== undefined && !/^[A-Za-z0-9_.:-]{1,128}$/.test(instanceId))
      problems.push(`INSTANCE_ID must be 1-128 letters, digits, '_', '.', ':' or '-' (got "${instanceId}")`);
    if (url === undefined) {
      if (role !== undefined && role !== 'both')
        problems.push('PROCESS_ROLE needs REDIS_URL (one process without Redis does everything)');
      return undefined;
    }
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      /* reported below */
    }
    if (!parsed || !['redis:', 'rediss:'].includes(parsed.protocol) || !parsed.hostname) {
      problems.push('REDIS_URL must be a URL like redis://127.0.0.1:6379 (or rediss:// for TLS)');
      return undefined;
    }
    return {
      url,
      ...(prefix && { prefix }),
      ...(role && { role: role as ProcessRole }),
      leaseMs,
      ...(instanceId && { instanceId }),
    };
  };

  const config: AppConfig = {
    port: int('PORT', 3000, 0, 65535),
    host: get('HOST') ?? '127.0.0.1',
    vaultRoot: vault === undefined ? undefined : path.resolve(cwd, vault),
    dataDir: path.resolve(cwd, get('DATA_DIR') ?? './data'),
    agentProvider: llm?.provider ?? 'offline',
    llm,
    agentTimeoutMs: int('AGENT_TIMEOUT_MS', OPTION_DEFAULTS.agentTimeoutMs, 1, 3_600_000),
    agentLatencyMs: latency(),
    // an LLM provider read (and validated) it with its own settings
    agentStream: llm ? llm.stream : bool('AGENT_STREAM', OPTION_DEFAULTS.agentStream),
    agentMaxInputChars: int('AGENT_MAX_INPUT_CHARS', OPTION_DEFAULTS.maxInputChars, 1_000, 16 * 1024 * 1024),
    resultMaxBytes: int('RESULT_MAX_BYTES', OPTION_DEFAULTS.maxResultBytes, 64 * 1024, 64 * 1024 * 1024),
    globalMaxConcurrent: int('GLOBAL_MAX_CONCURRENT', OPTION_DEFAULTS.globalMaxConcurrent, 1, 1000),
    adaptiveConcurrency: bool('ADAPTIVE_CONCURRENCY', OPTION_DEFAULTS.adaptiveConcurrency),
    resultCache: onOff('RESULT_CACHE', OPTION_DEFAULTS.resultCache),
    resultCacheMaxEntries: int(
      'RESULT_CACHE_MAX_ENTRIES',
      OPTION_DEFAULTS.resultCacheMaxEntries,
      1,
      10_000_000,
    ),
    resultCacheTtlHours: int('RESULT_CACHE_TTL_HOURS', OPTION_DEFAULTS.resultCacheTtlHours, 1, 87_600),
    sessionTtlMinutes: int('SESSION_TTL_MINUTES', OPTION_DEFAULTS.sessionTtlMinutes, 1, 525_600),
    bodyLimitBytes: int('BODY_LIMIT_BYTES', 5 * 1024 * 1024, 1024, 100 * 1024 * 1024),
    shutdownGraceMs: int('SHUTDOWN_GRACE_MS', OPTION_DEFAULTS.shutdownGraceMs, 0, 3_600_000),
    apiToken: get('API_TOKEN'),
    authFailureLimit: int('AUTH_FAILURE_LIMIT', 10, 1, 100_000),
    allowUnauthenticated: bool('ALLOW_UNAUTHENTICATED', false),
    corsOrigins,
    executeRateLimit: int('EXECUTE_RATE_LIMIT', 60, 0, 1_000_000),
    logLevel,
    logPretty: pretty === undefined ? Boolean(process.stdout.isTTY) : pretty === 'true' || pretty === '1',
    neo4j: neo4j(),
    memoryBatchSize: int('MEMORY_BATCH_SIZE', OPTION_DEFAULTS.memoryDelivery.batchSize, 1, 10_000),
    memoryRetryMaxMs: int('MEMORY_RETRY_MAX_MS', OPTION_DEFAULTS.memoryDelivery.retryMaxMs, 100, 3_600_000),
    memoryAttemptTimeoutMs: int(
      'MEMORY_ATTEMPT_TIMEOUT_MS',
      OPTION_DEFAULTS.memoryDelivery.attemptTimeoutMs,
      100,
      600_000,
    ),
    memoryShutdownMs: int('MEMORY_SHUTDOWN_MS', OPTION_DEFAULTS.memoryDelivery.shutdownAttemptMs, 0, 600_000),
    redis: redis(),
  };
  problems.push(...accessProblems(config));
  if (problems.length) throw new ConfigValidationError(problems);
  return config;
}

/** Shortest `API_TOKEN` accepted: anything shorter could be guessed. */
export const MIN_API_TOKEN_LENGTH = 16;

/** A token too short to resist guessing, or a service reachable from other machines without one. Never shows the token. */
function accessProblems(config: Pick<AppConfig, 'apiToken' | 'host' | 'allowUnauthenticated'>): string[] {
  const problems: string[] = [];
  if (config.apiToken !== undefined && [...config.apiToken].length < MIN_API_TOKEN_LENGTH) {
    problems.push(
      `API_TOKEN must be at least ${MIN_API_TOKEN_LENGTH} characters long; generate one with: node -e "console.log(require('node:crypto').randomBytes(24).toString('base64url'))"`,
    );
  }
  if (config.apiToken === undefined && !config.allowUnauthenticated && !isLoopbackHost(config.host)) {
    problems.push(
      `HOST ${config.host} is not a loopback address, so other machines could use the service without a token: set API_TOKEN (at least ${MIN_API_TOKEN_LENGTH} characters), bind to 127.0.0.1, or set ALLOW_UNAUTHENTICATED=true to run without a token on purpose`,
    );
  }
  return problems;
}

/** `localhost`, 127.0.0.0/8, `::1` and IPv4-mapped 127.x addresses: only this machine can connect. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost') return true;
  if (isIPv4(h)) return h.startsWith('127.');
  if (!isIPv6(h)) return false;
  try {
    const canonical = new URL(`http://[${h}]`).hostname;
    return canonical === '[::1]' || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(canonical);
  } catch {
    return false; // a zone id (fe80::1%eth0): a link-local address, not loopback
  }
}
