import { listenFailure, StartupError } from './startup-error';

describe('listenFailure', () => {
  const errno = (code: string) => Object.assign(new Error(`listen ${code}`), { code });

  it('says what to do about a port in use, a privileged port or an unknown host', () => {
    expect(listenFailure(errno('EADDRINUSE'), 3000, '127.0.0.1').message).toBe(
      'PORT 3000 on HOST 127.0.0.1 is already in use (EADDRINUSE): stop the process that listens there, or set PORT ' +
        'to a free port (0 picks one)',
    );
    expect(listenFailure(errno('EACCES'), 80, '0.0.0.0').message).toMatch(
      /^PORT 80 on HOST 0.0.0.0 may not be bound/,
    );
    for (const code of ['EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN'])
      expect(listenFailure(errno(code), 3000, 'nas.local').message).toBe(
        `HOST nas.local is not an address of this machine (${code}): set HOST to one of its addresses, e.g. ` +
          '127.0.0.1 or 0.0.0.0',
      );
    expect(listenFailure(errno('EADDRINUSE'), 1, 'h')).toBeInstanceOf(StartupError);
  });

  it('passes other errors through', () => {
    const other = errno('EMFILE');
    expect(listenFailure(other, 3000, 'h')).toBe(other);
    expect(listenFailure('odd', 3000, 'h').message).toBe('odd');
  });
});
