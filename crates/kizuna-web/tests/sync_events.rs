//! CRM ⇄ Events through the sync engine, over real HTTP: attendees into Leads
//! or Contacts, events and Campaigns both ways, dedup, deletes, conflicts,
//! the history, the preview, and runs at once. Each test names its rule.

use kizuna_domain::App;
use kizuna_store::Org;
use kizuna_testkit::{Actor, Backend, TestApp, code, fingerprint};
use serde_json::{Value, json};

/// A CRM org and an Events org with one administrator, linked and active.
struct World {
    app: TestApp,
    admin: Actor,
    crm: Org,
    events: Org,
    id: i64,
}

impl World {
    async fn new(backend: Backend, test: &str, settings: Value) -> Option<World> {
        let app = TestApp::spawn(backend, test).await?;
        let admin = app.actor("admin@example.com").await;
        let crm = app.org(App::Crm, "standard", &admin).await;
        let events = app.org(App::Events, "standard", &admin).await;
        let (status, l) = app
            .post(
                "/api/v1/integrations",
                &admin.key,
                &json!({"kind": "crm-events", "from_org": crm.id, "to_org": events.id, "settings": settings}),
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
            events,
            id,
        })
    }

    fn records(org: &Org, module: &str) -> String {
        format!("/api/v1/orgs/{}/modules/{module}/records", org.id)
    }

    async fn create(&self, org: &Org, module: &str, fields: Value) -> i64 {
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

    async fn edit(&self, org: &Org, module: &str, id: i64, fields: Value) {
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

    async fn event(&self, name: &str) -> i64 {
        self.create(
            &self.events,
            "Events",
            json!({"Event_Name": name, "Status": "Live"}),
        )
        .await
    }

    async fn attendee(&self, event: i64, email: &str, last: &str, status: &str) -> i64 {
        self.create(
            &self.events,
            "Attendees",
            json!({"Email": email, "First_Name": "Aki", "Last_Name": last, "Event": event, "Status": status}),
        )
        .await
    }

    async fn list(&self, org: &Org, module: &str) -> Vec<Value> {
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

    async fn related(&self, org: &Org, module: &str, id: i64, list: &str) -> Vec<i64> {
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

    /// Runs a sync; returns its runs.
    async fn sync(&self) -> Vec<Value> {
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

    async fn history(&self) -> Vec<Value> {
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
fn run<'a>(runs: &'a [Value], data_type: &str) -> &'a Value {
    runs.iter()
        .find(|r| r["data_type"] == data_type)
        .unwrap_or_else(|| panic!("no {data_type} run in {runs:?}"))
}

fn writes(runs: &[Value]) -> i64 {
    runs.iter()
        .map(|r| {
            ["added", "updated", "deleted", "linked"]
                .iter()
                .map(|k| r[*k].as_i64().unwrap_or(0))
                .sum::<i64>()
        })
        .sum()
}

fn field<'a>(records: &'a [Value], name: &str, value: &str) -> Option<&'a Value> {
    records.iter().find(|r| r["fields"][name] == value)
}

fn yen(amount: i64) -> Value {
    json!({"amount_minor": amount, "currency": "JPY"})
}

async fn world(test: &str) -> World {
    World::new(Backend::Sqlite, test, json!({}))
        .await
        .expect("SQLite")
}

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
    assert_eq!(w.list(&w.events, "Events").await.len(), 1);

    // An edit flows into the Lead the sync made.
    let attendees = w.list(&w.events, "Attendees").await;
    let ann_attendee = field(&attendees, "Email", "ann@example.com").expect("Ann")["id"]
        .as_i64()
        .expect("id");
    w.edit(
        &w.events,
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
async fn evt_7_an_attendee_whose_email_is_in_the_crm_is_tied_to_that_record_and_the_history_names_it()
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

    w.edit(&w.events, "Attendees", a, json!({"Status": "confirmed"}))
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
            &w.events,
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
    w.edit(&w.events, "Events", expo, json!({"Expenses": yen(150000)}))
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
    let events = w.list(&w.events, "Events").await;
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
        &w.events,
        "Events",
        event,
        json!({"Event_Name": "Spring Webinar 2026"}),
    )
    .await;
    w.edit(&w.crm, "Campaigns", campaign, json!({"Status": "Active"}))
        .await;
    w.sync().await;
    let c = &w.list(&w.crm, "Campaigns").await[0];
    let e = &w.list(&w.events, "Events").await[0];
    assert_eq!(c["fields"]["Campaign_Name"], "Spring Webinar 2026", "{c}");
    assert_eq!(e["fields"]["Status"], "Live", "Active ⇒ Live: {e}");
    assert_eq!(writes(&w.sync().await), 0);
}

#[tokio::test]
async fn the_same_field_changed_on_both_sides_follows_the_policy_and_the_history_has_both_values() {
    let w = world("conflict").await;
    let event = w.event("Sendai Meetup").await;
    w.sync().await;
    let campaign = w.list(&w.crm, "Campaigns").await[0]["id"]
        .as_i64()
        .expect("id");
    w.edit(
        &w.events,
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
        w.list(&w.events, "Events").await[0]["fields"]["Event_Name"],
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

    w.edit(&w.events, "Attendees", fumi, json!({"Status": "cancelled"}))
        .await;
    w.edit(&w.events, "Attendees", goro, json!({"Status": "cancelled"}))
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
        &w.events,
        "Attendees",
        fumi,
        json!({"Status": "registered"}),
    )
    .await;
    let runs = w.sync().await;
    assert_eq!(run(&runs, "attendees")["added"], 1, "{runs:?}");
}

#[tokio::test]
async fn a_record_that_cannot_be_written_fails_alone_with_its_reason_and_the_rest_sync() {
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
            &w.events,
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
                &World::records(&w.events, "Attendees"),
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
        &w.events,
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
            &World::records(&w.events, "Attendees"),
            &w.admin.key,
            &json!({"records": records}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    w.sync().await;
    assert_eq!(w.list(&w.crm, "Leads").await.len(), 60);
    for a in body["records"].as_array().cloned().unwrap_or_default() {
        let id = a["id"].as_i64().expect("id");
        w.edit(&w.events, "Attendees", id, json!({"Status": "cancelled"}))
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
