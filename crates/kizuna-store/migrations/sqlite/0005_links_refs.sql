-- Links by CRM record, crm_id first, as on PostgreSQL (where it keeps the
-- planner on the primary key for lookups by the other side's ids).
DROP INDEX sync_links_crm;
CREATE INDEX sync_links_crm ON sync_links(crm_id, integration_id, data_type);

-- record_refs without foreign keys, as on PostgreSQL: the store checks what
-- each row refers to in the row's transaction, and the purge deletes a
-- record's rows itself. SQLite cannot drop a constraint: the table is made
-- again, WITHOUT ROWID, so that a row is one entry of its key's b-tree instead
-- of a table row plus a key index entry.
CREATE TABLE record_refs_new (
    org_id  INTEGER NOT NULL,
    from_id INTEGER NOT NULL,
    field   TEXT NOT NULL,
    to_id   INTEGER NOT NULL,
    PRIMARY KEY (from_id, field, to_id)
) WITHOUT ROWID;
INSERT INTO record_refs_new (org_id, from_id, field, to_id)
    SELECT org_id, from_id, field, to_id FROM record_refs;
DROP TABLE record_refs;
ALTER TABLE record_refs_new RENAME TO record_refs;
CREATE INDEX record_refs_to ON record_refs(to_id);
