//! What starting a test peer process takes, whichever peer it is.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Python that runs the PyPI peers (`KIZUNA_TEST_PYTHON`, else `python3`).
pub fn python() -> String {
    std::env::var("KIZUNA_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Whether that Python can import `module`.
pub fn python_has(module: &str) -> bool {
    Command::new(python())
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A port of 127.0.0.1 that nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free local port")
        .port()
}

/// Waits until `child` itself listens on `port`; false when it exited first.
/// `free_port` only finds a port that was free a moment ago: another test's
/// server (another Radicale, say) may take it before the child binds it.
/// The child then fails to bind and exits, while a bare connect would reach
/// the other server and the test would talk to a peer that is not its own,
/// or to none once that one stops. The caller starts it again on another
/// port.
pub fn wait_own_listener(name: &str, port: u16, log: &Path, child: &mut Child) -> bool {
    let started = Instant::now();
    loop {
        if !matches!(child.try_wait(), Ok(None)) {
            return false;
        }
        if listens(child.id(), port) {
            return true;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{name} did not listen on {port}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts a peer with `spawn` on a port `free_port` found, and again on
/// another port when it exits before listening on its own (the port was
/// taken meanwhile: `wait_own_listener`), up to five times. Answers the
/// port and the running peer.
pub fn start_on_free_port(
    name: &str,
    log: &Path,
    mut spawn: impl FnMut(u16) -> Child,
) -> (u16, Child) {
    for _ in 0..5 {
        let port = free_port();
        let mut child = spawn(port);
        if wait_own_listener(name, port, log, &mut child) {
            return (port, child);
        }
    }
    panic!(
        "{name} exited before listening, five times: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Whether process `pid` holds the socket listening on IPv4 `port`: Linux's
/// `/proc/net/tcp` gives the listening socket's inode, `/proc/<pid>/fd` the
/// sockets the process holds.
fn listens(pid: u32, port: u16) -> bool {
    /// `st` of a listening socket in `/proc/net/tcp`.
    const LISTEN: &str = "0A";
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let sockets: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let local_port = u16::from_str_radix(cols.get(1)?.rsplit(':').next()?, 16).ok()?;
            let inode = cols.get(9)?;
            (local_port == port && *cols.get(3)? == LISTEN).then(|| format!("socket:[{inode}]"))
        })
        .collect();
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .any(|target| sockets.iter().any(|s| target.as_os_str() == s.as_str()))
}

#[cfg(test)]
mod tests {
    use super::{listens, python, start_on_free_port};
    use std::process::{Command, Stdio};

    /// A peer that exits before listening (its port was taken) is started
    /// again on another port, and the one that listens is what comes back.
    #[test]
    fn a_peer_that_exits_before_listening_is_started_again() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let log = dir.path().join("peer.log");
        std::fs::write(&log, "").expect("the log");
        let mut ports = Vec::new();
        let (port, mut child) = start_on_free_port("a test peer", &log, |port| {
            ports.push(port);
            let mut command = match ports.len() {
                1 => Command::new("false"),
                _ => {
                    let mut c = Command::new(python());
                    c.args(["-m", "http.server", "--bind", "127.0.0.1"])
                        .arg(port.to_string());
                    c
                }
            };
            command
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("the peer starts")
        });
        let listening = listens(child.id(), port);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(ports.len(), 2, "started twice: {ports:?}");
        assert_eq!(port, ports[1]);
        assert!(listening, "the second one listens on {port}");
    }

    #[test]
    fn a_process_is_seen_to_listen_on_its_own_port_only() {
        let mine = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let port = mine.local_addr().expect("its address").port();
        assert!(listens(std::process::id(), port));
        drop(mine);
        assert!(!listens(std::process::id(), port), "closed: no longer");
        // PID 1 holds no socket on a port this process just had.
        assert!(!listens(1, port));
    }
}
