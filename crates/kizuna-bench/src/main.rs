//! Kizuna's benchmarks, each against the machine's own ceiling in the same
//! run (DESIGN.md, Performance). Progress goes to stderr; the last line of
//! stdout is one JSON object with the scenario, its ratio and raw figures.

mod api_get;
mod common;
mod store_insert;

use anyhow::Result;
use clap::{Parser, ValueEnum};
use std::time::Duration;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Scenario {
    /// Contacts through `Store::create_records` vs a plain batched upsert.
    StoreInsert,
    /// `GET` of random records through the REST API vs a trivial handler.
    ApiGet,
}

#[derive(Parser)]
#[command(about = "Kizuna benchmarks: each scenario against a baseline in the same run")]
struct Cli {
    scenario: Scenario,
    /// Records to insert (store-insert) or to seed (api-get).
    #[arg(long, default_value_t = 1_000_000)]
    size: u64,
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
    /// api-get: timed runs of each side (the median is reported).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    reps: u64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    anyhow::ensure!(cli.size > 0, "--size must be at least 1");
    let db = common::BenchDb::create(cli.database_url.as_deref()).await?;
    let outcome = match cli.scenario {
        Scenario::StoreInsert => store_insert::run(&db, cli.size, cli.batch as usize).await,
        Scenario::ApiGet => {
            let options = api_get::Options {
                size: cli.size,
                batch: cli.batch as usize,
                duration: Duration::from_secs(cli.duration),
                concurrency: cli.concurrency as usize,
                reps: cli.reps as usize,
            };
            api_get::run(&db, &options).await
        }
    };
    db.remove().await;
    println!("{}", outcome?);
    Ok(())
}
