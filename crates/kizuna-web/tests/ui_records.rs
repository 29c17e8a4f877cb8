//! The web UI's record forms over real HTTP: made from the field metadata,
//! refusals beside their fields in the reader's language with nothing
//! saved, edits that do not overwrite someone else's change, the recycle
//! bin and restore — and every one of those forms refused without its CSRF
//! token, changing nothing.

// Shared by the UI test binaries; each uses a part of it.
#[allow(dead_code)]
mod ui_world;

use kizuna_domain::App;
use kizuna_testkit::{Backend, TestApp};
use serde_json::json;
use ui_world::{Browser, PASSWORD};

async fn contacts(app: &TestApp, org: i64, key: &str) -> Vec<serde_json::Value> {
    let (status, body) = app
        .get(&format!("/api/v1/orgs/{org}/modules/Contacts/records"), key)
        .await;
    assert_eq!(status, 200, "{body}");
    body["records"].as_array().expect("records").clone()
}

#[tokio::test]
async fn ui_record_forms_show_refusals_beside_their_fields_and_save_nothing_until_valid() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, "ui_record_forms").await else {
        return;
    };
    let admin = app.actor("admin@example.jp").await;
    let org = app.org(App::Crm, "enterprise", &admin).await.id;
    let mut b = Browser::new(&app, "ja");
    b.sign_in("admin@example.jp", PASSWORD).await;
    let new = format!("/orgs/{org}/modules/Contacts/new");
    let form = b.get(&new).await;
    assert_eq!(form.status, 200);
    // Generated from the metadata: a labelled control per field in use.
    for id in ["f-Last_Name", "f-Email", "f-Description"] {
        assert!(form.body.contains(&format!("<label for=\"{id}\"")), "{id}");
    }
    assert!(form.body.contains("<textarea id=\"f-Description\""));

    let refused = b
        .post(
            &new,
            &[
                ("csrf", &form.csrf()),
                ("First_Name", "太郎"),
                ("Email", "taro at example"),
            ],
        )
        .await;
    assert_eq!(refused.status, 400);
    // Each refusal beside its field, in Japanese; what was typed is kept.
    let email_error = refused
        .body
        .find("id=\"e-Email\"")
        .expect("the e-mail's error");
    assert!(refused.body[email_error..].contains("メールアドレスの形式ではありません"));
    assert!(
        refused.body.contains("id=\"e-Last_Name\""),
        "the required last name"
    );
    assert!(refused.body.contains("value=\"太郎\""));
    assert!(
        contacts(&app, org, &admin.key).await.is_empty(),
        "nothing saved"
    );

    let without_token = b
        .post(&new, &[("Last_Name", "山田"), ("Email", "taro@example.jp")])
        .await;
    assert_eq!(without_token.status, 403);
    assert!(
        contacts(&app, org, &admin.key).await.is_empty(),
        "nothing saved"
    );

    let saved = b
        .post(
            &new,
            &[
                ("csrf", &form.csrf()),
                ("Last_Name", "山田"),
                ("Email", "taro@example.jp"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let list = contacts(&app, org, &admin.key).await;
    assert_eq!(list.len(), 1);
    let id = list[0]["id"].as_i64().expect("an id");
    assert_eq!(
        saved.location(),
        format!("/orgs/{org}/modules/Contacts/{id}")
    );
    assert_eq!(list[0]["fields"]["Last_Name"], "山田");
}

async fn record(app: &TestApp, org: i64, id: i64, key: &str) -> serde_json::Value {
    let (status, body) = app
        .get(
            &format!("/api/v1/orgs/{org}/modules/Contacts/records/{id}"),
            key,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn ui_an_edit_changes_only_what_changed_and_never_overwrites_a_newer_version() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, "ui_record_edit").await else {
        return;
    };
    let admin = app.actor("admin@example.jp").await;
    let org = app.org(App::Crm, "enterprise", &admin).await.id;
    let (_, created) = app
        .post(
            &format!("/api/v1/orgs/{org}/modules/Contacts/records"),
            &admin.key,
            &json!({"fields": {"Last_Name": "Sato", "Email": "sato@example.jp", "Title": "Buyer"}}),
        )
        .await;
    let id = created["id"].as_i64().expect("an id");
    let mut b = Browser::new(&app, "en");
    b.sign_in("admin@example.jp", PASSWORD).await;
    let edit = format!("/orgs/{org}/modules/Contacts/{id}/edit");
    let form = b.get(&edit).await;
    assert!(
        form.body.contains("value=\"Sato\"") && form.body.contains("name=\"_version\" value=\"1\"")
    );

    // Someone changes the record through the API meanwhile.
    let (status, _) = app
        .patch(
            &format!("/api/v1/orgs/{org}/modules/Contacts/records/{id}"),
            &admin.key,
            &json!({"fields": {"Title": "Director"}}),
        )
        .await;
    assert_eq!(status, 200);
    let stale = b
        .post(
            &edit,
            &[
                ("csrf", &form.csrf()),
                ("_version", "1"),
                ("Last_Name", "Sato"),
                ("Email", "sato@example.jp"),
                ("Title", "Buyer"),
                ("Description", "from the form"),
            ],
        )
        .await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    let now = record(&app, org, id, &admin.key).await;
    assert_eq!(
        now["fields"]["Title"], "Director",
        "the newer change stands"
    );
    assert!(now["fields"].get("Description").is_none_or(|d| d.is_null()));

    let fresh = b.get(&edit).await;
    let saved = b
        .post(
            &edit,
            &[
                ("csrf", &fresh.csrf()),
                ("_version", "2"),
                ("Last_Name", "Sato"),
                ("Email", "sato@example.jp"),
                ("Title", "Director"),
                ("Description", "met at the fair"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let now = record(&app, org, id, &admin.key).await;
    assert_eq!(now["fields"]["Description"], "met at the fair");
    assert_eq!(now["version"], 3, "one write for the one changed field");
}

#[tokio::test]
async fn ui_delete_moves_to_the_recycle_bin_and_restore_takes_it_back_both_behind_csrf() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, "ui_record_bin").await else {
        return;
    };
    let admin = app.actor("admin@example.jp").await;
    let org = app.org(App::Crm, "enterprise", &admin).await.id;
    let (_, created) = app
        .post(
            &format!("/api/v1/orgs/{org}/modules/Contacts/records"),
            &admin.key,
            &json!({"fields": {"First_Name": "Aya", "Last_Name": "Mori"}}),
        )
        .await;
    let id = created["id"].as_i64().expect("an id");
    let mut b = Browser::new(&app, "en");
    b.sign_in("admin@example.jp", PASSWORD).await;
    let page = b.get(&format!("/orgs/{org}/modules/Contacts/{id}")).await;
    let delete = format!("/orgs/{org}/modules/Contacts/{id}/delete");
    assert_eq!(b.post(&delete, &[]).await.status, 403);
    assert_eq!(
        contacts(&app, org, &admin.key).await.len(),
        1,
        "not deleted"
    );
    let deleted = b.post(&delete, &[("csrf", &page.csrf())]).await;
    assert_eq!(
        (deleted.status, deleted.location()),
        (303, format!("/orgs/{org}/bin").as_str())
    );
    assert!(contacts(&app, org, &admin.key).await.is_empty());
    let bin = b.get(&format!("/orgs/{org}/bin")).await;
    assert!(
        bin.body.contains(&format!("#{id} Aya Mori")),
        "{}",
        bin.body
    );

    let restore = format!("/orgs/{org}/modules/Contacts/{id}/restore");
    assert_eq!(b.post(&restore, &[("csrf", "forged")]).await.status, 403);
    assert!(
        contacts(&app, org, &admin.key).await.is_empty(),
        "not restored"
    );
    let restored = b.post(&restore, &[("csrf", &bin.csrf())]).await;
    assert_eq!(restored.status, 303);
    assert_eq!(contacts(&app, org, &admin.key).await.len(), 1);
    assert!(
        !b.get(&format!("/orgs/{org}/bin"))
            .await
            .body
            .contains("Aya Mori")
    );
}

#[tokio::test]
async fn evt_9_dsk_10_a_records_page_shows_its_related_lists_a_campaigns_leads_and_desk_tickets() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, "ui_related_lists").await else {
        return;
    };
    let admin = app.actor("admin@example.jp").await;
    let pair = kizuna_testkit::CrmEvents::create(&app.store, &admin.user).await;
    let (status, _) = app
        .post(
            &format!("/api/v1/orgs/{}/modules/Attendees/records", pair.events.id),
            &admin.key,
            &json!({"fields": {"Email": "kana@example.jp", "Last_Name": "Ito",
                "Event": pair.event, "Status": "registered"}}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = app
        .post(
            &format!("/api/v1/integrations/{}/sync", pair.integration),
            &admin.key,
            &json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, campaigns) = app
        .get(
            &format!("/api/v1/orgs/{}/modules/Campaigns/records", pair.crm.id),
            &admin.key,
        )
        .await;
    let campaign = campaigns["records"][0]["id"].as_i64().expect("a Campaign");
    let (_, leads) = app
        .get(
            &format!("/api/v1/orgs/{}/modules/Leads/records", pair.crm.id),
            &admin.key,
        )
        .await;
    let lead = leads["records"][0]["id"].as_i64().expect("a Lead");

    let mut b = Browser::new(&app, "en");
    b.sign_in("admin@example.jp", PASSWORD).await;
    let page = b
        .get(&format!(
            "/orgs/{}/modules/Campaigns/{campaign}",
            pair.crm.id
        ))
        .await;
    assert_eq!(page.status, 200);
    let leads_list = &page.body[page
        .body
        .find("data-list=\"Leads\"")
        .expect("EVT-9: the Campaign lists its Leads")..];
    assert!(
        leads_list.contains(&format!(
            "href=\"/orgs/{}/modules/Leads/{lead}\"",
            pair.crm.id
        )),
        "{leads_list}"
    );
    // No Desk integration: no Desk tickets list.
    assert!(!page.body.contains("data-list=\"Desk_Tickets\""));

    // DSK-10: with CRM ⇄ Desk, a Contact carries the list from setup on.
    let desk = kizuna_testkit::CrmDesk::create(&app.store, &admin.user).await;
    let (_, contact) = app
        .post(
            &format!("/api/v1/orgs/{}/modules/Contacts/records", desk.crm.id),
            &admin.key,
            &json!({"fields": {"Last_Name": "Kato", "Email": "kato@example.jp"}}),
        )
        .await;
    let contact = contact["id"].as_i64().expect("a contact");
    let page = b
        .get(&format!("/orgs/{}/modules/Contacts/{contact}", desk.crm.id))
        .await;
    assert!(
        page.body.contains("data-list=\"Desk_Tickets\""),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn dsk_7_dsk_9_a_ticket_opened_from_a_contacts_page_needs_its_email_and_the_agents_department()
 {
    let Some(app) = TestApp::spawn(Backend::Sqlite, "ui_open_ticket").await else {
        return;
    };
    let admin = app.actor("admin@example.jp").await;
    let pair = kizuna_testkit::CrmDesk::create(&app.store, &admin.user).await;
    // An agent: a member (not an administrator) of both orgs, in Support.
    let agent = app.actor("agent@example.jp").await;
    for org in [pair.crm.id, pair.desk.id] {
        app.store
            .add_member(org, agent.user.id, kizuna_domain::Role::Member)
            .await
            .expect("a member");
    }
    for name in ["Support", "Billing"] {
        let d = app
            .store
            .create_department(pair.desk.id, name)
            .await
            .expect("a department");
        if name == "Support" {
            app.store
                .add_department_member(pair.desk.id, d.id, agent.user.id)
                .await
                .expect("in Support");
        }
    }
    let contacts = format!("/api/v1/orgs/{}/modules/Contacts/records", pair.crm.id);
    let mut ids = Vec::new();
    for fields in [
        json!({"Last_Name": "NoMail"}),
        json!({"Last_Name": "Mori", "Email": "mori@example.jp"}),
    ] {
        let (_, c) = app
            .post(&contacts, &admin.key, &json!({"fields": fields}))
            .await;
        ids.push(c["id"].as_i64().expect("a contact"));
    }
    let (status, _) = app
        .post(
            &format!("/api/v1/integrations/{}/sync", pair.integration),
            &admin.key,
            &json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let tickets = || async {
        let (_, t) = app
            .get(
                &format!("/api/v1/orgs/{}/modules/Tickets/records", pair.desk.id),
                &admin.key,
            )
            .await;
        t["records"].as_array().map_or(0, Vec::len)
    };
    let mut b = Browser::new(&app, "ja");
    let signed = b.sign_in("agent@example.jp", PASSWORD).await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let open = |id: i64| format!("/orgs/{}/modules/Contacts/{id}/desk-tickets", pair.crm.id);
    let page = b
        .get(&format!(
            "/orgs/{}/modules/Contacts/{}",
            pair.crm.id, ids[0]
        ))
        .await;
    assert!(
        page.body.contains(&format!("action=\"{}\"", open(ids[0]))),
        "the page offers a ticket"
    );
    let csrf = page.csrf();
    let no_mail = b
        .post(
            &open(ids[0]),
            &[
                ("csrf", &csrf),
                ("Subject", "Help"),
                ("Department", "Support"),
            ],
        )
        .await;
    assert_eq!(no_mail.status, 409, "{}", no_mail.body);
    assert!(
        no_mail.body.contains("data-code=\"contact_without_email\"")
            && no_mail.body.contains("メールアドレス")
    );
    let not_mine = b
        .post(
            &open(ids[1]),
            &[
                ("csrf", &csrf),
                ("Subject", "Refund"),
                ("Department", "Billing"),
            ],
        )
        .await;
    assert_eq!(not_mine.status, 403, "{}", not_mine.body);
    assert_eq!(tickets().await, 0, "nothing opened");
    let opened = b
        .post(
            &open(ids[1]),
            &[
                ("csrf", &csrf),
                ("Subject", "Login fails"),
                ("Department", "Support"),
            ],
        )
        .await;
    assert_eq!(opened.status, 303, "{}", opened.body);
    assert_eq!(tickets().await, 1);
    let page = b
        .get(&format!(
            "/orgs/{}/modules/Contacts/{}",
            pair.crm.id, ids[1]
        ))
        .await;
    assert!(
        page.body.contains("Login fails"),
        "listed among its Desk tickets"
    );
}

#[tokio::test]
async fn ui_money_reads_as_an_amount_and_its_currency_on_lists_records_and_forms() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, "ui_money").await else {
        return;
    };
    let admin = app.actor("admin@example.jp").await;
    let org = app.org(App::Crm, "enterprise", &admin).await.id;
    let (status, deal) = app
        .post(
            &format!("/api/v1/orgs/{org}/modules/Deals/records"),
            &admin.key,
            &json!({"fields": {"Deal_Name": "Renewal", "Stage": "Proposal", "Amount": {"amount_minor": 123456, "currency": "USD"}}}),
        )
        .await;
    assert_eq!(status, 201, "{deal}");
    let id = deal["id"].as_i64().expect("an id");
    let mut b = Browser::new(&app, "en");
    b.sign_in("admin@example.jp", PASSWORD).await;
    for path in [
        format!("/orgs/{org}/modules/Deals"),
        format!("/orgs/{org}/modules/Deals/{id}"),
        format!("/orgs/{org}/modules/Deals/{id}/edit"),
    ] {
        let page = b.get(&path).await;
        assert!(page.body.contains("1234.56 USD"), "{path}: {}", page.body);
        assert!(
            !page.body.contains("amount_minor"),
            "{path}: not the stored JSON"
        );
    }
}

// Date-times are typed and read in the user's time zone (Asia/Tokyo until
// they choose another on their preferences page, behind its token); the
// store keeps the instant in UTC, so another reader sees it in theirs.
#[tokio::test]
async fn ui_date_times_are_typed_and_shown_in_each_users_time_zone() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, "ui_time_zones").await else {
        return;
    };
    let admin = app.actor("admin@example.jp").await;
    let org = app.org(App::Crm, "enterprise", &admin).await.id;
    let mut b = Browser::new(&app, "en");
    b.sign_in("admin@example.jp", PASSWORD).await;
    let me = b.get("/settings/me").await;
    assert!(
        me.body.contains("<option value=\"Asia/Tokyo\" selected>"),
        "the default"
    );
    let csrf = me.csrf();
    assert_eq!(
        b.post("/settings/time-zone", &[("time_zone", "Europe/Paris")])
            .await
            .status,
        403,
        "without the token"
    );
    let refused = b
        .post(
            "/settings/time-zone",
            &[("csrf", &csrf), ("time_zone", "Mars/Olympus")],
        )
        .await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.body.contains("is not a time zone"),
        "{}",
        refused.body
    );
    let saved = b
        .post(
            "/settings/time-zone",
            &[("csrf", &csrf), ("time_zone", "Europe/Paris")],
        )
        .await;
    assert_eq!(saved.status, 303);

    let new = format!("/orgs/{org}/modules/Events/new");
    let form = b.get(&new).await;
    assert!(
        form.body
            .contains("id=\"f-Start_DateTime\" name=\"Start_DateTime\" type=\"datetime-local\"")
    );
    let made = b
        .post(
            &new,
            &[
                ("csrf", &csrf),
                ("Title", "Kick-off"),
                ("Start_DateTime", "2026-04-01T02:30"),
                ("End_DateTime", "2026-04-01T03:45"),
            ],
        )
        .await;
    assert_eq!(made.status, 303, "{}", made.body);
    let (_, list) = app
        .get(
            &format!("/api/v1/orgs/{org}/modules/Events/records"),
            &admin.key,
        )
        .await;
    let event = &list["records"][0];
    assert_eq!(
        event["fields"]["Start_DateTime"], "2026-04-01T00:30:00Z",
        "kept in UTC"
    );
    let id = event["id"].as_i64().expect("an id");
    let page = b.get(made.location()).await;
    assert!(page.body.contains("2026-04-01 02:30 CEST"), "{}", page.body);
    let edit = b
        .get(&format!("/orgs/{org}/modules/Events/{id}/edit"))
        .await;
    assert!(
        edit.body.contains("value=\"2026-04-01T02:30\""),
        "{}",
        edit.body
    );

    // Another user, who chose no zone, reads it in Tokyo's time.
    let rep = app.actor("rep@example.jp").await;
    app.store
        .add_member(org, rep.user.id, kizuna_domain::Role::Member)
        .await
        .expect("member");
    let mut r = Browser::new(&app, "ja");
    r.sign_in("rep@example.jp", PASSWORD).await;
    assert!(
        r.get(made.location())
            .await
            .body
            .contains("2026-04-01 09:30 JST")
    );
}
