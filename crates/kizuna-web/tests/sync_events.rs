//! CRM ⇄ Events through the sync engine, over real HTTP, one test per rule:
//! attendees into Leads or Contacts, dedup, events and Campaigns both ways,
//! money fields, and the integration's life around syncs.

// Shared by the sync test binaries; each uses a part of it.
#[allow(dead_code)]
mod sync_world;

use kizuna_domain::App;
use kizuna_testkit::{Backend, TestApp, code, fingerprint};
use serde_json::{Value, json};
use sync_world::*;

#[tokio::test]
async fn evt_8_evt_9_attendees_become_leads_of_their_events_campaign_and_a_second_sync_writes_nothing()
 {
    let w = world("evt_8_evt_9").await;
    let expo = w.event("Tokyo Expo").await;
    w.attendee(expo, "ann@example.com", "Sato", "registered")
        .await;
    w.attendee(expo, "ben@example.com", "Suzuki", "registered")
        .await;

    let runs = w.sync().await;
    assert_eq!(run(&runs, "events")["added"], 1, "{runs:?}");
    assert_eq!(run(&runs, "attendees")["added"], 2, "{runs:?}");
    assert!(runs.iter().all(|r| r["state"] == "finished"), "{runs:?}");

    let leads = w.list(&w.crm, "Leads").await;
    assert_eq!(leads.len(), 2);
    let ann = field(&leads, "Email", "ann@example.com").expect("Ann is a Lead");
    assert_eq!(ann["fields"]["Last_Name"], "Sato");
    let campaigns = w.list(&w.crm, "Campaigns").await;
    assert_eq!(campaigns.len(), 1);
    assert_eq!(campaigns[0]["fields"]["Campaign_Name"], "Tokyo Expo");
    assert_eq!(campaigns[0]["fields"]["Status"], "Active", "Live ⇒ Active");
    let campaign = campaigns[0]["id"].as_i64().expect("id");
    let mut members = w.related(&w.crm, "Campaigns", campaign, "Leads").await;
    members.sort();
    let mut lead_ids: Vec<i64> = leads.iter().filter_map(|l| l["id"].as_i64()).collect();
    lead_ids.sort();
    assert_eq!(
        members, lead_ids,
        "EVT-9: synced attendees are associated with the Campaign"
    );

    // No echo: the Campaign the sync made is not sent back as a new event,
    // and nothing is written again.
    let again = w.sync().await;
    assert_eq!(writes(&again), 0, "{again:?}");
    assert_eq!(w.list(w.events(), "Events").await.len(), 1);

    // An edit flows into the Lead the sync made.
    let attendees = w.list(w.events(), "Attendees").await;
    let ann_attendee = field(&attendees, "Email", "ann@example.com").expect("Ann")["id"]
        .as_i64()
        .expect("id");
    w.edit(
        w.events(),
        "Attendees",
        ann_attendee,
        json!({"Last_Name": "Sato-Ito"}),
    )
    .await;
    let runs = w.sync().await;
    assert_eq!(run(&runs, "attendees")["updated"], 1, "{runs:?}");
    let leads = w.list(&w.crm, "Leads").await;
    assert!(field(&leads, "Last_Name", "Sato-Ito").is_some());
}

#[tokio::test]
async fn evt_7_gen_8_an_attendee_whose_email_is_in_the_crm_is_tied_to_that_record_and_the_history_names_it()
 {
    let w = world("evt_7").await;
    let contact = w
        .create(
            &w.crm,
            "Contacts",
            json!({"Last_Name": "Tanaka", "Email": " Cho@Example.com "}),
        )
        .await;
    let expo = w.event("Osaka Fair").await;
    let attendee = w
        .attendee(expo, "cho@example.COM", "Tanaka", "registered")
        .await;
    // The same new person twice: one Lead, the second attendee tied to it.
    w.attendee(expo, "dai@example.com", "Kato", "registered")
        .await;
    w.attendee(expo, "DAI@example.com", "Kato", "registered")
        .await;

    let runs = w.sync().await;
    let attendees = run(&runs, "attendees");
    assert_eq!(attendees["added"], 1, "{runs:?}");
    assert_eq!(attendees["linked"], 2, "{runs:?}");
    assert_eq!(w.list(&w.crm, "Leads").await.len(), 1);

    let history = w.history().await;
    let items = history
        .iter()
        .find(|r| r["data_type"] == "attendees")
        .expect("run")["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let item = items
        .iter()
        .find(|i| i["source_id"] == attendee)
        .expect("an item for the attendee");
    assert_eq!(item["outcome"], "linked");
    assert_eq!(item["code"], "duplicate_email");
    assert_eq!(item["rule"], "EVT-7");
    assert_eq!(item["target_module"], "Contacts");
    assert_eq!(item["target_id"], contact);
    assert!(
        item["message"]["en"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("Contacts {contact}")),
        "{item}"
    );
    assert!(
        item["message"]["ja"]
            .as_str()
            .unwrap_or("")
            .contains("既に"),
        "{item}"
    );

    let campaign = w.list(&w.crm, "Campaigns").await[0]["id"]
        .as_i64()
        .expect("id");
    assert_eq!(
        w.related(&w.crm, "Campaigns", campaign, "Contacts").await,
        vec![contact]
    );
}

#[tokio::test]
async fn evt_8_contacts_as_target_and_the_trigger_status_decides_when_attendees_flow() {
    let Some(w) = World::new(
        Backend::Sqlite,
        "evt_8_target",
        json!({"target_module": "Contacts", "trigger_status": "confirmed"}),
    )
    .await
    else {
        return;
    };
    let expo = w.event("Nagoya Summit").await;
    let a = w
        .attendee(expo, "eri@example.com", "Mori", "registered")
        .await;
    let runs = w.sync().await;
    let attendees = run(&runs, "attendees");
    assert_eq!(attendees["added"], 0);
    assert_eq!(attendees["skipped"], 1, "{runs:?}");
    let items = &w
        .history()
        .await
        .iter()
        .find(|r| r["data_type"] == "attendees")
        .expect("run")["items"]
        .clone();
    assert_eq!(items[0]["code"], "attendee_status_not_synced", "{items}");
    assert_eq!(items[0]["rule"], "EVT-8");

    w.edit(w.events(), "Attendees", a, json!({"Status": "confirmed"}))
        .await;
    let runs = w.sync().await;
    assert_eq!(run(&runs, "attendees")["added"], 1, "{runs:?}");
    let contacts = w.list(&w.crm, "Contacts").await;
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0]["fields"]["Email"], "eri@example.com");
    assert!(w.list(&w.crm, "Leads").await.is_empty());
}

#[tokio::test]
async fn evt_11_financial_fields_wait_for_the_crm_currency_and_the_history_says_why() {
    let w = world("evt_11").await;
    let expo = w
        .create(
            w.events(),
            "Events",
            json!({"Event_Name": "Kobe Forum", "Budget": yen(500000), "Expenses": yen(120000)}),
        )
        .await;
    let runs = w.sync().await;
    assert_eq!(run(&runs, "events")["added"], 1);
    let campaign = &w.list(&w.crm, "Campaigns").await[0];
    assert!(
        campaign["fields"].get("Budgeted_Cost").is_none(),
        "{campaign}"
    );
    let history = w.history().await;
    let items = &history
        .iter()
        .find(|r| r["data_type"] == "events")
        .expect("run")["items"];
    assert_eq!(items[0]["code"], "currency_not_set", "{items}");
    assert_eq!(items[0]["rule"], "EVT-11");
    assert_eq!(items[0]["outcome"], "notice");
    assert!(
        items[0]["details"]["fix"]["en"]
            .as_str()
            .unwrap_or("")
            .contains("currency")
    );

    let (status, body) = w
        .app
        .patch(
            &format!("/api/v1/orgs/{}", w.crm.id),
            &w.admin.key,
            &json!({"currency": "JPY"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Setting the currency brings the figures over without the event changing.
    let runs = w.sync().await;
    assert_eq!(run(&runs, "events")["updated"], 1, "{runs:?}");
    let campaign = &w.list(&w.crm, "Campaigns").await[0];
    assert_eq!(
        (
            &campaign["fields"]["Budgeted_Cost"],
            &campaign["fields"]["Actual_Cost"]
        ),
        (&yen(500000), &yen(120000)),
        "{campaign}"
    );
    assert_eq!(writes(&w.sync().await), 0, "and once only");
    w.edit(w.events(), "Events", expo, json!({"Expenses": yen(150000)}))
        .await;
    let runs = w.sync().await;
    assert_eq!(run(&runs, "events")["updated"], 1, "{runs:?}");
    let campaign = &w.list(&w.crm, "Campaigns").await[0];
    assert_eq!(
        campaign["fields"]["Budgeted_Cost"],
        yen(500000),
        "{campaign}"
    );
    assert_eq!(campaign["fields"]["Actual_Cost"], yen(150000), "{campaign}");
}

#[tokio::test]
async fn evt_14_a_campaign_made_in_the_crm_becomes_an_event_and_edits_flow_both_ways() {
    let w = world("evt_14").await;
    let campaign = w
        .create(&w.crm, "Campaigns", json!({"Campaign_Name": "Spring Webinar", "Status": "Planning", "Start_Date": "2026-04-01"}))
        .await;
    let runs = w.sync().await;
    assert_eq!(run(&runs, "campaigns")["added"], 1, "{runs:?}");
    let events = w.list(w.events(), "Events").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["fields"]["Event_Name"], "Spring Webinar");
    assert_eq!(events[0]["fields"]["Status"], "Draft", "Planning ⇒ Draft");
    assert_eq!(events[0]["fields"]["Start_Date"], "2026-04-01");
    let event = events[0]["id"].as_i64().expect("id");
    assert_eq!(
        writes(&w.sync().await),
        0,
        "no echo of the event the sync made"
    );

    w.edit(
        w.events(),
        "Events",
        event,
        json!({"Event_Name": "Spring Webinar 2026"}),
    )
    .await;
    w.edit(&w.crm, "Campaigns", campaign, json!({"Status": "Active"}))
        .await;
    w.sync().await;
    let c = &w.list(&w.crm, "Campaigns").await[0];
    let e = &w.list(w.events(), "Events").await[0];
    assert_eq!(c["fields"]["Campaign_Name"], "Spring Webinar 2026", "{c}");
    assert_eq!(e["fields"]["Status"], "Live", "Active ⇒ Live: {e}");
    assert_eq!(writes(&w.sync().await), 0);
}

#[tokio::test]
async fn gen_4_gen_6_nothing_syncs_until_enabled_or_while_paused() {
    let app = TestApp::spawn(Backend::Sqlite, "gen_4_sync")
        .await
        .expect("SQLite");
    let admin = app.actor("admin@example.com").await;
    let crm = app.org(App::Crm, "standard", &admin).await;
    let events = app.org(App::Events, "standard", &admin).await;
    let (_, l) = app
        .post(
            "/api/v1/integrations",
            &admin.key,
            &json!({"kind": "crm-events", "from_org": crm.id, "to_org": events.id}),
        )
        .await;
    let sync = format!("/api/v1/integrations/{}/sync", l["id"]);
    let (status, body) = app.call("POST", &sync, Some(&admin.key), None).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(code(&body), "integration_pending");
    assert_eq!(body["error"]["rule"], "GEN-4");

    app.call(
        "POST",
        &format!("/api/v1/integrations/{}/enable", l["id"]),
        Some(&admin.key),
        None,
    )
    .await;
    app.call(
        "POST",
        &format!("/api/v1/integrations/{}/pause", l["id"]),
        Some(&admin.key),
        None,
    )
    .await;
    let (status, body) = app.call("POST", &sync, Some(&admin.key), None).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(code(&body), "integration_not_running");
    assert_eq!(body["error"]["rule"], "GEN-6");
    assert!(
        body["error"]["fix"]["en"]
            .as_str()
            .unwrap_or("")
            .contains("resume")
    );
}

#[tokio::test]
async fn gen_7_evt_10_deleting_the_integration_removes_its_record_links() {
    let w = world("gen_7_links").await;
    let expo = w.event("Kyoto Gala").await;
    w.attendee(expo, "nao@example.com", "Oda", "registered")
        .await;
    w.sync().await;
    let path = format!("/api/v1/integrations/{}", w.id);
    let (_, plan) = w.app.delete(&path, &w.admin.key).await;
    assert_eq!(
        plan["would_remove"]["record_associations"], 2,
        "an event and an attendee: {plan}"
    );
    let (status, _) = w
        .app
        .delete(&format!("{path}?confirm=true"), &w.admin.key)
        .await;
    assert_eq!(status, 200);
    assert!(
        w.app
            .store
            .link_counts(w.id)
            .await
            .expect("counts")
            .is_empty()
    );
    assert_eq!(w.list(&w.crm, "Leads").await.len(), 1, "the records stay");
    let (status, body) = w
        .app
        .call("POST", &format!("{path}/sync"), Some(&w.admin.key), None)
        .await;
    assert!(status == 409 || status == 403, "{status} {body}");
}

/// Three syncs at once over the same changes: the cursor's compare-and-set
/// lets each change through once.
async fn concurrent_syncs_apply_each_change_once(backend: Backend) {
    let Some(w) = World::new(backend, "concurrent_syncs", json!({})).await else {
        return;
    };
    let expo = w.event("Hiroshima Conference").await;
    let records: Vec<Value> = (0..300)
        .map(|n| json!({"fields": {"Email": format!("p{n}@example.com"), "Last_Name": format!("P{n}"), "Event": expo, "Status": "registered"}}))
        .collect();
    for chunk in records.chunks(100) {
        let (status, body) = w
            .app
            .post(
                &World::records(w.events(), "Attendees"),
                &w.admin.key,
                &json!({"records": chunk}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let (a, b, c) = tokio::join!(w.sync(), w.sync(), w.sync());
    let added: i64 = [a, b, c]
        .iter()
        .flatten()
        .filter(|r| r["data_type"] == "attendees")
        .map(|r| r["added"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(added, 300);
    assert_eq!(w.list(&w.crm, "Leads").await.len(), 300);
    assert_eq!(w.list(&w.crm, "Campaigns").await.len(), 1);
}

#[tokio::test]
async fn concurrent_syncs_apply_each_change_once_on_sqlite() {
    concurrent_syncs_apply_each_change_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn concurrent_syncs_apply_each_change_once_on_postgres() {
    concurrent_syncs_apply_each_change_once(Backend::Postgres).await;
}

#[tokio::test]
async fn gen_6_evt_6_what_changed_while_paused_flows_on_resume() {
    let w = world("gen_6_resume").await;
    let expo = w.event("Naha Festival").await;
    w.attendee(expo, "oki@example.com", "Oshiro", "registered")
        .await;
    w.sync().await;
    let act = |action: &str| format!("/api/v1/integrations/{}/{action}", w.id);
    let (status, _) = w
        .app
        .call("POST", &act("pause"), Some(&w.admin.key), None)
        .await;
    assert_eq!(status, 200);
    let paused = w
        .attendee(expo, "pia@example.com", "Higa", "registered")
        .await;
    w.edit(
        w.events(),
        "Events",
        expo,
        json!({"Event_Name": "Naha Festival 2026"}),
    )
    .await;
    let (status, body) = w
        .app
        .call("POST", &act("sync"), Some(&w.admin.key), None)
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        w.list(&w.crm, "Leads").await.len(),
        1,
        "nothing flows while paused"
    );

    let (status, _) = w
        .app
        .call("POST", &act("resume"), Some(&w.admin.key), None)
        .await;
    assert_eq!(status, 200);
    let runs = w.sync().await;
    assert_eq!(run(&runs, "attendees")["added"], 1, "{runs:?}");
    assert_eq!(run(&runs, "events")["updated"], 1, "{runs:?}");
    let leads = w.list(&w.crm, "Leads").await;
    assert!(
        field(&leads, "Email", "pia@example.com").is_some(),
        "attendee {paused} arrived"
    );
    assert_eq!(
        w.list(&w.crm, "Campaigns").await[0]["fields"]["Campaign_Name"],
        "Naha Festival 2026"
    );
}

#[tokio::test]
async fn a_run_that_would_delete_most_linked_records_stops_and_asks_before_deleting_anything() {
    let w = world("mass_delete").await;
    let expo = w.event("Chiba Marathon").await;
    let records: Vec<Value> = (0..60)
        .map(|n| json!({"fields": {"Email": format!("r{n}@example.com"), "Last_Name": format!("R{n}"), "Event": expo, "Status": "registered"}}))
        .collect();
    let (status, body) = w
        .app
        .post(
            &World::records(w.events(), "Attendees"),
            &w.admin.key,
            &json!({"records": records}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    w.sync().await;
    assert_eq!(w.list(&w.crm, "Leads").await.len(), 60);
    for a in body["records"].as_array().cloned().unwrap_or_default() {
        let id = a["id"].as_i64().expect("id");
        w.edit(w.events(), "Attendees", id, json!({"Status": "cancelled"}))
            .await;
    }

    let sync = format!("/api/v1/integrations/{}/sync", w.id);
    let (status, body) = w.app.call("POST", &sync, Some(&w.admin.key), None).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(code(&body), "mass_delete_guard");
    assert!(
        body["error"]["fix"]["en"]
            .as_str()
            .unwrap_or("")
            .contains("allow_deletes=true"),
        "{body}"
    );
    assert!(
        body["error"]["message"]["ja"]
            .as_str()
            .unwrap_or("")
            .contains("削除されていません"),
        "{body}"
    );
    assert_eq!(
        w.list(&w.crm, "Leads").await.len(),
        60,
        "nothing was deleted"
    );
    let (_, i) = w
        .app
        .get(&format!("/api/v1/integrations/{}", w.id), &w.admin.key)
        .await;
    assert_eq!(
        i["stopped"]["code"], "mass_delete_guard",
        "the integration says why it stopped: {i}"
    );
    let failed = &w.history().await[0];
    assert_eq!(
        (failed["state"].as_str(), failed["deleted"].as_i64()),
        (Some("failed"), Some(0)),
        "{failed}"
    );
    // GEN-9: the administrators are told, in the outbox and by mail.
    let (_, outbox) = w
        .app
        .get(&format!("/api/v1/orgs/{}/outbox", w.crm.id), &w.admin.key)
        .await;
    let mail = &outbox["messages"][0];
    assert_eq!(mail["code"], "mass_delete_guard", "{outbox}");
    assert!(
        mail["fix"]["en"]
            .as_str()
            .is_some_and(|f| f.contains("allow_deletes=true")),
        "{mail}"
    );

    let (status, body) = w
        .app
        .call(
            "POST",
            &format!("{sync}?allow_deletes=true"),
            Some(&w.admin.key),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let runs = body["runs"].as_array().cloned().unwrap_or_default();
    assert_eq!(run(&runs, "attendees")["deleted"], 60, "{runs:?}");
    assert!(w.list(&w.crm, "Leads").await.is_empty());
    let (_, i) = w
        .app
        .get(&format!("/api/v1/integrations/{}", w.id), &w.admin.key)
        .await;
    assert_eq!(i["stopped"], Value::Null);
}

#[tokio::test]
async fn evt_14_crm_leads_and_contacts_are_invited_to_an_event_as_attendees_without_coming_back_twice()
 {
    let w = world("evt_14_invite").await;
    let expo = w.event("Fukuoka Summit").await;
    w.attendee(expo, "already@example.com", "Sato", "registered")
        .await;
    w.sync().await;
    let campaign = w.list(&w.crm, "Campaigns").await[0]["id"]
        .as_i64()
        .expect("the event's Campaign");
    let already = w.list(&w.crm, "Leads").await[0]["id"]
        .as_i64()
        .expect("the attendee's Lead");
    let lead = w
        .create(&w.crm, "Leads", json!({"Last_Name": "Ueda", "First_Name": "Yui", "Email": "yui@example.com", "Company": "Ueda Shoji"}))
        .await;
    let contact = w
        .create(
            &w.crm,
            "Contacts",
            json!({"Last_Name": "Hara", "Email": "Hara@Example.com"}),
        )
        .await;
    let no_email = w
        .create(&w.crm, "Leads", json!({"Last_Name": "Noda"}))
        .await;
    let invite = format!("/api/v1/integrations/{}/invite", w.id);

    // Bad input (an id that is no Lead or Contact of the CRM) invites no one.
    let before = fingerprint(&w.app.store).await;
    let (status, body) = w
        .app
        .post(
            &invite,
            &w.admin.key,
            &json!({"campaign": campaign, "records": [lead, expo]}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        fingerprint(&w.app.store).await,
        before,
        "nothing was written"
    );
    let unsynced = w
        .create(
            &w.crm,
            "Campaigns",
            json!({"Campaign_Name": "Not yet an event"}),
        )
        .await;
    let (status, body) = w
        .app
        .post(
            &invite,
            &w.admin.key,
            &json!({"campaign": unsynced, "records": [lead]}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (409, "campaign_not_an_event"),
        "{body}"
    );
    assert_eq!(body["error"]["rule"], "EVT-14");

    let (status, body) = w
        .app
        .post(
            &invite,
            &w.admin.key,
            &json!({"campaign": campaign, "records": [lead, contact, no_email, already]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["event"], expo);
    let invited: Vec<i64> = body["invited"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|x| x["record"]["id"].as_i64())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(invited, [lead, contact], "{body}");
    let why = |id: i64| {
        body["not_invited"]
            .as_array()
            .and_then(|l| l.iter().find(|x| x["record"]["id"] == id).cloned())
            .unwrap_or_else(|| panic!("{id} is listed with its reason: {body}"))
    };
    assert_eq!(why(no_email)["code"], "no_email");
    assert_eq!(why(already)["code"], "already_attending");
    assert!(why(already)["attendee"].is_i64());

    let attendees = w.list(w.events(), "Attendees").await;
    let yui = field(&attendees, "Email", "yui@example.com").expect("Yui attends");
    assert_eq!(yui["fields"]["Event"], expo);
    assert_eq!(yui["fields"]["Status"], "registered");
    assert_eq!(yui["fields"]["Company"], "Ueda Shoji");
    assert!(field(&attendees, "Email", "Hara@Example.com").is_some());
    assert!(
        w.related(&w.crm, "Campaigns", campaign, "Leads")
            .await
            .contains(&lead)
    );
    assert!(
        w.related(&w.crm, "Campaigns", campaign, "Contacts")
            .await
            .contains(&contact)
    );
    // The invited attendees are the CRM's own people: no second Lead.
    let leads = w.list(&w.crm, "Leads").await.len();
    let runs = w.sync().await;
    let attendees = run(&runs, "attendees");
    assert_eq!(
        (&attendees["added"], &attendees["linked"]),
        (&json!(0), &json!(0)),
        "{runs:?}"
    );
    assert_eq!(w.list(&w.crm, "Leads").await.len(), leads);
}

#[tokio::test]
async fn evt_14_the_campaign_shows_tickets_sold_revenue_and_check_ins() {
    let w = world("evt_14_figures").await;
    let expo = w.event("Nagoya Tech Day").await;
    let a = w.attendee(expo, "a@example.com", "Abe", "registered").await;
    w.attendee(expo, "b@example.com", "Baba", "attended").await;
    w.attendee(expo, "c@example.com", "Chiba", "cancelled")
        .await;
    for (total, status) in [(300_000, "paid"), (100_000, "pending"), (50_000, "paid")] {
        w.create(
            w.events(),
            "Orders",
            json!({"Event": expo, "Buyer_Email": "buyer@example.com", "Total": yen(total), "Status": status}),
        )
        .await;
    }
    w.sync().await;
    let figures = |c: &Value| {
        (
            c["fields"]["Tickets_Sold"].clone(),
            c["fields"]["Check_Ins"].clone(),
            c["fields"]["Revenue"].clone(),
        )
    };
    let campaign = &w.list(&w.crm, "Campaigns").await[0];
    assert_eq!(
        figures(campaign),
        (json!(2), json!(1), Value::Null),
        "no revenue before the CRM has a currency (EVT-11): {campaign}"
    );

    let (status, body) = w
        .app
        .patch(
            &format!("/api/v1/orgs/{}", w.crm.id),
            &w.admin.key,
            &json!({"currency": "JPY"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    w.sync().await;
    let campaign = &w.list(&w.crm, "Campaigns").await[0];
    assert_eq!(
        figures(campaign),
        (json!(2), json!(1), yen(350_000)),
        "paid orders only: {campaign}"
    );

    // Check-ins and invitations move the figures; nothing else is written.
    w.edit(w.events(), "Attendees", a, json!({"Status": "attended"}))
        .await;
    let lead = w
        .create(
            &w.crm,
            "Leads",
            json!({"Last_Name": "Doi", "Email": "doi@example.com"}),
        )
        .await;
    let campaign_id = campaign["id"].as_i64().expect("id");
    let (status, body) = w
        .app
        .post(
            &format!("/api/v1/integrations/{}/invite", w.id),
            &w.admin.key,
            &json!({"campaign": campaign_id, "records": [lead]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    w.sync().await;
    let campaign = &w.list(&w.crm, "Campaigns").await[0];
    assert_eq!(figures(campaign), (json!(3), json!(2), yen(350_000)));
    assert_eq!(writes(&w.sync().await), 0, "figures are written once");
}
