-- What a mail & calendar connection (crm-mail) has read from the mail side:
-- one row per item of an address book, a calendar, a mailbox or an imported
-- file, with what the last sync saw of it (its etag and content hash) and
-- the CRM record it became. A sync writes a chunk's CRM records and their
-- rows in one transaction, so a crash never leaves a record without its
-- row (which would be created again) or a row without its record.
CREATE TABLE mail_items (
    id             BIGSERIAL PRIMARY KEY,
    integration_id BIGINT NOT NULL REFERENCES integrations(id),
    source         TEXT NOT NULL,                -- carddav:<collection href>, file, …
    item_key       TEXT NOT NULL,                -- its name there: href, uid:<UID>, hash:<hash>
    data_type      TEXT NOT NULL,                -- contact, task, event, email
    etag           TEXT,
    content_hash   TEXT NOT NULL,
    crm_module     TEXT,
    crm_id         BIGINT,                       -- NULL: not written (failed or skipped)
    crm_version    BIGINT,                       -- the record's version as the sync left it
    how            TEXT,                         -- created (by the item) or matched (existed: MAIL-3)
    uid            TEXT,                         -- the item's UID, for duplicate UIDs in one collection
    seen_at        BIGINT NOT NULL,
    UNIQUE (integration_id, source, item_key)
);
CREATE INDEX mail_items_crm ON mail_items(integration_id, crm_id);
CREATE INDEX mail_items_uid ON mail_items(integration_id, source, uid);

-- Where a sync of one source (an address book, a calendar) stands: the
-- server's sync token, when it offers one (RFC 6578).
CREATE TABLE mail_sources (
    integration_id BIGINT NOT NULL REFERENCES integrations(id),
    source         TEXT NOT NULL,
    sync_token     TEXT,
    synced_at      BIGINT NOT NULL,
    PRIMARY KEY (integration_id, source)
);

-- A mail connection belongs to one user: one live connection per user per org.
CREATE UNIQUE INDEX integrations_one_mail ON integrations(from_org, created_by)
    WHERE kind = 'crm-mail' AND state <> 'deleted';
