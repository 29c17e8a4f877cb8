//! The item engine makes a batch's new CRM records in one statement; when
//! the store refuses that statement for one record (a unique field two
//! items share), the others are still written and the refusal fails only
//! the item it is about, with the CRM's own reason in the history.

use kizuna_domain::App;
use kizuna_domain::field::{FieldDef, FieldType};
use kizuna_sync::mail::items::{Incoming, Parsed, Target, apply};
use kizuna_sync::mail::{self, MailContext, contacts};
use kizuna_testkit::TestDb;
use serde_json::json;

fn card(n: u32, member_no: &str) -> Incoming {
    Incoming {
        key: format!("card-{n}"),
        etag: Some(format!("\"e{n}\"")),
        item: Ok(Parsed {
            uid: Some(format!("uid-{n}")),
            hash: format!("hash-{n}"),
            values: vec![
                (
                    "Last_Name",
                    ("Last name", "姓"),
                    json!(format!("Person{n}")),
                ),
                (
                    "Email",
                    ("E-mail 1", "電子メール 1"),
                    json!(format!("p{n}@example.jp")),
                ),
                ("Member_No", ("Member number", "会員番号"), json!(member_no)),
            ],
            ..Parsed::default()
        }),
        at: json!({"href": format!("/card-{n}.vcf")}),
    }
}

#[tokio::test]
async fn mail_3_a_refused_record_in_a_batch_fails_only_its_own_item() {
    let (_db, store, admin) = TestDb::sqlite_with_admin("mail_3_batch_refusal").await;
    let org = kizuna_apps::admin::create_org(&store, App::Crm, "Acme", "enterprise", &admin)
        .await
        .expect("org");
    let mut field = FieldDef::new("Member_No", FieldType::Text);
    field.unique = true;
    kizuna_apps::admin::add_custom_field(&store, org.id, "Contacts", field)
        .await
        .expect("a unique custom field");
    let dir = tempfile::tempdir().expect("a directory");
    let ctx = MailContext::new(dir.path().join("secret.key"), false);
    let i = mail::connect(&store, &ctx, &admin, org.id, &json!({}))
        .await
        .expect("a connection");
    let run = store
        .start_run(i.id, "cli", mail::INTO_CRM, contacts::DATA_TYPE)
        .await
        .expect("a run");
    let settings = mail::settings::read(&json!({}));
    let target = Target {
        store: &store,
        org: &org,
        kind: &contacts::Contacts,
        module: kizuna_apps::records::enabled_module(&store, &org, "Contacts")
            .await
            .expect("Contacts"),
        integration: i.id,
        source: "test",
        settings: &settings,
        run: run.id,
    };
    let counts = apply(
        &target,
        vec![card(1, "M-1"), card(2, "M-1"), card(3, "M-2")],
    )
    .await
    .expect("the batch is applied");
    assert_eq!((counts.added, counts.failed), (2, 1), "{counts:?}");

    let items = store.run_items(run.id, None, 100).await.expect("history");
    let failed: Vec<_> = items.iter().filter(|it| it.outcome == "failed").collect();
    assert_eq!(failed.len(), 1, "{items:?}");
    assert_eq!(failed[0].code, "not_unique");
    assert_eq!(failed[0].details.0["item"]["href"], "/card-2.vcf");
    assert!(
        failed[0].message.0.to_string().contains("Member_No"),
        "the store's refusal names the field: {:?}",
        failed[0].message
    );
    // The failed item is read again next time: it keeps no content hash.
    let rows = store
        .mail_items_of_source(i.id, "test")
        .await
        .expect("items");
    let hashes: Vec<(&str, &str)> = rows
        .iter()
        .map(|m| (m.item_key.as_str(), m.content_hash.as_str()))
        .collect();
    assert_eq!(
        hashes,
        [("card-1", "hash-1"), ("card-2", ""), ("card-3", "hash-3")]
    );
}
