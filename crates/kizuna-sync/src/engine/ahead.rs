//! The next chunk's reads, made while this chunk writes and commits.
//!
//! On SQLite most of a chunk's time is its writes and its commit, on the one
//! writing connection, while the engine's thread waits. The next chunk's
//! reads — the stream's changes after this chunk and the records they touch —
//! are made meanwhile on another connection, from a snapshot of their own
//! (BENCHMARKS.md, desk-sync). The next chunk uses them only if they are
//! what it would read itself: its cursor is where the reads started, and no
//! change to the stream's module was committed since their snapshot. Every
//! write to a record adds a change in its own transaction, and SQLite's
//! commits come one after another with growing sequence numbers, so an
//! unchanged last change means an unchanged module. On PostgreSQL sequence
//! numbers are taken before commit, so that test would not hold; there the
//! chunk reads for itself.

use super::{BATCH, Stream, changed_by_others};
use kizuna_domain::Result;
use kizuna_store::{Dialect, Pos, Record, Store, StreamRead, Tx};
use tokio::task::JoinHandle;

/// A chunk's reads made ahead of it.
pub(crate) struct Ahead {
    /// The position they read from.
    from: Pos,
    /// The stream's last change in their snapshot.
    last: Option<Pos>,
    pub read: StreamRead,
    /// The records changed by others (`changed_by_others`), as they were.
    pub records: Vec<Record>,
}

/// Reads under way for the next chunk; dropping it cancels them.
pub(crate) struct ReadAhead(JoinHandle<Result<Ahead>>);

impl ReadAhead {
    /// Starts reading `stream` after `from`, as the next chunk will; `None`
    /// where reads ahead cannot be checked (PostgreSQL).
    pub(crate) fn start(
        store: &Store,
        stream: Stream,
        from: Pos,
        skip: Option<i64>,
        integration: i64,
    ) -> Option<ReadAhead> {
        if store.dialect() != Dialect::Sqlite {
            return None;
        }
        let store = store.clone();
        Some(ReadAhead(tokio::spawn(async move {
            let mut tx = store.begin_read().await?;
            let last = store
                .stream_last_in(&mut tx, stream.org, stream.module)
                .await?;
            let read = store
                .stream_read_in(&mut tx, stream.org, stream.module, from, BATCH, skip)
                .await?;
            let (ids, _) = changed_by_others(&read.changes, integration);
            let records = store
                .records_in(&mut tx, stream.org, stream.module, &ids)
                .await?;
            Ok(Ahead {
                from,
                last,
                read,
                records,
            })
        })))
    }

    /// The reads, once made; `None` if they failed (the chunk then reads for
    /// itself, and meets the failure there if it lasts). Awaited before the
    /// chunk's transaction begins, so that no writer waits on them.
    pub(crate) async fn done(mut self) -> Option<Ahead> {
        match (&mut self.0).await {
            Ok(read) => read.ok(),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => None,
        }
    }
}

impl Ahead {
    /// Whether these are the reads a chunk of `stream` from `from` would make
    /// in `tx` now.
    pub(crate) async fn fits(
        &self,
        store: &Store,
        tx: &mut Tx,
        stream: &Stream,
        from: Pos,
    ) -> Result<bool> {
        if self.from != from {
            return Ok(false);
        }
        let last = store.stream_last_in(tx, stream.org, stream.module).await?;
        Ok(last == self.last)
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kizuna_store::Origin;
    use kizuna_testkit::{CrmDesk, TestDb, values};
    use serde_json::json;

    /// Reads made ahead, once they are done.
    async fn read_ahead(store: &Store, stream: Stream, from: Pos, integration: i64) -> ReadAhead {
        let ahead = ReadAhead::start(store, stream, from, Some(integration), integration)
            .expect("SQLite reads ahead");
        while !ahead.0.is_finished() {
            tokio::task::yield_now().await;
        }
        ahead
    }

    /// `ahead`'s reads if a chunk reading `stream` from `from` takes them.
    async fn taken(store: &Store, ahead: ReadAhead, stream: &Stream, from: Pos) -> Option<Ahead> {
        let a = ahead.done().await.expect("read");
        let mut tx = store.begin().await.expect("begin");
        let fits = a.fits(store, &mut tx, stream, from).await.expect("fits");
        fits.then_some(a)
    }

    /// A chunk uses the changes and records read ahead of it only while they
    /// are what it would read itself: not from another position, and not
    /// once a record of the stream's module was written since, whoever wrote
    /// it; a write to another module leaves them good.
    #[tokio::test]
    async fn reads_ahead_are_used_only_while_the_stream_is_as_they_read_it() {
        let (_db, store, admin) = TestDb::sqlite_with_admin("reads_ahead").await;
        let pair = CrmDesk::create(&store, &admin).await;
        let contacts = store
            .module(pair.desk.id, "Contacts")
            .await
            .expect("module");
        let accounts = store
            .module(pair.desk.id, "Accounts")
            .await
            .expect("module");
        let rows = ["Sato", "Suzuki"]
            .iter()
            .map(|n| values(json!({"Last_Name": n, "Email": format!("{n}@example.com")})))
            .collect();
        let made = store
            .create_records(pair.desk.id, &contacts, rows, Origin::System)
            .await
            .expect("contacts");
        let stream = crate::engine::desk::streams(pair.crm.id, pair.desk.id)
            .into_iter()
            .find(|s| s.org == pair.desk.id && s.module == "Contacts")
            .expect("the Desk contacts' stream");
        let start = Pos::default();

        let ahead = read_ahead(&store, stream, start, pair.integration).await;
        let a = taken(&store, ahead, &stream, start).await.expect("used");
        assert_eq!(a.read.changes.len(), 2);
        let mut ids: Vec<i64> = a.records.iter().map(|r| r.id).collect();
        ids.sort();
        assert_eq!(ids, made.iter().map(|r| r.id).collect::<Vec<_>>());

        let elsewhere = a.read.changes[0].pos();
        let ahead = read_ahead(&store, stream, start, pair.integration).await;
        assert!(taken(&store, ahead, &stream, elsewhere).await.is_none());

        let ahead = read_ahead(&store, stream, start, pair.integration).await;
        store
            .create_records(
                pair.desk.id,
                &accounts,
                vec![values(json!({"Account_Name": "Kizuna KK"}))],
                Origin::System,
            )
            .await
            .expect("account");
        assert!(taken(&store, ahead, &stream, start).await.is_some());

        let ahead = read_ahead(&store, stream, start, pair.integration).await;
        store
            .update_record(
                pair.desk.id,
                &contacts,
                made[0].id,
                values(json!({"Phone": "03-1234-5678"})),
                None,
                Origin::Integration(pair.integration),
            )
            .await
            .expect("update");
        assert!(taken(&store, ahead, &stream, start).await.is_none());
    }
}
