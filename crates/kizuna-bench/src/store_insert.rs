//! `store-insert`: contacts created through `Store::create_records` against
//! a plain batched upsert of the same rows into a table of the same schema, in
//! the same database, batch for batch.

use crate::common::{self, BenchDb, median, r3};
use anyhow::Result;
use kizuna_domain::validate::email_key;
use kizuna_store::{Db, Origin, now_ms};
use serde_json::{Map, Value, json};
use sqlx::types::Json;
use std::time::{Duration, Instant};

/// Rows per baseline statement: 9 parameters a row stays well under both
/// backends' parameter limits.
const STATEMENT_ROWS: usize = 1000;

pub async fn run(db: &BenchDb, size: u64, batch: usize) -> Result<Value> {
    let store = &db.store;
    let crm = common::crm_org(store).await?;
    create_baseline_table(store.db()).await?;
    eprintln!(
        "store-insert: {size} contacts in batches of {batch}, store and baseline alternating per batch"
    );

    let (mut store_time, mut baseline_time) = (Duration::ZERO, Duration::ZERO);
    let (mut store_batch_ms, mut baseline_batch_ms) = (Vec::new(), Vec::new());
    let mut next_report = size / 10;
    let mut start = 0;
    while start < size {
        let end = (start + batch as u64).min(size);
        let rows = common::contacts(start..end, &crm.contacts)?;
        let ids: Vec<i64> = (start as i64 + 1..=end as i64).collect();
        let for_store = rows.clone();
        // Alternate who goes first, so that neither always meets the other's
        // checkpoint or cache state.
        let store_first = (start / batch as u64) % 2 == 1;
        let store_run =
            timed(store.create_records(crm.org.id, &crm.contacts, for_store, Origin::System));
        let baseline_run = upsert_baseline(store.db(), crm.org.id, "Contacts", &ids, &rows);
        let (s, b) = if store_first {
            let s = store_run.await?;
            (s, baseline_run.await?)
        } else {
            let b = baseline_run.await?;
            (store_run.await?, b)
        };
        store_time += s;
        baseline_time += b;
        store_batch_ms.push(s.as_secs_f64() * 1e3);
        baseline_batch_ms.push(b.as_secs_f64() * 1e3);
        start = end;
        if start >= next_report || start == size {
            eprintln!(
                "  {start:>9} rows  store {:>8.0} rows/s  baseline {:>8.0} rows/s  (last batch: store {:.1} ms, baseline {:.1} ms)",
                start as f64 / store_time.as_secs_f64(),
                start as f64 / baseline_time.as_secs_f64(),
                s.as_secs_f64() * 1e3,
                b.as_secs_f64() * 1e3,
            );
            next_report += (size / 10).max(1);
        }
    }

    let (stored, baselined) = count_rows(store.db(), crm.org.id).await?;
    anyhow::ensure!(
        stored == size as i64 && baselined == size as i64,
        "expected {size} rows on each side, found {stored} in records and {baselined} in the baseline"
    );
    let store_rps = size as f64 / store_time.as_secs_f64();
    let baseline_rps = size as f64 / baseline_time.as_secs_f64();
    let ratio = store_rps / baseline_rps;
    Ok(json!({
        "scenario": "store-insert",
        "backend": db.backend(),
        "size": size,
        "batch": batch,
        "store_rows_per_s": store_rps.round(),
        "baseline_rows_per_s": baseline_rps.round(),
        "ratio": r3(ratio),
        "goal": 0.5,
        "goal_met": ratio >= 0.5,
        "store_seconds": r3(store_time.as_secs_f64()),
        "baseline_seconds": r3(baseline_time.as_secs_f64()),
        "store_batch_ms_p50": r3(median(&store_batch_ms)),
        "baseline_batch_ms_p50": r3(median(&baseline_batch_ms)),
        "ratio_of_batch_medians": r3(median(&baseline_batch_ms) / median(&store_batch_ms)),
        "peak_memory_kib": common::peak_memory_kib(),
    }))
}

/// How long `f` takes to complete (it starts when awaited).
async fn timed<T, E: Into<anyhow::Error>>(
    f: impl Future<Output = Result<T, E>>,
) -> Result<Duration> {
    let t = Instant::now();
    f.await.map_err(Into::into)?;
    Ok(t.elapsed())
}

/// The baseline's table has the schema of `records`: its columns, its foreign
/// key and every index `records` has when it is made (those the product
/// rules need — lists, e-mail dedup across modules, the recycle bin, names
/// as keys, event figures — and those of sortable fields). So the ratio
/// measures what the store's API adds — id allocation, the change log,
/// lookup and uniqueness checks — not the cost of the schema, which any
/// writer pays. Sort indexes are made with the orgs that sort by them: a
/// caller makes this table after its orgs.
pub(crate) async fn create_baseline_table(db: &Db) -> Result<()> {
    let (id, int, json) = match db {
        Db::Sqlite(_) => ("INTEGER PRIMARY KEY", "INTEGER", "TEXT"),
        Db::Postgres(_) => ("BIGINT PRIMARY KEY", "BIGINT", "JSONB"),
    };
    let table = format!(
        "CREATE TABLE bench_baseline (id {id}, org_id {int} NOT NULL REFERENCES orgs(id), \
         module TEXT NOT NULL, version {int} NOT NULL, fields {json} NOT NULL, email_key TEXT, \
         created_by {int}, created_at {int} NOT NULL, updated_at {int} NOT NULL, deleted_at {int})"
    );
    for sql in std::iter::once(table).chain(records_indexes(db).await?) {
        match db {
            Db::Sqlite(pool) => {
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await?;
            }
            Db::Postgres(pool) => {
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await?;
            }
        }
    }
    Ok(())
}

/// The secondary indexes of `records` (the migrations' and the sortable
/// fields'), made over the baseline's table: every write to `records` pays
/// for them, so the baseline's do as well.
async fn records_indexes(db: &Db) -> Result<Vec<String>> {
    #[derive(sqlx::FromRow)]
    struct Definition {
        sql: String,
    }
    // SQLite's automatic indexes (of keys) have no SQL; PostgreSQL's primary
    // key is the table's own. In the order `records` got them: without
    // statistics, SQLite settles a tie between two indexes by that order, and
    // the baseline's e-mail look-up (which names its modules) would read every
    // Lead through the list index if that came second.
    let query = match db {
        Db::Sqlite(_) => {
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records' \
             AND sql IS NOT NULL ORDER BY rowid"
        }
        Db::Postgres(_) => {
            "SELECT indexdef AS sql FROM pg_indexes WHERE tablename = 'records' \
             AND schemaname = current_schema() AND indexname <> 'records_pkey' ORDER BY indexname"
        }
    };
    let found: Vec<Definition> = db.x().fetch_all(query, &[]).await?;
    found
        .into_iter()
        .map(|d| {
            let sql = d
                .sql
                .replacen(" INDEX records_", " INDEX bench_baseline_", 1)
                .replacen(" ON public.records ", " ON bench_baseline ", 1)
                .replacen(" ON records ", " ON bench_baseline ", 1)
                .replacen(" ON records(", " ON bench_baseline(", 1);
            anyhow::ensure!(
                sql.contains("bench_baseline_") && sql.contains(" ON bench_baseline"),
                "an index of records the baseline cannot copy: {}",
                d.sql
            );
            Ok(sql)
        })
        .collect()
}

/// One batch as a plain upsert: multi-row `INSERT … ON CONFLICT (id) DO
/// UPDATE` in one transaction (`BEGIN IMMEDIATE` on SQLite, like the store).
pub(crate) async fn upsert_baseline(
    db: &Db,
    org_id: i64,
    module: &str,
    ids: &[i64],
    rows: &[Map<String, Value>],
) -> Result<Duration> {
    macro_rules! upsert {
        ($backend:ty, $tx:expr) => {{
            let mut tx = $tx;
            let now = now_ms();
            for (ids, rows) in ids.chunks(STATEMENT_ROWS).zip(rows.chunks(STATEMENT_ROWS)) {
                let mut q = sqlx::QueryBuilder::<$backend>::new(
                    "INSERT INTO bench_baseline (id, org_id, module, version, fields, email_key, \
                     created_by, created_at, updated_at) ",
                );
                q.push_values(ids.iter().zip(rows), |mut v, (id, fields)| {
                    let email = fields.get("Email").and_then(Value::as_str).map(email_key);
                    v.push_bind(*id)
                        .push_bind(org_id)
                        .push_bind(module)
                        .push_bind(1_i64)
                        .push_bind(Json(fields))
                        .push_bind(email)
                        .push_bind(None::<i64>)
                        .push_bind(now)
                        .push_bind(now);
                });
                q.push(
                    " ON CONFLICT (id) DO UPDATE SET fields = excluded.fields, email_key = excluded.email_key, \
                     version = excluded.version, updated_at = excluded.updated_at",
                );
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        }};
    }
    let t = Instant::now();
    match db {
        Db::Sqlite(pool) => upsert!(sqlx::Sqlite, pool.begin_with("BEGIN IMMEDIATE").await?),
        Db::Postgres(pool) => upsert!(sqlx::Postgres, pool.begin().await?),
    }
    Ok(t.elapsed())
}

async fn count_rows(db: &Db, org_id: i64) -> Result<(i64, i64)> {
    let records = "SELECT COUNT(*) FROM records WHERE org_id = $1 AND module = 'Contacts'";
    let baseline = "SELECT COUNT(*) FROM bench_baseline";
    Ok(match db {
        Db::Sqlite(p) => (
            sqlx::query_scalar(records)
                .bind(org_id)
                .fetch_one(p)
                .await?,
            sqlx::query_scalar(baseline).fetch_one(p).await?,
        ),
        Db::Postgres(p) => (
            sqlx::query_scalar(records)
                .bind(org_id)
                .fetch_one(p)
                .await?,
            sqlx::query_scalar(baseline).fetch_one(p).await?,
        ),
    })
}
