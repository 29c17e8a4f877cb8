-- Integrations between orgs, and what the sync engine keeps for each.

CREATE TABLE integrations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,                   -- crm-events, crm-desk, …
    from_org    INTEGER NOT NULL REFERENCES orgs(id),
    to_org      INTEGER REFERENCES orgs(id),     -- NULL for the mail connector
    state       TEXT NOT NULL,                   -- pending, active, paused, disabled, deleted
    created_by  INTEGER NOT NULL REFERENCES users(id),
    created_at  INTEGER NOT NULL,
    enabled_by  INTEGER REFERENCES users(id),
    enabled_at  INTEGER,
    acting_user INTEGER NOT NULL REFERENCES users(id),  -- whose rights it runs with (GEN-10)
    settings    TEXT NOT NULL DEFAULT '{}',
    mapping     TEXT NOT NULL DEFAULT '[]',
    stopped     TEXT,                            -- why the engine stopped it (error JSON), if it did
    updated_at  INTEGER NOT NULL,
    deleted_at  INTEGER
);
-- GEN-3: one live integration of a kind per org, on either side.
CREATE UNIQUE INDEX integrations_one_from ON integrations(kind, from_org) WHERE state <> 'deleted' AND to_org IS NOT NULL;
CREATE UNIQUE INDEX integrations_one_to ON integrations(kind, to_org) WHERE state <> 'deleted';
CREATE INDEX integrations_org_from ON integrations(from_org);
CREATE INDEX integrations_org_to ON integrations(to_org);
