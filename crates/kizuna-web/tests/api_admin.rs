//! Administration over the REST API: roles, plans, modules, fields, keys.

use common::{crm, records};
use kizuna_testkit::code;
use serde_json::json;

#[allow(dead_code)]
mod common;

#[tokio::test]
async fn gen_1_members_are_refused_administration_with_the_administrators_named() {
    let (app, admin, org) = crm().await;
    let member = app.actor("member@crm.example").await;
    let (s, body) = app
        .post(
            &format!("/api/v1/orgs/{}/members", org.id),
            &admin.key,
            &json!({"email": member.user.email, "role": "member"}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    // A member may work with records…
    let (s, _) = app
        .post(
            &records(&org, "Contacts"),
            &member.key,
            &json!({"fields": {"Last_Name": "by member"}}),
        )
        .await;
    assert_eq!(s, 201);
    // …but not administer the org.
    for (method, path, body) in [
        (
            "POST",
            format!("/api/v1/orgs/{}/modules/Contacts/fields", org.id),
            json!({"api_name": "X", "label": "X", "type": "text"}),
        ),
        (
            "PATCH",
            format!("/api/v1/orgs/{}", org.id),
            json!({"plan": "enterprise"}),
        ),
        (
            "PATCH",
            format!("/api/v1/orgs/{}/modules/Leads", org.id),
            json!({"enabled": false}),
        ),
    ] {
        let (s, answer) = app
            .call(method, &path, Some(&member.key), Some(&body))
            .await;
        assert_eq!(s, 403, "{method} {path}: {answer}");
        assert_eq!(code(&answer), "admin_required");
        assert_eq!(answer["error"]["rule"], "GEN-1");
        assert!(
            answer["error"]["fix"]["en"]
                .as_str()
                .unwrap_or("")
                .contains("admin@crm.example")
        );
        assert!(
            answer["error"]["fix"]["ja"]
                .as_str()
                .unwrap_or("")
                .contains("admin@crm.example")
        );
    }
    // The last administrator cannot be demoted.
    let (s, body) = app
        .patch(
            &format!("/api/v1/orgs/{}/members/{}", org.id, admin.user.id),
            &admin.key,
            &json!({"role": "member"}),
        )
        .await;
    assert_eq!((s, code(&body)), (409, "last_administrator"));
    let (s, body) = app
        .patch(
            &format!("/api/v1/orgs/{}/members/{}", org.id, member.user.id),
            &admin.key,
            &json!({"role": "administrator"}),
        )
        .await;
    assert_eq!((s, &body["role"]), (200, &json!("administrator")));
}

#[tokio::test]
async fn plan_changes_are_recorded_and_unknown_plans_refused() {
    let (app, admin, org) = crm().await;
    let url = format!("/api/v1/orgs/{}", org.id);
    let (s, body) = app
        .patch(
            &url,
            &admin.key,
            &json!({"plan": "free", "currency": "JPY"}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = app
        .patch(&url, &admin.key, &json!({"plan": "platinum"}))
        .await;
    assert_eq!((s, code(&body)), (400, "unknown_plan"));
    assert!(
        body["error"]["message"]["en"]
            .as_str()
            .unwrap_or("")
            .contains("enterprise")
    );
    let (_, read) = app.get(&url, &admin.key).await;
    assert_eq!(read["plan"], "free");
    assert_eq!(read["currency"], "JPY");
    let changes: Vec<&str> = read["plan_changes"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|c| c["to_plan"].as_str())
        .collect();
    assert_eq!(changes, ["standard", "free"]);
}

#[tokio::test]
async fn disabled_modules_and_unused_fields_take_no_values() {
    let (app, admin, org) = crm().await;
    // Each is used once first (its metadata is then cached); the change that
    // follows must be seen at once.
    let (s, _) = app
        .post(
            &records(&org, "Leads"),
            &admin.key,
            &json!({"fields": {"Last_Name": "before"}}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = app
        .post(
            &records(&org, "Accounts"),
            &admin.key,
            &json!({"fields": {"Account_Name": "y", "Website": "https://y.example"}}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = app
        .patch(
            &format!("/api/v1/orgs/{}/modules/Leads", org.id),
            &admin.key,
            &json!({"enabled": false}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, body) = app
        .post(
            &records(&org, "Leads"),
            &admin.key,
            &json!({"fields": {"Last_Name": "x"}}),
        )
        .await;
    assert_eq!((s, code(&body)), (400, "module_disabled"));
    let (s, _) = app
        .patch(
            &format!("/api/v1/orgs/{}/modules/Accounts/fields/Website", org.id),
            &admin.key,
            &json!({"in_use": false}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, body) = app
        .post(
            &records(&org, "Accounts"),
            &admin.key,
            &json!({"fields": {"Account_Name": "x", "Website": "https://x.example"}}),
        )
        .await;
    assert_eq!((s, code(&body)), (400, "field_unused"));
    let (s, body) = app
        .patch(
            &format!(
                "/api/v1/orgs/{}/modules/Accounts/fields/Account_Name",
                org.id
            ),
            &admin.key,
            &json!({"in_use": false}),
        )
        .await;
    assert_eq!((s, code(&body)), (400, "field_required"));
    let (_, modules) = app
        .get(&format!("/api/v1/orgs/{}/modules", org.id), &admin.key)
        .await;
    let leads = modules["modules"]
        .as_array()
        .expect("modules")
        .iter()
        .find(|m| m["api_name"] == "Leads")
        .cloned()
        .expect("Leads");
    assert_eq!(leads["enabled"], false);
}

#[tokio::test]
async fn every_field_type_round_trips_through_a_custom_field() {
    let (app, admin, org) = crm().await;
    let values = [
        ("text", json!("テキスト")),
        ("textarea", json!("line 1\nline 2")),
        ("email", json!("a@b.example")),
        ("phone", json!("+81 3-1234-5678")),
        ("url", json!("https://kizuna.example/x")),
        ("multiselect", json!(["A", "B"])),
        ("date", json!("2026-04-01")),
        ("datetime", json!("2026-04-01T00:30:00Z")),
        ("integer", json!(42)),
        ("decimal", json!(1.5)),
        (
            "currency",
            json!({"amount_minor": 150000, "currency": "JPY"}),
        ),
        ("percent", json!(12.5)),
        ("boolean", json!(true)),
        ("file", json!("contract.pdf")),
    ];
    let mut fields = serde_json::Map::new();
    fields.insert("Last_Name".into(), json!("types"));
    for (t, v) in &values {
        let name = format!("C_{t}");
        let mut def = json!({"api_name": name, "label": name, "type": t});
        if *t == "multiselect" {
            def["picklist"] = json!(["A", "B", "C"]);
        }
        let (s, body) = app
            .post(
                &format!("/api/v1/orgs/{}/modules/Contacts/fields", org.id),
                &admin.key,
                &def,
            )
            .await;
        assert_eq!(s, 201, "{t}: {body}");
        fields.insert(name, v.clone());
    }
    let (s, created) = app
        .post(
            &records(&org, "Contacts"),
            &admin.key,
            &json!({"fields": fields}),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let (_, read) = app
        .get(
            &format!("{}/{}", records(&org, "Contacts"), created["id"]),
            &admin.key,
        )
        .await;
    for (t, v) in &values {
        assert_eq!(&read["fields"][format!("C_{t}")], v, "{t}");
    }
    // A datetime with an offset is stored in UTC.
    let (_, updated) = app
        .patch(
            &format!("{}/{}", records(&org, "Contacts"), created["id"]),
            &admin.key,
            &json!({"fields": {"C_datetime": "2026-04-01T09:30:00+09:00"}}),
        )
        .await;
    assert_eq!(updated["fields"]["C_datetime"], "2026-04-01T00:30:00Z");
    let (s, body) = app
        .post(
            &format!("/api/v1/orgs/{}/modules/Contacts/fields", org.id),
            &admin.key,
            &json!({"api_name": "C_text", "label": "again", "type": "text"}),
        )
        .await;
    assert_eq!((s, code(&body)), (409, "already_exists"));
}

#[tokio::test]
async fn a_revoked_key_is_refused_and_the_others_keep_working() {
    let (app, admin, _) = crm().await;
    let (_, second) = app.store.create_api_key(admin.user.id).await.expect("key");
    let (s, keys) = app.get("/api/v1/me/keys", &admin.key).await;
    assert_eq!(s, 200);
    let listed = keys["keys"].as_array().expect("keys");
    assert_eq!(listed.len(), 2);
    assert!(
        !keys.to_string().contains(&second),
        "a key is never shown again"
    );
    let first_id = listed[1]["id"].as_i64().expect("id");
    let (s, _) = app
        .delete(&format!("/api/v1/me/keys/{first_id}"), &second)
        .await;
    assert_eq!(s, 200);
    let (s, body) = app.get("/api/v1/me", &admin.key).await;
    assert_eq!((s, code(&body)), (401, "key_revoked"));
    let (s, _) = app.get("/api/v1/me", &second).await;
    assert_eq!(s, 200);
    let (s, body) = app
        .delete(&format!("/api/v1/me/keys/{first_id}"), &second)
        .await;
    assert_eq!((s, code(&body)), (404, "not_found"), "revoking twice");
}

#[tokio::test]
async fn a_custom_module_is_checked_whole_before_anything_is_written() {
    let (app, admin, org) = crm().await;
    let url = format!("/api/v1/orgs/{}/modules", org.id);
    let before = kizuna_testkit::fingerprint(&app.store).await;
    for (body, status, expected) in [
        (json!({"api_name": "1bad"}), 400, "invalid_api_name"),
        (json!({"api_name": "contacts"}), 409, "already_exists"),
        (
            json!({"api_name": "Visits", "fields": [{"api_name": "Ok", "type": "text"}, {"api_name": "Kind", "type": "picklist"}]}),
            400,
            "picklist_empty",
        ),
        (
            json!({"api_name": "Visits", "fields": [{"api_name": "Where", "type": "lookup", "lookup_module": "Nowhere"}]}),
            404,
            "not_found",
        ),
    ] {
        let (s, refused) = app.post(&url, &admin.key, &body).await;
        assert_eq!((s, code(&refused)), (status, expected), "{body}: {refused}");
    }
    assert_eq!(kizuna_testkit::fingerprint(&app.store).await, before);
    let (s, made) = app
        .post(
            &url,
            &admin.key,
            &json!({"api_name": "Visits", "label_ja": "訪問", "fields": [{"api_name": "Place", "type": "text", "required": true}]}),
        )
        .await;
    assert_eq!(s, 201, "{made}");
    let (s, record) = app
        .post(&records(&org, "Visits"), &admin.key, &json!({"fields": {}}))
        .await;
    assert_eq!((s, code(&record)), (400, "required"), "{record}");
    let (s, _) = app
        .post(
            &records(&org, "Visits"),
            &admin.key,
            &json!({"fields": {"Place": "Osaka"}}),
        )
        .await;
    assert_eq!(s, 201);
}

// Lists sort only by sortable fields (each has an index); an administrator
// makes one sortable or not, and renames its labels, through PATCH; a long
// text cannot be sortable; a bad body changes nothing.
#[tokio::test]
async fn lists_sort_by_sortable_fields_and_administrators_choose_them() {
    let (app, admin, org) = crm().await;
    for name in ["Sato", "Abe", "Ito"] {
        let (s, _) = app
            .post(
                &records(&org, "Contacts"),
                &admin.key,
                &json!({"fields": {"Last_Name": name, "First_Name": name.to_lowercase()}}),
            )
            .await;
        assert_eq!(s, 201);
    }
    let list = |sort: &str| format!("{}?sort={sort}&order=desc", records(&org, "Contacts"));
    let names = |body: &serde_json::Value, f: &str| -> Vec<String> {
        body["records"]
            .as_array()
            .expect("records")
            .iter()
            .map(|r| r["fields"][f].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let (s, body) = app.get(&list("Last_Name"), &admin.key).await;
    assert_eq!(s, 200, "a name field sorts from the start: {body}");
    assert_eq!(names(&body, "Last_Name"), ["Sato", "Ito", "Abe"]);

    let (s, body) = app.get(&list("First_Name"), &admin.key).await;
    assert_eq!((s, code(&body)), (400, "field_not_sortable"));
    assert!(
        body["error"]["fix"]["ja"]
            .as_str()
            .is_some_and(|t| t.contains("管理者")),
        "{body}"
    );

    let field = |f: &str| format!("/api/v1/orgs/{}/modules/Contacts/fields/{f}", org.id);
    let (s, body) = app
        .patch(
            &field("First_Name"),
            &admin.key,
            &json!({"sortable": true, "label_ja": "ファーストネーム"}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let first = body["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .find(|f| f["api_name"] == "First_Name")
        .cloned()
        .expect("First_Name");
    assert_eq!(
        (first["sortable"].clone(), first["label_ja"].clone()),
        (json!(true), json!("ファーストネーム"))
    );
    let (s, body) = app.get(&list("First_Name"), &admin.key).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(names(&body, "First_Name"), ["sato", "ito", "abe"]);

    for (body, want) in [
        (json!({"sortable": "yes"}), "malformed_json"),
        (json!({}), "malformed_json"),
        (json!({"label": ""}), "invalid_label"),
    ] {
        let (s, answer) = app.patch(&field("Last_Name"), &admin.key, &body).await;
        assert_eq!((s, code(&answer)), (400, want), "{body}");
    }
    let (s, answer) = app
        .patch(
            &field("Description"),
            &admin.key,
            &json!({"sortable": true, "label_ja": "メモ"}),
        )
        .await;
    assert_eq!((s, code(&answer)), (400, "field_not_sortable"));
    let (s, answer) = app
        .patch(
            &field("Description"),
            &admin.key,
            &json!({"sortabel": true}),
        )
        .await;
    assert_eq!(
        (s, code(&answer)),
        (400, "malformed_json"),
        "a misspelt key"
    );
    let contacts = app.store.module(org.id, "Contacts").await.expect("read");
    assert!(
        contacts
            .field("Description")
            .is_some_and(|f| !f.sortable && f.label_ja == "説明"),
        "a refused change renames nothing either"
    );
    assert!(
        contacts
            .field("Last_Name")
            .is_some_and(|f| f.label == "Last Name" && f.sortable)
    );
}
