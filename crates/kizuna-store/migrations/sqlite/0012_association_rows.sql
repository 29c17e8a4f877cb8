-- A many-to-many association is one row of record_refs, read both ways
-- (`records/read.rs`, `related_sql`), rather than a row each way: half the
-- rows and index entries for every association a sync makes (a Campaign's
-- attendees: BENCHMARKS.md, attendee-sync). `pair` tells an association
-- from a lookup, which lists the record holding it on its target's page
-- only.
ALTER TABLE record_refs ADD COLUMN pair INTEGER NOT NULL DEFAULT 0;

-- Associations made before were two rows, one each way, named
-- `A<>B` (`association_name`); the older direction's row is kept.
UPDATE record_refs SET pair = 1
WHERE field LIKE '%<>%' AND EXISTS (
    SELECT 1 FROM record_refs y
    WHERE y.from_id = record_refs.to_id AND y.field = record_refs.field AND y.to_id = record_refs.from_id);
DELETE FROM record_refs WHERE pair = 1 AND from_id < to_id;
