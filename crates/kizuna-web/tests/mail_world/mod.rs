//! What the mail-connector test binaries share: records made and read over
//! the API, and a run's counts.

use kizuna_testkit::TestApp;
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
