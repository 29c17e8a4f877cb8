//! The field-mapping step of an integration's setup: for each field of the
//! receiving module, the other side's fields that can fill it — only those
//! of a compatible type (GEN-5) — and, beside them, which fields are not
//! offered and why (their types; EVT-13's types the other app cannot
//! provide). Saved through the same check as the API's mapping.

use super::page::{Chrome, UiResult, render};
use super::pages::field_label;
use super::session::{UiPath, Viewer, form_value};
use crate::http::AppState;
use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use kizuna_domain::Error;
use kizuna_domain::field::FieldDef;
use kizuna_domain::integration::types_compatible;
use kizuna_store::Integration;
use kizuna_sync::{lifecycle, mapping};
use serde_json::{Value, json};

/// One field of the receiving module and what may fill it.
struct Row {
    /// The form field's name: `map:<module pair>:<target field>`.
    name: String,
    target: String,
    target_type: &'static str,
    /// (API name, label) of each compatible source field.
    offered: Vec<(String, String)>,
    selected: String,
    /// Why the other fields of the source are not offered.
    not_offered: String,
}

struct Section {
    title: String,
    rows: Vec<Row>,
}

#[derive(Template)]
#[template(path = "integration_mapping.html")]
struct MappingPage {
    c: Chrome,
    id: i64,
    sections: Vec<Section>,
    error: Option<String>,
}

/// The mapping now: the integration's own, or the kind's defaults.
fn current(i: &Integration, sides: &mapping::Sides) -> Vec<mapping::Pair> {
    let own: Vec<mapping::Pair> = i
        .mapping
        .0
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| {
                    Some(mapping::Pair {
                        module: p.get("module").and_then(Value::as_str).map(str::to_string),
                        source: p.get("source")?.as_str()?.to_string(),
                        target: p.get("target")?.as_str()?.to_string(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    if own.is_empty() {
        sides.defaults.clone()
    } else {
        own
    }
}

fn why_not(
    l: super::i18n::Lang,
    target: &FieldDef,
    others: &[&FieldDef],
    unsupported: bool,
) -> String {
    let listed: Vec<String> = others
        .iter()
        .map(|f| format!("{} ({})", field_label(f, l), f.field_type.as_str()))
        .collect();
    let mut why = String::new();
    if !listed.is_empty() {
        why = format!(
            "{} {}",
            l.of(
                "Not offered, their types cannot hold this field's data:",
                "型がこの項目のデータと合わないため表示していません:"
            ),
            listed.join(", ")
        );
    }
    if unsupported {
        why = format!(
            "{why} {}",
            l.of(
                &format!(
                    "The other app has no {} fields (EVT-13).",
                    target.field_type.as_str()
                ),
                &format!(
                    "相手のアプリには {} 型の項目がありません（EVT-13）。",
                    target.field_type.as_str()
                ),
            )
        );
    }
    why.trim().to_string()
}

async fn mapping_page(
    s: &AppState,
    viewer: &Viewer,
    id: i64,
    refused: Option<&Error>,
) -> UiResult<Response> {
    let fail = |e| viewer.fail(e);
    let i = lifecycle::administered(&s.store, &viewer.session.user, id)
        .await
        .map_err(fail)?;
    let sides = mapping::sides(&s.store, &i).await.map_err(fail)?;
    let now = current(&i, &sides);
    let l = viewer.lang;
    let mut sections = Vec::new();
    for m in &sides.modules {
        let source = s
            .store
            .module(sides.source_org, m.source)
            .await
            .map_err(fail)?;
        let target = s
            .store
            .module(sides.target_org, &m.target)
            .await
            .map_err(fail)?;
        let pair_name = m.name.unwrap_or("");
        let rows = target
            .fields
            .iter()
            .filter(|t| t.in_use)
            .map(|t| {
                let (offered, others): (Vec<&FieldDef>, Vec<&FieldDef>) = source
                    .fields
                    .iter()
                    .filter(|f| f.in_use)
                    .partition(|f| types_compatible(f.field_type, t.field_type));
                Row {
                    name: format!("map:{pair_name}:{}", t.api_name),
                    target: field_label(t, l),
                    target_type: t.field_type.as_str(),
                    offered: offered
                        .iter()
                        .map(|f| (f.api_name.clone(), field_label(f, l)))
                        .collect(),
                    selected: now
                        .iter()
                        .find(|p| p.module.as_deref() == m.name && p.target == t.api_name)
                        .map(|p| p.source.clone())
                        .unwrap_or_default(),
                    not_offered: why_not(l, t, &others, sides.unsupported.contains(&t.field_type)),
                }
            })
            .collect();
        sections.push(Section {
            title: format!(
                "{} → {}",
                super::pages::module_label(&source, l),
                super::pages::module_label(&target, l)
            ),
            rows,
        });
    }
    let status = super::page::refusal_status(refused);
    Ok(render(
        status,
        &MappingPage {
            c: viewer.chrome(),
            id: i.id,
            sections,
            error: refused.map(|e| l.refusal(e)),
        },
    ))
}

pub async fn page(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath(id): UiPath<i64>,
) -> UiResult<Response> {
    mapping_page(&s, &viewer, id, None).await
}

/// Saves the mapping the form chose (`reset` puts the defaults back); a
/// refused pair is shown on the page and nothing is saved.
pub async fn save(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath(id): UiPath<i64>,
    Form(form): Form<Vec<(String, String)>>,
) -> UiResult<Response> {
    viewer.check_form(&form)?;
    let body = (form_value(&form, "reset").is_none()).then(|| {
        let pairs: Vec<Value> = form
            .iter()
            .filter(|(_, source)| !source.is_empty())
            .filter_map(|(k, source)| {
                let rest = k.strip_prefix("map:")?;
                let (module, target) = rest.split_once(':')?;
                let mut p = json!({"source": source, "target": target});
                if !module.is_empty() {
                    p["module"] = json!(module);
                }
                Some(p)
            })
            .collect();
        Value::Array(pairs)
    });
    match lifecycle::set_mapping(&s.store, &viewer.session.user, id, body.as_ref()).await {
        Ok(_) => Ok(Redirect::to(&format!("/integrations/{id}")).into_response()),
        Err(e) if e.kind != kizuna_domain::Kind::Internal => {
            mapping_page(&s, &viewer, id, Some(&e)).await
        }
        Err(e) => Err(viewer.fail(e)),
    }
}
