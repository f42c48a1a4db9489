import { Logger, type OnApplicationShutdown } from '@nestjs/common';
import neo4j, { type Driver } from 'neo4j-driver';
import { connect } from 'node:net';
import type { MemoryEventDraft } from './memory-outbox';
import {
  type DeliveryReceipt,
  MemoryStore,
  type RecallQuery,
  type RecalledMemoryEvent,
} from './memory-store';

/** How to reach Neo4j (`NEO4J_URI`, `NEO4J_USER`, `NEO4J_PASSWORD`, `NEO4J_DATABASE`). */
export interface Neo4jConnectionOptions {
  uri: string;
  user: string;
  password: string;
  /** The database to write to; default: the server's default database. */
  database?: string;
}

/** How long a start-up waits for the graph model's indexes (constraints included) to be online, in seconds. */
const SCHEMA_ONLINE_TIMEOUT_S = 60;

/** Uniqueness constraints (and two lookup indexes) of the graph model; every statement is idempotent. */
export const NEO4J_SCHEMA: readonly string[] = [
  'CREATE CONSTRAINT learning_event_id IF NOT EXISTS FOR (e:LearningEvent) REQUIRE e.event_id IS UNIQUE',
  'CREATE CONSTRAINT canvas_path IF NOT EXISTS FOR (c:Canvas) REQUIRE c.path IS UNIQUE',
  'CREATE CONSTRAINT node_canvas_path_node_id IF NOT EXISTS FOR (n:Node) REQUIRE (n.canvas_path, n.node_id) IS UNIQUE',
  'CREATE CONSTRAINT batch_session_task_id IF NOT EXISTS FOR (s:BatchSession) REQUIRE s.task_id IS UNIQUE',
  'CREATE CONSTRAINT concept_name IF NOT EXISTS FOR (k:Concept) REQUIRE k.name IS UNIQUE',
  'CREATE INDEX learning_event_type IF NOT EXISTS FOR (e:LearningEvent) ON (e.type)',
  'CREATE INDEX learning_event_created_at IF NOT EXISTS FOR (e:LearningEvent) ON (e.created_at)',
];

/**
 * One round trip for a whole batch. Every node and relationship is MERGEd on its key, and a `LearningEvent`'s
 * properties are set only when it is created, so delivering an event again changes nothing: the graph holds each
 * event once however often it was delivered.
 */
export const NEO4J_DELIVER = `
UNWIND $events AS e
MERGE (s:BatchSession {task_id: e.task_id})
  ON CREATE SET s.canvas_path = e.canvas_path
MERGE (c:Canvas {path: e.canvas_path})
MERGE (s)-[:ON_CANVAS]->(c)
MERGE (ev:LearningEvent {event_id: e.event_id})
  ON CREATE SET ev += e.props, ev.type = e.type, ev.agent_type = e.agent_type, ev.task_id = e.task_id,
    ev.concept = e.concept, ev.canvas_path = e.canvas_path, ev.node_id = e.node_id,
    ev.created_at = datetime(e.created_at)
MERGE (ev)-[:IN_SESSION]->(s)
FOREACH (_ IN CASE WHEN e.type = 'canvas_opened' THEN [1] ELSE [] END |
  SET s.started_at = coalesce(s.started_at, datetime(e.created_at)))
FOREACH (_ IN CASE WHEN e.node_id IS NULL THEN [] ELSE [1] END |
  MERGE (n:Node {canvas_path: e.canvas_path, node_id: e.node_id})
  MERGE (c)-[:CONTAINS_NODE]->(n)
  MERGE (ev)-[:ABOUT]->(n)
  FOREACH (_k IN CASE WHEN e.concept = '' THEN [] ELSE [1] END |
    MERGE (k:Concept {name: e.concept})
    MERGE (n)-[:HAS_CONCEPT]->(k)))
RETURN count(e) AS stored`;

/**
 * The read side: a task's events through its session (the `BatchSession.task_id` constraint is the index), all of
 * them or those about some nodes plus the node-less ones, in delivery order. `created_at` comes back as text.
 */
export const NEO4J_RECALL = `
MATCH (:BatchSession {task_id: $taskId})<-[:IN_SESSION]-(e:LearningEvent)
WHERE $nodeIds IS NULL OR e.node_id IS NULL OR e.node_id IN $nodeIds
WITH e ORDER BY e.created_at, e.event_id
RETURN e {.*, created_at: toString(e.created_at)} AS e`;

/** The model's own properties: a payload key of the same name never overwrites them. */
const RESERVED = new Set([
  'event_id',
  'type',
  'agent_type',
  'task_id',
  'concept',
  'canvas_path',
  'node_id',
  'created_at',
]);

/** Outbox event → query parameter; payload members become properties when they are scalars with a plain name. */
export function toNeo4jParams(e: MemoryEventDraft): Record<string, unknown> {
  const props: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(e.payload)) {
    if (RESERVED.has(k) || !/^[a-z][a-z0-9_]{0,63}$/.test(k)) continue;
    if (typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) {
      props[k] = v;
    }
  }
  return {
    event_id: e.eventId,
    type: e.memoryType,
    agent_type: e.agentType,
    task_id: e.taskId,
    canvas_path: e.canvasPath,
    node_id: e.nodeId,
    concept: e.concept,
    created_at: e.createdAt,
    props,
  };
}

/** A `LearningEvent`'s properties (as `NEO4J_RECALL` returns them) → the port's event; other properties are payload. */
export function fromNeo4jEvent(props: Record<string, unknown>): RecalledMemoryEvent {
  const payload: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(props)) if (!RESERVED.has(k)) payload[k] = v;
  const text = (k: string): string => (typeof props[k] === 'string' ? props[k] : '');
  const created = Date.parse(text('created_at'));
  return {
    eventId: text('event_id'),
    taskId: text('task_id'),
    type: text('type'),
    agentType: text('agent_type'),
    canvasPath: text('canvas_path'),
    nodeId: typeof props.node_id === 'string' ? props.node_id : null,
    concept: text('concept'),
    // Neo4j prints whole seconds without a fraction: back to the outbox's form (milliseconds, Z)
    createdAt: Number.isFinite(created) ? new Date(created).toISOString() : text('created_at'),
    payload,
  };
}

/**
 * The Neo4j adapter. The driver is created with the store (it connects lazily) and closed on shutdown; the schema
 * is ensured before the first delivery. Credentials go to the driver only: `target` and every message name the URI
 * alone.
 */
export class Neo4jMemoryStore extends MemoryStore implements OnApplicationShutdown {
  readonly kind = 'neo4j';
  readonly target: string;
  private readonly logger = new Logger(Neo4jMemoryStore.name);
  private readonly driver: Driver;
  private schemaReady = false;
  private closed = false;
  /** Whether the next call checks the server answers before the driver talks to it (at start, after a failure). */
  private suspect = true;

  /** `timeoutMs`: bound of one connection attempt and of one transaction on the server. */
  constructor(
    private readonly connection: Neo4jConnectionOptions,
    private readonly timeoutMs = 30_000,
    private readonly closeTimeoutMs = 5_000,
  ) {
    super();
    this.target = `Neo4j at ${connection.uri}${connection.database ? ` (database ${connection.database})` : ''}`;
    this.driver = neo4j.driver(connection.uri, neo4j.auth.basic(connection.user, connection.password), {
      connectionTimeout: Math.min(timeoutMs, 10_000),
      connectionAcquisitionTimeout: timeoutMs,
      // the drain loop has its own retry with backoff: the driver fails fast instead of retrying for 30 s
      maxTransactionRetryTime: 0,
      disableLosslessIntegers: true,
      userAgent: 'canvas-batch',
    });
  }

  async prepare(): Promise<string> {
    await this.probe();
    const info = await this.driver.getServerInfo(
      this.connection.database ? { database: this.connection.database } : {},
    );
    await this.ensureSchema();
    return `${this.target} (${info.agent ?? 'Neo4j'}, Bolt ${String(info.protocolVersion ?? '?')})`;
  }

  async deliver(events: readonly MemoryEventDraft[], signal?: AbortSignal): Promise<DeliveryReceipt> {
    try {
      if (this.suspect) await this.probe();
      if (!this.schemaReady) await this.ensureSchema(signal);
      const { records } = await this.driver.executeQuery(
        NEO4J_DELIVER,
        { events: events.map(toNeo4jParams) },
        {
          routing: neo4j.routing.WRITE,
          database: this.connection.database,
          transactionConfig: { timeout: this.timeoutMs },
          signal,
        },
      );
      this.suspect = false;
      return { stored: Number(records[0]?.get('stored')) };
    } catch (err) {
      this.suspect = true;
      throw err;
    }
  }

  /** Read-only, bounded on the server by the transaction timeout and here by `signal`. */
  override async recall(
    { taskId, nodeIds }: RecallQuery,
    signal?: AbortSignal,
  ): Promise<RecalledMemoryEvent[]> {
    try {
      if (this.suspect) await this.probe();
      const { records } = await this.driver.executeQuery(
        NEO4J_RECALL,
        { taskId, nodeIds: nodeIds === undefined ? null : [...nodeIds] },
        {
          routing: neo4j.routing.READ,
          database: this.connection.database,
          transactionConfig: { timeout: this.timeoutMs },
          signal,
        },
      );
      this.suspect = false;
      return records.map((r) => fromNeo4jEvent(r.get('e') as Record<string, unknown>));
    } catch (err) {
      this.suspect = true;
      throw err;
    }
  }

  /**
   * neo4j-driver 6 bounds the TCP connect but not the Bolt handshake: a server that accepts and never answers keeps
   * the driver's socket open forever, even after `driver.close()` (and with it the process). So, before the driver
   * talks to a server that failed (or was never seen), this checks with a socket of its own, bounded and always
   * destroyed, that it answers the Bolt handshake (TLS schemes: that it accepts a connection).
   */
  private probe(): Promise<void> {
    const url = new URL(this.connection.uri);
    const tls = url.protocol.includes('+s');
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(url.port || 7687);
    const ms = Math.min(this.timeoutMs, 10_000);
    return new Promise<void>((resolve, reject) => {
      const socket = connect({ host, port });
      const finish = (err?: Error): void => {
        clearTimeout(timer);
        socket.destroy();
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(
        () => finish(new Error(`${this.target} did not answer the Bolt handshake within ${ms} ms`)),
        ms,
      );
      socket.once('error', (err) => finish(new Error(`cannot reach ${this.target}: ${err.message}`)));
      socket.once('connect', () => {
        if (tls) return finish();
        // magic preamble, then four proposed versions: 5.0–5.8 and 4.4 (the answer itself does not matter)
        socket.write(Buffer.from([0x60, 0x60, 0xb0, 0x17, 0, 8, 8, 5, 0, 0, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0]));
      });
      let received = 0;
      socket.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received >= 4) finish();
      });
      socket.once('end', () =>
        finish(new Error(`${this.target} closed the connection during the Bolt handshake`)),
      );
    });
  }

  /** Last phase of shutdown (after the drain loop's final attempt): closes the driver, never waiting unbounded. */
  async onApplicationShutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.closeTimeoutMs);
    });
    const outcome = await Promise.race([this.driver.close().then(() => 'closed' as const), bound]).catch(
      (err: unknown) => `failed: ${err instanceof Error ? err.message : String(err)}`,
    );
    clearTimeout(timer);
    if (outcome !== 'closed')
      this.logger.warn(`Neo4j driver close ${outcome === 'timeout' ? 'timed out' : outcome}`);
  }

  /**
   * Constraints first, so that writers never race to create duplicates. A statement the server refuses (a schema
   * error, e.g. another process creating the same constraint at this moment, or data that breaks it) is logged once
   * and not retried by this process: the MERGE writes stay idempotent without it. Connection errors propagate (the
   * attempt fails and is retried).
   */
  private async ensureSchema(signal?: AbortSignal): Promise<void> {
    // schema statements cannot share a transaction with writes: one auto-commit query each
    for (const statement of NEO4J_SCHEMA) {
      try {
        await this.schemaStatement(statement, signal);
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (typeof code !== 'string' || !code.startsWith('Neo.ClientError.Schema.')) throw err;
        this.logger.warn(
          `${this.target}: "${statement}" refused (${code}: ${(err as Error).message}); delivering without it`,
        );
      }
    }
    // Another process creating a constraint right now makes IF NOT EXISTS return while its index still populates:
    // writes before it is online could slip duplicates past it (and its creation then fails for good). Wait for it.
    try {
      await this.schemaStatement(`CALL db.awaitIndexes(${SCHEMA_ONLINE_TIMEOUT_S})`, signal);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code !== 'string' || !code.startsWith('Neo.ClientError.')) throw err;
      this.logger.warn(
        `${this.target}: indexes not all online (${code}: ${(err as Error).message}); delivering anyway`,
      );
    }
    this.schemaReady = true;
  }

  private async schemaStatement(statement: string, signal?: AbortSignal): Promise<void> {
    await this.driver.executeQuery(
      statement,
      {},
      { routing: neo4j.routing.WRITE, database: this.connection.database, signal },
    );
  }
}
