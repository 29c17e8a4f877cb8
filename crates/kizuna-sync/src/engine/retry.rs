//! Retrying what a run could not write (GEN-8): once its cause is mended (a
//! mapping reset, a field widened, a record corrected), an administrator asks
//! for the run's failed records again. They go back on the change log and a
//! sync runs at once, so the retry lands in the history like any other run.

use super::{Trigger, streams_of, sync};
use crate::lifecycle::administered;
use kizuna_domain::{Error, Result};
use kizuna_store::{Run, Store, User};
use std::collections::BTreeMap;

/// What a retry sent again, and the runs of the sync that followed.
pub struct Retry {
    pub resent: u64,
    pub runs: Vec<Run>,
}

/// Sends the failed records of run `run` of integration `id` through again.
pub async fn retry(store: &Store, caller: &User, id: i64, run: i64) -> Result<Retry> {
    let i = administered(store, caller, id).await?;
    let run = store
        .run(run)
        .await?
        .filter(|r| r.integration_id == i.id)
        .ok_or_else(|| Error::not_found("Run", run))?;
    let mut failed: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut after = None;
    loop {
        let items = store.run_items(run.id, after, 500).await?;
        let Some(last) = items.last() else { break };
        after = Some(last.id);
        for item in items.iter().filter(|it| it.outcome == "failed") {
            failed
                .entry(item.source_module.clone())
                .or_default()
                .push(item.source_id);
        }
    }
    let streams = streams_of(store, &i).await?;
    let mut resent = 0;
    for (module, ids) in &failed {
        // A two-way integration reads a module of the same name in each
        // org; ids are unique across orgs, so each record is resent once.
        for s in streams.iter().filter(|s| s.module == module) {
            resent += store.resend_records(None, s.org, module, Some(ids)).await?;
        }
    }
    let runs = if resent > 0 {
        sync(store, i.id, Trigger::Api).await?
    } else {
        Vec::new()
    };
    Ok(Retry { resent, runs })
}
