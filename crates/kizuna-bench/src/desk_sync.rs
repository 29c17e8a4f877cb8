//! `desk-sync`: the initial two-way sync of a CRM and a Desk org that each
//! hold half of the accounts and contacts (the contacts pointing at their
//! org's accounts), through `kizuna_sync::engine::sync`, against a plain
//! batched upsert of the same rows into a table with the schema of
//! `records` in the same database; then how long one change takes to reach
//! the other side through the background worker while changes arrive at a
//! steady rate.
//!
//! A third side, *the writes alone*, measures the floor under the engine:
//! what the sync must write for each row (the twin through
//! `Store::create_records_in`, validated, and its link with the merge base,
//! 500 to a transaction), with none of the engine's reading of streams,
//! cursors, key matching, link look-ups or history. It runs on a pair of
//! orgs of its own, seeded alike.

use crate::common::{self, BenchDb, median, percentile, r3};
use anyhow::{Context, Result};
use kizuna_domain::field::ModuleDef;
use kizuna_domain::integration::Action;
use kizuna_domain::validate::{Mode, validate_fields};
use kizuna_domain::{App, IntegrationKind};
use kizuna_store::{Db, Origin, Store, User};
use kizuna_sync::engine::{self, Trigger};
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant};

pub struct Options {
    pub contacts: u64,
    pub accounts: u64,
    /// Timed runs of each side (medians are reported).
    pub reps: usize,
    /// Changes per second while the latency is measured.
    pub rate: u64,
    /// Seconds of changes.
    pub seconds: u64,
}

/// Rows per seeding transaction.
const SEED_BATCH: u64 = 1000;
/// Rows per baseline transaction: the engine's chunk.
const BATCH: i64 = kizuna_sync::engine::BATCH as i64;
/// Where the baseline's row ids start.
const BASELINE_IDS: i64 = 1 << 40;

/// Goals from the issue.
const GOAL_RATIO: f64 = 0.5;
const GOAL_P99_MS: f64 = 200.0;

/// An active CRM ⇄ Desk integration between two fresh orgs.
struct Pair {
    crm: i64,
    desk: i64,
    integration: i64,
}

async fn pair(store: &Store, admin: &User, n: usize) -> Result<Pair> {
    let (crm_name, desk_name) = (format!("Bench CRM {n}"), format!("Bench Desk {n}"));
    let crm = kizuna_apps::admin::create_org(store, App::Crm, &crm_name, "standard", admin).await?;
    let desk =
        kizuna_apps::admin::create_org(store, App::Desk, &desk_name, "standard", admin).await?;
    let i = kizuna_sync::lifecycle::create(
        store,
        admin,
        IntegrationKind::CrmDesk,
        crm.id,
        Some(desk.id),
        &json!({}),
    )
    .await?;
    kizuna_sync::lifecycle::act(store, admin, i.id, Action::Enable).await?;
    Ok(Pair {
        crm: crm.id,
        desk: desk.id,
        integration: i.id,
    })
}

/// Account `i`: a company of `common::contact(i)`, numbered to be unique.
fn account(i: u64, module: &ModuleDef) -> Result<Map<String, Value>> {
    let c = common::contact(i);
    let Value::Object(fields) = json!({
        "Account_Name": format!("{} {i}", c["Account_Name"].as_str().unwrap_or("Company")),
        "Phone": c["Phone"],
        "Website": format!("https://a{i}.example.com"),
    }) else {
        anyhow::bail!("an account is a JSON object");
    };
    Ok(validate_fields(module, &fields, Mode::Create)?)
}

/// Contact `j` of account `account` (a record id of its own org).
fn contact(j: u64, account: i64, module: &ModuleDef) -> Result<Map<String, Value>> {
    let c = common::contact(j);
    let Value::Object(fields) = json!({
        "First_Name": c["First_Name"],
        "Last_Name": c["Last_Name"],
        "Email": c["Email"],
        "Phone": c["Phone"],
        "Account": account,
    }) else {
        anyhow::bail!("a contact is a JSON object");
    };
    Ok(validate_fields(module, &fields, Mode::Create)?)
}

/// Seeds the accounts and contacts, those of even number in Desk and the
/// others in the CRM; a contact's account is one of its own org's. Returns
/// the last id seeded: whatever a side writes afterwards comes after it.
async fn seed(store: &Store, p: &Pair, o: &Options) -> Result<i64> {
    let mut last = 0;
    for (org, parity) in [(p.desk, 0), (p.crm, 1)] {
        let accounts_module = store.module(org, "Accounts").await?;
        let contacts_module = store.module(org, "Contacts").await?;
        let mut accounts = Vec::new();
        let numbers: Vec<u64> = (0..o.accounts).filter(|i| i % 2 == parity).collect();
        for chunk in numbers.chunks(SEED_BATCH as usize) {
            let rows = chunk
                .iter()
                .map(|i| account(*i, &accounts_module))
                .collect::<Result<Vec<_>>>()?;
            let made = store
                .create_records(org, &accounts_module, rows, Origin::System)
                .await?;
            accounts.extend(made.iter().map(|r| r.id));
        }
        anyhow::ensure!(!accounts.is_empty(), "--accounts must be at least 2");
        let numbers: Vec<u64> = (0..o.contacts).filter(|j| j % 2 == parity).collect();
        for chunk in numbers.chunks(SEED_BATCH as usize) {
            let rows = chunk
                .iter()
                .map(|j| {
                    let a = accounts[(common::mix(*j) % accounts.len() as u64) as usize];
                    contact(*j, a, &contacts_module)
                })
                .collect::<Result<Vec<_>>>()?;
            let made = store
                .create_records(org, &contacts_module, rows, Origin::System)
                .await?;
            last = last.max(made.iter().map(|r| r.id).max().unwrap_or(0));
        }
        last = last.max(accounts.iter().copied().max().unwrap_or(0));
    }
    Ok(last)
}

/// The passes both the baseline and the writes alone make, in the engine's
/// order: accounts before the contacts that point at them, each way.
fn passes(p: &Pair) -> [(&'static str, i64, i64); 4] {
    [
        ("Accounts", p.desk, p.crm),
        ("Accounts", p.crm, p.desk),
        ("Contacts", p.desk, p.crm),
        ("Contacts", p.crm, p.desk),
    ]
}

/// A seeded row of the source org: id, version, values.
type SourceRow = (i64, i64, sqlx::types::Json<Map<String, Value>>);

/// The next `BATCH` seeded rows of `module` in org `from` after id `after`.
async fn source_batch(
    db: &Db,
    from: i64,
    module: &str,
    after: i64,
    seeded: i64,
) -> Result<Vec<SourceRow>> {
    let sql = "SELECT id, version, fields FROM records WHERE org_id = $1 AND module = $2 \
               AND deleted_at IS NULL AND id > $3 AND id <= $5 ORDER BY id LIMIT $4";
    Ok(db
        .x()
        .fetch_all(
            sql,
            &kizuna_store::args![from, module, after, BATCH, seeded],
        )
        .await?)
}

/// The baseline: the same rows, read from each org 500 at a time by id and
/// written to the other as a multi-row upsert in one transaction each.
/// Nothing else: no links, no change log, no lookups translated, no
/// validation, no history.
async fn baseline_side(db: &Db, p: &Pair, seeded: i64, next_id: &mut i64) -> Result<(f64, i64)> {
    let t = Instant::now();
    let mut rows_done = 0;
    for (module, from, to) in passes(p) {
        let mut after = 0;
        loop {
            let batch = source_batch(db, from, module, after, seeded).await?;
            let Some((last, ..)) = batch.last() else {
                break;
            };
            after = *last;
            let ids: Vec<i64> = (0..batch.len() as i64).map(|k| *next_id + k).collect();
            *next_id += batch.len() as i64;
            let rows: Vec<Map<String, Value>> = batch.into_iter().map(|(.., f)| f.0).collect();
            rows_done += rows.len() as i64;
            crate::store_insert::upsert_baseline(db, to, module, &ids, &rows).await?;
        }
    }
    Ok((t.elapsed().as_secs_f64(), rows_done))
}

/// The writes alone: for the same rows, what the engine must write and
/// nothing it reads or decides. Each batch of 500 source rows becomes, in
/// one transaction, its twins through `Store::create_records_in` (record,
/// change-log row, lookup row, the check that each contact's account exists)
/// after validation, and their links with the merge base. A contact's
/// account is translated through a map in memory, where the engine reads
/// the account's link.
async fn writes_side(store: &Store, p: &Pair, seeded: i64) -> Result<(f64, i64)> {
    let t = Instant::now();
    let mut rows_done = 0;
    let mut twin_of: std::collections::HashMap<i64, i64> = std::collections::HashMap::new();
    for (module_name, from, to) in passes(p) {
        let module = store.module(to, module_name).await?;
        let data_type = if module_name == "Accounts" {
            "account"
        } else {
            "contact"
        };
        let mut after = 0;
        loop {
            let batch = source_batch(store.db(), from, module_name, after, seeded).await?;
            let Some((last, ..)) = batch.last() else {
                break;
            };
            after = *last;
            let rows = batch
                .iter()
                .map(|(_, _, fields)| {
                    let mut values = fields.0.clone();
                    if let Some(account) = values.get("Account").and_then(Value::as_i64) {
                        let twin = twin_of.get(&account).context("an account with a twin")?;
                        values.insert("Account".into(), json!(twin));
                    }
                    Ok(validate_fields(&module, &values, Mode::Create)?)
                })
                .collect::<Result<Vec<_>>>()?;
            let mut tx = store.begin().await?;
            let made = store
                .create_records_in(
                    &mut tx,
                    to,
                    &module,
                    rows,
                    Origin::Integration(p.integration),
                )
                .await?;
            let links: Vec<kizuna_store::Link> = batch
                .iter()
                .zip(&made)
                .map(|((id, version, fields), twin)| {
                    // (id, version) of the CRM record and of its Desk twin.
                    let (source, made) = ((*id, *version), (twin.id, twin.version));
                    let (crm, other) = if from == p.crm {
                        (source, made)
                    } else {
                        (made, source)
                    };
                    kizuna_store::Link {
                        integration_id: p.integration,
                        data_type: data_type.into(),
                        other_id: other.0,
                        crm_id: crm.0,
                        how: "created".into(),
                        other_version: other.1,
                        crm_version: crm.1,
                        synced: fields.clone(),
                        linked_at: kizuna_store::now_ms(),
                    }
                })
                .collect();
            store.save_links_in(&mut tx, &links).await?;
            tx.commit().await?;
            twin_of.extend(
                batch
                    .iter()
                    .zip(&made)
                    .map(|((id, ..), twin)| (*id, twin.id)),
            );
            rows_done += made.len() as i64;
        }
    }
    Ok((t.elapsed().as_secs_f64(), rows_done))
}

/// The engine's initial sync; returns its seconds and the records it added.
async fn kizuna_side(store: &Store, p: &Pair) -> Result<(f64, i64)> {
    let t = Instant::now();
    let runs = engine::sync(store, p.integration, Trigger::Cli).await?;
    let seconds = t.elapsed().as_secs_f64();
    for r in &runs {
        eprintln!(
            "    {} {}: {} ms, added {}, linked {}",
            r.direction,
            r.data_type,
            r.finished_at.unwrap_or(r.started_at) - r.started_at,
            r.added,
            r.linked
        );
    }
    anyhow::ensure!(
        runs.iter().all(|r| r.failed == 0 && r.skipped == 0),
        "the initial sync failed or skipped records: {runs:?}"
    );
    Ok((seconds, runs.iter().map(|r| r.added).sum()))
}

/// Changes Desk contacts at `rate` per second, one at a time, while the
/// worker runs; then reads from the change log when each reached its CRM
/// twin (the engine's write there is a change of origin `integration`, in
/// the same clock). Returns the latencies in ms and how many never arrived.
/// Whether the engine wrote Desk contact `desk_id`'s CRM twin at or after
/// `at` (ms).
async fn crossed(store: &Store, p: &Pair, desk_id: i64, at: i64) -> Result<bool> {
    let sql = "SELECT COUNT(*) AS n FROM sync_links l JOIN records r ON r.id = l.crm_id \
               WHERE l.integration_id = $1 AND l.data_type = 'contact' AND l.other_id = $2 \
               AND r.updated_at >= $3";
    let (n,): (i64,) = store
        .db()
        .x()
        .fetch_one(sql, &kizuna_store::args![p.integration, desk_id, at])
        .await?;
    Ok(n > 0)
}

/// Propagation after the worker's first change: latencies (ms), how many
/// never arrived, and how long the first change took (ms).
struct Propagation {
    ms: Vec<f64>,
    lost: u64,
    warm_up_ms: f64,
}

async fn latency(store: &Store, p: &Pair, o: &Options) -> Result<Propagation> {
    let worker = tokio::spawn(kizuna_sync::worker::run(
        store.clone(),
        kizuna_sync::worker::Options::default(),
    ));
    let module = store.module(p.desk, "Contacts").await?;
    let page = store
        .list_records(
            p.desk,
            &module,
            &kizuna_store::ListQuery {
                limit: 1000,
                ..Default::default()
            },
        )
        .await?;
    let targets: Vec<i64> = page.records.iter().map(|r| r.id).collect();
    anyhow::ensure!(!targets.is_empty(), "no Desk contacts to change");
    // The worker's first pass looks at every integration from cold caches
    // (0.6–0.7 s with three on this database); the measurement starts once
    // one change has crossed, as a running server's would.
    let warm_up = Instant::now();
    let set_phone = |id: i64, phone: String| {
        let module = &module;
        async move {
            let mut fields = Map::new();
            fields.insert("Phone".into(), json!(phone));
            store
                .update_record(p.desk, module, id, fields, None, Origin::System)
                .await
        }
    };
    let probe = set_phone(targets[0], "03-0000-0000".into()).await?;
    while !crossed(store, p, targets[0], probe.updated_at).await? {
        anyhow::ensure!(
            warm_up.elapsed() < Duration::from_secs(30),
            "the worker never synced"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let warm_up_ms = warm_up.elapsed().as_secs_f64() * 1e3;
    let total = o.rate * o.seconds;
    let gap = Duration::from_secs_f64(1.0 / o.rate as f64);
    let start = Instant::now();
    let mut changed: Vec<(i64, i64)> = Vec::new();
    let first_seq = store.last_change_seq().await?;
    for n in 0..total {
        // Each change at its slot on the clock, whatever the last one took.
        let due = start + gap * n as u32;
        tokio::time::sleep_until(due.into()).await;
        let id = targets[(n as usize) % targets.len()];
        let r = set_phone(id, format!("03-{n:08}")).await?;
        changed.push((id, r.updated_at));
    }
    // Let the last ones arrive.
    tokio::time::sleep(Duration::from_secs(3)).await;
    worker.abort();
    let _ = worker.await;
    // The engine's writes to the CRM twins during the phase, read once by
    // the change log's stream index, and the twins of the changed contacts.
    let sql = "SELECT record_id, at FROM changes WHERE org_id = $1 AND module = 'Contacts' \
               AND seq > $2 AND origin_kind = 'integration' ORDER BY seq";
    let arrivals: Vec<(i64, i64)> = store
        .db()
        .x()
        .fetch_all(sql, &kizuna_store::args![p.crm, first_seq])
        .await?;
    let mut tx = store.begin().await?;
    let twins: std::collections::HashMap<i64, i64> = store
        .links_in(
            &mut tx,
            p.integration,
            "contact",
            kizuna_store::LinkSide::Other,
            &targets,
        )
        .await?
        .into_iter()
        .map(|l| (l.other_id, l.crm_id))
        .collect();
    drop(tx);
    let mut by_twin: std::collections::HashMap<i64, Vec<i64>> = std::collections::HashMap::new();
    for (crm_id, at) in arrivals {
        by_twin.entry(crm_id).or_default().push(at);
    }
    let mut ms = Vec::new();
    let mut lost = 0;
    // (ms into the phase, latency) of each change, to place a tail in time.
    let mut when: Vec<(i64, i64)> = Vec::new();
    let phase_start = changed.first().map_or(0, |(_, at)| *at);
    for (desk_id, at) in &changed {
        let arrived = twins
            .get(desk_id)
            .and_then(|crm| by_twin.get(crm))
            .and_then(|times| times.iter().copied().find(|t| t >= at));
        match arrived {
            Some(t) => {
                ms.push((t - at) as f64);
                when.push((at - phase_start, t - at));
            }
            None => lost += 1,
        }
    }
    when.sort_by_key(|(_, latency)| std::cmp::Reverse(*latency));
    let slowest: Vec<String> = when
        .iter()
        .take(10)
        .map(|(offset, latency)| format!("{latency} ms at +{offset} ms"))
        .collect();
    eprintln!("  slowest changes: {}", slowest.join(", "));
    Ok(Propagation {
        ms,
        lost,
        warm_up_ms,
    })
}

pub async fn run(db: &BenchDb, o: &Options) -> Result<Value> {
    let load_at_start = common::load_average();
    let store = &db.store;
    let admin = store
        .create_user("bench@example.com", "Bench", None)
        .await?;
    let rows = (o.contacts + o.accounts) as i64;
    let (mut kizuna, mut baseline, mut writes) = (Vec::new(), Vec::new(), Vec::new());
    let mut next_id = BASELINE_IDS;
    let mut last = None;
    let mut autovacuum = None;
    for rep in 0..o.reps {
        // The engine and the baseline read one pair; the writes alone
        // write a pair of their own, seeded alike.
        let p = pair(store, &admin, 2 * rep).await?;
        let apart = pair(store, &admin, 2 * rep + 1).await?;
        if rep == 0 {
            // After the first orgs, whose sortable fields made their indexes.
            crate::store_insert::create_baseline_table(store.db()).await?;
        }
        eprintln!(
            "desk-sync: run {}: seeding {} accounts and {} contacts, half in each org (twice)",
            rep + 1,
            o.accounts,
            o.contacts
        );
        let seeded = seed(store, &p, o).await?;
        let seeded_apart = seed(store, &apart, o).await?;
        // As attendee-sync: both sides plan on fresh statistics on a
        // PostgreSQL server without autovacuum.
        autovacuum = crate::attendee_sync::refresh_statistics(store.db()).await?;
        // Each side goes first, second and third in turn.
        let (mut k, mut b, mut w) = (None, None, None);
        let mut order = Vec::new();
        for s in 0..3 {
            match (s + rep) % 3 {
                0 => {
                    order.push("baseline");
                    b = Some(baseline_side(store.db(), &p, seeded, &mut next_id).await?);
                }
                1 => {
                    order.push("kizuna");
                    k = Some(kizuna_side(store, &p).await?);
                }
                _ => {
                    order.push("writes alone");
                    w = Some(writes_side(store, &apart, seeded_apart).await?);
                }
            }
        }
        // The worker of the propagation phase leaves this pair alone.
        kizuna_sync::lifecycle::act(store, &admin, apart.integration, Action::Disable).await?;
        let (k, b, w) = (
            k.context("kizuna ran")?,
            b.context("the baseline ran")?,
            w.context("the writes alone ran")?,
        );
        anyhow::ensure!(
            k.1 == rows && b.1 == rows && w.1 == rows,
            "each side writes every row once: kizuna {}, baseline {}, writes alone {}, expected {rows}",
            k.1,
            b.1,
            w.1
        );
        eprintln!(
            "  run {}: kizuna {:>7.0} rows/s ({:.1} s)  baseline {:>7.0} rows/s ({:.1} s)  writes alone {:>7.0} rows/s ({:.1} s)  (order: {})",
            rep + 1,
            rows as f64 / k.0,
            k.0,
            rows as f64 / b.0,
            b.0,
            rows as f64 / w.0,
            w.0,
            order.join(", "),
        );
        kizuna.push(rows as f64 / k.0);
        baseline.push(rows as f64 / b.0);
        writes.push(rows as f64 / w.0);
        last = Some(p);
    }
    let p = last.context("at least one run")?;
    eprintln!(
        "desk-sync: background worker started; {} changes of Desk contacts at {}/s",
        o.rate * o.seconds,
        o.rate
    );
    let Propagation {
        ms,
        lost,
        warm_up_ms,
    } = latency(store, &p, o).await?;
    let (k_rate, b_rate, w_rate) = (median(&kizuna), median(&baseline), median(&writes));
    let ratio = k_rate / b_rate;
    let p99 = percentile(&ms, 99.0);
    eprintln!(
        "desk-sync: ratio {ratio:.3} (the writes alone {:.3}); propagation p50 {:.0} ms p99 {p99:.0} ms max {:.0} ms, lost {lost} (first change after the worker started: {warm_up_ms:.0} ms)",
        w_rate / b_rate,
        percentile(&ms, 50.0),
        percentile(&ms, 100.0)
    );
    Ok(json!({
        "scenario": "desk-sync",
        "backend": db.backend(),
        "contacts": o.contacts,
        "accounts": o.accounts,
        "reps": o.reps,
        "kizuna_rows_per_s": k_rate.round(),
        "baseline_rows_per_s": b_rate.round(),
        "ratio": r3(ratio),
        "kizuna_rows_per_s_runs": kizuna.iter().map(|r| r.round()).collect::<Vec<_>>(),
        "baseline_rows_per_s_runs": baseline.iter().map(|r| r.round()).collect::<Vec<_>>(),
        "writes_alone_rows_per_s": w_rate.round(),
        "writes_alone_ratio": r3(w_rate / b_rate),
        "writes_alone_rows_per_s_runs": writes.iter().map(|r| r.round()).collect::<Vec<_>>(),
        "changes": o.rate * o.seconds,
        "changes_per_s": o.rate,
        "propagation_lost": lost,
        "propagation_first_change_ms": r3(warm_up_ms),
        "propagation_ms_p50": r3(percentile(&ms, 50.0)),
        "propagation_ms_p99": r3(p99),
        "propagation_ms_max": r3(percentile(&ms, 100.0)),
        "peak_memory_kib": common::peak_memory_kib(),
        "load_average_at_start": load_at_start,
        "postgres_autovacuum": autovacuum,
        "goal": {"ratio": GOAL_RATIO, "propagation_p99_ms": GOAL_P99_MS},
        "goal_met": ratio >= GOAL_RATIO && p99 <= GOAL_P99_MS && lost == 0,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_valid_and_accounts_unique() {
        let desk = kizuna_apps::catalog::standard_modules(App::Desk);
        let module = |name: &str| {
            desk.iter()
                .find(|m| m.api_name == name)
                .cloned()
                .expect("a standard module")
        };
        let (accounts, contacts) = (module("Accounts"), module("Contacts"));
        let names: std::collections::HashSet<String> = (0..1000)
            .map(|i| {
                account(i, &accounts).expect("valid")["Account_Name"]
                    .as_str()
                    .expect("a name")
                    .to_string()
            })
            .collect();
        assert_eq!(names.len(), 1000);
        let c = contact(7, 42, &contacts).expect("valid");
        assert_eq!(c["Account"], 42);
    }
}
