//! `attendee-sync`: attendees of an Events org synced into a CRM that already
//! holds many Leads and Contacts, through `kizuna_sync::engine::sync`, against
//! a hand-written importer doing the least the same result needs (read the
//! attendees, look their e-mail keys up, insert the rest) by raw SQL in the
//! same database; then the latency of one new attendee through the background
//! worker.

use crate::common::{self, BenchDb, median, percentile, r3};
use anyhow::{Context, Result};
use kizuna_domain::field::ModuleDef;
use kizuna_domain::integration::Action;
use kizuna_domain::validate::{Mode, email_key, validate_fields};
use kizuna_domain::{App, IntegrationKind};
use kizuna_store::{Db, Origin, Store, now_ms};
use kizuna_sync::engine::{self, Trigger};
use serde_json::{Map, Value, json};
use sqlx::types::Json;
use std::collections::HashSet;
use std::time::{Duration, Instant};

pub struct Options {
    /// Attendees per timed run.
    pub size: u64,
    /// Leads and Contacts in the CRM before the first run.
    pub crm_size: u64,
    /// Timed runs of each side (medians are reported).
    pub reps: usize,
}

/// Attendees per transaction on both sides: the engine's chunk.
const BATCH: usize = kizuna_sync::engine::BATCH;
/// Rows per seeding transaction.
const SEED_BATCH: u64 = 1000;
/// Events the attendees are spread over (each becomes a Campaign).
const EVENTS: usize = 5;
/// Attendees created one at a time while the worker runs.
const LATENCY_SAMPLES: u64 = 200;
/// The pause between two of them, plus up to `LATENCY_JITTER_MS`, so that
/// creations fall at every phase of the worker's 25 ms poll.
const LATENCY_GAP: Duration = Duration::from_millis(50);
const LATENCY_JITTER_MS: u64 = 25;
/// A sample not linked by then counts as lost.
const LATENCY_TIMEOUT: Duration = Duration::from_secs(10);
/// Where the baseline's own row ids start (the copied CRM rows keep theirs).
const BASELINE_IDS: i64 = 1 << 40;

/// Goals from the issue.
const GOAL_RATIO: f64 = 0.5;
const GOAL_PEAK_BYTES: u64 = 200_000_000;
const GOAL_P99_MS: f64 = 200.0;

/// Whether attendee `g` holds an e-mail address the CRM already has: 30 %.
fn matches(g: u64) -> bool {
    g % 10 < 3
}

/// The CRM row whose address matching attendee `g` holds: spread over the
/// whole CRM, a different row for every attendee while `g < crm_size`
/// (7919 is prime, so multiplying by it permutes the residues).
fn crm_index(g: u64, crm_size: u64) -> u64 {
    g.wrapping_mul(7919) % crm_size
}

/// The same address in one of four spellings that share one e-mail key.
fn spelled(address: &str, variant: u64) -> String {
    match variant % 4 {
        0 => address.to_string(),
        1 => address.to_uppercase(),
        2 => address
            .split('.')
            .map(|part| {
                let mut c = part.chars();
                c.next()
                    .map(|f| f.to_uppercase().chain(c).collect())
                    .unwrap_or_default()
            })
            .collect::<Vec<String>>()
            .join("."),
        _ => match address.split_once('@') {
            Some((local, domain)) => format!("{local}@{}", domain.to_uppercase()),
            None => address.to_string(),
        },
    }
}

/// CRM row `j`: a Contact when `j` is even, else a Lead, with the values of
/// `common::contact(j)` its module has, and its address in spelling `j % 4`.
fn crm_row(j: u64, leads: &ModuleDef, contacts: &ModuleDef) -> Result<Map<String, Value>> {
    let Value::Object(mut fields) = common::contact(j) else {
        anyhow::bail!("a contact is a JSON object");
    };
    let address = fields["Email"].as_str().unwrap_or_default().to_string();
    fields.insert("Email".into(), json!(spelled(&address, j)));
    let module = if j.is_multiple_of(2) {
        contacts
    } else {
        for (from, to) in [
            ("Account_Name", "Company"),
            ("Mailing_Street", "Street"),
            ("Mailing_City", "City"),
            ("Mailing_Country", "Country"),
        ] {
            if let Some(v) = fields.remove(from) {
                fields.insert(to.into(), v);
            }
        }
        fields.insert("Lead_Status".into(), json!("Not Contacted"));
        leads
    };
    fields.retain(|k, _| module.fields.iter().any(|f| &f.api_name == k));
    Ok(validate_fields(module, &fields, Mode::Create)?)
}

/// Attendee `g` of event `event`: when it matches, the person of CRM row
/// `crm_index(g)` with the address spelt differently (and, every other time,
/// with spaces around it, which validation trims); else a new person.
fn attendee(g: u64, crm_size: u64, event: i64, module: &ModuleDef) -> Result<Map<String, Value>> {
    let raw = if matches(g) {
        let j = crm_index(g, crm_size);
        let c = common::contact(j);
        let address = spelled(c["Email"].as_str().unwrap_or_default(), j + 2);
        let address = if g.is_multiple_of(2) {
            format!("  {address} ")
        } else {
            address
        };
        json!({
            "Email": address,
            "First_Name": c["First_Name"],
            "Last_Name": c["Last_Name"],
            "Company": c["Account_Name"],
            "Event": event,
            "Status": "registered",
        })
    } else {
        let c = common::contact(u64::MAX - g);
        let (first, last) = (
            c["First_Name"].as_str().unwrap_or_default(),
            c["Last_Name"].as_str().unwrap_or_default(),
        );
        json!({
            "Email": format!("{}.{}.a{g}@events.example.net", first.to_lowercase(), last.to_lowercase()),
            "First_Name": first,
            "Last_Name": last,
            "Company": c["Account_Name"],
            "Event": event,
            "Status": "registered",
        })
    };
    let Value::Object(fields) = raw else {
        anyhow::bail!("an attendee is a JSON object");
    };
    Ok(validate_fields(module, &fields, Mode::Create)?)
}

/// The orgs, the integration and the modules the scenario works with.
struct Setup {
    crm: i64,
    events_org: i64,
    integration: i64,
    attendees: ModuleDef,
    events: Vec<i64>,
}

async fn set_up(store: &Store) -> Result<Setup> {
    let admin = store
        .create_user("bench@example.com", "Bench", None)
        .await?;
    let crm =
        kizuna_apps::admin::create_org(store, App::Crm, "Bench CRM", "standard", &admin).await?;
    let events_org =
        kizuna_apps::admin::create_org(store, App::Events, "Bench Events", "standard", &admin)
            .await?;
    let integration = kizuna_sync::lifecycle::create(
        store,
        &admin,
        IntegrationKind::CrmEvents,
        crm.id,
        Some(events_org.id),
        &json!({}),
    )
    .await?;
    kizuna_sync::lifecycle::act(store, &admin, integration.id, Action::Enable).await?;
    let events_module = store.module(events_org.id, "Events").await?;
    let rows = (0..EVENTS)
        .map(|n| {
            let Value::Object(fields) = json!({
                "Event_Name": format!("Kizuna Expo {}", 2027 + n),
                "Start_Date": format!("2027-0{}-10", n + 1),
                "Status": "Live",
            }) else {
                anyhow::bail!("an event is a JSON object");
            };
            Ok(validate_fields(&events_module, &fields, Mode::Create)?)
        })
        .collect::<Result<Vec<_>>>()?;
    let events = store
        .create_records(events_org.id, &events_module, rows, Origin::System)
        .await?
        .iter()
        .map(|e| e.id)
        .collect();
    Ok(Setup {
        crm: crm.id,
        events_org: events_org.id,
        integration: integration.id,
        attendees: store.module(events_org.id, "Attendees").await?,
        events,
    })
}

async fn seed_crm(store: &Store, crm: i64, size: u64) -> Result<()> {
    let leads = store.module(crm, "Leads").await?;
    let contacts = store.module(crm, "Contacts").await?;
    let start = Instant::now();
    let mut from = 0;
    while from < size {
        let to = (from + SEED_BATCH).min(size);
        let (mut l, mut c) = (Vec::new(), Vec::new());
        for j in from..to {
            let row = crm_row(j, &leads, &contacts)?;
            if j.is_multiple_of(2) { &mut c } else { &mut l }.push(row);
        }
        store
            .create_records(crm, &contacts, c, Origin::System)
            .await?;
        store.create_records(crm, &leads, l, Origin::System).await?;
        from = to;
        if from % (size / 10).max(SEED_BATCH) < SEED_BATCH || from == size {
            eprintln!(
                "  {from:>9} CRM rows seeded ({:.1} s)",
                start.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

/// Creates attendees `range` (global numbers), returns the first and last
/// record id.
async fn seed_attendees(
    store: &Store,
    s: &Setup,
    crm_size: u64,
    range: std::ops::Range<u64>,
) -> Result<(i64, i64)> {
    let (mut first, mut last) = (i64::MAX, 0);
    let mut from = range.start;
    while from < range.end {
        let to = (from + SEED_BATCH).min(range.end);
        let rows = (from..to)
            .map(|g| {
                let event = s.events[(g % EVENTS as u64) as usize];
                attendee(g, crm_size, event, &s.attendees)
            })
            .collect::<Result<Vec<_>>>()?;
        for r in store
            .create_records(s.events_org, &s.attendees, rows, Origin::System)
            .await?
        {
            first = first.min(r.id);
            last = last.max(r.id);
        }
        from = to;
    }
    Ok((first, last))
}

/// What one timed run of a side did.
#[derive(Debug, Default, Clone, Copy)]
struct Done {
    seconds: f64,
    added: i64,
    linked: i64,
}

/// The whole sync of the integration, timed from the call to its return;
/// with the process's peak memory before it and the peak during it (where
/// the peak can be reset).
async fn kizuna_side(store: &Store, integration: i64) -> Result<(Done, Option<u64>, Option<u64>)> {
    let before = common::peak_memory_kib();
    let reset = common::reset_peak_memory();
    let t = Instant::now();
    let runs = engine::sync(store, integration, Trigger::Cli).await?;
    let seconds = t.elapsed().as_secs_f64();
    let peak = if reset {
        common::peak_memory_kib()
    } else {
        None
    };
    let mut done = Done {
        seconds,
        ..Done::default()
    };
    for run in runs.iter().filter(|r| r.data_type == "attendees") {
        anyhow::ensure!(
            run.failed == 0 && run.skipped == 0 && run.error.is_none(),
            "the attendees' run did not go cleanly: {run:?}"
        );
        done.added += run.added;
        done.linked += run.linked;
    }
    Ok((done, before, peak))
}

/// The baseline's table: the schema of `records` (store-insert's), holding a
/// copy of the CRM's Leads and Contacts, so that its lookups and inserts meet
/// indexes of the same size as the engine's.
async fn create_baseline(db: &Db, crm: i64) -> Result<()> {
    crate::store_insert::create_baseline_table(db).await?;
    let sql = format!(
        "INSERT INTO bench_baseline (id, org_id, module, version, fields, email_key, created_by, \
         created_at, updated_at, deleted_at) SELECT id, org_id, module, version, fields, email_key, \
         created_by, created_at, updated_at, deleted_at FROM records \
         WHERE org_id = {crm} AND module IN ('Leads', 'Contacts')"
    );
    match db {
        Db::Sqlite(pool) => {
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await?;
        }
        Db::Postgres(pool) => {
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await?;
        }
    }
    Ok(())
}

/// PostgreSQL plans by table statistics, which autovacuum keeps; where it is
/// off (`autovacuum` is returned) every table is analysed before each timed
/// run, outside the timing, so that both sides plan on the same fresh
/// statistics, as a server with autovacuum would have them after a seeding.
/// SQLite is left as the product leaves it (no `ANALYZE`).
pub(crate) async fn refresh_statistics(db: &Db) -> Result<Option<String>> {
    let Db::Postgres(pool) = db else {
        return Ok(None);
    };
    let autovacuum: String = sqlx::query_scalar("SHOW autovacuum")
        .fetch_one(pool)
        .await?;
    if autovacuum != "on" {
        eprintln!("  autovacuum is {autovacuum} on this server: ANALYZE of every table");
        sqlx::query("ANALYZE").execute(pool).await?;
    }
    Ok(Some(autovacuum))
}

/// The hand-written importer: per batch of 500 attendees (by id, after the
/// last one done) and in one transaction, read them, look their e-mail keys
/// up among the CRM's Leads and Contacts with one `SELECT … IN`, and insert a
/// Lead for each address not found (once per address) with one multi-row
/// `INSERT … ON CONFLICT (id) DO UPDATE`. Nothing else: no link rows, no
/// Campaign associations, no change log, no history, no validation.
async fn baseline_side(
    db: &Db,
    s: &Setup,
    (first, last): (i64, i64),
    next_id: &mut i64,
) -> Result<Done> {
    macro_rules! batch {
        ($backend:ty, $tx:expr, $after:expr) => {{
            let mut tx = $tx;
            let mut q = sqlx::QueryBuilder::<$backend>::new(
                "SELECT id, fields FROM records WHERE org_id = ",
            );
            q.push_bind(s.events_org)
                .push(" AND module = 'Attendees' AND deleted_at IS NULL AND id > ")
                .push_bind($after)
                .push(" AND id <= ")
                .push_bind(last)
                .push(" ORDER BY id LIMIT ")
                .push_bind(BATCH as i64);
            let attendees: Vec<(i64, Json<Map<String, Value>>)> =
                q.build_query_as().fetch_all(&mut *tx).await?;
            let keyed: Vec<(String, &Map<String, Value>)> = attendees
                .iter()
                .filter_map(|(_, f)| {
                    let k = email_key(f.0.get("Email").and_then(Value::as_str)?);
                    (!k.is_empty()).then_some((k, &f.0))
                })
                .collect();
            let mut known: HashSet<String> = HashSet::new();
            if !keyed.is_empty() {
                let mut q = sqlx::QueryBuilder::<$backend>::new(
                    "SELECT email_key FROM bench_baseline WHERE org_id = ",
                );
                q.push_bind(s.crm).push(
                    " AND deleted_at IS NULL AND module IN ('Leads', 'Contacts') AND email_key IN (",
                );
                let mut list = q.separated(", ");
                for (k, _) in &keyed {
                    list.push_bind(k.as_str());
                }
                q.push(")");
                known = q.build_query_scalar().fetch_all(&mut *tx).await?.into_iter().collect();
            }
            let linked = keyed.iter().filter(|(k, _)| known.contains(k)).count();
            let mut fresh: Vec<(i64, String, Map<String, Value>)> = Vec::new();
            for (k, f) in keyed {
                if known.insert(k.clone()) {
                    let mut lead = Map::new();
                    for (from, to) in [
                        ("First_Name", "First_Name"),
                        ("Last_Name", "Last_Name"),
                        ("Email", "Email"),
                        ("Company", "Company"),
                    ] {
                        if let Some(v) = f.get(from).filter(|v| !v.is_null()) {
                            lead.insert(to.into(), v.clone());
                        }
                    }
                    fresh.push((*next_id, k, lead));
                    *next_id += 1;
                }
            }
            if !fresh.is_empty() {
                let now = now_ms();
                let mut q = sqlx::QueryBuilder::<$backend>::new(
                    "INSERT INTO bench_baseline (id, org_id, module, version, fields, email_key, \
                     created_by, created_at, updated_at) ",
                );
                q.push_values(&fresh, |mut v, (id, key, fields)| {
                    v.push_bind(*id)
                        .push_bind(s.crm)
                        .push_bind("Leads")
                        .push_bind(1_i64)
                        .push_bind(Json(fields))
                        .push_bind(key.as_str())
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
            (attendees.last().map(|(id, _)| *id), linked, fresh.len())
        }};
    }
    let t = Instant::now();
    let mut done = Done::default();
    let mut after = first - 1;
    loop {
        let (end, linked, added) = match db {
            Db::Sqlite(pool) => batch!(
                sqlx::Sqlite,
                pool.begin_with("BEGIN IMMEDIATE").await?,
                after
            ),
            Db::Postgres(pool) => batch!(sqlx::Postgres, pool.begin().await?, after),
        };
        let Some(end) = end else { break };
        after = end;
        done.linked += linked as i64;
        done.added += added as i64;
    }
    done.seconds = t.elapsed().as_secs_f64();
    Ok(done)
}

/// Whether the engine has linked attendee `id` (its Lead or Contact is in
/// the CRM: the link row is written in the same transaction).
async fn linked(db: &Db, integration: i64, id: i64) -> Result<bool> {
    #[derive(sqlx::FromRow)]
    struct Crm {
        #[allow(dead_code)]
        crm_id: i64,
    }
    let row: Option<Crm> = db
        .x()
        .fetch_optional(
            "SELECT crm_id FROM sync_links WHERE integration_id = $1 \
             AND data_type = 'attendee' AND other_id = $2",
            &kizuna_store::args![integration, id],
        )
        .await?;
    Ok(row.is_some())
}

/// Latency samples: from the call creating one attendee to its link row, and
/// from the creation's commit to its link row; and how many never arrived.
struct Latency {
    from_call_ms: Vec<f64>,
    from_commit_ms: Vec<f64>,
    lost: u64,
}

async fn latency(store: &Store, s: &Setup, crm_size: u64, first: u64) -> Result<Latency> {
    let worker = tokio::spawn(kizuna_sync::worker::run(
        store.clone(),
        kizuna_sync::worker::Options::default(),
    ));
    // The worker's first look at the change log.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut out = Latency {
        from_call_ms: Vec::new(),
        from_commit_ms: Vec::new(),
        lost: 0,
    };
    for g in first..first + LATENCY_SAMPLES {
        let event = s.events[(g % EVENTS as u64) as usize];
        let row = attendee(g, crm_size, event, &s.attendees)?;
        let t = Instant::now();
        let made = store
            .create_records(s.events_org, &s.attendees, vec![row], Origin::System)
            .await?;
        let committed = Instant::now();
        let id = made.first().context("one attendee created")?.id;
        loop {
            if linked(store.db(), s.integration, id).await? {
                out.from_call_ms.push(t.elapsed().as_secs_f64() * 1e3);
                out.from_commit_ms
                    .push(committed.elapsed().as_secs_f64() * 1e3);
                break;
            }
            if t.elapsed() > LATENCY_TIMEOUT {
                out.lost += 1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(LATENCY_GAP + Duration::from_millis(common::mix(g) % LATENCY_JITTER_MS))
            .await;
    }
    worker.abort();
    let _ = worker.await;
    Ok(out)
}

/// What one timed run measured, with the set-up it made.
struct OneRun {
    setup: Setup,
    kizuna: Done,
    baseline: Done,
    peak_before: Option<u64>,
    sync_peak: Option<u64>,
    seed_crm_seconds: f64,
    autovacuum: Option<String>,
}

/// One timed run from a database's start: the CRM seeded, its copy for the
/// baseline, the attendees, then both sides (which goes first alternates by
/// `rep`), each checked to end with the expected links and Leads.
async fn one_run(db: &BenchDb, o: &Options, rep: usize) -> Result<OneRun> {
    let store = &db.store;
    let s = set_up(store).await?;
    eprintln!(
        "attendee-sync: run {}: seeding {} CRM Leads and Contacts in batches of {SEED_BATCH}",
        rep + 1,
        o.crm_size
    );
    let seed_start = Instant::now();
    seed_crm(store, s.crm, o.crm_size).await?;
    let seed_crm_seconds = seed_start.elapsed().as_secs_f64();
    let copy_start = Instant::now();
    create_baseline(store.db(), s.crm).await?;
    eprintln!(
        "attendee-sync: the baseline's copy of the CRM rows took {:.1} s",
        copy_start.elapsed().as_secs_f64()
    );
    let range = 0..o.size;
    let matching = range.clone().filter(|g| matches(*g)).count() as i64;
    eprintln!(
        "attendee-sync: run {}: seeding {} attendees ({matching} of them with an address the CRM has)",
        rep + 1,
        o.size,
    );
    let ids = seed_attendees(store, &s, o.crm_size, range).await?;
    let autovacuum = refresh_statistics(store.db()).await?;
    let mut next_id = BASELINE_IDS;
    let baseline_first = rep.is_multiple_of(2);
    let (k, b) = if baseline_first {
        let b = baseline_side(store.db(), &s, ids, &mut next_id).await?;
        (kizuna_side(store, s.integration).await?, b)
    } else {
        let k = kizuna_side(store, s.integration).await?;
        (k, baseline_side(store.db(), &s, ids, &mut next_id).await?)
    };
    let (k, peak_before, sync_peak) = k;
    let expected = (matching, o.size as i64 - matching);
    for (side, d) in [("kizuna", &k), ("baseline", &b)] {
        anyhow::ensure!(
            (d.linked, d.added) == expected,
            "{side}: linked {} and added {}, expected {} and {}",
            d.linked,
            d.added,
            expected.0,
            expected.1
        );
    }
    eprintln!(
        "  run {}: kizuna {:>7.0} attendees/s ({:.1} s)  baseline {:>7.0} attendees/s ({:.1} s)  ({} first){}",
        rep + 1,
        o.size as f64 / k.seconds,
        k.seconds,
        o.size as f64 / b.seconds,
        b.seconds,
        if baseline_first { "baseline" } else { "kizuna" },
        sync_peak.map_or(String::new(), |p| format!(
            "  sync peak RSS {:.1} MiB",
            p as f64 / 1024.0
        )),
    );
    Ok(OneRun {
        setup: s,
        kizuna: k,
        baseline: b,
        peak_before,
        sync_peak,
        seed_crm_seconds,
        autovacuum,
    })
}

/// `url`: where `db` was made (`--database-url`), for the databases of the
/// runs before the last.
pub async fn run(db: &BenchDb, url: Option<&str>, o: &Options) -> Result<Value> {
    let load_at_start = common::load_average();
    let (mut kizuna, mut baseline) = (Vec::new(), Vec::new());
    let (mut sync_peaks, mut seed_crm_seconds) = (Vec::new(), Vec::new());
    let mut process_peak = 0;
    let mut autovacuum = None;
    let mut last = None;
    for rep in 0..o.reps {
        // Every run is the scenario from its start — 100,000
        // attendees into 1,000,000 CRM rows and an integration that has
        // synced nothing yet — in a database of its own, so that a run
        // does not meet the records, links and history of the ones before
        // it. The last run's database is `db`, where the latency follows.
        let own = if rep + 1 < o.reps {
            Some(BenchDb::create(url).await?)
        } else {
            None
        };
        let result = one_run(own.as_ref().unwrap_or(db), o, rep).await;
        if let Some(own) = own {
            own.remove().await;
        }
        let r = result?;
        process_peak = process_peak.max(r.peak_before.unwrap_or(0));
        sync_peaks.extend(r.sync_peak);
        seed_crm_seconds.push(r.seed_crm_seconds);
        autovacuum = r.autovacuum;
        kizuna.push(r.kizuna);
        baseline.push(r.baseline);
        last = Some(r.setup);
    }
    let s = last.context("--reps is at least 1")?;
    let store = &db.store;

    let first_latency = o.size;
    eprintln!(
        "attendee-sync: background worker started; {LATENCY_SAMPLES} attendees one at a time, ~{} ms apart",
        LATENCY_GAP.as_millis()
    );
    let l = latency(store, &s, o.crm_size, first_latency).await?;
    let peak_kib = common::peak_memory_kib().map(|p| p.max(process_peak));

    let rate = |d: &Done| o.size as f64 / d.seconds;
    let kizuna_rates: Vec<f64> = kizuna.iter().map(rate).collect();
    let baseline_rates: Vec<f64> = baseline.iter().map(rate).collect();
    let (k_rate, b_rate) = (median(&kizuna_rates), median(&baseline_rates));
    let ratio = k_rate / b_rate;
    let p = |v: &[f64], q: f64| r3(percentile(v, q));
    let p99 = percentile(&l.from_call_ms, 99.0);
    let peak_ok = peak_kib.is_some_and(|k| k * 1024 <= GOAL_PEAK_BYTES);
    eprintln!(
        "attendee-sync: ratio {ratio:.3}; latency p50 {:.1} ms p99 {p99:.1} ms max {:.1} ms, lost {}",
        percentile(&l.from_call_ms, 50.0),
        percentile(&l.from_call_ms, 100.0),
        l.lost
    );
    Ok(json!({
        "scenario": "attendee-sync",
        "backend": db.backend(),
        "size": o.size,
        "crm_size": o.crm_size,
        "matching_per_run": kizuna.first().map(|d| d.linked),
        "batch": BATCH,
        "reps": o.reps,
        "kizuna_attendees_per_s": k_rate.round(),
        "baseline_attendees_per_s": b_rate.round(),
        "ratio": r3(ratio),
        "kizuna_attendees_per_s_runs": kizuna_rates.iter().map(|r| r.round()).collect::<Vec<_>>(),
        "baseline_attendees_per_s_runs": baseline_rates.iter().map(|r| r.round()).collect::<Vec<_>>(),
        "kizuna_seconds_runs": kizuna.iter().map(|d| r3(d.seconds)).collect::<Vec<_>>(),
        "baseline_seconds_runs": baseline.iter().map(|d| r3(d.seconds)).collect::<Vec<_>>(),
        "seed_crm_seconds": r3(median(&seed_crm_seconds)),
        "peak_memory_kib": peak_kib,
        "sync_peak_memory_kib": sync_peaks.iter().max(),
        "latency_samples": LATENCY_SAMPLES,
        "latency_lost": l.lost,
        "latency_ms_p50": p(&l.from_call_ms, 50.0),
        "latency_ms_p99": r3(p99),
        "latency_ms_max": p(&l.from_call_ms, 100.0),
        "latency_after_commit_ms_p50": p(&l.from_commit_ms, 50.0),
        "latency_after_commit_ms_p99": p(&l.from_commit_ms, 99.0),
        "load_average_at_start": load_at_start,
        "postgres_autovacuum": autovacuum,
        "postgres_analyze_before_each_run": autovacuum.as_deref().is_some_and(|a| a != "on"),
        "goal": {"ratio": GOAL_RATIO, "peak_memory_bytes": GOAL_PEAK_BYTES, "latency_p99_ms": GOAL_P99_MS},
        "goal_met": ratio >= GOAL_RATIO && peak_ok && p99 <= GOAL_P99_MS && l.lost == 0,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_share_one_key() {
        let a = "haruto.sato.12@example.com";
        let all: HashSet<String> = (0..4).map(|v| spelled(a, v)).collect();
        assert_eq!(all.len(), 4);
        assert!(all.iter().all(|s| email_key(s) == a));
        assert_eq!(spelled(a, 2), "Haruto.Sato.12@example.Com");
    }

    #[test]
    fn thirty_percent_match_distinct_crm_rows() {
        let crm_size = 1_000_000;
        let hits: Vec<u64> = (0..100_000).filter(|g| matches(*g)).collect();
        assert_eq!(hits.len(), 30_000);
        let rows: HashSet<u64> = hits.iter().map(|g| crm_index(*g, crm_size)).collect();
        assert_eq!(rows.len(), hits.len());
    }

    #[test]
    fn rows_are_valid_and_their_keys_meet() {
        let crm = kizuna_apps::catalog::standard_modules(App::Crm);
        let events = kizuna_apps::catalog::standard_modules(App::Events);
        let module = |list: &[ModuleDef], name: &str| {
            list.iter()
                .find(|m| m.api_name == name)
                .cloned()
                .expect("a standard module")
        };
        let (leads, contacts) = (module(&crm, "Leads"), module(&crm, "Contacts"));
        let attendees = module(&events, "Attendees");
        let key = |f: &Map<String, Value>| email_key(f["Email"].as_str().expect("an e-mail"));
        for g in [0, 1, 2, 3, 10, 11, 12, 99_999] {
            let a = attendee(g, 1000, 7, &attendees).expect("a valid attendee");
            let j = crm_index(g, 1000);
            let c = crm_row(j, &leads, &contacts).expect("a valid CRM row");
            assert_eq!(key(&a) == key(&c), matches(g), "attendee {g}");
            assert_ne!(a["Email"], c["Email"]);
        }
    }
}
