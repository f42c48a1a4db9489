/**
 * (f) Learning-memory drain: 10,000 pending outbox events delivered by the real drain loop (`MemoryDeliveryService`)
 * to the embedded store and, when NEO4J_URI is set, to Neo4j at batch sizes 100 and 500 (skipped without it).
 */
import { Logger } from '@nestjs/common';
import neo4j from 'neo4j-driver';
import { mkdtempSync } from 'node:fs';
import * as path from 'node:path';
import { resolveOptions } from '../../src/config/canvas-batch-options';
import { SqliteDatabase } from '../../src/database/sqlite-database';
import { EmbeddedMemoryStore } from '../../src/memory/embedded-memory-store';
import { MemoryDeliveryService } from '../../src/memory/memory-delivery.service';
import { memoryEventId } from '../../src/memory/memory-outbox';
import { SqliteMemoryOutbox } from '../../src/memory/sqlite-memory-outbox';
import type { MemoryStore } from '../../src/memory/memory-store';
import { Neo4jMemoryStore } from '../../src/memory/neo4j-memory-store';
import { fmt, obsidianId, out, round, table } from './common';

async function measure<T>(fn: () => Promise<T>): Promise<{ wallMs: number; cpuMs: number; value: T }> {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const value = await fn();
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  return { wallMs, cpuMs: (cpu.user + cpu.system) / 1000, value };
}

export const E_EVENTS = 10_000;

export interface DrainRun {
  store: string;
  batch_size: number;
  events: number;
  wall_ms: number;
  events_per_s: number;
  cpu_ms: number;
}

/** Fills a fresh outbox with `E_EVENTS` pending events of one task, then times the real drain loop emptying it. */
async function drainOnce(
  root: string,
  label: string,
  batchSize: number,
  makeStore: (db: SqliteDatabase) => MemoryStore,
  taskId: string,
): Promise<DrainRun> {
  const dataDir = mkdtempSync(path.join(root, `drain-${label}-`));
  const options = resolveOptions({ vaultRoot: root, dataDir, memoryDelivery: { batchSize, idlePollMs: 5 } });
  const db = new SqliteDatabase(options);
  const outbox = new SqliteMemoryOutbox(db);
  const store = makeStore(db);
  const delivery = new MemoryDeliveryService(outbox, store, options);
  try {
    const t0 = Date.parse('2026-11-26T10:00:00.000Z');
    db.transaction(() => {
      for (let i = 0; i < E_EVENTS; i++) {
        const nodeId = i === 0 ? null : obsidianId('drain', i);
        // the SQLite adapter writes before its promise settles: all of them in this one transaction
        void outbox.append({
          eventId: memoryEventId(taskId, i === 0 ? 'canvas_opened' : nodeId!),
          taskId,
          canvasPath: 'Bench/drain.canvas',
          nodeId,
          agentType: i === 0 ? 'canvas-orchestrator' : 'oral-explanation',
          memoryType: i === 0 ? 'canvas_opened' : 'explanation_generated',
          concept: i === 0 ? 'Bench/drain.canvas' : `Topic ${i % 50}`,
          createdAt: new Date(t0 + i).toISOString(),
          payload:
            i === 0
              ? { total_nodes: E_EVENTS - 1 }
              : { group_id: 'g', file_path: `x/${i}.md`, duration_ms: 1 },
        });
      }
    });
    await store.prepare(); // connection and schema ready: the figure is the drain itself
    const sample = await measure(async () => {
      delivery.onApplicationBootstrap();
      while ((await outbox.oldestPendingCreatedAt()) !== null) await new Promise((r) => setTimeout(r, 5));
    });
    if ((await outbox.counts()).delivered !== E_EVENTS)
      throw new Error(`${label}: not every event was delivered`);
    return {
      store: label,
      batch_size: batchSize,
      events: E_EVENTS,
      wall_ms: round(sample.wallMs, 1),
      events_per_s: round(E_EVENTS / (sample.wallMs / 1000), 0),
      cpu_ms: round(sample.cpuMs, 0),
    };
  } finally {
    await delivery.beforeApplicationShutdown();
    if (store instanceof Neo4jMemoryStore) await store.onApplicationShutdown();
    db.onApplicationShutdown();
  }
}

export async function benchMemoryDrain(root: string) {
  const uri = process.env.NEO4J_URI?.trim();
  Logger.overrideLogger(['error']);
  try {
    const runs: DrainRun[] = [];
    runs.push(await drainOnce(root, 'embedded', 500, (db) => new EmbeddedMemoryStore(db), `bench-embedded`));
    if (!uri) {
      return {
        skipped: 'NEO4J_URI is not set (start test/neo4j-launcher, see docs/testing.md)',
        events: E_EVENTS,
        runs,
      };
    }
    const connection = {
      uri,
      user: process.env.NEO4J_USER?.trim() || 'neo4j',
      password: process.env.NEO4J_PASSWORD ?? '',
    };
    const stamp = Date.now();
    for (const batchSize of [100, 500]) {
      const taskId = `bench-drain-${stamp}-${batchSize}`;
      runs.push(await drainOnce(root, 'neo4j', batchSize, () => new Neo4jMemoryStore(connection), taskId));
      // every event is in the graph exactly once
      const driver = neo4j.driver(connection.uri, neo4j.auth.basic(connection.user, connection.password));
      try {
        const { records } = await driver.executeQuery(
          'MATCH (e:LearningEvent {task_id: $taskId}) RETURN count(e) AS n, count(DISTINCT e.event_id) AS ids',
          { taskId },
        );
        const [n, ids] = [Number(records[0].get('n')), Number(records[0].get('ids'))];
        if (n !== E_EVENTS || ids !== E_EVENTS) {
          throw new Error(`neo4j holds ${n} events (${ids} ids), not ${E_EVENTS}`);
        }
      } finally {
        await driver.close();
      }
    }
    return { skipped: null, events: E_EVENTS, neo4j_uri: uri, runs };
  } finally {
    Logger.overrideLogger(['log', 'error', 'warn']);
  }
}

export function printMemoryDrain(f: Awaited<ReturnType<typeof benchMemoryDrain>>): void {
  out();
  out(`(f) learning-memory drain, ${E_EVENTS.toLocaleString('en')} pending events, real drain loop`);
  out(
    table([
      ['store', 'batch size', 'wall ms', 'events/s', 'CPU ms'],
      ...f.runs.map((r) => [
        r.store,
        String(r.batch_size),
        fmt(r.wall_ms, 1),
        fmt(r.events_per_s, 0),
        fmt(r.cpu_ms, 0),
      ]),
    ]),
  );
  if (f.skipped) out(`Neo4j rows skipped: ${f.skipped}`);
}
