import * as path from 'node:path';
import { ConfigValidationError, isLoopbackHost, loadAppConfig } from './app.config';

const CWD = '/srv/canvas-batch';

function problemsOf(env: Record<string, string | undefined>): string[] {
  try {
    loadAppConfig(env, CWD);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigValidationError);
    return (err as ConfigValidationError).problems;
  }
  throw new Error('expected a ConfigValidationError');
}

describe('loadAppConfig', () => {
  it('fills in every default for an empty environment', () => {
    expect(loadAppConfig({}, CWD)).toEqual({
      port: 3000,
      host: '127.0.0.1',
      vaultRoot: undefined,
      dataDir: path.join(CWD, 'data'),
      agentProvider: 'offline',
      llm: undefined,
      agentTimeoutMs: 120_000,
      agentLatencyMs: { min: 0, max: 0 },
      agentStream: false,
      agentMaxInputChars: 262_144,
      resultMaxBytes: 1_048_576,
      globalMaxConcurrent: 12,
      adaptiveConcurrency: true,
      resultCache: true,
      resultCacheMaxEntries: 10_000,
      resultCacheTtlHours: 720,
      sessionTtlMinutes: 30,
      bodyLimitBytes: 5 * 1024 * 1024,
      shutdownGraceMs: 30_000,
      apiToken: undefined,
      authFailureLimit: 10,
      allowUnauthenticated: false,
      corsOrigins: ['app://obsidian.md'],
      executeRateLimit: 60,
      logLevel: 'info',
      logPretty: Boolean(process.stdout.isTTY),
      neo4j: undefined,
      memoryBatchSize: 500,
      memoryRetryMaxMs: 30_000,
      memoryAttemptTimeoutMs: 30_000,
      memoryShutdownMs: 5_000,
    });
  });

  it('uses process.cwd() when no cwd is given', () => {
    expect(loadAppConfig({}).dataDir).toBe(path.resolve(process.cwd(), 'data'));
  });

  it('reads every setting, trimming whitespace', () => {
    const config = loadAppConfig(
      {
        PORT: ' 8080 ',
        HOST: '0.0.0.0',
        VAULT_ROOT: 'my-vault',
        DATA_DIR: '/var/lib/cb',
        AGENT_PROVIDER: 'offline',
        AGENT_TIMEOUT_MS: '5000',
        AGENT_LATENCY_MS: '25',
        AGENT_STREAM: 'true',
        AGENT_MAX_INPUT_CHARS: '50000',
        RESULT_MAX_BYTES: '65536',
        RESULT_CACHE: 'off',
        RESULT_CACHE_MAX_ENTRIES: '500',
        RESULT_CACHE_TTL_HOURS: '24',
        GLOBAL_MAX_CONCURRENT: '4',
        SESSION_TTL_MINUTES: '60',
        BODY_LIMIT_BYTES: '2048',
        API_TOKEN: 's3cret-token-0123456789',
        AUTH_FAILURE_LIMIT: '25',
        CORS_ORIGINS: ' app://obsidian.md , http://localhost:5173,',
        EXECUTE_RATE_LIMIT: '0',
        LOG_LEVEL: 'debug',
        LOG_PRETTY: 'true',
        NEO4J_URI: 'bolt://127.0.0.1:7687',
        NEO4J_USER: 'memory',
        NEO4J_PASSWORD: 'pw',
        MEMORY_BATCH_SIZE: '100',
      },
      CWD,
    );
    expect(config).toEqual({
      port: 8080,
      host: '0.0.0.0',
      vaultRoot: path.join(CWD, 'my-vault'),
      dataDir: '/var/lib/cb',
      agentProvider: 'offline',
      llm: undefined,
      agentTimeoutMs: 5000,
      agentLatencyMs: { min: 25, max: 25 },
      agentStream: true,
      agentMaxInputChars: 50_000,
      resultMaxBytes: 65_536,
      globalMaxConcurrent: 4,
      adaptiveConcurrency: true,
      resultCache: false,
      resultCacheMaxEntries: 500,
      resultCacheTtlHours: 24,
      sessionTtlMinutes: 60,
      bodyLimitBytes: 2048,
      shutdownGraceMs: 30_000,
      apiToken: 's3cret-token-0123456789',
      authFailureLimit: 25,
      allowUnauthenticated: false,
      corsOrigins: ['app://obsidian.md', 'http://localhost:5173'],
      executeRateLimit: 0,
      logLevel: 'debug',
      logPretty: true,
      neo4j: { uri: 'bolt://127.0.0.1:7687', user: 'memory', password: 'pw', database: undefined },
      memoryBatchSize: 100,
      memoryRetryMaxMs: 30_000,
      memoryAttemptTimeoutMs: 30_000,
      memoryShutdownMs: 5_000,
    });
  });

  describe('access: token length and bind address', () => {
    it('refuses an API_TOKEN shorter than 16 characters, without showing it', () => {
      const problems = problemsOf({ API_TOKEN: 'fifteen-chars!!' });
      expect(problems).toEqual([
        expect.stringMatching(/^API_TOKEN must be at least 16 characters long; generate one with: node -e/),
      ]);
      expect(problems.join('\n')).not.toContain('fifteen-chars!!');
      // characters, not bytes or UTF-16 units
      expect(problemsOf({ API_TOKEN: '🔑'.repeat(15) })).toHaveLength(1);
      expect(loadAppConfig({ API_TOKEN: 'é'.repeat(16) }, CWD).apiToken).toBe('é'.repeat(16));
      expect(loadAppConfig({ API_TOKEN: ' sixteen-chars-ok ' }, CWD).apiToken).toBe('sixteen-chars-ok');
    });

    it('refuses a non-loopback HOST without API_TOKEN unless ALLOW_UNAUTHENTICATED=true', () => {
      for (const host of ['0.0.0.0', '::', '192.168.1.20', 'my-server.local']) {
        expect(problemsOf({ HOST: host })).toEqual([
          `HOST ${host} is not a loopback address, so other machines could use the service without a token: set API_TOKEN (at least 16 characters), bind to 127.0.0.1, or set ALLOW_UNAUTHENTICATED=true to run without a token on purpose`,
        ]);
        expect(loadAppConfig({ HOST: host, ALLOW_UNAUTHENTICATED: 'true' }, CWD).allowUnauthenticated).toBe(
          true,
        );
        expect(loadAppConfig({ HOST: host, API_TOKEN: 'a-long-enough-token' }, CWD).host).toBe(host);
      }
      expect(problemsOf({ ALLOW_UNAUTHENTICATED: 'yes' })).toEqual([
        'ALLOW_UNAUTHENTICATED must be true or false (got "yes")',
      ]);
    });

    it.each([
      ['AUTH_FAILURE_LIMIT', '0', /^AUTH_FAILURE_LIMIT must be an integer between 1 and 100000/],
      ['AUTH_FAILURE_LIMIT', '1e3', /^AUTH_FAILURE_LIMIT must be an integer between 1 and 100000/],
    ])('refuses %s=%j', (name, value, problem) => {
      expect(problemsOf({ [name]: value })).toEqual([expect.stringMatching(problem)]);
    });

    it.each([
      ['127.0.0.1', true],
      ['127.8.9.10', true],
      ['localhost', true],
      ['LOCALHOST', true],
      ['::1', true],
      ['[::1]', true],
      ['0:0:0:0:0:0:0:1', true],
      ['::ffff:127.0.0.1', true],
      ['0.0.0.0', false],
      ['::', false],
      ['10.0.0.1', false],
      ['128.0.0.1', false],
      ['::ffff:10.0.0.1', false],
      ['fe80::1%eth0', false],
      ['localhost.example.com', false],
      ['example.org', false],
    ])('isLoopbackHost(%j) is %s', (host, loopback) => {
      expect(isLoopbackHost(host)).toBe(loopback);
    });
  });

  it('keeps an absolute VAULT_ROOT as it is', () => {
    expect(loadAppConfig({ VAULT_ROOT: '/data/vault' }, CWD).vaultRoot).toBe('/data/vault');
  });

  it.each([
    ['true', true],
    ['1', true],
    ['false', false],
    ['0', false],
  ])('reads LOG_PRETTY=%s as %s', (value, expected) => {
    expect(loadAppConfig({ LOG_PRETTY: value }, CWD).logPretty).toBe(expected);
  });

  it('treats empty and blank strings as unset', () => {
    const config = loadAppConfig(
      {
        PORT: '',
        HOST: '  ',
        VAULT_ROOT: '',
        DATA_DIR: ' ',
        AGENT_PROVIDER: '',
        API_TOKEN: '',
        LOG_LEVEL: '',
        LOG_PRETTY: '',
        GLOBAL_MAX_CONCURRENT: '\t',
      },
      CWD,
    );
    expect(config).toEqual(loadAppConfig({}, CWD));
  });

  it('accepts the bounds of each range', () => {
    expect(loadAppConfig({ PORT: '0' }, CWD).port).toBe(0);
    expect(loadAppConfig({ PORT: '65535' }, CWD).port).toBe(65535);
    expect(loadAppConfig({ AGENT_TIMEOUT_MS: '1' }, CWD).agentTimeoutMs).toBe(1);
    expect(loadAppConfig({ BODY_LIMIT_BYTES: String(100 * 1024 * 1024) }, CWD).bodyLimitBytes).toBe(
      100 * 1024 * 1024,
    );
  });

  it('collects every invalid value into one ConfigValidationError', () => {
    const problems = problemsOf({
      PORT: 'eighty',
      AGENT_TIMEOUT_MS: '0',
      AGENT_LATENCY_MS: '1e3',
      GLOBAL_MAX_CONCURRENT: '1.5',
      SESSION_TTL_MINUTES: '-1',
      BODY_LIMIT_BYTES: '1023',
      LOG_LEVEL: 'verbose',
      LOG_PRETTY: 'yes',
      AGENT_PROVIDER: 'magic',
      CORS_ORIGINS: 'app://obsidian.md,*,https://x.org/path',
      EXECUTE_RATE_LIMIT: 'many',
    });
    expect(problems).toEqual([
      'AGENT_PROVIDER must be one of offline, anthropic, openai-compatible, google, local (got "magic")',
      'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent',
      'LOG_PRETTY must be true or false (got "yes")',
      'CORS_ORIGINS must be a comma-separated list of origins like app://obsidian.md or http://localhost:5173 (got "*")',
      'CORS_ORIGINS must be a comma-separated list of origins like app://obsidian.md or http://localhost:5173 (got "https://x.org/path")',
      'PORT must be an integer between 0 and 65535 (got "eighty")',
      'AGENT_TIMEOUT_MS must be an integer between 1 and 3600000 (got "0")',
      'AGENT_LATENCY_MS must be milliseconds (e.g. 50) or a range MIN-MAX (e.g. 20-80), at most 600000 (got "1e3")',
      'GLOBAL_MAX_CONCURRENT must be an integer between 1 and 1000 (got "1.5")',
      'SESSION_TTL_MINUTES must be an integer between 1 and 525600 (got "-1")',
      'BODY_LIMIT_BYTES must be an integer between 1024 and 104857600 (got "1023")',
      'EXECUTE_RATE_LIMIT must be an integer between 0 and 1000000 (got "many")',
    ]);
  });

  it('puts every problem in the error message, one per line', () => {
    let message = '';
    try {
      loadAppConfig({ PORT: '70000', LOG_LEVEL: 'loud' }, CWD);
    } catch (err) {
      message = (err as Error).message;
      expect((err as Error).name).toBe('ConfigValidationError');
    }
    expect(message).toBe(
      'Invalid configuration:\n' +
        '  - LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent\n' +
        '  - PORT must be an integer between 0 and 65535 (got "70000")',
    );
  });

  it.each([['99999999999999999999'], ['0x10'], ['12abc'], ['+5'], [' 1 2 ']])('refuses PORT=%j', (value) => {
    expect(problemsOf({ PORT: value })).toHaveLength(1);
  });

  it('reads an LLM provider with its defaults; the key comes from AGENT_API_KEY or the usual variable', () => {
    const config = loadAppConfig({ AGENT_PROVIDER: 'anthropic', ANTHROPIC_API_KEY: 'k-1234' }, CWD);
    expect(config.agentProvider).toBe('anthropic');
    expect(config.llm).toEqual({
      provider: 'anthropic',
      model: 'claude-sonnet-4-5',
      baseUrl: undefined,
      apiKey: 'k-1234',
      stream: false,
      retry: { maxAttempts: 8, baseDelayMs: 500, maxDelayMs: 30_000 },
      contextTokens: 4000,
      maxOutputTokens: 2048,
      prices: undefined,
    });
    expect(
      loadAppConfig(
        { AGENT_PROVIDER: 'google', AGENT_API_KEY: 'g-key', GOOGLE_GENERATIVE_AI_API_KEY: 'other' },
        CWD,
      ).llm,
    ).toMatchObject({ model: 'gemini-2.5-flash', apiKey: 'g-key' });
  });

  it('reads every LLM setting', () => {
    const config = loadAppConfig(
      {
        AGENT_PROVIDER: 'openai-compatible',
        AGENT_MODEL: 'llama3.2',
        AGENT_BASE_URL: 'http://127.0.0.1:11434/v1/',
        AGENT_STREAM: 'true',
        AGENT_MAX_ATTEMPTS: '3',
        AGENT_RETRY_BASE_MS: '100',
        AGENT_RETRY_MAX_MS: '1000',
        AGENT_ATTEMPT_TIMEOUT_MS: '20000',
        AGENT_CONTEXT_TOKENS: '500',
        AGENT_MAX_OUTPUT_TOKENS: '300',
        AGENT_PRICE_PER_MTOK: '0.5, 1.5',
        ADAPTIVE_CONCURRENCY: 'false',
      },
      CWD,
    );
    expect(config.adaptiveConcurrency).toBe(false);
    expect(config.llm).toEqual({
      provider: 'openai-compatible',
      model: 'llama3.2',
      baseUrl: 'http://127.0.0.1:11434/v1',
      apiKey: undefined, // a local server needs none
      stream: true,
      retry: { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 1000, attemptTimeoutMs: 20_000 },
      contextTokens: 500,
      maxOutputTokens: 300,
      prices: { inputPerMTok: 0.5, outputPerMTok: 1.5 },
    });
  });

  it('AGENT_STREAM applies to the offline agent too, validated once; an LLM provider reads it with its settings', () => {
    expect(problemsOf({ AGENT_STREAM: 'yes' })).toEqual(['AGENT_STREAM must be true or false (got "yes")']);
    expect(loadAppConfig({ AGENT_STREAM: '1' }).agentStream).toBe(true);
    const llm = loadAppConfig({ AGENT_PROVIDER: 'anthropic', AGENT_API_KEY: 'k-1234', AGENT_STREAM: 'true' });
    expect(llm.agentStream).toBe(true);
    expect(llm.llm?.stream).toBe(true);
    expect(problemsOf({ AGENT_PROVIDER: 'anthropic', AGENT_API_KEY: 'k-1234', AGENT_STREAM: 'x' })).toEqual([
      'AGENT_STREAM must be true or false (got "x")',
    ]);
  });

  it('refuses a bad LLM configuration at start-up with every problem, never echoing the key', () => {
    const problems = problemsOf({
      AGENT_PROVIDER: 'openai-compatible',
      AGENT_BASE_URL: 'ftp://x',
      AGENT_STREAM: 'maybe',
      AGENT_PRICE_PER_MTOK: 'cheap',
      AGENT_RETRY_BASE_MS: '5000',
      AGENT_RETRY_MAX_MS: '100',
      ADAPTIVE_CONCURRENCY: 'sometimes',
      AGENT_API_KEY: 'sk-never-shown',
    });
    expect(problems).toEqual([
      'AGENT_BASE_URL must be an http(s) URL (got "ftp://x")',
      'AGENT_MODEL is required with AGENT_PROVIDER=openai-compatible and AGENT_BASE_URL (the model name the server knows, e.g. "llama3.2")',
      'AGENT_STREAM must be true or false (got "maybe")',
      'AGENT_PRICE_PER_MTOK must be "INPUT,OUTPUT" in USD per million tokens, e.g. "3,15" (got "cheap")',
      'AGENT_RETRY_MAX_MS must be at least AGENT_RETRY_BASE_MS',
      'ADAPTIVE_CONCURRENCY must be true or false (got "sometimes")',
    ]);
    expect(problems.join('\n')).not.toContain('sk-never-shown');
    expect(
      problemsOf({ AGENT_PROVIDER: 'openai-compatible', AGENT_BASE_URL: 'not a url', AGENT_MODEL: 'm' }),
    ).toEqual(['AGENT_BASE_URL must be an http(s) URL (got "not a url")']);
  });

  it.each([
    ['anthropic', 'ANTHROPIC_API_KEY'],
    ['openai-compatible', 'OPENAI_API_KEY'],
    ['google', 'GOOGLE_GENERATIVE_AI_API_KEY'],
  ])('refuses LLM provider %s without a key', (provider, variable) => {
    expect(problemsOf({ AGENT_PROVIDER: provider })).toEqual([
      `AGENT_API_KEY (or ${variable}) is required for AGENT_PROVIDER=${provider}`,
    ]);
  });

  it('refuses an unknown provider', () => {
    expect(problemsOf({ AGENT_PROVIDER: 'gpt' })).toEqual([
      'AGENT_PROVIDER must be one of offline, anthropic, openai-compatible, google, local (got "gpt")',
    ]);
  });

  describe('Neo4j and the memory drain loop', () => {
    it('reads NEO4J_* and MEMORY_* (user defaults to neo4j, the password is kept as given)', () => {
      const config = loadAppConfig(
        {
          NEO4J_URI: 'neo4j+s://graph.example:7687',
          NEO4J_PASSWORD: ' pass word ',
          NEO4J_DATABASE: 'learning',
          MEMORY_BATCH_SIZE: '50',
          MEMORY_RETRY_MAX_MS: '1000',
          MEMORY_SHUTDOWN_MS: '0',
          MEMORY_ATTEMPT_TIMEOUT_MS: '2000',
        },
        CWD,
      );
      expect(config).toMatchObject({
        neo4j: {
          uri: 'neo4j+s://graph.example:7687',
          user: 'neo4j',
          password: ' pass word ',
          database: 'learning',
        },
        memoryBatchSize: 50,
        memoryRetryMaxMs: 1000,
        memoryShutdownMs: 0,
        memoryAttemptTimeoutMs: 2000,
      });
      expect(
        loadAppConfig({ NEO4J_URI: 'bolt://127.0.0.1:7687', NEO4J_USER: 'me', NEO4J_PASSWORD: 'pw' }, CWD)
          .neo4j,
      ).toEqual({ uri: 'bolt://127.0.0.1:7687', user: 'me', password: 'pw', database: undefined });
    });

    it.each([
      [
        { NEO4J_URI: 'http://127.0.0.1:7474', NEO4J_PASSWORD: 'x' },
        /^NEO4J_URI must be a URI with scheme bolt, /,
      ],
      [{ NEO4J_URI: 'not a uri', NEO4J_PASSWORD: 'x' }, /^NEO4J_URI must be a URI/],
      [
        { NEO4J_URI: 'bolt://neo4j:hunter22@h:7687', NEO4J_PASSWORD: 'x' },
        /^NEO4J_URI must not carry credentials/,
      ],
      [{ NEO4J_URI: 'bolt://h:7687' }, /^NEO4J_PASSWORD is required when NEO4J_URI is set$/],
      [{ NEO4J_PASSWORD: 'hunter22' }, /^NEO4J_USER, NEO4J_PASSWORD and NEO4J_DATABASE need NEO4J_URI/],
      [{ MEMORY_BATCH_SIZE: '0' }, /^MEMORY_BATCH_SIZE must be an integer between 1 and 10000/],
      [{ MEMORY_RETRY_MAX_MS: '99' }, /^MEMORY_RETRY_MAX_MS must be an integer between 100/],
      [
        { AGENT_MAX_INPUT_CHARS: '999' },
        /^AGENT_MAX_INPUT_CHARS must be an integer between 1000 and 16777216/,
      ],
      [{ RESULT_MAX_BYTES: '1MB' }, /^RESULT_MAX_BYTES must be an integer between 65536 and 67108864/],
    ])('refuses %j with a clear problem that never shows a password', (env, problem) => {
      const problems = problemsOf(env);
      expect(problems).toEqual([expect.stringMatching(problem)]);
      expect(problems.join(' ')).not.toContain('hunter22');
    });
  });
});

describe('loadAppConfig: the result cache', () => {
  it('takes on/off (and true/false, 1/0) for RESULT_CACHE, and refuses anything else', () => {
    for (const [raw, on] of [
      ['on', true],
      ['off', false],
      ['true', true],
      ['0', false],
    ] as const) {
      expect(loadAppConfig({ RESULT_CACHE: raw }, '/srv').resultCache).toBe(on);
    }
    expect(() => loadAppConfig({ RESULT_CACHE: 'maybe', RESULT_CACHE_MAX_ENTRIES: '0' }, '/srv')).toThrow(
      /RESULT_CACHE must be on or off \(got "maybe"\)[\s\S]*RESULT_CACHE_MAX_ENTRIES must be an integer between 1 and 10000000/,
    );
  });
});
