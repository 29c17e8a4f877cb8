//! CRM ⇄ Desk through the sync engine, over real HTTP, one test per rule:
//! contacts, accounts and products both ways with custom fields, conflicts
//! and their policies, deletes, pause and resume.

// Shared by the sync test binaries; each uses a part of it.
#[allow(dead_code)]
mod sync_world;

use kizuna_domain::App;
use kizuna_testkit::Backend;
use serde_json::{Value, json};
use sync_world::*;

async fn desk_world(test: &str, settings: Value) -> World {
    World::linked(Backend::Sqlite, test, App::Desk, settings)
        .await
        .expect("SQLite")
}

async fn held(w: &World) -> Vec<Value> {
    let url = format!("/api/v1/integrations/{}/conflicts", w.id);
    let (status, body) = w.app.get(&url, &w.admin.key).await;
    assert_eq!(status, 200, "{body}");
    body["conflicts"].as_array().cloned().unwrap_or_default()
}

fn total(runs: &[Value], key: &str) -> i64 {
    runs.iter().map(|r| r[key].as_i64().unwrap_or(0)).sum()
}

#[tokio::test]
async fn dsk_13_contacts_and_accounts_flow_both_ways_with_custom_fields_and_are_not_echoed() {
    let w = desk_world("dsk_13_both_ways", json!({})).await;
    // A custom field on each side, mapped onto each other.
    for org in [&w.crm, w.desk()] {
        w.custom_field(
            org,
            "Contacts",
            json!({"api_name": "Support_Tier", "label": "Support tier", "type": "text"}),
        )
        .await;
    }
    let (status, mapping) = w
        .app
        .get(
            &format!("/api/v1/integrations/{}/mapping", w.id),
            &w.admin.key,
        )
        .await;
    assert_eq!(status, 200, "{mapping}");
    let mut pairs = mapping["mapping"].as_array().cloned().expect("pairs");
    assert!(
        pairs.iter().all(|p| p["module"].is_string()),
        "each pair names its module: {mapping}"
    );
    // A pair that does not say which module it maps is refused, naming them.
    let (status, refused) = w
        .app
        .call(
            "PUT",
            &format!("/api/v1/integrations/{}/mapping", w.id),
            Some(&w.admin.key),
            Some(&json!({"mapping": [{"source": "Phone", "target": "Phone"}]})),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (400, Some("mapping_unknown_module")),
        "{refused}"
    );
    assert_eq!(
        refused["error"]["details"]["modules"],
        json!(["Accounts", "Contacts", "Products"])
    );
    pairs.push(json!({"module": "Contacts", "source": "Support_Tier", "target": "Support_Tier"}));
    let (status, body) = w
        .app
        .call(
            "PUT",
            &format!("/api/v1/integrations/{}/mapping", w.id),
            Some(&w.admin.key),
            Some(&json!({"mapping": pairs})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // CRM → Desk: an account, and a contact of it with the custom field.
    let acme = w
        .create(
            &w.crm,
            "Accounts",
            json!({"Account_Name": "Acme 株式会社", "Phone": "03-1111-2222"}),
        )
        .await;
    let sato = w
        .create(
            &w.crm,
            "Contacts",
            json!({"Last_Name": "佐藤", "First_Name": "花子", "Email": "hanako@acme.example", "Account": acme, "Support_Tier": "Gold"}),
        )
        .await;
    // Desk → CRM: a contact made by a support agent.
    let desk_account = w
        .create(w.desk(), "Accounts", json!({"Account_Name": "Beta Ltd"}))
        .await;
    let ito = w
        .create(
            w.desk(),
            "Contacts",
            json!({"Last_Name": "Ito", "Email": "ito@beta.example", "Account": desk_account, "Support_Tier": "Silver"}),
        )
        .await;

    let runs = w.sync().await;
    assert!(runs.iter().all(|r| r["state"] == "finished"), "{runs:?}");
    assert_eq!(total(&runs, "added"), 4, "{runs:?}");

    let desk_contacts = w.list(w.desk(), "Contacts").await;
    let desk_accounts = w.list(w.desk(), "Accounts").await;
    let hanako = field(&desk_contacts, "Email", "hanako@acme.example").expect("in Desk");
    assert_eq!(
        hanako["fields"]["Support_Tier"], "Gold",
        "custom fields flow"
    );
    let desk_acme = field(&desk_accounts, "Account_Name", "Acme 株式会社").expect("in Desk");
    assert_eq!(
        hanako["fields"]["Account"], desk_acme["id"],
        "the contact's account is its Desk twin, not the CRM id"
    );
    let crm_contacts = w.list(&w.crm, "Contacts").await;
    let crm_ito = field(&crm_contacts, "Email", "ito@beta.example").expect("in the CRM");
    let crm_beta = field(
        &w.list(&w.crm, "Accounts").await,
        "Account_Name",
        "Beta Ltd",
    )
    .expect("Beta in the CRM")["id"]
        .clone();
    assert_eq!(crm_ito["fields"]["Account"], crm_beta);
    assert_eq!(crm_ito["fields"]["Support_Tier"], "Silver");

    // No echo: a second sync writes nothing on either side.
    let again = w.sync().await;
    assert_eq!(writes(&again), 0, "{again:?}");
    assert_eq!(w.list(w.desk(), "Contacts").await.len(), 2);
    assert_eq!(w.list(&w.crm, "Contacts").await.len(), 2);

    // Different fields changed on each side merge.
    let hanako_desk = hanako["id"].as_i64().expect("id");
    w.edit(&w.crm, "Contacts", sato, json!({"Phone": "090-0000-0001"}))
        .await;
    w.edit(
        w.desk(),
        "Contacts",
        hanako_desk,
        json!({"First_Name": "Hana"}),
    )
    .await;
    let runs = w.sync().await;
    assert!(total(&runs, "updated") >= 1, "{runs:?}");
    let crm_side = w.one(&w.crm, "Contacts", sato).await;
    let desk_side = w.one(w.desk(), "Contacts", hanako_desk).await;
    for side in [&crm_side, &desk_side] {
        assert_eq!(side["fields"]["Phone"], "090-0000-0001", "{side}");
        assert_eq!(side["fields"]["First_Name"], "Hana", "{side}");
    }
    assert_eq!(writes(&w.sync().await), 0, "converged, nothing echoed");
    let _ = ito;
}

#[tokio::test]
async fn dsk_13_the_same_field_changed_on_both_sides_follows_the_policy_and_the_history_has_both_values()
 {
    for (policy, expect_crm, expect_desk) in [
        ("crm_wins", "crm@x.example", "crm@x.example"),
        ("desk_wins", "desk@x.example", "desk@x.example"),
        ("hold", "crm@x.example", "desk@x.example"),
    ] {
        let w = desk_world(
            &format!("dsk_13_policy_{policy}"),
            json!({"conflict_policy": policy}),
        )
        .await;
        let c = w
            .create(
                &w.crm,
                "Contacts",
                json!({"Last_Name": "Kato", "Email": "kato@x.example"}),
            )
            .await;
        w.sync().await;
        let desk_id = w.list(w.desk(), "Contacts").await[0]["id"]
            .as_i64()
            .expect("twin");
        w.edit(&w.crm, "Contacts", c, json!({"Email": "crm@x.example"}))
            .await;
        w.edit(
            w.desk(),
            "Contacts",
            desk_id,
            json!({"Email": "desk@x.example"}),
        )
        .await;
        w.sync().await;
        let crm_side = w.one(&w.crm, "Contacts", c).await;
        let desk_side = w.one(w.desk(), "Contacts", desk_id).await;
        assert_eq!(crm_side["fields"]["Email"], expect_crm, "{policy}");
        assert_eq!(desk_side["fields"]["Email"], expect_desk, "{policy}");
        // The conflict is in the history with both values and the rule.
        let conflicts: Vec<Value> = w
            .items("contacts")
            .await
            .into_iter()
            .filter(|i| i["outcome"] == "conflict")
            .collect();
        assert_eq!(conflicts.len(), 1, "{policy}: {conflicts:?}");
        let item = &conflicts[0];
        assert_eq!(item["rule"], "DSK-13");
        assert_eq!(item["details"]["cause"]["crm"], "crm@x.example");
        assert_eq!(item["details"]["cause"]["other"], "desk@x.example");
        assert_eq!(item["details"]["cause"]["field"], "Email");
    }
}

#[tokio::test]
async fn dsk_13_an_initial_sync_of_two_filled_orgs_ties_records_by_email_and_name_instead_of_duplicating()
 {
    let w = desk_world("dsk_13_initial_match", json!({})).await;
    w.create(
        &w.crm,
        "Accounts",
        json!({"Account_Name": "Gamma KK", "Phone": "03-5555-0000"}),
    )
    .await;
    w.create(
        w.desk(),
        "Accounts",
        json!({"Account_Name": " gamma kk ", "Website": "https://gamma.example"}),
    )
    .await;
    w.create(
        &w.crm,
        "Contacts",
        json!({"Last_Name": "Mori", "Email": "Mori@Gamma.example"}),
    )
    .await;
    w.create(
        w.desk(),
        "Contacts",
        json!({"Last_Name": "Mori", "Email": "mori@gamma.example", "Phone": "080-1"}),
    )
    .await;
    let runs = w.sync().await;
    assert_eq!(total(&runs, "added"), 0, "nothing created: {runs:?}");
    assert_eq!(total(&runs, "linked"), 2, "{runs:?}");
    assert_eq!(w.list(&w.crm, "Accounts").await.len(), 1);
    assert_eq!(w.list(w.desk(), "Accounts").await.len(), 1);
    assert_eq!(w.list(&w.crm, "Contacts").await.len(), 1);
    // Each side's blanks are filled from the other.
    let crm_gamma = &w.list(&w.crm, "Accounts").await[0];
    assert_eq!(crm_gamma["fields"]["Website"], "https://gamma.example");
    let desk_gamma = &w.list(w.desk(), "Accounts").await[0];
    assert_eq!(desk_gamma["fields"]["Phone"], "03-5555-0000");
    assert_eq!(
        w.list(&w.crm, "Contacts").await[0]["fields"]["Phone"],
        "080-1"
    );
    // The history names each match.
    let items = w.items("contacts").await;
    assert!(
        items
            .iter()
            .any(|i| i["outcome"] == "linked" && i["code"] == "matched_existing_record"),
        "{items:?}"
    );
    assert_eq!(writes(&w.sync().await), 0);
}

#[tokio::test]
async fn dsk_14_products_sync_both_ways() {
    let w = desk_world("dsk_14_products", json!({})).await;
    let crm_product = w
        .create(
            &w.crm,
            "Products",
            json!({"Product_Name": "Router X1", "Product_Code": "RX1", "Unit_Price": yen(19800)}),
        )
        .await;
    w.create(w.desk(), "Products", json!({"Product_Name": "Switch S2"}))
        .await;
    let runs = w.sync().await;
    assert_eq!(run(&runs, "products")["added"], 1, "{runs:?}");
    assert_eq!(total(&runs, "added"), 2, "{runs:?}");
    let desk_products = w.list(w.desk(), "Products").await;
    let rx1 = field(&desk_products, "Product_Code", "RX1").expect("in Desk");
    assert_eq!(rx1["fields"]["Unit_Price"], yen(19800));
    assert!(
        field(
            &w.list(&w.crm, "Products").await,
            "Product_Name",
            "Switch S2"
        )
        .is_some()
    );
    w.edit(
        w.desk(),
        "Products",
        rx1["id"].as_i64().expect("id"),
        json!({"Product_Name": "Router X1 Pro"}),
    )
    .await;
    w.sync().await;
    assert_eq!(
        w.one(&w.crm, "Products", crm_product).await["fields"]["Product_Name"],
        "Router X1 Pro"
    );
}

#[tokio::test]
async fn dsk_12_a_crm_delete_deletes_the_desk_twin_unless_desk_says_unlink_and_a_desk_delete_unlinks()
 {
    let w = desk_world("dsk_12_deletes", json!({})).await;
    let a = w
        .create(
            &w.crm,
            "Contacts",
            json!({"Last_Name": "A", "Email": "a@x.example"}),
        )
        .await;
    let b = w
        .create(
            &w.crm,
            "Contacts",
            json!({"Last_Name": "B", "Email": "b@x.example"}),
        )
        .await;
    let c = w
        .create(
            &w.crm,
            "Contacts",
            json!({"Last_Name": "C", "Email": "c@x.example"}),
        )
        .await;
    w.sync().await;
    let twin = |records: &[Value], email: &str| {
        field(records, "Email", email).expect("twin")["id"]
            .as_i64()
            .expect("id")
    };
    let desk = w.list(w.desk(), "Contacts").await;
    let (da, db, dc) = (
        twin(&desk, "a@x.example"),
        twin(&desk, "b@x.example"),
        twin(&desk, "c@x.example"),
    );

    // Default: deleting in the CRM deletes the Desk twin (to its recycle bin).
    let (status, _) = w
        .app
        .delete(
            &format!("{}/{a}", World::records(&w.crm, "Contacts")),
            &w.admin.key,
        )
        .await;
    assert_eq!(status, 200);
    let runs = w.sync().await;
    assert_eq!(total(&runs, "deleted"), 1, "{runs:?}");
    let (status, _) = w
        .app
        .get(
            &format!("{}/{da}", World::records(w.desk(), "Contacts")),
            &w.admin.key,
        )
        .await;
    assert_eq!(status, 404, "the Desk twin is in the recycle bin");

    // Desk's setting: keep the Desk record, only unlink it.
    w.settings(json!({"on_crm_delete": "unlink"})).await;
    w.app
        .delete(
            &format!("{}/{b}", World::records(&w.crm, "Contacts")),
            &w.admin.key,
        )
        .await;
    w.sync().await;
    assert_eq!(
        w.one(w.desk(), "Contacts", db).await["fields"]["Email"],
        "b@x.example"
    );
    let items = w.items("contacts").await;
    assert!(
        items
            .iter()
            .any(|i| i["code"] == "delete_unlinked" && i["rule"] == "DSK-12"),
        "the history says the twin was kept: {items:?}"
    );
    // Unlinked: a later edit in Desk does not bring the CRM record back.
    w.edit(w.desk(), "Contacts", db, json!({"Phone": "03-9999"}))
        .await;
    let runs = w.sync().await;
    assert_eq!(
        total(&runs, "added"),
        1,
        "an unlinked Desk contact is new to the CRM: {runs:?}"
    );

    // A Desk delete only unlinks the CRM contact by default.
    w.app
        .delete(
            &format!("{}/{dc}", World::records(w.desk(), "Contacts")),
            &w.admin.key,
        )
        .await;
    w.sync().await;
    assert_eq!(
        w.one(&w.crm, "Contacts", c).await["fields"]["Email"],
        "c@x.example"
    );
}

#[tokio::test]
async fn dsk_11_gen_6_a_paused_desk_integration_syncs_nothing_and_loses_nothing_on_resume() {
    let w = desk_world("dsk_11_pause", json!({})).await;
    w.call("pause", None).await;
    let id = w
        .create(
            &w.crm,
            "Contacts",
            json!({"Last_Name": "Paused", "Email": "p@x.example"}),
        )
        .await;
    w.create(
        w.desk(),
        "Accounts",
        json!({"Account_Name": "While paused"}),
    )
    .await;
    let (status, refused) = w
        .app
        .call(
            "POST",
            &format!("/api/v1/integrations/{}/sync", w.id),
            Some(&w.admin.key),
            None,
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["rule"], "GEN-6");
    assert!(w.list(w.desk(), "Contacts").await.is_empty());
    w.edit(&w.crm, "Contacts", id, json!({"Phone": "03-1234"}))
        .await;
    w.call("resume", None).await;
    let runs = w.sync().await;
    assert_eq!(total(&runs, "added"), 2, "{runs:?}");
    let desk = w.list(w.desk(), "Contacts").await;
    assert_eq!(
        desk[0]["fields"]["Phone"], "03-1234",
        "the change made while paused arrived"
    );
    assert_eq!(w.list(&w.crm, "Accounts").await.len(), 1);
}

#[tokio::test]
async fn dsk_13_a_held_conflict_waits_for_a_person_who_decides_it_through_the_api() {
    let w = desk_world("dsk_13_decide", json!({"conflict_policy": "hold"})).await;
    let c = w
        .create(
            &w.crm,
            "Contacts",
            json!({"Last_Name": "Abe", "Phone": "03-1000"}),
        )
        .await;
    w.sync().await;
    let d = w.list(w.desk(), "Contacts").await[0]["id"]
        .as_i64()
        .expect("twin");
    w.edit(&w.crm, "Contacts", c, json!({"Phone": "03-2000"}))
        .await;
    w.edit(w.desk(), "Contacts", d, json!({"Phone": "03-3000"}))
        .await;
    w.sync().await;
    let waiting = held(&w).await;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(
        (
            &waiting[0]["field"],
            &waiting[0]["crm_value"],
            &waiting[0]["other_value"]
        ),
        (&json!("Phone"), &json!("03-2000"), &json!("03-3000"))
    );
    // Still held after another sync, and not reported twice.
    w.edit(&w.crm, "Contacts", c, json!({"Last_Name": "Abe Jr"}))
        .await;
    w.sync().await;
    assert_eq!(held(&w).await.len(), 1);
    assert_eq!(
        w.one(w.desk(), "Contacts", d).await["fields"]["Last_Name"],
        "Abe Jr"
    );
    let conflicts = w.items("contacts").await;
    assert_eq!(
        conflicts
            .iter()
            .filter(|i| i["outcome"] == "conflict")
            .count(),
        1,
        "{conflicts:?}"
    );

    // A bad decision is refused and changes nothing.
    let decide = format!(
        "/api/v1/integrations/{}/conflicts/{}/decide",
        w.id, waiting[0]["id"]
    );
    let (status, refused) = w
        .app
        .post(&decide, &w.admin.key, &json!({"take": "both"}))
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (400, Some("invalid_take"))
    );
    assert_eq!(held(&w).await.len(), 1);

    let answer = w
        .call(
            &format!("conflicts/{}/decide", waiting[0]["id"]),
            Some(&json!({"take": "desk"})),
        )
        .await;
    assert!(
        total(answer["runs"].as_array().expect("runs"), "updated") >= 1,
        "{answer}"
    );
    assert_eq!(
        w.one(&w.crm, "Contacts", c).await["fields"]["Phone"],
        "03-3000"
    );
    assert_eq!(
        w.one(w.desk(), "Contacts", d).await["fields"]["Phone"],
        "03-3000"
    );
    assert!(held(&w).await.is_empty());
    assert_eq!(writes(&w.sync().await), 0);
    let (status, _) = w
        .app
        .post(&decide, &w.admin.key, &json!({"take": "crm"}))
        .await;
    assert_eq!(status, 404, "a decided conflict is gone");
}

#[tokio::test]
async fn dsk_2_a_desk_integration_whose_setup_user_is_deactivated_does_not_sync_and_says_who() {
    let w = desk_world("dsk_2", json!({})).await;
    let other = w.app.actor("other-admin@example.com").await;
    for org in [w.crm.id, w.desk().id] {
        w.app
            .store
            .add_member(org, other.user.id, kizuna_domain::Role::Administrator)
            .await
            .expect("administrator");
    }
    w.create(&w.crm, "Contacts", json!({"Last_Name": "Waiting"}))
        .await;
    w.app
        .store
        .set_user_active(&w.admin.user.email, false)
        .await
        .expect("deactivate");
    let sync = format!("/api/v1/integrations/{}/sync", w.id);
    let (status, refused) = w.app.call("POST", &sync, Some(&other.key), None).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("integration_user_deactivated")),
        "{refused}"
    );
    for lang in ["en", "ja"] {
        let fix = refused["error"]["fix"][lang].as_str().unwrap_or("");
        assert!(
            fix.contains("admin@example.com") && fix.contains("take-over"),
            "{fix}"
        );
    }
    let desk_contacts = World::records(w.desk(), "Contacts");
    let (_, listed) = w.app.get(&desk_contacts, &other.key).await;
    assert_eq!(listed["records"], json!([]), "nothing ran");
    w.app
        .store
        .set_user_active(&w.admin.user.email, true)
        .await
        .expect("activate");
    let (status, body) = w.app.call("POST", &sync, Some(&other.key), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(w.list(w.desk(), "Contacts").await.len(), 1);
}
