//! GEN-9: what needs an administrator's attention is mailed to the
//! administrators of the orgs concerned and shown in the product, in the
//! org's outbox (`GET /api/v1/orgs/{org}/outbox`). Sending it over SMTP is
//! proven against a real SMTP server in the binary's tests.

use kizuna_domain::{App, Role};
use kizuna_sync::engine::{self, Trigger};
use kizuna_testkit::{Actor, Backend, TestApp, code};
use serde_json::{Value, json};

async fn outbox(app: &TestApp, org: i64, key: &str) -> (u16, Value) {
    app.get(&format!("/api/v1/orgs/{org}/outbox"), key).await
}

fn with_code(outbox: &Value, code: &str) -> Vec<Value> {
    outbox["messages"]
        .as_array()
        .map(|ms| ms.iter().filter(|m| m["code"] == code).cloned().collect())
        .unwrap_or_default()
}

async fn attendee(app: &TestApp, events: i64, key: &str, event: i64, email: &str) {
    let (status, body) = app
        .post(
            &format!("/api/v1/orgs/{events}/modules/Attendees/records"),
            key,
            &json!({"fields": {"Email": email, "Last_Name": "Ito", "Company": "K".repeat(40), "Event": event, "Status": "registered"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// Syncs until a run fails a record. On PostgreSQL a sync reads only what
/// every older transaction of the server has committed (other tests run at
/// the same time), so a change may take a moment to become readable.
async fn sync_until_a_record_fails(app: &TestApp, id: i64, key: &str) -> Vec<Value> {
    let started = std::time::Instant::now();
    loop {
        let (status, body) = app
            .call(
                "POST",
                &format!("/api/v1/integrations/{id}/sync"),
                Some(key),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let runs = body["runs"].as_array().cloned().unwrap_or_default();
        if runs.iter().any(|r| r["failed"] == 1) {
            return runs;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "no run failed the record: {runs:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn gen_9_attention_is_mailed_to_the_administrators_and_shown_in_the_outbox(backend: Backend) {
    let test = "gen_9_outbox";
    let Some(app) = TestApp::spawn(backend, test).await else {
        return;
    };
    let crm_admin = app.actor("crm-admin@example.com").await;
    let events_admin = app.actor("events-admin@example.com").await;
    let member = app.actor("member@example.com").await;
    let outsider: Actor = app.actor("outsider@example.com").await;
    let crm = app.org(App::Crm, "standard", &crm_admin).await;
    let events = app.org(App::Events, "standard", &events_admin).await;
    for user in [&crm_admin, &member] {
        app.store
            .add_member(events.id, user.user.id, Role::Member)
            .await
            .expect("a member");
    }

    // Set up from the CRM: the Events administrators are asked to enable it.
    let (status, body) = app
        .post(
            "/api/v1/integrations",
            &crm_admin.key,
            &json!({"kind": "crm-events", "from_org": crm.id, "to_org": events.id}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().expect("an id");
    let (status, ev) = outbox(&app, events.id, &events_admin.key).await;
    assert_eq!(status, 200, "{ev}");
    let asked = with_code(&ev, "integration_awaiting_enable");
    assert_eq!(
        asked.len(),
        1,
        "one message, to the one administrator: {ev}"
    );
    assert_eq!(asked[0]["to"], "events-admin@example.com");
    assert_eq!(asked[0]["rule"], "GEN-4");
    assert_eq!(asked[0]["state"], "queued");
    assert!(
        asked[0]["fix"]["ja"]
            .as_str()
            .is_some_and(|f| f.contains(&format!("/api/v1/integrations/{id}/enable"))),
        "{asked:?}"
    );
    assert_eq!(ev["delivery"]["smtp"], Value::Null, "no SMTP server here");
    assert!(
        ev["delivery"]["note"]["en"]
            .as_str()
            .is_some_and(|n| n.contains("--smtp-url")),
        "the outbox says why nothing is sent: {ev}"
    );
    let (_, mine) = outbox(&app, crm.id, &crm_admin.key).await;
    assert_eq!(mine["messages"], json!([]), "the CRM side set it up itself");

    // Administrators only; an org one does not belong to does not exist.
    let (status, body) = outbox(&app, events.id, &member.key).await;
    assert_eq!((status, code(&body)), (403, "admin_required"), "{body}");
    let (status, _) = outbox(&app, events.id, &outsider.key).await;
    assert_eq!(status, 404);

    // Records that cannot be written: both sides are told, once an hour.
    let (status, body) = app
        .call(
            "POST",
            &format!("/api/v1/integrations/{id}/enable"),
            Some(&events_admin.key),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .call(
            "PUT",
            &format!("/api/v1/integrations/{id}/mapping"),
            Some(&crm_admin.key),
            Some(&json!({"mapping": [
                {"source": "Last_Name", "target": "Last_Name"},
                {"source": "Email", "target": "Email"},
                {"source": "Company", "target": "City"}
            ]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, event) = app
        .post(
            &format!("/api/v1/orgs/{}/modules/Events/records", events.id),
            &events_admin.key,
            &json!({"fields": {"Event_Name": "Expo", "Status": "Live"}}),
        )
        .await;
    let event = event["id"].as_i64().expect("an event");
    attendee(&app, events.id, &events_admin.key, event, "a@example.com").await;
    let runs = sync_until_a_record_fails(&app, id, &crm_admin.key).await;
    let failed_run = runs
        .iter()
        .find(|r| r["failed"] == 1)
        .expect("a run with the failed record");
    for (org, admin) in [(crm.id, &crm_admin), (events.id, &events_admin)] {
        let (_, o) = outbox(&app, org, &admin.key).await;
        let failed = with_code(&o, "records_failed");
        assert_eq!(failed.len(), 1, "{o}");
        assert_eq!(failed[0]["to"], admin.user.email);
        assert_eq!(failed[0]["details"]["run_id"], failed_run["id"]);
        assert_eq!(failed[0]["rule"], "GEN-8");
    }
    attendee(&app, events.id, &events_admin.key, event, "b@example.com").await;
    sync_until_a_record_fails(&app, id, &crm_admin.key).await;
    let (_, o) = outbox(&app, crm.id, &crm_admin.key).await;
    assert_eq!(
        with_code(&o, "records_failed").len(),
        1,
        "the same trouble within the hour is in the history, not mailed again: {o}"
    );

    // The worker cannot run it (its user was deactivated, GEN-10): the
    // administrators who are still active are told why and what to do.
    app.store
        .set_user_active("crm-admin@example.com", false)
        .await
        .expect("deactivate");
    attendee(&app, events.id, &events_admin.key, event, "c@example.com").await;
    let refused = engine::sync(&app.store, id, Trigger::Worker)
        .await
        .expect_err("refused");
    let (_, ev) = outbox(&app, events.id, &events_admin.key).await;
    let told = with_code(&ev, refused.code);
    assert_eq!(told.len(), 1, "{ev}");
    assert_eq!(told[0]["rule"], "GEN-10");
    assert_eq!(told[0]["fix"]["en"], refused.fix.en);
    engine::sync(&app.store, id, Trigger::Worker)
        .await
        .expect_err("still refused");
    let (_, ev) = outbox(&app, events.id, &events_admin.key).await;
    assert_eq!(with_code(&ev, refused.code).len(), 1, "once a day: {ev}");
    let rows = app
        .store
        .outbox(crm.id, None, 100)
        .await
        .expect("the CRM outbox");
    assert!(
        rows.iter().all(|m| m.code != refused.code),
        "a deactivated administrator is not mailed: {rows:?}"
    );
}

#[tokio::test]
async fn gen_9_attention_is_mailed_and_shown_sqlite() {
    gen_9_attention_is_mailed_to_the_administrators_and_shown_in_the_outbox(Backend::Sqlite).await;
}

#[tokio::test]
async fn gen_9_attention_is_mailed_and_shown_postgres() {
    gen_9_attention_is_mailed_to_the_administrators_and_shown_in_the_outbox(Backend::Postgres)
        .await;
}
