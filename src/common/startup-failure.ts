import pino, { type DestinationStream } from 'pino';
import pinoPretty from 'pino-pretty';
import { ConfigValidationError, StartupError } from '../config';
import { PRETTY_LOG_OPTIONS } from './service-log';

/** The message of a failed start-up's log line, on one line (a configuration error lists every problem). */
export function startupFailureText(err: unknown): string {
  if (err instanceof ConfigValidationError) return `Invalid configuration: ${err.problems.join('; ')}`;
  const text = err instanceof Error ? err.message : String(err);
  // one line, also for the human-readable format
  return text.replace(/\s*\n\s*/g, ' ').trim() || 'unknown error';
}

/** `LOG_PRETTY` as the configuration reads it, without failing: the configuration itself may be what failed. */
function prettyLogs(env: NodeJS.ProcessEnv): boolean {
  const raw = env.LOG_PRETTY?.trim();
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  return Boolean(process.stdout.isTTY);
}

/**
 * Logs a failed start-up as one `fatal` line on stderr, in the service's log format (JSON lines with pino, or the
 * service's pino-pretty line when `LOG_PRETTY` is on) whatever `LOG_LEVEL` says. An unexpected error (not a
 * configuration or `StartupError`) carries its stack trace in `err` only with `LOG_LEVEL=debug` or `trace`.
 */
export function reportStartupFailure(
  err: unknown,
  env: NodeJS.ProcessEnv,
  destination?: DestinationStream,
): void {
  const pretty = prettyLogs(env);
  const stream =
    destination ??
    (pretty
      ? pinoPretty({ ...PRETTY_LOG_OPTIONS, destination: 2, sync: true })
      : pino.destination({ dest: 2, sync: true }));
  const logger = pino({ level: 'fatal' }, stream);
  const described = err instanceof ConfigValidationError || err instanceof StartupError;
  const debug = ['debug', 'trace'].includes(env.LOG_LEVEL?.trim() ?? '');
  const fields: Record<string, unknown> = { context: 'Bootstrap' };
  if (!described && debug && err instanceof Error) fields.err = err; // pino's serializer: type, message, stack
  logger.fatal(fields, `canvas-batch failed to start: ${startupFailureText(err)}`);
}
