//! `ui-pages`: the web UI's pages with 1,000,000 records in the module being
//! listed, each requested one at a time by a signed-in browser session over
//! HTTP (the client in the same process), against a trivial handler on the
//! same server as the machine's floor. Latency per request: p50, p99, max.

use crate::common::{self, BenchDb, percentile, r3};
use anyhow::{Context, Result};
use axum::routing::get;
use kizuna_store::Db;
use serde_json::{Value, json};
use std::time::Instant;

pub struct Options {
    pub size: u64,
    pub batch: usize,
    /// Requests per page (after a warm-up of a tenth as many).
    pub requests: usize,
}

/// The goal from the issue.
const GOAL_P99_MS: f64 = 100.0;

/// One page's latencies.
struct Timed {
    name: &'static str,
    ms: Vec<f64>,
}

async fn fetch(client: &reqwest::Client, cookie: &str, url: &str) -> Result<String> {
    let r = client
        .get(url)
        .header("Cookie", cookie)
        .header("Accept-Language", "ja")
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = r.status();
    let body = r.text().await?;
    anyhow::ensure!(status.is_success(), "GET {url}: {status}");
    Ok(body)
}

/// `n` sequential requests of the URLs `url(i)` gives, after a warm-up.
async fn time(
    client: &reqwest::Client,
    cookie: &str,
    name: &'static str,
    n: usize,
    url: impl Fn(usize) -> String,
) -> Result<Timed> {
    for i in 0..(n / 10).max(1) {
        fetch(client, cookie, &url(i)).await?;
    }
    let mut ms = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        fetch(client, cookie, &url(i)).await?;
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    eprintln!(
        "  {name:<22} p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
        percentile(&ms, 50.0),
        percentile(&ms, 99.0),
        percentile(&ms, 100.0)
    );
    Ok(Timed { name, ms })
}

/// The `href` of the page's `rel="next"` link.
fn next_link(body: &str) -> Option<String> {
    let at = body.find("rel=\"next\" href=\"")? + 17;
    let href = body[at..].split('"').next()?;
    Some(href.replace("&amp;", "&").replace("&#38;", "&"))
}

pub async fn run(db: &BenchDb, o: &Options) -> Result<Value> {
    let load_at_start = common::load_average();
    let store = &db.store;
    let crm = common::crm_org(store).await?;
    eprintln!("ui-pages: seeding {} contacts", o.size);
    let ids = common::seed_contacts(store, &crm, o.size, o.batch).await?;
    // PostgreSQL plans by statistics, which autovacuum gathers within a
    // minute of a bulk load; before that an e-mail is guessed to match 0.5 %
    // of the rows, and the list walks the module looking for them.
    if let Db::Postgres(pool) = store.db() {
        sqlx::query("ANALYZE records").execute(pool).await?;
    }
    // An administrator making a second field sortable on the full module:
    // the index is built then, while they wait.
    let started = std::time::Instant::now();
    store
        .set_field_sortable(crm.org.id, "Contacts", "First_Name", true)
        .await?;
    let make_sortable_s = started.elapsed().as_secs_f64();
    eprintln!("ui-pages: made First_Name sortable in {make_sortable_s:.1} s");
    let (token, _) = store.create_session(&crm.user).await?;
    let cookie = format!("kizuna_session={token}");

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
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let list = format!("{base}/orgs/{}/modules/Contacts", crm.org.id);
    // A page deep in the list: follow the first page's next link.
    let first = fetch(&client, &cookie, &list).await?;
    let second = next_link(&first).context("the list has a next page")?;
    let by_name = format!("{list}?sort=Last_Name&order=asc");
    let by_name_second = next_link(&fetch(&client, &cookie, &by_name).await?)
        .context("the sorted list has a next page")?;
    let pick = |i: usize| ids[(common::mix(i as u64) % ids.len() as u64) as usize];
    let email = |i: usize| {
        let c = common::contact(common::mix(i as u64) % o.size);
        c["Email"].as_str().unwrap_or_default().to_string()
    };
    eprintln!("ui-pages: {} requests per page, one at a time", o.requests);
    let n = o.requests;
    let timed = [
        time(&client, &cookie, "trivial handler", n, |_| {
            format!("{base}/bench/trivial")
        })
        .await?,
        time(&client, &cookie, "app switcher", n, |_| {
            format!("{base}/home")
        })
        .await?,
        time(&client, &cookie, "list", n, |_| list.clone()).await?,
        time(&client, &cookie, "list, next page", n, |_| {
            format!("{base}{second}")
        })
        .await?,
        time(&client, &cookie, "list, by e-mail", n, |i| {
            format!("{list}?filter_field=Email&filter_value={}", email(i))
        })
        .await?,
        time(&client, &cookie, "record", n, |i| {
            format!("{list}/{}", pick(i))
        })
        .await?,
        time(&client, &cookie, "edit form", n, |i| {
            format!("{list}/{}/edit", pick(i))
        })
        .await?,
        time(&client, &cookie, "list, by last name", n, |_| {
            by_name.clone()
        })
        .await?,
        time(&client, &cookie, "  its next page", n, |_| {
            format!("{base}{by_name_second}")
        })
        .await?,
        time(&client, &cookie, "list, by first name ↓", n, |_| {
            format!("{list}?sort=First_Name&order=desc")
        })
        .await?,
    ];
    let _ = stop.send(());
    let _ = server.await;
    let pages: Vec<Value> = timed
        .iter()
        .map(|t| {
            let p99 = percentile(&t.ms, 99.0);
            json!({"page": t.name, "requests": t.ms.len(), "p50_ms": r3(percentile(&t.ms, 50.0)),
                "p99_ms": r3(p99), "max_ms": r3(percentile(&t.ms, 100.0)),
                "goal_met": p99 <= GOAL_P99_MS})
        })
        .collect();
    let met = timed
        .iter()
        .skip(1)
        .all(|t| percentile(&t.ms, 99.0) <= GOAL_P99_MS);
    Ok(json!({
        "scenario": "ui-pages",
        "backend": db.backend(),
        "records": o.size,
        "pages": pages,
        "make_sortable_s": r3(make_sortable_s),
        "peak_memory_kib": common::peak_memory_kib(),
        "load_average_at_start": load_at_start,
        "goal": {"p99_ms": GOAL_P99_MS},
        "goal_met": met,
    }))
}
