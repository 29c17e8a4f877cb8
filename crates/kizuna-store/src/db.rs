//! The two backends behind one small execution API. Every query of the store is
//! written once, with `$n` placeholders that both SQLite and PostgreSQL accept;
//! where the dialects differ, `Dialect` supplies the fragment.

use kizuna_domain::Error;
use serde_json::Value;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, FromRow, PgConnection, PgPool, SqliteConnection, SqlitePool};
use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// Which SQL dialect a statement is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The value of a record field by API name (bound as parameter `$n`), as
    /// a JSON value in PostgreSQL and a SQL value in SQLite.
    pub fn json_field(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("json_extract(r.fields, '$.' || ${n})"),
            Dialect::Postgres => format!("(r.fields -> ${n})"),
        }
    }

    /// The value of a record field as text, for case-insensitive comparisons.
    pub fn json_field_text(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("CAST(json_extract(r.fields, '$.' || ${n}) AS TEXT)"),
            Dialect::Postgres => format!("(r.fields ->> ${n})"),
        }
    }
}

/// A bound parameter.
#[derive(Debug, Clone)]
pub enum Arg {
    I64(i64),
    OptI64(Option<i64>),
    Text(String),
    OptText(Option<String>),
    F64(f64),
    Bool(bool),
    Json(Value),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::I64(v)
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::OptI64(v)
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_string())
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(v.clone())
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::OptText(v)
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Bool(v)
    }
}
impl From<Value> for Arg {
    fn from(v: Value) -> Self {
        Arg::Json(v)
    }
}

/// `args![a, b, c]` builds a parameter list from anything `Into<Arg>`.
#[macro_export]
macro_rules! args {
    ($($a:expr),* $(,)?) => { [$($crate::db::Arg::from($a)),*] };
}

/// A row type that decodes from both backends (a `#[derive(FromRow)]` struct).
pub trait Rowed:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}
impl<T> Rowed for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

/// A row of one `id` column.
#[derive(sqlx::FromRow)]
pub(crate) struct IdRow {
    pub id: i64,
}

/// Something a statement can run on: a pool or a transaction's connection.
pub enum Exec<'a> {
    SqlitePool(&'a SqlitePool),
    PgPool(&'a PgPool),
    SqliteConn(&'a mut SqliteConnection),
    PgConn(&'a mut PgConnection),
}

macro_rules! bind_all {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                Arg::I64(v) => q.bind(*v),
                Arg::OptI64(v) => q.bind(*v),
                Arg::Text(v) => q.bind(v.as_str()),
                Arg::OptText(v) => q.bind(v.as_deref()),
                Arg::F64(v) => q.bind(*v),
                Arg::Bool(v) => q.bind(*v),
                Arg::Json(v) => q.bind(sqlx::types::Json(v)),
            };
        }
        q
    }};
}

/// Runs `$body` with `$ex` bound to the concrete executor of each variant; the
/// body is the same source for all four, checked against each type.
macro_rules! on_exec {
    ($exec:expr, $ex:ident => $body:expr) => {
        match $exec {
            Exec::SqlitePool($ex) => $body,
            Exec::PgPool($ex) => $body,
            Exec::SqliteConn($ex) => {
                let $ex = &mut *$ex;
                $body
            }
            Exec::PgConn($ex) => {
                let $ex = &mut *$ex;
                $body
            }
        }
    };
}

pub(crate) fn db_error(e: sqlx::Error) -> Error {
    tracing::error!(error = %e, "database error");
    Error::internal(format!("database error: {e}"))
}

/// Whether a database error is a unique-constraint violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

impl Exec<'_> {
    pub async fn execute(self, sql: &str, args: &[Arg]) -> Result<u64, sqlx::Error> {
        on_exec!(self, ex => {
            let q = bind_all!(sqlx::query(AssertSqlSafe(sql.to_string())), args);
            q.execute(ex).await.map(|r| r.rows_affected())
        })
    }

    pub async fn fetch_all<T: Rowed>(self, sql: &str, args: &[Arg]) -> Result<Vec<T>, sqlx::Error> {
        on_exec!(self, ex => {
            let q = bind_all!(sqlx::query_as::<_, T>(AssertSqlSafe(sql.to_string())), args);
            q.fetch_all(ex).await
        })
    }

    /// At most one row. Every result set is read to its end, on purpose:
    /// sqlx's SQLite driver resets a statement that was dropped half-read only
    /// later, on its worker thread, and until then the connection keeps its old
    /// WAL snapshot — the next read on it would miss committed writes
    /// (sqlx issue 2543). Callers ask for one row by key, so this costs nothing.
    pub async fn fetch_optional<T: Rowed>(
        self,
        sql: &str,
        args: &[Arg],
    ) -> Result<Option<T>, sqlx::Error> {
        Ok(self.fetch_all(sql, args).await?.into_iter().next())
    }

    /// Exactly one row (`RowNotFound` otherwise); read to its end as above.
    pub async fn fetch_one<T: Rowed>(self, sql: &str, args: &[Arg]) -> Result<T, sqlx::Error> {
        self.fetch_optional(sql, args)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }
}

/// A write transaction. On SQLite it starts with `BEGIN IMMEDIATE`, so that two
/// writers never deadlock upgrading a read lock; on PostgreSQL it is a plain
/// `BEGIN` at READ COMMITTED, with row locks where a rule needs them.
pub enum Tx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Tx {
    pub fn x(&mut self) -> Exec<'_> {
        match self {
            Tx::Sqlite(t) => Exec::SqliteConn(t),
            Tx::Postgres(t) => Exec::PgConn(t),
        }
    }

    pub async fn commit(self) -> Result<(), Error> {
        match self {
            Tx::Sqlite(t) => t.commit().await.map_err(db_error),
            Tx::Postgres(t) => t.commit().await.map_err(db_error),
        }
    }
}

/// A connection pool to one of the two backends.
#[derive(Clone)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Db {
    /// Opens `postgres://…` URLs on PostgreSQL, and anything else (`sqlite://…`
    /// or a file path) as a SQLite file, created if absent.
    pub async fn open(url: &str) -> Result<Db, Error> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url).map_err(db_error)?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(opts)
                .await
                .map_err(db_error)?;
            Ok(Db::Postgres(pool))
        } else {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            Db::open_sqlite(Path::new(path)).await
        }
    }

    /// SQLite with WAL (readers never block the writer), foreign keys on, a 10 s
    /// busy timeout (the CLI writes while a server runs), and synchronous=FULL:
    /// a committed change survives power loss, not only a crash.
    async fn open_sqlite(path: &Path) -> Result<Db, Error> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await
            .map_err(db_error)?;
        Ok(Db::Sqlite(pool))
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
        }
    }

    /// For reads outside a transaction.
    pub fn x(&self) -> Exec<'_> {
        match self {
            Db::Sqlite(p) => Exec::SqlitePool(p),
            Db::Postgres(p) => Exec::PgPool(p),
        }
    }

    pub async fn begin(&self) -> Result<Tx, Error> {
        match self {
            Db::Sqlite(p) => Ok(Tx::Sqlite(
                p.begin_with("BEGIN IMMEDIATE").await.map_err(db_error)?,
            )),
            Db::Postgres(p) => Ok(Tx::Postgres(p.begin().await.map_err(db_error)?)),
        }
    }

    /// Applies the migrations of this backend that are not applied yet.
    pub async fn migrate(&self) -> Result<(), Error> {
        let result = match self {
            Db::Sqlite(p) => migrator(SQLITE_MIGRATIONS).run(p).await,
            Db::Postgres(p) => migrator(POSTGRES_MIGRATIONS).run(p).await,
        };
        result.map_err(|e| Error::internal(format!("migration failed: {e}")))
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(p) => p.close().await,
            Db::Postgres(p) => p.close().await,
        }
    }
}

type MigrationFile = (i64, &'static str, &'static str);

const SQLITE_MIGRATIONS: &[MigrationFile] = &[
    (
        1,
        "foundation",
        include_str!("../migrations/sqlite/0001_foundation.sql"),
    ),
    (
        2,
        "integrations",
        include_str!("../migrations/sqlite/0002_integrations.sql"),
    ),
    (
        3,
        "sync",
        include_str!("../migrations/sqlite/0003_sync.sql"),
    ),
    (
        4,
        "outbox",
        include_str!("../migrations/sqlite/0004_outbox.sql"),
    ),
];

const POSTGRES_MIGRATIONS: &[MigrationFile] = &[
    (
        1,
        "foundation",
        include_str!("../migrations/postgres/0001_foundation.sql"),
    ),
    (
        2,
        "integrations",
        include_str!("../migrations/postgres/0002_integrations.sql"),
    ),
    (
        3,
        "sync",
        include_str!("../migrations/postgres/0003_sync.sql"),
    ),
    (
        4,
        "outbox",
        include_str!("../migrations/postgres/0004_outbox.sql"),
    ),
];

/// Migrations are compiled into the binary, so a server needs no files beside it.
fn migrator(files: &[MigrationFile]) -> Migrator {
    let migrations = files
        .iter()
        .map(|(version, name, sql)| {
            Migration::new(
                *version,
                Cow::Borrowed(*name),
                MigrationType::Simple,
                sqlx::SqlSafeStr::into_sql_str(*sql),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}
