-- An event's figures on its Campaign (EVT-14) count its attendees by status
-- and add up its paid orders. These indexes find each event's attendees and
-- orders by status, so that a count reads no other records (`referrers.rs`,
-- `tally_sql`: the query spells the same expressions, which are
-- `sort_index::value_expr`'s). The event comes first: a lookup's
-- target is one record of one org, and the count reads the org from the
-- entry, so that no other index (`records_list` on the org and module)
-- looks better to a planner without statistics.
CREATE INDEX records_tally_attendees ON records ((NULLIF(fields -> 'Event', 'null'::jsonb)), (NULLIF(fields -> 'Status', 'null'::jsonb)), org_id)
    WHERE module = 'Attendees' AND deleted_at IS NULL;
CREATE INDEX records_tally_orders ON records ((NULLIF(fields -> 'Event', 'null'::jsonb)), (NULLIF(fields -> 'Status', 'null'::jsonb)), org_id)
    WHERE module = 'Orders' AND deleted_at IS NULL;
