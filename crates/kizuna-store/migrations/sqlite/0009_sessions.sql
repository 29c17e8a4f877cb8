-- Signed-in browsers of the web UI. The cookie holds a random token; only its
-- digest is kept (as for API keys), so a copy of the database signs nobody
-- in. Each session has its own CSRF token, which every form carries.
CREATE TABLE sessions (
    id          INTEGER PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,            -- BLAKE2b-256 of the cookie's token, hex
    user_id     INTEGER NOT NULL REFERENCES users(id),
    csrf        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    seen_at     INTEGER NOT NULL                 -- last request (idle timeout)
);
CREATE INDEX sessions_user ON sessions(user_id);

-- Failed sign-ins, per account, for the rate limit.
CREATE TABLE sign_in_failures (
    email TEXT NOT NULL,                         -- as typed, trimmed and lower-cased
    at    INTEGER NOT NULL
);
CREATE INDEX sign_in_failures_email ON sign_in_failures(email, at);

-- The language a user chose for the UI ('ja', 'en'); NULL: the browser's.
ALTER TABLE users ADD COLUMN language TEXT;
