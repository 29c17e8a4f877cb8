//! Conflicts held for a person (policy `hold`, DSK-13): each field changed
//! on both sides of a linked pair since the last sync, with the value it had
//! and both new values, and a choice of which side's value stands. The
//! decision is the sync crate's (`engine::decide`), carried out by a sync
//! that runs at once.

use super::page::{Chrome, UiResult, render};
use super::session::{UiPath, Viewer, form_value};
use crate::http::AppState;
use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use kizuna_store::Held;
use kizuna_sync::engine::decide;
use serde_json::{Value, json};

struct Row {
    id: i64,
    record: String,
    link: String,
    field: String,
    base: String,
    crm: String,
    other: String,
}

#[derive(Template)]
#[template(path = "integration_conflicts.html")]
struct ConflictsPage {
    c: Chrome,
    id: i64,
    rows: Vec<Row>,
}

fn shown(v: &Value) -> String {
    match v {
        Value::Null => "—".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Conflicts held per page.
const SHOWN: u32 = 200;

pub async fn page(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath(id): UiPath<i64>,
) -> UiResult<Response> {
    let fail = |e| viewer.fail(e);
    // Members of either org only: anyone else is told it is not found.
    let held: Vec<Held> = decide::held(&s.store, &viewer.session.user, id, 0, SHOWN)
        .await
        .map_err(fail)?;
    // Conflicts are held between a CRM and another app's org, and the CRM
    // is an integration's first side (`IntegrationKind::apps`).
    let crm = s
        .store
        .integration(id)
        .await
        .map_err(fail)?
        .map_or(0, |i| i.from_org);
    let rows = held
        .iter()
        .map(|h| Row {
            id: h.id,
            record: format!("{} #{}", h.crm_module, h.crm_id),
            link: format!("/orgs/{crm}/modules/{}/{}", h.crm_module, h.crm_id),
            field: h.field.clone(),
            base: shown(&h.base_value.0),
            crm: shown(&h.crm_value.0),
            other: shown(&h.other_value.0),
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &ConflictsPage {
            c: viewer.chrome(),
            id,
            rows,
        },
    ))
}

/// Decides one: `take` is `crm` or `other`.
pub async fn decide(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath((id, conflict)): UiPath<(i64, i64)>,
    Form(form): Form<Vec<(String, String)>>,
) -> UiResult<Response> {
    viewer.check_form(&form)?;
    let fail = |e| viewer.fail(e);
    let take = decide::Take::parse(&json!(form_value(&form, "take"))).map_err(fail)?;
    decide::decide(&s.store, &viewer.session.user, id, conflict, take)
        .await
        .map_err(fail)?;
    Ok(Redirect::to(&format!("/integrations/{id}/conflicts")).into_response())
}
