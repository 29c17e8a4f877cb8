//! What starting a test peer process takes, whichever peer it is.

use std::net::TcpStream;
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

/// Waits until `name` accepts connections on `port`; fails with its log.
pub fn wait_listening(name: &str, port: u16, log: &Path) {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{name} did not listen on {port}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
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
    use super::listens;

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
