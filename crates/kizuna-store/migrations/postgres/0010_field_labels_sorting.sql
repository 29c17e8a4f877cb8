-- A field's Japanese label (empty: the English one is shown), and whether
-- lists may be sorted by it. A sortable field has an expression index over
-- its value (`sort_index.rs`), made and dropped by the store, not here:
-- which fields are sortable is data.
ALTER TABLE fields ADD COLUMN label_ja TEXT NOT NULL DEFAULT '';
ALTER TABLE fields ADD COLUMN sortable BOOLEAN NOT NULL DEFAULT FALSE;

-- The time zone a user reads and types date-times in (an IANA name; NULL:
-- Asia/Tokyo, where most users work).
ALTER TABLE users ADD COLUMN time_zone TEXT;

-- Orgs made before: each module's name field sorts, as in the catalog (the
-- first required standard text field, else the first standard text field);
-- the store makes the indexes when it opens.
UPDATE fields SET sortable = TRUE
WHERE custom = FALSE AND field_type = 'text' AND position = COALESCE(
    (SELECT MIN(f.position) FROM fields f WHERE f.org_id = fields.org_id AND f.module = fields.module
        AND f.custom = FALSE AND f.field_type = 'text' AND f.required = TRUE),
    (SELECT MIN(f.position) FROM fields f WHERE f.org_id = fields.org_id AND f.module = fields.module
        AND f.custom = FALSE AND f.field_type = 'text'));
