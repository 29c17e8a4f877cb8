//! A record's create and edit forms, generated from the module's field
//! metadata, with each refusal shown beside its field; delete to the
//! recycle bin and restore from it. Values are checked by the same
//! validation as the API's: a form sends text, turned into each field
//! type's JSON here and nowhere else.

use super::page::{Chrome, UiResult, render};
use super::session::{UiPath, Viewer, form_value};
use crate::http::AppState;
use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use kizuna_apps::records;
use kizuna_domain::field::{FieldDef, FieldType, ModuleDef};
use kizuna_domain::time::{self, Tz};
use kizuna_domain::{Error, Kind};
use kizuna_store::{Org, Origin};
use serde_json::{Map, Number, Value, json};

/// One control of the form.
struct Input {
    api_name: String,
    label: String,
    /// `text`, `email`, `tel`, `url`, `number`, `date`, `textarea`,
    /// `select`, `multiselect`, `checkbox`.
    control: &'static str,
    value: String,
    selected: Vec<String>,
    options: Vec<String>,
    required: bool,
    max_length: Option<u32>,
    hint: &'static str,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "form.html")]
struct FormPage {
    c: Chrome,
    org: Org,
    module: String,
    label: String,
    /// `None`: a new record; else the record and the version the form was
    /// opened on.
    id: Option<(i64, i64)>,
    inputs: Vec<Input>,
    error: Option<String>,
}

fn control(t: FieldType) -> &'static str {
    match t {
        FieldType::Textarea => "textarea",
        FieldType::Email => "email",
        FieldType::Phone => "tel",
        FieldType::Url => "url",
        FieldType::Picklist => "select",
        FieldType::Multiselect => "multiselect",
        FieldType::Date => "date",
        FieldType::Datetime => "datetime-local",
        FieldType::Integer | FieldType::Lookup | FieldType::Decimal | FieldType::Percent => {
            "number"
        }
        FieldType::Boolean => "checkbox",
        _ => "text",
    }
}

/// The fields a form shows: in use, and not files (uploaded elsewhere).
fn form_fields(m: &ModuleDef) -> impl Iterator<Item = &FieldDef> {
    m.fields
        .iter()
        .filter(|f| f.in_use && f.field_type != FieldType::File)
}

/// Decimal places of a currency's minor unit (ISO 4217; the common ones).
fn minor_digits(code: &str) -> u32 {
    match code {
        "JPY" | "KRW" | "VND" | "CLP" | "ISK" => 0,
        "BHD" | "KWD" | "OMR" | "JOD" | "TND" => 3,
        _ => 2,
    }
}

/// A stored value as a page shows it (money as `12.34 USD`, a list of
/// choices joined, a date-time in the reader's time zone).
pub(super) fn shown(f: &FieldDef, v: Option<&Value>, tz: Tz) -> String {
    match (f.field_type, v) {
        (_, None | Some(Value::Null)) => String::new(),
        (FieldType::Datetime, Some(Value::String(s))) => {
            time::local_text(s, tz).unwrap_or_else(|| s.clone())
        }
        (FieldType::Currency, Some(m)) => {
            let (minor, code) = (
                m["amount_minor"].as_i64().unwrap_or_default(),
                m["currency"].as_str().unwrap_or_default(),
            );
            let digits = minor_digits(code);
            let major = minor as f64 / 10f64.powi(digits as i32);
            format!("{major:.*} {code}", digits as usize)
        }
        (FieldType::Multiselect, Some(Value::Array(items))) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        (_, Some(Value::String(s))) => s.clone(),
        (_, Some(other)) => other.to_string(),
    }
}

/// A stored value as a form's input holds it: as a page shows it, but a
/// date-time as a `datetime-local` input's local time.
fn in_form(f: &FieldDef, v: Option<&Value>, tz: Tz) -> String {
    match (f.field_type, v) {
        (FieldType::Datetime, Some(Value::String(s))) => {
            time::local_input(s, tz).unwrap_or_else(|| s.clone())
        }
        _ => shown(f, v, tz),
    }
}

/// What the form sent for one field, as that field's JSON: numbers as
/// numbers where they parse (else the text, which validation refuses by
/// name), `1500 JPY` as money, a checkbox as a boolean, a local date-time
/// read in the user's time zone. `None`: left empty.
fn typed(f: &FieldDef, given: &[&str], tz: Tz) -> Option<Value> {
    let one = given.first().map(|s| s.trim()).unwrap_or_default();
    match f.field_type {
        FieldType::Boolean => Some(json!(given.iter().any(|v| *v == "on" || *v == "true"))),
        FieldType::Multiselect => {
            let items: Vec<&str> = given
                .iter()
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
                .collect();
            (!items.is_empty()).then(|| json!(items))
        }
        _ if one.is_empty() => None,
        FieldType::Integer | FieldType::Lookup => {
            Some(one.parse::<i64>().map_or_else(|_| json!(one), |n| json!(n)))
        }
        FieldType::Datetime => Some(json!(time::from_local_input(one, tz).unwrap_or(one.into()))),
        FieldType::Decimal | FieldType::Percent => Some(
            one.parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map_or_else(|| json!(one), Value::Number),
        ),
        FieldType::Currency => {
            let mut parts = one.split_whitespace();
            let (amount, code) = (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            );
            let code = code.to_ascii_uppercase();
            match amount.replace(',', "").parse::<f64>() {
                Ok(a) if parts.next().is_none() && code.len() == 3 => {
                    let minor = (a * 10f64.powi(minor_digits(&code) as i32)).round() as i64;
                    Some(json!({"amount_minor": minor, "currency": code}))
                }
                // Not money: validation says what it takes.
                _ => Some(json!(one)),
            }
        }
        _ => Some(json!(one)),
    }
}

/// The form's fields as record values: every filled field for a new record;
/// for an edit, only what differs from `current` (an emptied field is
/// cleared).
fn values(
    m: &ModuleDef,
    form: &[(String, String)],
    current: Option<&Map<String, Value>>,
    tz: Tz,
) -> Map<String, Value> {
    let mut out = Map::new();
    for f in form_fields(m) {
        let given: Vec<&str> = form
            .iter()
            .filter(|(k, _)| *k == f.api_name)
            .map(|(_, v)| v.as_str())
            .collect();
        let value = typed(f, &given, tz);
        match current {
            None => {
                if let Some(v) = value {
                    out.insert(f.api_name.clone(), v);
                }
            }
            Some(cur) => {
                let before = cur.get(&f.api_name).filter(|v| !v.is_null());
                // Text as the form showed it is no change, even where it
                // reads back as another value (a local time a clock change
                // repeats is read as the earlier of the two).
                let as_shown = given.len() == 1 && given[0].trim() == in_form(f, before, tz);
                if value.as_ref() != before && !(as_shown && before.is_some()) {
                    out.insert(f.api_name.clone(), value.unwrap_or(Value::Null));
                }
            }
        }
    }
    out
}

/// The inputs of module `m`, filled with `value_of` and with the refusal's
/// field errors beside their fields.
fn inputs(
    m: &ModuleDef,
    l: super::i18n::Lang,
    value_of: &dyn Fn(&FieldDef) -> (String, Vec<String>),
    refused: Option<&Error>,
) -> Vec<Input> {
    let field_errors: Vec<(String, String)> = refused
        .and_then(|e| e.details.get("errors"))
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|e| {
                    (
                        e["field"].as_str().unwrap_or_default().to_string(),
                        l.json_text(&e["message"]),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    form_fields(m)
        .map(|f| {
            let (value, selected) = value_of(f);
            let error = field_errors
                .iter()
                .filter(|(field, _)| *field == f.api_name)
                .map(|(_, t)| t.clone())
                .reduce(|a, b| format!("{a} {b}"));
            Input {
                api_name: f.api_name.clone(),
                label: super::pages::field_label(f, l),
                control: control(f.field_type),
                value,
                selected,
                options: f.picklist.clone(),
                required: f.required,
                max_length: f.effective_max_length(),
                hint: match f.field_type {
                    FieldType::Currency => "1500 JPY",
                    _ => "",
                },
                error,
            }
        })
        .collect()
}

/// What a form sent for `f`, to show it again.
fn sent(form: &[(String, String)], f: &FieldDef) -> (String, Vec<String>) {
    let given: Vec<String> = form
        .iter()
        .filter(|(k, _)| *k == f.api_name)
        .map(|(_, v)| v.clone())
        .collect();
    (given.first().cloned().unwrap_or_default(), given)
}

/// The form page; `refused` shows why the last send was not saved (400).
#[allow(clippy::too_many_arguments)]
fn form_page(
    viewer: &Viewer,
    org: Org,
    m: &ModuleDef,
    id: Option<(i64, i64)>,
    value_of: &dyn Fn(&FieldDef) -> (String, Vec<String>),
    refused: Option<&Error>,
) -> Response {
    let l = viewer.lang;
    let page = FormPage {
        c: viewer.chrome(),
        label: super::pages::module_label(m, l),
        module: m.api_name.clone(),
        org,
        id,
        inputs: inputs(m, l, value_of, refused),
        error: refused.map(|e| l.text(&e.message)),
    };
    let status = super::page::refusal_status(refused);
    render(status, &page)
}

fn origin(viewer: &Viewer) -> Origin {
    Origin::User(viewer.session.user.id)
}

pub async fn new_form(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath((org, module)): UiPath<(i64, String)>,
) -> UiResult<Response> {
    let (org, m) = viewer.module(&s, org, &module).await?;
    Ok(form_page(
        &viewer,
        org,
        &m,
        None,
        &|_| Default::default(),
        None,
    ))
}

/// Whether a refusal is about the values (shown on the form) rather than
/// the request (shown as an error page).
fn about_values(e: &Error) -> bool {
    matches!(e.kind, Kind::BadInput | Kind::Conflict)
}

pub async fn create(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath((org, module)): UiPath<(i64, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> UiResult<Response> {
    viewer.check_form(&form)?;
    let (org, m) = viewer.module(&s, org, &module).await?;
    let fields = values(&m, &form, None, viewer.tz);
    match records::create(&s.store, &org, &m.api_name, &fields, origin(&viewer)).await {
        Ok(r) => Ok(
            Redirect::to(&format!("/orgs/{}/modules/{}/{}", org.id, m.api_name, r.id))
                .into_response(),
        ),
        Err(e) if about_values(&e) => Ok(form_page(
            &viewer,
            org,
            &m,
            None,
            &|f| sent(&form, f),
            Some(&e),
        )),
        Err(e) => Err(viewer.fail(e)),
    }
}

pub async fn edit_form(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath((org, module, id)): UiPath<(i64, String, i64)>,
) -> UiResult<Response> {
    let (org, m) = viewer.module(&s, org, &module).await?;
    let r = records::get(&s.store, &org, &m.api_name, id)
        .await
        .map_err(|e| viewer.fail(e))?;
    let value_of = |f: &FieldDef| {
        let v = r.fields.get(&f.api_name);
        let selected = v
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        (in_form(f, v, viewer.tz), selected)
    };
    Ok(form_page(
        &viewer,
        org,
        &m,
        Some((id, r.version)),
        &value_of,
        None,
    ))
}

pub async fn update(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath((org, module, id)): UiPath<(i64, String, i64)>,
    Form(form): Form<Vec<(String, String)>>,
) -> UiResult<Response> {
    viewer.check_form(&form)?;
    let (org, m) = viewer.module(&s, org, &module).await?;
    let current = records::get(&s.store, &org, &m.api_name, id)
        .await
        .map_err(|e| viewer.fail(e))?;
    // Someone else's change since the form was opened is refused, not
    // overwritten.
    let version = form_value(&form, "_version").and_then(|v| v.parse().ok());
    let fields = values(&m, &form, Some(&current.fields), viewer.tz);
    let back = format!("/orgs/{}/modules/{}/{id}", org.id, m.api_name);
    if fields.is_empty() {
        return Ok(Redirect::to(&back).into_response());
    }
    match records::update(
        &s.store,
        &org,
        &m.api_name,
        id,
        &fields,
        version,
        origin(&viewer),
    )
    .await
    {
        Ok(_) => Ok(Redirect::to(&back).into_response()),
        Err(e) if about_values(&e) => Ok(form_page(
            &viewer,
            org,
            &m,
            Some((id, version.unwrap_or(current.version))),
            &|f| sent(&form, f),
            Some(&e),
        )),
        Err(e) => Err(viewer.fail(e)),
    }
}

/// Moves a record to the recycle bin.
pub async fn delete(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath((org, module, id)): UiPath<(i64, String, i64)>,
    Form(form): Form<Vec<(String, String)>>,
) -> UiResult<Response> {
    viewer.check_form(&form)?;
    let (org, _) = viewer.org(&s, org).await?;
    records::delete(&s.store, &org, &module, id, origin(&viewer))
        .await
        .map_err(|e| viewer.fail(e))?;
    Ok(Redirect::to(&format!("/orgs/{}/bin", org.id)).into_response())
}

/// Takes a record back out of the recycle bin.
pub async fn restore(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath((org, module, id)): UiPath<(i64, String, i64)>,
    Form(form): Form<Vec<(String, String)>>,
) -> UiResult<Response> {
    viewer.check_form(&form)?;
    let (org, _) = viewer.org(&s, org).await?;
    let r = records::restore(&s.store, &org, &module, id, origin(&viewer))
        .await
        .map_err(|e| viewer.fail(e))?;
    Ok(Redirect::to(&format!("/orgs/{}/modules/{}/{}", org.id, r.module, r.id)).into_response())
}

/// Opens a Desk ticket for a CRM contact from its page (DSK-9: the contact
/// needs an e-mail address; DSK-7: in a department of the caller's); a
/// refusal is shown with its cause and fix, and opens nothing.
pub async fn open_ticket(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath((org, module, id)): UiPath<(i64, String, i64)>,
    Form(form): Form<Vec<(String, String)>>,
) -> UiResult<Response> {
    viewer.check_form(&form)?;
    let (org, m) = viewer.module(&s, org, &module).await?;
    let mut fields = Map::new();
    for key in ["Subject", "Department", "Description"] {
        if let Some(v) = form_value(&form, key)
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            fields.insert(key.to_string(), json!(v));
        }
    }
    kizuna_sync::desk_tickets::create(
        &s.store,
        &viewer.session.user,
        &org,
        &m.api_name,
        id,
        &fields,
        origin(&viewer),
    )
    .await
    .map_err(|e| viewer.fail(e))?;
    Ok(Redirect::to(&format!("/orgs/{}/modules/{}/{id}", org.id, m.api_name)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_text_becomes_each_field_types_json() {
        let f = |t| FieldDef::new("X", t);
        assert_eq!(
            typed(&f(FieldType::Integer), &["42"], time::DEFAULT_ZONE),
            Some(json!(42))
        );
        assert_eq!(
            typed(&f(FieldType::Integer), &["4x"], time::DEFAULT_ZONE),
            Some(json!("4x"))
        );
        assert_eq!(
            typed(&f(FieldType::Decimal), &["1.5"], time::DEFAULT_ZONE),
            Some(json!(1.5))
        );
        assert_eq!(
            typed(&f(FieldType::Text), &["  "], time::DEFAULT_ZONE),
            None
        );
        assert_eq!(
            typed(&f(FieldType::Boolean), &[], time::DEFAULT_ZONE),
            Some(json!(false))
        );
        assert_eq!(
            typed(&f(FieldType::Boolean), &["on"], time::DEFAULT_ZONE),
            Some(json!(true))
        );
        assert_eq!(
            typed(
                &f(FieldType::Multiselect),
                &["a", "", "b"],
                time::DEFAULT_ZONE
            ),
            Some(json!(["a", "b"]))
        );
        assert_eq!(
            typed(&f(FieldType::Currency), &["1,500 jpy"], time::DEFAULT_ZONE),
            Some(json!({"amount_minor": 1500, "currency": "JPY"}))
        );
        assert_eq!(
            typed(&f(FieldType::Currency), &["12.34 USD"], time::DEFAULT_ZONE),
            Some(json!({"amount_minor": 1234, "currency": "USD"}))
        );
        let usd = json!({"amount_minor": 1234, "currency": "USD"});
        assert_eq!(
            shown(&f(FieldType::Currency), Some(&usd), time::DEFAULT_ZONE),
            "12.34 USD"
        );
    }

    #[test]
    fn date_times_are_shown_and_typed_in_the_readers_time_zone() {
        let at = FieldDef::new("At", FieldType::Datetime);
        let stored = json!("2026-04-01T00:30:00Z");
        let paris = time::zone("Europe/Paris").expect("a zone");
        assert_eq!(
            shown(&at, Some(&stored), time::DEFAULT_ZONE),
            "2026-04-01 09:30 JST"
        );
        assert_eq!(shown(&at, Some(&stored), paris), "2026-04-01 02:30 CEST");
        assert_eq!(in_form(&at, Some(&stored), paris), "2026-04-01T02:30");
        assert_eq!(
            typed(&at, &["2026-04-01T02:30"], paris),
            Some(stored.clone())
        );
        assert_eq!(
            typed(&at, &["2026-04-01T09:30"], time::DEFAULT_ZONE),
            Some(stored)
        );
        assert_eq!(
            typed(&at, &["soon"], paris),
            Some(json!("soon")),
            "validation refuses it by name"
        );

        // 01:30 on 1 November 2026 happens twice in New York; an edit that
        // leaves the later one as shown does not move it to the earlier.
        let new_york = time::zone("America/New_York").expect("a zone");
        let m = ModuleDef {
            api_name: "Events".into(),
            label: "Events".into(),
            label_ja: "イベント".into(),
            enabled: true,
            fields: vec![at.clone(), FieldDef::new("Title", FieldType::Text)],
        };
        let later = json!("2026-11-01T06:30:00Z");
        let current: Map<String, Value> = [
            ("At".to_string(), later.clone()),
            ("Title".to_string(), json!("a")),
        ]
        .into_iter()
        .collect();
        let shown_then = in_form(&at, Some(&later), new_york);
        assert_eq!(shown_then, "2026-11-01T01:30");
        let form = vec![
            ("At".to_string(), shown_then),
            ("Title".to_string(), "b".to_string()),
        ];
        let changed = values(&m, &form, Some(&current), new_york);
        assert_eq!(
            changed,
            [("Title".to_string(), json!("b"))]
                .into_iter()
                .collect::<Map<_, _>>()
        );
    }
}
