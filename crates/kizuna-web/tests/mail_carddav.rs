//! The mail connector's contacts over CardDAV, against a real Radicale that
//! the tests start on 127.0.0.1 (MAIL-1, 2, 3, 9, 12; the hostile servers
//! are in `mail_guard.rs`, uploaded files in `mail_files.rs`): a CRM user's own
//! connection, its password sealed and never shown, contacts synced by the
//! rules, changes and deletes followed, and the server's quirks (sync tokens
//! it no longer accepts, duplicate UIDs, an address book that comes back
//! empty) handled without a silent skip.

// Shared by the mail test binaries; each uses a part of it.
#[allow(dead_code)]
mod mail_world;

use kizuna_domain::Role;
use kizuna_testkit::code;
use kizuna_testkit::radicale::{PASSWORD, USER, vcard};
use mail_world::*;
use serde_json::{Value, json};

#[tokio::test]
async fn mail_1_carddav_contacts_flow_in_follow_changes_and_deletes_and_a_second_sync_writes_nothing()
 {
    let Some(w) = carddav_world("mail_1_carddav").await else {
        return;
    };
    let b = &w.book;
    w.dav
        .put_card(
            b,
            "taro.vcf",
            &vcard(
                "u-taro",
                "Yamada",
                "Taro",
                Some("taro@example.jp"),
                &[
                    "TITLE:Sales",
                    "ORG:Kizuna KK;East",
                    "TEL;TYPE=CELL:090-1111-2222",
                    "NOTE:met at the fair",
                ],
            ),
        )
        .await;
    w.dav
        .put_card(
            b,
            "hanako.vcf",
            &vcard(
                "u-hanako",
                "Suzuki",
                "Hanako",
                Some("hanako@example.jp"),
                &[],
            ),
        )
        .await;
    let id = w.connect(json!({})).await;
    let first = w.sync(id).await;
    assert_eq!(counts(&first), [2, 0, 0, 0, 0, 0], "{first}");
    let contacts = w.contacts().await;
    let taro = contacts
        .iter()
        .find(|c| field(c, "Email") == "taro@example.jp")
        .expect("Taro in the CRM");
    // MAIL-2: the mail client's fields in their CRM fields.
    assert_eq!(field(taro, "Last_Name"), "Yamada");
    assert_eq!(field(taro, "First_Name"), "Taro");
    assert_eq!(field(taro, "Title"), "Sales");
    assert_eq!(field(taro, "Account_Name"), "Kizuna KK");
    assert_eq!(field(taro, "Department"), "East");
    assert_eq!(field(taro, "Mobile"), "090-1111-2222");
    assert_eq!(field(taro, "Description"), "met at the fair");

    // Nothing changed: nothing is fetched or written.
    let again = w.sync(id).await;
    assert_eq!(counts(&again), [0; 6], "{again}");

    // A change on the server flows; a delete takes back what the card added.
    w.dav
        .put_card(
            b,
            "taro.vcf",
            &vcard(
                "u-taro",
                "Yamada",
                "Taro",
                Some("taro@example.jp"),
                &["TITLE:Director"],
            ),
        )
        .await;
    w.dav.delete(&format!("{b}hanako.vcf")).await;
    let changed = w.sync(id).await;
    assert_eq!(counts(&changed), [0, 1, 0, 1, 0, 0], "{changed}");
    let contacts = w.contacts().await;
    assert_eq!(contacts.len(), 1, "Hanako went to the recycle bin");
    assert_eq!(field(&contacts[0], "Title"), "Director");
    let (_, bin) = w
        .app
        .get(&format!("/api/v1/orgs/{}/recycle-bin", w.crm), &w.admin.key)
        .await;
    assert!(bin.to_string().contains("hanako@example.jp"), "{bin}");
}

#[tokio::test]
async fn mail_1_a_connection_is_its_owners_with_the_password_sealed_and_never_shown() {
    let Some(w) = carddav_world("mail_1_connection_owner").await else {
        return;
    };
    let id = w.connect(json!({})).await;
    let (status, body) = w
        .app
        .get(&format!("/api/v1/integrations/{id}"), &w.rep.key)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["state"], "active", "no other org enables it");
    assert_eq!(body["settings"]["carddav"]["password_set"], true);
    assert!(!body.to_string().contains(PASSWORD), "{body}");
    assert!(!body.to_string().contains("sealed:"), "{body}");
    // Not in the database either.
    let stored = w
        .app
        .store
        .integration(id)
        .await
        .expect("read")
        .expect("there");
    assert!(!stored.settings.0.to_string().contains(PASSWORD));
    // Another member does not see it; an administrator does.
    let other = w.app.actor("other@example.jp").await;
    w.app
        .store
        .add_member(w.crm, other.user.id, Role::Member)
        .await
        .expect("member");
    let (status, _) = w
        .app
        .get(&format!("/api/v1/integrations/{id}"), &other.key)
        .await;
    assert_eq!(status, 404);
    let (status, _) = w
        .app
        .get(&format!("/api/v1/integrations/{id}"), &w.admin.key)
        .await;
    assert_eq!(status, 200);
    // One per user per org: the second names the first.
    let (status, body) = w
        .app
        .post(
            "/api/v1/integrations",
            &w.rep.key,
            &json!({"kind": "crm-mail", "from_org": w.crm, "settings": {}}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(code(&body), "mail_already_connected");
    assert_eq!(body["error"]["details"]["existing"], id);
    // A settings change without the password keeps it: the next sync logs in.
    let (status, body) = w
        .app
        .patch(
            &format!("/api/v1/integrations/{id}/settings"),
            &w.rep.key,
            &json!({"carddav": {"url": w.dav.url(), "username": USER, "address_book": w.book}, "auto_sync_minutes": 15}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["settings"]["carddav"]["password_set"], true);
    assert_eq!(body["settings"]["auto_sync_minutes"], 15);
    w.dav
        .put_card(&w.book, "a.vcf", &vcard("a", "Ando", "Aki", None, &[]))
        .await;
    assert_eq!(counts(&w.sync(id).await)[0], 1);
}

#[tokio::test]
async fn mail_2_a_value_longer_than_its_crm_field_fails_the_contact_until_truncation_is_asked_for()
{
    let Some(w) = carddav_world("mail_2_lengths").await else {
        return;
    };
    let long_first = "あ".repeat(41);
    w.dav
        .put_card(
            &w.book,
            "long.vcf",
            &vcard("long", "Kato", &long_first, Some("kato@example.jp"), &[]),
        )
        .await;
    w.dav
        .put_card(
            &w.book,
            "ok.vcf",
            &vcard("ok", "Mori", "Ken", Some("ken@example.jp"), &[]),
        )
        .await;
    let id = w.connect(json!({})).await;
    let run = w.sync(id).await;
    assert_eq!(
        counts(&run),
        [1, 0, 0, 0, 0, 1],
        "one bad card does not stop the rest: {run}"
    );
    let items = w.items(id, &run).await;
    let failed = items
        .iter()
        .find(|i| i["outcome"] == "failed")
        .expect("the failure");
    assert_eq!(failed["rule"], "MAIL-2");
    assert_eq!(failed["code"], "value_too_long");
    assert_eq!(failed["details"]["cause"]["field"], "First_Name");
    assert_eq!(failed["details"]["cause"]["limit"], 40);
    assert_eq!(failed["details"]["cause"]["length"], 41);
    assert_eq!(
        failed["details"]["item"]["href"],
        format!("{}long.vcf", w.book)
    );
    assert!(failed["message"]["ja"].as_str().expect("ja").contains("41"));
    assert_eq!(w.contacts().await.len(), 1, "nothing of it was written");

    // Asked for, the value is cut and the history says so; the card is read
    // again although it did not change on the server.
    let (status, body) = w
        .app
        .patch(
            &format!("/api/v1/integrations/{id}/settings"),
            &w.rep.key,
            &json!({"truncate": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let run = w.sync(id).await;
    assert_eq!(counts(&run), [1, 0, 0, 0, 0, 0], "{run}");
    let notice = w
        .items(id, &run)
        .await
        .into_iter()
        .find(|i| i["code"] == "value_truncated")
        .expect("the truncation is in the history");
    assert_eq!(notice["rule"], "MAIL-2");
    let kato = w
        .contacts()
        .await
        .into_iter()
        .find(|c| field(c, "Last_Name") == "Kato")
        .expect("Kato");
    assert_eq!(field(&kato, "First_Name").chars().count(), 40);
}

#[tokio::test]
async fn mail_3_contacts_are_deduplicated_by_email_else_by_last_and_first_name() {
    let Some(w) = carddav_world("mail_3_dedup").await else {
        return;
    };
    let contacts = format!("/api/v1/orgs/{}/modules/Contacts/records", w.crm);
    let mut existing = Vec::new();
    for fields in [
        json!({"Last_Name": "Yamada", "First_Name": "Taro", "Email": "Taro@Example.jp"}),
        json!({"Last_Name": "Sato", "First_Name": "Jiro"}),
    ] {
        let (status, body) = w
            .app
            .post(&contacts, &w.admin.key, &json!({"fields": fields}))
            .await;
        assert_eq!(status, 201, "{body}");
        existing.push(body["id"].as_i64().expect("id"));
    }
    // The same address in another case, and a card without an address
    // whose names match.
    w.dav
        .put_card(
            &w.book,
            "1.vcf",
            &vcard(
                "1",
                "Yamada",
                "T.",
                Some(" taro@example.JP "),
                &["TITLE:Sales"],
            ),
        )
        .await;
    w.dav
        .put_card(
            &w.book,
            "2.vcf",
            &vcard("2", "sato", "JIRO", None, &["TITLE:Buyer"]),
        )
        .await;
    w.dav
        .put_card(&w.book, "3.vcf", &vcard("3", "Sato", "Hanako", None, &[]))
        .await;
    let id = w.connect(json!({})).await;
    let run = w.sync(id).await;
    assert_eq!(
        counts(&run),
        [1, 0, 2, 0, 0, 0],
        "two matched, one new: {run}"
    );
    let all = w.contacts().await;
    assert_eq!(all.len(), 3, "no duplicate");
    let linked: Vec<Value> = w
        .items(id, &run)
        .await
        .into_iter()
        .filter(|i| i["outcome"] == "linked")
        .collect();
    assert!(linked.iter().all(|i| i["rule"] == "MAIL-3"));
    let targets: Vec<i64> = linked
        .iter()
        .filter_map(|i| i["target_id"].as_i64())
        .collect();
    assert_eq!(targets.len(), 2);
    assert!(existing.iter().all(|e| targets.contains(e)), "{targets:?}");
    let jiro = all.iter().find(|c| c["id"] == existing[1]).expect("Jiro");
    assert_eq!(
        field(jiro, "Title"),
        "Buyer",
        "the matched contact is kept current"
    );
    // Re-running creates nothing twice.
    assert_eq!(counts(&w.sync(id).await), [0; 6]);
}

#[tokio::test]
async fn mail_12_only_items_of_the_chosen_category_sync_and_the_others_are_in_the_history() {
    let Some(w) = carddav_world("mail_12_category").await else {
        return;
    };
    w.dav
        .put_card(
            &w.book,
            "in.vcf",
            &vcard("in", "Ito", "Yui", None, &["CATEGORIES:Family,crm"]),
        )
        .await;
    w.dav
        .put_card(
            &w.book,
            "out.vcf",
            &vcard("out", "Ueda", "Rin", None, &["CATEGORIES:Family"]),
        )
        .await;
    let id = w.connect(json!({"category": "CRM"})).await;
    let run = w.sync(id).await;
    assert_eq!(counts(&run), [1, 0, 0, 0, 1, 0], "{run}");
    let skipped = w
        .items(id, &run)
        .await
        .into_iter()
        .find(|i| i["outcome"] == "skipped")
        .expect("the other card");
    assert_eq!(skipped["rule"], "MAIL-12");
    assert_eq!(skipped["code"], "not_in_category");
    assert_eq!(
        skipped["details"]["cause"]["item_categories"],
        json!(["Family"])
    );
    let all = w.contacts().await;
    assert_eq!(all.len(), 1);
    assert_eq!(field(&all[0], "Last_Name"), "Ito");
}

#[tokio::test]
async fn mail_1_duplicate_uids_are_reported_and_skipped_without_stopping_the_collection() {
    let Some(w) = carddav_world("mail_1_duplicate_uid").await else {
        return;
    };
    w.dav
        .put_card(&w.book, "a.vcf", &vcard("same", "Abe", "Ai", None, &[]))
        .await;
    // Radicale refuses a second UID over the protocol; other servers and
    // synchronisers leave such copies behind, so one is put in its storage.
    w.dav.put_file_directly(
        &w.book,
        "b.vcf",
        &vcard("same", "Abe", "Ai", Some("ai@example.jp"), &[]),
    );
    w.dav
        .put_card(&w.book, "c.vcf", &vcard("other", "Baba", "Bo", None, &[]))
        .await;
    let id = w.connect(json!({})).await;
    let run = w.sync(id).await;
    assert_eq!(counts(&run), [2, 0, 0, 0, 1, 0], "{run}");
    let dup = w
        .items(id, &run)
        .await
        .into_iter()
        .find(|i| i["code"] == "duplicate_uid")
        .expect("reported");
    assert_eq!(dup["details"]["cause"]["uid"], "same");
    assert_eq!(w.contacts().await.len(), 2);
}

#[tokio::test]
async fn mail_1_a_sync_token_the_server_no_longer_accepts_falls_back_to_the_etag_listing() {
    let Some(w) = carddav_world("mail_1_token_refused").await else {
        return;
    };
    w.dav
        .put_card(&w.book, "a.vcf", &vcard("a", "Aoki", "Ai", None, &[]))
        .await;
    let id = w.connect(json!({})).await;
    assert_eq!(counts(&w.sync(id).await)[0], 1);
    let source = format!("carddav:{}", w.book);
    let token = w
        .app
        .store
        .mail_sync_token(id, &source)
        .await
        .expect("read");
    assert!(token.is_some(), "Radicale offers sync tokens");
    w.app
        .store
        .set_mail_sync_token(id, &source, Some("http://radicale.org/ns/sync/not-a-token"))
        .await
        .expect("set");
    w.dav
        .put_card(&w.book, "b.vcf", &vcard("b", "Baba", "Bo", None, &[]))
        .await;
    let run = w.sync(id).await;
    assert_eq!(
        counts(&run),
        [1, 0, 0, 0, 0, 0],
        "the listing found the new card and no other: {run}"
    );
}

#[tokio::test]
async fn mail_1_an_address_book_that_comes_back_empty_stops_the_connection_and_deletes_nothing() {
    let Some(w) = carddav_world("mail_1_emptied").await else {
        return;
    };
    for n in 0..6 {
        w.dav
            .put_card(
                &w.book,
                &format!("{n}.vcf"),
                &vcard(&format!("u{n}"), &format!("Name{n}"), "X", None, &[]),
            )
            .await;
    }
    let id = w.connect(json!({})).await;
    assert_eq!(counts(&w.sync(id).await)[0], 6);
    for n in 0..6 {
        w.dav.delete(&format!("{}{n}.vcf", w.book)).await;
    }
    let (status, body) = w
        .app
        .post(
            &format!("/api/v1/integrations/{id}/sync"),
            &w.rep.key,
            &json!({}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(code(&body), "mass_delete_guard");
    assert!(
        body["error"]["fix"]["en"]
            .as_str()
            .expect("fix")
            .contains("allow_deletes=true")
    );
    assert_eq!(w.contacts().await.len(), 6, "nothing deleted");
    // A person confirms.
    let (status, body) = w
        .app
        .post(
            &format!("/api/v1/integrations/{id}/sync?allow_deletes=true"),
            &w.rep.key,
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["runs"][0]["deleted"], 6);
    assert!(w.contacts().await.is_empty());
}

#[tokio::test]
async fn mail_1_a_card_deleted_on_the_server_keeps_a_contact_that_existed_before_or_was_changed_in_the_crm()
 {
    let Some(w) = carddav_world("mail_1_deletes_kept").await else {
        return;
    };
    let (status, body) = w
        .app
        .post(
            &format!("/api/v1/orgs/{}/modules/Contacts/records", w.crm),
            &w.admin.key,
            &json!({"fields": {"Last_Name": "Old", "Email": "old@example.jp"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    w.dav
        .put_card(
            &w.book,
            "old.vcf",
            &vcard("old", "Old", "", Some("old@example.jp"), &[]),
        )
        .await;
    w.dav
        .put_card(&w.book, "new.vcf", &vcard("new", "New", "Nao", None, &[]))
        .await;
    let id = w.connect(json!({})).await;
    assert_eq!(counts(&w.sync(id).await), [1, 0, 1, 0, 0, 0]);
    let new = w
        .contacts()
        .await
        .into_iter()
        .find(|c| field(c, "Last_Name") == "New")
        .expect("New");
    let (status, _) = w
        .app
        .patch(
            &format!(
                "/api/v1/orgs/{}/modules/Contacts/records/{}",
                w.crm, new["id"]
            ),
            &w.admin.key,
            &json!({"fields": {"Title": "Changed in the CRM"}}),
        )
        .await;
    assert_eq!(status, 200);
    w.dav.delete(&format!("{}old.vcf", w.book)).await;
    w.dav.delete(&format!("{}new.vcf", w.book)).await;
    let run = w.sync(id).await;
    assert_eq!(counts(&run), [0, 0, 0, 0, 2, 0], "{run}");
    let codes: Vec<String> = w
        .items(id, &run)
        .await
        .iter()
        .map(|i| i["code"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        codes.contains(&"kept_existing_record".to_string()),
        "{codes:?}"
    );
    assert!(
        codes.contains(&"kept_changed_record".to_string()),
        "{codes:?}"
    );
    assert_eq!(w.contacts().await.len(), 2);
}

#[tokio::test]
async fn mail_9_automatic_sync_is_due_after_its_interval_and_off_without_one() {
    let Some(w) = carddav_world("mail_9_schedule").await else {
        return;
    };
    let id = w.connect(json!({"auto_sync_minutes": 5})).await;
    let load = || async {
        w.app
            .store
            .integration(id)
            .await
            .expect("read")
            .expect("there")
    };
    let due = |i| {
        let store = w.app.store.clone();
        async move { kizuna_sync::mail::due(&store, &i).await.expect("due") }
    };
    assert!(due(load().await).await, "never synced: due");
    w.sync(id).await;
    assert!(!due(load().await).await, "just synced");
    // An import is not a sync of the servers.
    let vcf = vcard("x", "Xu", "Xi", None, &[]);
    let r = w
        .app
        .http
        .post(
            w.app
                .url(&format!("/api/v1/integrations/{id}/import?name=x.vcf")),
        )
        .bearer_auth(&w.rep.key)
        .body(vcf)
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status().as_u16(), 200);
    // Six minutes later.
    w.app
        .store
        .db()
        .x()
        .execute(
            "UPDATE sync_runs SET started_at = started_at - 360000 WHERE integration_id = $1 AND trigger <> 'import'",
            &kizuna_store::args![id],
        )
        .await
        .expect("moved back");
    assert!(due(load().await).await, "the interval has passed");
    let (status, _) = w
        .app
        .patch(
            &format!("/api/v1/integrations/{id}/settings"),
            &w.rep.key,
            &json!({"auto_sync_minutes": 0}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(!due(load().await).await, "off");
}

#[tokio::test]
async fn mail_2_a_linked_card_that_fails_keeps_its_contact_and_is_read_again() {
    let Some(w) = carddav_world("mail_2_linked_failure").await else {
        return;
    };
    w.dav
        .put_card(
            &w.book,
            "a.vcf",
            &vcard("a", "Abe", "Ai", Some("ai@example.jp"), &[]),
        )
        .await;
    let id = w.connect(json!({})).await;
    assert_eq!(counts(&w.sync(id).await), [1, 0, 0, 0, 0, 0]);
    let contact = w.contacts().await[0]["id"].clone();
    let long = format!("TITLE:{}", "x".repeat(101));
    w.dav
        .put_card(
            &w.book,
            "a.vcf",
            &vcard("a", "Abe", "Ai", Some("ai@example.jp"), &[&long]),
        )
        .await;
    let run = w.sync(id).await;
    assert_eq!(counts(&run), [0, 0, 0, 0, 0, 1], "{run}");
    let failed = &w.items(id, &run).await[0];
    assert_eq!(
        failed["target_id"], contact,
        "the failure names the contact it would update"
    );
    // Fixed by a setting, not by the server: the card is read again and
    // updates the same contact.
    let (status, _) = w
        .app
        .patch(
            &format!("/api/v1/integrations/{id}/settings"),
            &w.rep.key,
            &json!({"truncate": true}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(counts(&w.sync(id).await), [0, 1, 0, 0, 0, 0]);
    let all = w.contacts().await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["id"], contact);
    assert_eq!(field(&all[0], "Title").len(), 100);
    assert_eq!(counts(&w.sync(id).await), [0; 6], "settled");
}
