//! Users, their passwords and their API keys.

use crate::db::{IdRow, db_error, is_unique_violation};
use crate::{Json, Org, RawRecord};
use crate::{Store, now_ms};
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use blake2::{Blake2b, Digest, digest::consts::U32};
use kizuna_domain::validate::{email_key, is_email};
use kizuna_domain::{Error, Result, Role};
use rusqlite::OptionalExtension;
use serde::Serialize;
use serde_json::value::RawValue;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub active: bool,
    pub created_at: i64,
}

/// Who a request acts as: the user and, when it came with one, the API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: User,
    pub key_id: Option<i64>,
}

/// An API key as its owner may see it: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ApiKey {
    pub id: i64,
    pub prefix: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    key_id: i64,
    revoked_at: Option<i64>,
    id: i64,
    email: String,
    name: String,
    active: bool,
    created_at: i64,
}

#[derive(sqlx::FromRow)]
struct HashRow {
    password_hash: Option<String>,
}

/// Argon2id with the OWASP minimum (m = 19 MiB, t = 2, p = 1).
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("password hashing failed: {e}")))
}

fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

/// API keys are 32 random bytes; only their BLAKE2b-256 digest is stored (a
/// fast hash is right here: the key has 256 bits of entropy, nothing to guess).
pub(crate) fn key_digest(key: &str) -> String {
    hex(&Blake2b::<U32>::digest(key.as_bytes()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]])
        .map(char::from)
        .collect()
}

fn new_key() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    format!("kz_{}", hex(&bytes))
}

fn check_password_strength(password: &str) -> Result<()> {
    if password.chars().count() < 8 {
        return Err(Error::bad_request(
            "weak_password",
            "The password must be at least 8 characters long.",
            "パスワードは 8 文字以上にしてください。",
        ));
    }
    Ok(())
}

const USER_COLUMNS: &str = "id, email, name, active, created_at";

impl Store {
    /// Creates a user; the e-mail address is the identity across every app.
    pub async fn create_user(
        &self,
        email: &str,
        name: &str,
        password: Option<&str>,
    ) -> Result<User> {
        let email = email_key(email);
        if !is_email(&email) {
            return Err(Error::bad_request(
                "invalid_email",
                format!("\"{email}\" is not an e-mail address."),
                format!("「{email}」はメールアドレスの形式ではありません。"),
            ));
        }
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(Error::bad_request(
                "invalid_name",
                "A user's name must be 1 to 200 characters long.",
                "ユーザー名は 1〜200 文字にしてください。",
            ));
        }
        let hash = match password {
            Some(p) => {
                check_password_strength(p)?;
                Some(hash_password(p)?)
            }
            None => None,
        };
        let sql = format!(
            "INSERT INTO users (email, name, password_hash, active, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {USER_COLUMNS}"
        );
        self.db
            .write()
            .await
            .x()
            .fetch_one(&sql, &crate::args![&email, name, hash, true, now_ms()])
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    Error::already_exists("User", &email)
                } else {
                    db_error(e)
                }
            })
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
        self.db
            .x()
            .fetch_optional(&sql, &crate::args![email_key(email)])
            .await
            .map_err(db_error)
    }

    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        self.db
            .x()
            .fetch_optional(&sql, &crate::args![id])
            .await
            .map_err(db_error)
    }

    pub async fn require_user_by_email(&self, email: &str) -> Result<User> {
        self.user_by_email(email)
            .await?
            .ok_or_else(|| Error::user_not_found(&email_key(email)))
    }

    /// Activates or deactivates a user. A deactivated user's keys are refused at
    /// once (GEN-10), without being revoked: re-activation brings them back.
    pub async fn set_user_active(&self, email: &str, active: bool) -> Result<User> {
        let user = self.require_user_by_email(email).await?;
        self.db
            .write()
            .await
            .x()
            .execute(
                "UPDATE users SET active = $1 WHERE id = $2",
                &crate::args![active, user.id],
            )
            .await
            .map_err(db_error)?;
        Ok(User { active, ..user })
    }

    /// Checks an e-mail and password (for the UI's sign-in).
    pub async fn check_password(&self, email: &str, password: &str) -> Result<User> {
        let user = self
            .user_by_email(email)
            .await?
            .ok_or_else(Error::bad_credentials)?;
        let row: HashRow = self
            .db
            .x()
            .fetch_one(
                "SELECT password_hash FROM users WHERE id = $1",
                &crate::args![user.id],
            )
            .await
            .map_err(db_error)?;
        match row.password_hash {
            Some(h) if verify_password(password, &h) => {}
            _ => return Err(Error::bad_credentials()),
        }
        if !user.active {
            return Err(Error::user_deactivated(&user.email));
        }
        Ok(user)
    }

    /// Creates an API key for a user and returns it; only its digest is kept,
    /// so this is the only time it can be read.
    pub async fn create_api_key(&self, user_id: i64) -> Result<(i64, String)> {
        let key = new_key();
        let row: IdRow = self
            .db
            .write()
            .await
            .x()
            .fetch_one(
                "INSERT INTO api_keys (user_id, key_hash, prefix, created_at) \
                 VALUES ($1, $2, $3, $4) RETURNING id",
                &crate::args![user_id, key_digest(&key), key[..10].to_string(), now_ms()],
            )
            .await
            .map_err(db_error)?;
        Ok((row.id, key))
    }

    pub async fn revoke_api_key(&self, user_id: i64, key_id: i64) -> Result<()> {
        let n = self
            .db
            .write()
            .await
            .x()
            .execute(
                "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
                &crate::args![now_ms(), key_id, user_id],
            )
            .await
            .map_err(db_error)?;
        if n == 0 {
            return Err(Error::not_found("API key", key_id));
        }
        Ok(())
    }

    /// A user's API keys, newest first.
    pub async fn api_keys(&self, user_id: i64) -> Result<Vec<ApiKey>> {
        self.db
            .x()
            .fetch_all(
                "SELECT id, prefix, created_at, revoked_at FROM api_keys WHERE user_id = $1 ORDER BY id DESC",
                &crate::args![user_id],
            )
            .await
            .map_err(db_error)
    }

    /// Finds who an API key belongs to: unknown → 401, revoked → 401, owner
    /// deactivated → 401 naming the owner (GEN-10).
    pub async fn authenticate_key(&self, key: &str) -> Result<Principal> {
        let digest = key_digest(key.trim());
        let row: Option<KeyRow> = match &self.reader {
            Some(reader) => reader.read(|c| {
                c.prepare_cached(KEY_SQL)?
                    .query_row(rusqlite::named_params! {"$1": digest}, KeyRow::from_sqlite)
                    .optional()
            })?,
            None => self
                .db
                .x()
                .fetch_optional(KEY_SQL, &crate::args![digest])
                .await
                .map_err(db_error)?,
        };
        principal_of(row)
    }

    /// `authenticate_key` and the caller's view of one org in one query — what
    /// every org-scoped request needs first. The org is `None` when it is
    /// absent or the caller is not a member (the caller then answers 404).
    pub async fn authenticate_key_for_org(
        &self,
        key: &str,
        org_id: i64,
    ) -> Result<(Principal, Option<(Org, Role)>)> {
        let digest = key_digest(key.trim());
        let row: Option<KeyOrgRow> = match &self.reader {
            Some(reader) => reader.read(|c| {
                c.prepare_cached(KEY_FOR_ORG_SQL)?
                    .query_row(
                        rusqlite::named_params! {"$1": digest, "$2": org_id},
                        KeyOrgRow::from_sqlite,
                    )
                    .optional()
            })?,
            None => self
                .db
                .x()
                .fetch_optional(KEY_FOR_ORG_SQL, &crate::args![digest, org_id])
                .await
                .map_err(db_error)?,
        };
        row.ok_or_else(Error::unauthenticated)?.into_parts()
    }

    /// `authenticate_key_for_org` and the org's live record `id` of `module`
    /// in one statement: the API's GET of a record, its most frequent
    /// request, in one read. The record is `None` when it is absent, deleted,
    /// another module's or another org's.
    pub async fn authenticate_key_for_record(
        &self,
        key: &str,
        org_id: i64,
        module: &str,
        id: i64,
    ) -> Result<(Principal, Option<(Org, Role, Option<RawRecord>)>)> {
        let digest = key_digest(key.trim());
        let row: Option<KeyRecordRow> = match &self.reader {
            Some(reader) => reader.read(|c| {
                c.prepare_cached(KEY_FOR_RECORD_SQL)?
                    .query_row(
                        rusqlite::named_params! {"$1": digest, "$2": org_id, "$3": id, "$4": module},
                        KeyRecordRow::from_sqlite,
                    )
                    .optional()
            })?,
            None => self
                .db
                .x()
                .fetch_optional(KEY_FOR_RECORD_SQL, &crate::args![digest, org_id, id, module])
                .await
                .map_err(db_error)?,
        };
        let mut row = row.ok_or_else(Error::unauthenticated)?;
        let record = row.record();
        let (principal, org) = row.key.into_parts()?;
        Ok((principal, org.map(|(org, role)| (org, role, record))))
    }
}

/// The key's row, then the org's and the caller's role, when a member.
macro_rules! key_columns {
    () => {
        "k.id AS key_id, k.revoked_at, u.id, u.email, u.name, u.active, u.created_at"
    };
}

macro_rules! key_from {
    () => {
        "FROM api_keys k JOIN users u ON u.id = k.user_id"
    };
}

macro_rules! org_columns {
    () => {
        "m.role, o.id AS org_id, o.app AS org_app, o.name AS org_name, o.plan AS org_plan, \
         o.currency AS org_currency, o.created_by AS org_created_by, \
         o.created_at AS org_created_at, o.meta_version AS org_meta_version"
    };
}

/// The org `$2` when the key's user is a member (an outer join: a key is
/// known or not whatever the org).
macro_rules! org_join {
    () => {
        "LEFT JOIN org_members m ON m.user_id = u.id AND m.org_id = $2 \
         LEFT JOIN orgs o ON o.id = m.org_id"
    };
}

const KEY_SQL: &str = concat!(
    "SELECT ",
    key_columns!(),
    " ",
    key_from!(),
    " WHERE k.key_hash = $1"
);

const KEY_FOR_ORG_SQL: &str = concat!(
    "SELECT ",
    key_columns!(),
    ", ",
    org_columns!(),
    " ",
    key_from!(),
    " ",
    org_join!(),
    " WHERE k.key_hash = $1"
);

/// The record joins the org row, so it is found only in an org the caller
/// is a member of.
const KEY_FOR_RECORD_SQL: &str = concat!(
    "SELECT ",
    key_columns!(),
    ", ",
    org_columns!(),
    ", r.id AS record_id, r.module AS record_module, r.version AS record_version, \
     r.fields AS record_fields, r.created_at AS record_created_at, \
     r.updated_at AS record_updated_at, r.deleted_at AS record_deleted_at ",
    key_from!(),
    " ",
    org_join!(),
    " LEFT JOIN records r ON r.id = $3 AND r.org_id = o.id AND r.module = $4 \
     AND r.deleted_at IS NULL WHERE k.key_hash = $1"
);

/// A row of `KEY_FOR_ORG_SQL`: the key's row, and the org with the caller's
/// role when the caller is a member.
#[derive(sqlx::FromRow)]
struct KeyOrgRow {
    #[sqlx(flatten)]
    key: KeyRow,
    role: Option<String>,
    org_id: Option<i64>,
    org_app: Option<String>,
    org_name: Option<String>,
    org_plan: Option<String>,
    org_currency: Option<String>,
    org_created_by: Option<i64>,
    org_created_at: Option<i64>,
    org_meta_version: Option<i64>,
}

impl KeyRow {
    /// The row of `KEY_SQL` (or the first columns of `KEY_FOR_ORG_SQL`) read
    /// by `SqliteReader`, by position.
    fn from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRow> {
        Ok(KeyRow {
            key_id: r.get(0)?,
            revoked_at: r.get(1)?,
            id: r.get(2)?,
            email: r.get(3)?,
            name: r.get(4)?,
            active: r.get(5)?,
            created_at: r.get(6)?,
        })
    }
}

/// A row of `KEY_FOR_RECORD_SQL`: `KEY_FOR_ORG_SQL`'s, then the record's.
#[derive(sqlx::FromRow)]
struct KeyRecordRow {
    #[sqlx(flatten)]
    key: KeyOrgRow,
    record_id: Option<i64>,
    record_module: Option<String>,
    record_version: Option<i64>,
    record_fields: Option<Json<Box<RawValue>>>,
    record_created_at: Option<i64>,
    record_updated_at: Option<i64>,
    record_deleted_at: Option<i64>,
}

impl KeyRecordRow {
    /// The row of `KEY_FOR_RECORD_SQL` read by `SqliteReader`, by position.
    fn from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRecordRow> {
        let fields: Option<String> = r.get(19)?;
        let fields = fields
            .map(|f| {
                RawValue::from_string(f).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        19,
                        rusqlite::types::Type::Text,
                        Box::new(e),
                    )
                })
            })
            .transpose()?;
        Ok(KeyRecordRow {
            key: KeyOrgRow::from_sqlite(r)?,
            record_id: r.get(16)?,
            record_module: r.get(17)?,
            record_version: r.get(18)?,
            record_fields: fields.map(Json),
            record_created_at: r.get(20)?,
            record_updated_at: r.get(21)?,
            record_deleted_at: r.get(22)?,
        })
    }

    /// The record, when the outer join found one.
    fn record(&mut self) -> Option<RawRecord> {
        Some(RawRecord {
            id: self.record_id?,
            module: self.record_module.take()?,
            version: self.record_version?,
            fields: self.record_fields.take()?,
            created_at: self.record_created_at?,
            updated_at: self.record_updated_at?,
            deleted_at: self.record_deleted_at,
        })
    }
}

impl KeyOrgRow {
    /// The caller, and the org with their role when they are a member.
    fn into_parts(self) -> Result<(Principal, Option<(Org, Role)>)> {
        let org = match (
            self.role,
            self.org_id,
            self.org_app,
            self.org_name,
            self.org_plan,
            self.org_created_at,
        ) {
            (Some(role), Some(id), Some(app), Some(name), Some(plan), Some(created_at)) => Some((
                Org {
                    id,
                    app,
                    name,
                    plan,
                    currency: self.org_currency,
                    created_by: self.org_created_by,
                    created_at,
                    meta_version: self.org_meta_version.unwrap_or_default(),
                },
                Role::parse(&role)?,
            )),
            _ => None,
        };
        Ok((principal_of(Some(self.key))?, org))
    }

    /// The row of `KEY_FOR_ORG_SQL` read by `SqliteReader`, by position.
    fn from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyOrgRow> {
        Ok(KeyOrgRow {
            key: KeyRow::from_sqlite(r)?,
            role: r.get(7)?,
            org_id: r.get(8)?,
            org_app: r.get(9)?,
            org_name: r.get(10)?,
            org_plan: r.get(11)?,
            org_currency: r.get(12)?,
            org_created_by: r.get(13)?,
            org_created_at: r.get(14)?,
            org_meta_version: r.get(15)?,
        })
    }
}

/// The principal of a key row, or why the key is refused: unknown, revoked,
/// or its user deactivated (GEN-10).
fn principal_of(row: Option<KeyRow>) -> Result<Principal> {
    let row = row.ok_or_else(Error::unauthenticated)?;
    if row.revoked_at.is_some() {
        return Err(Error::key_revoked());
    }
    if !row.active {
        return Err(Error::user_deactivated(&row.email));
    }
    Ok(Principal {
        key_id: Some(row.key_id),
        user: User {
            id: row.id,
            email: row.email,
            name: row.name,
            active: row.active,
            created_at: row.created_at,
        },
    })
}
