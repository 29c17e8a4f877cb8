//! An integration's life over the API: who may set it up and on which plans,
//! once per org, pending until the other side enables it, paused, disabled,
//! deleted after confirmation.
use common::{link, path, setup};
use kizuna_domain::App;
use kizuna_testkit::{Backend, TestApp, code, fingerprint};
use serde_json::{Value, json};

#[allow(dead_code)]
mod common;

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

#[tokio::test]
async fn dsk_1_dsk_4_desk_setup_is_for_administrators_and_once_per_org() {
    let app = TestApp::spawn(Backend::Sqlite, "dsk_1_dsk_4")
        .await
        .expect("SQLite");
    let admin = app.actor("admin@example.com").await;
    let agent = app.actor("agent@example.com").await;
    let crm = app.org(App::Crm, "standard", &admin).await;
    let desk = app.org(App::Desk, "standard", &admin).await;
    let other_desk = app.org(App::Desk, "standard", &admin).await;
    for org in [crm.id, desk.id] {
        app.store
            .add_member(org, agent.user.id, kizuna_domain::Role::Member)
            .await
            .expect("member");
    }
    let body = json!({"kind": "crm-desk", "from_org": desk.id, "to_org": crm.id});
    // DSK-1: a member of both orgs who administers neither is refused.
    let (status, refused) = app.post("/api/v1/integrations", &agent.key, &body).await;
    assert_eq!(
        (status, code(&refused)),
        (403, "admin_required"),
        "{refused}"
    );
    assert!(
        refused["error"]["fix"]["ja"]
            .as_str()
            .unwrap_or("")
            .contains("admin@example.com")
    );
    let (status, first) = app.post("/api/v1/integrations", &admin.key, &body).await;
    assert_eq!(status, 201, "{first}");
    // DSK-4: the CRM org is already associated with a Desk org.
    let (status, refused) = app
        .post(
            "/api/v1/integrations",
            &admin.key,
            &json!({"kind": "crm-desk", "from_org": other_desk.id, "to_org": crm.id}),
        )
        .await;
    assert_eq!(
        (status, code(&refused)),
        (409, "already_integrated"),
        "{refused}"
    );
    assert_eq!(refused["error"]["rule"], "DSK-4");
    assert!(
        refused["error"]["message"]["ja"]
            .as_str()
            .unwrap_or("")
            .contains("desk org"),
        "{refused}"
    );
}

#[tokio::test]
async fn dsk_3_desk_setup_needs_crm_accounts_and_their_account_name_and_says_which() {
    let app = TestApp::spawn(Backend::Sqlite, "dsk_3")
        .await
        .expect("SQLite");
    let admin = app.actor("admin@example.com").await;
    let crm = app.org(App::Crm, "standard", &admin).await;
    let desk = app.org(App::Desk, "standard", &admin).await;
    let body = json!({"kind": "crm-desk", "from_org": desk.id, "to_org": crm.id});
    let accounts = format!("/api/v1/orgs/{}/modules/Accounts", crm.id);
    let name = format!("{accounts}/fields/Account_Name");
    let refused = |setting: &'static str, code_: &'static str| {
        let (app, key, body) = (&app, &admin.key, &body);
        async move {
            let before = fingerprint(&app.store).await;
            let (status, refused) = app.post("/api/v1/integrations", key, body).await;
            assert_eq!((status, code(&refused)), (409, code_), "{refused}");
            assert_eq!(refused["error"]["rule"], "DSK-3");
            assert_eq!(refused["error"]["details"]["setting"], setting);
            assert_eq!(fingerprint(&app.store).await, before, "nothing was set up");
            refused
        }
    };

    let (status, _) = app
        .patch(&accounts, &admin.key, &json!({"enabled": false}))
        .await;
    assert_eq!(status, 200);
    let body_ = refused("modules.Accounts.enabled", "crm_accounts_disabled").await;
    assert!(
        body_["error"]["fix"]["en"]
            .as_str()
            .is_some_and(|f| f.contains(&accounts)),
        "{body_}"
    );
    app.patch(&accounts, &admin.key, &json!({"enabled": true}))
        .await;

    // Account_Name cannot be marked unused in the first place: it is required.
    let (status, body_) = app
        .patch(&name, &admin.key, &json!({"in_use": false}))
        .await;
    assert_eq!((status, code(&body_)), (400, "field_required"), "{body_}");

    let (status, created) = app.post("/api/v1/integrations", &admin.key, &body).await;
    assert_eq!(status, 201, "{created}");
}
