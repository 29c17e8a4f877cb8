//! Modules, fields, records, related lists, the recycle bin and the change log.

use crate::http::{
    ApiResult, AppState, BearerKey, Body, OrgAdmin, OrgMember, RecordView, id, instant,
    query_number, record_json,
};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kizuna_apps::{admin, records};
use kizuna_domain::field::FieldDef;
use kizuna_domain::{Error, ModuleDef};
use kizuna_store::FieldChange;
use kizuna_sync::desk_tickets::{self, DESK_TICKETS};
use serde_json::{Value, json};

fn module_json(m: &ModuleDef) -> Value {
    json!({
        "api_name": m.api_name,
        "label": m.label,
        "label_ja": m.label_ja,
        "enabled": m.enabled,
        "fields": m.fields,
    })
}

/// The org's modules with their fields.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/modules", tag = "modules",
    params(("org" = i64, Path, description = "Org id")),
    responses((status = 200, description = "Modules and fields")))]
pub async fn list_modules(
    State(s): State<AppState>,
    OrgMember { org, .. }: OrgMember,
) -> ApiResult<Json<Value>> {
    let modules = s.store.modules(org.id).await?;
    Ok(Json(
        json!({"modules": modules.iter().map(module_json).collect::<Vec<_>>()}),
    ))
}

/// Adds a custom module (administrators): `{"api_name", "label"?,
/// "label_ja"?, "fields"?: [field, …]}`, each field as for `…/fields`.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/modules", tag = "modules", request_body = Value,
    params(("org" = i64, Path, description = "Org id")),
    responses((status = 201, description = "The new module"), (status = 409, description = "Exists already")))]
pub async fn add_module(
    State(s): State<AppState>,
    OrgAdmin { org, .. }: OrgAdmin,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let text = |k: &str| {
        body.0
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let fields: Vec<FieldDef> = match body.0.get("fields") {
        None => Vec::new(),
        Some(v) => {
            serde_json::from_value(v.clone()).map_err(|e| Error::malformed_json(&e.to_string()))?
        }
    };
    let module = ModuleDef {
        api_name: body.str("api_name")?.to_string(),
        label: text("label"),
        label_ja: text("label_ja"),
        enabled: true,
        fields,
    };
    let module = admin::add_custom_module(&s.store, org.id, module).await?;
    Ok((StatusCode::CREATED, Json(module_json(&module))))
}

/// Enables or disables a module (administrators): `{"enabled": bool}`.
#[utoipa::path(patch, path = "/api/v1/orgs/{org}/modules/{module}", tag = "modules", request_body = Value,
    params(("org" = i64, Path, description = "Org id"), ("module" = String, Path, description = "Module API name")),
    responses((status = 200, description = "The module")))]
pub async fn patch_module(
    State(s): State<AppState>,
    OrgAdmin { org, .. }: OrgAdmin,
    Path((_org, module)): Path<(String, String)>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let enabled = body
        .0
        .get("enabled")
        .and_then(Value::as_bool)
        .ok_or_else(|| Error::malformed_json("the body needs a boolean \"enabled\""))?;
    s.store.set_module_enabled(org.id, &module, enabled).await?;
    Ok(Json(module_json(&s.store.module(org.id, &module).await?)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/modules/{module}/fields", tag = "modules",
    params(("org" = i64, Path, description = "Org id"), ("module" = String, Path, description = "Module API name")),
    responses((status = 200, description = "The module's fields")))]
pub async fn list_fields(
    State(s): State<AppState>,
    OrgMember { org, .. }: OrgMember,
    Path((_org, module)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let m = s.store.module(org.id, &module).await?;
    Ok(Json(json!({"fields": m.fields})))
}

/// Adds a custom field (administrators): `{"api_name", "label", "type",
/// "max_length"?, "required"?, "unique"?, "picklist"?, "lookup_module"?}`.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/modules/{module}/fields", tag = "modules", request_body = Value,
    params(("org" = i64, Path, description = "Org id"), ("module" = String, Path, description = "Module API name")),
    responses((status = 201, description = "The new field"), (status = 409, description = "Exists already")))]
pub async fn add_field(
    State(s): State<AppState>,
    OrgAdmin { org, .. }: OrgAdmin,
    Path((_org, module)): Path<(String, String)>,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let field: FieldDef =
        serde_json::from_value(body.0).map_err(|e| Error::malformed_json(&e.to_string()))?;
    let field = admin::add_custom_field(&s.store, org.id, &module, field).await?;
    Ok((StatusCode::CREATED, Json(json!(field))))
}

/// What `PATCH …/fields/{field}` may change.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldPatch {
    in_use: Option<bool>,
    sortable: Option<bool>,
    label: Option<String>,
    label_ja: Option<String>,
}

/// Changes a field (administrators): `{"in_use"?: bool, "sortable"?: bool,
/// "label"?: string, "label_ja"?: string}`. Making a field sortable builds
/// its index first: on a module of a million records, seconds.
#[utoipa::path(patch, path = "/api/v1/orgs/{org}/modules/{module}/fields/{field}", tag = "modules", request_body = Value,
    params(("org" = i64, Path, description = "Org id"), ("module" = String, Path, description = "Module API name"), ("field" = String, Path, description = "Field API name")),
    responses((status = 200, description = "The module's fields")))]
pub async fn patch_field(
    State(s): State<AppState>,
    OrgAdmin { org, .. }: OrgAdmin,
    Path((_org, module, field)): Path<(String, String, String)>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let patch: FieldPatch =
        serde_json::from_value(body.0).map_err(|e| Error::malformed_json(&e.to_string()))?;
    let change = FieldChange {
        in_use: patch.in_use,
        sortable: patch.sortable,
        label: patch.label.as_deref(),
        label_ja: patch.label_ja.as_deref(),
    };
    if (
        change.in_use,
        change.sortable,
        change.label,
        change.label_ja,
    ) == (None, None, None, None)
    {
        return Err(Error::malformed_json(
            "the body needs \"in_use\", \"sortable\", \"label\" or \"label_ja\"",
        )
        .into());
    }
    s.store
        .change_field(org.id, &module, &field, &change)
        .await?;
    Ok(Json(
        json!({"fields": s.store.module(org.id, &module).await?.fields}),
    ))
}

/// A page of records: `?limit=&cursor=&sort=&order=` and `Field=value` filters.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/modules/{module}/records", tag = "records",
    params(("org" = i64, Path, description = "Org id"), ("module" = String, Path, description = "Module API name"),
        ("limit" = Option<u32>, Query, description = "1..1000, default 50"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("sort" = Option<String>, Query, description = "A sortable field's API name, or id"), ("order" = Option<String>, Query, description = "asc or desc")),
    responses((status = 200, description = "{records, next_cursor}")))]
pub async fn list_records(
    State(s): State<AppState>,
    OrgMember { org, .. }: OrgMember,
    Path((_org, module)): Path<(String, String)>,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let page = records::list(&s.store, &org, &module, &params).await?;
    Ok(Json(json!({
        "records": page.records.iter().map(record_json).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })))
}

/// Creates a record: `{"fields": {…}}`; or several: `{"records": [{"fields": …}, …]}`.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/modules/{module}/records", tag = "records", request_body = Value,
    params(("org" = i64, Path, description = "Org id"), ("module" = String, Path, description = "Module API name")),
    responses((status = 201, description = "The record(s)"), (status = 400, description = "Invalid values; nothing written")))]
pub async fn create_record(
    State(s): State<AppState>,
    OrgMember { org, caller, .. }: OrgMember,
    Path((_org, module)): Path<(String, String)>,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if let Some(batch) = body.0.get("records") {
        let rows = batch
            .as_array()
            .ok_or_else(|| Error::malformed_json("\"records\" must be an array"))?
            .iter()
            .map(|r| records::fields_of(r).cloned())
            .collect::<Result<Vec<_>, _>>()?;
        let created = records::create_many(&s.store, &org, &module, &rows, caller.origin()).await?;
        return Ok((
            StatusCode::CREATED,
            Json(json!({"records": created.iter().map(record_json).collect::<Vec<_>>()})),
        ));
    }
    let fields = records::fields_of(&body.0)?;
    let r = records::create(&s.store, &org, &module, fields, caller.origin()).await?;
    Ok((StatusCode::CREATED, Json(record_json(&r))))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/modules/{module}/records/{id}", tag = "records",
    params(("org" = i64, Path, description = "Org id"), ("module" = String, Path, description = "Module API name"), ("id" = i64, Path, description = "Record id")),
    responses((status = 200, description = "The record"), (status = 404, description = "Absent, deleted, or not the caller's")))]
pub async fn get_record(
    State(s): State<AppState>,
    BearerKey(key): BearerKey,
    Path((org, module, rid)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let org = id("Org", &org)?;
    let rid = match id(&module, &rid) {
        Ok(rid) => rid,
        // As on every route: a refused key is 401 before a junk id is 404.
        Err(e) => {
            s.store.authenticate_key(&key).await?;
            return Err(e.into());
        }
    };
    let r = records::get_raw_by_key(&s.store, &key, org, &module, rid).await?;
    Ok(Json(RecordView::of(&r)).into_response())
}

/// Changes fields: `{"fields": {…}, "version"?}`; `null` clears a field, and a
/// `version` that is no longer current is refused with 409.
#[utoipa::path(patch, path = "/api/v1/orgs/{org}/modules/{module}/records/{id}", tag = "records", request_body = Value,
    params(("org" = i64, Path, description = "Org id"), ("module" = String, Path, description = "Module API name"), ("id" = i64, Path, description = "Record id")),
    responses((status = 200, description = "The record"), (status = 409, description = "Version conflict")))]
pub async fn patch_record(
    State(s): State<AppState>,
    OrgMember { org, caller, .. }: OrgMember,
    Path((_org, module, rid)): Path<(String, String, String)>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let rid = id(&module, &rid)?;
    let fields = records::fields_of(&body.0)?;
    let version = match body.0.get("version") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .ok_or_else(|| Error::malformed_json("\"version\" must be a whole number"))?,
        ),
    };
    let r = records::update(
        &s.store,
        &org,
        &module,
        rid,
        fields,
        version,
        caller.origin(),
    )
    .await?;
    Ok(Json(record_json(&r)))
}

/// Moves a record to the recycle bin, where it stays 30 days.
#[utoipa::path(delete, path = "/api/v1/orgs/{org}/modules/{module}/records/{id}", tag = "records",
    params(("org" = i64, Path, description = "Org id"), ("module" = String, Path, description = "Module API name"), ("id" = i64, Path, description = "Record id")),
    responses((status = 200, description = "The deleted record")))]
pub async fn delete_record(
    State(s): State<AppState>,
    OrgMember { org, caller, .. }: OrgMember,
    Path((_org, module, rid)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let r = records::delete(&s.store, &org, &module, id(&module, &rid)?, caller.origin()).await?;
    Ok(Json(record_json(&r)))
}

/// Restores a record from the recycle bin.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/modules/{module}/records/{id}/restore", tag = "records",
    params(("org" = i64, Path, description = "Org id"), ("module" = String, Path, description = "Module API name"), ("id" = i64, Path, description = "Record id")),
    responses((status = 200, description = "The restored record")))]
pub async fn restore_record(
    State(s): State<AppState>,
    OrgMember { org, caller, .. }: OrgMember,
    Path((_org, module, rid)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let r = records::restore(&s.store, &org, &module, id(&module, &rid)?, caller.origin()).await?;
    Ok(Json(record_json(&r)))
}

/// The records of module `list` that point at this record or are associated
/// with it: `?limit=&after=<id>`.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/modules/{module}/records/{id}/related/{list}", tag = "records",
    params(("org" = i64, Path, description = "Org id"), ("module" = String, Path, description = "Module API name"), ("id" = i64, Path, description = "Record id"), ("list" = String, Path, description = "Related module API name"),
        ("limit" = Option<u32>, Query, description = "1..1000, default 100"), ("after" = Option<i64>, Query, description = "Last id of the previous page")),
    responses((status = 200, description = "{records}")))]
pub async fn related(
    State(s): State<AppState>,
    OrgMember { org, caller, .. }: OrgMember,
    Path((_org, module, rid, list)): Path<(String, String, String, String)>,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let limit = query_number(&params, "limit", 1..=1000)?.unwrap_or(100) as u32;
    let after = query_number(&params, "after", 0..=i64::MAX)?;
    let rid = id(&module, &rid)?;
    if list == DESK_TICKETS {
        let page =
            desk_tickets::list(&s.store, &caller.0.user, &org, &module, rid, after, limit).await?;
        return Ok(Json(json!({
            "records": page.records.iter().map(record_json).collect::<Vec<_>>(),
            "hidden": page.hidden,
            "hidden_why": page.hidden_why,
            "next_after": page.next_after,
        })));
    }
    let record = records::get(&s.store, &org, &module, rid).await?;
    records::enabled_module(&s.store, &org, &list).await?;
    let rows = s
        .store
        .related_records(org.id, record.id, &list, after, limit)
        .await?;
    Ok(Json(
        json!({"records": rows.iter().map(record_json).collect::<Vec<_>>()}),
    ))
}

/// Creates a record in a related list: a Desk ticket from a CRM contact
/// (`Desk_Tickets`, DSK-9), in a Desk department of the caller's (DSK-7).
/// Other lists take records created in their own module and associated.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/modules/{module}/records/{id}/related/{list}", tag = "records", request_body = Value,
    params(("org" = i64, Path, description = "Org id"), ("module" = String, Path, description = "Module API name"), ("id" = i64, Path, description = "Record id"), ("list" = String, Path, description = "Desk_Tickets")),
    responses((status = 201, description = "The Desk ticket"), (status = 409, description = "The contact has no e-mail address (DSK-9)"), (status = 403, description = "Not a member of the department (DSK-7)")))]
pub async fn create_related(
    State(s): State<AppState>,
    OrgMember { org, caller, .. }: OrgMember,
    Path((_org, module, rid, list)): Path<(String, String, String, String)>,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let rid = id(&module, &rid)?;
    if list != DESK_TICKETS {
        records::get(&s.store, &org, &module, rid).await?;
        return Err(Error::bad_request(
            "related_create_not_available",
            format!("Records of {list} are created in their own module and then associated (PUT …/related/{list}/{{other}}); only Desk_Tickets takes new records here."),
            format!("{list} のレコードは自身のモジュールで作成してから関連付けてください（PUT …/related/{list}/{{other}}）。ここで新規作成できるのは Desk_Tickets のみです。"),
        )
        .into());
    }
    let fields = records::fields_of(&body.0)?;
    let ticket = desk_tickets::create(
        &s.store,
        &caller.0.user,
        &org,
        &module,
        rid,
        fields,
        caller.origin(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(record_json(&ticket))))
}

type AssociationPath = Path<(String, String, String, String, String)>;

/// Associates the record with record `{other}` of module `{list}`, many to
/// many; each then appears in the other's related list.
#[utoipa::path(put, path = "/api/v1/orgs/{org}/modules/{module}/records/{id}/related/{list}/{other}", tag = "records",
    params(("org" = i64, Path, description = "Org id"), ("module" = String, Path, description = "Module API name"), ("id" = i64, Path, description = "Record id"),
        ("list" = String, Path, description = "Related module API name"), ("other" = i64, Path, description = "Id of the record to associate")),
    responses((status = 200, description = "Associated"), (status = 404, description = "Either record absent or not the caller's")))]
pub async fn associate(
    State(s): State<AppState>,
    OrgMember { org, .. }: OrgMember,
    Path((_org, module, rid, list, other)): AssociationPath,
) -> ApiResult<Json<Value>> {
    let (rid, other) = (id(&module, &rid)?, id(&list, &other)?);
    records::associate(&s.store, &org, &module, rid, &list, other).await?;
    Ok(Json(
        json!({"id": rid, "list": list, "other": other, "associated": true}),
    ))
}

/// Removes an association between two records.
#[utoipa::path(delete, path = "/api/v1/orgs/{org}/modules/{module}/records/{id}/related/{list}/{other}", tag = "records",
    params(("org" = i64, Path, description = "Org id"), ("module" = String, Path, description = "Module API name"), ("id" = i64, Path, description = "Record id"),
        ("list" = String, Path, description = "Related module API name"), ("other" = i64, Path, description = "Id of the associated record")),
    responses((status = 200, description = "No longer associated"), (status = 404, description = "Not associated")))]
pub async fn dissociate(
    State(s): State<AppState>,
    OrgMember { org, .. }: OrgMember,
    Path((_org, module, rid, list, other)): AssociationPath,
) -> ApiResult<Json<Value>> {
    let (rid, other) = (id(&module, &rid)?, id(&list, &other)?);
    records::dissociate(&s.store, &org, &module, rid, &list, other).await?;
    Ok(Json(
        json!({"id": rid, "list": list, "other": other, "associated": false}),
    ))
}

/// The org's recycle bin, newest deletion first.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/recycle-bin", tag = "records",
    params(("org" = i64, Path, description = "Org id")),
    responses((status = 200, description = "{records}")))]
pub async fn recycle_bin(
    State(s): State<AppState>,
    OrgMember { org, .. }: OrgMember,
) -> ApiResult<Json<Value>> {
    let rows = s.store.recycle_bin(org.id, 500).await?;
    Ok(Json(
        json!({"records": rows.iter().map(record_json).collect::<Vec<_>>()}),
    ))
}

/// The org's change log after `?after=<seq>` (administrators).
#[utoipa::path(get, path = "/api/v1/orgs/{org}/changes", tag = "records",
    params(("org" = i64, Path, description = "Org id"), ("after" = Option<i64>, Query, description = "Last seq seen")),
    responses((status = 200, description = "{changes}")))]
pub async fn changes(
    State(s): State<AppState>,
    OrgAdmin { org, .. }: OrgAdmin,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let after = query_number(&params, "after", 0..=i64::MAX)?.unwrap_or(0);
    let rows = s.store.changes_after(org.id, after, 1000).await?;
    Ok(Json(json!({"changes": rows.iter().map(|c| json!({
        "seq": c.seq, "module": c.module, "record_id": c.record_id, "version": c.version, "op": c.op,
        "origin": {"kind": c.origin_kind, "id": c.origin_id}, "at": instant(c.at),
    })).collect::<Vec<_>>()})))
}
