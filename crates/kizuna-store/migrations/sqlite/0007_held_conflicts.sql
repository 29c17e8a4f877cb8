-- Conflicts held for a person to decide (conflict policy `hold`): the same
-- field of a linked pair changed differently on both sides. Neither side is
-- written; the pair's base keeps the value both last agreed on. One row per
-- pair and field: a sync that finds the same conflict again does not report
-- it again, and one that finds the two sides agreeing again removes it.
CREATE TABLE sync_held (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    integration_id INTEGER NOT NULL REFERENCES integrations(id),
    data_type      TEXT NOT NULL,
    other_id       INTEGER NOT NULL,
    crm_id         INTEGER NOT NULL,
    crm_module     TEXT NOT NULL,
    field          TEXT NOT NULL,
    base_value     TEXT NOT NULL,                -- JSON, as in sync_links.synced
    crm_value      TEXT NOT NULL,
    other_value    TEXT NOT NULL,
    held_at        INTEGER NOT NULL,
    UNIQUE (integration_id, data_type, other_id, field)
);
