//! Helpers shared by the integration tests: a CRM org and an Events org with
//! an administrator each, and the link between them.

use kizuna_domain::App;
use kizuna_store::Org;
use kizuna_testkit::{Actor, Backend, TestApp};

use serde_json::{Value, json};

pub struct Setup {
    pub app: TestApp,
    pub crm_admin: Actor,
    pub events_admin: Actor,
    pub crm: Org,
    pub events: Org,
}

/// A CRM org and an Events org with an administrator each; the CRM
/// administrator is also a member (not administrator) of the Events org, as
/// setting up needs access to both.
pub async fn setup(crm_plan: &str) -> Setup {
    let app = TestApp::spawn(Backend::Sqlite, "integrations")
        .await
        .expect("SQLite");
    let crm_admin = app.actor("crm-admin@example.com").await;
    let events_admin = app.actor("events-admin@example.com").await;
    let crm = app.org(App::Crm, crm_plan, &crm_admin).await;
    let events = app.org(App::Events, "standard", &events_admin).await;
    app.store
        .add_member(events.id, crm_admin.user.id, kizuna_domain::Role::Member)
        .await
        .expect("member");
    Setup {
        app,
        crm_admin,
        events_admin,
        crm,
        events,
    }
}

pub async fn link(s: &Setup) -> (u16, Value) {
    s.app
        .post(
            "/api/v1/integrations",
            &s.crm_admin.key,
            &json!({"kind": "crm-events", "from_org": s.crm.id, "to_org": s.events.id, "settings": {"target_module": "Leads"}}),
        )
        .await
}

pub fn path(id: &Value, action: &str) -> String {
    format!("/api/v1/integrations/{id}/{action}")
}

/// A CRM org (standard plan) and its administrator, on SQLite.
pub async fn crm() -> (TestApp, Actor, Org) {
    let app = TestApp::spawn(Backend::Sqlite, "api")
        .await
        .expect("SQLite is always there");
    let admin = app.actor("admin@crm.example").await;
    let org = app.org(App::Crm, "standard", &admin).await;
    (app, admin, org)
}

pub fn records(org: &Org, module: &str) -> String {
    format!("/api/v1/orgs/{}/modules/{module}/records", org.id)
}
