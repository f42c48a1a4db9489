import type { Driver } from 'neo4j-driver';
import { http } from './harness';

/** One `LearningEvent` of a task as the graph holds it, with what it is linked to. */
export interface GraphEvent {
  eventId: string;
  type: string;
  agentType: string;
  nodeId: string | null;
  concept: string;
  /** How many `LearningEvent` nodes carry this event id (exactly once: 1). */
  copies: number;
  /** `(event)-[:ABOUT]->(:Node)`: node ids it points to. */
  about: string[];
  /** `(event)-[:IN_SESSION]->(:BatchSession)`: task ids. */
  sessions: string[];
  /** `(:Canvas)-[:CONTAINS_NODE]->(node)` for the ABOUT node: canvas paths. */
  canvases: string[];
  /** `(node)-[:HAS_CONCEPT]->(:Concept)`: concept names. */
  concepts: string[];
}

/** Every learning event of a task, read back with Cypher, ordered by node id then type. */
export async function graphEventsOf(driver: Driver, taskId: string): Promise<GraphEvent[]> {
  const { records } = await driver.executeQuery(
    `MATCH (e:LearningEvent {task_id: $taskId})
     WITH e.event_id AS id, collect(e) AS copies
     WITH id, copies, copies[0] AS e
     OPTIONAL MATCH (e)-[:ABOUT]->(n:Node)
     OPTIONAL MATCH (c:Canvas)-[:CONTAINS_NODE]->(n)
     OPTIONAL MATCH (n)-[:HAS_CONCEPT]->(k:Concept)
     OPTIONAL MATCH (e)-[:IN_SESSION]->(s:BatchSession)
     RETURN id, size(copies) AS copies, e.type AS type, e.agent_type AS agentType, e.node_id AS nodeId,
            e.concept AS concept, collect(n.node_id) AS about, collect(DISTINCT s.task_id) AS sessions,
            collect(DISTINCT c.path) AS canvases, collect(DISTINCT k.name) AS concepts
     ORDER BY nodeId, type, id`,
    { taskId },
  );
  return records.map((r) => ({
    eventId: r.get('id') as string,
    copies: r.get('copies') as number,
    type: r.get('type') as string,
    agentType: r.get('agentType') as string,
    nodeId: (r.get('nodeId') as string | null) ?? null,
    concept: r.get('concept') as string,
    about: r.get('about') as string[],
    sessions: r.get('sessions') as string[],
    canvases: r.get('canvases') as string[],
    concepts: r.get('concepts') as string[],
  }));
}

/** Relationship counts of a task's events: each must be 1 per event (MERGE never doubles one). */
export async function relationshipCounts(
  driver: Driver,
  taskId: string,
): Promise<{ events: number; about: number; inSession: number; sessions: number }> {
  const { records } = await driver.executeQuery(
    `MATCH (e:LearningEvent {task_id: $taskId})
     OPTIONAL MATCH (e)-[a:ABOUT]->()
     WITH e, count(a) AS about
     OPTIONAL MATCH (e)-[i:IN_SESSION]->()
     WITH e, about, count(i) AS inSession
     RETURN count(e) AS events, sum(about) AS about, sum(inSession) AS inSession,
            COUNT { MATCH (:BatchSession {task_id: $taskId}) } AS sessions`,
    { taskId },
  );
  const r = records[0];
  return {
    events: r.get('events') as number,
    about: r.get('about') as number,
    inSession: r.get('inSession') as number,
    sessions: r.get('sessions') as number,
  };
}

export interface MemoryStatusBody {
  store: string;
  target: string;
  state: string;
  pending: number;
  delivered: number;
  failed_attempts: number;
  last_error: string | null;
  last_error_at: string | null;
  oldest_pending_age_seconds: number | null;
  last_delivery_at: string | null;
  next_retry_at: string | null;
}

/** Polls `GET /memory/status` until `until` holds (generous bound: delivery is asynchronous on purpose). */
export async function waitMemory(
  url: string,
  until: (s: MemoryStatusBody) => boolean,
  timeoutMs = 120_000,
): Promise<MemoryStatusBody> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const { status, body } = await http<MemoryStatusBody>('GET', `${url}/memory/status`);
    if (status === 200 && until(body)) return body;
    if (Date.now() > end) {
      throw new Error(`memory status never reached the expected state: ${JSON.stringify(body)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
