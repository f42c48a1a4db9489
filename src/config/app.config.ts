import * as path from 'node:path';
import { type LlmSettings, parseLlmSettings } from '../agent/llm/llm-settings';

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
  globalMaxConcurrent: number;
  /** AIMD on the process-wide limit when the provider answers 429 (`ADAPTIVE_CONCURRENCY`, default on). */
  adaptiveConcurrency: boolean;
  sessionTtlMinutes: number;
  bodyLimitBytes: number;
  /** How long a SIGTERM/SIGINT lets running nodes finish before they are left for the next start. */
  shutdownGraceMs: number;
  /** When set, every route except `/health` needs `Authorization: Bearer <token>`. */
  apiToken: string | undefined;
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
    const min = m ? Number(m[1]) : 0;
    const max = m?.[2] !== undefined ? Number(m[2]) : min;
    if (raw !== undefined && (!m || max < min || max > 600_000)) {
      problems.push(
        `AGENT_LATENCY_MS must be milliseconds (e.g. 50) or a range MIN-MAX (e.g. 20-80), at most 600000 (got "${raw}")`,
      );
      return { min: 0, max: 0 };
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

  const llm = parseLlmSettings(get, int, problems);
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

  const config: AppConfig = {
    port: int('PORT', 3000, 0, 65535),
    host: get('HOST') ?? '127.0.0.1',
    vaultRoot: vault === undefined ? undefined : path.resolve(cwd, vault),
    dataDir: path.resolve(cwd, get('DATA_DIR') ?? './data'),
    agentProvider: llm?.provider ?? 'offline',
    llm,
    agentTimeoutMs: int('AGENT_TIMEOUT_MS', 120_000, 1, 3_600_000),
    agentLatencyMs: latency(),
    globalMaxConcurrent: int('GLOBAL_MAX_CONCURRENT', 12, 1, 1000),
    adaptiveConcurrency: bool('ADAPTIVE_CONCURRENCY', true),
    sessionTtlMinutes: int('SESSION_TTL_MINUTES', 30, 1, 525_600),
    bodyLimitBytes: int('BODY_LIMIT_BYTES', 5 * 1024 * 1024, 1024, 100 * 1024 * 1024),
    shutdownGraceMs: int('SHUTDOWN_GRACE_MS', 30_000, 0, 3_600_000),
    apiToken: get('API_TOKEN'),
    corsOrigins,
    executeRateLimit: int('EXECUTE_RATE_LIMIT', 60, 0, 1_000_000),
    logLevel,
    logPretty: pretty === undefined ? Boolean(process.stdout.isTTY) : pretty === 'true' || pretty === '1',
    neo4j: neo4j(),
    memoryBatchSize: int('MEMORY_BATCH_SIZE', 500, 1, 10_000),
    memoryRetryMaxMs: int('MEMORY_RETRY_MAX_MS', 30_000, 100, 3_600_000),
    memoryAttemptTimeoutMs: int('MEMORY_ATTEMPT_TIMEOUT_MS', 30_000, 100, 600_000),
    memoryShutdownMs: int('MEMORY_SHUTDOWN_MS', 5_000, 0, 600_000),
  };
  if (problems.length) throw new ConfigValidationError(problems);
  return config;
}
