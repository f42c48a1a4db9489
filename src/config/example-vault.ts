import { cpSync, existsSync } from 'node:fs';
import * as path from 'node:path';

/** The example vault shipped with the project (`examples/vault`). */
export const BUNDLED_VAULT = path.resolve(__dirname, '..', '..', 'examples', 'vault');

/**
 * The vault to use: `VAULT_ROOT` when set; otherwise a copy of the bundled example vault in `DATA_DIR/vault`,
 * made on first start so the service never writes into the repository.
 */
export function resolveVaultRoot(
  vaultRoot: string | undefined,
  dataDir: string,
): { root: string; copied: boolean } {
  if (vaultRoot) return { root: vaultRoot, copied: false };
  const root = path.join(dataDir, 'vault');
  if (existsSync(root)) return { root, copied: false };
  cpSync(BUNDLED_VAULT, root, { recursive: true });
  return { root, copied: true };
}
