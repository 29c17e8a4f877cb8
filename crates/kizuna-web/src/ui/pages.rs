//! The pages: sign-in and sign-out, the app switcher, an org's modules, a
//! module's records (sort, filter, paging) and a record. Handlers read the
//! same apps and store as the API; what a page shows of an org is what its
//! member may read through the API.

use super::i18n::Lang;
use super::page::{Chrome, Shown, UiError, UiResult, render};
use super::session::{
    SESSION_COOKIE, SIGN_IN_COOKIE, UiPath, Viewer, Visit, check_token, local_path,
};
use crate::http::AppState;
use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use kizuna_domain::field::{FieldDef, ModuleDef};
use kizuna_domain::{Error, Kind, Role, Text};
use kizuna_store::{Org, Record, random_token};
use serde::Deserialize;
use serde_json::Value;

/// Failed sign-ins of one account within `SIGN_IN_WINDOW_MS` before it is
/// refused until the window has passed.
pub const MAX_SIGN_IN_FAILURES: i64 = 5;
pub const SIGN_IN_WINDOW_MS: i64 = 15 * 60 * 1000;

impl Viewer {
    pub(super) fn chrome(&self) -> Chrome {
        Chrome {
            l: self.lang,
            user: Some(self.session.user.name.clone()),
            csrf: self.session.csrf.clone(),
        }
    }

    pub(super) fn fail(&self, e: Error) -> UiError {
        UiError(e, self.lang)
    }

    /// An org the viewer is a member of, with their role; another org is
    /// not found, as in the API (its existence is not told).
    pub(super) async fn org(&self, s: &AppState, id: i64) -> UiResult<(Org, Role)> {
        s.store
            .orgs_of_user(self.session.user.id)
            .await
            .map_err(|e| self.fail(e))?
            .into_iter()
            .find(|(o, _)| o.id == id)
            .ok_or_else(|| self.fail(Error::not_found("Org", id)))
    }
}

impl Viewer {
    /// An enabled module of an org the viewer is a member of.
    pub(super) async fn module(
        &self,
        s: &AppState,
        org: i64,
        module: &str,
    ) -> UiResult<(Org, std::sync::Arc<ModuleDef>)> {
        let (org, _) = self.org(s, org).await?;
        let m = kizuna_apps::records::enabled_module(&s.store, &org, module)
            .await
            .map_err(|e| self.fail(e))?;
        Ok((org, m))
    }
}

pub async fn root(State(s): State<AppState>, visit: Visit) -> Response {
    let signed_in = match visit.cookie(SESSION_COOKIE) {
        Some(token) => s.store.session(token).await.ok().flatten().is_some(),
        None => false,
    };
    Redirect::to(if signed_in { "/home" } else { "/sign-in" }).into_response()
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    c: Chrome,
    next: String,
    email: String,
    error: Option<Shown>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// The sign-in form, with a fresh token in the form and in a cookie.
fn sign_in_page(
    visit: &Visit,
    status: StatusCode,
    next: &str,
    email: &str,
    error: Option<&Error>,
) -> Response {
    let csrf = random_token();
    let page = SignInPage {
        c: Chrome {
            l: visit.lang,
            user: None,
            csrf: csrf.clone(),
        },
        next: next.to_string(),
        email: email.to_string(),
        error: error.map(|e| Shown::of(e, visit.lang)),
    };
    let mut response = render(status, &page);
    response.headers_mut().append(
        header::SET_COOKIE,
        visit.set_cookie(SIGN_IN_COOKIE, Some(&csrf)),
    );
    response
}

pub async fn sign_in_form(visit: Visit, Query(q): Query<NextQuery>) -> Response {
    sign_in_page(
        &visit,
        StatusCode::OK,
        &local_path(q.next.as_deref()),
        "",
        None,
    )
}

#[derive(Deserialize)]
pub struct SignInForm {
    email: Option<String>,
    password: Option<String>,
    csrf: Option<String>,
    next: Option<String>,
}

fn too_many_sign_ins() -> Error {
    let minutes = SIGN_IN_WINDOW_MS / 60_000;
    Error::new(
        Kind::RateLimited,
        "too_many_sign_ins",
        Text::new(
            format!(
                "Too many failed sign-ins for this account: {MAX_SIGN_IN_FAILURES} within {minutes} minutes."
            ),
            format!(
                "このアカウントへのログインの失敗が多すぎます（{minutes} 分間に {MAX_SIGN_IN_FAILURES} 回）。"
            ),
        ),
        Text::new(
            format!(
                "Wait {minutes} minutes and try again, or ask an administrator to check the account."
            ),
            format!(
                "{minutes} 分待ってからもう一度お試しいただくか、管理者にアカウントの確認を依頼してください。"
            ),
        ),
    )
}

fn account_deactivated(email: &str) -> Error {
    Error::new(
        Kind::Unauthenticated,
        "user_deactivated",
        Text::new(
            format!("The account {email} is deactivated."),
            format!("アカウント {email} は無効化されています。"),
        ),
        Text::new(
            "Ask an administrator of your org to re-activate it.",
            "組織の管理者に再有効化を依頼してください。",
        ),
    )
}

pub async fn sign_in(
    State(s): State<AppState>,
    visit: Visit,
    Form(f): Form<SignInForm>,
) -> Response {
    let next = local_path(f.next.as_deref());
    let email = f.email.unwrap_or_default().trim().to_string();
    let again = |status, e: &Error| sign_in_page(&visit, status, &next, &email, Some(e));
    let expected = visit.cookie(SIGN_IN_COOKIE).unwrap_or_default();
    if let Err(e) = check_token(expected, f.csrf.as_deref()) {
        return again(StatusCode::FORBIDDEN, &e);
    }
    let now = kizuna_store::now_ms();
    let failures = match s
        .store
        .sign_in_failures(&email, now - SIGN_IN_WINDOW_MS)
        .await
    {
        Ok(n) => n,
        Err(e) => return UiError(e, visit.lang).into_response(),
    };
    if failures >= MAX_SIGN_IN_FAILURES {
        return again(StatusCode::TOO_MANY_REQUESTS, &too_many_sign_ins());
    }
    let user = match s
        .store
        .check_password(&email, &f.password.unwrap_or_default())
        .await
    {
        Ok(user) => user,
        Err(e) if e.code == "user_deactivated" => {
            return again(StatusCode::UNAUTHORIZED, &account_deactivated(&email));
        }
        Err(e) if e.kind == Kind::Unauthenticated => {
            if let Err(e) = s.store.record_sign_in_failure(&email).await {
                return UiError(e, visit.lang).into_response();
            }
            return again(StatusCode::UNAUTHORIZED, &e);
        }
        Err(e) => return UiError(e, visit.lang).into_response(),
    };
    let started = async {
        s.store
            .clear_sign_in_failures(&email, now - SIGN_IN_WINDOW_MS)
            .await?;
        // A session the browser already had ends: the id changes at sign-in.
        if let Some(old) = visit.cookie(SESSION_COOKIE)
            && let Some(old) = s.store.session(old).await?
        {
            s.store.remove_session(old.id).await?;
        }
        s.store.create_session(&user).await
    };
    match started.await {
        Ok((token, _)) => {
            let mut response = Redirect::to(&next).into_response();
            let headers = response.headers_mut();
            headers.append(
                header::SET_COOKIE,
                visit.set_cookie(SESSION_COOKIE, Some(&token)),
            );
            headers.append(header::SET_COOKIE, visit.set_cookie(SIGN_IN_COOKIE, None));
            response
        }
        Err(e) => UiError(e, visit.lang).into_response(),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: Option<String>,
}

pub async fn sign_out(
    State(s): State<AppState>,
    viewer: Viewer,
    Form(f): Form<CsrfForm>,
) -> UiResult<Response> {
    viewer.check_csrf(f.csrf.as_deref())?;
    s.store
        .remove_session(viewer.session.id)
        .await
        .map_err(|e| viewer.fail(e))?;
    let mut response = Redirect::to("/sign-in").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        viewer.visit.set_cookie(SESSION_COOKIE, None),
    );
    Ok(response)
}

/// An org as the app switcher lists it.
struct OrgEntry {
    id: i64,
    name: String,
    app: String,
    administrator: bool,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    c: Chrome,
    orgs: Vec<OrgEntry>,
}

/// The app switcher: every org the user belongs to, by app.
pub async fn home(State(s): State<AppState>, viewer: Viewer) -> UiResult<Response> {
    let mut orgs: Vec<OrgEntry> = s
        .store
        .orgs_of_user(viewer.session.user.id)
        .await
        .map_err(|e| viewer.fail(e))?
        .into_iter()
        .map(|(o, role)| OrgEntry {
            id: o.id,
            name: o.name,
            app: o.app,
            administrator: role == Role::Administrator,
        })
        .collect();
    orgs.sort_by(|a, b| (&a.app, &a.name).cmp(&(&b.app, &b.name)));
    Ok(render(
        StatusCode::OK,
        &HomePage {
            c: viewer.chrome(),
            orgs,
        },
    ))
}

/// A module as the org page lists it.
struct ModuleEntry {
    api_name: String,
    label: String,
}

pub(super) fn module_label(m: &ModuleDef, l: Lang) -> String {
    l.of(&m.label, &m.label_ja).to_string()
}

/// A field's label in the reader's language (English where there is no
/// Japanese one).
pub(super) fn field_label(f: &FieldDef, l: Lang) -> String {
    f.label_in(l == Lang::Ja).to_string()
}

#[derive(Template)]
#[template(path = "org.html")]
struct OrgPage {
    c: Chrome,
    administrator: bool,
    org: Org,
    modules: Vec<ModuleEntry>,
}

pub async fn org_page(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath(org): UiPath<i64>,
) -> UiResult<Response> {
    let (org, role) = viewer.org(&s, org).await?;
    let modules = s
        .store
        .modules(org.id)
        .await
        .map_err(|e| viewer.fail(e))?
        .into_iter()
        .filter(|m| m.enabled)
        .map(|m| ModuleEntry {
            label: module_label(&m, viewer.lang),
            api_name: m.api_name,
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &OrgPage {
            c: viewer.chrome(),
            administrator: role == Role::Administrator,
            org,
            modules,
        },
    ))
}

/// A column of the list: a field, and where its header's link sorts (a
/// sortable field's).
struct Column {
    api_name: String,
    label: String,
    sort_link: Option<String>,
    /// `asc`, `desc`, or empty: how the list is sorted by it now.
    sorted: &'static str,
}

struct Row {
    id: i64,
    cells: Vec<String>,
}

#[derive(Template)]
#[template(path = "records.html")]
struct RecordsPage {
    c: Chrome,
    org: Org,
    module: String,
    label: String,
    columns: Vec<Column>,
    rows: Vec<Row>,
    filter_field: String,
    filter_value: String,
    next_link: Option<String>,
}

/// The most columns a list shows: the module's first fields in use.
const LIST_COLUMNS: usize = 6;

/// A query string of `params` (percent-encoded).
fn query(params: &[(String, String)]) -> String {
    let pairs: Vec<String> = params
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                super::session::encode(k),
                super::session::encode(v)
            )
        })
        .collect();
    pairs.join("&")
}

/// A module's records: sorted by a column's header, filtered by one
/// field, a page at a time (the API's cursor).
pub async fn records_page(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath((org, module)): UiPath<(i64, String)>,
    Query(params): Query<Vec<(String, String)>>,
) -> UiResult<Response> {
    let (org, m) = viewer.module(&s, org, &module).await?;
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let (filter_field, filter_value) = (
        get("filter_field").unwrap_or_default(),
        get("filter_value").unwrap_or_default(),
    );
    let (sort, order) = (get("sort"), get("order").unwrap_or_else(|| "asc".into()));
    // The list's own parameters, in the API's words.
    let mut list: Vec<(String, String)> = vec![("limit".into(), "50".into())];
    if let Some(sort) = &sort {
        list.push(("sort".into(), sort.clone()));
        list.push(("order".into(), order.clone()));
    }
    if !filter_field.is_empty() && !filter_value.is_empty() {
        list.push((filter_field.clone(), filter_value.clone()));
    }
    let kept = list.clone();
    if let Some(cursor) = get("cursor") {
        list.push(("cursor".into(), cursor));
    }
    let page = kizuna_apps::records::list(&s.store, &org, &module, &list)
        .await
        .map_err(|e| viewer.fail(e))?;
    let base = format!("/orgs/{}/modules/{}", org.id, m.api_name);
    let shown: Vec<_> = m
        .fields
        .iter()
        .filter(|f| f.in_use)
        .take(LIST_COLUMNS)
        .collect();
    let filters: Vec<(String, String)> = if filter_field.is_empty() {
        Vec::new()
    } else {
        vec![
            ("filter_field".into(), filter_field.clone()),
            ("filter_value".into(), filter_value.clone()),
        ]
    };
    let columns = shown
        .iter()
        .map(|f| {
            let sorted = match (&sort, order.as_str()) {
                (Some(s), "desc") if *s == f.api_name => "desc",
                (Some(s), _) if *s == f.api_name => "asc",
                _ => "",
            };
            // Only a sortable field's header sorts: another would read the
            // whole module (sort_index.rs).
            let sort_link = f.sortable.then(|| {
                let mut p = filters.clone();
                p.push(("sort".into(), f.api_name.clone()));
                p.push((
                    "order".into(),
                    if sorted == "asc" { "desc" } else { "asc" }.into(),
                ));
                format!("{base}?{}", query(&p))
            });
            Column {
                api_name: f.api_name.clone(),
                label: field_label(f, viewer.lang),
                sort_link,
                sorted,
            }
        })
        .collect();
    let rows = page
        .records
        .iter()
        .map(|r: &Record| Row {
            id: r.id,
            cells: shown
                .iter()
                .map(|f| super::forms::shown(f, r.fields.get(&f.api_name), viewer.tz))
                .collect(),
        })
        .collect();
    let next_link = page.next_cursor.map(|c| {
        let mut p: Vec<(String, String)> = kept
            .into_iter()
            .filter(|(k, _)| k == "sort" || k == "order")
            .collect();
        p.extend(filters.clone());
        p.push(("cursor".into(), c));
        format!("{base}?{}", query(&p))
    });
    Ok(render(
        StatusCode::OK,
        &RecordsPage {
            c: viewer.chrome(),
            label: module_label(&m, viewer.lang),
            module: m.api_name.clone(),
            org,
            columns,
            rows,
            filter_field,
            filter_value,
            next_link,
        },
    ))
}

struct FieldEntry {
    label: String,
    value: String,
}

/// A related list of the record page: its first records, each linked.
struct RelatedList {
    name: String,
    label: String,
    /// (link, title) of each record shown.
    rows: Vec<(String, String)>,
    more: bool,
    /// What the list does not show, and why (another department's tickets).
    note: Option<String>,
}

#[derive(Template)]
#[template(path = "record.html")]
struct RecordPage {
    c: Chrome,
    org: Org,
    module: String,
    label: String,
    id: i64,
    fields: Vec<FieldEntry>,
    related: Vec<RelatedList>,
}

/// Records a related list shows on the record's page.
const RELATED_SHOWN: u32 = 10;

/// The record's related lists: every module whose lookup can point at its
/// module (present even while empty), every module with records associated
/// with it, and its Desk tickets when the org's Desk integration carries
/// them (DSK-10), filtered by the viewer's departments (DSK-7).
async fn related_lists(
    s: &AppState,
    viewer: &Viewer,
    org: &Org,
    m: &ModuleDef,
    id: i64,
) -> UiResult<Vec<RelatedList>> {
    let fail = |e| viewer.fail(e);
    let modules = s.store.modules(org.id).await.map_err(fail)?;
    let mut names: Vec<String> = modules
        .iter()
        .filter(|o| o.enabled)
        .filter(|o| {
            o.fields
                .iter()
                .any(|f| f.lookup_module.as_deref() == Some(m.api_name.as_str()))
        })
        .map(|o| o.api_name.clone())
        .collect();
    for name in s.store.related_modules(org.id, id).await.map_err(fail)? {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let mut lists = Vec::new();
    for name in names {
        let Some(def) = modules.iter().find(|o| o.api_name == name && o.enabled) else {
            continue;
        };
        let rows = s
            .store
            .related_records(org.id, id, &name, None, RELATED_SHOWN + 1)
            .await
            .map_err(fail)?;
        lists.push(RelatedList {
            label: module_label(def, viewer.lang),
            more: rows.len() > RELATED_SHOWN as usize,
            rows: rows
                .iter()
                .take(RELATED_SHOWN as usize)
                .map(|r| {
                    (
                        format!("/orgs/{}/modules/{name}/{}", org.id, r.id),
                        format!("#{} {}", r.id, title(def, r)),
                    )
                })
                .collect(),
            name,
            note: None,
        });
    }
    let desk = kizuna_sync::desk_tickets::list(
        &s.store,
        &viewer.session.user,
        org,
        &m.api_name,
        id,
        None,
        RELATED_SHOWN,
    )
    .await;
    // No Desk integration, or a module without the list: no list to show.
    if let Ok(t) = desk {
        lists.push(RelatedList {
            name: kizuna_sync::desk_tickets::DESK_TICKETS.to_string(),
            label: viewer.lang.of("Desk tickets", "Desk チケット").to_string(),
            rows: t
                .records
                .iter()
                .map(|r| {
                    (
                        format!("/orgs/{}/modules/Tickets/{}", t.desk_org, r.id),
                        format!(
                            "#{} {}",
                            r.id,
                            r.fields
                                .get("Subject")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                        ),
                    )
                })
                .collect(),
            more: t.next_after.is_some(),
            note: t.hidden_why.as_ref().map(|w| viewer.lang.text(w)),
        });
    }
    Ok(lists)
}

/// One record: every field in use, by its label.
pub async fn record_page(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath((org, module, id)): UiPath<(i64, String, i64)>,
) -> UiResult<Response> {
    let (org, m) = viewer.module(&s, org, &module).await?;
    let r = s
        .store
        .record(org.id, &m.api_name, id)
        .await
        .map_err(|e| viewer.fail(e))?;
    let fields = m
        .fields
        .iter()
        .filter(|f| f.in_use)
        .map(|f| FieldEntry {
            label: field_label(f, viewer.lang),
            value: super::forms::shown(f, r.fields.get(&f.api_name), viewer.tz),
        })
        .collect();
    let related = related_lists(&s, &viewer, &org, &m, id).await?;
    Ok(render(
        StatusCode::OK,
        &RecordPage {
            c: viewer.chrome(),
            label: module_label(&m, viewer.lang),
            module: m.api_name.clone(),
            org,
            id,
            fields,
            related,
        },
    ))
}

/// What names a record in a list of several modules' records: its first
/// two text values, in the module's field order (a contact's names).
fn title(m: &ModuleDef, r: &Record) -> String {
    m.fields
        .iter()
        .filter(|f| f.field_type == kizuna_domain::field::FieldType::Text)
        .filter_map(|f| r.fields.get(&f.api_name).and_then(Value::as_str))
        .filter(|v| !v.is_empty())
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

struct BinRow {
    module: String,
    id: i64,
    title: String,
}

#[derive(Template)]
#[template(path = "bin.html")]
struct BinPage {
    c: Chrome,
    org: Org,
    rows: Vec<BinRow>,
}

/// The org's recycle bin, newest first, each record with a restore button.
pub async fn bin_page(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath(org): UiPath<i64>,
) -> UiResult<Response> {
    let (org, _) = viewer.org(&s, org).await?;
    let modules = s.store.modules(org.id).await.map_err(|e| viewer.fail(e))?;
    let rows = s
        .store
        .recycle_bin(org.id, 500)
        .await
        .map_err(|e| viewer.fail(e))?
        .into_iter()
        .map(|r| BinRow {
            title: modules
                .iter()
                .find(|m| m.api_name == r.module)
                .map(|m| title(m, &r))
                .unwrap_or_default(),
            module: r.module,
            id: r.id,
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &BinPage {
            c: viewer.chrome(),
            org,
            rows,
        },
    ))
}
