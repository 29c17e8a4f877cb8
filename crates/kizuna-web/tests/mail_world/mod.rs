//! What the mail-connector test binaries share: a CRM with a member's
//! CardDAV connection to a real Radicale, records made and read over the
//! API, and a run's counts.

use kizuna_domain::{App, Role};
use kizuna_testkit::radicale::{PASSWORD, Radicale, USER};
use kizuna_testkit::{Actor, Backend, TestApp};
use serde_json::{Value, json};

/// A run's added, updated, linked, deleted, skipped and failed.
pub fn counts(run: &Value) -> [i64; 6] {
    ["added", "updated", "linked", "deleted", "skipped", "failed"]
        .map(|k| run[k].as_i64().expect(k))
}

/// A text field of a record as the API shows it ("" when absent).
pub fn field<'a>(r: &'a Value, f: &str) -> &'a str {
    r["fields"][f].as_str().unwrap_or_default()
}

/// Creates a record over the API; its id.
pub async fn create(app: &TestApp, org: i64, key: &str, module: &str, fields: Value) -> i64 {
    let (status, body) = app
        .post(
            &format!("/api/v1/orgs/{org}/modules/{module}/records"),
            key,
            &json!({ "fields": fields }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_i64().expect("id")
}

/// The first hundred records of a module.
pub async fn records(app: &TestApp, org: i64, key: &str, module: &str) -> Vec<Value> {
    let (status, body) = app
        .get(
            &format!("/api/v1/orgs/{org}/modules/{module}/records?limit=100"),
            key,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["records"].as_array().expect("records").clone()
}

/// A CRM org, a member (not an administrator) who owns the connection, and
/// a Radicale with one address book.
pub struct CardDavWorld {
    pub app: TestApp,
    pub crm: i64,
    pub admin: Actor,
    pub rep: Actor,
    pub dav: Radicale,
    pub book: String,
}

pub async fn carddav_world(test: &str) -> Option<CardDavWorld> {
    let dav = Radicale::start(test)?;
    let app = TestApp::spawn(Backend::Sqlite, test).await?;
    let admin = app.actor("admin@example.jp").await;
    let rep = app.actor("rep@example.jp").await;
    let crm = app.org(App::Crm, "enterprise", &admin).await.id;
    app.store
        .add_member(crm, rep.user.id, Role::Member)
        .await
        .expect("member");
    let book = dav.make_address_book("contacts").await;
    Some(CardDavWorld {
        app,
        crm,
        admin,
        rep,
        dav,
        book,
    })
}

impl CardDavWorld {
    /// The rep's connection to the address book, with `extra` settings.
    pub async fn connect(&self, extra: Value) -> i64 {
        let mut settings = json!({"carddav": {
            "url": self.dav.url(), "username": USER, "password": PASSWORD, "address_book": self.book
        }});
        for (k, v) in extra.as_object().expect("an object") {
            settings[k] = v.clone();
        }
        let (status, body) = self
            .app
            .post(
                "/api/v1/integrations",
                &self.rep.key,
                &json!({"kind": "crm-mail", "from_org": self.crm, "settings": settings}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_i64().expect("an id")
    }

    /// Syncs as the rep; the one run of the address book.
    pub async fn sync(&self, id: i64) -> Value {
        let (status, body) = self
            .app
            .post(
                &format!("/api/v1/integrations/{id}/sync"),
                &self.rep.key,
                &json!({}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let runs = body["runs"].as_array().expect("runs");
        assert_eq!(runs.len(), 1, "{body}");
        runs[0].clone()
    }

    pub async fn contacts(&self) -> Vec<Value> {
        let (status, body) = self
            .app
            .get(
                &format!(
                    "/api/v1/orgs/{}/modules/Contacts/records?limit=100",
                    self.crm
                ),
                &self.admin.key,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["records"].as_array().expect("records").clone()
    }

    pub async fn items(&self, id: i64, run: &Value) -> Vec<Value> {
        let (status, body) = self
            .app
            .get(
                &format!("/api/v1/integrations/{id}/history/{}/items", run["id"]),
                &self.rep.key,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().expect("items").clone()
    }
}
