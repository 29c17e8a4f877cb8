//! Administration, for an org's administrators only (a member gets the
//! refusal that names the administrators): the plan, members and their
//! roles, Desk departments, modules on and off, and each module's fields —
//! custom fields added, fields renamed, marked unused or sortable. The rules are the apps' and
//! the store's; these pages only ask.

use super::page::{Chrome, UiResult, render};
use super::session::{UiPath, Viewer, form_value};
use crate::http::AppState;
use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use kizuna_domain::field::{FieldDef, FieldType};
use kizuna_domain::{App, Error, Role};
use kizuna_store::sort_index::check_sortable;
use kizuna_store::{Department, Member, Org};

impl Viewer {
    /// An org the viewer administers; a member is refused with the names
    /// of those who can do it.
    async fn admin_org(&self, s: &AppState, id: i64) -> UiResult<Org> {
        self.org(s, id).await?;
        s.store
            .org_for_admin(id, self.session.user.id)
            .await
            .map_err(|e| self.fail(e))
    }
}

type UiForm = Form<Vec<(String, String)>>;

fn to_settings(org: i64) -> Response {
    Redirect::to(&format!("/orgs/{org}/settings")).into_response()
}

struct ModuleRow {
    api_name: String,
    label: String,
    enabled: bool,
}

struct DepartmentRow {
    department: Department,
    members: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    c: Chrome,
    org: Org,
    plans: Vec<&'static str>,
    members: Vec<Member>,
    roles: [&'static str; 2],
    departments: Option<Vec<DepartmentRow>>,
    modules: Vec<ModuleRow>,
}

/// Settings of an org: plan, members, departments (Desk), modules.
pub async fn settings(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath(org): UiPath<i64>,
) -> UiResult<Response> {
    let org = viewer.admin_org(&s, org).await?;
    let fail = |e| viewer.fail(e);
    let app = App::parse(&org.app).map_err(fail)?;
    let members = s.store.members(org.id).await.map_err(fail)?;
    let departments = if app == App::Desk {
        let mut rows = Vec::new();
        for d in s.store.departments(org.id).await.map_err(fail)? {
            let ids = s.store.department_members(d.id).await.map_err(fail)?;
            rows.push(DepartmentRow {
                members: members
                    .iter()
                    .filter(|m| ids.contains(&m.user_id))
                    .map(|m| m.email.clone())
                    .collect(),
                department: d,
            });
        }
        Some(rows)
    } else {
        None
    };
    let modules = s
        .store
        .modules(org.id)
        .await
        .map_err(fail)?
        .into_iter()
        .map(|m| ModuleRow {
            label: super::pages::module_label(&m, viewer.lang),
            enabled: m.enabled,
            api_name: m.api_name,
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &AdminPage {
            c: viewer.chrome(),
            plans: app.plans().to_vec(),
            roles: [Role::Administrator.as_str(), Role::Member.as_str()],
            org,
            members,
            departments,
            modules,
        },
    ))
}

pub async fn set_plan(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath(org): UiPath<i64>,
    Form(form): UiForm,
) -> UiResult<Response> {
    viewer.check_form(&form)?;
    let org = viewer.admin_org(&s, org).await?;
    let plan = form_value(&form, "plan").unwrap_or_default();
    kizuna_sync::lifecycle::change_plan(&s.store, &org, plan, viewer.session.user.id)
        .await
        .map_err(|e| viewer.fail(e))?;
    Ok(to_settings(org.id))
}

pub async fn add_member(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath(org): UiPath<i64>,
    Form(form): UiForm,
) -> UiResult<Response> {
    viewer.check_form(&form)?;
    let org = viewer.admin_org(&s, org).await?;
    let fail = |e| viewer.fail(e);
    let role = Role::parse(form_value(&form, "role").unwrap_or("member")).map_err(fail)?;
    let user = s
        .store
        .require_user_by_email(form_value(&form, "email").unwrap_or_default())
        .await
        .map_err(fail)?;
    s.store
        .add_member(org.id, user.id, role)
        .await
        .map_err(fail)?;
    Ok(to_settings(org.id))
}

pub async fn set_role(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath((org, user)): UiPath<(i64, i64)>,
    Form(form): UiForm,
) -> UiResult<Response> {
    viewer.check_form(&form)?;
    let org = viewer.admin_org(&s, org).await?;
    let fail = |e| viewer.fail(e);
    let role = Role::parse(form_value(&form, "role").unwrap_or_default()).map_err(fail)?;
    s.store
        .set_member_role(org.id, user, role)
        .await
        .map_err(fail)?;
    Ok(to_settings(org.id))
}

pub async fn add_department(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath(org): UiPath<i64>,
    Form(form): UiForm,
) -> UiResult<Response> {
    viewer.check_form(&form)?;
    let org = viewer.admin_org(&s, org).await?;
    s.store
        .create_department(org.id, form_value(&form, "name").unwrap_or_default())
        .await
        .map_err(|e| viewer.fail(e))?;
    Ok(to_settings(org.id))
}

pub async fn add_department_member(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath((org, department)): UiPath<(i64, i64)>,
    Form(form): UiForm,
) -> UiResult<Response> {
    viewer.check_form(&form)?;
    let org = viewer.admin_org(&s, org).await?;
    let fail = |e| viewer.fail(e);
    let user = s
        .store
        .require_user_by_email(form_value(&form, "email").unwrap_or_default())
        .await
        .map_err(fail)?;
    s.store
        .add_department_member(org.id, department, user.id)
        .await
        .map_err(fail)?;
    Ok(to_settings(org.id))
}

/// Whether a form's `value` field says on (`true`) or off.
fn switch(form: &[(String, String)]) -> bool {
    form_value(form, "value") == Some("true")
}

pub async fn set_module_enabled(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath((org, module)): UiPath<(i64, String)>,
    Form(form): UiForm,
) -> UiResult<Response> {
    viewer.check_form(&form)?;
    let org = viewer.admin_org(&s, org).await?;
    s.store
        .set_module_enabled(org.id, &module, switch(&form))
        .await
        .map_err(|e| viewer.fail(e))?;
    Ok(to_settings(org.id))
}

#[derive(Template)]
#[template(path = "admin_fields.html")]
struct FieldsPage {
    c: Chrome,
    org: Org,
    module: String,
    label: String,
    fields: Vec<FieldRow>,
    types: Vec<&'static str>,
    error: Option<String>,
}

/// A field on its module's page, where its forms post, and whether it
/// could be sortable.
struct FieldRow {
    def: FieldDef,
    action: String,
    shown_label: String,
    can_sort: bool,
}

async fn fields_page(
    s: &AppState,
    viewer: &Viewer,
    org: Org,
    module: &str,
    refused: Option<&Error>,
) -> UiResult<Response> {
    let m = s
        .store
        .module(org.id, module)
        .await
        .map_err(|e| viewer.fail(e))?;
    let status = super::page::refusal_status(refused);
    let fields = m
        .fields
        .iter()
        .map(|f| FieldRow {
            action: format!(
                "/orgs/{}/settings/modules/{}/fields/{}",
                org.id, m.api_name, f.api_name
            ),
            shown_label: super::pages::field_label(f, viewer.lang),
            can_sort: check_sortable(&m.api_name, f).is_ok(),
            def: f.clone(),
        })
        .collect();
    Ok(render(
        status,
        &FieldsPage {
            c: viewer.chrome(),
            label: super::pages::module_label(&m, viewer.lang),
            module: m.api_name.clone(),
            fields,
            types: FieldType::ALL.iter().map(|t| t.as_str()).collect(),
            error: refused.map(|e| viewer.lang.refusal(e)),
            org,
        },
    ))
}

/// A module's fields: each one's labels, in use or not, sortable or not; and
/// a custom field form.
pub async fn fields(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath((org, module)): UiPath<(i64, String)>,
) -> UiResult<Response> {
    let org = viewer.admin_org(&s, org).await?;
    fields_page(&s, &viewer, org, &module, None).await
}

/// After one change of a module's fields: back to its page, or the page
/// again with the refusal (which changed nothing) above the fields.
async fn fields_changed(
    s: &AppState,
    viewer: &Viewer,
    org: Org,
    module: &str,
    done: kizuna_domain::Result<()>,
) -> UiResult<Response> {
    match done {
        Ok(()) => Ok(
            Redirect::to(&format!("/orgs/{}/settings/modules/{module}", org.id)).into_response(),
        ),
        Err(e) if e.kind != kizuna_domain::Kind::Internal => {
            fields_page(s, viewer, org, module, Some(&e)).await
        }
        Err(e) => Err(viewer.fail(e)),
    }
}

/// What a field's row on its module's page changes: the last segment of
/// the path its form posts to.
#[derive(serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FieldChange {
    /// Used or unused (`value`).
    InUse,
    /// Sortable or not (`value`): making one sortable builds its index,
    /// which on a large module takes seconds.
    Sortable,
    /// Its English and Japanese labels (`label`, `label_ja`).
    Labels,
}

/// One change of a field, from its row on the module's page.
pub async fn change_field(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath((org, module, field, change)): UiPath<(i64, String, String, FieldChange)>,
    Form(form): UiForm,
) -> UiResult<Response> {
    viewer.check_form(&form)?;
    let org = viewer.admin_org(&s, org).await?;
    let text = |k| Some(form_value(&form, k).unwrap_or_default());
    let change = match change {
        FieldChange::InUse => kizuna_store::FieldChange {
            in_use: Some(switch(&form)),
            ..Default::default()
        },
        FieldChange::Sortable => kizuna_store::FieldChange {
            sortable: Some(switch(&form)),
            ..Default::default()
        },
        FieldChange::Labels => kizuna_store::FieldChange {
            label: text("label"),
            label_ja: text("label_ja"),
            ..Default::default()
        },
    };
    let done = s.store.change_field(org.id, &module, &field, &change).await;
    fields_changed(&s, &viewer, org, &module, done).await
}

/// Adds a custom field; a refusal (a taken name, a bad length) is shown on
/// the page and adds nothing.
pub async fn add_field(
    State(s): State<AppState>,
    viewer: Viewer,
    UiPath((org, module)): UiPath<(i64, String)>,
    Form(form): UiForm,
) -> UiResult<Response> {
    viewer.check_form(&form)?;
    let org = viewer.admin_org(&s, org).await?;
    let given = |k| form_value(&form, k).unwrap_or_default().trim();
    let done = match FieldType::parse(given("type")) {
        None => Err(Error::bad_request(
            "unknown_field_type",
            "Choose one of the field types listed.",
            "一覧にある項目タイプを選んでください。",
        )),
        Some(field_type) => {
            let mut field = FieldDef::new(given("api_name"), field_type);
            field.label = given("label").to_string();
            field.label_ja = given("label_ja").to_string();
            field.sortable = given("sortable") == "true";
            field.max_length = given("max_length").parse().ok();
            field.picklist = given("picklist")
                .lines()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
                .collect();
            kizuna_apps::admin::add_custom_field(&s.store, org.id, &module, field)
                .await
                .map(drop)
        }
    };
    fields_changed(&s, &viewer, org, &module, done).await
}
