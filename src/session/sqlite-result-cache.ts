import type { Statement } from 'better-sqlite3';
import type { AgentStructuredOutput } from '../agent';
import { SqliteDatabase } from '../database';
import { settled } from './live-feed';
import { type CachedResult, ResultCache, type ResultCacheLimits } from './result-cache';

interface EntryRow {
  markdown: string;
  structured_json: string | null;
  input_tokens: number;
  output_tokens: number;
  created_at: string;
}

/**
 * `ResultCache` on the embedded SQLite database: one row per key (`result_cache`, migration 9). A store replaces the
 * key's row, removes the expired rows and then the oldest beyond `maxEntries`, in one transaction.
 */
export class SqliteResultCache extends ResultCache {
  private readonly s: Record<'get' | 'put' | 'expire' | 'evict' | 'clear' | 'size', Statement>;

  constructor(
    private readonly db: SqliteDatabase,
    private readonly limits: ResultCacheLimits,
    private readonly now: () => number = Date.now,
  ) {
    super();
    const h = db.handle;
    this.s = {
      get: h.prepare(
        'SELECT markdown, structured_json, input_tokens, output_tokens, created_at FROM result_cache WHERE cache_key = ? AND created_at > ?',
      ),
      put: h.prepare(
        `INSERT OR REPLACE INTO result_cache (cache_key, markdown, structured_json, input_tokens, output_tokens, created_at)
         VALUES (?, ?, ?, ?, ?, ?)`,
      ),
      expire: h.prepare('DELETE FROM result_cache WHERE created_at <= ?'),
      evict: h.prepare(
        `DELETE FROM result_cache WHERE rowid IN (SELECT rowid FROM result_cache ORDER BY created_at, rowid
           LIMIT max(0, (SELECT count(*) FROM result_cache) - ?))`,
      ),
      clear: h.prepare('DELETE FROM result_cache'),
      size: h.prepare('SELECT count(*) FROM result_cache WHERE created_at > ?').pluck(),
    };
  }

  /** Entries created at or before this ISO time have expired. */
  private horizon(): string {
    return new Date(this.now() - this.limits.ttlMs).toISOString();
  }

  get(key: string): Promise<CachedResult | undefined> {
    return settled(() => {
      const row = this.s.get.get(key, this.horizon()) as EntryRow | undefined;
      if (!row) return undefined;
      return {
        markdown: row.markdown,
        ...(row.structured_json !== null && {
          structured: JSON.parse(row.structured_json) as AgentStructuredOutput,
        }),
        usage: { inputTokens: row.input_tokens, outputTokens: row.output_tokens },
        createdAt: row.created_at,
      };
    });
  }

  put(key: string, value: CachedResult): Promise<void> {
    return settled(() =>
      this.db.transaction(() => {
        this.s.put.run(
          key,
          value.markdown,
          value.structured ? JSON.stringify(value.structured) : null,
          value.usage.inputTokens,
          value.usage.outputTokens,
          value.createdAt,
        );
        this.s.expire.run(this.horizon());
        this.s.evict.run(this.limits.maxEntries);
      }),
    );
  }

  clear(): Promise<number> {
    return settled(() => this.s.clear.run().changes);
  }

  size(): Promise<number> {
    return settled(() => this.s.size.get(this.horizon()) as number);
  }
}
