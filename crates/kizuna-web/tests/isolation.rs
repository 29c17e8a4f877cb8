//! Isolation: every route of the API, called with another org's ids — in the
//! path, the query and the body — answers 404 and changes nothing. The routes
//! are taken from the OpenAPI document, so a new route without a case here
//! makes this test fail.

use kizuna_domain::App;
use kizuna_testkit::{Backend, TestApp, code, fingerprint};
use serde_json::{Value, json};
use std::collections::BTreeSet;

struct Case {
    method: &'static str,
    /// The route as the OpenAPI document names it.
    route: &'static str,
    /// The concrete request.
    path: String,
    body: Option<Value>,
}

fn case(method: &'static str, route: &'static str, path: String, body: Option<Value>) -> Case {
    Case {
        method,
        route,
        path,
        body,
    }
}

async fn walk_every_route(backend: Backend) {
    let Some(app) = TestApp::spawn(backend, "walk_every_route").await else {
        return;
    };
    // Org A is the caller's; org B belongs to someone else.
    let alice = app.actor("alice@a.example").await;
    let bob = app.actor("bob@b.example").await;
    let a = app.org(App::Crm, "standard", &alice).await;
    let b = app.org(App::Crm, "standard", &bob).await;
    let b_dept = app
        .store
        .create_department(b.id, "B support")
        .await
        .expect("dept");
    let (s, b_account) = app
        .post(
            &format!("/api/v1/orgs/{}/modules/Accounts/records", b.id),
            &bob.key,
            &json!({"fields": {"Account_Name": "B Corp"}}),
        )
        .await;
    assert_eq!(s, 201, "{b_account}");
    let b_account = b_account["id"].as_i64().expect("id");
    let (s, b_contact) = app
        .post(
            &format!("/api/v1/orgs/{}/modules/Contacts/records", b.id),
            &bob.key,
            &json!({"fields": {"Last_Name": "B", "Account": b_account}}),
        )
        .await;
    assert_eq!(s, 201, "{b_contact}");
    let b_contact = b_contact["id"].as_i64().expect("id");
    let (s, b_deleted) = app
        .post(
            &format!("/api/v1/orgs/{}/modules/Contacts/records", b.id),
            &bob.key,
            &json!({"fields": {"Last_Name": "B deleted"}}),
        )
        .await;
    assert_eq!(s, 201);
    let b_deleted = b_deleted["id"].as_i64().expect("id");
    let (s, _) = app
        .delete(
            &format!("/api/v1/orgs/{}/modules/Contacts/records/{b_deleted}", b.id),
            &bob.key,
        )
        .await;
    assert_eq!(s, 200);
    let (s, a_contact) = app
        .post(
            &format!("/api/v1/orgs/{}/modules/Contacts/records", a.id),
            &alice.key,
            &json!({"fields": {"Last_Name": "A"}}),
        )
        .await;
    assert_eq!(s, 201);
    let a_contact = a_contact["id"].as_i64().expect("id");

    let bob_key = app.store.api_keys(bob.user.id).await.expect("keys")[0].id;
    let b_events = app.org(App::Events, "standard", &bob).await;
    let a_events = app.org(App::Events, "standard", &alice).await;
    let (s, link) = app
        .post(
            "/api/v1/integrations",
            &bob.key,
            &json!({"kind": "crm-events", "from_org": b.id, "to_org": b_events.id}),
        )
        .await;
    assert_eq!(s, 201, "{link}");
    let b_link = link["id"].as_i64().expect("id");
    let integration = |id: i64, action: &str| format!("/api/v1/integrations/{id}/{action}");
    app.call("POST", &integration(b_link, "enable"), Some(&bob.key), None)
        .await;
    let (s, synced) = app
        .call("POST", &integration(b_link, "sync"), Some(&bob.key), None)
        .await;
    assert_eq!(s, 200, "{synced}");
    let b_run = synced["runs"][0]["id"].as_i64().expect("a run");
    // A conflict held for Bob to decide: an event and its Campaign renamed
    // differently on each side under the policy `hold`.
    let (s, _) = app
        .patch(
            &integration(b_link, "settings"),
            &bob.key,
            &json!({"conflict_policy": "hold"}),
        )
        .await;
    assert_eq!(s, 200);
    let records = |org: i64, module: &str| format!("/api/v1/orgs/{org}/modules/{module}/records");
    let (s, event) = app
        .post(
            &records(b_events.id, "Events"),
            &bob.key,
            &json!({"fields": {"Event_Name": "B expo", "Status": "Live"}}),
        )
        .await;
    assert_eq!(s, 201, "{event}");
    app.call("POST", &integration(b_link, "sync"), Some(&bob.key), None)
        .await;
    let (_, campaigns) = app.get(&records(b.id, "Campaigns"), &bob.key).await;
    let campaign = campaigns["records"][0]["id"].as_i64().expect("a Campaign");
    for (org, module, id, name) in [
        (b.id, "Campaigns", campaign, "B expo (CRM)"),
        (
            b_events.id,
            "Events",
            event["id"].as_i64().expect("id"),
            "B expo (Events)",
        ),
    ] {
        let field = if module == "Events" {
            "Event_Name"
        } else {
            "Campaign_Name"
        };
        let (s, body) = app
            .patch(
                &format!("{}/{id}", records(org, module)),
                &bob.key,
                &json!({"fields": {field: name}}),
            )
            .await;
        assert_eq!(s, 200, "{body}");
    }
    app.call("POST", &integration(b_link, "sync"), Some(&bob.key), None)
        .await;
    let (_, held) = app.get(&integration(b_link, "conflicts"), &bob.key).await;
    let b_conflict = held["conflicts"][0]["id"]
        .as_i64()
        .expect("a held conflict");
    let (s, a_link) = app
        .post(
            "/api/v1/integrations",
            &alice.key,
            &json!({"kind": "crm-events", "from_org": a.id, "to_org": a_events.id}),
        )
        .await;
    assert_eq!(s, 201, "{a_link}");
    let a_link = a_link["id"].as_i64().expect("id");
    let (b_org, a_org) = (b.id, a.id);
    let bob_id = bob.user.id;
    let contact_body = json!({"fields": {"Last_Name": "X"}});
    let cases = vec![
        // B's org in the path.
        case(
            "GET",
            "/api/v1/orgs/{org}",
            format!("/api/v1/orgs/{b_org}"),
            None,
        ),
        case(
            "PATCH",
            "/api/v1/orgs/{org}",
            format!("/api/v1/orgs/{b_org}"),
            Some(json!({"plan": "enterprise"})),
        ),
        case(
            "GET",
            "/api/v1/orgs/{org}/members",
            format!("/api/v1/orgs/{b_org}/members"),
            None,
        ),
        case(
            "POST",
            "/api/v1/orgs/{org}/members",
            format!("/api/v1/orgs/{b_org}/members"),
            Some(json!({"email": "alice@a.example", "role": "administrator"})),
        ),
        case(
            "PATCH",
            "/api/v1/orgs/{org}/members/{user}",
            format!("/api/v1/orgs/{b_org}/members/{bob_id}"),
            Some(json!({"role": "member"})),
        ),
        case(
            "GET",
            "/api/v1/orgs/{org}/outbox",
            format!("/api/v1/orgs/{b_org}/outbox"),
            None,
        ),
        case(
            "GET",
            "/api/v1/orgs/{org}/departments",
            format!("/api/v1/orgs/{b_org}/departments"),
            None,
        ),
        case(
            "POST",
            "/api/v1/orgs/{org}/departments",
            format!("/api/v1/orgs/{b_org}/departments"),
            Some(json!({"name": "New"})),
        ),
        case(
            "POST",
            "/api/v1/orgs/{org}/departments/{department}/members",
            format!("/api/v1/orgs/{b_org}/departments/{}/members", b_dept.id),
            Some(json!({"user_id": bob_id})),
        ),
        case(
            "GET",
            "/api/v1/orgs/{org}/modules",
            format!("/api/v1/orgs/{b_org}/modules"),
            None,
        ),
        case(
            "POST",
            "/api/v1/orgs/{org}/modules",
            format!("/api/v1/orgs/{b_org}/modules"),
            Some(json!({"api_name": "Visits"})),
        ),
        case(
            "PATCH",
            "/api/v1/orgs/{org}/modules/{module}",
            format!("/api/v1/orgs/{b_org}/modules/Contacts"),
            Some(json!({"enabled": false})),
        ),
        case(
            "GET",
            "/api/v1/orgs/{org}/modules/{module}/fields",
            format!("/api/v1/orgs/{b_org}/modules/Contacts/fields"),
            None,
        ),
        case(
            "POST",
            "/api/v1/orgs/{org}/modules/{module}/fields",
            format!("/api/v1/orgs/{b_org}/modules/Contacts/fields"),
            Some(json!({"api_name": "Extra", "label": "Extra", "type": "text"})),
        ),
        case(
            "PATCH",
            "/api/v1/orgs/{org}/modules/{module}/fields/{field}",
            format!("/api/v1/orgs/{b_org}/modules/Contacts/fields/Email"),
            Some(json!({"in_use": false})),
        ),
        case(
            "GET",
            "/api/v1/orgs/{org}/modules/{module}/records",
            format!("/api/v1/orgs/{b_org}/modules/Contacts/records"),
            None,
        ),
        case(
            "POST",
            "/api/v1/orgs/{org}/modules/{module}/records",
            format!("/api/v1/orgs/{b_org}/modules/Contacts/records"),
            Some(contact_body.clone()),
        ),
        case(
            "GET",
            "/api/v1/orgs/{org}/modules/{module}/records/{id}",
            format!("/api/v1/orgs/{b_org}/modules/Contacts/records/{b_contact}"),
            None,
        ),
        case(
            "PATCH",
            "/api/v1/orgs/{org}/modules/{module}/records/{id}",
            format!("/api/v1/orgs/{b_org}/modules/Contacts/records/{b_contact}"),
            Some(contact_body.clone()),
        ),
        case(
            "DELETE",
            "/api/v1/orgs/{org}/modules/{module}/records/{id}",
            format!("/api/v1/orgs/{b_org}/modules/Contacts/records/{b_contact}"),
            None,
        ),
        case(
            "POST",
            "/api/v1/orgs/{org}/modules/{module}/records/{id}/restore",
            format!("/api/v1/orgs/{b_org}/modules/Contacts/records/{b_deleted}/restore"),
            None,
        ),
        case(
            "GET",
            "/api/v1/orgs/{org}/modules/{module}/records/{id}/related/{list}",
            format!("/api/v1/orgs/{b_org}/modules/Accounts/records/{b_account}/related/Contacts"),
            None,
        ),
        case(
            "GET",
            "/api/v1/orgs/{org}/recycle-bin",
            format!("/api/v1/orgs/{b_org}/recycle-bin"),
            None,
        ),
        case(
            "GET",
            "/api/v1/orgs/{org}/changes",
            format!("/api/v1/orgs/{b_org}/changes"),
            None,
        ),
        // The caller's own org, with B's ids in the path.
        case(
            "PATCH",
            "/api/v1/orgs/{org}/members/{user}",
            format!("/api/v1/orgs/{a_org}/members/{bob_id}"),
            Some(json!({"role": "member"})),
        ),
        case(
            "POST",
            "/api/v1/orgs/{org}/departments/{department}/members",
            format!("/api/v1/orgs/{a_org}/departments/{}/members", b_dept.id),
            Some(json!({"user_id": alice.user.id})),
        ),
        case(
            "GET",
            "/api/v1/orgs/{org}/modules/{module}/records/{id}",
            format!("/api/v1/orgs/{a_org}/modules/Contacts/records/{b_contact}"),
            None,
        ),
        case(
            "PATCH",
            "/api/v1/orgs/{org}/modules/{module}/records/{id}",
            format!("/api/v1/orgs/{a_org}/modules/Contacts/records/{b_contact}"),
            Some(contact_body.clone()),
        ),
        case(
            "DELETE",
            "/api/v1/orgs/{org}/modules/{module}/records/{id}",
            format!("/api/v1/orgs/{a_org}/modules/Contacts/records/{b_contact}"),
            None,
        ),
        case(
            "POST",
            "/api/v1/orgs/{org}/modules/{module}/records/{id}/restore",
            format!("/api/v1/orgs/{a_org}/modules/Contacts/records/{b_deleted}/restore"),
            None,
        ),
        case(
            "GET",
            "/api/v1/orgs/{org}/modules/{module}/records/{id}/related/{list}",
            format!("/api/v1/orgs/{a_org}/modules/Accounts/records/{b_account}/related/Contacts"),
            None,
        ),
        case(
            "GET",
            "/api/v1/orgs/{org}/modules/{module}/records/{id}/related/{list}",
            format!(
                "/api/v1/orgs/{a_org}/modules/Contacts/records/{b_contact}/related/Desk_Tickets"
            ),
            None,
        ),
        case(
            "POST",
            "/api/v1/orgs/{org}/modules/{module}/records/{id}/related/{list}",
            format!(
                "/api/v1/orgs/{b_org}/modules/Contacts/records/{b_contact}/related/Desk_Tickets"
            ),
            Some(json!({"fields": {"Subject": "x", "Department": "Support"}})),
        ),
        case(
            "POST",
            "/api/v1/orgs/{org}/modules/{module}/records/{id}/related/{list}",
            format!(
                "/api/v1/orgs/{a_org}/modules/Contacts/records/{b_contact}/related/Desk_Tickets"
            ),
            Some(json!({"fields": {"Subject": "x", "Department": "Support"}})),
        ),
        // B's ids in the query.
        case(
            "GET",
            "/api/v1/orgs/{org}/modules/{module}/records",
            format!("/api/v1/orgs/{a_org}/modules/Contacts/records?Account={b_account}"),
            None,
        ),
        // B's ids in the body.
        case(
            "POST",
            "/api/v1/orgs/{org}/modules/{module}/records",
            format!("/api/v1/orgs/{a_org}/modules/Contacts/records"),
            Some(json!({"fields": {"Last_Name": "X", "Account": b_account}})),
        ),
        case(
            "POST",
            "/api/v1/orgs/{org}/modules/{module}/records",
            format!("/api/v1/orgs/{a_org}/modules/Contacts/records"),
            Some(
                json!({"records": [{"fields": {"Last_Name": "ok"}}, {"fields": {"Last_Name": "X", "Account": b_account}}]}),
            ),
        ),
        case(
            "PATCH",
            "/api/v1/orgs/{org}/modules/{module}/records/{id}",
            format!("/api/v1/orgs/{a_org}/modules/Contacts/records/{a_contact}"),
            Some(json!({"fields": {"Account": b_account}})),
        ),
        case(
            "POST",
            "/api/v1/orgs/{org}/departments/{department}/members",
            format!("/api/v1/orgs/{a_org}/departments/{}/members", b_dept.id),
            Some(json!({"user_id": bob_id})),
        ),
        // Integrations: another org's, and another org as a side of a new one.
        case(
            "POST",
            "/api/v1/integrations",
            "/api/v1/integrations".to_string(),
            Some(json!({"kind": "crm-events", "from_org": b_org, "to_org": a_events.id})),
        ),
        case(
            "POST",
            "/api/v1/integrations",
            "/api/v1/integrations".to_string(),
            Some(json!({"kind": "crm-events", "from_org": a_org, "to_org": b_events.id})),
        ),
        case(
            "GET",
            "/api/v1/integrations/{id}",
            format!("/api/v1/integrations/{b_link}"),
            None,
        ),
        case(
            "DELETE",
            "/api/v1/integrations/{id}",
            format!("/api/v1/integrations/{b_link}"),
            None,
        ),
        case(
            "DELETE",
            "/api/v1/integrations/{id}",
            format!("/api/v1/integrations/{b_link}?confirm=true"),
            None,
        ),
        case(
            "POST",
            "/api/v1/integrations/{id}/enable",
            format!("/api/v1/integrations/{b_link}/enable"),
            None,
        ),
        case(
            "POST",
            "/api/v1/integrations/{id}/pause",
            format!("/api/v1/integrations/{b_link}/pause"),
            None,
        ),
        case(
            "POST",
            "/api/v1/integrations/{id}/resume",
            format!("/api/v1/integrations/{b_link}/resume"),
            None,
        ),
        case(
            "POST",
            "/api/v1/integrations/{id}/disable",
            format!("/api/v1/integrations/{b_link}/disable"),
            None,
        ),
        case(
            "GET",
            "/api/v1/orgs/{org}/integrations",
            format!("/api/v1/orgs/{b_org}/integrations"),
            None,
        ),
        case(
            "POST",
            "/api/v1/integrations/{id}/take-over",
            format!("/api/v1/integrations/{b_link}/take-over"),
            None,
        ),
        case(
            "POST",
            "/api/v1/integrations/{id}/sync",
            integration(b_link, "sync"),
            None,
        ),
        case(
            "POST",
            "/api/v1/integrations/{id}/preview",
            integration(b_link, "preview"),
            None,
        ),
        case(
            "POST",
            "/api/v1/integrations/{id}/invite",
            integration(b_link, "invite"),
            Some(json!({"campaign": 1, "records": [b_contact]})),
        ),
        case(
            "GET",
            "/api/v1/integrations/{id}/history",
            integration(b_link, "history"),
            None,
        ),
        case(
            "GET",
            "/api/v1/integrations/{id}/history/{run}/items",
            integration(b_link, &format!("history/{b_run}/items")),
            None,
        ),
        case(
            "POST",
            "/api/v1/integrations/{id}/history/{run}/retry",
            integration(b_link, &format!("history/{b_run}/retry")),
            None,
        ),
        case(
            "GET",
            "/api/v1/integrations/{id}/conflicts",
            integration(b_link, "conflicts"),
            None,
        ),
        case(
            "POST",
            "/api/v1/integrations/{id}/import",
            integration(b_link, "import?name=contacts.vcf"),
            None,
        ),
        case(
            "POST",
            "/api/v1/integrations/{id}/emails",
            integration(b_link, "emails"),
            None,
        ),
        case(
            "POST",
            "/api/v1/integrations/{id}/send",
            integration(b_link, "send"),
            Some(json!({"to": ["x@example.jp"], "subject": "s", "body": "b"})),
        ),
        case(
            "POST",
            "/api/v1/integrations/{id}/conflicts/{conflict}/decide",
            integration(b_link, &format!("conflicts/{b_conflict}/decide")),
            Some(json!({"take": "crm"})),
        ),
        // Her own integration, with another org's conflict.
        case(
            "POST",
            "/api/v1/integrations/{id}/conflicts/{conflict}/decide",
            integration(a_link, &format!("conflicts/{b_conflict}/decide")),
            Some(json!({"take": "crm"})),
        ),
        // Her own integration, with another org's run.
        case(
            "GET",
            "/api/v1/integrations/{id}/history/{run}/items",
            integration(a_link, &format!("history/{b_run}/items")),
            None,
        ),
        case(
            "GET",
            "/api/v1/orgs/{org}/doctor",
            format!("/api/v1/orgs/{b_org}/doctor"),
            None,
        ),
        case(
            "PATCH",
            "/api/v1/integrations/{id}/settings",
            format!("/api/v1/integrations/{b_link}/settings"),
            Some(json!({"target_module": "Contacts"})),
        ),
        case(
            "GET",
            "/api/v1/integrations/{id}/mapping",
            format!("/api/v1/integrations/{b_link}/mapping"),
            None,
        ),
        case(
            "PUT",
            "/api/v1/integrations/{id}/mapping",
            format!("/api/v1/integrations/{b_link}/mapping"),
            Some(json!({"mapping": []})),
        ),
        case(
            "POST",
            "/api/v1/integrations/{id}/mapping/reset",
            format!("/api/v1/integrations/{b_link}/mapping/reset"),
            None,
        ),
        case(
            "POST",
            "/api/v1/orgs/{org}/copy-settings",
            format!("/api/v1/orgs/{b_org}/copy-settings"),
            Some(json!({"to_org": a_org})),
        ),
        case(
            "POST",
            "/api/v1/orgs/{org}/copy-settings",
            format!("/api/v1/orgs/{a_org}/copy-settings"),
            Some(json!({"to_org": b_org})),
        ),
        // Another user's API key.
        case(
            "DELETE",
            "/api/v1/me/keys/{key}",
            format!("/api/v1/me/keys/{bob_key}"),
            None,
        ),
        // Associations: B's org, then B's record as the other side.
        case(
            "PUT",
            "/api/v1/orgs/{org}/modules/{module}/records/{id}/related/{list}/{other}",
            format!(
                "/api/v1/orgs/{b_org}/modules/Contacts/records/{b_contact}/related/Accounts/{b_account}"
            ),
            None,
        ),
        case(
            "DELETE",
            "/api/v1/orgs/{org}/modules/{module}/records/{id}/related/{list}/{other}",
            format!(
                "/api/v1/orgs/{b_org}/modules/Contacts/records/{b_contact}/related/Accounts/{b_account}"
            ),
            None,
        ),
        case(
            "PUT",
            "/api/v1/orgs/{org}/modules/{module}/records/{id}/related/{list}/{other}",
            format!(
                "/api/v1/orgs/{a_org}/modules/Contacts/records/{a_contact}/related/Accounts/{b_account}"
            ),
            None,
        ),
        case(
            "DELETE",
            "/api/v1/orgs/{org}/modules/{module}/records/{id}/related/{list}/{other}",
            format!(
                "/api/v1/orgs/{a_org}/modules/Contacts/records/{a_contact}/related/Accounts/{b_account}"
            ),
            None,
        ),
    ];

    // Routes that name no org: they must not show org B.
    let unscoped: BTreeSet<(&str, &str)> = [
        ("GET", "/healthz"),
        ("GET", "/api/openapi.json"),
        ("GET", "/api/v1/me"),
        ("GET", "/api/v1/me/keys"),
        ("GET", "/api/v1/orgs"),
        ("POST", "/api/v1/orgs"),
    ]
    .into_iter()
    .collect();

    // Every route of the OpenAPI document has a case.
    let doc = serde_json::to_value(kizuna_web::openapi()).expect("the OpenAPI document");
    let paths = doc["paths"].as_object().expect("paths");
    let mut missing = Vec::new();
    for (route, item) in paths {
        for method in ["get", "post", "patch", "put", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            let m = method.to_uppercase();
            let covered = unscoped.contains(&(m.as_str(), route.as_str()))
                || cases.iter().any(|c| c.method == m && c.route == route);
            if !covered {
                missing.push(format!("{m} {route}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "routes without an isolation case: {missing:?}"
    );
    assert!(paths.len() >= 15, "the OpenAPI document lists the routes");

    for c in &cases {
        assert!(
            paths.contains_key(c.route),
            "case for an unknown route {}",
            c.route
        );
        let before = fingerprint(&app.store).await;
        let (status, body) = app
            .call(c.method, &c.path, Some(&alice.key), c.body.as_ref())
            .await;
        assert_eq!(
            status, 404,
            "{} {} answered {status}: {body}",
            c.method, c.path
        );
        assert!(
            code(&body).ends_with("not_found"),
            "{} {}: {body}",
            c.method,
            c.path
        );
        let text = body.to_string();
        assert!(
            !text.contains("B Corp") && !text.contains("bob@b.example"),
            "leak: {text}"
        );
        assert_eq!(
            fingerprint(&app.store).await,
            before,
            "{} {} changed the database",
            c.method,
            c.path
        );
    }

    for (method, route) in &unscoped {
        let body =
            (*method == "POST").then(|| json!({"app": "crm", "name": "Alice two", "plan": "free"}));
        let (status, answer) = app
            .call(method, route, Some(&alice.key), body.as_ref())
            .await;
        assert!(
            status == 200 || status == 201,
            "{method} {route}: {status} {answer}"
        );
        let text = answer.to_string();
        assert!(
            !text.contains(&format!("\"id\":{b_org},")) && !text.contains("bob@b.example"),
            "{method} {route} shows org B: {text}"
        );
    }
    // Only the caller's own keys are listed.
    let (_, keys) = app.get("/api/v1/me/keys", &alice.key).await;
    let listed: Vec<i64> = keys["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["id"].as_i64())
        .collect();
    let own: Vec<i64> = app
        .store
        .api_keys(alice.user.id)
        .await
        .expect("keys")
        .iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(listed, own);
    assert!(!listed.contains(&bob_key));
}

#[tokio::test]
async fn every_route_answers_404_for_another_orgs_ids_on_sqlite() {
    walk_every_route(Backend::Sqlite).await;
}

#[tokio::test]
async fn every_route_answers_404_for_another_orgs_ids_on_postgres() {
    walk_every_route(Backend::Postgres).await;
}
