-- Mail to administrators about what needs their attention (GEN-9). Every
-- message is kept here first, so the product shows it whether or not an SMTP
-- server is configured, and the mailer sends it from here: one row per
-- recipient, so each delivery has its own state.
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id       INTEGER NOT NULL REFERENCES orgs(id),
    user_id      INTEGER NOT NULL REFERENCES users(id),
    to_address   TEXT NOT NULL,
    topic        TEXT NOT NULL,               -- what it is about; one message per topic and window
    code         TEXT NOT NULL,
    rule         TEXT,
    subject      TEXT NOT NULL,               -- JSON {"en", "ja"}, as message and fix
    message      TEXT NOT NULL,
    fix          TEXT NOT NULL,
    details      TEXT NOT NULL,               -- JSON
    state        TEXT NOT NULL,               -- queued, sending, sent, failed
    attempts     INTEGER NOT NULL DEFAULT 0,
    send_after   INTEGER NOT NULL,
    lease_owner  TEXT,
    lease_until  INTEGER,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    sent_at      INTEGER
);
CREATE INDEX outbox_org ON outbox(org_id, id);
CREATE INDEX outbox_topic ON outbox(org_id, topic, created_at);
CREATE INDEX outbox_due ON outbox(state, send_after);
