//! Helpers for the store conformance suite: one fresh database per test, on
//! SQLite always and on PostgreSQL when `KIZUNA_TEST_POSTGRES_URL` is set.

use kizuna_store::Store;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// The URL of a PostgreSQL server the tests may create databases on, as
/// `postgres://user@host:port/admin_db`.
pub const POSTGRES_URL_VAR: &str = "KIZUNA_TEST_POSTGRES_URL";

/// The one policy for a test whose peer service is absent (DESIGN.md, Tests):
/// say that it was skipped and why, and pass; but when
/// `KIZUNA_TEST_SERVICES=required` (as CI sets it), fail the test instead.
pub fn skip_or_fail(test: &str, service: &str, why: &str) {
    let message = format!("skipped: {test} on {service}: {why}");
    if std::env::var("KIZUNA_TEST_SERVICES").is_ok_and(|v| v == "required") {
        panic!("{message} (and KIZUNA_TEST_SERVICES=required, so this is a failure)");
    }
    println!("{message}");
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs one conformance test against a fresh database of `backend`, then
/// removes the database, whether the test passed or panicked.
pub async fn run<F, Fut>(backend: Backend, test: &str, body: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = kizuna_domain::Result<()>> + Send + 'static,
{
    let Some(db) = TestDb::create(backend, test).await else {
        return;
    };
    // The body runs as its own task so that a panic in it still lets the
    // database be dropped below before the panic is passed on.
    let outcome = tokio::spawn(body(db.store.clone())).await;
    db.remove().await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!(
            "{test} on {backend:?} returned an error: {e}\n{}",
            e.to_json()
        ),
        Err(join) => match join.try_into_panic() {
            Ok(payload) => std::panic::resume_unwind(payload),
            Err(e) => panic!("{test} on {backend:?} did not finish: {e}"),
        },
    }
}

/// A database that exists for one test.
struct TestDb {
    store: Store,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(PgConnection, String)>,
}

impl TestDb {
    /// A migrated store on a new database, or `None` when the backend is
    /// not available here (after `skip_or_fail` has said so).
    async fn create(backend: Backend, test: &str) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory for the SQLite file");
                let path = dir.path().join("kizuna.db");
                let url = path.to_str().expect("the temporary path is UTF-8");
                let store = Store::open(url).await.expect("open and migrate SQLite");
                Some(TestDb {
                    store,
                    _dir: Some(dir),
                    postgres: None,
                })
            }
            Backend::Postgres => {
                let Some(admin_url) = std::env::var(POSTGRES_URL_VAR)
                    .ok()
                    .filter(|u| !u.trim().is_empty())
                else {
                    skip_or_fail(test, "PostgreSQL", &format!("{POSTGRES_URL_VAR} is not set"));
                    return None;
                };
                let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
                    panic!("{POSTGRES_URL_VAR} is set but {admin_url} does not answer: {e}")
                });
                let name = format!("kizuna_test_{}", random_suffix());
                sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
                let store = Store::open(&with_database(&admin_url, &name))
                    .await
                    .expect("open and migrate the test database on PostgreSQL");
                Some(TestDb {
                    store,
                    _dir: None,
                    postgres: Some((admin, name)),
                })
            }
        }
    }

    /// Closes the store and drops the database (best effort on PostgreSQL).
    async fn remove(self) {
        self.store.close().await;
        if let Some((mut admin, name)) = self.postgres {
            let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            if let Err(e) = sqlx::query(AssertSqlSafe(drop)).execute(&mut admin).await {
                eprintln!("warning: could not drop the test database {name}: {e}");
            }
            let _ = admin.close().await;
        }
    }
}

/// `url` with its database name replaced by `database` (query kept).
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    format!("{server}/{database}{query}")
}

/// A suffix that no other test, process or run is using at the same time.
fn random_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::hash::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:016x}", h.finish())
}

#[test]
fn with_database_replaces_only_the_path() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgresql://u:p@h/db?sslmode=disable", "x"),
        "postgresql://u:p@h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h:5432", "x"), "postgres://h:5432/x");
}
