//! Settings → Marketplace over real HTTP: what each plan includes (GEN-2),
//! who may set up, enable and delete (GEN-4, GEN-7), every action behind
//! its CSRF token, the preview writing nothing, and the history's items
//! with their rules.

// Shared by the UI test binaries; each uses a part of it.
#[allow(dead_code)]
mod ui_world;

use kizuna_domain::{App, Role};
use kizuna_testkit::{Backend, TestApp};
use serde_json::json;
use ui_world::{Browser, PASSWORD};

#[tokio::test]
async fn gen_2_the_marketplace_offers_what_the_plan_includes_and_names_the_plans_that_do() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, "ui_marketplace").await else {
        return;
    };
    let admin = app.actor("admin@example.jp").await;
    let free = app.org(App::Crm, "free", &admin).await;
    let paid = app.org(App::Crm, "enterprise", &admin).await;
    let mut b = Browser::new(&app, "en");
    b.sign_in("admin@example.jp", PASSWORD).await;
    let page = b
        .get(&format!("/orgs/{}/settings/marketplace", free.id))
        .await;
    assert_eq!(page.status, 200);
    let desk = &page.body[page
        .body
        .find("data-kind=\"crm-desk\"")
        .expect("Desk offered")..];
    let desk = &desk[..desk.find("</li>").expect("its end")];
    assert!(
        desk.contains("Not included in this org")
            && desk.contains("standard, professional, enterprise"),
        "{desk}"
    );
    assert!(!desk.contains("Set up"));
    let paid_page = b
        .get(&format!("/orgs/{}/settings/marketplace", paid.id))
        .await;
    assert!(paid_page.body.contains(&format!(
        "href=\"/orgs/{}/settings/marketplace/crm-desk/new\"",
        paid.id
    )));
}

#[tokio::test]
async fn gen_4_gen_7_integration_pages_act_only_for_administrators_with_their_csrf_token() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, "ui_integration_actions").await else {
        return;
    };
    let admin = app.actor("admin@example.jp").await;
    let member = app.actor("member@example.jp").await;
    let stranger = app.actor("stranger@example.jp").await;
    let crm = app.org(App::Crm, "enterprise", &admin).await;
    let events = app.org(App::Events, "standard", &admin).await;
    app.store
        .add_member(crm.id, member.user.id, Role::Member)
        .await
        .expect("member");
    let mut b = Browser::new(&app, "en");
    b.sign_in("admin@example.jp", PASSWORD).await;
    let setup = format!("/orgs/{}/settings/marketplace/crm-events/new", crm.id);
    let form = b.get(&setup).await;
    assert!(
        form.body
            .contains(&format!("<option value=\"{}\">", events.id))
    );
    let to = events.id.to_string();
    assert_eq!(b.post(&setup, &[("to_org", to.as_str())]).await.status, 403);
    let created = b
        .post(&setup, &[("csrf", &form.csrf()), ("to_org", to.as_str())])
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
    let page_path = created.location().to_string();
    let id: i64 = page_path
        .trim_start_matches("/integrations/")
        .parse()
        .expect("an id");
    let page = b.get(&page_path).await;
    assert!(page.body.contains("data-state=\"pending\""));

    // Enable needs the token; then it is active.
    let act = format!("/integrations/{id}/act");
    assert_eq!(b.post(&act, &[("action", "enable")]).await.status, 403);
    let enabled = b
        .post(&act, &[("csrf", &page.csrf()), ("action", "enable")])
        .await;
    assert_eq!(enabled.status, 303, "{}", enabled.body);
    let page = b.get(&page_path).await;
    assert!(page.body.contains("data-state=\"active\""));

    // The preview writes nothing.
    let (_, before) = app
        .get(&format!("/api/v1/integrations/{id}/history"), &admin.key)
        .await;
    let preview = b.get(&format!("/integrations/{id}/preview")).await;
    assert_eq!(preview.status, 200);
    assert!(preview.body.contains("Nothing has been written."));
    let (_, after) = app
        .get(&format!("/api/v1/integrations/{id}/history"), &admin.key)
        .await;
    assert_eq!(before, after);

    // A member sees the page but cannot act; a stranger does not see it.
    let mut m = Browser::new(&app, "en");
    m.sign_in("member@example.jp", PASSWORD).await;
    let seen = m.get(&page_path).await;
    assert_eq!(seen.status, 200);
    assert!(
        !seen.body.contains("action=\"/integrations/"),
        "no action offered"
    );
    let refused = m
        .post(&act, &[("csrf", &seen.csrf()), ("action", "pause")])
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let mut s = Browser::new(&app, "en");
    s.sign_in(&stranger.user.email, PASSWORD).await;
    assert_eq!(s.get(&page_path).await.status, 404);

    // Delete: first what it removes, then only with the token.
    let delete = format!("/integrations/{id}/delete");
    let confirm = b.get(&delete).await;
    assert!(
        confirm.body.contains("removes its field mapping"),
        "{}",
        confirm.body
    );
    assert_eq!(b.post(&delete, &[]).await.status, 403);
    let (_, still) = app
        .get(&format!("/api/v1/integrations/{id}"), &admin.key)
        .await;
    assert_eq!(still["state"], "active");
    let done = b.post(&delete, &[("csrf", &confirm.csrf())]).await;
    assert_eq!(done.status, 303);
    let (_, gone) = app
        .get(&format!("/api/v1/integrations/{id}"), &admin.key)
        .await;
    assert_eq!(gone["state"], "deleted");
}

#[tokio::test]
async fn gen_8_the_history_lists_each_record_not_written_with_its_rule_and_a_link() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, "ui_integration_history").await else {
        return;
    };
    let admin = app.actor("admin@example.jp").await;
    let pair = kizuna_testkit::CrmEvents::create(&app.store, &admin.user).await;
    // A cancelled attendee, with markup in its values: the run says why it
    // was not written, and the page shows it escaped.
    let (status, attendee) = app
        .post(
            &format!("/api/v1/orgs/{}/modules/Attendees/records", pair.events.id),
            &admin.key,
            &json!({"fields": {"Email": "x@example.jp", "Last_Name": "<script>x</script>",
                "Event": pair.event, "Status": "cancelled"}}),
        )
        .await;
    assert_eq!(status, 201, "{attendee}");
    let (status, _) = app
        .post(
            &format!("/api/v1/integrations/{}/sync", pair.integration),
            &admin.key,
            &json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let mut b = Browser::new(&app, "ja");
    b.sign_in("admin@example.jp", PASSWORD).await;
    let page = b.get(&format!("/integrations/{}", pair.integration)).await;
    assert_eq!(page.status, 200);
    let (_, history) = app
        .get(
            &format!("/api/v1/integrations/{}/history", pair.integration),
            &admin.key,
        )
        .await;
    let not_written: Vec<serde_json::Value> = history["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .flat_map(|r| r["items"].as_array().cloned().unwrap_or_default())
        .filter(|it| it["outcome"] == "skipped" || it["outcome"] == "failed")
        .collect();
    assert!(!not_written.is_empty(), "{history}");
    for it in &not_written {
        let code = it["code"].as_str().expect("a code");
        assert!(
            page.body.contains(&format!("data-code=\"{code}\"")),
            "{code}"
        );
        if let Some(rule) = it["rule"].as_str() {
            assert!(page.body.contains(&format!("[{rule}]")), "{rule}");
        }
        let link = format!(
            "href=\"/orgs/{}/modules/{}/{}\"",
            pair.events.id,
            it["source_module"].as_str().expect("module"),
            it["source_id"]
        );
        assert!(page.body.contains(&link), "{link}");
    }
    assert!(!page.body.contains("<script>x"), "escaped");
}

#[tokio::test]
async fn gen_5_evt_13_the_mapping_editor_offers_only_compatible_fields_and_says_why_not_others() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, "ui_mapping").await else {
        return;
    };
    let admin = app.actor("admin@example.jp").await;
    let pair = kizuna_testkit::CrmEvents::create(&app.store, &admin.user).await;
    // A CRM field of a type Events cannot provide (EVT-13).
    kizuna_apps::admin::add_custom_field(
        &app.store,
        pair.crm.id,
        "Leads",
        kizuna_domain::field::FieldDef::new("Deal_Size", kizuna_domain::field::FieldType::Currency),
    )
    .await
    .expect("a custom field");
    let mut b = Browser::new(&app, "en");
    b.sign_in("admin@example.jp", PASSWORD).await;
    let path = format!("/integrations/{}/mapping", pair.integration);
    let page = b.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let row = |target: &str| -> String {
        let at = page
            .body
            .find(&format!("<select id=\"map::{target}\""))
            .unwrap_or_else(|| panic!("a row for {target}"));
        let rest = &page.body[at..];
        rest[..rest.find("</tr>").expect("its end")].to_string()
    };
    let email = row("Email");
    assert!(
        email.contains("<option value=\"Email\" selected>"),
        "{email}"
    );
    assert!(
        !email.contains("<option value=\"Last_Name\""),
        "a text field cannot fill an e-mail"
    );
    assert!(
        email.contains("Not offered, their types cannot hold this field")
            && email.contains("Last Name (text)"),
        "{email}"
    );
    let revenue = row("Deal_Size");
    assert!(revenue.contains("EVT-13"), "{revenue}");

    // A compatible choice is saved; a forged incompatible one is refused
    // naming both fields and types, and saves nothing.
    let saved = b
        .post(
            &path,
            &[
                ("csrf", &page.csrf()),
                ("map::Email", "Email"),
                ("map::Last_Name", "Last_Name"),
                ("map::Description", "Company"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let (_, mapping) = app
        .get(
            &format!("/api/v1/integrations/{}/mapping", pair.integration),
            &admin.key,
        )
        .await;
    let pairs = mapping["mapping"].as_array().expect("pairs");
    assert!(
        pairs
            .iter()
            .any(|p| p["source"] == "Company" && p["target"] == "Description"),
        "{mapping}"
    );
    assert_eq!(pairs.len(), 3);
    let refused = b
        .post(
            &path,
            &[("csrf", &page.csrf()), ("map::Email", "Last_Name")],
        )
        .await;
    assert_eq!(refused.status, 400);
    assert!(
        refused
            .body
            .contains("Last_Name (text) cannot be mapped to Email (email)"),
        "{}",
        refused.body
    );
    let (_, after) = app
        .get(
            &format!("/api/v1/integrations/{}/mapping", pair.integration),
            &admin.key,
        )
        .await;
    assert_eq!(after["mapping"], mapping["mapping"], "nothing saved");
    let reset = b
        .post(&path, &[("csrf", &page.csrf()), ("reset", "1")])
        .await;
    assert_eq!(reset.status, 303);
    let (_, defaults) = app
        .get(
            &format!("/api/v1/integrations/{}/mapping", pair.integration),
            &admin.key,
        )
        .await;
    assert_eq!(defaults["mapping"], defaults["defaults"]);
}

#[tokio::test]
async fn evt_8_the_settings_step_sends_attendees_to_contacts_and_refuses_an_unknown_value() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, "ui_integration_settings").await else {
        return;
    };
    let admin = app.actor("admin@example.jp").await;
    let pair = kizuna_testkit::CrmEvents::create(&app.store, &admin.user).await;
    let mut b = Browser::new(&app, "en");
    b.sign_in("admin@example.jp", PASSWORD).await;
    let path = format!("/integrations/{}/settings", pair.integration);
    let page = b.get(&path).await;
    assert!(
        page.body.contains("<option value=\"Leads\" selected>"),
        "Leads by default"
    );
    let refused = b
        .post(&path, &[("csrf", &page.csrf()), ("target_module", "Deals")])
        .await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.body.contains("Contacts"),
        "names the valid values: {}",
        refused.body
    );
    let saved = b
        .post(
            &path,
            &[
                ("csrf", &page.csrf()),
                ("target_module", "Contacts"),
                ("trigger_status", "confirmed"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let (_, i) = app
        .get(
            &format!("/api/v1/integrations/{}", pair.integration),
            &admin.key,
        )
        .await;
    assert_eq!(i["settings"]["target_module"], "Contacts");
    assert_eq!(i["settings"]["trigger_status"], "confirmed");
    let mapping = b
        .get(&format!("/integrations/{}/mapping", pair.integration))
        .await;
    assert!(
        mapping.body.contains("→ Contacts"),
        "the mapping now fills Contacts"
    );
}

#[tokio::test]
async fn dsk_13_a_held_conflict_is_decided_on_its_page_with_the_token() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, "ui_conflicts").await else {
        return;
    };
    let admin = app.actor("admin@example.jp").await;
    let pair = kizuna_testkit::CrmDesk::create(&app.store, &admin.user).await;
    let sync = || async {
        let (status, body) = app
            .post(
                &format!("/api/v1/integrations/{}/sync", pair.integration),
                &admin.key,
                &json!({}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    };
    let (status, _) = app
        .patch(
            &format!("/api/v1/integrations/{}/settings", pair.integration),
            &admin.key,
            &json!({"conflict_policy": "hold"}),
        )
        .await;
    assert_eq!(status, 200);
    let records = |org: i64| format!("/api/v1/orgs/{org}/modules/Contacts/records");
    let (_, c) = app
        .post(
            &records(pair.crm.id),
            &admin.key,
            &json!({"fields": {"Last_Name": "Abe", "Phone": "03-1000"}}),
        )
        .await;
    let c = c["id"].as_i64().expect("a contact");
    sync().await;
    let (_, twins) = app.get(&records(pair.desk.id), &admin.key).await;
    let d = twins["records"][0]["id"].as_i64().expect("its twin");
    for (org, id, phone) in [(pair.crm.id, c, "03-2000"), (pair.desk.id, d, "03-3000")] {
        let (status, _) = app
            .patch(
                &format!("{}/{id}", records(org)),
                &admin.key,
                &json!({"fields": {"Phone": phone}}),
            )
            .await;
        assert_eq!(status, 200);
    }
    sync().await;

    let mut b = Browser::new(&app, "en");
    b.sign_in("admin@example.jp", PASSWORD).await;
    let path = format!("/integrations/{}/conflicts", pair.integration);
    let page = b.get(&path).await;
    assert_eq!(page.status, 200);
    let row = &page.body[page.body.find("data-conflict=").expect("a held conflict")..];
    assert!(
        row.contains("<td>Phone</td><td>03-1000</td><td>03-2000</td><td>03-3000</td>"),
        "{row}"
    );
    let conflict: String = row["data-conflict=\"".len()..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    let decide = format!("{path}/{conflict}");
    assert_eq!(b.post(&decide, &[("take", "other")]).await.status, 403);
    let done = b
        .post(&decide, &[("csrf", &page.csrf()), ("take", "other")])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let (_, now) = app
        .get(&format!("{}/{c}", records(pair.crm.id)), &admin.key)
        .await;
    assert_eq!(
        now["fields"]["Phone"], "03-3000",
        "the Desk value stands in the CRM"
    );
    assert!(b.get(&path).await.body.contains("Nothing is waiting."));
}
