//! The two backends behind one small execution API. Every query of the store is
//! written once, with `$n` placeholders that both SQLite and PostgreSQL accept;
//! where the dialects differ, `Dialect` supplies the fragment.

use kizuna_domain::Error;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, FromRow, PgConnection, PgPool, SqliteConnection, SqlitePool};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
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

    /// A `SELECT` list of one column, `doc`: the rows as one JSON array, each
    /// row an array of `values` in order (for `Exec::fetch_json`). A value
    /// that is JSON already is given as `as_json(column)`.
    pub fn json_rows(self, values: &[&str]) -> String {
        let values = values.join(", ");
        match self {
            Dialect::Sqlite => format!("json_group_array(json_array({values})) AS doc"),
            // json_agg of no rows is NULL.
            Dialect::Postgres => {
                format!("COALESCE(json_agg(json_build_array({values})), '[]')::text AS doc")
            }
        }
    }

    /// A JSON column as a JSON value inside `json_rows` (SQLite keeps JSON
    /// as text, which would otherwise become a JSON string).
    pub fn as_json(self, column: &str) -> String {
        match self {
            Dialect::Sqlite => format!("json({column})"),
            Dialect::Postgres => column.to_string(),
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
    /// A JSON value serialized when bound, instead of copied: a sync binds
    /// every record's fields and every link's agreed values, and a copy of
    /// each map was a share of its time.
    JsonText(Box<serde_json::value::RawValue>),
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
impl From<&Value> for Arg {
    fn from(v: &Value) -> Self {
        json_text(v, || v.clone())
    }
}
impl From<&serde_json::Map<String, Value>> for Arg {
    fn from(v: &serde_json::Map<String, Value>) -> Self {
        json_text(v, || Value::Object(v.clone()))
    }
}

/// `v` serialized. A JSON value's serialization does not fail (its map keys
/// are strings); should it, `copy` is bound instead.
fn json_text(v: &impl serde::Serialize, copy: impl FnOnce() -> Value) -> Arg {
    serde_json::value::to_raw_value(v).map_or_else(|_| Arg::Json(copy()), Arg::JsonText)
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

/// A row of one `n` column (`COUNT(*) AS n`).
#[derive(sqlx::FromRow)]
pub(crate) struct CountRow {
    pub n: i64,
}

/// Something a statement can run on: a pool or a transaction's connection.
pub enum Exec<'a> {
    SqlitePool(&'a SqlitePool),
    PgPool(&'a PgPool),
    SqliteConn(&'a mut SqliteConnection),
    PgConn(&'a mut PgConnection),
}

/// Binds each argument of `$args` (anything yielding `&Arg`) in turn, by reference.
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
                Arg::JsonText(v) => q.bind(sqlx::types::Json(&**v)),
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

pub(crate) fn db_error(e: impl std::fmt::Display) -> Error {
    tracing::error!(error = %e, "database error");
    Error::internal(format!("database error: {e}"))
}

/// Whether a database error is a unique-constraint violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

/// A statement as sent: on SQLite its `$n` placeholders become anonymous `?`,
/// with the arguments in order of appearance (a repeated `$n` bound again).
/// sqlx binds a named parameter by asking SQLite for its name, which SQLite
/// finds by a linear scan (`sqlite3_bind_parameter_name`), so binding a
/// statement of p distinct `$n` costs O(p²) — a large share of a multi-row
/// INSERT of hundreds of parameters. Anonymous `?` have no name to look up.
struct Sent<'s> {
    sql: Cow<'s, str>,
    /// Which argument each `?` takes, when the statement was rewritten.
    order: Option<Vec<usize>>,
}

impl<'s> Sent<'s> {
    fn new(exec: &Exec<'_>, sql: &'s str, args: &[Arg]) -> Self {
        let sqlite = matches!(exec, Exec::SqlitePool(_) | Exec::SqliteConn(_));
        match sqlite
            .then(|| crate::placeholders::positional(sql, args.len()))
            .flatten()
        {
            Some((text, order)) => Sent {
                sql: Cow::Owned(text),
                order: Some(order),
            },
            None => Sent {
                sql: Cow::Borrowed(sql),
                order: None,
            },
        }
    }

    fn args<'a>(&self, args: &'a [Arg]) -> Vec<&'a Arg> {
        match &self.order {
            Some(order) => order.iter().map(|i| &args[*i]).collect(),
            None => args.iter().collect(),
        }
    }
}

impl Exec<'_> {
    pub async fn execute(self, sql: &str, args: &[Arg]) -> Result<u64, sqlx::Error> {
        let sent = Sent::new(&self, sql, args);
        on_exec!(self, ex => {
            let q = bind_all!(sqlx::query(AssertSqlSafe(sent.sql.to_string())), sent.args(args));
            q.execute(ex).await.map(|r| r.rows_affected())
        })
    }

    pub async fn fetch_all<T: Rowed>(self, sql: &str, args: &[Arg]) -> Result<Vec<T>, sqlx::Error> {
        let sent = Sent::new(&self, sql, args);
        on_exec!(self, ex => {
            let q = bind_all!(
                sqlx::query_as::<_, T>(AssertSqlSafe(sent.sql.to_string())),
                sent.args(args)
            );
            q.fetch_all(ex).await
        })
    }

    /// The rows of a statement that selects `Dialect::json_rows`, each
    /// decoded from its array of values (a struct reads its fields in order).
    /// sqlx's SQLite driver hands each row from its worker thread to the
    /// caller on its own, some 6–8 µs a row (BENCHMARKS.md › desk-sync);
    /// the rows of a bulk read built into one value by SQLite cross once,
    /// and serde reads them at a fraction of that.
    pub async fn fetch_json<T: DeserializeOwned>(
        self,
        sql: &str,
        args: &[Arg],
    ) -> Result<Vec<T>, sqlx::Error> {
        #[derive(FromRow)]
        struct Doc {
            doc: String,
        }
        let d: Doc = self.fetch_one(sql, args).await?;
        serde_json::from_str(&d.doc).map_err(|e| sqlx::Error::Decode(Box::new(e)))
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

/// A write transaction (`Db::begin`), or one that only reads (`Db::begin_read`).
/// On SQLite a write transaction starts with `BEGIN IMMEDIATE`, so that two
/// writers never deadlock upgrading a read lock; on PostgreSQL it is a plain
/// `BEGIN` at READ COMMITTED, with row locks where a rule needs them.
pub struct Tx {
    conn: TxConn,
    /// Sync links this transaction added, less those it removed (the
    /// mass-delete guard works out the links a run started with from it).
    pub(crate) links_added: i64,
    /// On SQLite, this process's turn to write (see `FileTurns`); dropped
    /// after `conn`, so the turn passes once the transaction has ended.
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// On SQLite, the file's background checkpointer, woken by a commit.
    checkpoint: Option<Arc<tokio::sync::Notify>>,
}

enum TxConn {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Tx {
    pub fn x(&mut self) -> Exec<'_> {
        match &mut self.conn {
            TxConn::Sqlite(t) => Exec::SqliteConn(t),
            TxConn::Postgres(t) => Exec::PgConn(t),
        }
    }

    /// Sync links written by this transaction so far: those it added less
    /// those it removed (replacing a link adds none).
    pub fn links_added(&self) -> i64 {
        self.links_added
    }

    pub async fn commit(self) -> Result<(), Error> {
        match self.conn {
            TxConn::Sqlite(t) => {
                t.commit().await.map_err(db_error)?;
                if let Some(wake) = &self.checkpoint {
                    wake.notify_one();
                }
                Ok(())
            }
            TxConn::Postgres(t) => t.commit().await.map_err(db_error),
        }
    }
}

/// The SQLite file a URL names, or `None` for PostgreSQL (`postgres://…`).
pub(crate) fn sqlite_path(url: &str) -> Option<&Path> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return None;
    }
    Some(Path::new(url.strip_prefix("sqlite://").unwrap_or(url)))
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
        if let Some(path) = sqlite_path(url) {
            Db::open_sqlite(path).await
        } else {
            // No JIT compilation: it pays off on long analytical queries and
            // costs tens of milliseconds at each execution whose estimated
            // cost crosses `jit_above_cost`, which a sync's bulk reads do
            // when the statistics are stale (40 ms added to a 3 ms read:
            // BENCHMARKS.md, desk-sync).
            let opts = PgConnectOptions::from_str(url)
                .map_err(db_error)?
                .options([("jit", "off")]);
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(opts)
                .await
                .map_err(db_error)?;
            Ok(Db::Postgres(pool))
        }
    }

    /// SQLite with WAL (readers never block the writer), foreign keys on, a 10 s
    /// busy timeout (the CLI writes while a server runs), synchronous=FULL:
    /// a committed change survives power loss, not only a crash; and
    /// checkpoints in the background (`checkpoint`).
    async fn open_sqlite(path: &Path) -> Result<Db, Error> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-16384")
            .pragma("wal_autocheckpoint", crate::checkpoint::BACKSTOP_PAGES)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await
            .map_err(db_error)?;
        // Commits of every pool on this file wake the checkpointer of the
        // pool opened last.
        let wake = crate::checkpoint::spawn(&pool);
        file_turns(&pool, |t| t.checkpoint = wake);
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

    /// For writes outside a transaction: `db.write().await.x().execute(…)`.
    /// On SQLite the statement waits for this process's turn to write, as a
    /// transaction does (`FileTurns`); run on the pool, it would meet SQLite's
    /// busy handler behind the turns' writers and sleep in its steps. The
    /// turn is held until the end of the statement that took it.
    pub async fn write(&self) -> Write<'_> {
        let (turn, checkpoint) = match self {
            Db::Sqlite(p) => {
                let (turn, checkpoint) = take_turn(p).await;
                (Some(turn), Some(checkpoint))
            }
            Db::Postgres(_) => (None, None),
        };
        Write {
            db: self,
            _turn: turn,
            checkpoint,
        }
    }

    pub async fn begin(&self) -> Result<Tx, Error> {
        let (conn, turn, checkpoint) = match self {
            Db::Sqlite(p) => {
                let (turn, checkpoint) = take_turn(p).await;
                let tx = p.begin_with("BEGIN IMMEDIATE").await.map_err(db_error)?;
                (TxConn::Sqlite(tx), Some(turn), Some(checkpoint))
            }
            Db::Postgres(p) => (
                TxConn::Postgres(p.begin().await.map_err(db_error)?),
                None,
                None,
            ),
        };
        Ok(Tx {
            conn,
            links_added: 0,
            _turn: turn,
            checkpoint,
        })
    }

    /// A transaction that only reads: every read in it sees one snapshot of
    /// the database, and writers neither wait for it nor it for them (SQLite:
    /// a deferred `BEGIN` in WAL mode; PostgreSQL: `REPEATABLE READ`). It
    /// ends when dropped.
    pub async fn begin_read(&self) -> Result<Tx, Error> {
        let conn = match self {
            Db::Sqlite(p) => TxConn::Sqlite(p.begin_with("BEGIN").await.map_err(db_error)?),
            Db::Postgres(p) => TxConn::Postgres(
                p.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await
                    .map_err(db_error)?,
            ),
        };
        Ok(Tx {
            conn,
            links_added: 0,
            _turn: None,
            checkpoint: None,
        })
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
            Db::Sqlite(p) => {
                p.close().await;
                file_turns(p, |t| t.checkpoint.notify_one());
            }
            Db::Postgres(p) => p.close().await,
        }
    }
}

/// A write outside a transaction, in this process's turn (`Db::write`).
pub struct Write<'a> {
    db: &'a Db,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// On SQLite, the file's background checkpointer, woken once the write is
    /// done.
    checkpoint: Option<Arc<tokio::sync::Notify>>,
}

impl Write<'_> {
    pub fn x(&self) -> Exec<'_> {
        self.db.x()
    }
}

impl Drop for Write<'_> {
    fn drop(&mut self) {
        if let Some(checkpoint) = &self.checkpoint {
            checkpoint.notify_one();
        }
    }
}

/// The queue of this process's writers to one SQLite file. SQLite has one
/// writer at a time; a second `BEGIN IMMEDIATE` waits in SQLite's busy
/// handler, which sleeps in growing steps (up to 100 ms) and so lets a writer
/// wait hundreds of milliseconds after the lock came free — the latency of
/// a sync behind a stream of small writes. Writers of one process take turns
/// here instead, first come first served, and start the moment the previous
/// one ends; a write outside a transaction takes a turn too (`Db::write`).
/// Other processes on the same file still meet the busy handler. A commit
/// then wakes the file's checkpointer.
#[derive(Default)]
struct FileTurns {
    gate: Arc<tokio::sync::Mutex<()>>,
    checkpoint: Arc<tokio::sync::Notify>,
}

/// Waits for this process's turn to write to `pool`'s file; returns it with
/// the file's checkpointer, to wake once the write is done.
async fn take_turn(
    pool: &SqlitePool,
) -> (tokio::sync::OwnedMutexGuard<()>, Arc<tokio::sync::Notify>) {
    let (gate, checkpoint) = file_turns(pool, |t| (t.gate.clone(), t.checkpoint.clone()));
    (gate.lock_owned().await, checkpoint)
}

/// `f` of this process's `FileTurns` of `pool`'s file.
fn file_turns<T>(pool: &SqlitePool, f: impl FnOnce(&mut FileTurns) -> T) -> T {
    static FILES: OnceLock<std::sync::Mutex<HashMap<PathBuf, FileTurns>>> = OnceLock::new();
    let path = pool.connect_options().get_filename().to_path_buf();
    let mut files = FILES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    f(files.entry(path).or_default())
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
    (
        5,
        "links_refs",
        include_str!("../migrations/sqlite/0005_links_refs.sql"),
    ),
    (
        6,
        "figures_due",
        include_str!("../migrations/sqlite/0006_figures_due.sql"),
    ),
    (
        7,
        "held_conflicts",
        include_str!("../migrations/sqlite/0007_held_conflicts.sql"),
    ),
    (
        8,
        "mail_items",
        include_str!("../migrations/sqlite/0008_mail_items.sql"),
    ),
    (
        9,
        "sessions",
        include_str!("../migrations/sqlite/0009_sessions.sql"),
    ),
    (
        10,
        "field_labels_sorting",
        include_str!("../migrations/sqlite/0010_field_labels_sorting.sql"),
    ),
    (
        11,
        "tally_indexes",
        include_str!("../migrations/sqlite/0011_tally_indexes.sql"),
    ),
    (
        12,
        "association_rows",
        include_str!("../migrations/sqlite/0012_association_rows.sql"),
    ),
    (
        13,
        "name_keys",
        include_str!("../migrations/sqlite/0013_name_keys.sql"),
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
    (
        5,
        "links_refs",
        include_str!("../migrations/postgres/0005_links_refs.sql"),
    ),
    (
        6,
        "figures_due",
        include_str!("../migrations/postgres/0006_figures_due.sql"),
    ),
    (
        7,
        "held_conflicts",
        include_str!("../migrations/postgres/0007_held_conflicts.sql"),
    ),
    (
        8,
        "mail_items",
        include_str!("../migrations/postgres/0008_mail_items.sql"),
    ),
    (
        9,
        "sessions",
        include_str!("../migrations/postgres/0009_sessions.sql"),
    ),
    (
        10,
        "field_labels_sorting",
        include_str!("../migrations/postgres/0010_field_labels_sorting.sql"),
    ),
    (
        11,
        "tally_indexes",
        include_str!("../migrations/postgres/0011_tally_indexes.sql"),
    ),
    (
        12,
        "association_rows",
        include_str!("../migrations/postgres/0012_association_rows.sql"),
    ),
    (
        13,
        "name_keys",
        include_str!("../migrations/postgres/0013_name_keys.sql"),
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

#[cfg(test)]
mod migration_tests {
    use super::{SQLITE_MIGRATIONS, migrator};
    use sqlx::sqlite::SqlitePoolOptions;

    /// Migration 0012: an association made before as two rows (one each way)
    /// becomes one row marked `pair`; lookups, and a pair of lookups that
    /// happen to point at each other, stay as they were.
    #[tokio::test]
    async fn two_row_associations_become_one() {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .expect("an in-memory database");
        migrator(&SQLITE_MIGRATIONS[..11])
            .run(&pool)
            .await
            .expect("migrations up to 0011");
        sqlx::raw_sql(
            "INSERT INTO record_refs (org_id, from_id, field, to_id) VALUES \
             (1, 10, 'Campaigns<>Leads', 20), (1, 20, 'Campaigns<>Leads', 10), \
             (1, 30, 'Account', 40), (1, 50, 'Manager', 60), (1, 60, 'Manager', 50)",
        )
        .execute(&pool)
        .await
        .expect("rows as the store wrote them before");
        migrator(SQLITE_MIGRATIONS)
            .run(&pool)
            .await
            .expect("migration 0012");
        let rows: Vec<(i64, String, i64, i64)> = sqlx::query_as(
            "SELECT from_id, field, to_id, pair FROM record_refs ORDER BY from_id, to_id",
        )
        .fetch_all(&pool)
        .await
        .expect("the rows after");
        let row = |f: i64, name: &str, t: i64, pair: i64| (f, name.to_string(), t, pair);
        assert_eq!(
            rows,
            vec![
                row(20, "Campaigns<>Leads", 10, 1),
                row(30, "Account", 40, 0),
                row(50, "Manager", 60, 0),
                row(60, "Manager", 50, 0),
            ]
        );
    }
}
