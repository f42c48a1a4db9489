import { Module } from '@nestjs/common';
import { EventLog } from './event-log';
import { TaskCleanupService } from './task-cleanup.service';
import { SqliteEventLog } from './sqlite-event-log';
import {
  SESSION_OPTIONS,
  SessionConfigurableModule,
  type SessionModuleOptions,
  RESULT_CACHE_DEFAULTS,
} from './session.module-definition';
import { SqliteDatabase } from '../database';
import { BudgetLedger } from './budget-ledger';
import { GeneratedNodes } from './generated-nodes';
import { RedisBudgetLedger } from './redis-budget-ledger';
import { SqliteBudgetLedger } from './sqlite-budget-ledger';
import { RedisGeneratedNodes } from './redis-generated-nodes';
import { SqliteGeneratedNodes } from './sqlite-generated-nodes';
import { RedisEventLog } from './redis-event-log';
import { RedisResultCache } from './redis-result-cache';
import { ResultCache } from './result-cache';
import { SqliteResultCache } from './sqlite-result-cache';
import { RedisTaskStore } from './redis-task-store';
import { SqliteTaskStore } from './sqlite-task-store';
import { TaskStore } from './task-store';

/**
 * Task lifecycle and storage: the `TaskStore`, `EventLog`, `GeneratedNodes`, `ResultCache` and `BudgetLedger` ports — SQLite adapters (the embedded engine), or Redis
 * ones when `redis` is given (the distributed engine: every process of the service shares them) — and the cleanup
 * loop. Import it with
 * `forRoot({ cleanupIntervalMs, imports: [database] })` (or `forRootAsync`), `database` being the application's one
 * `DatabaseModule.forRoot(...)`.
 */
@Module({
  providers: [
    {
      provide: EventLog,
      inject: [SESSION_OPTIONS, SqliteDatabase],
      useFactory: (options: SessionModuleOptions, db: SqliteDatabase): EventLog =>
        options.redis
          ? new RedisEventLog({
              url: options.redis.url,
              prefix: options.redis.prefix,
              name: options.redis.instanceId,
            })
          : new SqliteEventLog(db),
    },
    {
      provide: TaskStore,
      inject: [EventLog, SqliteDatabase],
      useFactory: (events: EventLog, db: SqliteDatabase): TaskStore =>
        events instanceof RedisEventLog ? new RedisTaskStore(events) : new SqliteTaskStore(db, events),
    },
    {
      provide: GeneratedNodes,
      inject: [EventLog, SqliteDatabase],
      useFactory: (events: EventLog, db: SqliteDatabase): GeneratedNodes =>
        events instanceof RedisEventLog ? new RedisGeneratedNodes(events) : new SqliteGeneratedNodes(db),
    },
    {
      provide: ResultCache,
      inject: [SESSION_OPTIONS, EventLog, SqliteDatabase],
      useFactory: (options: SessionModuleOptions, events: EventLog, db: SqliteDatabase): ResultCache => {
        const limits = options.resultCacheLimits ?? RESULT_CACHE_DEFAULTS;
        return events instanceof RedisEventLog
          ? new RedisResultCache(events, limits)
          : new SqliteResultCache(db, limits);
      },
    },
    {
      provide: BudgetLedger,
      inject: [EventLog, SqliteDatabase],
      useFactory: (events: EventLog, db: SqliteDatabase): BudgetLedger =>
        events instanceof RedisEventLog ? new RedisBudgetLedger(events) : new SqliteBudgetLedger(db),
    },
    TaskCleanupService,
  ],
  exports: [TaskStore, EventLog, GeneratedNodes, ResultCache, BudgetLedger],
})
export class SessionModule extends SessionConfigurableModule {}
