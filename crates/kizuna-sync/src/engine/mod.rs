//! The sync engine. An integration reads streams of changes (one org's
//! changes to one module) from its cursors, and applies each chunk of
//! changes in one transaction together with its link rows, the cursor
//! advance and the run's counts and items: whatever crashes, a change is
//! applied once, and the history adds up.
//!
//! The cursor advance is a compare-and-set at the start of the chunk's
//! transaction, so two runs of one integration at once (the worker and a
//! person pressing sync) never apply a change twice: the second waits, sees
//! the cursor moved, and reads again.

mod ahead;
pub mod decide;
mod desk;
mod events;
pub mod merge;
mod outcome;
mod retry;
pub(crate) mod twins;

pub use events::invite::{Invitation, MAX_INVITEES, invite};
pub use outcome::Outcome;
pub use retry::{Retry, retry};

use crate::lifecycle::{check_acting_user, parse_kind, waiting_for_other_side};
use kizuna_domain::integration::State;
use kizuna_domain::{Error, IntegrationKind, Kind, Result, Text};
use kizuna_store::{Counts, Integration, Item, Pos, Record, Run, Store, StreamChange, Tx, now_ms};
use serde::Serialize;
use serde_json::json;

/// Changes per transaction. Benchmarks batch their baselines by it.
pub const BATCH: usize = 500;
/// Changes a preview looks at per stream.
const PREVIEW_LIMIT: usize = 1000;
/// A run that made no progress for this long belonged to a process that died.
pub(crate) const STALE_RUN_MS: i64 = 60_000;
/// The mass-delete guard: a run that would delete more than this share of
/// the linked records, and more than `MASS_DELETE_MIN` of them, stops and asks
/// (a source that emptied by mistake must not empty the CRM).
pub(crate) const MASS_DELETE_SHARE: f64 = 0.5;
pub(crate) const MASS_DELETE_MIN: i64 = 50;

/// What started a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Api,
    Cli,
    Worker,
    /// A file imported into a mail connection (`kizuna import`, an upload).
    Import,
}

impl Trigger {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Trigger::Api => "api",
            Trigger::Cli => "cli",
            Trigger::Worker => "worker",
            Trigger::Import => "import",
        }
    }
}

/// One stream an integration reads, and which way its changes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stream {
    /// The cursor's name.
    pub name: &'static str,
    pub org: i64,
    pub module: &'static str,
    pub direction: &'static str,
    pub data_type: &'static str,
}

/// A kind's resolved configuration for one sync: its orgs, modules, mapping
/// and settings, read once at the start.
pub(crate) enum Plan {
    Events(Box<events::Plan>),
    Desk(Box<desk::Plan>),
}

impl Plan {
    async fn resolve(store: &Store, i: &Integration) -> Result<Plan> {
        match parse_kind(&i.kind)? {
            IntegrationKind::CrmEvents => Ok(Plan::Events(Box::new(
                events::Plan::resolve(store, i).await?,
            ))),
            IntegrationKind::CrmDesk => {
                Ok(Plan::Desk(Box::new(desk::Plan::resolve(store, i).await?)))
            }
            other => Err(Error::new(
                Kind::BadInput,
                "sync_not_available",
                Text::new(
                    format!(
                        "Syncing {} integrations is not available in this version.",
                        other.as_str()
                    ),
                    format!(
                        "このバージョンでは {} 連携の同期は利用できません。",
                        other.as_str()
                    ),
                ),
                Text::new(
                    "Keep the integration disabled until an update adds it.",
                    "対応するまで連携を無効にしておいてください。",
                ),
            )),
        }
    }

    fn streams(&self) -> Vec<Stream> {
        match self {
            Plan::Events(p) => p.streams(),
            Plan::Desk(p) => p.streams(),
        }
    }

    /// Applies a chunk's changes in `tx`; `read` holds the records they
    /// touch when they were read ahead (`ahead.rs`).
    async fn apply(
        &self,
        store: &Store,
        tx: &mut Tx,
        stream: &Stream,
        changes: &[StreamChange],
        read: Option<Vec<Record>>,
        out: &mut Outcome,
    ) -> Result<()> {
        match self {
            Plan::Events(p) => p.apply(store, tx, stream, changes, out).await,
            Plan::Desk(p) => p.apply(store, tx, stream, changes, read, out).await,
        }
    }

    /// Whether `apply` takes the records read ahead. CRM ⇄ Events does not:
    /// attendee-sync measured it no faster with them and larger at its peak
    /// (BENCHMARKS.md, desk-sync, *Reading the next chunk ahead*).
    fn reads_ahead(&self) -> bool {
        matches!(self, Plan::Desk(_))
    }

    /// After a stream's last chunk: the derived figures the run's chunks (or
    /// earlier ones) marked due, counted and written, with the run's counts.
    async fn settle(&self, store: &Store, stream: &Stream, run: Option<i64>) -> Result<()> {
        match self {
            Plan::Events(p) => p.settle(store, stream, run).await,
            Plan::Desk(_) => Ok(()),
        }
    }

    /// Whether a stream's reads leave out the integration's own writes: all
    /// but those that move figures, where every change counts (an invited
    /// attendee too). The rest would only pass them by (`changed_by_others`).
    fn skip_own(&self, stream: &Stream) -> bool {
        match self {
            Plan::Events(_) => !events::Plan::moves_figures(stream),
            Plan::Desk(_) => true,
        }
    }

    /// Whether the CRM org has a place for the derived figures.
    fn has_figures(&self) -> bool {
        match self {
            Plan::Events(p) => p.has_figures(),
            Plan::Desk(_) => false,
        }
    }

    /// A stream whose changes move figures, to settle them by.
    fn figures_stream(&self) -> Option<Stream> {
        match self {
            Plan::Events(_) => self.streams().into_iter().find(events::Plan::moves_figures),
            Plan::Desk(_) => None,
        }
    }

    /// `settle` inside `tx`, for a preview.
    async fn settle_in(&self, store: &Store, tx: &mut Tx, stream: &Stream) -> Result<Counts> {
        match self {
            Plan::Events(p) => p.settle_in(store, tx, stream).await,
            Plan::Desk(_) => Ok(Counts::default()),
        }
    }
}

/// The streams of an integration, from its kind and orgs alone.
async fn streams_of(store: &Store, i: &Integration) -> Result<Vec<Stream>> {
    match parse_kind(&i.kind)? {
        IntegrationKind::CrmEvents => {
            let (crm, other) =
                crate::mapping::crm_and_other(store, i, kizuna_domain::App::Events).await?;
            Ok(events::streams(crm, other))
        }
        IntegrationKind::CrmDesk => {
            let (crm, other) =
                crate::mapping::crm_and_other(store, i, kizuna_domain::App::Desk).await?;
            Ok(desk::streams(crm, other))
        }
        _ => Ok(Vec::new()),
    }
}

/// The records a chunk's changes touch, each once and in order, with the
/// operations each had — leaving out a record whose every change here is
/// the integration's own write, so that nothing is sent back (no echo).
pub(crate) fn changed_by_others(
    changes: &[StreamChange],
    integration: i64,
) -> (Vec<i64>, std::collections::HashMap<i64, Vec<&str>>) {
    let mut ids: Vec<i64> = Vec::new();
    let mut ops: std::collections::HashMap<i64, Vec<&str>> = std::collections::HashMap::new();
    for c in changes {
        let own = c.origin_kind == "integration" && c.origin_id == Some(integration);
        if !own {
            if !ops.contains_key(&c.record_id) {
                ids.push(c.record_id);
            }
            ops.entry(c.record_id).or_default().push(&c.op);
        }
    }
    (ids, ops)
}

/// Whether any stream of the integration has changes its cursor is behind.
pub async fn pending(store: &Store, i: &Integration) -> Result<bool> {
    for stream in streams_of(store, i).await? {
        let at = store.cursor(i.id, stream.name).await?;
        if store.stream_pending(stream.org, stream.module, at).await? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Counts and writes the derived figures that syncs of integration `id`
/// marked due (`Plan::settle`), in a run of their own; `None` when none was
/// due or the integration cannot run now (its next sync says why).
pub async fn settle_figures(store: &Store, id: i64) -> Result<Option<Run>> {
    let i = load(store, id).await?;
    if check_runnable(store, &i).await.is_err() || store.figures_due(None, i.id).await?.is_empty() {
        return Ok(None);
    }
    let plan = Plan::resolve(store, &i).await?;
    let Some(stream) = plan.figures_stream() else {
        return Ok(None);
    };
    if !plan.has_figures() {
        // Nothing to write: the marks are only settled.
        plan.settle(store, &stream, None).await?;
        return Ok(None);
    }
    let stream = &stream;
    let (run, result) = as_run(
        store,
        &i,
        Trigger::Worker,
        (stream.direction, FIGURES_DATA_TYPE),
        async |run| plan.settle(store, stream, Some(run)).await,
    )
    .await?;
    result.map(|()| Some(run))
}

/// Does `work` as one run of the history (direction, data type): the run is
/// started, handed to the work by id, and ended with what the work came to
/// — finished, or failed with its error — queueing what needs the
/// administrators (GEN-9). Answers the ended run and the work's result; an
/// error of its own is one of recording the run.
pub(crate) async fn as_run<T>(
    store: &Store,
    i: &Integration,
    trigger: Trigger,
    (direction, data_type): (&str, &str),
    work: impl AsyncFnOnce(i64) -> Result<T>,
) -> Result<(Run, Result<T>)> {
    let run = store
        .start_run(i.id, trigger.as_str(), direction, data_type)
        .await?;
    let result = work(run.id).await;
    let error = result.as_ref().err().map(|e| e.to_json()["error"].clone());
    let run = store.finish_run(run.id, error.as_ref()).await?;
    crate::attention::after_run(store, i, &run).await?;
    Ok((run, result))
}

/// The history's data type of a run that only wrote derived figures.
pub const FIGURES_DATA_TYPE: &str = "figures";

/// Refuses to sync an integration that is not running, saying why and who
/// can change that.
pub(crate) async fn check_runnable(store: &Store, i: &Integration) -> Result<()> {
    match i.state() {
        State::Active => {}
        State::Pending => return Err(waiting_for_other_side(store, i).await?),
        state => {
            return Err(Error::new(
                Kind::Conflict,
                "integration_not_running",
                Text::new(
                    format!("Integration {} is {}: nothing syncs until it is active.", i.id, state.as_str()),
                    format!("連携 {} は {} の状態です。有効になるまで同期は行われません。", i.id, state.as_str()),
                ),
                Text::new(
                    format!("An administrator resumes or enables it: POST /api/v1/integrations/{}/resume or …/enable.", i.id),
                    format!("管理者が再開または有効化してください: POST /api/v1/integrations/{}/resume または …/enable。", i.id),
                ),
            )
            .with_rule("GEN-6")
            .with_details(json!({"state": state.as_str()})));
        }
    }
    if let Some(why) = &i.stopped {
        let text = |lang: &str| {
            why.0["message"][lang]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        return Err(Error::new(
            Kind::Conflict,
            "integration_stopped",
            Text::new(
                format!("Integration {} is stopped: {}", i.id, text("en")),
                format!("連携 {} は停止しています: {}", i.id, text("ja")),
            ),
            Text::new(
                why.0["fix"]["en"].as_str().unwrap_or_default(),
                why.0["fix"]["ja"].as_str().unwrap_or_default(),
            ),
        )
        .with_details(json!({"cause": why.0})));
    }
    check_acting_user(store, i).await
}

/// The integration, with the mass-delete guard's stop lifted when a person
/// confirmed the deletes (`allow_deletes`).
pub(crate) async fn lift_delete_guard(
    store: &Store,
    id: i64,
    allow_deletes: bool,
) -> Result<Integration> {
    let i = load(store, id).await?;
    let guarded = i
        .stopped
        .as_ref()
        .is_some_and(|s| s.0["code"] == "mass_delete_guard");
    if allow_deletes && guarded {
        store.set_integration_stopped(i.id, None).await?;
        return load(store, id).await;
    }
    Ok(i)
}

async fn load(store: &Store, id: i64) -> Result<Integration> {
    store
        .integration(id)
        .await?
        .ok_or_else(|| Error::not_found("Integration", id))
}

/// Runs a sync of integration `id` to the end of every stream. Each stream
/// that had changes (or every stream, when a person asked) gets a run in
/// the history; the runs are returned. A database failure ends the sync with
/// an error (the worker retries it); a record that cannot be synced is
/// recorded and the run goes on.
pub async fn sync(store: &Store, id: i64, trigger: Trigger) -> Result<Vec<Run>> {
    sync_with(store, id, trigger, false).await
}

/// `sync`, and with `allow_deletes` a person confirms the deletes the
/// mass-delete guard stopped: the guard's stop is lifted for this run.
pub async fn sync_with(
    store: &Store,
    id: i64,
    trigger: Trigger,
    allow_deletes: bool,
) -> Result<Vec<Run>> {
    let i = lift_delete_guard(store, id, allow_deletes).await?;
    let ready = match check_runnable(store, &i).await {
        Ok(()) => Plan::resolve(store, &i).await,
        Err(e) => Err(e),
    };
    let plan = match ready {
        Ok(plan) => plan,
        Err(e) => {
            // Work is waiting and no person is there to read the refusal.
            if trigger == Trigger::Worker && e.kind != Kind::Internal {
                crate::attention::refused(store, &i, &e).await?;
            }
            return Err(e);
        }
    };
    store
        .interrupt_stale_runs(i.id, now_ms() - STALE_RUN_MS)
        .await?;
    let mut runs = Vec::new();
    for stream in plan.streams() {
        let pending = {
            let at = store.cursor(i.id, stream.name).await?;
            store.stream_pending(stream.org, stream.module, at).await?
        };
        if !pending && trigger == Trigger::Worker {
            continue;
        }
        let guard = !allow_deletes;
        // The worker leaves the figures to its own task (`settle_figures`):
        // a count costs every attendee of an event, and the next attendee
        // should not wait for it. A person who asked for a sync sees them.
        let settle = trigger != Trigger::Worker;
        let (run, result) = as_run(
            store,
            &i,
            trigger,
            (stream.direction, stream.data_type),
            async |run| drive(store, &i, &plan, &stream, run, guard, settle).await,
        )
        .await?;
        runs.push(run);
        result?;
    }
    Ok(runs)
}

/// Reads a stream to its end, a chunk per transaction.
async fn drive(
    store: &Store,
    i: &Integration,
    plan: &Plan,
    stream: &Stream,
    run: i64,
    guard: bool,
    settle: bool,
) -> Result<()> {
    let mut deleted = 0;
    // The guard's base is the links the integration had when the run
    // started. It is needed only once the run has deleted more than
    // MASS_DELETE_MIN (the limit is never lower), so most runs never count
    // the links (a count costs every link of the integration); when it is
    // needed it is the links committed now less those this run's committed
    // chunks added, which each transaction counts exactly.
    let mut base: Option<i64> = None;
    let mut added_links = 0;
    // After a chunk failed on a record, its changes are retried one at a time
    // up to here, so that one bad record fails alone.
    let mut careful_until: Option<Pos> = None;
    let skip = plan.skip_own(stream).then_some(i.id);
    // The next chunk's reads, made while a chunk writes and commits.
    let mut reading: Option<ahead::ReadAhead> = None;
    loop {
        let early = match reading.take() {
            Some(a) => a.done().await,
            None => None,
        };
        let mut tx = store.begin().await?;
        let from = store.cursor_in(&mut tx, i.id, stream.name).await?;
        if careful_until.is_some_and(|end| from >= end) {
            careful_until = None;
        }
        let limit = if careful_until.is_some() { 1 } else { BATCH };
        let early = match early {
            Some(a) if limit == BATCH && a.fits(store, &mut tx, stream, from).await? => Some(a),
            _ => None,
        };
        let (read, records) = match early {
            Some(a) => (a.read, Some(a.records)),
            None => (
                store
                    .stream_read_in(&mut tx, stream.org, stream.module, from, limit, skip)
                    .await?,
                None,
            ),
        };
        let Some(to) = read.end else {
            // Nothing was written: the figures are counted outside it.
            drop(tx);
            return match settle {
                true => plan.settle(store, stream, Some(run)).await,
                false => Ok(()),
            };
        };
        if !store
            .advance_cursor_in(&mut tx, i.id, stream.name, from, to)
            .await?
        {
            // Another run moved the cursor: read again from where it is now.
            continue;
        }
        let changes = read.changes;
        if changes.is_empty() {
            // Only the integration's own writes: the cursor passes them.
            tx.commit().await?;
            continue;
        }
        // A full chunk: the stream likely goes on, so its next chunk is read
        // while this one writes and commits (`ahead.rs`).
        if changes.len() >= BATCH && plan.reads_ahead() {
            reading = ahead::ReadAhead::start(store, *stream, to, skip, i.id);
        }
        let mut out = Outcome::default();
        match plan
            .apply(store, &mut tx, stream, &changes, records, &mut out)
            .await
        {
            Ok(()) => {
                deleted += out.counts.deleted;
                if guard && deleted > MASS_DELETE_MIN {
                    let linked = match base {
                        Some(n) => n,
                        // Outside the chunk's transaction: what is committed.
                        None => {
                            let now: i64 =
                                store.link_counts(i.id).await?.iter().map(|(_, n)| n).sum();
                            *base.insert(now - added_links)
                        }
                    };
                    let limit = ((linked as f64 * MASS_DELETE_SHARE) as i64).max(MASS_DELETE_MIN);
                    if deleted > limit {
                        drop(tx);
                        let e = mass_delete(i, stream.data_type, deleted, limit);
                        store
                            .set_integration_stopped(i.id, Some(&e.to_json()["error"]))
                            .await?;
                        return Err(e);
                    }
                }
                store
                    .record_progress_in(&mut tx, run, out.counts, &out.items)
                    .await?;
                added_links += tx.links_added();
                tx.commit().await?;
            }
            // The database itself failed: stop; the job is retried.
            Err(e) if e.kind == Kind::Internal => return Err(e),
            Err(_) if changes.len() > 1 => {
                drop(tx);
                careful_until = Some(to);
            }
            Err(e) => {
                drop(tx);
                fail_alone(store, i, stream, run, from, &changes[0], &e).await?;
            }
        }
    }
}

/// The mass-delete guard's stop: what would have been deleted, and how to go on.
pub(crate) fn mass_delete(i: &Integration, data_type: &str, deleted: i64, limit: i64) -> Error {
    Error::new(
        Kind::Conflict,
        "mass_delete_guard",
        Text::new(
            format!(
                "Integration {} stopped before deleting: its {} changes would delete at least {deleted} records (more than {limit}, half of what it links). Nothing was deleted.",
                i.id, data_type
            ),
            format!(
                "連携 {} は削除の前に停止しました: {} の変更により少なくとも {deleted} 件のレコード（上限 {limit} 件、リンク済みの半数）が削除されるところでした。何も削除されていません。",
                i.id, data_type
            ),
        ),
        Text::new(
            format!(
                "If the deletes are intended, sync once allowing them: POST /api/v1/integrations/{}/sync?allow_deletes=true. If not, restore the records in the source app first.",
                i.id
            ),
            format!(
                "削除が意図どおりなら、削除を許可して一度同期してください: POST /api/v1/integrations/{}/sync?allow_deletes=true。意図しないものなら、先に元のアプリでレコードを復元してください。",
                i.id
            ),
        ),
    )
    .with_details(json!({"deleted": deleted, "limit": limit, "data_type": data_type}))
}

/// Records one change that cannot be applied as failed, with its reason,
/// and moves past it.
async fn fail_alone(
    store: &Store,
    i: &Integration,
    stream: &Stream,
    run: i64,
    from: Pos,
    change: &StreamChange,
    e: &Error,
) -> Result<()> {
    let mut tx = store.begin().await?;
    if store
        .advance_cursor_in(&mut tx, i.id, stream.name, from, change.pos())
        .await?
    {
        let mut out = Outcome::default();
        out.fail(e, (stream.module, change.record_id), None);
        store
            .record_progress_in(&mut tx, run, out.counts, &out.items)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// What a sync would do, stream by stream.
#[derive(Debug, Serialize)]
pub struct Preview {
    pub steps: Vec<PreviewStep>,
    /// False when a stream had more changes than a preview looks at.
    pub complete: bool,
}

#[derive(Debug, Serialize)]
pub struct PreviewStep {
    pub direction: &'static str,
    pub data_type: &'static str,
    #[serde(flatten)]
    pub counts: Counts,
    pub items: Vec<Item>,
}

/// A dry run: the same code as a sync, in one transaction that is rolled
/// back, so it writes nothing and answers exactly what a sync would do now.
pub async fn preview(store: &Store, id: i64) -> Result<Preview> {
    let i = load(store, id).await?;
    check_runnable(store, &i).await?;
    let plan = Plan::resolve(store, &i).await?;
    let mut tx = store.begin().await?;
    let mut steps = Vec::new();
    let mut complete = true;
    for stream in plan.streams() {
        let mut out = Outcome::default();
        let mut seen = 0;
        loop {
            let from = store.cursor_in(&mut tx, i.id, stream.name).await?;
            let skip = plan.skip_own(&stream).then_some(i.id);
            let read = store
                .stream_read_in(&mut tx, stream.org, stream.module, from, BATCH, skip)
                .await?;
            let Some(to) = read.end else { break };
            if seen >= PREVIEW_LIMIT {
                complete = false;
                break;
            }
            seen += read.changes.len();
            store
                .advance_cursor_in(&mut tx, i.id, stream.name, from, to)
                .await?;
            plan.apply(store, &mut tx, &stream, &read.changes, None, &mut out)
                .await?;
        }
        let settled = plan.settle_in(store, &mut tx, &stream).await?;
        out.counts.add(settled);
        steps.push(PreviewStep {
            direction: stream.direction,
            data_type: stream.data_type,
            counts: out.counts,
            items: out.items,
        });
    }
    // Dropping the transaction rolls every write back.
    drop(tx);
    Ok(Preview { steps, complete })
}
