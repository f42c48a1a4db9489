/**
 * Forward-only schema migrations, applied in order at start-up inside one transaction each.
 * `PRAGMA user_version` records the last applied version. Never edit a released migration: add a new one.
 */
export const MIGRATIONS: readonly string[] = [
  /* 1 */ `
  CREATE TABLE tasks (
    task_id          TEXT PRIMARY KEY,
    canvas_path      TEXT NOT NULL,
    status           TEXT NOT NULL,
    max_concurrent   INTEGER NOT NULL,
    timeout_ms       INTEGER NOT NULL,
    groups_json      TEXT NOT NULL,
    total_nodes      INTEGER NOT NULL,
    created_at       TEXT NOT NULL,
    started_at       TEXT,
    completed_at     TEXT,
    deadline_at      TEXT,
    error_message    TEXT,
    metrics_json     TEXT,
    last_event_id    INTEGER NOT NULL DEFAULT 0,
    idempotency_key  TEXT UNIQUE,
    request_hash     TEXT,
    expires_at       TEXT
  );
  CREATE INDEX tasks_created_at ON tasks (created_at DESC);
  CREATE INDEX tasks_expires_at ON tasks (expires_at) WHERE expires_at IS NOT NULL;

  CREATE TABLE node_results (
    task_id        TEXT NOT NULL REFERENCES tasks (task_id) ON DELETE CASCADE,
    group_index    INTEGER NOT NULL,
    node_id        TEXT NOT NULL,
    outcome        TEXT NOT NULL CHECK (outcome IN ('completed', 'failed', 'skipped')),
    file_path      TEXT,
    file_size      INTEGER,
    duration_ms    INTEGER,
    error_message  TEXT,
    error_type     TEXT,
    input_tokens   INTEGER NOT NULL DEFAULT 0,
    output_tokens  INTEGER NOT NULL DEFAULT 0,
    started_at     TEXT,
    finished_at    TEXT NOT NULL,
    PRIMARY KEY (task_id, group_index, node_id)
  ) WITHOUT ROWID;

  CREATE TABLE task_events (
    task_id    TEXT NOT NULL REFERENCES tasks (task_id) ON DELETE CASCADE,
    event_id   INTEGER NOT NULL,
    type       TEXT NOT NULL,
    timestamp  TEXT NOT NULL,
    data_json  TEXT NOT NULL,
    PRIMARY KEY (task_id, event_id)
  ) WITHOUT ROWID;

  CREATE TABLE memory_outbox (
    event_id      TEXT PRIMARY KEY,
    task_id       TEXT NOT NULL,
    canvas_path   TEXT NOT NULL,
    node_id       TEXT,
    agent_type    TEXT NOT NULL,
    memory_type   TEXT NOT NULL,
    concept       TEXT NOT NULL,
    payload_json  TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    delivered_at  TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT
  );
  CREATE INDEX memory_outbox_pending ON memory_outbox (created_at) WHERE delivered_at IS NULL;
  `,
  /* 2: resumption after a restart */ `
  ALTER TABLE tasks ADD COLUMN resume_count INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE tasks ADD COLUMN peak_concurrent INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE tasks ADD COLUMN cancel_requested TEXT;
  CREATE INDEX tasks_unfinished ON tasks (created_at) WHERE status IN ('pending', 'running');
  `,
  /* 3: provider calls per node (retries included); NULL for skipped nodes and rows from before */ `
  ALTER TABLE node_results ADD COLUMN attempts INTEGER;
  `,
  /* 4: per-agent duration estimates (longest-expected-first dispatch); paged status */ `
  CREATE TABLE agent_duration_estimates (
    agent_type   TEXT PRIMARY KEY,
    mean_ms      REAL NOT NULL,
    samples      INTEGER NOT NULL,
    updated_at   TEXT NOT NULL
  ) WITHOUT ROWID;
  -- status pages: a group's results of one outcome in the order they finished
  CREATE INDEX node_results_page ON node_results (task_id, group_index, outcome, finished_at, node_id);
  `,
  /* 5: learning memory delivered by the drain loop; the embedded memory store */ `
  CREATE TABLE memory_events (
    event_id      TEXT PRIMARY KEY,
    type          TEXT NOT NULL,
    agent_type    TEXT NOT NULL,
    task_id       TEXT NOT NULL,
    canvas_path   TEXT NOT NULL,
    node_id       TEXT,
    concept       TEXT NOT NULL,
    payload_json  TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    stored_at     TEXT NOT NULL
  );
  CREATE INDEX memory_events_canvas ON memory_events (canvas_path, node_id);
  CREATE INDEX memory_events_task ON memory_events (task_id);
  CREATE INDEX memory_events_concept ON memory_events (concept);
  `,
  /* 6: what the size caps left out of a node's run (JSON of NodeTruncation); NULL when nothing was cut */ `
  ALTER TABLE node_results ADD COLUMN truncated_json TEXT;
  `,
  /* 7: every card and edge the service added to a canvas (kept after its task expires: the cards stay) */ `
  CREATE TABLE generated_items (
    canvas_path  TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('node', 'edge')),
    item_id      TEXT NOT NULL,
    task_id      TEXT NOT NULL,
    PRIMARY KEY (canvas_path, kind, item_id)
  ) WITHOUT ROWID;
  `,
  /* 8: a task's learning events read back in delivery order (GET /parallel/status/{task_id}/memory) */ `
  CREATE INDEX memory_outbox_task ON memory_outbox (task_id, created_at, event_id);
  `,
  /* 9: the result cache ("never pay twice"); a batch's opt-out (`cache: false`); which results came from it */ `
  CREATE TABLE result_cache (
    cache_key        TEXT PRIMARY KEY,
    markdown         TEXT NOT NULL,
    structured_json  TEXT,
    input_tokens     INTEGER NOT NULL,
    output_tokens    INTEGER NOT NULL,
    created_at       TEXT NOT NULL
  );
  CREATE INDEX result_cache_created ON result_cache (created_at);
  ALTER TABLE tasks ADD COLUMN result_cache INTEGER NOT NULL DEFAULT 1;
  ALTER TABLE node_results ADD COLUMN cached INTEGER;
  `,
  /* 10: how a node of an `auto` group was routed (JSON of NodeRouting); NULL for other nodes */ `
  ALTER TABLE node_results ADD COLUMN routing_json TEXT;
  `,
  /* 11: budgets — a task's spending limit, its ledger (spent + open reservations), learned output tokens per agent */ `
  ALTER TABLE tasks ADD COLUMN budget_usd REAL;
  CREATE TABLE budget_ledger (
    task_id     TEXT NOT NULL,
    entry       TEXT NOT NULL,
    amount_micro_usd INTEGER NOT NULL,
    PRIMARY KEY (task_id, entry)
  ) WITHOUT ROWID;
  ALTER TABLE agent_duration_estimates ADD COLUMN mean_output_tokens REAL;
  ALTER TABLE agent_duration_estimates ADD COLUMN output_samples INTEGER;
  `,
];
