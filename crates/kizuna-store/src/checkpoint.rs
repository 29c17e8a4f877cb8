//! SQLite's WAL checkpoints, off the writers' path. By default the connection
//! whose commit takes the log past 1,000 pages copies the log into the
//! database file before its commit returns: a write that happened to cross
//! the mark waited for everyone's pages (in an initial sync, about 40 % of
//! each commit). Here a task with a connection of its own checkpoints a
//! moment after commits, in `PASSIVE` mode (it never blocks a reader or a
//! writer), on a thread of its own and so on the machine's other core.
//!
//! The writers' own checkpoint stays as the backstop, at a higher mark
//! (`BACKSTOP_PAGES`): should this task fall behind or stop, the log still
//! cannot grow without bound.

use sqlx::{Connection, SqliteConnection, SqlitePool};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The writers' own checkpoint mark (pages of 4 KiB: 32 MiB of log).
pub(crate) const BACKSTOP_PAGES: &str = "8192";

/// How long after a commit the checkpoint starts: the commits of that moment
/// are copied together, and a page they all changed is written once.
const GATHER: Duration = Duration::from_millis(100);

/// How often an idle checkpointer looks whether its pool was closed.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Starts the checkpointer of `pool`'s file; commits wake it through the
/// returned handle. It ends when the pool is closed (`Db::close` wakes it
/// to see that at once).
pub(crate) fn spawn(pool: &SqlitePool) -> Arc<Notify> {
    let wake = Arc::new(Notify::new());
    let (pool, woken) = (pool.clone(), wake.clone());
    tokio::spawn(async move {
        let options = pool.connect_options();
        let mut conn = match SqliteConnection::connect_with(&options).await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!("no background checkpoints (the writers checkpoint): {e}");
                return;
            }
        };
        loop {
            let woken = tokio::time::timeout(IDLE_CHECK, woken.notified())
                .await
                .is_ok();
            if pool.is_closed() {
                break;
            }
            if !woken {
                continue;
            }
            tokio::time::sleep(GATHER).await;
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&mut conn)
                .await
            {
                tracing::warn!("background checkpoint failed (the writers checkpoint): {e}");
            }
        }
        let _ = conn.close().await;
    });
    wake
}

#[cfg(test)]
mod tests {
    use crate::Db;
    use std::time::{Duration, Instant};

    /// A commit's pages reach the database file without another write: the
    /// checkpointer copies them. The commit writes about 400 pages, under
    /// both SQLite's default mark (1,000) and the writers' backstop, so
    /// without the checkpointer they would stay in the log.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_is_copied_into_the_database_file_in_the_background() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("checkpoint.db");
        let db = Db::open(path.to_str().expect("utf-8 path"))
            .await
            .expect("open");
        let mut tx = db.begin().await.expect("begin");
        tx.x()
            .execute("CREATE TABLE filler (v TEXT NOT NULL)", &[])
            .await
            .expect("create");
        tx.commit().await.expect("commit");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = std::fs::metadata(&path).expect("database file").len();
        let mut tx = db.begin().await.expect("begin");
        for n in 0..400 {
            tx.x()
                .execute(
                    "INSERT INTO filler (v) VALUES ($1)",
                    &crate::args![format!("{n:04}").repeat(900)],
                )
                .await
                .expect("insert");
        }
        tx.commit().await.expect("commit");
        let start = Instant::now();
        let grown = loop {
            let now = std::fs::metadata(&path).expect("database file").len();
            if now >= before + 1_400_000 || start.elapsed() > Duration::from_secs(10) {
                break now;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(
            grown >= before + 1_400_000,
            "the database file stayed at {grown} bytes (from {before}): the log was not copied"
        );
        db.close().await;
    }
}
