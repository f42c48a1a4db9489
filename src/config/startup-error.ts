/**
 * A start-up failure the operator can fix, told in one line like a configuration problem: what is wrong (naming the
 * setting or file concerned) and what to do. Reported without a stack trace.
 */
export class StartupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Why `listen` failed, said in terms of `PORT` and `HOST`. */
export function listenFailure(err: unknown, port: number, host: string): Error {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'EADDRINUSE':
      return new StartupError(
        `PORT ${port} on HOST ${host} is already in use (EADDRINUSE): stop the process that listens there, or set PORT to a free port (0 picks one)`,
        { cause: err },
      );
    case 'EACCES':
      return new StartupError(
        `PORT ${port} on HOST ${host} may not be bound by this user (EACCES): set PORT to a port above 1023, or give the process the right to bind it`,
        { cause: err },
      );
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new StartupError(
        `HOST ${host} is not an address of this machine (${code}): set HOST to one of its addresses, e.g. 127.0.0.1 or 0.0.0.0`,
        { cause: err },
      );
    default:
      return err instanceof Error ? err : new Error(String(err));
  }
}
