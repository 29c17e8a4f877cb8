-- Conflicts held for a person to decide (conflict policy `hold`): the same
-- field of a linked pair changed differently on both sides. Neither side is
-- written; the pair's base keeps the value both last agreed on. One row per
-- pair and field: a sync that finds the same conflict again does not report
-- it again, and one that finds the two sides agreeing again removes it.
CREATE TABLE sync_held (
    id             BIGSERIAL PRIMARY KEY,
    integration_id BIGINT NOT NULL REFERENCES integrations(id),
    data_type      TEXT NOT NULL,
    other_id       BIGINT NOT NULL,
    crm_id         BIGINT NOT NULL,
    crm_module     TEXT NOT NULL,
    field          TEXT NOT NULL,
    base_value     JSONB NOT NULL,               -- as sync_links.synced
    crm_value      JSONB NOT NULL,
    other_value    JSONB NOT NULL,
    held_at        BIGINT NOT NULL,
    UNIQUE (integration_id, data_type, other_id, field)
);
