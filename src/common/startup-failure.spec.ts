import { ConfigValidationError, StartupError } from '../config';
import { reportStartupFailure, startupFailureText } from './startup-failure';

/** The lines `reportStartupFailure` writes, parsed. */
function report(err: unknown, env: NodeJS.ProcessEnv = {}): Record<string, unknown>[] {
  const lines: string[] = [];
  reportStartupFailure(err, env, { write: (s: string) => void lines.push(s) });
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('startupFailureText', () => {
  it('lists every configuration problem on one line', () => {
    expect(startupFailureText(new ConfigValidationError(['PORT must be…', 'HOST must be…']))).toBe(
      'Invalid configuration: PORT must be…; HOST must be…',
    );
  });

  it('puts any other message on one line', () => {
    expect(startupFailureText(new Error('first\n  second\n'))).toBe('first second');
    expect(startupFailureText('plain')).toBe('plain');
    expect(startupFailureText(new Error(''))).toBe('unknown error');
  });
});

describe('reportStartupFailure', () => {
  it('logs one fatal JSON line, whatever LOG_LEVEL says', () => {
    const [line, ...rest] = report(new StartupError('DATA_DIR /d is not writable: make it writable.'), {
      LOG_LEVEL: 'silent',
    });
    expect(rest).toEqual([]);
    expect(line).toMatchObject({
      level: 60,
      context: 'Bootstrap',
      msg: 'canvas-batch failed to start: DATA_DIR /d is not writable: make it writable.',
      pid: process.pid,
    });
    expect(line).not.toHaveProperty('err');
  });

  it('adds the stack trace of an unexpected error only with LOG_LEVEL=debug or trace', () => {
    const err = new TypeError('x is undefined');
    expect(report(err, { LOG_LEVEL: 'info' })[0]).not.toHaveProperty('err');
    expect(report(err, { LOG_LEVEL: 'debug' })[0].err).toMatchObject({
      type: 'TypeError',
      message: 'x is undefined',
      stack: expect.stringContaining('TypeError: x is undefined'),
    });
    // a described failure never needs one
    expect(report(new StartupError('clear'), { LOG_LEVEL: 'trace' })[0]).not.toHaveProperty('err');
    expect(report(new ConfigValidationError(['a']), { LOG_LEVEL: 'trace' })[0]).not.toHaveProperty('err');
  });
});
