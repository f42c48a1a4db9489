import { constants, cpSync, existsSync } from 'node:fs';
import * as path from 'node:path';
import { StartupError } from './startup-error';
import { checkAccess, DataDirNotWritableError, ensureDataDir } from './data-dir';

/** The example vault shipped with the project (`examples/vault`). */
export const BUNDLED_VAULT = path.resolve(__dirname, '..', '..', 'examples', 'vault');

/**
 * The vault to use: `VAULT_ROOT` when set; otherwise a copy of the bundled example vault in `DATA_DIR/vault`,
 * made on first start so the service never writes into the repository. Refuses with a clear message when
 * `DATA_DIR` cannot be created or written.
 */
export function resolveVaultRoot(
  vaultRoot: string | undefined,
  dataDir: string,
): { root: string; copied: boolean } {
  if (vaultRoot) return { root: vaultRoot, copied: false };
  const root = path.join(dataDir, 'vault');
  if (existsSync(root)) return { root, copied: false };
  ensureDataDir(dataDir);
  try {
    cpSync(BUNDLED_VAULT, root, { recursive: true });
  } catch (err) {
    const denied = checkAccess(dataDir, constants.W_OK | constants.X_OK);
    if (denied)
      throw new DataDirNotWritableError(
        dataDir,
        denied,
        `copies its example vault to ${root} on first start (set VAULT_ROOT to use your own vault)`,
      );
    throw new StartupError(
      `The example vault cannot be copied to ${root} (${(err as Error).message}): set VAULT_ROOT to your vault, ` +
        'or set DATA_DIR to a folder canvas-batch can write.',
      { cause: err },
    );
  }
  return { root, copied: true };
}
