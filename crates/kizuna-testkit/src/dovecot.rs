//! A real IMAP server for tests: Dovecot (Debian's `dovecot-imapd`), started
//! with a configuration of the test's own on a free port of 127.0.0.1, its
//! users in a password file and their Maildirs in a temporary folder. The
//! master runs as the test's user (root in CI); mail is kept as the
//! `dovecot` system user, which Dovecot requires to be someone other than
//! root.

use crate::peer::{python, start_on_free_port};
use crate::skip_or_fail;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The one mailbox user of the tests.
pub const USER: &str = "sales";
pub const PASSWORD: &str = "imap secret";

/// Dovecot listening on `port`; stopped when dropped.
pub struct Dovecot {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = Command::new(binary())
            .args(["-c", &self.config(), "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary() -> String {
    std::env::var("KIZUNA_TEST_DOVECOT").unwrap_or_else(|_| "/usr/sbin/dovecot".to_string())
}

fn id_of(name: &str) -> Option<u32> {
    let out = Command::new("id").args(["-u", name]).output().ok()?;
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

impl Dovecot {
    /// Starts Dovecot, or `None` when it is not installed or cannot run here
    /// (the test has then been reported as skipped, or failed under
    /// `KIZUNA_TEST_SERVICES=required`).
    pub fn start(test: &str) -> Option<Dovecot> {
        let (Some(mail_uid), Some(_)) = (id_of("dovecot"), id_of("dovenull")) else {
            skip_or_fail(
                test,
                "Dovecot",
                "dovecot-imapd is not installed (apt-get install dovecot-imapd)",
            );
            return None;
        };
        if !Path::new(&binary()).exists() {
            skip_or_fail(
                test,
                "Dovecot",
                "dovecot-imapd is not installed (apt-get install dovecot-imapd)",
            );
            return None;
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let d = dir.path();
        for sub in ["run", "state", "home"] {
            std::fs::create_dir_all(d.join(sub)).expect("a folder");
        }
        use std::os::unix::fs::{PermissionsExt, chown};
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("mode");
        if chown(d.join("home"), Some(mail_uid), None).is_err() {
            skip_or_fail(
                test,
                "Dovecot",
                "its mail folders must belong to the dovecot user: run the tests as root",
            );
            return None;
        }
        std::fs::write(
            d.join("passwd"),
            format!("{USER}:{{PLAIN}}{PASSWORD}::::::\n"),
        )
        .expect("passwd");
        let p = d.display();
        let (port, child) = start_on_free_port("Dovecot", &d.join("dovecot.log"), |port| {
            let config = format!(
                "protocols = imap\nlisten = 127.0.0.1\nbase_dir = {p}/run\nstate_dir = {p}/state\n\
                 log_path = {p}/dovecot.log\nssl = no\ndisable_plaintext_auth = no\nauth_mechanisms = plain login\n\
                 mail_location = maildir:{p}/home/%u/Maildir\nfirst_valid_uid = 1\ndefault_internal_user = dovecot\n\
                 default_internal_group = dovecot\ndefault_login_user = dovenull\n\
                 service imap-login {{\n  inet_listener imap {{\n    port = {port}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
                 passdb {{\n  driver = passwd-file\n  args = {p}/passwd\n}}\n\
                 userdb {{\n  driver = static\n  args = uid=dovecot gid=dovecot home={p}/home/%u\n}}\n"
            );
            std::fs::write(d.join("dovecot.conf"), config).expect("config");
            Command::new(binary())
                .args(["-F", "-c"])
                .arg(d.join("dovecot.conf"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("Dovecot starts")
        });
        Some(Dovecot { port, dir, child })
    }

    fn config(&self) -> String {
        self.dir.path().join("dovecot.conf").display().to_string()
    }

    /// Runs IMAP commands as the test user through Python's imaplib (a
    /// client other than the one under test).
    fn imap(&self, script: &str) {
        let program = format!(
            "import imaplib, sys\nm = imaplib.IMAP4('127.0.0.1', {})\nm.login('{USER}', '{PASSWORD}')\n{script}\nm.logout()\n",
            self.port
        );
        let out = Command::new(python())
            .args(["-c", &program])
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "IMAP script failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
        );
    }

    /// Makes a folder.
    pub fn create(&self, folder: &str) {
        self.imap(&format!("assert m.create('{folder}')[0] == 'OK'"));
    }

    /// Removes a folder (and its messages).
    pub fn delete(&self, folder: &str) {
        self.imap(&format!("assert m.delete('{folder}')[0] == 'OK'"));
    }

    /// Appends a message to a folder.
    pub fn append(&self, folder: &str, message: &str) {
        let bytes: Vec<String> = message.bytes().map(|b| b.to_string()).collect();
        self.imap(&format!(
            "assert m.append('{folder}', None, None, bytes([{}]))[0] == 'OK'",
            bytes.join(",")
        ));
    }
}
