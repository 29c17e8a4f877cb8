//! Signed-in browsers of the web UI, and the failed sign-ins that limit
//! guessing. A session is named by a random token that only the browser's
//! cookie holds; the database keeps its digest.

use crate::db::db_error;
use crate::users::{hex, key_digest};
use crate::{Store, User, now_ms};
use argon2::password_hash::rand_core::{OsRng, RngCore};
use kizuna_domain::Result;

/// A session ends after this long without a request…
pub const IDLE_MS: i64 = 12 * 60 * 60 * 1000;
/// …and this long after sign-in, however busy.
pub const LIFETIME_MS: i64 = 7 * 24 * 60 * 60 * 1000;
/// How often a session's last request is written (not on every page).
const TOUCH_MS: i64 = 60 * 1000;

/// A live session: who is signed in, the token its forms must carry, the
/// language its user chose (none: the browser's) and their time zone (an
/// IANA name; none: the default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: i64,
    pub user: User,
    pub csrf: String,
    pub language: Option<String>,
    pub time_zone: Option<String>,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    session_id: i64,
    csrf: String,
    started_at: i64,
    seen_at: i64,
    id: i64,
    email: String,
    name: String,
    active: bool,
    created_at: i64,
    language: Option<String>,
    time_zone: Option<String>,
}

/// 32 random bytes as hex: a session token or a CSRF token.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex(&bytes)
}

impl Store {
    /// Starts a session for a user who has just proven who they are;
    /// returns the token for the cookie (kept nowhere else) and the session.
    /// A new id at every sign-in: a token planted before it is worth nothing.
    pub async fn create_session(&self, user: &User) -> Result<(String, Session)> {
        let token = random_token();
        let csrf = random_token();
        let now = now_ms();
        let row: crate::db::IdRow = self
            .db
            .write()
            .await
            .x()
            .fetch_one(
                "INSERT INTO sessions (token_hash, user_id, csrf, created_at, seen_at) \
                 VALUES ($1, $2, $3, $4, $4) RETURNING id",
                &crate::args![key_digest(&token), user.id, csrf.clone(), now],
            )
            .await
            .map_err(db_error)?;
        let chosen: ChosenRow = self
            .db
            .x()
            .fetch_one(
                "SELECT language, time_zone FROM users WHERE id = $1",
                &crate::args![user.id],
            )
            .await
            .map_err(db_error)?;
        Ok((
            token,
            Session {
                id: row.id,
                user: user.clone(),
                csrf,
                language: chosen.language,
                time_zone: chosen.time_zone,
            },
        ))
    }

    /// The live session a cookie's token names: `None` when there is none,
    /// it has expired (it is then removed), or its user was deactivated.
    pub async fn session(&self, token: &str) -> Result<Option<Session>> {
        let row: Option<SessionRow> = self
            .db
            .x()
            .fetch_optional(
                "SELECT s.id AS session_id, s.csrf, s.created_at AS started_at, s.seen_at, \
                 u.id, u.email, u.name, u.active, u.created_at, u.language, u.time_zone \
                 FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1",
                &crate::args![key_digest(token)],
            )
            .await
            .map_err(db_error)?;
        let Some(r) = row else {
            return Ok(None);
        };
        let now = now_ms();
        if now - r.seen_at > IDLE_MS || now - r.started_at > LIFETIME_MS || !r.active {
            self.remove_session(r.session_id).await?;
            return Ok(None);
        }
        if now - r.seen_at > TOUCH_MS {
            self.db
                .write()
                .await
                .x()
                .execute(
                    "UPDATE sessions SET seen_at = $1 WHERE id = $2",
                    &crate::args![now, r.session_id],
                )
                .await
                .map_err(db_error)?;
        }
        Ok(Some(Session {
            id: r.session_id,
            user: User {
                id: r.id,
                email: r.email,
                name: r.name,
                active: r.active,
                created_at: r.created_at,
            },
            csrf: r.csrf,
            language: r.language,
            time_zone: r.time_zone,
        }))
    }

    /// Ends a session (sign-out).
    pub async fn remove_session(&self, id: i64) -> Result<()> {
        self.db
            .write()
            .await
            .x()
            .execute("DELETE FROM sessions WHERE id = $1", &crate::args![id])
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Failed sign-ins for `email` since `since` (ms).
    pub async fn sign_in_failures(&self, email: &str, since: i64) -> Result<i64> {
        let row: crate::db::CountRow = self
            .db
            .x()
            .fetch_one(
                "SELECT COUNT(*) AS n FROM sign_in_failures WHERE email = $1 AND at >= $2",
                &crate::args![normal(email), since],
            )
            .await
            .map_err(db_error)?;
        Ok(row.n)
    }

    /// Notes a failed sign-in for `email` (whether or not such a user exists,
    /// so that the limit tells nothing about who has an account).
    pub async fn record_sign_in_failure(&self, email: &str) -> Result<()> {
        self.db
            .write()
            .await
            .x()
            .execute(
                "INSERT INTO sign_in_failures (email, at) VALUES ($1, $2)",
                &crate::args![normal(email), now_ms()],
            )
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Forgets the failures of an account that has just signed in, and every
    /// account's failures older than `before`.
    pub async fn clear_sign_in_failures(&self, email: &str, before: i64) -> Result<()> {
        self.db
            .write()
            .await
            .x()
            .execute(
                "DELETE FROM sign_in_failures WHERE email = $1 OR at < $2",
                &crate::args![normal(email), before],
            )
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Sets (or, with `None`, clears) the UI language a user chose.
    pub async fn set_user_language(&self, user: i64, language: Option<&str>) -> Result<()> {
        self.db
            .write()
            .await
            .x()
            .execute(
                "UPDATE users SET language = $1 WHERE id = $2",
                &crate::args![language.map(str::to_string), user],
            )
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Sets (or, with `None`, clears) the time zone a user reads and types
    /// date-times in; an unknown zone is refused.
    pub async fn set_user_time_zone(&self, user: i64, zone: Option<&str>) -> Result<()> {
        if let Some(name) = zone {
            kizuna_domain::time::zone(name)?;
        }
        self.db
            .write()
            .await
            .x()
            .execute(
                "UPDATE users SET time_zone = $1 WHERE id = $2",
                &crate::args![zone.map(str::to_string), user],
            )
            .await
            .map_err(db_error)?;
        Ok(())
    }
}

/// What a user chose for the UI.
#[derive(sqlx::FromRow)]
struct ChosenRow {
    language: Option<String>,
    time_zone: Option<String>,
}

fn normal(email: &str) -> String {
    email.trim().to_lowercase()
}
