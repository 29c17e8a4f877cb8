//! The sync engine's own promises over real HTTP: conflicts with both values,
//! deletes taken back, a bad record failing alone, the preview, runs at once.

// Shared by the sync test binaries; each uses a part of it.
#[allow(dead_code)]
mod sync_world;

use kizuna_testkit::fingerprint;
use serde_json::json;
use sync_world::*;

#[tokio::test]
async fn the_same_field_changed_on_both_sides_follows_the_policy_and_the_history_has_both_values() {
    let w = world("conflict").await;
    let event = w.event("Sendai Meetup").await;
    w.sync().await;
    let campaign = w.list(&w.crm, "Campaigns").await[0]["id"]
        .as_i64()
        .expect("id");
    w.edit(
        w.events(),
        "Events",
        event,
        json!({"Event_Name": "Sendai Meetup (Events)"}),
    )
    .await;
    w.edit(
        &w.crm,
        "Campaigns",
        campaign,
        json!({"Campaign_Name": "Sendai Meetup (CRM)"}),
    )
    .await;
    w.sync().await;
    // The default policy keeps the CRM's value, on both sides.
    assert_eq!(
        w.list(&w.crm, "Campaigns").await[0]["fields"]["Campaign_Name"],
        "Sendai Meetup (CRM)"
    );
    assert_eq!(
        w.list(w.events(), "Events").await[0]["fields"]["Event_Name"],
        "Sendai Meetup (CRM)"
    );
    let history = w.history().await;
    let conflict = history
        .iter()
        .flat_map(|r| r["items"].as_array().cloned().unwrap_or_default())
        .find(|i| i["outcome"] == "conflict")
        .expect("the conflict is in the history");
    assert_eq!(conflict["code"], "sync_conflict");
    assert_eq!(conflict["details"]["cause"]["crm"], "Sendai Meetup (CRM)");
    assert_eq!(
        conflict["details"]["cause"]["other"],
        "Sendai Meetup (Events)"
    );
    assert_eq!(conflict["details"]["cause"]["base"], "Sendai Meetup");
    assert_eq!(writes(&w.sync().await), 0, "settled once, not again");
}

#[tokio::test]
async fn with_events_wins_or_hold_the_conflict_is_settled_that_way() {
    let w = world("conflict_policy").await;
    let event = w.event("Gifu Expo").await;
    w.sync().await;
    let campaign = w.list(&w.crm, "Campaigns").await[0]["id"]
        .as_i64()
        .expect("id");
    let settings = format!("/api/v1/integrations/{}/settings", w.id);
    for (policy, round) in [("events_wins", 1), ("hold", 2)] {
        let (status, body) = w
            .app
            .patch(&settings, &w.admin.key, &json!({"conflict_policy": policy}))
            .await;
        assert_eq!(status, 200, "{body}");
        w.edit(
            w.events(),
            "Events",
            event,
            json!({"Event_Name": format!("E{round}")}),
        )
        .await;
        w.edit(
            &w.crm,
            "Campaigns",
            campaign,
            json!({"Campaign_Name": format!("C{round}")}),
        )
        .await;
        w.sync().await;
        let c = w.list(&w.crm, "Campaigns").await[0]["fields"]["Campaign_Name"].clone();
        let e = w.list(w.events(), "Events").await[0]["fields"]["Event_Name"].clone();
        if policy == "events_wins" {
            assert_eq!((c.as_str(), e.as_str()), (Some("E1"), Some("E1")));
        } else {
            assert_eq!(
                (c.as_str(), e.as_str()),
                (Some("C2"), Some("E2")),
                "held: neither changed"
            );
        }
    }
}

#[tokio::test]
async fn a_cancelled_attendee_takes_back_its_lead_unless_the_crm_changed_it() {
    let w = world("cancel").await;
    let expo = w.event("Fukuoka Expo").await;
    let fumi = w
        .attendee(expo, "fumi@example.com", "Abe", "registered")
        .await;
    let goro = w
        .attendee(expo, "goro@example.com", "Ueda", "registered")
        .await;
    w.sync().await;
    let leads = w.list(&w.crm, "Leads").await;
    let goro_lead = field(&leads, "Email", "goro@example.com").expect("Goro")["id"]
        .as_i64()
        .expect("id");
    w.edit(
        &w.crm,
        "Leads",
        goro_lead,
        json!({"Lead_Status": "Contacted"}),
    )
    .await;

    w.edit(
        w.events(),
        "Attendees",
        fumi,
        json!({"Status": "cancelled"}),
    )
    .await;
    w.edit(
        w.events(),
        "Attendees",
        goro,
        json!({"Status": "cancelled"}),
    )
    .await;
    let runs = w.sync().await;
    assert_eq!(run(&runs, "attendees")["deleted"], 1, "{runs:?}");
    let leads = w.list(&w.crm, "Leads").await;
    assert_eq!(
        leads.len(),
        1,
        "Fumi's Lead went to the recycle bin, Goro's stays"
    );
    assert_eq!(leads[0]["id"], goro_lead);
    let campaign = w.list(&w.crm, "Campaigns").await[0]["id"]
        .as_i64()
        .expect("id");
    assert!(
        w.related(&w.crm, "Campaigns", campaign, "Leads")
            .await
            .is_empty()
    );
    let history = w.history().await;
    let kept = history
        .iter()
        .flat_map(|r| r["items"].as_array().cloned().unwrap_or_default())
        .find(|i| i["code"] == "kept_changed_in_crm")
        .expect("the history says why Goro's Lead stayed");
    assert_eq!(kept["target_id"], goro_lead);

    // Registering again brings Fumi back.
    w.edit(
        w.events(),
        "Attendees",
        fumi,
        json!({"Status": "registered"}),
    )
    .await;
    let runs = w.sync().await;
    assert_eq!(run(&runs, "attendees")["added"], 1, "{runs:?}");
}

#[tokio::test]
async fn gen_8_a_record_that_cannot_be_written_fails_alone_with_its_reason_in_the_history_and_the_rest_sync()
 {
    let w = world("fails_alone").await;
    // Company (200 characters) mapped into City (30): a long company fails.
    let (status, body) = w
        .app
        .call(
            "PUT",
            &format!("/api/v1/integrations/{}/mapping", w.id),
            Some(&w.admin.key),
            Some(&json!({"mapping": [
                {"source": "Last_Name", "target": "Last_Name"},
                {"source": "Email", "target": "Email"},
                {"source": "Company", "target": "City"}
            ]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let expo = w.event("Sapporo Show").await;
    w.attendee(expo, "hana@example.com", "Ono", "registered")
        .await;
    let long = w
        .create(
            w.events(),
            "Attendees",
            json!({"Email": "iku@example.com", "Last_Name": "Ito", "Company": "K".repeat(40), "Event": expo, "Status": "registered"}),
        )
        .await;
    w.attendee(expo, "jun@example.com", "Goto", "registered")
        .await;
    let runs = w.sync().await;
    let attendees = run(&runs, "attendees");
    assert_eq!(attendees["added"], 2, "{runs:?}");
    assert_eq!(attendees["failed"], 1, "{runs:?}");
    let history = w.history().await;
    let failed = history
        .iter()
        .flat_map(|r| r["items"].as_array().cloned().unwrap_or_default())
        .find(|i| i["outcome"] == "failed")
        .expect("the failure is in the history");
    assert_eq!(failed["source_id"], long);
    assert_eq!(failed["details"]["cause"]["field"], "City", "{failed}");

    // Once the cause is mended, the run's failed record is retried at once.
    let failed_run = run(&runs, "attendees")["id"].as_i64().expect("run id");
    let retry = format!("/api/v1/integrations/{}/history/{failed_run}/retry", w.id);
    let (status, body) = w.app.call("POST", &retry, Some(&w.admin.key), None).await;
    assert_eq!(status, 200, "{body}");
    let runs = body["runs"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        (
            body["resent"].as_i64(),
            run(&runs, "attendees")["failed"].as_i64()
        ),
        (Some(1), Some(1)),
        "the cause is still there: {body}"
    );
    let (status, body) = w
        .app
        .call(
            "POST",
            &format!("/api/v1/integrations/{}/mapping/reset", w.id),
            Some(&w.admin.key),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = w.app.call("POST", &retry, Some(&w.admin.key), None).await;
    assert_eq!(status, 200, "{body}");
    let runs = body["runs"].as_array().cloned().unwrap_or_default();
    let attendees = run(&runs, "attendees");
    assert_eq!(
        (attendees["added"].as_i64(), attendees["failed"].as_i64()),
        (Some(1), Some(0)),
        "{body}"
    );
    assert_eq!(w.list(&w.crm, "Leads").await.len(), 3);
}

#[tokio::test]
async fn the_preview_answers_what_the_sync_then_does_and_writes_nothing() {
    let w = world("preview").await;
    let expo = w.event("Yokohama Days").await;
    w.create(
        &w.crm,
        "Leads",
        json!({"Last_Name": "Kudo", "Email": "kei@example.com"}),
    )
    .await;
    w.attendee(expo, "kei@example.com", "Kudo", "registered")
        .await;
    w.attendee(expo, "lin@example.com", "Lin", "registered")
        .await;
    w.attendee(expo, "mio@example.com", "Mio", "cancelled")
        .await;

    let before = fingerprint(&w.app.store).await;
    let (status, body) = w
        .app
        .call(
            "POST",
            &format!("/api/v1/integrations/{}/preview", w.id),
            Some(&w.admin.key),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        fingerprint(&w.app.store).await,
        before,
        "a preview writes nothing"
    );
    let steps = body["preview"]["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let p = run(&steps, "attendees");
    assert_eq!(
        (
            p["added"].as_i64(),
            p["linked"].as_i64(),
            p["skipped"].as_i64()
        ),
        (Some(1), Some(1), Some(1)),
        "{p}"
    );
    assert_eq!(body["preview"]["complete"], true);

    let runs = w.sync().await;
    let r = run(&runs, "attendees");
    for k in ["added", "linked", "skipped", "updated", "failed"] {
        assert_eq!(r[k], p[k], "{k}: {r} vs {p}");
    }
}
