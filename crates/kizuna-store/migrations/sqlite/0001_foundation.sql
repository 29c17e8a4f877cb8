-- Instants are UTC milliseconds since the epoch (INTEGER); JSON is TEXT.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,          -- trimmed, lower-case
    name          TEXT NOT NULL,
    password_hash TEXT,                          -- Argon2id PHC string
    active        INTEGER NOT NULL DEFAULT 1,
    created_at    INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    key_hash    TEXT NOT NULL UNIQUE,            -- BLAKE2b-256 of the key, hex
    prefix      TEXT NOT NULL,                   -- first characters, to tell keys apart
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

CREATE TABLE orgs (
    id          INTEGER PRIMARY KEY,
    app         TEXT NOT NULL,
    name        TEXT NOT NULL,
    plan        TEXT NOT NULL,
    currency    TEXT,
    meta_version INTEGER NOT NULL DEFAULT 0,     -- bumped on every module/field change
    created_by  INTEGER REFERENCES users(id),
    created_at  INTEGER NOT NULL
);

CREATE TABLE org_members (
    org_id   INTEGER NOT NULL REFERENCES orgs(id),
    user_id  INTEGER NOT NULL REFERENCES users(id),
    role     TEXT NOT NULL,
    added_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX org_members_user ON org_members(user_id);

CREATE TABLE plan_changes (
    id         INTEGER PRIMARY KEY,
    org_id     INTEGER NOT NULL REFERENCES orgs(id),
    from_plan  TEXT,
    to_plan    TEXT NOT NULL,
    changed_by INTEGER REFERENCES users(id),
    changed_at INTEGER NOT NULL
);

CREATE TABLE departments (
    id         INTEGER PRIMARY KEY,
    org_id     INTEGER NOT NULL REFERENCES orgs(id),
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE department_members (
    department_id INTEGER NOT NULL REFERENCES departments(id),
    user_id       INTEGER NOT NULL REFERENCES users(id),
    PRIMARY KEY (department_id, user_id)
);

CREATE TABLE modules (
    org_id   INTEGER NOT NULL REFERENCES orgs(id),
    api_name TEXT NOT NULL,
    label    TEXT NOT NULL,
    label_ja TEXT NOT NULL,
    enabled  INTEGER NOT NULL DEFAULT 1,
    position INTEGER NOT NULL,
    PRIMARY KEY (org_id, api_name)
);

CREATE TABLE fields (
    org_id        INTEGER NOT NULL,
    module        TEXT NOT NULL,
    api_name      TEXT NOT NULL,
    label         TEXT NOT NULL,
    field_type    TEXT NOT NULL,
    max_length    INTEGER,
    required      INTEGER NOT NULL DEFAULT 0,
    is_unique     INTEGER NOT NULL DEFAULT 0,
    picklist      TEXT NOT NULL DEFAULT '[]',
    lookup_module TEXT,
    custom        INTEGER NOT NULL DEFAULT 0,
    in_use        INTEGER NOT NULL DEFAULT 1,
    position      INTEGER NOT NULL,
    PRIMARY KEY (org_id, module, api_name),
    FOREIGN KEY (org_id, module) REFERENCES modules(org_id, api_name)
);

CREATE TABLE records (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused: links refer to it
    org_id     INTEGER NOT NULL REFERENCES orgs(id),
    module     TEXT NOT NULL,
    version    INTEGER NOT NULL,
    fields     TEXT NOT NULL,
    email_key  TEXT,                             -- trimmed, case-folded e-mail, for dedup
    created_by INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER                           -- set while in the recycle bin
);
CREATE INDEX records_list ON records(org_id, module, id) WHERE deleted_at IS NULL;
CREATE INDEX records_email ON records(org_id, email_key) WHERE email_key IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX records_bin ON records(org_id, deleted_at) WHERE deleted_at IS NOT NULL;

-- Lookups and many-to-many associations, in both directions, for related lists.
CREATE TABLE record_refs (
    org_id  INTEGER NOT NULL,
    from_id INTEGER NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    field   TEXT NOT NULL,
    to_id   INTEGER NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    PRIMARY KEY (from_id, field, to_id)
);
CREATE INDEX record_refs_to ON record_refs(to_id);

-- The change log (outbox): one row per change, written in the change's transaction.
CREATE TABLE changes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id      INTEGER NOT NULL,
    module      TEXT NOT NULL,
    record_id   INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    op          TEXT NOT NULL,                   -- create, update, delete, restore, purge
    origin_kind TEXT NOT NULL,                   -- user, key, integration, system
    origin_id   INTEGER,
    at          INTEGER NOT NULL
);
CREATE INDEX changes_org ON changes(org_id, seq);
