//! `api-get`: concurrent `GET` of random records through the real REST API
//! against a trivial handler merged into the same router, on the same
//! listener, with the load generator in the same process.

use crate::common::{self, BenchDb, median, percentile, r3};
use anyhow::{Context, Result};
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Options {
    pub size: u64,
    pub batch: usize,
    pub duration: Duration,
    pub concurrency: usize,
    pub reps: usize,
}

/// What the load generator asks for.
#[derive(Clone)]
enum Target {
    Trivial,
    Record { org: i64, ids: Arc<Vec<i64>> },
}

impl Target {
    fn url(&self, base: &str, r: u64) -> String {
        match self {
            Target::Trivial => format!("{base}/bench/trivial"),
            Target::Record { org, ids } => {
                let id = ids[(r % ids.len() as u64) as usize];
                format!("{base}/api/v1/orgs/{org}/modules/Contacts/records/{id}")
            }
        }
    }
}

/// One timed run of the load generator.
struct Run {
    requests_per_s: f64,
    errors: u64,
    latencies_ms: Vec<f64>,
}

pub async fn run(db: &BenchDb, o: &Options) -> Result<Value> {
    let store = &db.store;
    let crm = common::crm_org(store).await?;

    eprintln!(
        "api-get: seeding {} contacts in batches of {}",
        o.size, o.batch
    );
    let seed_start = Instant::now();
    let ids = common::seed_contacts(store, &crm, o.size, o.batch).await?;
    let seed_seconds = seed_start.elapsed().as_secs_f64();

    let (_, key) = store.create_api_key(crm.user.id).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = kizuna_web::app(store.clone(), kizuna_web::Options::default())
        .merge(axum::Router::new().route("/bench/trivial", get(|| async { "ok" })));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    eprintln!(
        "api-get: serving on {base}; {} connections, {} s per run, {} runs each",
        o.concurrency,
        o.duration.as_secs_f64(),
        o.reps
    );

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(o.concurrency)
        .build()?;
    let auth = format!("Bearer {key}");
    let record = Target::Record {
        org: crm.org.id,
        ids: Arc::new(ids),
    };
    check(&client, &auth, &record.url(&base, 0)).await?;
    check(&client, &auth, &Target::Trivial.url(&base, 0)).await?;

    // Warm up both paths (connections, caches), then alternate the runs.
    for target in [&Target::Trivial, &record] {
        load(
            &client,
            &auth,
            &base,
            target,
            o.concurrency,
            Duration::from_secs(1),
        )
        .await;
    }
    let (mut trivial, mut api) = (Vec::new(), Vec::new());
    for rep in 1..=o.reps {
        let t = load(
            &client,
            &auth,
            &base,
            &Target::Trivial,
            o.concurrency,
            o.duration,
        )
        .await;
        let a = load(&client, &auth, &base, &record, o.concurrency, o.duration).await;
        eprintln!(
            "  run {rep}: trivial {:>8.0} req/s  api {:>8.0} req/s  api p50 {:.2} ms  p99 {:.2} ms  errors {}/{}",
            t.requests_per_s,
            a.requests_per_s,
            percentile(&a.latencies_ms, 50.0),
            percentile(&a.latencies_ms, 99.0),
            t.errors,
            a.errors,
        );
        trivial.push(t);
        api.push(a);
    }
    let _ = stop.send(());
    server.await.context("the server task")??;

    let of =
        |runs: &[Run], f: &dyn Fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    let trivial_rps = of(&trivial, &|r| r.requests_per_s);
    let api_rps = of(&api, &|r| r.requests_per_s);
    let p50 = of(&api, &|r| percentile(&r.latencies_ms, 50.0));
    let p99 = of(&api, &|r| percentile(&r.latencies_ms, 99.0));
    let errors: u64 = api.iter().chain(&trivial).map(|r| r.errors).sum();
    let ratio = api_rps / trivial_rps;
    Ok(json!({
        "scenario": "api-get",
        "backend": db.backend(),
        "size": o.size,
        "seed_batch": o.batch,
        "seed_seconds": r3(seed_seconds),
        "concurrency": o.concurrency,
        "duration_s": o.duration.as_secs_f64(),
        "reps": o.reps,
        "api_requests_per_s": api_rps.round(),
        "trivial_requests_per_s": trivial_rps.round(),
        "ratio": r3(ratio),
        "api_p50_ms": r3(p50),
        "api_p99_ms": r3(p99),
        "api_requests_per_s_runs": api.iter().map(|r| r.requests_per_s.round()).collect::<Vec<_>>(),
        "trivial_requests_per_s_runs": trivial.iter().map(|r| r.requests_per_s.round()).collect::<Vec<_>>(),
        "errors": errors,
        "peak_memory_kib": common::peak_memory_kib(),
        "anonymous_memory_kib_at_end": common::anonymous_memory_kib(),
        "goal": {"ratio": 0.5, "p99_ms": 10.0},
        "goal_met": ratio >= 0.5 && p99 <= 10.0 && errors == 0,
    }))
}

/// One request that must succeed, before any load.
async fn check(client: &reqwest::Client, auth: &str, url: &str) -> Result<()> {
    let response = client.get(url).header("authorization", auth).send().await?;
    let status = response.status();
    let body = response.text().await?;
    anyhow::ensure!(status.is_success(), "GET {url} answered {status}: {body}");
    Ok(())
}

/// `concurrency` workers send requests back to back for `duration`; each
/// request is timed from send to the last byte of its body.
async fn load(
    client: &reqwest::Client,
    auth: &str,
    base: &str,
    target: &Target,
    concurrency: usize,
    duration: Duration,
) -> Run {
    let start = Instant::now();
    let deadline = start + duration;
    let workers: Vec<_> = (0..concurrency as u64)
        .map(|w| {
            let (client, auth, base, target) = (
                client.clone(),
                auth.to_string(),
                base.to_string(),
                target.clone(),
            );
            tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0_u64);
                let mut seq = common::mix(w);
                while Instant::now() < deadline {
                    seq = common::mix(seq);
                    let url = target.url(&base, seq);
                    let t = Instant::now();
                    let ok = match client.get(&url).header("authorization", &auth).send().await {
                        Ok(response) => {
                            response.status().is_success() && response.bytes().await.is_ok()
                        }
                        Err(_) => false,
                    };
                    latencies.push(t.elapsed().as_secs_f64() * 1e3);
                    errors += u64::from(!ok);
                }
                (latencies, errors)
            })
        })
        .collect();
    let (mut latencies_ms, mut errors) = (Vec::new(), 0);
    for worker in workers {
        match worker.await {
            Ok((l, e)) => {
                latencies_ms.extend(l);
                errors += e;
            }
            Err(_) => errors += 1,
        }
    }
    Run {
        requests_per_s: latencies_ms.len() as f64 / start.elapsed().as_secs_f64(),
        errors,
        latencies_ms,
    }
}
