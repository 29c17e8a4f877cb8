//! A real SMTP server for tests: aiosmtpd (from PyPI), started on a free
//! port of 127.0.0.1, delivering every message into a Maildir the test reads.

use crate::peer::{python, python_has, start_on_free_port, wait_own_listener};
use crate::skip_or_fail;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server's log and Maildir, in its temporary folder.
const LOG: &str = "aiosmtpd.log";
const MAILDIR: &str = "maildir";

/// aiosmtpd on `port`, delivering into `maildir`, its output in `log`.
fn spawn(port: u16, maildir: &Path, log: &Path) -> Child {
    let log = std::fs::File::create(log).expect("the aiosmtpd log");
    Command::new(python())
        .args(["-m", "aiosmtpd", "-n", "-l"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("aiosmtpd starts")
}

/// aiosmtpd listening on `port`, writing into `maildir`; stopped when dropped.
pub struct SmtpSink {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

impl SmtpSink {
    /// Starts aiosmtpd, or `None` when it is not installed (the test has
    /// then been reported as skipped, or failed under
    /// `KIZUNA_TEST_SERVICES=required`).
    pub fn start(test: &str) -> Option<SmtpSink> {
        if !python_has("aiosmtpd") {
            skip_or_fail(
                test,
                "aiosmtpd",
                "python3 -m aiosmtpd is not installed (pip install aiosmtpd)",
            );
            return None;
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (log, maildir) = (dir.path().join(LOG), dir.path().join(MAILDIR));
        let (port, child) =
            start_on_free_port("aiosmtpd", &log, |port| spawn(port, &maildir, &log));
        Some(SmtpSink {
            port,
            dir,
            child: Some(child),
        })
    }

    /// The URL for `--smtp-url`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    fn maildir(&self) -> PathBuf {
        self.dir.path().join(MAILDIR)
    }

    /// Stops the server: connections to its port are refused until `restart`.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and Maildir, and waits
    /// until it listens there itself.
    pub fn restart(&mut self) {
        self.stop();
        let log = self.dir.path().join(LOG);
        let mut child = spawn(self.port, &self.maildir(), &log);
        // The port cannot move (the code under test holds its URL): a
        // server that lost it meanwhile fails the test here, with its log.
        assert!(
            wait_own_listener("aiosmtpd", self.port, &log, &mut child),
            "aiosmtpd exited before listening again on {}: {}",
            self.port,
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        self.child = Some(child);
    }

    /// Every message received so far, raw, oldest first.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let Ok(entries) = std::fs::read_dir(self.maildir().join("new")) else {
            return Vec::new();
        };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, path)| std::fs::read(path).ok())
            .collect()
    }

    /// Waits until at least `n` messages arrived, and returns them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let started = Instant::now();
        loop {
            let got = self.messages();
            if got.len() >= n || started.elapsed() > timeout {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
