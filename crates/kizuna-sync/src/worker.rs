//! The background worker inside `kizuna serve`: new changes flow without
//! anyone pressing sync. It watches the change log; when it moves, every
//! running integration with changes behind its cursors gets a sync job in the
//! jobs table, and jobs are claimed with a lease. Several server processes on
//! one PostgreSQL share the table (`FOR UPDATE SKIP LOCKED`); a job whose
//! worker died is claimed again when its lease runs out. Beside the syncs, it
//! counts the derived figures they marked due.

use crate::engine::{self, Trigger};
use kizuna_domain::{Kind, Result};
use kizuna_store::Store;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

const SYNC_JOB: &str = "sync";

/// How the worker paces itself.
#[derive(Debug, Clone)]
pub struct Options {
    /// How often the change log is looked at.
    pub poll: Duration,
    /// How long a claimed job is this worker's without a renewal.
    pub lease: Duration,
    /// The longest wait before a failed job is tried again.
    pub max_backoff: Duration,
    /// How often derived figures marked due are counted and written.
    pub figures_every: Duration,
    /// What mail connections need; `None`: they are not synced here.
    pub mail: Option<crate::mail::MailContext>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            poll: Duration::from_millis(25),
            lease: Duration::from_secs(30),
            max_backoff: Duration::from_secs(600),
            figures_every: Duration::from_secs(1),
            mail: None,
        }
    }
}

/// A random number, for jitter and worker names (no generator needed for
/// that: the standard hasher is randomly keyed).
fn random() -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now())
}

/// The wait before attempt `attempts + 1`: exponential, capped, with jitter
/// so that failing jobs do not retry in lockstep.
pub fn backoff(attempts: i64, max: Duration) -> Duration {
    let exp = 2u64.saturating_pow(attempts.clamp(0, 20) as u32);
    let base = Duration::from_secs(exp).min(max);
    base + Duration::from_millis(random() % 1000)
}

/// Runs until the task is dropped. Errors are logged and retried: the
/// worker never stops the server.
pub async fn run(store: Store, options: Options) {
    tokio::join!(syncs(&store, &options), figures(&store, &options));
}

/// Derived figures (EVT-14) that the worker's syncs marked due, counted
/// beside the syncs rather than after each: a count costs every attendee of
/// an event, and a new attendee should not wait behind it. The figures follow
/// within `figures_every` and the count.
/// An integration whose figures failed is tried again after a backoff, as a
/// failed sync job is, not every `figures_every`.
async fn figures(store: &Store, options: &Options) {
    let mut failing: HashMap<i64, (i64, Instant)> = HashMap::new();
    loop {
        tokio::time::sleep(options.figures_every).await;
        let running = match store.running_integrations().await {
            Ok(running) => running,
            Err(e) => {
                tracing::warn!("figures: {e}");
                continue;
            }
        };
        for i in running {
            if failing
                .get(&i.id)
                .is_some_and(|(_, at)| Instant::now() < *at)
            {
                continue;
            }
            match engine::settle_figures(store, i.id).await {
                Ok(_) => {
                    failing.remove(&i.id);
                }
                Err(e) => {
                    let attempts = failing.get(&i.id).map_or(0, |(n, _)| *n) + 1;
                    let wait = backoff(attempts, options.max_backoff);
                    tracing::warn!(
                        integration = i.id,
                        "figures not written, trying again in {wait:?}: {e}"
                    );
                    failing.insert(i.id, (attempts, Instant::now() + wait));
                }
            }
        }
    }
}

async fn syncs(store: &Store, options: &Options) {
    let owner = format!("worker-{}-{:x}", std::process::id(), random() & 0xffff_ffff);
    let mut seen = Seen {
        seq: -1,
        at: Instant::now(),
    };
    loop {
        if let Err(e) = tick(store, options, &owner, &mut seen).await {
            tracing::warn!("sync worker: {e}");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        tokio::time::sleep(options.poll).await;
    }
}

/// The change log's end when the worker last looked for work, and when.
struct Seen {
    seq: i64,
    at: Instant,
}

/// Looked for even when the change log did not move: an integration resumed
/// or taken over has changes waiting that arrived while it could not run.
const RECHECK: Duration = Duration::from_secs(5);

async fn tick(store: &Store, options: &Options, owner: &str, seen: &mut Seen) -> Result<()> {
    let last = store.last_change_seq().await?;
    if last != seen.seq || seen.at.elapsed() >= RECHECK {
        for i in store.running_integrations().await? {
            // A mail connection has no change log to watch: it syncs on its
            // schedule (MAIL-9).
            let due = if crate::mail::is_mail(&i) {
                options.mail.is_some() && crate::mail::due(store, &i).await?
            } else {
                engine::pending(store, &i).await?
            };
            if due {
                store.queue_job(SYNC_JOB, i.id, 0).await?;
            }
        }
        *seen = Seen {
            seq: last,
            at: Instant::now(),
        };
    }
    let lease_ms = options.lease.as_millis() as i64;
    while let Some(job) = store.claim_job(owner, lease_ms).await? {
        let Some(integration) = job.integration_id else {
            store.finish_job(job.id, owner, None).await?;
            continue;
        };
        // Keeps the lease while the sync runs; a worker that dies stops
        // renewing it, and another claims the job when it runs out.
        let renewer = {
            let (store, owner) = (store.clone(), owner.to_string());
            let every = options.lease / 3;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    if !matches!(store.renew_lease(job.id, &owner, lease_ms).await, Ok(true)) {
                        return;
                    }
                }
            })
        };
        let result = crate::mail::sync_any(
            store,
            options.mail.as_ref(),
            integration,
            Trigger::Worker,
            false,
        )
        .await;
        renewer.abort();
        match result {
            Ok(_) => store.finish_job(job.id, owner, None).await?,
            // A refusal (not running, stopped, its user deactivated) waits for
            // a person, not for time: the job rests until there is work again.
            // A server that failed (Unavailable) is tried again, as the
            // database is.
            Err(e) if e.kind != Kind::Internal && e.kind != Kind::Unavailable => {
                tracing::info!(integration, "sync not run: {e}");
                store.finish_job(job.id, owner, None).await?;
            }
            Err(e) => {
                let wait = backoff(job.attempts, options.max_backoff);
                tracing::warn!(
                    integration,
                    attempts = job.attempts,
                    "sync failed, retrying in {wait:?}: {e}"
                );
                store
                    .finish_job(
                        job.id,
                        owner,
                        Some((&e.to_string(), wait.as_millis() as i64)),
                    )
                    .await?;
            }
        }
    }
    Ok(())
}
