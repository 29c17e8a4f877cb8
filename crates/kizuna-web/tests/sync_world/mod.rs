//! A CRM org and an org of another app (Events, Desk) with one
//! administrator, linked and active, and what the sync tests ask of them over
//! HTTP.

use kizuna_domain::App;
use kizuna_store::Org;
use kizuna_testkit::{Actor, Backend, TestApp};
use serde_json::{Value, json};

/// A CRM org and another app's org with one administrator, linked and active.
pub struct World {
    pub app: TestApp,
    pub admin: Actor,
    pub crm: Org,
    /// The Events or Desk org.
    pub other: Org,
    pub id: i64,
}

impl World {
    /// CRM ⇄ Events.
    pub async fn new(backend: Backend, test: &str, settings: Value) -> Option<World> {
        Self::linked(backend, test, App::Events, settings).await
    }

    /// CRM ⇄ `other`'s app (`crm-events`, `crm-desk`).
    pub async fn linked(
        backend: Backend,
        test: &str,
        other: App,
        settings: Value,
    ) -> Option<World> {
        let app = TestApp::spawn(backend, test).await?;
        let admin = app.actor("admin@example.com").await;
        let crm = app.org(App::Crm, "standard", &admin).await;
        let other = app.org(other, "standard", &admin).await;
        let kind = format!("crm-{}", other.app().expect("an app").as_str());
        let (status, l) = app
            .post(
                "/api/v1/integrations",
                &admin.key,
                &json!({"kind": kind, "from_org": crm.id, "to_org": other.id, "settings": settings}),
            )
            .await;
        assert_eq!(status, 201, "{l}");
        let id = l["id"].as_i64().expect("an id");
        let (status, body) = app
            .call(
                "POST",
                &format!("/api/v1/integrations/{id}/enable"),
                Some(&admin.key),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        Some(World {
            app,
            admin,
            crm,
            other,
            id,
        })
    }

    pub fn events(&self) -> &Org {
        &self.other
    }

    pub fn desk(&self) -> &Org {
        &self.other
    }

    pub fn records(org: &Org, module: &str) -> String {
        format!("/api/v1/orgs/{}/modules/{module}/records", org.id)
    }

    pub async fn create(&self, org: &Org, module: &str, fields: Value) -> i64 {
        let (status, body) = self
            .app
            .post(
                &Self::records(org, module),
                &self.admin.key,
                &json!({"fields": fields}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_i64().expect("an id")
    }

    pub async fn edit(&self, org: &Org, module: &str, id: i64, fields: Value) {
        let (status, body) = self
            .app
            .patch(
                &format!("{}/{id}", Self::records(org, module)),
                &self.admin.key,
                &json!({"fields": fields}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    pub async fn event(&self, name: &str) -> i64 {
        self.create(
            &self.other,
            "Events",
            json!({"Event_Name": name, "Status": "Live"}),
        )
        .await
    }

    pub async fn attendee(&self, event: i64, email: &str, last: &str, status: &str) -> i64 {
        self.create(
            &self.other,
            "Attendees",
            json!({"Email": email, "First_Name": "Aki", "Last_Name": last, "Event": event, "Status": status}),
        )
        .await
    }

    pub async fn list(&self, org: &Org, module: &str) -> Vec<Value> {
        let (status, body) = self
            .app
            .get(
                &format!("{}?limit=1000", Self::records(org, module)),
                &self.admin.key,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["records"].as_array().cloned().unwrap_or_default()
    }

    pub async fn related(&self, org: &Org, module: &str, id: i64, list: &str) -> Vec<i64> {
        let (_, body) = self
            .app
            .get(
                &format!("{}/{id}/related/{list}", Self::records(org, module)),
                &self.admin.key,
            )
            .await;
        body["records"]
            .as_array()
            .map(|rs| rs.iter().filter_map(|r| r["id"].as_i64()).collect())
            .unwrap_or_default()
    }

    pub async fn one(&self, org: &Org, module: &str, id: i64) -> Value {
        let (status, body) = self
            .app
            .get(
                &format!("{}/{id}", World::records(org, module)),
                &self.admin.key,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub async fn call(&self, action: &str, body: Option<&Value>) -> Value {
        let (status, answer) = self
            .app
            .call(
                "POST",
                &format!("/api/v1/integrations/{}/{action}", self.id),
                Some(&self.admin.key),
                body,
            )
            .await;
        assert_eq!(status, 200, "{action}: {answer}");
        answer
    }

    pub async fn settings(&self, body: Value) {
        let (status, answer) = self
            .app
            .patch(
                &format!("/api/v1/integrations/{}/settings", self.id),
                &self.admin.key,
                &body,
            )
            .await;
        assert_eq!(status, 200, "{answer}");
    }

    /// The items of every run of `data_type` in the history, both directions.
    pub async fn items(&self, data_type: &str) -> Vec<Value> {
        let runs = self.history().await;
        runs.iter()
            .filter(|r| r["data_type"] == data_type)
            .flat_map(|r| r["items"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    pub async fn custom_field(&self, org: &Org, module: &str, def: Value) {
        let (status, body) = self
            .app
            .post(
                &format!("/api/v1/orgs/{}/modules/{module}/fields", org.id),
                &self.admin.key,
                &def,
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    /// Runs a sync; returns its runs.
    pub async fn sync(&self) -> Vec<Value> {
        let (status, body) = self
            .app
            .call(
                "POST",
                &format!("/api/v1/integrations/{}/sync", self.id),
                Some(&self.admin.key),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["runs"].as_array().cloned().unwrap_or_default()
    }

    pub async fn history(&self) -> Vec<Value> {
        let (status, body) = self
            .app
            .get(
                &format!("/api/v1/integrations/{}/history?limit=100", self.id),
                &self.admin.key,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["runs"].as_array().cloned().unwrap_or_default()
    }
}

/// The run of `data_type` among a sync's runs.
pub fn run<'a>(runs: &'a [Value], data_type: &str) -> &'a Value {
    runs.iter()
        .find(|r| r["data_type"] == data_type)
        .unwrap_or_else(|| panic!("no {data_type} run in {runs:?}"))
}

pub fn writes(runs: &[Value]) -> i64 {
    runs.iter()
        .map(|r| {
            ["added", "updated", "deleted", "linked"]
                .iter()
                .map(|k| r[*k].as_i64().unwrap_or(0))
                .sum::<i64>()
        })
        .sum()
}

pub fn field<'a>(records: &'a [Value], name: &str, value: &str) -> Option<&'a Value> {
    records.iter().find(|r| r["fields"][name] == value)
}

pub fn yen(amount: i64) -> Value {
    json!({"amount_minor": amount, "currency": "JPY"})
}

pub async fn world(test: &str) -> World {
    World::new(Backend::Sqlite, test, json!({}))
        .await
        .expect("SQLite")
}
