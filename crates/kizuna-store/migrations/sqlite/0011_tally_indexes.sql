-- An event's figures on its Campaign (EVT-14) count its attendees by status
-- and add up its paid orders. These indexes hold each attendee's and order's
-- event and status, so that a count reads index entries alone rather than
-- every attendee's row (`referrers.rs`, `tally_sql`: the query spells the same
-- expressions, which are `sort_index::value_expr`'s). The event comes first: a lookup's
-- target is one record of one org, and the count reads the org from the
-- entry, so that no other index (`records_list` on the org and module)
-- looks better to a planner without statistics.
CREATE INDEX records_tally_attendees ON records (json_extract(fields, '$.Event'), json_extract(fields, '$.Status'), org_id, module, deleted_at)
    WHERE module = 'Attendees' AND deleted_at IS NULL;
CREATE INDEX records_tally_orders ON records (json_extract(fields, '$.Event'), json_extract(fields, '$.Status'), org_id, module, deleted_at)
    WHERE module = 'Orders' AND deleted_at IS NULL;
