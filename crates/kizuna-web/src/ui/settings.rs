//! The settings step of an integration's setup: each setting its kind has,
//! as a choice of the values it takes (the default first), saved through
//! the same check as the API's (`lifecycle::set_settings`).

use super::page::{Chrome, UiResult, render};
use super::session::{UiPath, Viewer, form_value};
use crate::http::AppState;
use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use kizuna_sync::{lifecycle, settings};
use serde_json::{Map, Value};

struct Choice {
    name: &'static str,
    values: &'static [&'static str],
    current: String,
}

#[derive(Template)]
#[template(path = "integration_settings.html")]
struct SettingsPage {
    c: Chrome,
    id: i64,
    choices: Vec<Choice>,
}

pub async fn page(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath(id): UiPath<i64>,
) -> UiResult<Response> {
    let fail = |e| viewer.fail(e);
    let i = lifecycle::administered(&s.store, &viewer.session.user, id)
        .await
        .map_err(fail)?;
    let kind = lifecycle::parse_kind(&i.kind).map_err(fail)?;
    let choices = settings::choices(kind)
        .into_iter()
        .map(|(name, values)| Choice {
            name,
            values,
            current: i.settings.0[name].as_str().unwrap_or(values[0]).to_string(),
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &SettingsPage {
            c: viewer.chrome(),
            id: i.id,
            choices,
        },
    ))
}

pub async fn save(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath(id): UiPath<i64>,
    Form(form): Form<Vec<(String, String)>>,
) -> UiResult<Response> {
    viewer.check_form(&form)?;
    let fail = |e| viewer.fail(e);
    let i = lifecycle::administered(&s.store, &viewer.session.user, id)
        .await
        .map_err(fail)?;
    let kind = lifecycle::parse_kind(&i.kind).map_err(fail)?;
    let changes: Map<String, Value> = settings::choices(kind)
        .into_iter()
        .filter_map(|(name, _)| Some((name.to_string(), Value::from(form_value(&form, name)?))))
        .collect();
    lifecycle::set_settings(&s.store, &viewer.session.user, id, &Value::Object(changes))
        .await
        .map_err(fail)?;
    Ok(Redirect::to(&format!("/integrations/{id}")).into_response())
}
