//! Settings → Marketplace: the integrations an org's plan includes, set up
//! from one side and enabled from the other, paused, resumed, disabled and
//! deleted (after reading what deleting removes), the dry-run preview, a
//! sync now, and the sync history — a chart of each day's outcomes and the
//! records a sync did not write, with the rule that stopped each and a
//! retry. Every rule is the sync crate's; pages only show and ask.

use super::i18n::Lang;
use super::page::{Chrome, UiError, UiResult, render};
use super::session::{UiPath, Viewer, form_value};
use crate::http::AppState;
use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use kizuna_domain::integration::{Action, State as LinkState};
use kizuna_domain::org::{plan_includes, plans_including};
use kizuna_domain::{App, Error, IntegrationKind, Role};
use kizuna_store::{Integration, Item, Org, Run};
use kizuna_sync::engine::{self, Trigger};
use kizuna_sync::lifecycle;
use serde_json::json;
use std::collections::BTreeMap;

/// A kind's name as people say it.
fn kind_name(kind: &str) -> &'static str {
    match kind {
        "crm-events" => "CRM ⇄ Events",
        "crm-desk" => "CRM ⇄ Desk",
        "crm-projects" => "CRM ⇄ Projects",
        "desk-inventory" => "Desk ⇄ Inventory",
        _ => "Mail & calendar",
    }
}

fn state_name(state: &str, l: Lang) -> &'static str {
    match state {
        "pending" => l.of("waiting for the other side", "相手側の有効化待ち"),
        "active" => l.of("active", "有効"),
        "paused" => l.of("paused", "一時停止中"),
        "disabled" => l.of("disabled", "無効"),
        _ => l.of("deleted", "削除済み"),
    }
}

struct Offer {
    kind: &'static str,
    name: &'static str,
    included: bool,
    /// The plans that include it, when this org's does not.
    plans: String,
    /// This org is the side that sets it up, and the viewer administers it.
    can_set_up: bool,
    existing: Vec<(i64, &'static str)>,
}

#[derive(Template)]
#[template(path = "marketplace.html")]
struct MarketplacePage {
    c: Chrome,
    org: Org,
    offers: Vec<Offer>,
}

/// Settings → Marketplace of an org.
pub async fn marketplace(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath(org): UiPath<i64>,
) -> UiResult<Response> {
    let (org, role) = viewer.org(&s, org).await?;
    let app = App::parse(&org.app).map_err(|e| viewer.fail(e))?;
    let existing = s
        .store
        .integrations_of_org(org.id)
        .await
        .map_err(|e| viewer.fail(e))?;
    let offers = IntegrationKind::ALL
        .into_iter()
        .filter(|k| *k != IntegrationKind::CrmMail)
        .filter(|k| k.apps().0 == app || k.apps().1 == Some(app))
        .map(|k| {
            let included = plan_includes(app, &org.plan, k);
            let live: Vec<(i64, &'static str)> = existing
                .iter()
                .filter(|i| i.kind == k.as_str() && i.state() != LinkState::Deleted)
                .map(|i| (i.id, state_name(&i.state, viewer.lang)))
                .collect();
            Offer {
                kind: k.as_str(),
                name: kind_name(k.as_str()),
                included,
                plans: plans_including(app, k).join(", "),
                can_set_up: included
                    && k.apps().0 == app
                    && role == Role::Administrator
                    && live.is_empty(),
                existing: live,
            }
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &MarketplacePage {
            c: viewer.chrome(),
            org,
            offers,
        },
    ))
}

#[derive(Template)]
#[template(path = "integration_new.html")]
struct SetupPage {
    c: Chrome,
    org: Org,
    kind: &'static str,
    name: &'static str,
    /// The orgs of the other app the viewer belongs to.
    counterparts: Vec<Org>,
    error: Option<String>,
}

fn kind_of(raw: &str, viewer: &Viewer) -> UiResult<IntegrationKind> {
    lifecycle::parse_kind(raw).map_err(|e| viewer.fail(e))
}

async fn setup_page(
    s: &AppState,
    viewer: &Viewer,
    org: Org,
    kind: IntegrationKind,
    refused: Option<&Error>,
) -> UiResult<Response> {
    let other = kind.apps().1.map(App::as_str).unwrap_or_default();
    let counterparts = s
        .store
        .orgs_of_user(viewer.session.user.id)
        .await
        .map_err(|e| viewer.fail(e))?
        .into_iter()
        .map(|(o, _)| o)
        .filter(|o| o.app == other)
        .collect();
    let status = super::page::refusal_status(refused);
    Ok(render(
        status,
        &SetupPage {
            c: viewer.chrome(),
            org,
            kind: kind.as_str(),
            name: kind_name(kind.as_str()),
            counterparts,
            error: refused.map(|e| viewer.lang.refusal(e)),
        },
    ))
}

/// The setup wizard's first step: the org on the other side.
pub async fn setup_form(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath((org, kind)): UiPath<(i64, String)>,
) -> UiResult<Response> {
    let (org, _) = viewer.org(&s, org).await?;
    let kind = kind_of(&kind, &viewer)?;
    setup_page(&s, &viewer, org, kind, None).await
}

pub async fn set_up(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath((org, kind)): UiPath<(i64, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> UiResult<Response> {
    viewer.check_form(&form)?;
    let (org, _) = viewer.org(&s, org).await?;
    let kind = kind_of(&kind, &viewer)?;
    let to = form_value(&form, "to_org").and_then(|v| v.parse::<i64>().ok());
    match lifecycle::create(&s.store, &viewer.session.user, kind, org.id, to, &json!({})).await {
        Ok(i) => Ok(Redirect::to(&format!("/integrations/{}", i.id)).into_response()),
        Err(e) if e.kind != kizuna_domain::Kind::Internal => {
            setup_page(&s, &viewer, org, kind, Some(&e)).await
        }
        Err(e) => Err(viewer.fail(e)),
    }
}

/// One stacked bar of the history chart: a day's outcomes.
struct Bar {
    x: i64,
    label: String,
    /// (css class, y, height) of each outcome's part, bottom up.
    parts: Vec<(&'static str, i64, i64)>,
    title: String,
}

/// A record a history item names, with where to see it.
struct Named {
    text: String,
    link: Option<String>,
}

struct HistoryItem {
    outcome: String,
    code: String,
    rule: String,
    message: String,
    source: Named,
    target: Option<Named>,
}

struct RunRow {
    id: i64,
    started: String,
    direction: String,
    data_type: String,
    state: String,
    counts: [i64; 4],
    /// Some of its records failed: they can be sent through again.
    has_failures: bool,
    items: Vec<HistoryItem>,
}

#[derive(Template)]
#[template(path = "integration.html")]
struct IntegrationPage {
    c: Chrome,
    id: i64,
    name: &'static str,
    state: String,
    state_label: &'static str,
    from: Org,
    to: Option<Org>,
    waiting: Option<String>,
    stopped: Option<String>,
    can_enable: bool,
    administrator: bool,
    /// Its kind has a field mapping to edit.
    mappable: bool,
    bars: Vec<Bar>,
    chart_height: i64,
    runs: Vec<RunRow>,
}

/// Chart geometry, in SVG user units.
const CHART_HEIGHT: i64 = 120;
const BAR_WIDTH: i64 = 24;
const BAR_GAP: i64 = 8;
/// Days the chart shows.
const CHART_DAYS: usize = 14;

fn day_of(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn minute_of(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// The runs' added, updated, skipped and failed per day (UTC), as stacked
/// bars scaled to the busiest day.
fn chart(runs: &[Run], l: Lang) -> Vec<Bar> {
    let mut days: BTreeMap<String, [i64; 4]> = BTreeMap::new();
    for r in runs {
        let d = days.entry(day_of(r.started_at)).or_default();
        for (n, v) in [r.added + r.linked, r.updated, r.skipped, r.failed]
            .into_iter()
            .enumerate()
        {
            d[n] += v;
        }
    }
    let days: Vec<_> = days.into_iter().rev().take(CHART_DAYS).rev().collect();
    let top = days
        .iter()
        .map(|(_, c)| c.iter().sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1);
    days.into_iter()
        .enumerate()
        .map(|(n, (day, counts))| {
            let mut y = CHART_HEIGHT;
            let parts = ["added", "updated", "skipped", "failed"]
                .into_iter()
                .zip(counts)
                .filter(|(_, v)| *v > 0)
                .map(|(class, v)| {
                    let h = (v * CHART_HEIGHT / top).max(1);
                    y -= h;
                    (class, y, h)
                })
                .collect();
            Bar {
                x: n as i64 * (BAR_WIDTH + BAR_GAP),
                title: format!(
                    "{day}: {} {}, {} {}, {} {}, {} {}",
                    l.of("added", "追加"),
                    counts[0],
                    l.of("updated", "更新"),
                    counts[1],
                    l.of("skipped", "スキップ"),
                    counts[2],
                    l.of("failed", "失敗"),
                    counts[3]
                ),
                label: day.get(5..).unwrap_or_default().to_string(),
                parts,
            }
        })
        .collect()
}

/// The org of the app named on one side of a run's direction
/// (`events-to-crm`).
fn org_of_app<'a>(app: &str, from: &'a Org, to: Option<&'a Org>) -> Option<&'a Org> {
    if from.app == app {
        Some(from)
    } else {
        to.filter(|o| o.app == app)
    }
}

fn named(module: &str, id: i64, org: Option<&Org>) -> Named {
    Named {
        text: format!("{module} #{id}"),
        link: org
            .filter(|_| id > 0)
            .map(|o| format!("/orgs/{}/modules/{module}/{id}", o.id)),
    }
}

fn history_item(it: &Item, run: &Run, from: &Org, to: Option<&Org>, l: Lang) -> HistoryItem {
    let (source_app, target_app) = run.direction.split_once("-to-").unwrap_or_default();
    let message = &it.message.0;
    HistoryItem {
        outcome: it.outcome.clone(),
        code: it.code.clone(),
        rule: it.rule.clone().unwrap_or_default(),
        message: l.json_text(message),
        source: named(
            &it.source_module,
            it.source_id,
            org_of_app(source_app, from, to),
        ),
        target: it
            .target_module
            .as_ref()
            .zip(it.target_id)
            .map(|(m, id)| named(m, id, org_of_app(target_app, from, to))),
    }
}

/// Runs the history page shows, with their records not written.
const HISTORY_RUNS: u32 = 20;
/// Runs the chart counts.
const CHART_RUNS: u32 = 1000;

/// An integration: its state and what the viewer may do with it, and its
/// sync history.
pub async fn integration_page(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath(id): UiPath<i64>,
) -> UiResult<Response> {
    let fail = |e| viewer.fail(e);
    let (i, from_role, to_role) = lifecycle::visible(&s.store, &viewer.session.user, id)
        .await
        .map_err(fail)?;
    let from = s.store.org(i.from_org).await.map_err(fail)?;
    let from = from.ok_or_else(|| viewer.fail(Error::not_found("Org", i.from_org)))?;
    let to = match i.to_org {
        Some(t) => s.store.org(t).await.map_err(fail)?,
        None => None,
    };
    let l = viewer.lang;
    let waiting = match i.state() {
        LinkState::Pending => {
            let w = lifecycle::waiting_for_other_side(&s.store, &i)
                .await
                .map_err(fail)?;
            Some(l.refusal(&w))
        }
        _ => None,
    };
    let stopped = i.stopped.as_ref().map(|st| {
        let v = &st.0;
        format!("{} {}", l.json_text(&v["message"]), l.json_text(&v["fix"]))
    });
    let all_runs = s.store.runs(i.id, None, CHART_RUNS).await.map_err(fail)?;
    let mut runs = Vec::new();
    for r in all_runs.iter().take(HISTORY_RUNS as usize) {
        let items = s.store.run_items(r.id, None, 100).await.map_err(fail)?;
        runs.push(RunRow {
            id: r.id,
            started: minute_of(r.started_at),
            direction: r.direction.clone(),
            data_type: r.data_type.clone(),
            state: r.state.clone(),
            counts: [r.added + r.linked, r.updated, r.skipped, r.failed],
            has_failures: r.failed > 0,
            items: items
                .iter()
                .filter(|it| it.outcome == "skipped" || it.outcome == "failed")
                .map(|it| history_item(it, r, &from, to.as_ref(), l))
                .collect(),
        });
    }
    let page = IntegrationPage {
        c: viewer.chrome(),
        id: i.id,
        name: kind_name(&i.kind),
        state_label: state_name(&i.state, l),
        state: i.state.clone(),
        can_enable: to_role == Some(Role::Administrator) || i.state() != LinkState::Pending,
        administrator: from_role == Some(Role::Administrator)
            || to_role == Some(Role::Administrator),
        mappable: kizuna_sync::mapping::sides(&s.store, &i).await.is_ok(),
        bars: chart(&all_runs, l),
        chart_height: CHART_HEIGHT,
        from,
        to,
        waiting,
        stopped,
        runs,
    };
    Ok(render(StatusCode::OK, &page))
}

fn back(id: i64) -> Response {
    Redirect::to(&format!("/integrations/{id}")).into_response()
}

/// Enable, pause, resume or disable (`action` in the form).
pub async fn act(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath(id): UiPath<i64>,
    Form(form): Form<Vec<(String, String)>>,
) -> UiResult<Response> {
    viewer.check_form(&form)?;
    let action = match form_value(&form, "action") {
        Some("enable") => Action::Enable,
        Some("pause") => Action::Pause,
        Some("resume") => Action::Resume,
        Some("disable") => Action::Disable,
        _ => {
            return Err(viewer.fail(Error::bad_request(
                "unknown_action",
                "The action must be enable, pause, resume or disable.",
                "操作は enable、pause、resume、disable のいずれかです。",
            )));
        }
    };
    lifecycle::act(&s.store, &viewer.session.user, id, action)
        .await
        .map_err(|e| viewer.fail(e))?;
    Ok(back(id))
}

/// Runs a sync now.
pub async fn sync_now(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath(id): UiPath<i64>,
    Form(form): Form<Vec<(String, String)>>,
) -> UiResult<Response> {
    viewer.check_form(&form)?;
    let i = lifecycle::administered(&s.store, &viewer.session.user, id)
        .await
        .map_err(|e| viewer.fail(e))?;
    kizuna_sync::mail::sync_any(&s.store, s.options.mail.as_ref(), i.id, Trigger::Api, false)
        .await
        .map_err(|e| viewer.fail(e))?;
    Ok(back(id))
}

/// Sends a run's failed records through again.
pub async fn retry(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath((id, run)): UiPath<(i64, i64)>,
    Form(form): Form<Vec<(String, String)>>,
) -> UiResult<Response> {
    viewer.check_form(&form)?;
    engine::retry(&s.store, &viewer.session.user, id, run)
        .await
        .map_err(|e| viewer.fail(e))?;
    Ok(back(id))
}

struct PreviewRow {
    direction: String,
    data_type: String,
    counts: [i64; 5],
    items: Vec<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "integration_preview.html")]
struct PreviewPage {
    c: Chrome,
    id: i64,
    name: &'static str,
    steps: Vec<PreviewRow>,
    complete: bool,
}

/// The dry run: what a sync would do now, writing nothing.
pub async fn preview(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath(id): UiPath<i64>,
) -> UiResult<Response> {
    let i = lifecycle::administered(&s.store, &viewer.session.user, id)
        .await
        .map_err(|e| viewer.fail(e))?;
    let p = engine::preview(&s.store, i.id)
        .await
        .map_err(|e| viewer.fail(e))?;
    let l = viewer.lang;
    let steps = p
        .steps
        .iter()
        .map(|st| PreviewRow {
            direction: st.direction.to_string(),
            data_type: st.data_type.to_string(),
            counts: [
                st.counts.added,
                st.counts.updated,
                st.counts.linked,
                st.counts.skipped,
                st.counts.failed,
            ],
            items: st
                .items
                .iter()
                .map(|it| {
                    let m = &it.message.0;
                    (
                        it.outcome.clone(),
                        it.rule.clone().unwrap_or_default(),
                        l.json_text(m),
                    )
                })
                .collect(),
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &PreviewPage {
            c: viewer.chrome(),
            id: i.id,
            name: kind_name(&i.kind),
            steps,
            complete: p.complete,
        },
    ))
}

#[derive(Template)]
#[template(path = "integration_delete.html")]
struct DeletePage {
    c: Chrome,
    id: i64,
    name: &'static str,
    message: String,
    mapped_fields: usize,
    settings: String,
    record_associations: i64,
}

/// What deleting removes, before the button that does it (GEN-7).
pub async fn delete_form(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath(id): UiPath<i64>,
) -> UiResult<Response> {
    let (i, d) = lifecycle::deletion(&s.store, &viewer.session.user, id)
        .await
        .map_err(|e| viewer.fail(e))?;
    Ok(render(
        StatusCode::OK,
        &DeletePage {
            c: viewer.chrome(),
            id: i.id,
            name: kind_name(&i.kind),
            message: viewer.lang.text(&d.message),
            mapped_fields: d.mapped_fields,
            settings: d.settings.join(", "),
            record_associations: d.record_associations,
        },
    ))
}

pub async fn delete(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath(id): UiPath<i64>,
    Form(form): Form<Vec<(String, String)>>,
) -> UiResult<Response> {
    viewer.check_form(&form)?;
    let i: Integration = lifecycle::act(&s.store, &viewer.session.user, id, Action::Delete)
        .await
        .map_err(|e: Error| UiError(e, viewer.lang))?;
    Ok(Redirect::to(&format!("/orgs/{}/settings/marketplace", i.from_org)).into_response())
}
