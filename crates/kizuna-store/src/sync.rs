//! What the sync engine keeps: how far each stream of changes has been read,
//! which records are linked to which, what each run did, and the jobs table
//! every server process on one database shares.

use crate::db::{Dialect, Tx, db_error};
use crate::records::Sql;
use crate::{Store, now_ms};
use kizuna_domain::Result;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::types::Json;

/// A position in the change log: changes are read in (txid, seq) order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, sqlx::FromRow)]
pub struct Pos {
    pub txid: i64,
    pub seq: i64,
}

/// A read of a stream: the changes it found, and the position up to which
/// it looked (past the changes it left out); `None` when there was nothing
/// after the position read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRead {
    pub changes: Vec<StreamChange>,
    pub end: Option<Pos>,
}

/// One change of a stream (one org's changes to one module).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, sqlx::FromRow)]
pub struct StreamChange {
    pub txid: i64,
    pub seq: i64,
    pub record_id: i64,
    pub op: String,
    pub origin_kind: String,
    pub origin_id: Option<i64>,
}

impl StreamChange {
    pub fn pos(&self) -> Pos {
        Pos {
            txid: self.txid,
            seq: self.seq,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Run {
    pub id: i64,
    pub integration_id: i64,
    pub trigger: String,
    pub direction: String,
    pub data_type: String,
    pub state: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub heartbeat_at: i64,
    pub added: i64,
    pub updated: i64,
    pub linked: i64,
    pub deleted: i64,
    pub skipped: i64,
    pub failed: i64,
    pub error: Option<Json<Value>>,
}

/// What one step of a run did, added to the run's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub added: i64,
    pub updated: i64,
    /// Tied to a record that already existed (EVT-7) instead of adding one.
    pub linked: i64,
    pub deleted: i64,
    pub skipped: i64,
    pub failed: i64,
}

impl Counts {
    pub fn add(&mut self, other: Counts) {
        self.added += other.added;
        self.updated += other.updated;
        self.linked += other.linked;
        self.deleted += other.deleted;
        self.skipped += other.skipped;
        self.failed += other.failed;
    }

    pub fn writes(&self) -> i64 {
        self.added + self.updated + self.deleted
    }
}

/// A record a run did not simply write: skipped, failed, held in conflict,
/// or written with a notice — always with its reason (GEN-8).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Item {
    #[serde(skip)]
    pub id: i64,
    #[serde(skip)]
    pub run_id: i64,
    pub outcome: String,
    pub code: String,
    pub rule: Option<String>,
    pub message: Json<Value>,
    pub source_module: String,
    pub source_id: i64,
    pub target_module: Option<String>,
    pub target_id: Option<i64>,
    pub details: Json<Value>,
}

/// A claimed job.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub integration_id: Option<i64>,
    pub attempts: i64,
}

const RUN_COLUMNS: &str = "id, integration_id, trigger, direction, data_type, state, started_at, \
     finished_at, heartbeat_at, added, updated, linked, deleted, skipped, failed, error";
const ITEM_COLUMNS: &str = "id, run_id, outcome, code, rule, message, source_module, source_id, \
     target_module, target_id, details";

impl Store {
    /// A write transaction, for the sync engine's all-or-nothing steps.
    pub async fn begin(&self) -> Result<Tx> {
        self.db.begin().await
    }

    /// A transaction that only reads, on one snapshot (`Db::begin_read`).
    pub async fn begin_read(&self) -> Result<Tx> {
        self.db.begin_read().await
    }

    /// The position of the last change to `module` in `org`, whoever made
    /// it (`None` before the first). Every write to a record adds a change
    /// in its own transaction, so on SQLite, where commits come one after
    /// another and sequence numbers only grow, an unchanged last position
    /// means that no record of the module was written in between.
    pub async fn stream_last_in(&self, tx: &mut Tx, org: i64, module: &str) -> Result<Option<Pos>> {
        tx.x()
            .fetch_optional(
                "SELECT txid, seq FROM changes WHERE org_id = $1 AND module = $2 \
                 ORDER BY txid DESC, seq DESC LIMIT 1",
                &crate::args![org, module],
            )
            .await
            .map_err(db_error)
    }

    /// How far an integration has read a stream (the start, if never).
    pub async fn cursor_in(&self, tx: &mut Tx, integration: i64, stream: &str) -> Result<Pos> {
        read_cursor(tx.x(), integration, stream).await
    }

    /// `cursor_in` outside a transaction.
    pub async fn cursor(&self, integration: i64, stream: &str) -> Result<Pos> {
        read_cursor(self.db.x(), integration, stream).await
    }

    /// Changes to `module` in `org` after `after`, oldest first, of
    /// transactions that have all committed: `stream_read_in` skipping none.
    pub async fn stream_changes_in(
        &self,
        tx: &mut Tx,
        org: i64,
        module: &str,
        after: Pos,
        limit: usize,
    ) -> Result<Vec<StreamChange>> {
        Ok(self
            .stream_read_in(tx, org, module, after, limit, None)
            .await?
            .changes)
    }

    /// Up to `limit` changes to `module` in `org` after `after`, oldest
    /// first, of transactions that have all committed, leaving out the
    /// writes of integration `skip` (its own writes, which it must not send
    /// back: an initial sync would otherwise read back every record it made,
    /// a chunk at a time). On PostgreSQL sequence numbers are taken before
    /// commit, so a change with a lower seq may still be in flight; reading
    /// only below the oldest running transaction (`pg_snapshot_xmin`) and in
    /// (txid, seq) order never steps over one.
    pub async fn stream_read_in(
        &self,
        tx: &mut Tx,
        org: i64,
        module: &str,
        after: Pos,
        limit: usize,
        skip: Option<i64>,
    ) -> Result<StreamRead> {
        let bound = self.visible_bound(tx).await?;
        // In the order of `StreamChange`'s fields, which is how each row decodes.
        let columns = "txid, seq, record_id, op, origin_kind, origin_id";
        let filter = match skip {
            Some(_) => {
                "AND txid < $6 AND (origin_kind <> 'integration' OR origin_id IS NULL OR origin_id <> $7)"
            }
            None => "AND txid < $6",
        };
        let sql = format!(
            "SELECT {} FROM ({}) w",
            self.db.dialect().json_rows(&[columns]),
            after_sql(columns, filter)
        );
        let args: Vec<crate::db::Arg> =
            crate::args![org, module, after.txid, after.seq, limit as i64, bound]
                .into_iter()
                .chain(skip.map(crate::db::Arg::from))
                .collect();
        let mut changes: Vec<StreamChange> =
            tx.x().fetch_json(&sql, &args).await.map_err(db_error)?;
        // An aggregate need not keep its input's order.
        changes.sort_by_key(StreamChange::pos);
        let end = match changes.last() {
            Some(last) if changes.len() >= limit || skip.is_none() => Some(last.pos()),
            // The stream's end: every change up to it was looked at.
            _ => {
                let last: Option<Pos> = tx
                    .x()
                    .fetch_optional(
                        "SELECT txid, seq FROM changes WHERE org_id = $1 AND module = $2 \
                         AND txid >= $3 AND txid < $4 ORDER BY txid DESC, seq DESC LIMIT 1",
                        &crate::args![org, module, after.txid, bound],
                    )
                    .await
                    .map_err(db_error)?;
                last.filter(|p| *p > after)
            }
        };
        Ok(StreamRead { changes, end })
    }

    /// Whether a stream has changes after `after` (committed or not: a
    /// worker that looks again a moment later will read them).
    pub async fn stream_pending(&self, org: i64, module: &str, after: Pos) -> Result<bool> {
        let row: Option<crate::db::IdRow> = self
            .db
            .x()
            .fetch_optional(
                &after_sql("seq AS id, txid, seq", ""),
                &crate::args![org, module, after.txid, after.seq, 1i64],
            )
            .await
            .map_err(db_error)?;
        Ok(row.is_some())
    }

    /// The txid below which every transaction has finished.
    async fn visible_bound(&self, tx: &mut Tx) -> Result<i64> {
        match self.db.dialect() {
            // One writer at a time: every committed change is final.
            Dialect::Sqlite => Ok(i64::MAX),
            Dialect::Postgres => {
                let row: crate::db::IdRow = tx
                    .x()
                    .fetch_one(
                        "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS id",
                        &[],
                    )
                    .await
                    .map_err(db_error)?;
                Ok(row.id)
            }
        }
    }

    /// Moves a cursor from `from` to `to`, only if it is still at `from`:
    /// false when another run moved it meanwhile (the caller rolls back and
    /// reads again). On PostgreSQL the row stays locked to commit, so a
    /// concurrent run waits here and then sees the new position.
    pub async fn advance_cursor_in(
        &self,
        tx: &mut Tx,
        integration: i64,
        stream: &str,
        from: Pos,
        to: Pos,
    ) -> Result<bool> {
        let n = tx
            .x()
            .execute(
                "INSERT INTO sync_cursors (integration_id, stream, txid, seq) VALUES ($1, $2, $5, $6) \
                 ON CONFLICT (integration_id, stream) DO UPDATE SET txid = excluded.txid, seq = excluded.seq \
                 WHERE sync_cursors.txid = $3 AND sync_cursors.seq = $4",
                &crate::args![integration, stream, from.txid, from.seq, to.txid, to.seq],
            )
            .await
            .map_err(db_error)?;
        // A first insert over a row another run inserted meanwhile conflicts
        // with a cursor that is not at `from` any more: 0 rows.
        Ok(n == 1)
    }

    /// Forgets everything an integration synced (GEN-7 delete): its links
    /// and cursors. The records stay in each app.
    pub async fn forget_sync_state(&self, integration: i64) -> Result<()> {
        let mut tx = self.db.begin().await?;
        for table in [
            "sync_links",
            "sync_cursors",
            "sync_figures_due",
            "sync_held",
            "mail_items",
            "mail_sources",
        ] {
            tx.x()
                .execute(
                    &format!("DELETE FROM {table} WHERE integration_id = $1"),
                    &crate::args![integration],
                )
                .await
                .map_err(db_error)?;
        }
        tx.commit().await
    }

    /// Records the start of a run, committed at once so that a crash leaves
    /// it in the history (as interrupted).
    pub async fn start_run(
        &self,
        integration: i64,
        trigger: &str,
        direction: &str,
        data_type: &str,
    ) -> Result<Run> {
        let now = now_ms();
        self.db
            .write()
            .await
            .x()
            .fetch_one(
                &format!(
                    "INSERT INTO sync_runs (integration_id, trigger, direction, data_type, state, started_at, heartbeat_at) \
                     VALUES ($1, $2, $3, $4, 'running', $5, $5) RETURNING {RUN_COLUMNS}"
                ),
                &crate::args![integration, trigger, direction, data_type, now],
            )
            .await
            .map_err(db_error)
    }

    /// Adds a step's counts and items to a run, in the step's transaction:
    /// the history adds up whatever crashes.
    pub async fn record_progress_in(
        &self,
        tx: &mut Tx,
        run: i64,
        counts: Counts,
        items: &[Item],
    ) -> Result<()> {
        tx.x()
            .execute(
                "UPDATE sync_runs SET added = added + $1, updated = updated + $2, deleted = deleted + $3, \
                 skipped = skipped + $4, failed = failed + $5, heartbeat_at = $6, linked = linked + $8 WHERE id = $7",
                &crate::args![
                    counts.added,
                    counts.updated,
                    counts.deleted,
                    counts.skipped,
                    counts.failed,
                    now_ms(),
                    run,
                    counts.linked
                ],
            )
            .await
            .map_err(db_error)?;
        for chunk in items.chunks(crate::records::INSERT_CHUNK) {
            let mut sql = Sql::new(
                "INSERT INTO sync_items (run_id, outcome, code, rule, message, source_module, source_id, \
                 target_module, target_id, details) VALUES ",
            );
            let r = sql.arg(run);
            for (i, it) in chunk.iter().enumerate() {
                let ns = [
                    r,
                    sql.arg(&it.outcome),
                    sql.arg(&it.code),
                    sql.arg(it.rule.clone()),
                    sql.arg(&it.message.0),
                    sql.arg(&it.source_module),
                    sql.arg(it.source_id),
                    sql.arg(it.target_module.clone()),
                    sql.arg(it.target_id),
                    sql.arg(&it.details.0),
                ];
                sql.push_row(i == 0, &ns);
            }
            tx.x()
                .execute(&sql.text, &sql.args)
                .await
                .map_err(db_error)?;
        }
        Ok(())
    }

    /// Ends a run: `finished`, or `failed` with the error's JSON.
    pub async fn finish_run(&self, run: i64, error: Option<&Value>) -> Result<Run> {
        let now = now_ms();
        let sql = match error {
            Some(_) => format!(
                "UPDATE sync_runs SET state = 'failed', finished_at = $1, heartbeat_at = $1, error = $3 WHERE id = $2 RETURNING {RUN_COLUMNS}"
            ),
            None => format!(
                "UPDATE sync_runs SET state = 'finished', finished_at = $1, heartbeat_at = $1 WHERE id = $2 RETURNING {RUN_COLUMNS}"
            ),
        };
        let mut args = crate::args![now, run].to_vec();
        if let Some(e) = error {
            args.push(e.clone().into());
        }
        self.db
            .write()
            .await
            .x()
            .fetch_one(&sql, &args)
            .await
            .map_err(db_error)
    }

    /// Marks as interrupted the runs of an integration that stopped making
    /// progress before `stale_before` (their process died); returns how many.
    pub async fn interrupt_stale_runs(&self, integration: i64, stale_before: i64) -> Result<u64> {
        self.db
            .write()
            .await
            .x()
            .execute(
                "UPDATE sync_runs SET state = 'interrupted', finished_at = heartbeat_at \
                 WHERE integration_id = $1 AND state = 'running' AND heartbeat_at < $2",
                &crate::args![integration, stale_before],
            )
            .await
            .map_err(db_error)
    }

    /// An integration's runs, newest first, before run id `before`.
    pub async fn runs(
        &self,
        integration: i64,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Run>> {
        self.db
            .x()
            .fetch_all(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM sync_runs WHERE integration_id = $1 AND id < $2 \
                     ORDER BY id DESC LIMIT $3"
                ),
                &crate::args![integration, before.unwrap_or(i64::MAX), i64::from(limit)],
            )
            .await
            .map_err(db_error)
    }

    pub async fn run(&self, id: i64) -> Result<Option<Run>> {
        self.db
            .x()
            .fetch_optional(
                &format!("SELECT {RUN_COLUMNS} FROM sync_runs WHERE id = $1"),
                &crate::args![id],
            )
            .await
            .map_err(db_error)
    }

    /// A run's items in order, after item id `after`.
    pub async fn run_items(&self, run: i64, after: Option<i64>, limit: u32) -> Result<Vec<Item>> {
        self.db
            .x()
            .fetch_all(
                &format!(
                    "SELECT {ITEM_COLUMNS} FROM sync_items WHERE run_id = $1 AND id > $2 ORDER BY id LIMIT $3"
                ),
                &crate::args![run, after.unwrap_or(0), i64::from(limit)],
            )
            .await
            .map_err(db_error)
    }

    /// Removes the runs (and their items) that started before `before`.
    pub async fn purge_runs(&self, before: i64) -> Result<u64> {
        let mut tx = self.db.begin().await?;
        tx.x()
            .execute(
                "DELETE FROM sync_items WHERE run_id IN (SELECT id FROM sync_runs WHERE started_at < $1)",
                &crate::args![before],
            )
            .await
            .map_err(db_error)?;
        let n = tx
            .x()
            .execute(
                "DELETE FROM sync_runs WHERE started_at < $1",
                &crate::args![before],
            )
            .await
            .map_err(db_error)?;
        tx.commit().await?;
        Ok(n)
    }

    /// Asks for a job to run (now, or after `delay_ms`): queues it when idle,
    /// and tells a running one to run again when it ends.
    pub async fn queue_job(&self, kind: &str, integration: i64, delay_ms: i64) -> Result<()> {
        let now = now_ms();
        self.db
            .write()
            .await
            .x()
            .execute(
                "INSERT INTO jobs (kind, integration_id, state, run_after, created_at) \
                 VALUES ($1, $2, 'queued', $3, $4) \
                 ON CONFLICT (kind, integration_id) DO UPDATE SET \
                 state = CASE WHEN jobs.state = 'running' THEN 'running' ELSE 'queued' END, \
                 again = CASE WHEN jobs.state = 'running' THEN $5 ELSE jobs.again END, \
                 run_after = CASE WHEN jobs.state = 'idle' THEN excluded.run_after ELSE jobs.run_after END",
                &crate::args![kind, integration, now + delay_ms, now, true],
            )
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Claims the next due job for `owner` until `lease_ms` from now: a queued
    /// one, or a running one whose lease ran out (its worker died).
    pub async fn claim_job(&self, owner: &str, lease_ms: i64) -> Result<Option<Job>> {
        let now = now_ms();
        let due =
            "((state = 'queued' AND run_after <= $3) OR (state = 'running' AND lease_until < $3))";
        let lock = match self.db.dialect() {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let sql = format!(
            "UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, \
             attempts = attempts + 1, again = $4 \
             WHERE id = (SELECT id FROM jobs WHERE {due} ORDER BY run_after, id LIMIT 1{lock}) AND {due} \
             RETURNING id, kind, integration_id, attempts"
        );
        let mut tx = self.db.begin().await?;
        let job: Option<Job> = tx
            .x()
            .fetch_optional(&sql, &crate::args![owner, now + lease_ms, now, false])
            .await
            .map_err(db_error)?;
        tx.commit().await?;
        Ok(job)
    }

    /// Extends a lease; false when the job is no longer this owner's.
    pub async fn renew_lease(&self, job: i64, owner: &str, lease_ms: i64) -> Result<bool> {
        let n = self
            .db
            .write()
            .await
            .x()
            .execute(
                "UPDATE jobs SET lease_until = $1 WHERE id = $2 AND lease_owner = $3 AND state = 'running'",
                &crate::args![now_ms() + lease_ms, job, owner],
            )
            .await
            .map_err(db_error)?;
        Ok(n == 1)
    }

    /// Ends a claimed job: idle after success (queued again if more work
    /// arrived meanwhile), or queued again after `retry_in_ms` with the error.
    pub async fn finish_job(
        &self,
        job: i64,
        owner: &str,
        failure: Option<(&str, i64)>,
    ) -> Result<()> {
        let now = now_ms();
        let result = match failure {
            None => {
                self.db
                    .write()
                    .await
                    .x()
                    .execute(
                        "UPDATE jobs SET state = CASE WHEN again THEN 'queued' ELSE 'idle' END, \
                         run_after = $1, attempts = 0, last_error = NULL, lease_owner = NULL, \
                         lease_until = NULL, again = $4 WHERE id = $2 AND lease_owner = $3",
                        &crate::args![now, job, owner, false],
                    )
                    .await
            }
            Some((error, retry_in_ms)) => {
                self.db
                    .write()
                    .await
                    .x()
                    .execute(
                        "UPDATE jobs SET state = 'queued', run_after = $1, last_error = $4, \
                         lease_owner = NULL, lease_until = NULL, again = $5 \
                         WHERE id = $2 AND lease_owner = $3",
                        &crate::args![now + retry_in_ms, job, owner, error, false],
                    )
                    .await
            }
        };
        result.map_err(db_error)?;
        Ok(())
    }

    /// The highest change-log sequence number: a worker that sees it move
    /// knows something may be waiting.
    pub async fn last_change_seq(&self) -> Result<i64> {
        let row: crate::db::IdRow = self
            .db
            .x()
            .fetch_one("SELECT COALESCE(MAX(seq), 0) AS id FROM changes", &[])
            .await
            .map_err(db_error)?;
        Ok(row.id)
    }
}

/// Changes of a stream (`$1` org, `$2` module) after the position (`$3`
/// txid, `$4` seq), in (txid, seq) order, at most `$5`. Written as two index
/// seeks — the rest of the position's transaction, then later transactions —
/// because neither backend turns `txid > a OR (txid = a AND seq > b)` into
/// one: it would step over every change already read, on every read.
fn after_sql(columns: &str, bound: &str) -> String {
    let part = |cond: &str| {
        format!(
            "SELECT * FROM (SELECT {columns} FROM changes WHERE org_id = $1 AND module = $2 \
             AND {cond} {bound} ORDER BY txid, seq LIMIT $5) p"
        )
    };
    format!(
        "SELECT * FROM ({} UNION ALL {}) s ORDER BY txid, seq LIMIT $5",
        part("txid = $3 AND seq > $4"),
        part("txid > $3")
    )
}

async fn read_cursor(x: crate::db::Exec<'_>, integration: i64, stream: &str) -> Result<Pos> {
    let pos: Option<Pos> = x
        .fetch_optional(
            "SELECT txid, seq FROM sync_cursors WHERE integration_id = $1 AND stream = $2",
            &crate::args![integration, stream],
        )
        .await
        .map_err(db_error)?;
    Ok(pos.unwrap_or_default())
}
