//! Integrations between orgs: set up, enable, pause, resume, disable, delete.

use crate::http::{
    ApiResult, AppState, Body, Caller, OrgAdmin, OrgMember, id, instant, query_needs, query_number,
    query_text,
};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use kizuna_domain::integration::{Action, State as LinkState};
use kizuna_domain::{Error, IntegrationKind};
use kizuna_store::{Integration, Run, Store};
use kizuna_sync::engine::{self, Trigger};
use kizuna_sync::{copy, doctor, lifecycle, mapping};
use serde_json::{Value, json};

/// An integration as the API shows it; a pending one says which side is
/// still missing and who can complete it (GEN-4).
async fn integration_json(store: &Store, i: &Integration) -> Result<Value, Error> {
    let mut v = json!({
        "id": i.id,
        "kind": i.kind,
        "from_org": i.from_org,
        "to_org": i.to_org,
        "state": i.state,
        "created_by": i.created_by,
        "created_at": instant(i.created_at),
        "enabled_by": i.enabled_by,
        "enabled_at": i.enabled_at.map(instant),
        "acting_user": i.acting_user,
        "settings": kizuna_sync::mail::settings::redacted(&i.settings.0),
        "mapping": i.mapping.0,
        "stopped": i.stopped.as_ref().map(|s| s.0.clone()),
        "updated_at": instant(i.updated_at),
    });
    if i.state() == LinkState::Pending {
        let waiting = lifecycle::waiting_for_other_side(store, i).await?;
        v["waiting_for"] = waiting.details["waiting_for"].clone();
        v["message"] = json!(waiting.message);
        v["fix"] = json!(waiting.fix);
    }
    Ok(v)
}

/// Sets up an integration from `from_org`'s side (its administrators only):
/// `{"kind", "from_org", "to_org", "settings"?}`. It stays pending until an
/// administrator of `to_org` enables it.
#[utoipa::path(post, path = "/api/v1/integrations", tag = "integrations", request_body = Value,
    responses((status = 201, description = "The integration, pending"), (status = 403, description = "Not an administrator, or a plan without it"),
        (status = 409, description = "Already integrated")))]
pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let kind = lifecycle::parse_kind(body.str("kind")?)?;
    let from_org = body.i64("from_org")?;
    let to_org = match body.0.get("to_org") {
        None | Some(Value::Null) => None,
        Some(_) => Some(body.i64("to_org")?),
    };
    let settings = body.0.get("settings").cloned().unwrap_or_else(|| json!({}));
    if !settings.is_object() {
        return Err(Error::malformed_json("\"settings\" must be an object").into());
    }
    let i = if kind == IntegrationKind::CrmMail {
        kizuna_sync::mail::connect(
            &s.store,
            s.options.mail()?,
            &caller.0.user,
            from_org,
            &settings,
        )
        .await?
    } else {
        lifecycle::create(&s.store, &caller.0.user, kind, from_org, to_org, &settings).await?
    };
    Ok((
        StatusCode::CREATED,
        Json(integration_json(&s.store, &i).await?),
    ))
}

/// One integration the caller can see (a member of either org).
#[utoipa::path(get, path = "/api/v1/integrations/{id}", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id")),
    responses((status = 200, description = "The integration"), (status = 404, description = "Absent, or not the caller's")))]
pub async fn get(
    State(s): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> ApiResult<Json<Value>> {
    let (i, _, _) = lifecycle::visible(&s.store, &caller.0.user, id("Integration", &raw)?).await?;
    Ok(Json(integration_json(&s.store, &i).await?))
}

/// The integrations an org is on either side of.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/integrations", tag = "integrations",
    params(("org" = i64, Path, description = "Org id")),
    responses((status = 200, description = "{integrations}")))]
pub async fn list_for_org(
    State(s): State<AppState>,
    OrgMember { org, .. }: OrgMember,
) -> ApiResult<Json<Value>> {
    let mut out = Vec::new();
    for i in s.store.integrations_of_org(org.id).await? {
        out.push(integration_json(&s.store, &i).await?);
    }
    Ok(Json(json!({"integrations": out})))
}

async fn act(s: &AppState, caller: &Caller, raw: &str, action: Action) -> ApiResult<Json<Value>> {
    let i = lifecycle::act(&s.store, &caller.0.user, id("Integration", raw)?, action).await?;
    Ok(Json(integration_json(&s.store, &i).await?))
}

/// Enables an integration: the other side completing setup (GEN-4), or
/// switching a disabled one on again (GEN-7).
#[utoipa::path(post, path = "/api/v1/integrations/{id}/enable", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id")),
    responses((status = 200, description = "Active"), (status = 403, description = "Only the other side may enable a pending integration")))]
pub async fn enable(
    State(s): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> ApiResult<Json<Value>> {
    act(&s, &caller, &raw, Action::Enable).await
}

/// Pauses sync; nothing changed meanwhile is missed on resume (GEN-6).
#[utoipa::path(post, path = "/api/v1/integrations/{id}/pause", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id")),
    responses((status = 200, description = "Paused")))]
pub async fn pause(
    State(s): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> ApiResult<Json<Value>> {
    act(&s, &caller, &raw, Action::Pause).await
}

/// Resumes a paused integration from where it stopped (GEN-6).
#[utoipa::path(post, path = "/api/v1/integrations/{id}/resume", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id")),
    responses((status = 200, description = "Active")))]
pub async fn resume(
    State(s): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> ApiResult<Json<Value>> {
    act(&s, &caller, &raw, Action::Resume).await
}

/// Disables an integration: sync stops; mapping, settings and associations
/// are kept, and enabling it again resumes (GEN-7).
#[utoipa::path(post, path = "/api/v1/integrations/{id}/disable", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id")),
    responses((status = 200, description = "Disabled")))]
pub async fn disable(
    State(s): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> ApiResult<Json<Value>> {
    act(&s, &caller, &raw, Action::Disable).await
}

/// The caller (an administrator of either side) takes the integration over:
/// it runs on their behalf from now on — the way out when the user who set it
/// up was deactivated (GEN-10).
#[utoipa::path(post, path = "/api/v1/integrations/{id}/take-over", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id")),
    responses((status = 200, description = "The integration, acting for the caller")))]
pub async fn take_over(
    State(s): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> ApiResult<Json<Value>> {
    let i = lifecycle::take_over(&s.store, &caller.0.user, id("Integration", &raw)?).await?;
    Ok(Json(integration_json(&s.store, &i).await?))
}

/// The mapping, with both modules' fields and the defaults, so that an editor
/// can offer only compatible fields.
#[utoipa::path(get, path = "/api/v1/integrations/{id}/mapping", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id")),
    responses((status = 200, description = "{mapping, defaults, modules: [{module, source, target}]}, and source and target where the kind has one module pair")))]
pub async fn get_mapping(
    State(s): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> ApiResult<Json<Value>> {
    let (i, _, _) = lifecycle::visible(&s.store, &caller.0.user, id("Integration", &raw)?).await?;
    let sides = mapping::sides(&s.store, &i).await?;
    let mut modules = Vec::new();
    for m in &sides.modules {
        let source = s.store.module(sides.source_org, m.source).await?;
        let target = s.store.module(sides.target_org, &m.target).await?;
        modules.push(json!({
            "module": m.name,
            "source": {"org": sides.source_org, "module": source.api_name, "fields": source.fields},
            "target": {"org": sides.target_org, "module": target.api_name, "fields": target.fields},
        }));
    }
    // A kind with one module pair shows it at the top level too.
    let mut body = json!({
        "mapping": i.mapping.0,
        "defaults": mapping::to_json(&sides.defaults),
    });
    if let [only] = &modules[..] {
        body["source"] = only["source"].clone();
        body["target"] = only["target"].clone();
    }
    body["modules"] = json!(modules);
    Ok(Json(body))
}

/// Replaces the mapping (administrators): `{"mapping": [{"source", "target"}, …]}`.
/// An incompatible pair is refused naming both fields and both types (GEN-5).
#[utoipa::path(put, path = "/api/v1/integrations/{id}/mapping", tag = "integrations", request_body = Value,
    params(("id" = i64, Path, description = "Integration id")),
    responses((status = 200, description = "The integration"), (status = 400, description = "An incompatible or unknown field")))]
pub async fn put_mapping(
    State(s): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let pairs = body
        .0
        .get("mapping")
        .ok_or_else(|| Error::malformed_json("the body needs \"mapping\""))?;
    let i = lifecycle::set_mapping(
        &s.store,
        &caller.0.user,
        id("Integration", &raw)?,
        Some(pairs),
    )
    .await?;
    Ok(Json(integration_json(&s.store, &i).await?))
}

/// Resets the mapping to its defaults (administrators); always possible (GEN-5).
#[utoipa::path(post, path = "/api/v1/integrations/{id}/mapping/reset", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id")),
    responses((status = 200, description = "The integration")))]
pub async fn reset_mapping(
    State(s): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> ApiResult<Json<Value>> {
    let i =
        lifecycle::set_mapping(&s.store, &caller.0.user, id("Integration", &raw)?, None).await?;
    Ok(Json(integration_json(&s.store, &i).await?))
}

/// Changes settings (administrators): e.g. `{"target_module": "Contacts"}`
/// (EVT-8). Unknown settings and values are refused, naming the valid ones.
#[utoipa::path(patch, path = "/api/v1/integrations/{id}/settings", tag = "integrations", request_body = Value,
    params(("id" = i64, Path, description = "Integration id")),
    responses((status = 200, description = "The integration"), (status = 400, description = "Unknown setting or value")))]
pub async fn patch_settings(
    State(s): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let (user, id) = (&caller.0.user, id("Integration", &raw)?);
    let i = match s.options.mail.as_ref() {
        Some(ctx) if kizuna_sync::mail::is_mail_id(&s.store, id).await? => {
            kizuna_sync::mail::set_settings(&s.store, ctx, user, id, &body.0).await?
        }
        _ => lifecycle::set_settings(&s.store, user, id, &body.0).await?,
    };
    Ok(Json(integration_json(&s.store, &i).await?))
}

/// Deletes an integration with `?confirm=true`: its mapping, settings and
/// record associations are removed, the records stay (GEN-7). Without
/// `confirm` it answers what would be removed and changes nothing.
#[utoipa::path(delete, path = "/api/v1/integrations/{id}", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id"), ("confirm" = Option<bool>, Query, description = "true to delete")),
    responses((status = 200, description = "Deleted, or what would be removed")))]
pub async fn delete(
    State(s): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let confirmed = params.iter().any(|(k, v)| k == "confirm" && v == "true");
    if confirmed {
        return act(&s, &caller, &raw, Action::Delete).await;
    }
    let (i, d) = lifecycle::deletion(&s.store, &caller.0.user, id("Integration", &raw)?).await?;
    Ok(Json(json!({
        "confirm_required": true,
        "would_remove": {"mapped_fields": d.mapped_fields, "settings": d.settings, "record_associations": d.record_associations},
        "message": d.message,
        "confirm_with": format!("DELETE /api/v1/integrations/{}?confirm=true", i.id),
    })))
}

/// Copies this org's settings — modules on and off, custom fields, fields
/// marked unused, integration mappings — to another org of the same app and
/// plan that the caller also administers: `{"to_org"}` (GEN-11).
#[utoipa::path(post, path = "/api/v1/orgs/{org}/copy-settings", tag = "integrations", request_body = Value,
    params(("org" = i64, Path, description = "Org to copy from")),
    responses((status = 200, description = "What was copied"), (status = 409, description = "Different plans, or an integration not disabled")))]
pub async fn copy_settings(
    State(s): State<AppState>,
    OrgAdmin { org, caller }: OrgAdmin,
    body: Body,
) -> ApiResult<Json<Value>> {
    let copied = copy::copy_settings(&s.store, &caller.0.user, org.id, body.i64("to_org")?).await?;
    Ok(Json(json!({
        "modules_switched": copied.metadata.modules_switched,
        "fields_added": copied.metadata.fields_added,
        "fields_marked": copied.metadata.fields_marked,
        "mappings": copied.mappings,
    })))
}

/// Diagnoses every integration of the org (GEN-12): each finding with its
/// code, rule, cause and fix; `ok` when there is none.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/doctor", tag = "integrations",
    params(("org" = i64, Path, description = "Org id")),
    responses((status = 200, description = "{ok, findings}")))]
pub async fn doctor(
    State(s): State<AppState>,
    OrgMember { org, .. }: OrgMember,
) -> ApiResult<Json<Value>> {
    let mut findings = Vec::new();
    for i in s.store.integrations_of_org(org.id).await? {
        for f in doctor::diagnose(&s.store, &i).await? {
            let mut v = f.to_json()["error"].clone();
            v["integration"] = json!(i.id);
            findings.push(v);
        }
    }
    Ok(Json(
        json!({"org": org.id, "ok": findings.is_empty(), "findings": findings}),
    ))
}

/// A sync run as the API shows it.
fn run_json(r: &Run) -> Value {
    json!({
        "id": r.id,
        "trigger": r.trigger,
        "direction": r.direction,
        "data_type": r.data_type,
        "state": r.state,
        "started_at": instant(r.started_at),
        "finished_at": r.finished_at.map(instant),
        "added": r.added,
        "updated": r.updated,
        "linked": r.linked,
        "deleted": r.deleted,
        "skipped": r.skipped,
        "failed": r.failed,
        "error": r.error.as_ref().map(|e| e.0.clone()),
    })
}

/// Runs a sync now (administrators of either side) and answers with its
/// runs: one per stream, with what each added, updated, linked, deleted,
/// skipped and failed.
#[utoipa::path(post, path = "/api/v1/integrations/{id}/sync", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id"),
        ("allow_deletes" = Option<bool>, Query, description = "true to confirm the deletes the mass-delete guard stopped")),
    responses((status = 200, description = "{runs}"), (status = 409, description = "Not active, or stopped, with the reason")))]
pub async fn sync(
    State(s): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let i = lifecycle::administered(&s.store, &caller.0.user, id("Integration", &raw)?).await?;
    let allow_deletes = params
        .iter()
        .any(|(k, v)| k == "allow_deletes" && v == "true");
    let runs = kizuna_sync::mail::sync_any(
        &s.store,
        s.options.mail.as_ref(),
        i.id,
        Trigger::Api,
        allow_deletes,
    )
    .await?;
    Ok(Json(json!({
        "integration": i.id,
        "runs": runs.iter().map(run_json).collect::<Vec<_>>(),
    })))
}

/// Invites CRM Leads and Contacts to the event of a Campaign (EVT-14), as
/// members of the CRM org: `{"campaign": id, "records": [id, …]}`. Each
/// person becomes an attendee linked to their record; those who cannot be
/// invited are listed with the reason.
#[utoipa::path(post, path = "/api/v1/integrations/{id}/invite", tag = "integrations", request_body = Value,
    params(("id" = i64, Path, description = "Integration id")),
    responses((status = 200, description = "{campaign, event, invited, not_invited}"),
        (status = 404, description = "A record that is not a Lead or Contact of the CRM org"),
        (status = 409, description = "The Campaign is not an event of the integration, or the integration is not running")))]
pub async fn invite(
    State(s): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let campaign = body
        .0
        .get("campaign")
        .and_then(Value::as_i64)
        .ok_or_else(|| Error::malformed_json("\"campaign\" must be a Campaign id"))?;
    let records = body
        .0
        .get("records")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(Value::as_i64).collect::<Option<Vec<i64>>>())
        .ok_or_else(|| {
            Error::malformed_json("\"records\" must be an array of Lead or Contact ids")
        })?;
    let done = engine::invite(
        &s.store,
        &caller.0.user,
        id("Integration", &raw)?,
        campaign,
        &records,
    )
    .await?;
    Ok(Json(json!(done)))
}

/// A dry run: what a sync would add, update, link to an existing record,
/// delete, skip and fail, with the reasons; writes nothing.
#[utoipa::path(post, path = "/api/v1/integrations/{id}/preview", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id")),
    responses((status = 200, description = "{steps, complete}")))]
pub async fn preview(
    State(s): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> ApiResult<Json<Value>> {
    let i = lifecycle::administered(&s.store, &caller.0.user, id("Integration", &raw)?).await?;
    let preview = engine::preview(&s.store, i.id).await?;
    Ok(Json(json!({"integration": i.id, "preview": preview})))
}

/// Items shown with each run in the history; the rest are paged through
/// `…/history/{run}/items`.
const ITEMS_PER_RUN: u32 = 100;

/// The sync history (members of either side), newest run first: each run
/// with its counts and the records it skipped, failed, linked or held in
/// conflict, with the reason code, rule and the records involved (GEN-8).
#[utoipa::path(get, path = "/api/v1/integrations/{id}/history", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id"),
        ("before" = Option<i64>, Query, description = "Runs older than this run id"),
        ("limit" = Option<i64>, Query, description = "Runs per page, 1–100")),
    responses((status = 200, description = "{runs, next_before}")))]
pub async fn history(
    State(s): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let (i, _from, _to) =
        lifecycle::visible(&s.store, &caller.0.user, id("Integration", &raw)?).await?;
    let before = query_number(&params, "before", 1..=i64::MAX)?;
    let limit = query_number(&params, "limit", 1..=100)?.unwrap_or(20);
    let runs = s.store.runs(i.id, before, limit as u32).await?;
    let mut out = Vec::with_capacity(runs.len());
    for r in &runs {
        let items = s.store.run_items(r.id, None, ITEMS_PER_RUN).await?;
        let mut v = run_json(r);
        v["items"] = json!(items);
        v["items_more"] = json!(items.len() as u32 == ITEMS_PER_RUN);
        out.push(v);
    }
    let next = (runs.len() as i64 == limit)
        .then(|| runs.last().map(|r| r.id))
        .flatten();
    Ok(Json(
        json!({"integration": i.id, "runs": out, "next_before": next}),
    ))
}

/// Sends a run's failed records through again (administrators), once their
/// cause is mended: they are read again and a sync runs at once (GEN-8).
#[utoipa::path(post, path = "/api/v1/integrations/{id}/history/{run}/retry", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id"), ("run" = i64, Path, description = "Run id")),
    responses((status = 200, description = "{resent, runs}")))]
pub async fn retry(
    State(s): State<AppState>,
    caller: Caller,
    Path((raw, raw_run)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let done = engine::retry(
        &s.store,
        &caller.0.user,
        id("Integration", &raw)?,
        id("Run", &raw_run)?,
    )
    .await?;
    Ok(Json(json!({
        "resent": done.resent,
        "runs": done.runs.iter().map(run_json).collect::<Vec<_>>(),
    })))
}

/// The conflicts held for a person to decide (policy `hold`): each linked
/// pair's field with the base and both sides' values (DSK-13).
#[utoipa::path(get, path = "/api/v1/integrations/{id}/conflicts", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id"),
        ("after" = Option<i64>, Query, description = "Conflicts after this id")),
    responses((status = 200, description = "{conflicts}")))]
pub async fn conflicts(
    State(s): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let after = query_number(&params, "after", 0..=i64::MAX)?.unwrap_or(0);
    let held = engine::decide::held(
        &s.store,
        &caller.0.user,
        id("Integration", &raw)?,
        after,
        1000,
    )
    .await?;
    Ok(Json(json!({"conflicts": held})))
}

/// Decides a held conflict (administrators): `{"take": "crm" | "desk" |
/// "events"}`. The chosen side's value is written on the other side by a
/// sync that runs at once; its runs are returned.
#[utoipa::path(post, path = "/api/v1/integrations/{id}/conflicts/{conflict}/decide", tag = "integrations", request_body = Value,
    params(("id" = i64, Path, description = "Integration id"), ("conflict" = i64, Path, description = "Held conflict id")),
    responses((status = 200, description = "{runs}"), (status = 404, description = "No such held conflict")))]
pub async fn decide(
    State(s): State<AppState>,
    caller: Caller,
    Path((raw, raw_conflict)): Path<(String, String)>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let take = engine::decide::Take::parse(body.0.get("take").unwrap_or(&Value::Null))?;
    let runs = engine::decide::decide(
        &s.store,
        &caller.0.user,
        id("Integration", &raw)?,
        id("Conflict", &raw_conflict)?,
        take,
    )
    .await?;
    Ok(Json(
        json!({"runs": runs.iter().map(run_json).collect::<Vec<_>>()}),
    ))
}

/// The items of one run, in order, after item `after` (its `id`).
#[utoipa::path(get, path = "/api/v1/integrations/{id}/history/{run}/items", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id"), ("run" = i64, Path, description = "Run id"),
        ("after" = Option<i64>, Query, description = "Items after this item id")),
    responses((status = 200, description = "{items, next_after}")))]
pub async fn run_items(
    State(s): State<AppState>,
    caller: Caller,
    Path((raw, raw_run)): Path<(String, String)>,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let (i, _from, _to) =
        lifecycle::visible(&s.store, &caller.0.user, id("Integration", &raw)?).await?;
    let run = s
        .store
        .run(id("Run", &raw_run)?)
        .await?
        .filter(|r| r.integration_id == i.id)
        .ok_or_else(|| Error::not_found("Run", &raw_run))?;
    let after = query_number(&params, "after", 0..=i64::MAX)?;
    let limit = 500;
    let items = s.store.run_items(run.id, after, limit).await?;
    let next = (items.len() as u32 == limit)
        .then(|| items.last().map(|it| it.id))
        .flatten();
    let list: Vec<Value> = items
        .iter()
        .map(|it| {
            let mut v = json!(it);
            v["id"] = json!(it.id);
            v
        })
        .collect();
    Ok(Json(
        json!({"run": run.id, "items": list, "next_after": next}),
    ))
}

/// The largest file an upload may be (it is spooled to disk, not memory).
const UPLOAD_LIMIT: u64 = 1024 * 1024 * 1024;

/// Imports a file a mail client exported into a mail connection (its owner
/// or an administrator), by the rules and into the history of a sync: the
/// request body is the file, `?name=` its file name, whose extension says
/// its kind (`.vcf`, `.ics`, `.csv`, `.eml`, `.mbox`). Answers with the run:
/// added, updated, linked, skipped, failed.
#[utoipa::path(post, path = "/api/v1/integrations/{id}/import", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id (a crm-mail connection)"),
        ("name" = String, Query, description = "The file's name, e.g. contacts.vcf")),
    request_body(content = String, content_type = "application/octet-stream", description = "The file"),
    responses((status = 200, description = "{run}"), (status = 400, description = "Not a mail connection, or a file kind that is not imported"),
        (status = 413, description = "Larger than 1 GiB")))]
pub async fn import_file(
    State(s): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
    body: axum::body::Body,
) -> ApiResult<Json<Value>> {
    let i = lifecycle::administered(&s.store, &caller.0.user, id("Integration", &raw)?).await?;
    let name = query_text(&params, "name").ok_or_else(|| {
        query_needs(
            "name",
            "the file's name, e.g. ?name=contacts.vcf (its extension says its kind)",
            "ファイル名（例: ?name=contacts.vcf。拡張子で種類を判断します）",
        )
    })?;
    let file = spool(body, UPLOAD_LIMIT).await?;
    let run = kizuna_sync::mail::import::import_file(&s.store, &i, name, file, &mut |_| {}).await?;
    Ok(Json(json!({"integration": i.id, "run": run_json(&run)})))
}

/// Writes a request body to a temporary file, refusing it past `limit`.
async fn spool(body: axum::body::Body, limit: u64) -> Result<std::fs::File, Error> {
    use http_body_util::BodyExt;
    use std::io::{Seek, Write};
    let io = |e: std::io::Error| Error::internal(format!("spooling the upload: {e}"));
    let mut file = tempfile::tempfile().map_err(io)?;
    let mut body = body;
    let mut size = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            Error::bad_request(
                "upload_broken",
                format!("The upload broke off before its end ({e}); nothing was imported."),
                format!("アップロードが途中で切れました（{e}）。何も取り込まれていません。"),
            )
        })?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        size += chunk.len() as u64;
        if size > limit {
            return Err(Error::payload_too_large(limit as usize));
        }
        file.write_all(&chunk).map_err(io)?;
    }
    file.rewind().map_err(io)?;
    Ok(file)
}

/// Adds one e-mail (the request body, as a `.eml` holds it) to the CRM
/// through a mail connection (MAIL-11): to the record `?record=Contacts:ID`
/// (or `Leads:`, `Deals:`) a person picked, else to its correspondent's
/// Contact, else as the connection's `unmatched_email` setting says; with
/// `?as=case`, as a Case of the Contact who sent it (MAIL-10). Added twice,
/// it is there once (by Message-ID).
#[utoipa::path(post, path = "/api/v1/integrations/{id}/emails", tag = "integrations",
    params(("id" = i64, Path, description = "Integration id (a crm-mail connection)"),
        ("record" = Option<String>, Query, description = "Contacts:ID, Leads:ID or Deals:ID"),
        ("as" = Option<String>, Query, description = "case: make it a Case (MAIL-10)"),
        ("imap" = Option<String>, Query, description = "A folder of the connection's IMAP mailbox to pick the message from, with uid"),
        ("uid" = Option<u32>, Query, description = "The picked message's UID")),
    request_body(content = String, content_type = "message/rfc822", description = "The e-mail (none when picked from IMAP)"),
    responses((status = 200, description = "{run}"), (status = 409, description = "As a Case: no Contact has the sender's address (MAIL-10)"),
        (status = 413, description = "Larger than 25 MiB")))]
pub async fn add_email(
    State(s): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
    body: axum::body::Body,
) -> ApiResult<Json<Value>> {
    use kizuna_sync::mail::emails;
    let i = lifecycle::administered(&s.store, &caller.0.user, id("Integration", &raw)?).await?;
    let param = |k: &str| query_text(&params, k);
    let to = emails::Destination::parse(param("record"), param("as"))?;
    if let Some(folder) = param("imap") {
        let uid = query_number(&params, "uid", 1..=i64::from(u32::MAX))?.ok_or_else(|| {
            query_needs(
                "uid",
                "the UID of the message picked with ?imap=FOLDER, e.g. &uid=42",
                "?imap=FOLDER で選ぶメッセージの UID（例: &uid=42）",
            )
        })?;
        let run = kizuna_sync::mail::imap::add_picked(
            &s.store,
            s.options.mail()?,
            &i,
            folder,
            uid as u32,
            &to,
        )
        .await?;
        return Ok(Json(json!({"integration": i.id, "run": run_json(&run)})));
    }
    let mut file = spool(body, emails::MAX_MESSAGE_BYTES as u64).await?;
    let mut message = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut message)
        .map_err(|e| Error::internal(format!("reading the spooled upload: {e}")))?;
    let run = emails::add_message(
        &s.store,
        &i,
        Trigger::Api,
        &to,
        &message,
        json!({"upload": true}),
    )
    .await?;
    Ok(Json(json!({"integration": i.id, "run": run_json(&run)})))
}

/// Sends a message through the connection's own SMTP server and keeps it in
/// the CRM as a Sent e-mail (MAIL-11): `{"to": [..], "cc": [..], "subject",
/// "body", "record": "Contacts:12"}` — with the record given, or its
/// recipients' Contact.
#[utoipa::path(post, path = "/api/v1/integrations/{id}/send", tag = "integrations", request_body = Value,
    params(("id" = i64, Path, description = "Integration id (a crm-mail connection)")),
    responses((status = 200, description = "{run}"), (status = 400, description = "No SMTP server set, or a bad address"),
        (status = 502, description = "The SMTP server did not take it; nothing was recorded")))]
pub async fn send_email(
    State(s): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let i = lifecycle::administered(&s.store, &caller.0.user, id("Integration", &raw)?).await?;
    let run = kizuna_sync::mail::emails::send(&s.store, s.options.mail()?, &i, &body.0).await?;
    Ok(Json(json!({"integration": i.id, "run": run_json(&run)})))
}
