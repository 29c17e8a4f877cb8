-- Links by CRM record, crm_id first: a lookup of links by the other side's
-- ids then has only the primary key to seek. With the old order (the key's
-- first two columns) and statistics taken while the table was nearly empty
-- (before autovacuum's first analyze), PostgreSQL read this index by
-- integration and data type and filtered every link of the integration.
DROP INDEX sync_links_crm;
CREATE INDEX sync_links_crm ON sync_links(crm_id, integration_id, data_type);

-- record_refs without foreign keys. The store writes every row for records it
-- has just checked in the same transaction (a lookup's target live in the
-- org, both sides of an association live), and the purge deletes a record's
-- rows itself. The checks cost more than the rows they guard: two per row,
-- each locking the record it refers to (a write to that record's page); they
-- took most of the time a sync spent writing associations.
ALTER TABLE record_refs
    DROP CONSTRAINT record_refs_from_id_fkey,
    DROP CONSTRAINT record_refs_to_id_fkey;
