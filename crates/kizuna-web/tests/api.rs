//! Records over the REST API: real HTTP against the real router, on SQLite.

use common::{crm, records};
use kizuna_testkit::{code, fingerprint};
use serde_json::{Value, json};

#[allow(dead_code)]
mod common;

#[tokio::test]
async fn health_and_openapi_describe_every_required_route() {
    let (app, _, _) = crm().await;
    let (s, _) = app.call("GET", "/healthz", None, None).await;
    assert_eq!(s, 200);
    let (s, doc) = app.call("GET", "/api/openapi.json", None, None).await;
    assert_eq!(s, 200);
    assert!(
        doc["openapi"].as_str().expect("version").starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for (path, method) in [
        ("/api/v1/me", "get"),
        ("/api/v1/orgs", "post"),
        ("/api/v1/orgs/{org}", "get"),
        ("/api/v1/orgs/{org}/members", "post"),
        ("/api/v1/orgs/{org}/members/{user}", "patch"),
        ("/api/v1/orgs/{org}/modules", "get"),
        ("/api/v1/orgs/{org}/modules/{module}/fields", "post"),
        ("/api/v1/orgs/{org}/modules/{module}/records", "get"),
        ("/api/v1/orgs/{org}/modules/{module}/records/{id}", "delete"),
        (
            "/api/v1/orgs/{org}/modules/{module}/records/{id}/related/{list}",
            "get",
        ),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
}

#[tokio::test]
async fn a_request_without_a_valid_key_is_401_in_both_languages() {
    let (app, admin, org) = crm().await;
    for key in [None, Some("kz_not-a-key")] {
        let (s, body) = app.call("GET", "/api/v1/me", key, None).await;
        assert_eq!(s, 401);
        assert_eq!(code(&body), "unauthenticated");
        assert!(
            !body["error"]["message"]["ja"]
                .as_str()
                .unwrap_or("")
                .is_empty()
        );
        assert!(!body["error"]["fix"]["en"].as_str().unwrap_or("").is_empty());
    }
    // GEN-10: deactivating the user invalidates their key at once.
    app.store
        .set_user_active(&admin.user.email, false)
        .await
        .expect("deactivate");
    let (s, body) = app.get(&records(&org, "Contacts"), &admin.key).await;
    assert_eq!(s, 401);
    assert_eq!(code(&body), "user_deactivated");
    assert_eq!(body["error"]["rule"], "GEN-10");
    app.store
        .set_user_active(&admin.user.email, true)
        .await
        .expect("activate");
    let (s, _) = app.get(&records(&org, "Contacts"), &admin.key).await;
    assert_eq!(s, 200);

    // The GET of one record (read with its key in one statement) refuses a
    // bad key first, whatever the record id; a junk id is then absent.
    let junk = format!("{}/not-an-id", records(&org, "Contacts"));
    let (s, body) = app.call("GET", &junk, Some("kz_not-a-key"), None).await;
    assert_eq!((s, code(&body)), (401, "unauthenticated"));
    let (s, body) = app.get(&junk, &admin.key).await;
    assert_eq!((s, code(&body)), (404, "not_found"));
    let (s, body) = app
        .call(
            "GET",
            &format!("{}/1", records(&org, "Contacts")),
            Some("kz_not-a-key"),
            None,
        )
        .await;
    assert_eq!((s, code(&body)), (401, "unauthenticated"));
}

#[tokio::test]
async fn record_lifecycle_create_read_update_delete_restore() {
    let (app, admin, org) = crm().await;
    let (s, created) = app
        .post(&records(&org, "Contacts"), &admin.key, &json!({"fields": {"Last_Name": "山田", "First_Name": "太郎", "Email": " Taro@Example.JP "}}))
        .await;
    assert_eq!(s, 201, "{created}");
    for key in [
        "id",
        "module",
        "version",
        "created_at",
        "updated_at",
        "fields",
    ] {
        assert!(created.get(key).is_some(), "record lacks {key}: {created}");
    }
    assert_eq!(created["version"], 1);
    assert_eq!(
        created["fields"]["Email"], "Taro@Example.JP",
        "e-mail is trimmed"
    );
    let id = created["id"].as_i64().expect("id");
    let one = format!("{}/{id}", records(&org, "Contacts"));

    let (s, read) = app.get(&one, &admin.key).await;
    assert_eq!((s, &read["fields"]["Last_Name"]), (200, &json!("山田")));

    let (s, updated) = app
        .patch(
            &one,
            &admin.key,
            &json!({"fields": {"Title": "部長", "First_Name": null}}),
        )
        .await;
    assert_eq!(s, 200, "{updated}");
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["fields"]["Title"], "部長");
    assert!(
        updated["fields"].get("First_Name").is_none(),
        "null clears a field"
    );

    let (s, body) = app
        .patch(
            &one,
            &admin.key,
            &json!({"fields": {"Title": "x"}, "version": 1}),
        )
        .await;
    assert_eq!((s, code(&body)), (409, "version_conflict"));

    let (s, _) = app.delete(&one, &admin.key).await;
    assert_eq!(s, 200);
    let (s, body) = app.get(&one, &admin.key).await;
    assert_eq!((s, code(&body)), (404, "not_found"));
    let (s, bin) = app
        .get(&format!("/api/v1/orgs/{}/recycle-bin", org.id), &admin.key)
        .await;
    assert_eq!(s, 200);
    assert!(
        bin["records"]
            .as_array()
            .expect("records")
            .iter()
            .any(|r| r["id"] == id)
    );

    let (s, restored) = app
        .post(&format!("{one}/restore"), &admin.key, &json!({}))
        .await;
    assert_eq!(s, 200, "{restored}");
    let (s, read) = app.get(&one, &admin.key).await;
    assert_eq!((s, &read["fields"]["Title"]), (200, &json!("部長")));

    // Every change is in the change log, with its origin (the API key).
    let (s, log) = app
        .get(&format!("/api/v1/orgs/{}/changes", org.id), &admin.key)
        .await;
    assert_eq!(s, 200);
    let ops: Vec<&str> = log["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["record_id"] == id)
        .filter_map(|c| c["op"].as_str())
        .collect();
    assert_eq!(ops, ["create", "update", "delete", "restore"]);
    assert!(
        log["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .all(|c| c["origin"]["kind"] == "key")
    );
}

#[tokio::test]
async fn bad_input_is_400_naming_the_field_and_writes_nothing() {
    let (app, admin, org) = crm().await;
    let (s, field) = app
        .post(&format!("/api/v1/orgs/{}/modules/Contacts/fields", org.id), &admin.key, &json!({"api_name": "Tier", "label": "Tier", "type": "picklist", "picklist": ["Gold", "Silver"]}))
        .await;
    assert_eq!(s, 201, "{field}");
    let url = records(&org, "Contacts");
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"fields": {"Last_Name": "x", "Nope": 1}}),
            "unknown_field",
            "Nope",
        ),
        (
            json!({"fields": {"Last_Name": 42}}),
            "wrong_type",
            "Last_Name",
        ),
        (
            json!({"fields": {"Last_Name": "あ".repeat(81)}}),
            "too_long",
            "Last_Name",
        ),
        (
            json!({"fields": {"Last_Name": "x", "Tier": "Bronze"}}),
            "not_in_picklist",
            "Tier",
        ),
        (
            json!({"fields": {"Last_Name": "x", "Email": "not-an-address"}}),
            "invalid_email",
            "Email",
        ),
        (
            json!({"fields": {"Last_Name": "x", "Date_of_Birth": "31/12/1990"}}),
            "invalid_date",
            "Date_of_Birth",
        ),
        (
            json!({"fields": {"First_Name": "no last name"}}),
            "required",
            "Last_Name",
        ),
        (
            json!({"records": [{"fields": {"Last_Name": "ok"}}, {"fields": {"Last_Name": 1}}]}),
            "wrong_type",
            "Last_Name",
        ),
    ];
    for (body, expected_code, field) in cases {
        let before = fingerprint(&app.store).await;
        let (s, answer) = app.post(&url, &admin.key, &body).await;
        assert_eq!(s, 400, "{body} → {answer}");
        assert_eq!(code(&answer), expected_code, "{answer}");
        assert_eq!(answer["error"]["details"]["field"], field, "{answer}");
        assert!(
            answer["error"]["message"]["en"]
                .as_str()
                .unwrap_or("")
                .contains(field)
        );
        assert!(
            answer["error"]["message"]["ja"]
                .as_str()
                .unwrap_or("")
                .contains(field)
        );
        assert_eq!(
            fingerprint(&app.store).await,
            before,
            "{body} wrote something"
        );
    }
    // Too long says the limit and the actual length.
    let (_, answer) = app
        .post(
            &url,
            &admin.key,
            &json!({"fields": {"Last_Name": "x".repeat(90)}}),
        )
        .await;
    let msg = answer["error"]["message"]["en"].as_str().unwrap_or("");
    assert!(msg.contains("90") && msg.contains("80"), "{msg}");

    let before = fingerprint(&app.store).await;
    let (s, answer) = app.call("POST", &url, Some(&admin.key), None).await;
    assert_eq!((s, code(&answer)), (400, "malformed_json"));
    let raw = app
        .http
        .post(app.url(&url))
        .bearer_auth(&admin.key)
        .body("{\"fields\": {")
        .send()
        .await
        .expect("answer");
    assert_eq!(raw.status().as_u16(), 400);
    let (s, answer) = app
        .post(
            &records(&org, "Nonsense"),
            &admin.key,
            &json!({"fields": {}}),
        )
        .await;
    assert_eq!((s, code(&answer)), (400, "unknown_module"));
    let huge = json!({"fields": {"Last_Name": "x".repeat(3 * 1024 * 1024)}});
    let (s, answer) = app.post(&url, &admin.key, &huge).await;
    assert_eq!((s, code(&answer)), (413, "payload_too_large"));
    assert_eq!(fingerprint(&app.store).await, before);
}

#[tokio::test]
async fn lists_filter_sort_and_page_with_cursors() {
    let (app, admin, org) = crm().await;
    let url = records(&org, "Contacts");
    let batch: Vec<Value> = (0..23)
        .map(|i| json!({"fields": {"Last_Name": format!("N{:02}", (i * 7) % 23), "Email": format!("p{i}@example.com"), "Lead_Source": if i % 2 == 0 { "Web" } else { "Event" }}}))
        .collect();
    let (s, body) = app.post(&url, &admin.key, &json!({"records": batch})).await;
    assert_eq!(s, 201, "{body}");

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page_url = match &cursor {
            Some(c) => format!("{url}?limit=5&sort=Last_Name&order=desc&cursor={c}"),
            None => format!("{url}?limit=5&sort=Last_Name&order=desc"),
        };
        let (s, page) = app.get(&page_url, &admin.key).await;
        assert_eq!(s, 200, "{page}");
        seen.extend(
            page["records"]
                .as_array()
                .expect("records")
                .iter()
                .map(|r| r["fields"]["Last_Name"].as_str().unwrap_or("").to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let mut expected: Vec<String> = (0..23).map(|i| format!("N{i:02}")).collect();
    expected.reverse();
    assert_eq!(seen, expected, "every record once, in order");

    let (s, page) = app
        .get(&format!("{url}?Email=P3@EXAMPLE.com"), &admin.key)
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        page["records"].as_array().expect("records").len(),
        1,
        "e-mail filter is case-insensitive"
    );
    let (_, page) = app
        .get(&format!("{url}?Lead_Source=Web&limit=100"), &admin.key)
        .await;
    assert_eq!(page["records"].as_array().expect("records").len(), 12);
    let (s, page) = app.get(&format!("{url}?cursor=zz"), &admin.key).await;
    assert_eq!((s, code(&page)), (400, "invalid_cursor"));
    let (s, page) = app.get(&format!("{url}?limit=0"), &admin.key).await;
    assert_eq!((s, code(&page)), (400, "invalid_limit"));
}

#[tokio::test]
async fn related_lists_show_records_that_point_here() {
    let (app, admin, org) = crm().await;
    let (_, account) = app
        .post(
            &records(&org, "Accounts"),
            &admin.key,
            &json!({"fields": {"Account_Name": "絆商事"}}),
        )
        .await;
    let account = account["id"].as_i64().expect("id");
    for name in ["A", "B"] {
        let (s, _) = app
            .post(
                &records(&org, "Contacts"),
                &admin.key,
                &json!({"fields": {"Last_Name": name, "Account": account}}),
            )
            .await;
        assert_eq!(s, 201);
    }
    let (_, other) = app
        .post(
            &records(&org, "Contacts"),
            &admin.key,
            &json!({"fields": {"Last_Name": "unrelated"}}),
        )
        .await;
    let (s, related) = app
        .get(
            &format!("{}/{account}/related/Contacts", records(&org, "Accounts")),
            &admin.key,
        )
        .await;
    assert_eq!(s, 200, "{related}");
    let names: Vec<&str> = related["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["fields"]["Last_Name"].as_str())
        .collect();
    assert_eq!(names, ["A", "B"]);
    // Moving a contact to no account removes it from the list.
    let (_, first) = app
        .get(
            &format!("{}?Last_Name=A", records(&org, "Contacts")),
            &admin.key,
        )
        .await;
    let first = first["records"][0]["id"].as_i64().expect("id");
    app.patch(
        &format!("{}/{first}", records(&org, "Contacts")),
        &admin.key,
        &json!({"fields": {"Account": null}}),
    )
    .await;
    let (_, related) = app
        .get(
            &format!("{}/{account}/related/Contacts", records(&org, "Accounts")),
            &admin.key,
        )
        .await;
    assert_eq!(related["records"].as_array().expect("records").len(), 1);
    assert!(other["id"].is_i64());
}

#[tokio::test]
async fn many_to_many_associations_list_each_other_until_removed() {
    let (app, admin, org) = crm().await;
    let (_, campaign) = app
        .post(
            &records(&org, "Campaigns"),
            &admin.key,
            &json!({"fields": {"Campaign_Name": "春の展示会"}}),
        )
        .await;
    let campaign = campaign["id"].as_i64().expect("id");
    let mut contacts = Vec::new();
    for name in ["A", "B"] {
        let (_, c) = app
            .post(
                &records(&org, "Contacts"),
                &admin.key,
                &json!({"fields": {"Last_Name": name}}),
            )
            .await;
        contacts.push(c["id"].as_i64().expect("id"));
    }
    let link = |c: i64| {
        format!(
            "{}/{campaign}/related/Contacts/{c}",
            records(&org, "Campaigns")
        )
    };
    for c in &contacts {
        let (s, body) = app.call("PUT", &link(*c), Some(&admin.key), None).await;
        assert_eq!(s, 200, "{body}");
    }
    // Associating twice changes nothing.
    let (s, _) = app
        .call("PUT", &link(contacts[0]), Some(&admin.key), None)
        .await;
    assert_eq!(s, 200);
    let (_, listed) = app
        .get(
            &format!("{}/{campaign}/related/Contacts", records(&org, "Campaigns")),
            &admin.key,
        )
        .await;
    assert_eq!(listed["records"].as_array().expect("records").len(), 2);
    let (_, back) = app
        .get(
            &format!(
                "{}/{}/related/Campaigns",
                records(&org, "Contacts"),
                contacts[0]
            ),
            &admin.key,
        )
        .await;
    assert_eq!(
        back["records"][0]["id"], campaign,
        "the contact lists its campaign"
    );

    let (s, _) = app.delete(&link(contacts[0]), &admin.key).await;
    assert_eq!(s, 200);
    let (s, body) = app.delete(&link(contacts[0]), &admin.key).await;
    assert_eq!((s, code(&body)), (404, "not_found"));
    let (_, listed) = app
        .get(
            &format!("{}/{campaign}/related/Contacts", records(&org, "Campaigns")),
            &admin.key,
        )
        .await;
    assert_eq!(listed["records"].as_array().expect("records").len(), 1);
}

#[tokio::test]
async fn malformed_query_numbers_are_refused_not_replaced_by_defaults() {
    let (app, admin, org) = crm().await;
    let (_, account) = app
        .post(
            &records(&org, "Accounts"),
            &admin.key,
            &json!({"fields": {"Account_Name": "x"}}),
        )
        .await;
    let related = format!(
        "{}/{}/related/Contacts",
        records(&org, "Accounts"),
        account["id"]
    );
    for bad in ["limit=abc", "limit=0", "after=-1"] {
        let (status, body) = app.get(&format!("{related}?{bad}"), &admin.key).await;
        assert_eq!(
            (status, code(&body)),
            (400, "invalid_parameter"),
            "{bad}: {body}"
        );
    }
    let (status, body) = app
        .get(
            &format!("/api/v1/orgs/{}/changes?after=soon", org.id),
            &admin.key,
        )
        .await;
    assert_eq!((status, code(&body)), (400, "invalid_parameter"), "{body}");
    assert_eq!(body["error"]["details"]["parameter"], "after");
    let (status, _) = app
        .get(&format!("{related}?limit=5&after=0"), &admin.key)
        .await;
    assert_eq!(status, 200);
}
