//! Who am I, orgs, members, plans and Desk departments.

use crate::http::{
    ApiResult, AppState, Body, Caller, OrgAdmin, OrgMember, id, instant, query_number,
};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use kizuna_apps::admin;
use kizuna_domain::{App, Error, Role, Text};
use kizuna_store::{Member, Org};
use serde_json::{Value, json};

pub fn org_json(org: &Org, role: Option<Role>) -> Value {
    json!({
        "id": org.id,
        "app": org.app,
        "name": org.name,
        "plan": org.plan,
        "currency": org.currency,
        "created_by": org.created_by,
        "created_at": instant(org.created_at),
        "role": role.map(Role::as_str),
    })
}

fn member_json(m: &Member) -> Value {
    json!({
        "user_id": m.user_id,
        "email": m.email,
        "name": m.name,
        "active": m.active,
        "role": m.role,
        "added_at": instant(m.added_at),
    })
}

/// The caller: their user and every org they belong to, with their role.
#[utoipa::path(get, path = "/api/v1/me", tag = "identity",
    responses((status = 200, description = "The caller and their orgs"), (status = 401, description = "No valid key")))]
pub async fn me(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let orgs = s.store.orgs_of_user(caller.user_id()).await?;
    let user = &caller.0.user;
    Ok(Json(json!({
        "user": {"id": user.id, "email": user.email, "name": user.name, "active": user.active},
        "orgs": orgs.iter().map(|(o, r)| org_json(o, Some(*r))).collect::<Vec<_>>(),
    })))
}

/// The caller's API keys (never the keys themselves: they are shown once).
#[utoipa::path(get, path = "/api/v1/me/keys", tag = "identity",
    responses((status = 200, description = "{keys: [{id, prefix, created_at, revoked_at}]}")))]
pub async fn list_keys(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let keys = s.store.api_keys(caller.user_id()).await?;
    Ok(Json(json!({"keys": keys.iter().map(|k| json!({
        "id": k.id, "prefix": k.prefix, "created_at": instant(k.created_at),
        "revoked_at": k.revoked_at.map(instant),
    })).collect::<Vec<_>>()})))
}

/// Revokes one of the caller's API keys; it is refused from then on.
#[utoipa::path(delete, path = "/api/v1/me/keys/{key}", tag = "identity",
    params(("key" = i64, Path, description = "Key id")),
    responses((status = 200, description = "Revoked"), (status = 404, description = "Not one of the caller's live keys")))]
pub async fn revoke_key(
    State(s): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
) -> ApiResult<Json<Value>> {
    let key = id("API key", &key)?;
    s.store.revoke_api_key(caller.user_id(), key).await?;
    Ok(Json(json!({"id": key, "revoked": true})))
}

/// The orgs the caller is a member of.
#[utoipa::path(get, path = "/api/v1/orgs", tag = "orgs",
    responses((status = 200, description = "The caller's orgs")))]
pub async fn list_orgs(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let orgs = s.store.orgs_of_user(caller.user_id()).await?;
    Ok(Json(json!({
        "orgs": orgs.iter().map(|(o, r)| org_json(o, Some(*r))).collect::<Vec<_>>(),
    })))
}

/// Creates an org of an app, with the caller as its administrator:
/// `{"app", "name", "plan"}`.
#[utoipa::path(post, path = "/api/v1/orgs", tag = "orgs", request_body = Value,
    responses((status = 201, description = "The new org"), (status = 400, description = "Unknown app or plan")))]
pub async fn create_org(
    State(s): State<AppState>,
    caller: Caller,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let app = App::parse(body.str("app")?)?;
    let plan = body.0.get("plan").and_then(Value::as_str).unwrap_or("free");
    let org = admin::create_org(&s.store, app, body.str("name")?, plan, &caller.0.user).await?;
    Ok((
        StatusCode::CREATED,
        Json(org_json(&org, Some(Role::Administrator))),
    ))
}

/// One org of the caller's, with its plan history.
#[utoipa::path(get, path = "/api/v1/orgs/{org}", tag = "orgs",
    params(("org" = i64, Path, description = "Org id")),
    responses((status = 200, description = "The org"), (status = 404, description = "Absent, or not the caller's")))]
pub async fn get_org(
    State(s): State<AppState>,
    OrgMember { org, role, .. }: OrgMember,
) -> ApiResult<Json<Value>> {
    let mut v = org_json(&org, Some(role));
    v["plan_changes"] = json!(s.store.plan_changes(org.id).await?.iter().map(|c| json!({
        "from_plan": c.from_plan, "to_plan": c.to_plan, "changed_by": c.changed_by, "changed_at": instant(c.changed_at),
    })).collect::<Vec<_>>());
    Ok(Json(v))
}

/// Changes an org's plan or currency (administrators): `{"plan"?, "currency"?}`.
#[utoipa::path(patch, path = "/api/v1/orgs/{org}", tag = "orgs", request_body = Value,
    params(("org" = i64, Path, description = "Org id")),
    responses((status = 200, description = "The org"), (status = 403, description = "Not an administrator")))]
pub async fn patch_org(
    State(s): State<AppState>,
    OrgAdmin { mut org, caller }: OrgAdmin,
    body: Body,
) -> ApiResult<Json<Value>> {
    // Check every member before changing anything: bad input changes nothing.
    let plan = body
        .0
        .get("plan")
        .map(|p| {
            p.as_str()
                .ok_or_else(|| Error::malformed_json("\"plan\" must be a string"))
        })
        .transpose()?;
    if let Some(plan) = plan {
        org.app()?.check_plan(plan)?;
    }
    let currency = match body.0.get("currency") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(c)) => Some(Some(c.as_str())),
        Some(_) => {
            return Err(Error::malformed_json("\"currency\" must be a string or null").into());
        }
    };
    if let Some(c) = currency {
        kizuna_sync::lifecycle::set_currency(&s.store, &org, c).await?;
    }
    if let Some(plan) = plan {
        org = kizuna_sync::lifecycle::change_plan(&s.store, &org, plan, caller.user_id()).await?;
    }
    let org = s
        .store
        .org(org.id)
        .await?
        .ok_or_else(|| Error::not_found("Org", org.id))?;
    Ok(Json(org_json(&org, Some(Role::Administrator))))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members", tag = "orgs",
    params(("org" = i64, Path, description = "Org id")),
    responses((status = 200, description = "The org's members")))]
pub async fn list_members(
    State(s): State<AppState>,
    OrgMember { org, .. }: OrgMember,
) -> ApiResult<Json<Value>> {
    let members = s.store.members(org.id).await?;
    Ok(Json(
        json!({"members": members.iter().map(member_json).collect::<Vec<_>>()}),
    ))
}

/// Adds an existing user to the org (administrators): `{"email", "role"}`.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/members", tag = "orgs", request_body = Value,
    params(("org" = i64, Path, description = "Org id")),
    responses((status = 201, description = "Added"), (status = 409, description = "Already a member")))]
pub async fn add_member(
    State(s): State<AppState>,
    OrgAdmin { org, .. }: OrgAdmin,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let role = Role::parse(
        body.0
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or("member"),
    )?;
    let user = s.store.require_user_by_email(body.str("email")?).await?;
    s.store.add_member(org.id, user.id, role).await?;
    let members = s.store.members(org.id).await?;
    let m = members
        .iter()
        .find(|m| m.user_id == user.id)
        .ok_or_else(|| Error::not_found("Member", user.id))?;
    Ok((StatusCode::CREATED, Json(member_json(m))))
}

/// Changes a member's role (administrators): `{"role"}`.
#[utoipa::path(patch, path = "/api/v1/orgs/{org}/members/{user}", tag = "orgs", request_body = Value,
    params(("org" = i64, Path, description = "Org id"), ("user" = i64, Path, description = "User id")),
    responses((status = 200, description = "Changed"), (status = 409, description = "Last administrator")))]
pub async fn patch_member(
    State(s): State<AppState>,
    OrgAdmin { org, .. }: OrgAdmin,
    Path((_org, user)): Path<(String, String)>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let user = id("Member", &user)?;
    let role = Role::parse(body.str("role")?)?;
    s.store.set_member_role(org.id, user, role).await?;
    let members = s.store.members(org.id).await?;
    let m = members
        .iter()
        .find(|m| m.user_id == user)
        .ok_or_else(|| Error::not_found("Member", user))?;
    Ok(Json(member_json(m)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/departments", tag = "orgs",
    params(("org" = i64, Path, description = "Org id")),
    responses((status = 200, description = "Departments with their members")))]
pub async fn list_departments(
    State(s): State<AppState>,
    OrgMember { org, .. }: OrgMember,
) -> ApiResult<Json<Value>> {
    let mut out = Vec::new();
    for d in s.store.departments(org.id).await? {
        let members = s.store.department_members(d.id).await?;
        out.push(json!({"id": d.id, "name": d.name, "members": members, "created_at": instant(d.created_at)}));
    }
    Ok(Json(json!({"departments": out})))
}

/// Creates a department (administrators): `{"name"}`.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/departments", tag = "orgs", request_body = Value,
    params(("org" = i64, Path, description = "Org id")),
    responses((status = 201, description = "Created")))]
pub async fn create_department(
    State(s): State<AppState>,
    OrgAdmin { org, .. }: OrgAdmin,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let d = s.store.create_department(org.id, body.str("name")?).await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"id": d.id, "name": d.name, "members": [], "created_at": instant(d.created_at)}),
        ),
    ))
}

/// Adds an org member to a department (administrators): `{"user_id"}`.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/departments/{department}/members", tag = "orgs", request_body = Value,
    params(("org" = i64, Path, description = "Org id"), ("department" = i64, Path, description = "Department id")),
    responses((status = 200, description = "The department's members")))]
pub async fn add_department_member(
    State(s): State<AppState>,
    OrgAdmin { org, .. }: OrgAdmin,
    Path((_org, department)): Path<(String, String)>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let department = id("Department", &department)?;
    let user = body
        .0
        .get("user_id")
        .and_then(Value::as_i64)
        .ok_or_else(|| Error::malformed_json("the body needs a number \"user_id\""))?;
    s.store
        .add_department_member(org.id, department, user)
        .await?;
    Ok(Json(
        json!({"id": department, "members": s.store.department_members(department).await?}),
    ))
}

/// Mail to the org's administrators about what needs their attention
/// (GEN-9), newest first, with each message's delivery: queued, sending,
/// sent, or failed (with the SMTP server's last answer).
#[utoipa::path(get, path = "/api/v1/orgs/{org}/outbox", tag = "orgs",
    params(("org" = i64, Path, description = "Org id"),
        ("before" = Option<i64>, Query, description = "Messages older than this message id"),
        ("limit" = Option<i64>, Query, description = "Messages per page, 1–100")),
    responses((status = 200, description = "{delivery, messages, next_before}"),
        (status = 403, description = "Not an administrator of the org")))]
pub async fn outbox(
    State(s): State<AppState>,
    OrgAdmin { org, .. }: OrgAdmin,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let before = query_number(&params, "before", 1..=i64::MAX)?;
    let limit = query_number(&params, "limit", 1..=100)?.unwrap_or(50);
    let mails = s.store.outbox(org.id, before, limit).await?;
    let next = (mails.len() as i64 == limit)
        .then(|| mails.last().map(|m| m.id))
        .flatten();
    let note = match &s.options.smtp {
        Some(server) => Text::new(
            format!("Messages are sent through {server}."),
            format!("メッセージは {server} 経由で送信されます。"),
        ),
        None => Text::new(
            "No SMTP server is configured: messages are kept here and not sent. Start the server with --smtp-url to send them.",
            "SMTP サーバーが設定されていないため、メッセージはここに保存され送信されません。送信するには --smtp-url を指定してサーバーを起動してください。",
        ),
    };
    let messages: Vec<Value> = mails
        .iter()
        .map(|m| {
            let mut v = json!(m);
            v["created_at"] = json!(instant(m.created_at));
            v["sent_at"] = json!(m.sent_at.map(instant));
            v
        })
        .collect();
    Ok(Json(json!({
        "org": org.id,
        "delivery": {"smtp": s.options.smtp, "note": note},
        "messages": messages,
        "next_before": next,
    })))
}
