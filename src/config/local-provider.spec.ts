import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import * as path from 'node:path';
import { ConfigValidationError, loadAppConfig } from './app.config';
import { ggufProblem } from './llm-settings';

describe('AGENT_PROVIDER=local', () => {
  let dir: string;
  let model: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'local-provider-'));
    model = path.join(dir, 'model.gguf');
    writeFileSync(model, Buffer.concat([Buffer.from('GGUF'), Buffer.alloc(60)]));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const problemsOf = (env: Record<string, string>): string[] => {
    try {
      loadAppConfig(env, dir);
    } catch (err) {
      if (err instanceof ConfigValidationError) return err.problems;
      throw err;
    }
    return [];
  };

  it('reads the model path (relative to the working directory) and the defaults from the machine', () => {
    const c = loadAppConfig({ AGENT_PROVIDER: 'local', AGENT_MODEL: 'model.gguf' }, dir);
    expect(c.agentProvider).toBe('local');
    expect(c.llm).toMatchObject({
      provider: 'local',
      model,
      apiKey: undefined,
      baseUrl: undefined,
      stream: false,
    });
    expect(c.llm?.local).toEqual({
      modelPath: model,
      threads: availableParallelism(),
      contextSize: undefined,
      sequences: 2,
      gpu: false,
    });
  });

  it('takes threads, context size, sequences and GPU from their variables', () => {
    const c = loadAppConfig(
      {
        AGENT_PROVIDER: 'local',
        AGENT_MODEL: model,
        AGENT_LOCAL_THREADS: '3',
        AGENT_LOCAL_CONTEXT_SIZE: '2048',
        AGENT_LOCAL_SEQUENCES: '4',
        AGENT_LOCAL_GPU: 'auto',
        AGENT_ATTEMPT_TIMEOUT_MS: '5000',
        AGENT_PRICE_PER_MTOK: '0,0',
      },
      dir,
    );
    expect(c.llm?.local).toEqual({
      modelPath: model,
      threads: 3,
      contextSize: 2048,
      sequences: 4,
      gpu: 'auto',
    });
    expect(c.llm?.retry.attemptTimeoutMs).toBe(5000);
  });

  it('needs AGENT_MODEL and refuses settings of the hosted providers', () => {
    expect(problemsOf({ AGENT_PROVIDER: 'local' })).toEqual([
      'AGENT_MODEL is required with AGENT_PROVIDER=local: the path of a GGUF model file',
    ]);
    expect(
      problemsOf({
        AGENT_PROVIDER: 'local',
        AGENT_MODEL: model,
        AGENT_BASE_URL: 'http://x',
        AGENT_API_KEY: 'k',
        AGENT_STREAM: 'maybe',
      }),
    ).toEqual([
      'AGENT_BASE_URL does not apply to AGENT_PROVIDER=local (unset it)',
      'AGENT_API_KEY does not apply to AGENT_PROVIDER=local (unset it)',
      'AGENT_STREAM must be true or false (got "maybe")',
    ]);
    // the local model streams through its text-chunk callback
    expect(
      loadAppConfig({ AGENT_PROVIDER: 'local', AGENT_MODEL: model, AGENT_STREAM: 'true' }).agentStream,
    ).toBe(true);
  });

  it('validates the local variables like the others', () => {
    expect(
      problemsOf({
        AGENT_PROVIDER: 'local',
        AGENT_MODEL: model,
        AGENT_LOCAL_THREADS: '0',
        AGENT_LOCAL_CONTEXT_SIZE: '100',
        AGENT_LOCAL_SEQUENCES: 'many',
        AGENT_LOCAL_GPU: 'yes',
      }),
    ).toEqual([
      'AGENT_LOCAL_GPU must be one of false, auto, cuda, vulkan, metal (got "yes")',
      'AGENT_LOCAL_CONTEXT_SIZE must be an integer between 256 and 1048576 (got "100")',
      'AGENT_LOCAL_THREADS must be an integer between 1 and 1024 (got "0")',
      'AGENT_LOCAL_SEQUENCES must be an integer between 1 and 64 (got "many")',
    ]);
  });

  it('refuses the local variables with another provider', () => {
    expect(problemsOf({ AGENT_LOCAL_THREADS: '2', AGENT_LOCAL_GPU: 'auto' })).toEqual([
      'AGENT_LOCAL_THREADS, AGENT_LOCAL_GPU only apply to AGENT_PROVIDER=local (unset them, or set AGENT_PROVIDER=local)',
    ]);
  });

  it('says what is wrong with a model file that cannot be a GGUF model', () => {
    const garbage = path.join(dir, 'garbage.gguf');
    writeFileSync(garbage, 'this is not a model at all');
    const tiny = path.join(dir, 'tiny.gguf');
    writeFileSync(tiny, 'GG');
    const folder = path.join(dir, 'folder.gguf');
    mkdirSync(folder);
    expect(problemsOf({ AGENT_PROVIDER: 'local', AGENT_MODEL: garbage })).toEqual([
      `AGENT_MODEL ${garbage} is not a GGUF model file (it does not start with the GGUF magic bytes)`,
    ]);
    expect(ggufProblem(tiny)).toBe('is not a GGUF model file (it does not start with the GGUF magic bytes)');
    expect(ggufProblem(folder)).toBe('is not a file');
    expect(ggufProblem(path.join(dir, 'missing.gguf'))).toBe('does not exist');
    expect(ggufProblem(path.join(model, 'below-a-file'))).toBe('cannot be read (ENOTDIR)');
    expect(ggufProblem(model)).toBeUndefined();
  });

  it('reports a file it may not read (as a user other than root)', () => {
    const locked = path.join(dir, 'locked.gguf');
    writeFileSync(locked, 'GGUF');
    chmodSync(locked, 0o000);
    const problem = ggufProblem(locked);
    if (process.getuid?.() === 0) expect(problem).toBeUndefined();
    else expect(problem).toBe('cannot be read (EACCES)');
  });
});
