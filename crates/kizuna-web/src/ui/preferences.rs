//! A user's own choices: the language pages are in (switched from any page's
//! header) and the time zone date-times are read and typed in (on the page
//! their name in the header leads to).

use super::i18n::Lang;
use super::page::{Chrome, UiResult, render};
use super::session::{Viewer, form_value, local_path};
use crate::http::AppState;
use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use kizuna_domain::Error;
use kizuna_domain::time;

#[derive(serde::Deserialize)]
pub struct LanguageForm {
    csrf: Option<String>,
    language: Option<String>,
    back: Option<String>,
}

/// The user's own choice of language, over their browser's.
pub async fn set_language(
    State(s): State<AppState>,
    viewer: Viewer,
    Form(f): Form<LanguageForm>,
) -> UiResult<Response> {
    viewer.check_csrf(f.csrf.as_deref())?;
    let language = f.language.as_deref().and_then(Lang::parse).ok_or_else(|| {
        viewer.fail(Error::bad_request(
            "unknown_language",
            "The language must be ja or en.",
            "言語は ja または en を指定してください。",
        ))
    })?;
    s.store
        .set_user_language(viewer.session.user.id, Some(language.code()))
        .await
        .map_err(|e| viewer.fail(e))?;
    Ok(Redirect::to(&local_path(f.back.as_deref())).into_response())
}

#[derive(Template)]
#[template(path = "preferences.html")]
struct PreferencesPage {
    c: Chrome,
    email: String,
    zone: &'static str,
    zones: Vec<&'static str>,
    now: String,
}

/// The user's preferences: their time zone, with the time it is there now.
pub async fn page(viewer: Viewer) -> UiResult<Response> {
    let now = time::local_text(&time::rfc3339(kizuna_store::now_ms()), viewer.tz);
    Ok(render(
        StatusCode::OK,
        &PreferencesPage {
            c: viewer.chrome(),
            email: viewer.session.user.email.clone(),
            zone: viewer.tz.name(),
            zones: time::zones().collect(),
            now: now.unwrap_or_default(),
        },
    ))
}

/// Sets the time zone; one not in the list is refused and changes nothing.
pub async fn set_time_zone(
    State(s): State<AppState>,
    viewer: Viewer,
    Form(form): Form<Vec<(String, String)>>,
) -> UiResult<Response> {
    viewer.check_form(&form)?;
    s.store
        .set_user_time_zone(
            viewer.session.user.id,
            Some(form_value(&form, "time_zone").unwrap_or_default()),
        )
        .await
        .map_err(|e| viewer.fail(e))?;
    Ok(Redirect::to("/settings/me").into_response())
}
