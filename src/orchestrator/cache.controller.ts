import { Controller, Delete, HttpCode } from '@nestjs/common';
import { ResultCache } from '../session';

export class CacheClearedDto {
  /** Entries removed (expired ones not yet removed included). */
  removed!: number;
}

@Controller('cache')
export class CacheController {
  constructor(private readonly cache: ResultCache) {}

  /**
   * Empties the result cache (every process's, on the distributed engine): the next run of any node calls its agent.
   * Batches running meanwhile are not disturbed (a lookup then simply misses).
   */
  @Delete()
  @HttpCode(200)
  async clear(): Promise<CacheClearedDto> {
    return { removed: await this.cache.clear() };
  }
}
