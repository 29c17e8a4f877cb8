-- Records whose derived figures wait to be counted again (an event's tickets
-- sold, check-ins and revenue on its Campaign, EVT-14). A chunk of a sync
-- bumps the version of the events it touched, in its own transaction; a
-- count writes the figures of an event only if its version is still the one
-- the count started from, and records that version as counted. Versions only
-- grow, so a count that started before a later chunk never passes for a
-- newer one, whichever of two counts commits last. A crash anywhere leaves
-- the versions for the next count.
CREATE TABLE sync_figures_due (
    integration_id BIGINT NOT NULL,
    record_id      BIGINT NOT NULL,
    version        BIGINT NOT NULL,
    counted        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (integration_id, record_id)
);

-- Until now an unfinished run recounted every event; from here on the
-- versions carry that: every linked event is counted once more.
INSERT INTO sync_figures_due (integration_id, record_id, version, counted)
    SELECT integration_id, other_id, 1, 0 FROM sync_links WHERE data_type = 'event';
