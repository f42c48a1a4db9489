import { realpathSync } from 'node:fs';

/** Where this server keeps files: the paths an API answer must not show. */
export interface ServerPathRoots {
  /** The vault: a path under it is shown relative to it (`Biology/cells.md`), the root itself as `<vault>`. */
  vaultRoot?: string;
  /** `DATA_DIR`: a path under it is shown as `<DATA_DIR>/…`. */
  dataDir?: string;
}

/** How much of a text's other absolute paths are replaced by `<server path>`. */
export type UnknownPathPolicy =
  /** Every absolute path (error messages of failed nodes and tasks: they come from the file system, SQLite…). */
  | 'all'
  /** Only absolute paths in single quotes, as Node's file-system errors quote them (`open '/srv/x'`). */
  | 'quoted';

export const UNKNOWN_SERVER_PATH = '<server path>';

interface Root {
  prefix: string;
  /** Replaces the root followed by a separator (the rest of the path is kept). */
  under: string;
  /** Replaces the root itself. */
  bare: string;
}

/** Characters that end a path token in a message: white space, quotes, closing brackets, separators of a list. */
const PATH_END = `\\s'"\`)\\]},;<>`;
/** An absolute POSIX path (at least one character after the `/`), a Windows drive path, or a UNC path. */
const ABSOLUTE = `(?:/[^${PATH_END}/][^${PATH_END}]*|[A-Za-z]:[\\\\/][^${PATH_END}]*|\\\\\\\\[^${PATH_END}]+)`;
/** Any absolute path standing on its own (not the path of a URL: that follows its host, not a space or a quote). */
const ANY_ABSOLUTE = new RegExp(`(^|[\\s"\`(\\[=])${ABSOLUTE}`, 'g');
/** An absolute path in single quotes, as Node's file-system errors quote paths (it may contain spaces). */
const QUOTED_ABSOLUTE = /'(?:\/[^'/]|[A-Za-z]:[\\/]|\\\\)[^']*'/g;
/**
 * A path through an open folder's descriptor (`/proc/self/fd/23/name`: how the vault's files are reached without
 * following a swapped folder): the number says nothing to a client, the name after it is kept.
 */
const THROUGH_DESCRIPTOR = /(?<![\w.~-])\/(?:proc\/self|dev)\/fd\/\d+(?:\/+(?=[^/])|(?=[^\w/]|$))/g;

/**
 * Rewrites text meant for API clients so that it shows no absolute path of this server: paths in the vault become
 * vault-relative, paths in `DATA_DIR` start with `<DATA_DIR>`, other absolute paths become `<server path>` (all
 * of them, or only the quoted ones: see `UnknownPathPolicy`). Both the configured and the real (symlinks resolved)
 * form of each root are recognised.
 */
export class ServerPathRedactor {
  private readonly roots: { pattern: RegExp; root: Root }[];

  constructor(roots: ServerPathRoots) {
    const list: Root[] = [];
    const add = (dir: string | undefined, under: string, bare: string): void => {
      if (!dir) return;
      for (const form of new Set([dir, realOrSame(dir)])) {
        const prefix = form.replace(/[\\/]+$/, '');
        if (prefix) list.push({ prefix, under, bare });
      }
    };
    add(roots.vaultRoot, '', '<vault>');
    add(roots.dataDir, '<DATA_DIR>/', '<DATA_DIR>');
    // the longest first: the default vault lives inside DATA_DIR
    list.sort((a, b) => b.prefix.length - a.prefix.length);
    this.roots = list.map((root) => ({
      root,
      // the root (not the tail of a longer path), then separators and the rest of the path, or the end of the path
      pattern: new RegExp(
        `(?<![\\w.~-])${escapeRegExp(root.prefix)}(?:([\\\\/]+)(?=[^${PATH_END}])|(?=[${PATH_END}\\\\/:]|$))`,
        'g',
      ),
    }));
  }

  /** The text with no absolute server path in it. */
  redact(text: string, unknown: UnknownPathPolicy = 'all'): string {
    let out = text.replace(THROUGH_DESCRIPTOR, (m) => (m.endsWith('/') ? '' : '<open folder>'));
    for (const { pattern, root } of this.roots) {
      out = out.replace(pattern, (_m, separator: string | undefined) => (separator ? root.under : root.bare));
    }
    out = out.replace(QUOTED_ABSOLUTE, `'${UNKNOWN_SERVER_PATH}'`);
    return unknown === 'all'
      ? out.replace(ANY_ABSOLUTE, (_m, before: string) => `${before}${UNKNOWN_SERVER_PATH}`)
      : out;
  }
}

function realOrSame(dir: string): string {
  try {
    return realpathSync(dir);
  } catch {
    return dir;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
