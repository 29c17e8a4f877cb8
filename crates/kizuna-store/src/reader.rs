//! SQLite reads on the asking thread, for the reads nearly every API request
//! makes: its API key, with the caller's membership of the path's org (and,
//! for the GET of a record, the record), and one record by id.
//!
//! sqlx runs each SQLite connection on a worker thread of its own, so every
//! query is a hand-off to that thread and back — about 18 µs (BENCHMARKS.md,
//! api-get), several times what SQLite takes to find a row by its key. These
//! reads go through a small pool of read-only connections used directly by
//! the thread that asks (rusqlite, on the same libsqlite3 as sqlx), with the
//! file memory-mapped: a page is read where it lies in the OS page cache,
//! without a `pread` and a copy. Each read is a seek by key (a handful of
//! pages); in WAL mode a reader never waits for a writer, so a read holds its
//! thread no longer than a page read would. Each read is its own read
//! transaction, so it sees every commit made before it, by any process (a
//! deactivation by the CLI, GEN-10). Writes, and every other read, stay on
//! sqlx.

use crate::db::db_error;
use kizuna_domain::Result;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Idle connections kept: enough for every thread of the runtime to read at
/// once; more are opened when needed and closed after.
const MAX_IDLE: usize = 16;

/// Bytes of the database file read through memory mapping.
const MMAP_SIZE: i64 = 1 << 30;

/// Prepared statements kept per connection (the hot reads are a few).
const STATEMENT_CACHE: usize = 16;

pub(crate) struct SqliteReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl SqliteReader {
    pub(crate) fn new(path: &Path) -> Self {
        SqliteReader {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `read` on an idle read-only connection (opened if none is).
    pub(crate) fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(c) => c,
            None => self.open().map_err(db_error)?,
        };
        let out = read(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
        out.map_err(db_error)
    }

    /// Closes the idle connections (the store is closing).
    pub(crate) fn close(&self) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// A read-only connection with the writer's busy timeout (a reader meets
    /// it only while the WAL index is rebuilt after a crash). The database
    /// exists: the store migrated it before making this reader.
    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "mmap_size", MMAP_SIZE)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }
}
