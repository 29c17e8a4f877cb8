//! Helpers for the CLI tests: the `kizuna` binary run as a process against a
//! data directory (or a PostgreSQL database) of its own, and a server child
//! process that is killed when its guard is dropped, also on a panic.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// The binary under test.
pub const KIZUNA: &str = env!("CARGO_BIN_EXE_kizuna");

/// Environment variables the CLI reads as defaults; removed from every child
/// so that the caller's environment cannot change what a test runs against.
const CLI_ENV: [&str; 9] = [
    "KIZUNA_DATA_DIR",
    "KIZUNA_DATABASE_URL",
    "KIZUNA_BIND",
    "KIZUNA_HISTORY_DAYS",
    "KIZUNA_WORKER_LEASE_SECS",
    "KIZUNA_SMTP_URL",
    "KIZUNA_MAIL_FROM",
    "KIZUNA_SECRET_KEY_FILE",
    "KIZUNA_ALLOW_PRIVATE_ADDRESSES",
];

/// How long one CLI command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a server may take to answer `/healthz` (the demo seeds first).
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// What one command did.
#[derive(Debug)]
pub struct Output {
    pub args: Vec<String>,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The last non-empty line of standard output, trimmed.
    pub fn last_line(&self) -> &str {
        self.stdout
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .unwrap_or("")
    }

    /// Panics, with everything the command printed, unless it exited 0.
    pub fn success(self) -> Self {
        assert_eq!(self.code, Some(0), "expected success:\n{self}");
        self
    }

    /// Panics unless the command exited with `code`.
    pub fn exit(self, code: i32) -> Self {
        assert_eq!(self.code, Some(code), "expected exit code {code}:\n{self}");
        self
    }

    /// Panics unless standard error shows a refusal with `code` in the
    /// vocabulary's form: the code, a fix, and Japanese as well as English.
    pub fn refusal(self, code: &str) -> Self {
        let out = self.exit(1);
        assert!(
            out.stderr.contains(&format!("[{code}]")),
            "stderr names the error code {code}:\n{out}"
        );
        assert!(
            out.stderr.contains("fix:"),
            "stderr says how to fix it:\n{out}"
        );
        assert!(
            out.stderr.chars().any(is_japanese),
            "stderr says it in Japanese too:\n{out}"
        );
        out
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "kizuna {}\nexit code: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        )
    }
}

/// Kana or a CJK ideograph.
pub fn is_japanese(c: char) -> bool {
    matches!(c, '\u{3040}'..='\u{30ff}' | '\u{4e00}'..='\u{9fff}')
}

/// Where a test's data lives: a fresh SQLite data directory, or a fresh
/// PostgreSQL database (the caller creates and drops it).
pub struct Cli {
    pub tmp: tempfile::TempDir,
    data: Vec<String>,
}

impl Cli {
    /// A new, empty data directory.
    pub fn sqlite() -> Cli {
        let tmp = tempfile::tempdir().expect("a temporary directory for the test");
        let dir = tmp.path().join("data");
        let data = vec!["--data-dir".to_string(), path_str(&dir)];
        Cli { tmp, data }
    }

    /// The data of the test is the PostgreSQL database at `url`.
    pub fn postgres(url: &str) -> Cli {
        let tmp = tempfile::tempdir().expect("a temporary directory for the test");
        let data = vec!["--database-url".to_string(), url.to_string()];
        Cli { tmp, data }
    }

    /// The options that say where the data is.
    pub fn data_args(&self) -> Vec<String> {
        self.data.clone()
    }

    /// Runs `kizuna <args> <data options>`, with `stdin` as standard input.
    pub async fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend(self.data_args());
        self.run_raw(&all, stdin).await
    }

    /// Runs `kizuna <args>` exactly as given, in the test's directory.
    pub async fn run_raw(&self, args: &[String], stdin: Option<&str>) -> Output {
        let mut cmd = tokio::process::Command::new(KIZUNA);
        cmd.args(args)
            .current_dir(self.tmp.path())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for var in CLI_ENV {
            cmd.env_remove(var);
        }
        let mut child = cmd.spawn().expect("the kizuna binary starts");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin is piped");
            // A command that exits without reading (a usage error) closes
            // the pipe first: that is its answer, not the test's failure.
            match pipe.write_all(input.as_bytes()).await {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    panic!("write the standard input of kizuna {}: {e}", args.join(" "))
                }
                _ => {}
            }
            drop(pipe);
        }
        let out = tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("kizuna {} did not finish in time", args.join(" ")))
            .expect("wait for kizuna");
        Output {
            args: args.to_vec(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `kizuna user create`; returns the new user's id (the last line).
    pub async fn create_user(&self, email: &str, name: &str) -> i64 {
        let out = self
            .run(
                &["user", "create", "--email", email, "--name", name],
                Some("correct horse battery staple\n"),
            )
            .await
            .success();
        out.last_line()
            .parse()
            .unwrap_or_else(|_| panic!("the last line is the user's id:\n{out}"))
    }

    /// `kizuna key create`; returns the key (the last line).
    pub async fn create_key(&self, email: &str) -> String {
        let out = self
            .run(&["key", "create", "--email", email], None)
            .await
            .success();
        let key = out.last_line().to_string();
        assert!(
            !key.is_empty() && !key.contains(char::is_whitespace),
            "the last line is a key:\n{out}"
        );
        key
    }

    /// `kizuna org create`; returns the org id (the last line).
    pub async fn create_org(&self, app: &str, name: &str, plan: &str, admin: &str) -> i64 {
        let out = self
            .run(
                &[
                    "org", "create", "--app", app, "--name", name, "--plan", plan, "--admin", admin,
                ],
                None,
            )
            .await
            .success();
        out.last_line()
            .parse()
            .unwrap_or_else(|_| panic!("the last line is the org's id:\n{out}"))
    }

    /// `kizuna org add-member`.
    pub async fn add_member(&self, org: i64, email: &str, role: &str) {
        self.run(
            &[
                "org",
                "add-member",
                "--org",
                &org.to_string(),
                "--email",
                email,
                "--role",
                role,
            ],
            None,
        )
        .await
        .success();
    }

    /// `kizuna serve` on this data, up and answering.
    pub async fn serve(&self) -> Server {
        let mut args = vec!["serve".to_string()];
        args.extend(self.data_args());
        Server::start(self.tmp.path(), &args).await
    }
}

pub fn path_str(p: &Path) -> String {
    p.to_str().expect("the temporary path is UTF-8").to_string()
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free local port")
        .port()
}

/// A running `kizuna serve` or `kizuna demo`; killed when dropped.
pub struct Server {
    child: Child,
    pub base: String,
    log: PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
    client: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `kizuna <args> --bind 127.0.0.1:<free port>` and waits until it
    /// answers `/healthz`. Its standard error goes to a log file in `dir`.
    pub async fn start(dir: &Path, args: &[String]) -> Server {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port();
            let log = dir.join(format!("server-{port}.log"));
            let log_file = std::fs::File::create(&log).expect("create the server log");
            let mut cmd = std::process::Command::new(KIZUNA);
            cmd.args(args)
                .args(["--bind", &format!("127.0.0.1:{port}")])
                .current_dir(dir)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(log_file);
            for var in CLI_ENV {
                cmd.env_remove(var);
            }
            let mut child = cmd.spawn().expect("the kizuna binary starts");
            let stdout = child.stdout.take().expect("stdout is piped");
            let lines = Arc::new(Mutex::new(Vec::new()));
            let sink = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    sink.lock().expect("the stdout lines").push(line);
                }
            });
            let mut server = Server {
                child,
                base: format!("http://127.0.0.1:{port}"),
                log,
                lines,
                client: client.clone(),
            };
            match server.wait_ready().await {
                Ok(()) => return server,
                Err(why) => {
                    let log = server.log();
                    // Another process took the port between our probe and the
                    // server's bind: try another one.
                    if log.contains("cannot listen") && attempt < 3 {
                        continue;
                    }
                    panic!(
                        "kizuna {} did not come up on {}: {why}\n--- stdout ---\n{}\n--- stderr ---\n{log}",
                        args.join(" "),
                        server.base,
                        server.stdout_lines().join("\n"),
                    );
                }
            }
        }
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("it exited with {status}"));
            }
            let health = self
                .client
                .get(format!("{}/healthz", self.base))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if let Ok(response) = health
                && response.status() == 200
            {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(format!("no answer on /healthz after {START_TIMEOUT:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the server and waits until it is gone.
    pub fn stop(self) {
        drop(self);
    }

    /// What the server wrote to standard error so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The lines the server printed on standard output so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.lines.lock().expect("the stdout lines").clone()
    }

    /// The rest of the first stdout line that starts with `prefix`, waiting a
    /// little for the reader thread to catch up.
    pub async fn stdout_line(&self, prefix: &str) -> String {
        let started = Instant::now();
        loop {
            if let Some(rest) = self
                .stdout_lines()
                .iter()
                .find_map(|l| l.strip_prefix(prefix))
            {
                return rest.trim().to_string();
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the server printed no line starting with {prefix:?}:\n{}",
                self.stdout_lines().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `GET path` with `key` (if any); the status and the JSON body.
    pub async fn get(&self, key: Option<&str>, path: &str) -> (u16, Value) {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n--- server log ---\n{}", self.log()));
        let status = response.status().as_u16();
        let text = response.text().await.expect("the response body");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("GET {path} → {status}: not JSON ({e}): {text}"));
        (status, body)
    }

    /// `GET path` with `key`, which must answer 200; the JSON body.
    pub async fn get_ok(&self, key: &str, path: &str) -> Value {
        let (status, body) = self.get(Some(key), path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }
}

/// The database of a SQLite CLI data directory, opened by the test itself.
pub async fn data_store(cli: &Cli) -> kizuna_store::Store {
    let db = cli.tmp.path().join("data").join("kizuna.db");
    kizuna_store::Store::open(&path_str(&db))
        .await
        .expect("the data directory's database")
}

#[derive(sqlx::FromRow)]
struct Count {
    n: i64,
}

/// The `n` a counting statement answers.
pub async fn count(store: &kizuna_store::Store, sql: &str, args: &[kizuna_store::db::Arg]) -> i64 {
    let c: Count = store.db().x().fetch_one(sql, args).await.expect("a count");
    c.n
}

/// `PRAGMA integrity_check` answers ok.
pub async fn assert_integrity(store: &kizuna_store::Store) {
    #[derive(sqlx::FromRow)]
    struct Integrity {
        integrity_check: String,
    }
    let check: Vec<Integrity> = store
        .db()
        .x()
        .fetch_all("PRAGMA integrity_check", &[])
        .await
        .expect("integrity check");
    assert_eq!(check.len(), 1);
    assert_eq!(check[0].integrity_check, "ok");
}

/// `kizuna serve` with its background worker, short leases so that a killed
/// server's job is taken over quickly.
pub async fn serve_with_worker(cli: &Cli) -> Server {
    let mut args = vec![
        "serve".to_string(),
        "--worker-lease-secs".into(),
        "1".into(),
    ];
    args.extend(cli.data_args());
    Server::start(cli.tmp.path(), &args).await
}

/// Starts the server `cycles` times and kills it with SIGKILL each time,
/// once it has made progress (as `progress` counts it), at a random moment
/// within the next quarter second: mid-chunk, between chunks, or between
/// the write and the commit. Returns the progress after each kill, and
/// checks that every kill landed during the work.
pub async fn kill_repeatedly<F, Fut>(cli: &Cli, cycles: usize, total: i64, progress: F) -> Vec<i64>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = i64>,
{
    use std::hash::BuildHasher;
    let random = std::collections::hash_map::RandomState::new();
    let mut seen = vec![0];
    for cycle in 0..cycles {
        let server = serve_with_worker(cli).await;
        let before = *seen.last().unwrap_or(&0);
        let started = Instant::now();
        while progress().await == before && started.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(random.hash_one(cycle) % 250)).await;
        drop(server); // SIGKILL
        seen.push(progress().await);
    }
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]) && seen.last().is_some_and(|n| *n < total),
        "every kill landed during the work, after progress: {seen:?}"
    );
    seen
}
