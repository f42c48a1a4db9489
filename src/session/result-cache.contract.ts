import type { CachedResult, ResultCache, ResultCacheLimits } from './result-cache';

/** One cache to test, empty, on a clock the test moves, and how to dispose of it. */
export interface ResultCacheUnderTest {
  cache: ResultCache;
  /** The clock the cache judges ages by (epoch ms); the test moves it with `advance`. */
  advance(ms: number): void;
  /** The time on that clock. */
  now(): number;
  /**
   * The same data opened again as another process (or a restarted one) opens it: a new database handle, a new
   * connection. Absent for a cache that keeps nothing beyond its object (in memory).
   */
  reopen?: () => ResultCache | Promise<ResultCache>;
  close(): void | Promise<void>;
}

/** What each suite's caches are made with. */
export const CONTRACT_LIMITS: ResultCacheLimits = { maxEntries: 5, ttlMs: 60_000 };

/**
 * The behaviour every `ResultCache` adapter shares, written once: `result-cache.contract.spec.ts` runs it for SQLite
 * on a real file and for the in-memory one, `redis-result-cache.contract.spec.ts` for Redis. `make` builds a cache
 * with `CONTRACT_LIMITS`.
 */
export function describeResultCacheContract(
  name: string,
  make: () => ResultCacheUnderTest | Promise<ResultCacheUnderTest>,
): void {
  describe(`ResultCache contract: ${name}`, () => {
    let subject: ResultCacheUnderTest;
    let cache: ResultCache;
    const entry = (markdown: string, extra: Partial<CachedResult> = {}): CachedResult => ({
      markdown,
      usage: { inputTokens: 120, outputTokens: 45 },
      createdAt: new Date(subject.now()).toISOString(),
      ...extra,
    });

    beforeEach(async () => {
      subject = await make();
      cache = subject.cache;
    });

    afterEach(async () => {
      await subject.close();
    });

    it('misses a key never stored', async () => {
      expect(await cache.get('k1')).toBeUndefined();
      expect(await cache.size()).toBe(0);
    });

    it('gives back what was stored: markdown, structured output, the original usage and the time', async () => {
      const structured = {
        kind: 'questions' as const,
        questions: [{ text: 'Why? 为什么？', type: 'understanding', difficulty: 'easy' as const }],
      };
      const value = entry('## Answer\n\nText é✓😀 and `code`', { structured });
      await cache.put('k1', value);
      expect(await cache.get('k1')).toEqual(value);
      await cache.put('k2', entry('plain'));
      expect(await cache.get('k2')).toEqual(entry('plain'));
      expect(await cache.get('k2')).not.toHaveProperty('structured');
      expect(await cache.size()).toBe(2);
    });

    it('keeps keys apart exactly as given', async () => {
      const keys = ['a', 'A', 'a ', 'a:b', 'é✓'];
      for (const [i, k] of keys.entries()) await cache.put(k, entry(`m${i}`));
      for (const [i, k] of keys.entries())
        expect({ k, v: (await cache.get(k))?.markdown }).toEqual({ k, v: `m${i}` });
      expect(await cache.get('b')).toBeUndefined();
    });

    it('replaces the entry of a key stored again', async () => {
      await cache.put('k1', entry('first'));
      subject.advance(1);
      await cache.put('k1', entry('second', { usage: { inputTokens: 1, outputTokens: 2 } }));
      expect(await cache.get('k1')).toEqual(entry('second', { usage: { inputTokens: 1, outputTokens: 2 } }));
      expect(await cache.size()).toBe(1);
    });

    it('shares no object with its callers', async () => {
      const value = entry('x', { structured: { kind: 'hint', hint: { text: 'h', level: 1 } } });
      await cache.put('k1', value);
      value.markdown = 'changed';
      value.usage.inputTokens = 0;
      const first = await cache.get('k1');
      if (first?.structured?.kind === 'hint') first.structured.hint.text = 'changed';
      expect(await cache.get('k1')).toEqual(
        entry('x', { structured: { kind: 'hint', hint: { text: 'h', level: 1 } } }),
      );
    });

    it('misses an entry older than the TTL, and no longer counts it', async () => {
      await cache.put('old', entry('old'));
      subject.advance(CONTRACT_LIMITS.ttlMs - 1);
      await cache.put('young', entry('young'));
      expect((await cache.get('old'))?.markdown).toBe('old');
      subject.advance(1);
      expect(await cache.get('old')).toBeUndefined();
      expect((await cache.get('young'))?.markdown).toBe('young');
      expect(await cache.size()).toBe(1);
    });

    it('keeps at most maxEntries: storing more removes the oldest stored first', async () => {
      for (let i = 0; i < CONTRACT_LIMITS.maxEntries + 2; i++) {
        await cache.put(`k${i}`, entry(`m${i}`));
        subject.advance(1);
      }
      expect(await cache.size()).toBe(CONTRACT_LIMITS.maxEntries);
      expect(await cache.get('k0')).toBeUndefined();
      expect(await cache.get('k1')).toBeUndefined();
      for (let i = 2; i < CONTRACT_LIMITS.maxEntries + 2; i++)
        expect((await cache.get(`k${i}`))?.markdown).toBe(`m${i}`);
    });

    it('clears every entry and says how many there were', async () => {
      await cache.put('k1', entry('a'));
      await cache.put('k2', entry('b'));
      expect(await cache.clear()).toBe(2);
      expect(await cache.get('k1')).toBeUndefined();
      expect(await cache.size()).toBe(0);
      expect(await cache.clear()).toBe(0);
      await cache.put('k1', entry('again'));
      expect((await cache.get('k1'))?.markdown).toBe('again');
    });

    it('loses nothing when many stores run at once', async () => {
      const n = CONTRACT_LIMITS.maxEntries;
      await Promise.all(Array.from({ length: n }, (_, i) => cache.put(`k${i}`, entry(`m${i}`))));
      expect(await cache.size()).toBe(n);
      for (let i = 0; i < n; i++) expect((await cache.get(`k${i}`))?.markdown).toBe(`m${i}`);
    });

    it('keeps a large output whole', async () => {
      const markdown = 'x'.repeat(512 * 1024) + '末';
      await cache.put('big', entry(markdown));
      expect((await cache.get('big'))?.markdown).toBe(markdown);
    });

    it('is shared with another process on the same data (and survives a restart)', async () => {
      if (!subject.reopen) return; // kept in the object alone: nothing to open again
      await cache.put('k1', entry('shared'));
      const other = await subject.reopen();
      expect(await other.get('k1')).toEqual(entry('shared'));
      await other.put('k2', entry('from the other'));
      expect((await other.get('k2'))?.markdown).toBe('from the other');
      expect(await other.size()).toBe(2);
    });
  });
}
