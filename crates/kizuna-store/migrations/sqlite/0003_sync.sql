-- The sync engine: where each integration has read up to, which records it
-- links, what each run did, the jobs the workers share, and administrator mail.

-- The transaction that wrote a change. SQLite has one writer at a time, so
-- commit order is seq order and this stays 0; see the PostgreSQL migration.
ALTER TABLE changes ADD COLUMN txid INTEGER NOT NULL DEFAULT 0;
CREATE INDEX changes_stream ON changes(org_id, module, txid, seq);

-- How far a stream (one org's changes to one module) has been read by an integration.
CREATE TABLE sync_cursors (
    integration_id INTEGER NOT NULL REFERENCES integrations(id),
    stream         TEXT NOT NULL,
    txid           INTEGER NOT NULL DEFAULT 0,
    seq            INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (integration_id, stream)
);

-- A CRM record and its twin in the other app, with what the last sync saw.
CREATE TABLE sync_links (
    integration_id INTEGER NOT NULL REFERENCES integrations(id),
    data_type      TEXT NOT NULL,                -- attendee, event, contact, …
    other_id       INTEGER NOT NULL,             -- the record in the other app
    crm_id         INTEGER NOT NULL,             -- the record in the CRM
    how            TEXT NOT NULL,                -- created (by the link) or matched (existed)
    other_version  INTEGER NOT NULL,
    crm_version    INTEGER NOT NULL,
    synced         TEXT NOT NULL,                -- the mapped values both sides agreed on
    linked_at      INTEGER NOT NULL,
    PRIMARY KEY (integration_id, data_type, other_id)
);
CREATE INDEX sync_links_crm ON sync_links(integration_id, data_type, crm_id);

CREATE TABLE sync_runs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    integration_id INTEGER NOT NULL REFERENCES integrations(id),
    trigger        TEXT NOT NULL,                -- api, worker, cli
    direction      TEXT NOT NULL,                -- events-to-crm, crm-to-events, …
    data_type      TEXT NOT NULL,
    state          TEXT NOT NULL,                -- running, finished, interrupted, failed
    started_at     INTEGER NOT NULL,
    finished_at    INTEGER,
    heartbeat_at   INTEGER NOT NULL,             -- last progress; a stale running run was interrupted
    added          INTEGER NOT NULL DEFAULT 0,
    updated        INTEGER NOT NULL DEFAULT 0,
    linked         INTEGER NOT NULL DEFAULT 0,       -- tied to a record that already existed
    deleted        INTEGER NOT NULL DEFAULT 0,
    skipped        INTEGER NOT NULL DEFAULT 0,
    failed         INTEGER NOT NULL DEFAULT 0,
    error          TEXT                          -- why the run stopped, error JSON
);
CREATE INDEX sync_runs_integration ON sync_runs(integration_id, id);
CREATE INDEX sync_runs_started ON sync_runs(started_at);

-- Every record a run did not simply write: skipped, failed, linked to an
-- existing record, held in conflict, or written with a notice (GEN-8).
CREATE TABLE sync_items (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id         INTEGER NOT NULL REFERENCES sync_runs(id) ON DELETE CASCADE,
    outcome        TEXT NOT NULL,                -- skipped, failed, conflict, notice
    code           TEXT NOT NULL,
    rule           TEXT,
    message        TEXT NOT NULL,                -- {"en", "ja"}
    source_module  TEXT NOT NULL,
    source_id      INTEGER NOT NULL,
    target_module  TEXT,
    target_id      INTEGER,
    details        TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX sync_items_run ON sync_items(run_id, id);

-- Background work, shared by every server process on one database.
CREATE TABLE jobs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    kind           TEXT NOT NULL,                -- sync
    integration_id INTEGER REFERENCES integrations(id),
    state          TEXT NOT NULL,                -- idle, queued, running
    run_after      INTEGER NOT NULL,
    lease_owner    TEXT,
    lease_until    INTEGER,
    attempts       INTEGER NOT NULL DEFAULT 0,
    again          INTEGER NOT NULL DEFAULT 0,  -- more work arrived while it ran
    last_error     TEXT,
    created_at     INTEGER NOT NULL
);
CREATE UNIQUE INDEX jobs_one_per_integration ON jobs(kind, integration_id);
CREATE INDEX jobs_due ON jobs(state, run_after);
