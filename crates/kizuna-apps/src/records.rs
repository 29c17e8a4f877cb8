//! Records as every app sees them: the module must exist and be enabled, values
//! are validated against the org's field metadata, then stored.

use crate::events;
use kizuna_domain::field::{FieldDef, FieldType, ModuleDef};
use kizuna_domain::validate::{FieldError, Mode, invalid_fields, validate_fields};
use kizuna_domain::{Error, Result, Text};
use kizuna_store::{ListQuery, Org, Origin, Page, RawRecord, Record, SortKey, Store};
use serde_json::{Map, Value};
use std::sync::Arc;

/// The most records one request may create at once.
pub const MAX_BATCH: usize = 100;

/// An enabled module of the org, or the error that says why not.
pub async fn enabled_module(store: &Store, org: &Org, module: &str) -> Result<Arc<ModuleDef>> {
    let m = store.module_of(org, module).await?;
    if !m.enabled {
        return Err(Error::module_disabled(module));
    }
    Ok(m)
}

/// Takes the `fields` object of a request body, or says what is wrong.
pub fn fields_of(body: &Value) -> Result<&Map<String, Value>> {
    body.get("fields")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::malformed_json("the body must be an object with a \"fields\" object"))
}

pub async fn create(
    store: &Store,
    org: &Org,
    module: &str,
    fields: &Map<String, Value>,
    origin: Origin,
) -> Result<Record> {
    let mut created = create_many(store, org, module, std::slice::from_ref(fields), origin).await?;
    created
        .pop()
        .ok_or_else(|| Error::internal("no record was created"))
}

/// Creates several records at once: all are valid and created, or none is.
pub async fn create_many(
    store: &Store,
    org: &Org,
    module: &str,
    rows: &[Map<String, Value>],
    origin: Origin,
) -> Result<Vec<Record>> {
    if rows.len() > MAX_BATCH {
        return Err(Error::bad_request(
            "batch_too_large",
            format!(
                "At most {MAX_BATCH} records can be created per request; this one has {}.",
                rows.len()
            ),
            format!(
                "1 回のリクエストで作成できるレコードは {MAX_BATCH} 件までです（このリクエストは {} 件）。",
                rows.len()
            ),
        ));
    }
    let m = enabled_module(store, org, module).await?;
    let valid = rows
        .iter()
        .map(|r| validate_fields(&m, r, Mode::Create))
        .collect::<Result<Vec<_>>>()?;
    if events::is_form(org, module) {
        return events::create_form_fields(store, org, &m, valid, origin).await;
    }
    store.create_records(org.id, &m, valid, origin).await
}

pub async fn update(
    store: &Store,
    org: &Org,
    module: &str,
    id: i64,
    fields: &Map<String, Value>,
    expected_version: Option<i64>,
    origin: Origin,
) -> Result<Record> {
    let m = enabled_module(store, org, module).await?;
    if events::is_form(org, module) {
        events::check_form_field_update(fields)?;
    }
    let valid = validate_fields(&m, fields, Mode::Update)?;
    store
        .update_record(org.id, &m, id, valid, expected_version, origin)
        .await
}

pub async fn get(store: &Store, org: &Org, module: &str, id: i64) -> Result<Record> {
    enabled_module(store, org, module).await?;
    store.record(org.id, module, id).await
}

/// `get` for the holder of an API key, with the field values as stored (for
/// a caller that only passes the record on). The key's holder, their org and
/// the record are found in one read: the API's most frequent request.
/// Refused as every org-scoped request is: an unknown, revoked or
/// deactivated key 401 (GEN-10), an org the key's user is not in 404; then
/// as `get`.
pub async fn get_raw_by_key(
    store: &Store,
    key: &str,
    org_id: i64,
    module: &str,
    id: i64,
) -> Result<RawRecord> {
    let (_, member) = store
        .authenticate_key_for_record(key, org_id, module, id)
        .await?;
    let (org, _, record) = member.ok_or_else(|| Error::not_found("Org", org_id))?;
    enabled_module(store, &org, module).await?;
    record.ok_or_else(|| Error::not_found(module, id))
}

pub async fn delete(
    store: &Store,
    org: &Org,
    module: &str,
    id: i64,
    origin: Origin,
) -> Result<Record> {
    enabled_module(store, org, module).await?;
    store.delete_record(org.id, module, id, origin).await
}

pub async fn restore(
    store: &Store,
    org: &Org,
    module: &str,
    id: i64,
    origin: Origin,
) -> Result<Record> {
    enabled_module(store, org, module).await?;
    store.restore_record(org.id, module, id, origin).await
}

/// Query parameters that are not filters: no field may be called so.
pub const RESERVED: [&str; 4] = ["limit", "cursor", "sort", "order"];

/// Lists a module's records from query parameters: `limit`, `cursor`, `sort`
/// (a sortable field's API name, or `id`; another field is refused with
/// `field_not_sortable`), `order` (`asc`/`desc`), and any field's API name as
/// an equality filter.
pub async fn list(
    store: &Store,
    org: &Org,
    module: &str,
    params: &[(String, String)],
) -> Result<Page> {
    let m = enabled_module(store, org, module).await?;
    let query = parse_list_query(&m, params)?;
    // A filter naming a record must name one of this org's: another org's id
    // is answered 404, as everywhere.
    for (field, value) in &query.filters {
        if let (Some(target), Some(id)) = (&field.lookup_module, value.as_i64()) {
            store.record(org.id, target, id).await?;
        }
    }
    store.list_records(org.id, &m, &query).await
}

fn param_error(name: &str, code: &'static str, en: String, ja: String) -> Error {
    invalid_fields(vec![FieldError {
        field: name.to_string(),
        code,
        message: Text::new(en, ja),
    }])
}

fn known_field<'a>(m: &'a ModuleDef, name: &str) -> Result<&'a FieldDef> {
    m.field(name).ok_or_else(|| {
        param_error(
            name,
            "unknown_field",
            format!("{} has no field {name}.", m.api_name),
            format!("{} に項目 {name} はありません。", m.label_ja),
        )
    })
}

pub fn parse_list_query(m: &ModuleDef, params: &[(String, String)]) -> Result<ListQuery> {
    let mut q = ListQuery::default();
    for (name, value) in params {
        match name.as_str() {
            "limit" => {
                q.limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| {
                        param_error(
                            "limit",
                            "invalid_limit",
                            format!(
                                "limit must be a whole number from 1 to 1000, not \"{value}\"."
                            ),
                            format!(
                                "limit には 1〜1000 の整数を指定してください（「{value}」は不可）。"
                            ),
                        )
                    })?;
            }
            "cursor" => q.cursor = Some(value.clone()),
            "order" => {
                q.descending = match value.as_str() {
                    "asc" => false,
                    "desc" => true,
                    _ => {
                        return Err(param_error(
                            "order",
                            "invalid_order",
                            format!("order must be asc or desc, not \"{value}\"."),
                            format!(
                                "order には asc または desc を指定してください（「{value}」は不可）。"
                            ),
                        ));
                    }
                }
            }
            "sort" if value == "id" => q.sort = SortKey::Id,
            "sort" => {
                let field = known_field(m, value)?;
                if !field.sortable {
                    return Err(kizuna_store::sort_index::not_sortable(&m.api_name, value));
                }
                q.sort = SortKey::Field(field.clone());
            }
            _ => {
                let field = known_field(m, name)?;
                q.filters.push((field.clone(), filter_value(field, value)?));
            }
        }
    }
    Ok(q)
}

/// A filter's text as the JSON value the field stores.
fn filter_value(field: &FieldDef, raw: &str) -> Result<Value> {
    let parsed = match field.field_type {
        FieldType::Integer | FieldType::Lookup => raw.parse::<i64>().ok().map(Value::from),
        FieldType::Decimal | FieldType::Percent => raw
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Value::from),
        FieldType::Boolean => raw.parse::<bool>().ok().map(Value::from),
        _ => Some(Value::from(raw)),
    };
    parsed.ok_or_else(|| {
        param_error(
            &field.api_name,
            "wrong_type",
            format!(
                "Filter {}: \"{raw}\" is not a {} value.",
                field.api_name,
                field.field_type.as_str()
            ),
            format!(
                "フィルター {}: 「{raw}」は {} 型の値ではありません。",
                field.api_name,
                field.field_type.as_str()
            ),
        )
    })
}

/// The name a many-to-many association between two modules is stored under:
/// the same from either side.
pub fn association_name(a: &str, b: &str) -> String {
    if a <= b {
        format!("{a}<>{b}")
    } else {
        format!("{b}<>{a}")
    }
}

/// The two live records an association joins, and its name.
async fn pair(
    store: &Store,
    org: &Org,
    module: &str,
    id: i64,
    list: &str,
    other: i64,
) -> Result<(i64, i64, String)> {
    let a = get(store, org, module, id).await?;
    let b = get(store, org, list, other).await?;
    Ok((a.id, b.id, association_name(module, list)))
}

/// Associates record `id` of `module` with record `other` of `list`, many to
/// many (a Campaign's Contacts, a Project's Accounts): each then lists the
/// other. Both must be live records of the org.
pub async fn associate(
    store: &Store,
    org: &Org,
    module: &str,
    id: i64,
    list: &str,
    other: i64,
) -> Result<()> {
    let (a, b, name) = pair(store, org, module, id, list, other).await?;
    store.associate(org.id, a, b, &name).await
}

/// Removes an association made by `associate`.
pub async fn dissociate(
    store: &Store,
    org: &Org,
    module: &str,
    id: i64,
    list: &str,
    other: i64,
) -> Result<()> {
    let (a, b, name) = pair(store, org, module, id, list, other).await?;
    store.dissociate(org.id, a, b, &name).await
}
