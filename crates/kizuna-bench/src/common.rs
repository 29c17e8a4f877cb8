//! What the scenarios share: a fresh database, a CRM org, deterministic
//! contacts, peak memory, medians and the JSON result line.

use anyhow::{Context, Result};
use kizuna_domain::App;
use kizuna_domain::field::ModuleDef;
use kizuna_domain::validate::{Mode, validate_fields};
use kizuna_store::{Org, Store, User};
use serde_json::{Map, Value, json};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use std::ops::Range;

/// A database that exists for one run: a SQLite file in a temporary
/// directory, or a database of its own on a PostgreSQL server.
pub struct BenchDb {
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(PgConnection, String)>,
}

impl BenchDb {
    /// Creates and migrates the database: on the server of `url` when given
    /// (`postgres://…`, whose own database is only used to create ours).
    pub async fn create(url: Option<&str>) -> Result<BenchDb> {
        let Some(admin_url) = url else {
            let dir = tempfile::tempdir().context("a temporary directory")?;
            let path = dir.path().join("kizuna-bench.db");
            let path = path.to_str().context("the temporary path is not UTF-8")?;
            let store = Store::open(path).await?;
            eprintln!("database: SQLite file {path}");
            return Ok(BenchDb {
                store,
                _dir: Some(dir),
                postgres: None,
            });
        };
        anyhow::ensure!(
            admin_url.starts_with("postgres://") || admin_url.starts_with("postgresql://"),
            "--database-url must be a postgres:// URL"
        );
        let mut admin = PgConnection::connect(admin_url)
            .await
            .with_context(|| format!("connecting to {admin_url}"))?;
        let name = format!(
            "kizuna_bench_{}_{}",
            std::process::id(),
            kizuna_store::now_ms()
        );
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .with_context(|| format!("CREATE DATABASE {name}"))?;
        eprintln!("database: PostgreSQL database {name} (dropped at the end)");
        match Store::open(&with_database(admin_url, &name)).await {
            Ok(store) => Ok(BenchDb {
                store,
                _dir: None,
                postgres: Some((admin, name)),
            }),
            Err(e) => {
                drop_database(&mut admin, &name).await;
                Err(e.into())
            }
        }
    }

    pub fn backend(&self) -> &'static str {
        if self.postgres.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    }

    /// Closes the store and removes the database.
    pub async fn remove(self) {
        self.store.close().await;
        if let Some((mut admin, name)) = self.postgres {
            drop_database(&mut admin, &name).await;
        }
    }
}

async fn drop_database(admin: &mut PgConnection, name: &str) {
    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    if let Err(e) = sqlx::query(AssertSqlSafe(sql)).execute(admin).await {
        eprintln!("warning: could not drop the database {name}: {e}");
    }
}

/// `url` with its database name replaced by `database` (query kept).
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority..].find('/') {
        Some(slash) => &base[..authority + slash],
        None => base,
    };
    format!("{server}/{database}{query}")
}

/// A CRM org with its administrator and its Contacts module.
pub struct Crm {
    pub user: User,
    pub org: Org,
    pub contacts: ModuleDef,
}

pub async fn crm_org(store: &Store) -> Result<Crm> {
    let user = store
        .create_user("bench@example.com", "Bench", None)
        .await?;
    let org = kizuna_apps::admin::create_org(store, App::Crm, "Bench", "enterprise", &user).await?;
    let contacts = store.module(org.id, "Contacts").await?;
    Ok(Crm {
        user,
        org,
        contacts,
    })
}

const FIRST: [&str; 16] = [
    "Haruto", "Yui", "Sota", "Hina", "Aoi", "Ren", "Mio", "Yuto", "Sakura", "Riku", "Emma", "Liam",
    "Olivia", "Noah", "Ava", "Lucas",
];
const LAST: [&str; 16] = [
    "Sato",
    "Suzuki",
    "Takahashi",
    "Tanaka",
    "Watanabe",
    "Ito",
    "Yamamoto",
    "Nakamura",
    "Kobayashi",
    "Kato",
    "Smith",
    "Johnson",
    "Garcia",
    "Mueller",
    "Rossi",
    "Dubois",
];
const CITIES: [(&str, &str, &str); 8] = [
    ("Tokyo", "Tokyo", "Japan"),
    ("Osaka", "Osaka", "Japan"),
    ("Yokohama", "Kanagawa", "Japan"),
    ("Sapporo", "Hokkaido", "Japan"),
    ("Fukuoka", "Fukuoka", "Japan"),
    ("Nagoya", "Aichi", "Japan"),
    ("San Francisco", "CA", "United States"),
    ("Berlin", "Berlin", "Germany"),
];
const TITLES: [&str; 6] = [
    "Sales Manager",
    "Engineer",
    "Director",
    "Buyer",
    "Office Manager",
    "CEO",
];
const DEPARTMENTS: [&str; 5] = [
    "Sales",
    "Engineering",
    "Purchasing",
    "Operations",
    "Finance",
];
const SOURCES: [&str; 6] = ["Advertisement", "Event", "Web", "Referral", "Mail", "Other"];

/// SplitMix64: a deterministic pseudo-random stream without a dependency.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn pick<const N: usize, T: Copy>(list: [T; N], r: u64) -> T {
    list[(r % N as u64) as usize]
}

/// Contact number `i`: realistic values, the same on every run, and an
/// e-mail address no other contact has.
pub fn contact(i: u64) -> Value {
    let r = mix(i);
    let (first, last) = (pick(FIRST, r), pick(LAST, r >> 8));
    let (city, state, country) = pick(CITIES, r >> 16);
    json!({
        "First_Name": first,
        "Last_Name": last,
        "Email": format!("{}.{}.{i}@example.com", first.to_lowercase(), last.to_lowercase()),
        "Title": pick(TITLES, r >> 24),
        "Phone": format!("+81-3-{:04}-{:04}", (r >> 32) % 10_000, i % 10_000),
        "Mobile": format!("090-{:04}-{:04}", (r >> 40) % 10_000, (r >> 20) % 10_000),
        "Account_Name": format!("{last} Trading Co. {}", i % 5_000),
        "Department": pick(DEPARTMENTS, r >> 28),
        "Mailing_Street": format!("{}-{}-{} Chuo", 1 + (r >> 44) % 9, 1 + (r >> 48) % 30, 1 + (r >> 52) % 20),
        "Mailing_City": city,
        "Mailing_State": state,
        "Mailing_Zip": format!("{:03}-{:04}", (r >> 36) % 1_000, (r >> 12) % 10_000),
        "Mailing_Country": country,
        "Date_of_Birth": format!("{}-{:02}-{:02}", 1950 + (r >> 56) % 50, 1 + (r >> 4) % 12, 1 + (r >> 10) % 28),
        "Lead_Source": pick(SOURCES, r >> 60),
        "Description": format!("Met {first} at the {city} trade fair; follow up about renewal #{i}."),
    })
}

/// Contacts `range`, validated against the module as the apps layer would.
pub fn contacts(range: Range<u64>, module: &ModuleDef) -> Result<Vec<Map<String, Value>>> {
    range
        .map(|i| {
            let Value::Object(fields) = contact(i) else {
                anyhow::bail!("a contact is a JSON object");
            };
            Ok(validate_fields(module, &fields, Mode::Create)?)
        })
        .collect()
}

/// Seeds `size` contacts of `common::contact` into the CRM org, `batch` to
/// a transaction, with progress on stderr; returns their ids.
pub async fn seed_contacts(store: &Store, crm: &Crm, size: u64, batch: usize) -> Result<Vec<i64>> {
    let started = std::time::Instant::now();
    let mut ids = Vec::with_capacity(size as usize);
    let mut start = 0;
    while start < size {
        let end = (start + batch as u64).min(size);
        let rows = contacts(start..end, &crm.contacts)?;
        let created = store
            .create_records(
                crm.org.id,
                &crm.contacts,
                rows,
                kizuna_store::Origin::System,
            )
            .await?;
        ids.extend(created.iter().map(|r| r.id));
        start = end;
        if start % (size / 10).max(1) < batch as u64 || start == size {
            eprintln!(
                "  {start:>9} rows seeded ({:.1} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(ids)
}

/// The process's peak resident memory (VmHWM), in KiB.
pub fn peak_memory_kib() -> Option<u64> {
    status_kib("VmHWM:")
}

/// The process's resident anonymous memory now (heap and stacks, without
/// file pages such as a memory-mapped database), in KiB.
pub fn anonymous_memory_kib() -> Option<u64> {
    status_kib("RssAnon:")
}

/// A `… kB` line of `/proc/self/status`.
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets the process's peak resident memory to its current size (Linux
/// `clear_refs`), so that the next reading covers what follows; false where
/// that is not possible.
pub fn reset_peak_memory() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The 1-minute load average (`/proc/loadavg`), the machine's business
/// before the run.
pub fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

pub fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

/// The nearest-rank percentile `p` (0–100) of `values`; 0 when empty.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Rounds to 3 decimals, for readable JSON.
pub fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_replaces_only_the_path() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://h:5432?sslmode=disable", "x"),
            "postgres://h:5432/x?sslmode=disable"
        );
    }

    #[test]
    fn contacts_are_valid_and_deterministic() {
        let module = kizuna_apps::catalog::standard_modules(App::Crm)
            .into_iter()
            .find(|m| m.api_name == "Contacts")
            .expect("the CRM has Contacts");
        let rows = contacts(0..1000, &module).expect("valid contacts");
        assert_eq!(rows.len(), 1000);
        assert_eq!(contact(7), contact(7));
        let emails: std::collections::BTreeSet<_> =
            rows.iter().map(|r| r["Email"].to_string()).collect();
        assert_eq!(emails.len(), 1000);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(median(&v), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[]), 0.0);
    }
}
