//! A CRM user's own mail & calendar connection: the servers it reads
//! (CardDAV, CalDAV, IMAP's sent folder) and sends through (SMTP), its
//! category filter and schedule. Passwords are never shown; one left empty
//! keeps the one stored. Saved through the same checks as the API's
//! (`mail::connect`, `mail::set_settings`); its history, sync and delete
//! are the integration's page.

use super::page::{Chrome, UiResult, render};
use super::session::{UiPath, Viewer, form_value};
use crate::http::AppState;
use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use kizuna_domain::Error;
use kizuna_store::Org;
use kizuna_sync::mail;
use serde_json::{Map, Value, json};

/// A text input of the form: its name, label, type and value.
struct Input {
    name: String,
    label: &'static str,
    kind: &'static str,
    value: String,
}

struct Part {
    title: &'static str,
    /// The form name of its password (`carddav.password`).
    password_name: String,
    inputs: Vec<Input>,
    password_set: bool,
}

#[derive(Template)]
#[template(path = "mail.html")]
struct MailPage {
    c: Chrome,
    org: Org,
    connection: Option<(i64, String)>,
    parts: Vec<Part>,
    category: String,
    truncate: bool,
    auto_sync_minutes: String,
    error: Option<String>,
}

/// Words in English and Japanese.
type Words = (&'static str, &'static str);
/// A text field of a part: its settings key, its label, its input type.
type Field = (&'static str, Words, &'static str);

/// Each server part: its settings key, its title, and its text fields.
const PARTS: [(&str, Words, &[Field]); 4] = [
    (
        "carddav",
        ("Contacts (CardDAV)", "連絡先（CardDAV）"),
        &[
            ("url", ("Server address", "サーバーのアドレス"), "url"),
            ("username", ("User name", "ユーザー名"), "text"),
            (
                "address_book",
                (
                    "Address book (path, optional)",
                    "アドレス帳（パス、省略可）",
                ),
                "text",
            ),
        ],
    ),
    (
        "caldav",
        (
            "Calendar and tasks (CalDAV)",
            "カレンダーとタスク（CalDAV）",
        ),
        &[
            ("url", ("Server address", "サーバーのアドレス"), "url"),
            ("username", ("User name", "ユーザー名"), "text"),
        ],
    ),
    (
        "imap",
        ("Sent mail (IMAP)", "送信済みメール（IMAP）"),
        &[
            ("host", ("Server", "サーバー"), "text"),
            ("port", ("Port", "ポート"), "number"),
            ("username", ("User name", "ユーザー名"), "text"),
            ("sent_folder", ("Sent folder", "送信済みフォルダー"), "text"),
        ],
    ),
    (
        "smtp",
        ("Sending (SMTP)", "送信（SMTP）"),
        &[
            ("host", ("Server", "サーバー"), "text"),
            ("port", ("Port", "ポート"), "number"),
            ("username", ("User name", "ユーザー名"), "text"),
        ],
    ),
];

async fn mail_page(
    s: &AppState,
    viewer: &Viewer,
    org: Org,
    refused: Option<&Error>,
) -> UiResult<Response> {
    let l = viewer.lang;
    let existing = mail::connection_of(&s.store, org.id, viewer.session.user.id)
        .await
        .map_err(|e| viewer.fail(e))?;
    let settings = existing
        .as_ref()
        .map(|i| mail::settings::redacted(&i.settings.0))
        .unwrap_or(Value::Null);
    let shown = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let parts = PARTS
        .iter()
        .map(|(key, title, fields)| Part {
            title: l.of(title.0, title.1),
            password_name: format!("{key}.password"),
            password_set: settings[key]["password_set"] == json!(true),
            inputs: fields
                .iter()
                .map(|(field, label, kind)| Input {
                    name: format!("{key}.{field}"),
                    label: l.of(label.0, label.1),
                    kind,
                    value: shown(&settings[key][field]),
                })
                .collect(),
        })
        .collect();
    let status = super::page::refusal_status(refused);
    Ok(render(
        status,
        &MailPage {
            c: viewer.chrome(),
            connection: existing.as_ref().map(|i| (i.id, i.state.clone())),
            category: shown(&settings["category"]),
            truncate: settings["truncate"] == json!(true),
            auto_sync_minutes: shown(&settings["auto_sync_minutes"]),
            error: refused.map(|e| l.refusal(e)),
            org,
            parts,
        },
    ))
}

pub async fn page(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath(org): UiPath<i64>,
) -> UiResult<Response> {
    let (org, _) = viewer.org(&s, org).await?;
    mail_page(&s, &viewer, org, None).await
}

/// The settings the form sends, as the connection's settings: a server
/// part only when its address is given, a password only when typed.
fn settings_of(form: &[(String, String)]) -> Value {
    let given = |k: &str| form_value(form, k).map(str::trim).filter(|v| !v.is_empty());
    let mut out = Map::new();
    for (key, _, fields) in PARTS {
        let address = if matches!(key, "imap" | "smtp") {
            "host"
        } else {
            "url"
        };
        if given(&format!("{key}.{address}")).is_none() {
            continue;
        }
        let mut part = Map::new();
        for (field, _, kind) in fields.iter().chain(&[("password", ("", ""), "password")]) {
            if let Some(v) = given(&format!("{key}.{field}")) {
                let value = match *kind {
                    "number" => v.parse::<u64>().map_or_else(|_| json!(v), |n| json!(n)),
                    _ => json!(v),
                };
                part.insert(field.to_string(), value);
            }
        }
        out.insert(key.to_string(), Value::Object(part));
    }
    if let Some(c) = given("category") {
        out.insert("category".into(), json!(c));
    }
    out.insert("truncate".into(), json!(given("truncate").is_some()));
    if let Some(m) = given("auto_sync_minutes") {
        out.insert(
            "auto_sync_minutes".into(),
            m.parse::<i64>().map_or_else(|_| json!(m), |n| json!(n)),
        );
    }
    Value::Object(out)
}

pub async fn save(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath(org): UiPath<i64>,
    Form(form): Form<Vec<(String, String)>>,
) -> UiResult<Response> {
    viewer.check_form(&form)?;
    let (org, _) = viewer.org(&s, org).await?;
    let ctx = s.options.mail().map_err(|e| viewer.fail(e))?;
    let user = &viewer.session.user;
    let settings = settings_of(&form);
    let saved = match mail::connection_of(&s.store, org.id, user.id)
        .await
        .map_err(|e| viewer.fail(e))?
    {
        Some(i) => mail::set_settings(&s.store, ctx, user, i.id, &settings).await,
        None => mail::connect(&s.store, ctx, user, org.id, &settings).await,
    };
    match saved {
        Ok(_) => Ok(Redirect::to(&format!("/orgs/{}/mail", org.id)).into_response()),
        Err(e) if e.kind != kizuna_domain::Kind::Internal => {
            mail_page(&s, &viewer, org, Some(&e)).await
        }
        Err(e) => Err(viewer.fail(e)),
    }
}
