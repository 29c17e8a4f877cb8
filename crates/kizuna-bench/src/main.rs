//! Kizuna's benchmarks, each against the machine's own ceiling in the same
//! run (DESIGN.md, Performance). Progress goes to stderr; the last line of
//! stdout is one JSON object with the scenario, its ratio and raw figures.

mod api_get;
mod attendee_sync;
mod carddav_import;
mod common;
mod desk_sync;
mod store_insert;
mod ui_pages;

use anyhow::Result;
use clap::{Parser, ValueEnum};
use std::time::Duration;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Scenario {
    /// Contacts through `Store::create_records` vs a plain batched upsert.
    StoreInsert,
    /// `GET` of random records through the REST API vs a trivial handler.
    ApiGet,
    /// Attendees synced into a CRM of many Leads and Contacts vs a
    /// hand-written importer; then one attendee's latency via the worker.
    AttendeeSync,
    /// The initial two-way CRM ⇄ Desk sync of contacts and accounts vs a
    /// plain batched upsert; then one change's propagation via the worker.
    DeskSync,
    /// A CardDAV address book on Radicale into the CRM vs vdirsyncer into a
    /// directory; the no-op re-sync; a large `.vcf` file's import memory.
    CarddavImport,
    /// The web UI's pages with many records in the listed module, one
    /// request at a time, beside a trivial handler.
    UiPages,
}

#[derive(Parser)]
#[command(about = "Kizuna benchmarks: each scenario against a baseline in the same run")]
struct Cli {
    scenario: Scenario,
    /// Records to insert (store-insert), to seed (api-get), or attendees to
    /// sync per run (attendee-sync), or contacts, half in each org
    /// (desk-sync), or cards in the address book (carddav-import)
    /// [default: 1000000; attendee-sync, desk-sync: 100000; carddav-import:
    /// 10000].
    #[arg(long)]
    size: Option<u64>,
    /// ui-pages: requests per page.
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u64).range(20..))]
    requests: u64,
    /// carddav-import: cards in the imported `.vcf` file.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    file_size: u64,
    /// desk-sync: accounts, half in each org.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(2..))]
    accounts: u64,
    /// desk-sync: changes per second while propagation is measured.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    rate: u64,
    /// desk-sync: seconds of changes.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    seconds: u64,
    /// attendee-sync: Leads and Contacts in the CRM beforehand (half each).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    crm_size: u64,
    /// A PostgreSQL server (`postgres://…`) to create a fresh database on;
    /// without it, a fresh SQLite file in a temporary directory.
    #[arg(long)]
    database_url: Option<String>,
    /// Rows per transaction (store-insert: both sides; api-get: seeding).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    batch: u64,
    /// api-get: seconds per timed run.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    duration: u64,
    /// api-get: requests in flight.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=4096))]
    concurrency: u64,
    /// api-get, attendee-sync, desk-sync, carddav-import: timed runs of each side (the median is
    /// reported).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    reps: u64,
    /// Writes every statement the database ran, with its time, to this file
    /// (sqlx's statement log): where a scenario's time goes. Its own cost
    /// slows every side, so timed runs go without it.
    #[arg(long)]
    statement_log: Option<std::path::PathBuf>,
}

/// `--statement-log`: sqlx's statement events, and nothing else, to `path`.
fn log_statements(path: &std::path::Path) -> Result<()> {
    let file = std::fs::File::create(path)?;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("sqlx::query=debug"))
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init()
        .map_err(|e| anyhow::anyhow!("statement log: {e}"))
}

/// Rust allocations go to mimalloc: the allocator Kizuna runs with (ARCHITECTURE.md, *Allocation*).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Some(path) = &cli.statement_log {
        log_statements(path)?;
    }
    let size = cli.size.unwrap_or(match cli.scenario {
        Scenario::AttendeeSync | Scenario::DeskSync => 100_000,
        Scenario::CarddavImport => 10_000,
        _ => 1_000_000,
    });
    anyhow::ensure!(size > 0, "--size must be at least 1");
    let db = common::BenchDb::create(cli.database_url.as_deref()).await?;
    let outcome = match cli.scenario {
        Scenario::StoreInsert => store_insert::run(&db, size, cli.batch as usize).await,
        Scenario::ApiGet => {
            let options = api_get::Options {
                size,
                batch: cli.batch as usize,
                duration: Duration::from_secs(cli.duration),
                concurrency: cli.concurrency as usize,
                reps: cli.reps as usize,
            };
            api_get::run(&db, &options).await
        }
        Scenario::AttendeeSync => {
            let options = attendee_sync::Options {
                size,
                crm_size: cli.crm_size,
                reps: cli.reps as usize,
            };
            attendee_sync::run(&db, cli.database_url.as_deref(), &options).await
        }
        Scenario::DeskSync => {
            let options = desk_sync::Options {
                contacts: size,
                accounts: cli.accounts,
                reps: cli.reps as usize,
                rate: cli.rate,
                seconds: cli.seconds,
            };
            desk_sync::run(&db, &options).await
        }
        Scenario::UiPages => {
            let options = ui_pages::Options {
                size,
                batch: cli.batch as usize,
                requests: cli.requests as usize,
            };
            ui_pages::run(&db, &options).await
        }
        Scenario::CarddavImport => {
            let options = carddav_import::Options {
                cards: size,
                file_cards: cli.file_size,
                reps: cli.reps as usize,
            };
            carddav_import::run(&db, &options).await
        }
    };
    db.remove().await;
    println!("{}", outcome?);
    Ok(())
}
