//! What Kizuna's tests share: a fresh database per test on SQLite or
//! PostgreSQL, the real HTTP server on a port-0 listener, and the one policy
//! for a test whose peer service is missing.

pub mod chromium;
pub mod dovecot;
pub mod peer;
pub mod radicale;
pub mod smtp;

use kizuna_apps::admin;
use kizuna_domain::App;
use kizuna_store::{Org, Store, User};
use serde_json::{Map, Value};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// A PostgreSQL server on which tests may create and drop databases.
pub const POSTGRES_URL_VAR: &str = "KIZUNA_TEST_POSTGRES_URL";

/// The one policy for a test whose peer is absent: say it was skipped and
/// why, and pass — unless `KIZUNA_TEST_SERVICES=required` (CI), then fail.
pub fn skip_or_fail(test: &str, service: &str, why: &str) {
    let message = format!("skipped: {test} on {service}: {why}");
    if std::env::var("KIZUNA_TEST_SERVICES").is_ok_and(|v| v == "required") {
        panic!("{message} (KIZUNA_TEST_SERVICES=required makes this a failure)");
    }
    println!("{message}");
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that exists for one test and is removed when dropped.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

/// A suffix that no other test, process or run is using at the same time.
fn unique_suffix() -> String {
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

/// `url` with its database name replaced by `database` (query kept).
pub fn with_database(url: &str, database: &str) -> String {
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

impl TestDb {
    /// A new, empty database, or `None` after `skip_or_fail` when the backend
    /// is not available here.
    pub async fn create(backend: Backend, test: &str) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = dir.path().join("kizuna.db").to_string_lossy().into_owned();
                Some(TestDb {
                    url,
                    _dir: Some(dir),
                    postgres: None,
                })
            }
            Backend::Postgres => {
                let Some(admin) = std::env::var(POSTGRES_URL_VAR)
                    .ok()
                    .filter(|u| !u.trim().is_empty())
                else {
                    skip_or_fail(
                        test,
                        "PostgreSQL",
                        &format!("{POSTGRES_URL_VAR} is not set"),
                    );
                    return None;
                };
                let name = format!("kizuna_test_{}", unique_suffix());
                let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
                    panic!("{POSTGRES_URL_VAR} is set but {admin} does not answer: {e}")
                });
                sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create the test database");
                Some(TestDb {
                    url: with_database(&admin, &name),
                    _dir: None,
                    postgres: Some((admin, name)),
                })
            }
        }
    }

    pub async fn open_store(&self) -> Store {
        Store::open(&self.url)
            .await
            .expect("open and migrate the test database")
    }

    /// A new SQLite database, its store, and a user `admin@example.com`
    /// (no password) to set things up with.
    pub async fn sqlite_with_admin(test: &str) -> (TestDb, Store, User) {
        let db = TestDb::create(Backend::Sqlite, test)
            .await
            .expect("SQLite is always there");
        let store = db.open_store().await;
        let admin = store
            .create_user("admin@example.com", "Admin", None)
            .await
            .expect("user");
        (db, store, admin)
    }
}

impl Drop for TestDb {
    /// Drops the PostgreSQL database even when the test panicked; this runs on
    /// a thread of its own because a destructor cannot await.
    fn drop(&mut self) {
        let Some((admin, name)) = self.postgres.take() else {
            return;
        };
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&admin).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await;
                }
            });
        })
        .join();
    }
}

/// A JSON object literal as a record's values.
pub fn values(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("record values must be a JSON object, not {other}"),
    }
}

/// Runs one test body against a fresh, migrated store of `backend`; the
/// database is removed afterwards, whether the body passed or panicked (it
/// runs as its own task, so its panic reaches here and is passed on).
pub async fn run<F, Fut>(backend: Backend, test: &str, body: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = kizuna_domain::Result<()>> + Send + 'static,
{
    let Some(db) = TestDb::create(backend, test).await else {
        return;
    };
    let store = db.open_store().await;
    let outcome = tokio::spawn(body(store.clone())).await;
    store.close().await;
    drop(db);
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

/// The real application served over HTTP on 127.0.0.1, port 0.
pub struct TestApp {
    pub addr: SocketAddr,
    pub store: Store,
    pub http: reqwest::Client,
    _db: TestDb,
    _keys: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A user of the test, with an API key.
pub struct Actor {
    pub user: User,
    pub key: String,
}

impl TestApp {
    /// Starts the server on a fresh database of `backend`, or `None` when that
    /// backend is not available (the test has then been reported as skipped).
    pub async fn spawn(backend: Backend, test: &str) -> Option<TestApp> {
        let db = TestDb::create(backend, test).await?;
        let store = db.open_store().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a port");
        let addr = listener.local_addr().expect("the bound address");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = store.clone();
        // Mail connections' passwords sealed with a key of the test's own;
        // the test's peers (Radicale, Dovecot) are on 127.0.0.1.
        let keys = tempfile::tempdir().expect("a directory for the secret key");
        let options = kizuna_web::Options {
            mail: Some(kizuna_sync::mail::MailContext::new(
                keys.path().join("secret.key"),
                true,
            )),
            ..Default::default()
        };
        tokio::spawn(async move {
            let _ = kizuna_web::serve(served, options, listener, async {
                let _ = rx.await;
            })
            .await;
        });
        Some(TestApp {
            addr,
            store,
            http: reqwest::Client::new(),
            _db: db,
            _keys: keys,
            shutdown: Some(tx),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A new user with an API key.
    pub async fn actor(&self, email: &str) -> Actor {
        let user = self
            .store
            .create_user(email, email, Some("correct horse battery"))
            .await
            .expect("create a test user");
        let (_, key) = self
            .store
            .create_api_key(user.id)
            .await
            .expect("create a key");
        Actor { user, key }
    }

    /// A new org of `app` administered by `admin`.
    pub async fn org(&self, app: App, plan: &str, admin: &Actor) -> Org {
        admin::create_org(
            &self.store,
            app,
            &format!("{} org", app.as_str()),
            plan,
            &admin.user,
        )
        .await
        .expect("create a test org")
    }

    /// Sends a request and returns the status and the JSON body (Null when
    /// the body is not JSON).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        let mut req = self.http.request(method, self.url(path));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let res = req.send().await.expect("the server answers");
        let status = res.status().as_u16();
        let text = res.text().await.expect("a body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        self.call("GET", path, Some(key), None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: &Value) -> (u16, Value) {
        self.call("POST", path, Some(key), Some(body)).await
    }

    pub async fn patch(&self, path: &str, key: &str, body: &Value) -> (u16, Value) {
        self.call("PATCH", path, Some(key), Some(body)).await
    }

    pub async fn delete(&self, path: &str, key: &str) -> (u16, Value) {
        self.call("DELETE", path, Some(key), None).await
    }
}

/// The error code of a refusal body.
pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// A summary of everything stored, to prove that a refused request changed
/// nothing: row counts of every table and sums over what updates change.
pub async fn fingerprint(store: &Store) -> Vec<(String, i64)> {
    #[derive(sqlx::FromRow)]
    struct N {
        n: i64,
    }
    let probes = [
        "SELECT COUNT(*) AS n FROM users",
        "SELECT CAST(COALESCE(SUM(CASE WHEN active THEN 1 ELSE 0 END), 0) AS BIGINT) AS n FROM users",
        "SELECT COUNT(*) AS n FROM api_keys",
        "SELECT COUNT(*) AS n FROM orgs",
        "SELECT CAST(COALESCE(SUM(LENGTH(plan) + COALESCE(LENGTH(currency), 0) + LENGTH(name)), 0) AS BIGINT) AS n FROM orgs",
        "SELECT COUNT(*) AS n FROM org_members",
        "SELECT CAST(COALESCE(SUM(LENGTH(role)), 0) AS BIGINT) AS n FROM org_members",
        "SELECT COUNT(*) AS n FROM plan_changes",
        "SELECT COUNT(*) AS n FROM departments",
        "SELECT COUNT(*) AS n FROM department_members",
        "SELECT COUNT(*) AS n FROM modules",
        "SELECT CAST(COALESCE(SUM(CASE WHEN enabled THEN 1 ELSE 0 END), 0) AS BIGINT) AS n FROM modules",
        "SELECT COUNT(*) AS n FROM fields",
        "SELECT CAST(COALESCE(SUM(CASE WHEN in_use THEN 1 ELSE 0 END), 0) AS BIGINT) AS n FROM fields",
        "SELECT COUNT(*) AS n FROM records",
        "SELECT CAST(COALESCE(SUM(version), 0) AS BIGINT) AS n FROM records",
        "SELECT COUNT(*) AS n FROM records WHERE deleted_at IS NOT NULL",
        "SELECT COUNT(*) AS n FROM record_refs",
        "SELECT COUNT(*) AS n FROM changes",
    ];
    let mut out = Vec::new();
    for sql in probes {
        let row: N = store
            .db()
            .x()
            .fetch_one(sql, &[])
            .await
            .expect("a fingerprint query");
        out.push((sql.to_string(), row.n));
    }
    out
}

/// A CRM org and an org of `other` of `admin`, joined by an active
/// integration of `kind` (default settings).
async fn linked_orgs(
    store: &Store,
    admin: &User,
    kind: kizuna_domain::IntegrationKind,
    other: App,
) -> (Org, Org, i64) {
    use kizuna_domain::integration::Action;
    use kizuna_sync::lifecycle;
    let crm = admin::create_org(store, App::Crm, "CRM", "standard", admin)
        .await
        .expect("a CRM org");
    let other = admin::create_org(store, other, other.as_str(), "standard", admin)
        .await
        .expect("the other org");
    let settings = serde_json::json!({});
    let i = lifecycle::create(store, admin, kind, crm.id, Some(other.id), &settings)
        .await
        .expect("set up");
    lifecycle::act(store, admin, i.id, Action::Enable)
        .await
        .expect("enabled");
    (crm, other, i.id)
}

/// A CRM org and an Events org of `admin`, joined by an active CRM ⇄ Events
/// integration (default settings), with one live event.
pub struct CrmEvents {
    pub crm: Org,
    pub events: Org,
    pub integration: i64,
    pub event: i64,
}

impl CrmEvents {
    pub async fn create(store: &Store, admin: &User) -> CrmEvents {
        let (crm, events, integration) = linked_orgs(
            store,
            admin,
            kizuna_domain::IntegrationKind::CrmEvents,
            App::Events,
        )
        .await;
        let module = store.module(events.id, "Events").await.expect("Events");
        let fields = serde_json::json!({"Event_Name": "Expo", "Status": "Live"});
        let event = store
            .create_records(
                events.id,
                &module,
                vec![values(fields)],
                kizuna_store::Origin::System,
            )
            .await
            .expect("an event")[0]
            .id;
        CrmEvents {
            crm,
            events,
            integration,
            event,
        }
    }
}

/// A CRM org and a Desk org of `admin`, joined by an active CRM ⇄ Desk
/// integration (default settings).
pub struct CrmDesk {
    pub crm: Org,
    pub desk: Org,
    pub integration: i64,
}

impl CrmDesk {
    pub async fn create(store: &Store, admin: &User) -> CrmDesk {
        let (crm, desk, integration) = linked_orgs(
            store,
            admin,
            kizuna_domain::IntegrationKind::CrmDesk,
            App::Desk,
        )
        .await;
        CrmDesk {
            crm,
            desk,
            integration,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

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
        assert_eq!(
            with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }
}
