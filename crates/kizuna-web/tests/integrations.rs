//! An integration's life over the API: who may set it up and on which plans,
//! once per org, pending until the other side enables it, paused, disabled,
//! deleted after confirmation.

use kizuna_domain::App;
use kizuna_store::Org;
use kizuna_testkit::{Actor, Backend, TestApp, code};
use serde_json::{Value, json};

struct Setup {
    app: TestApp,
    crm_admin: Actor,
    events_admin: Actor,
    crm: Org,
    events: Org,
}

/// A CRM org and an Events org with an administrator each; the CRM
/// administrator is also a member (not administrator) of the Events org, as
/// setting up needs access to both.
async fn setup(crm_plan: &str) -> Setup {
    let app = TestApp::spawn(Backend::Sqlite, "integrations")
        .await
        .expect("SQLite");
    let crm_admin = app.actor("crm-admin@example.com").await;
    let events_admin = app.actor("events-admin@example.com").await;
    let crm = app.org(App::Crm, crm_plan, &crm_admin).await;
    let events = app.org(App::Events, "standard", &events_admin).await;
    app.store
        .add_member(events.id, crm_admin.user.id, kizuna_domain::Role::Member)
        .await
        .expect("member");
    Setup {
        app,
        crm_admin,
        events_admin,
        crm,
        events,
    }
}

async fn link(s: &Setup) -> (u16, Value) {
    s.app
        .post(
            "/api/v1/integrations",
            &s.crm_admin.key,
            &json!({"kind": "crm-events", "from_org": s.crm.id, "to_org": s.events.id, "settings": {"target_module": "Leads"}}),
        )
        .await
}

fn path(id: &Value, action: &str) -> String {
    format!("/api/v1/integrations/{id}/{action}")
}

#[tokio::test]
async fn gen_1_evt_1_only_crm_administrators_set_it_up() {
    let s = setup("standard").await;
    let member = s.app.actor("member@example.com").await;
    s.app
        .store
        .add_member(s.crm.id, member.user.id, kizuna_domain::Role::Member)
        .await
        .expect("member");
    s.app
        .store
        .add_member(s.events.id, member.user.id, kizuna_domain::Role::Member)
        .await
        .expect("member");
    let (status, body) = s
        .app
        .post(
            "/api/v1/integrations",
            &member.key,
            &json!({"kind": "crm-events", "from_org": s.crm.id, "to_org": s.events.id}),
        )
        .await;
    assert_eq!((status, code(&body)), (403, "admin_required"), "{body}");
    assert_eq!(body["error"]["rule"], "GEN-1");
    assert!(
        body["error"]["fix"]["en"]
            .as_str()
            .unwrap_or("")
            .contains("crm-admin@example.com"),
        "{body}"
    );
    assert!(
        body["error"]["fix"]["ja"]
            .as_str()
            .unwrap_or("")
            .contains("crm-admin@example.com"),
        "{body}"
    );
}

#[tokio::test]
async fn gen_2_evt_2_a_plan_without_the_integration_refuses_setup_naming_the_plans() {
    let s = setup("free").await;
    let (status, body) = link(&s).await;
    assert_eq!(
        (status, code(&body)),
        (403, "plan_excludes_integration"),
        "{body}"
    );
    assert_eq!(body["error"]["rule"], "EVT-2");
    let message = body["error"]["message"]["en"].as_str().unwrap_or("");
    assert!(message.contains("\"free\""), "{message}");
    let fix = body["error"]["fix"]["en"].as_str().unwrap_or("");
    assert!(fix.contains("standard, professional, enterprise"), "{fix}");
    assert_eq!(
        s.app
            .store
            .integrations_of_org(s.crm.id)
            .await
            .expect("list")
            .len(),
        0
    );

    // A downgrade after setup: the integration cannot be (re)started.
    let s = setup("standard").await;
    let (_, l) = link(&s).await;
    s.app
        .patch(
            &format!("/api/v1/orgs/{}", s.crm.id),
            &s.crm_admin.key,
            &json!({"plan": "free"}),
        )
        .await;
    let (status, body) = s
        .app
        .call(
            "POST",
            &path(&l["id"], "enable"),
            Some(&s.events_admin.key),
            None,
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (403, "plan_excludes_integration"),
        "{body}"
    );
}

#[tokio::test]
async fn dsk_8_crm_free_plan_has_no_desk_integration() {
    let app = TestApp::spawn(Backend::Sqlite, "dsk_8")
        .await
        .expect("SQLite");
    let admin = app.actor("admin@example.com").await;
    let crm = app.org(App::Crm, "free", &admin).await;
    let desk = app.org(App::Desk, "standard", &admin).await;
    let (status, body) = app
        .post(
            "/api/v1/integrations",
            &admin.key,
            &json!({"kind": "crm-desk", "from_org": desk.id, "to_org": crm.id}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (403, "plan_excludes_integration"),
        "{body}"
    );
    assert_eq!(body["error"]["rule"], "DSK-8");
}

#[tokio::test]
async fn gen_3_evt_3_a_second_link_is_refused_naming_the_first() {
    let s = setup("standard").await;
    let (status, first) = link(&s).await;
    assert_eq!(status, 201, "{first}");
    let other_events = s.app.org(App::Events, "standard", &s.crm_admin).await;
    let (status, body) = s
        .app
        .post(
            "/api/v1/integrations",
            &s.crm_admin.key,
            &json!({"kind": "crm-events", "from_org": s.crm.id, "to_org": other_events.id}),
        )
        .await;
    assert_eq!((status, code(&body)), (409, "already_integrated"), "{body}");
    assert_eq!(body["error"]["rule"], "EVT-3");
    let en = body["error"]["message"]["en"].as_str().unwrap_or("");
    assert!(en.contains("events org"), "names the counterpart: {en}");
    assert!(
        en.contains("crm-admin@example.com"),
        "names who set it up: {en}"
    );
    assert!(en.contains("20"), "says when: {en}");
    let fix = body["error"]["fix"]["en"].as_str().unwrap_or("");
    assert!(
        fix.contains(&format!("DELETE /api/v1/integrations/{}", first["id"])),
        "{fix}"
    );
    assert!(fix.contains("trial"), "{fix}");

    // Deleted, the org may be linked again.
    let (status, _) = s
        .app
        .delete(
            &format!("/api/v1/integrations/{}?confirm=true", first["id"]),
            &s.crm_admin.key,
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = s
        .app
        .post(
            "/api/v1/integrations",
            &s.crm_admin.key,
            &json!({"kind": "crm-events", "from_org": s.crm.id, "to_org": other_events.id}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn gen_4_evt_6_pending_until_the_other_side_enables_it() {
    let s = setup("standard").await;
    let (_, l) = link(&s).await;
    assert_eq!(l["state"], "pending");
    assert_eq!(l["waiting_for"]["org"], s.events.id, "{l}");
    assert!(
        l["message"]["en"]
            .as_str()
            .unwrap_or("")
            .contains("not enabled it yet"),
        "{l}"
    );
    assert!(
        l["fix"]["ja"]
            .as_str()
            .unwrap_or("")
            .contains("events-admin@example.com"),
        "{l}"
    );

    // Seen from the other side too.
    let (status, seen) = s
        .app
        .get(
            &format!("/api/v1/orgs/{}/integrations", s.events.id),
            &s.events_admin.key,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(seen["integrations"][0]["waiting_for"]["org"], s.events.id);

    // The side that set it up cannot complete it alone.
    let (status, body) = s
        .app
        .call(
            "POST",
            &path(&l["id"], "enable"),
            Some(&s.crm_admin.key),
            None,
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (403, "integration_pending"),
        "{body}"
    );
    assert_eq!(body["error"]["rule"], "GEN-4");

    let (status, active) = s
        .app
        .call(
            "POST",
            &path(&l["id"], "enable"),
            Some(&s.events_admin.key),
            None,
        )
        .await;
    assert_eq!(status, 200, "{active}");
    assert_eq!(active["state"], "active");
    assert_eq!(active["enabled_by"], s.events_admin.user.id);
    assert!(active.get("waiting_for").is_none());
}

#[tokio::test]
async fn gen_6_pause_and_resume() {
    let s = setup("standard").await;
    let (_, l) = link(&s).await;
    s.app
        .call(
            "POST",
            &path(&l["id"], "enable"),
            Some(&s.events_admin.key),
            None,
        )
        .await;
    let (status, paused) = s
        .app
        .call(
            "POST",
            &path(&l["id"], "pause"),
            Some(&s.crm_admin.key),
            None,
        )
        .await;
    assert_eq!((status, &paused["state"]), (200, &json!("paused")));
    let (status, body) = s
        .app
        .call(
            "POST",
            &path(&l["id"], "pause"),
            Some(&s.crm_admin.key),
            None,
        )
        .await;
    assert_eq!((status, code(&body)), (409, "integration_state"));
    let (status, resumed) = s
        .app
        .call(
            "POST",
            &path(&l["id"], "resume"),
            Some(&s.events_admin.key),
            None,
        )
        .await;
    assert_eq!((status, &resumed["state"]), (200, &json!("active")));
}

#[tokio::test]
async fn gen_7_evt_10_disable_keeps_everything_delete_removes_it_after_confirmation() {
    let s = setup("standard").await;
    let (_, l) = link(&s).await;
    let id = &l["id"];
    s.app
        .call("POST", &path(id, "enable"), Some(&s.events_admin.key), None)
        .await;
    let (status, disabled) = s
        .app
        .call("POST", &path(id, "disable"), Some(&s.crm_admin.key), None)
        .await;
    assert_eq!((status, &disabled["state"]), (200, &json!("disabled")));
    assert_eq!(
        disabled["settings"]["target_module"], "Leads",
        "settings are kept"
    );
    let (status, body) = s
        .app
        .call("POST", &path(id, "resume"), Some(&s.crm_admin.key), None)
        .await;
    assert_eq!((status, code(&body)), (409, "integration_state"));
    assert!(
        body["error"]["fix"]["en"]
            .as_str()
            .unwrap_or("")
            .contains("enable"),
        "{body}"
    );
    let (status, again) = s
        .app
        .call("POST", &path(id, "enable"), Some(&s.crm_admin.key), None)
        .await;
    assert_eq!((status, &again["state"]), (200, &json!("active")));

    // Without confirm: what would be removed, and nothing changes.
    let (status, ask) = s
        .app
        .delete(&format!("/api/v1/integrations/{id}"), &s.crm_admin.key)
        .await;
    assert_eq!(status, 200, "{ask}");
    assert_eq!(ask["confirm_required"], true);
    assert_eq!(ask["would_remove"]["settings"], json!(["target_module"]));
    assert!(
        ask["message"]["ja"].as_str().unwrap_or("").contains("削除"),
        "{ask}"
    );
    let (_, still) = s
        .app
        .get(&format!("/api/v1/integrations/{id}"), &s.crm_admin.key)
        .await;
    assert_eq!(still["state"], "active");

    // Members may not delete.
    let member = s.app.actor("member@example.com").await;
    s.app
        .store
        .add_member(s.crm.id, member.user.id, kizuna_domain::Role::Member)
        .await
        .expect("member");
    let (status, body) = s
        .app
        .delete(
            &format!("/api/v1/integrations/{id}?confirm=true"),
            &member.key,
        )
        .await;
    assert_eq!((status, code(&body)), (403, "admin_required"), "{body}");

    let (status, deleted) = s
        .app
        .delete(
            &format!("/api/v1/integrations/{id}?confirm=true"),
            &s.crm_admin.key,
        )
        .await;
    assert_eq!((status, &deleted["state"]), (200, &json!("deleted")));
    let (_, gone) = s
        .app
        .get(&format!("/api/v1/integrations/{id}"), &s.crm_admin.key)
        .await;
    assert_eq!(gone["settings"], json!({}), "settings removed");
    assert_eq!(gone["mapping"], json!([]), "mapping removed");
    let (status, body) = s
        .app
        .call("POST", &path(id, "enable"), Some(&s.crm_admin.key), None)
        .await;
    assert_eq!((status, code(&body)), (409, "integration_deleted"));
}

#[tokio::test]
async fn setup_refuses_orgs_of_the_wrong_apps_and_unknown_kinds() {
    let s = setup("standard").await;
    let desk = s.app.org(App::Desk, "standard", &s.crm_admin).await;
    let (status, body) = s
        .app
        .post(
            "/api/v1/integrations",
            &s.crm_admin.key,
            &json!({"kind": "crm-events", "from_org": s.crm.id, "to_org": desk.id}),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "integration_apps"), "{body}");
    let (status, body) = s
        .app
        .post(
            "/api/v1/integrations",
            &s.crm_admin.key,
            &json!({"kind": "crm-erp", "from_org": s.crm.id, "to_org": desk.id}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (400, "unknown_integration_kind"),
        "{body}"
    );
}

#[tokio::test]
async fn gen_10_dsk_2_a_deactivated_setup_user_stops_it_until_reactivated_or_taken_over() {
    let s = setup("standard").await;
    let (_, l) = link(&s).await;
    let id = &l["id"];
    assert_eq!(l["acting_user"], s.crm_admin.user.id);
    s.app
        .store
        .set_user_active(&s.crm_admin.user.email, false)
        .await
        .expect("deactivate");
    let (status, body) = s
        .app
        .call("POST", &path(id, "enable"), Some(&s.events_admin.key), None)
        .await;
    assert_eq!(
        (status, code(&body)),
        (403, "integration_user_deactivated"),
        "{body}"
    );
    assert_eq!(body["error"]["rule"], "GEN-10");
    for lang in ["en", "ja"] {
        let fix = body["error"]["fix"][lang].as_str().unwrap_or("");
        assert!(
            fix.contains("crm-admin@example.com") && fix.contains("take-over"),
            "{fix}"
        );
    }
    // Re-activating the user fixes it…
    s.app
        .store
        .set_user_active(&s.crm_admin.user.email, true)
        .await
        .expect("activate");
    let (status, active) = s
        .app
        .call("POST", &path(id, "enable"), Some(&s.events_admin.key), None)
        .await;
    assert_eq!(
        (status, &active["state"]),
        (200, &json!("active")),
        "{active}"
    );
    s.app
        .call("POST", &path(id, "pause"), Some(&s.events_admin.key), None)
        .await;
    // …and so does another administrator taking it over.
    s.app
        .store
        .set_user_active(&s.crm_admin.user.email, false)
        .await
        .expect("deactivate");
    let (status, _) = s
        .app
        .call("POST", &path(id, "resume"), Some(&s.events_admin.key), None)
        .await;
    assert_eq!(status, 403);
    let (status, taken) = s
        .app
        .call(
            "POST",
            &path(id, "take-over"),
            Some(&s.events_admin.key),
            None,
        )
        .await;
    assert_eq!(
        (status, &taken["acting_user"]),
        (200, &json!(s.events_admin.user.id)),
        "{taken}"
    );
    let (status, resumed) = s
        .app
        .call("POST", &path(id, "resume"), Some(&s.events_admin.key), None)
        .await;
    assert_eq!(
        (status, &resumed["state"]),
        (200, &json!("active")),
        "{resumed}"
    );
}

#[tokio::test]
async fn gen_11_evt_10_copy_settings_needs_the_same_plan_and_disabled_integrations() {
    let s = setup("standard").await;
    let admin = &s.crm_admin;
    let base = format!("/api/v1/orgs/{}", s.crm.id);
    // The source's configuration.
    let (status, _) = s
        .app
        .post(
            &format!("{base}/modules/Contacts/fields"),
            &admin.key,
            &json!({"api_name": "Shoe_Size", "label": "Shoe size", "type": "text"}),
        )
        .await;
    assert_eq!(status, 201);
    s.app
        .patch(
            &format!("{base}/modules/Cases"),
            &admin.key,
            &json!({"enabled": false}),
        )
        .await;
    s.app
        .patch(
            &format!("{base}/modules/Contacts/fields/Fax"),
            &admin.key,
            &json!({"in_use": false}),
        )
        .await;
    let (_, l) = link(&s).await;
    let mapping = json!([{"source": "Company", "target": "Account_Name"}]);
    s.app
        .store
        .set_integration_config(
            l["id"].as_i64().expect("id"),
            &json!({"target_module": "Leads"}),
            &mapping,
        )
        .await
        .expect("mapping");

    // A sandbox of the same app, with its own (pending) link to take the mapping.
    let sandbox = s.app.org(App::Crm, "free", admin).await;
    let sandbox_events = s.app.org(App::Events, "standard", admin).await;
    let copy = format!("{base}/copy-settings");
    let body = json!({"to_org": sandbox.id});

    // The integration is pending (not disabled): refused, and nothing copied.
    let before = kizuna_testkit::fingerprint(&s.app.store).await;
    let (status, refused) = s.app.post(&copy, &admin.key, &body).await;
    assert_eq!(
        (status, code(&refused)),
        (409, "copy_settings_integration_active"),
        "{refused}"
    );
    assert_eq!(refused["error"]["rule"], "EVT-10");
    assert!(
        refused["error"]["fix"]["en"]
            .as_str()
            .unwrap_or("")
            .contains("Do not delete"),
        "{refused}"
    );
    assert_eq!(kizuna_testkit::fingerprint(&s.app.store).await, before);

    s.app
        .call("POST", &path(&l["id"], "disable"), Some(&admin.key), None)
        .await;
    // Different plans: refused, naming both.
    let (status, refused) = s.app.post(&copy, &admin.key, &body).await;
    assert_eq!(
        (status, code(&refused)),
        (409, "copy_settings_plan"),
        "{refused}"
    );
    assert_eq!(refused["error"]["rule"], "GEN-11");
    let en = refused["error"]["message"]["en"].as_str().unwrap_or("");
    assert!(
        en.contains("\"standard\"") && en.contains("\"free\""),
        "{en}"
    );

    s.app
        .patch(
            &format!("/api/v1/orgs/{}", sandbox.id),
            &admin.key,
            &json!({"plan": "standard"}),
        )
        .await;
    let (status, sandbox_link) = s
        .app
        .post(
            "/api/v1/integrations",
            &admin.key,
            &json!({"kind": "crm-events", "from_org": sandbox.id, "to_org": sandbox_events.id}),
        )
        .await;
    assert_eq!(status, 201, "{sandbox_link}");
    let (status, copied) = s.app.post(&copy, &admin.key, &body).await;
    assert_eq!(status, 200, "{copied}");
    assert_eq!(copied["fields_added"], json!(["Contacts.Shoe_Size"]));
    assert_eq!(copied["modules_switched"], json!(["Cases"]));
    assert_eq!(copied["fields_marked"], json!(["Contacts.Fax"]));
    assert_eq!(copied["mappings"], json!(["crm-events"]));
    let (_, fields) = s
        .app
        .get(
            &format!("/api/v1/orgs/{}/modules/Contacts/fields", sandbox.id),
            &admin.key,
        )
        .await;
    assert!(
        fields["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .any(|f| f["api_name"] == "Shoe_Size" && f["custom"] == true)
    );
    let (_, target) = s
        .app
        .get(
            &format!("/api/v1/integrations/{}", sandbox_link["id"]),
            &admin.key,
        )
        .await;
    assert_eq!(target["mapping"], mapping, "the mapping came along");

    // Across apps: refused.
    let (status, refused) = s
        .app
        .post(&copy, &admin.key, &json!({"to_org": sandbox_events.id}))
        .await;
    assert_eq!(
        (status, code(&refused)),
        (400, "copy_settings_app"),
        "{refused}"
    );
}

#[tokio::test]
async fn gen_5_evt_13_mapped_fields_hold_the_same_kind_of_data_and_reset_is_always_possible() {
    let s = setup("standard").await;
    let (_, l) = link(&s).await;
    let url = format!("/api/v1/integrations/{}/mapping", l["id"]);
    let (status, m) = s.app.get(&url, &s.crm_admin.key).await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["mapping"], m["defaults"], "it starts with the defaults");
    assert!(
        m["mapping"]
            .as_array()
            .expect("pairs")
            .iter()
            .any(|p| p["source"] == "Company" && p["target"] == "Company")
    );
    assert_eq!(m["source"]["module"], "Attendees");
    assert_eq!(m["target"]["module"], "Leads");

    // Custom fields on both sides.
    let add = |org: i64, module: &str, def: Value| {
        let (app, key) = (
            &s.app,
            if org == s.crm.id {
                &s.crm_admin.key
            } else {
                &s.events_admin.key
            },
        );
        let path = format!("/api/v1/orgs/{org}/modules/{module}/fields");
        async move {
            let (status, body) = app.post(&path, key, &def).await;
            assert_eq!(status, 201, "{body}");
        }
    };
    add(s.events.id, "Attendees", json!({"api_name": "Shirt_Size", "label": "Shirt size", "type": "picklist", "picklist": ["S", "M", "L"]})).await;
    add(
        s.events.id,
        "Attendees",
        json!({"api_name": "Seats", "label": "Seats", "type": "integer"}),
    )
    .await;
    add(
        s.crm.id,
        "Leads",
        json!({"api_name": "Shirt_Note", "label": "Shirt note", "type": "text"}),
    )
    .await;
    add(s.crm.id, "Leads", json!({"api_name": "Shirt_Size", "label": "Shirt size", "type": "picklist", "picklist": ["S", "M", "L"]})).await;
    add(
        s.crm.id,
        "Leads",
        json!({"api_name": "Seats", "label": "Seats", "type": "integer"}),
    )
    .await;

    let put = |pairs: Value| {
        let (app, key, url) = (&s.app, &s.crm_admin.key, &url);
        async move {
            app.call("PUT", url, Some(key), Some(&json!({"mapping": pairs})))
                .await
        }
    };
    // Picklist into text: refused, naming both fields and both types.
    let (status, body) = put(json!([{"source": "Shirt_Size", "target": "Shirt_Note"}])).await;
    assert_eq!(
        (status, code(&body)),
        (400, "mapping_incompatible"),
        "{body}"
    );
    assert_eq!(body["error"]["rule"], "GEN-5");
    for needle in ["Shirt_Size", "picklist", "Shirt_Note", "text"] {
        assert!(
            body["error"]["message"]["en"]
                .as_str()
                .unwrap_or("")
                .contains(needle),
            "{needle}: {body}"
        );
        assert!(
            body["error"]["message"]["ja"]
                .as_str()
                .unwrap_or("")
                .contains(needle),
            "{needle}: {body}"
        );
    }
    // Integer: Events cannot provide it (EVT-13).
    let (status, body) = put(json!([{"source": "Seats", "target": "Seats"}])).await;
    assert_eq!(
        (status, code(&body)),
        (400, "mapping_incompatible"),
        "{body}"
    );
    assert_eq!(body["error"]["rule"], "EVT-13");
    let (status, body) = put(json!([{"source": "Nope", "target": "Last_Name"}])).await;
    assert_eq!(
        (status, code(&body)),
        (400, "mapping_unknown_field"),
        "{body}"
    );
    let (_, unchanged) = s.app.get(&url, &s.crm_admin.key).await;
    assert_eq!(
        unchanged["mapping"], m["defaults"],
        "refusals changed nothing"
    );

    // Picklist into picklist (the Events dropdown): accepted.
    let mine = json!([{"source": "Email", "target": "Email"}, {"source": "Shirt_Size", "target": "Shirt_Size"}]);
    let (status, body) = put(mine.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["mapping"], mine);

    // Members may not change it; administrators may always reset it.
    let member = s.app.actor("member@example.com").await;
    s.app
        .store
        .add_member(s.crm.id, member.user.id, kizuna_domain::Role::Member)
        .await
        .expect("member");
    let (status, body) = s
        .app
        .call(
            "PUT",
            &url,
            Some(&member.key),
            Some(&json!({"mapping": []})),
        )
        .await;
    assert_eq!((status, code(&body)), (403, "admin_required"), "{body}");
    let (status, body) = s
        .app
        .call(
            "POST",
            &format!("{url}/reset"),
            Some(&s.events_admin.key),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["mapping"], m["defaults"]);
}

#[tokio::test]
async fn evt_8_settings_choose_leads_or_contacts_and_the_mapping_follows() {
    let s = setup("standard").await;
    let (_, l) = link(&s).await;
    let url = format!("/api/v1/integrations/{}/settings", l["id"]);
    let (status, body) = s
        .app
        .patch(&url, &s.crm_admin.key, &json!({"target_module": "Deals"}))
        .await;
    assert_eq!((status, code(&body)), (400, "invalid_setting"), "{body}");
    let (status, body) = s
        .app
        .patch(&url, &s.crm_admin.key, &json!({"colour": "red"}))
        .await;
    assert_eq!((status, code(&body)), (400, "unknown_setting"), "{body}");
    let (status, moved) = s
        .app
        .patch(
            &url,
            &s.crm_admin.key,
            &json!({"target_module": "Contacts", "trigger_status": "confirmed"}),
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["settings"]["target_module"], "Contacts");
    assert_eq!(moved["settings"]["trigger_status"], "confirmed");
    // Leads' Company has no place in Contacts: the mapping follows the module.
    let company = moved["mapping"]
        .as_array()
        .expect("pairs")
        .iter()
        .find(|p| p["source"] == "Company")
        .cloned();
    assert_eq!(
        company.expect("Company is mapped")["target"],
        "Account_Name",
        "{moved}"
    );
}

#[tokio::test]
async fn gen_12_doctor_names_each_situation_with_its_rule_and_fix() {
    let s = setup("standard").await;
    let doctor = format!("/api/v1/orgs/{}/doctor", s.crm.id);
    let (status, healthy) = s.app.get(&doctor, &s.crm_admin.key).await;
    assert_eq!((status, &healthy["ok"]), (200, &json!(true)), "{healthy}");

    let (_, l) = link(&s).await;
    let rules = |report: &Value| -> Vec<String> {
        report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter_map(|f| f["rule"].as_str().map(str::to_string))
            .collect()
    };
    let (_, report) = s.app.get(&doctor, &s.crm_admin.key).await;
    assert_eq!(rules(&report), ["GEN-4"], "pending: {report}");
    s.app
        .call(
            "POST",
            &path(&l["id"], "enable"),
            Some(&s.events_admin.key),
            None,
        )
        .await;
    let (_, report) = s.app.get(&doctor, &s.crm_admin.key).await;
    assert_eq!(report["ok"], true, "{report}");

    // A downgrade and a deactivated setup user: both found, each with its fix.
    s.app
        .patch(
            &format!("/api/v1/orgs/{}", s.crm.id),
            &s.crm_admin.key,
            &json!({"plan": "free"}),
        )
        .await;
    s.app
        .store
        .set_user_active(&s.crm_admin.user.email, false)
        .await
        .expect("deactivate");
    let (_, report) = s
        .app
        .get(
            &format!("/api/v1/orgs/{}/doctor", s.events.id),
            &s.events_admin.key,
        )
        .await;
    assert_eq!(rules(&report), ["EVT-2", "GEN-10"], "{report}");
    for f in report["findings"].as_array().expect("findings") {
        for lang in ["en", "ja"] {
            assert!(!f["message"][lang].as_str().unwrap_or("").is_empty(), "{f}");
            assert!(!f["fix"][lang].as_str().unwrap_or("").is_empty(), "{f}");
        }
        assert_eq!(f["integration"], l["id"]);
    }
}

async fn gen_2_a_downgrade_stops_a_running_integration_and_an_upgrade_releases_it(
    backend: Backend,
) {
    let Some(app) = TestApp::spawn(backend, "gen_2_downgrade").await else {
        return;
    };
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
    app.call("POST", &path(&l["id"], "enable"), Some(&admin.key), None)
        .await;
    let read = format!("/api/v1/integrations/{}", l["id"]);
    let (_, running) = app.get(&read, &admin.key).await;
    assert_eq!(running["stopped"], Value::Null);

    let (status, _) = app
        .patch(
            &format!("/api/v1/orgs/{}", crm.id),
            &admin.key,
            &json!({"plan": "free"}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, stopped) = app.get(&read, &admin.key).await;
    assert_eq!(
        stopped["stopped"]["code"], "plan_excludes_integration",
        "{stopped}"
    );
    assert_eq!(stopped["stopped"]["rule"], "EVT-2");
    assert!(
        stopped["stopped"]["fix"]["en"]
            .as_str()
            .unwrap_or("")
            .contains("standard"),
        "{stopped}"
    );

    app.patch(
        &format!("/api/v1/orgs/{}", crm.id),
        &admin.key,
        &json!({"plan": "enterprise"}),
    )
    .await;
    let (_, released) = app.get(&read, &admin.key).await;
    assert_eq!(released["stopped"], Value::Null, "{released}");
}

#[tokio::test]
async fn gen_2_downgrade_stops_and_upgrade_releases_on_sqlite() {
    gen_2_a_downgrade_stops_a_running_integration_and_an_upgrade_releases_it(Backend::Sqlite).await;
}

#[tokio::test]
async fn gen_2_downgrade_stops_and_upgrade_releases_on_postgres() {
    gen_2_a_downgrade_stops_a_running_integration_and_an_upgrade_releases_it(Backend::Postgres)
        .await;
}
