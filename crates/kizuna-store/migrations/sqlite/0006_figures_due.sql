-- Records whose derived figures wait to be counted again (an event's tickets
-- sold, check-ins and revenue on its Campaign, EVT-14). A chunk of a sync
-- marks the events it touched in its own transaction; the count at the end of
-- a run clears each mark it saw, unless a later chunk bumped its version
-- meanwhile. A crash anywhere leaves the marks for the next run.
CREATE TABLE sync_figures_due (
    integration_id INTEGER NOT NULL,
    record_id      INTEGER NOT NULL,
    version        INTEGER NOT NULL,
    PRIMARY KEY (integration_id, record_id)
);

-- Until now an unfinished run recounted every event; from here on the marks
-- carry that: every linked event is counted once more.
INSERT INTO sync_figures_due (integration_id, record_id, version)
    SELECT integration_id, other_id, 1 FROM sync_links WHERE data_type = 'event';
