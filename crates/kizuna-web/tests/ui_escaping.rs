//! An XSS payload corpus saved into every field type — through the API for
//! the types that take any text, through the UI's form for those that
//! refuse it (the refusal page shows the value again) — into the fields'
//! labels, and into an org's and a user's name: every page renders it
//! escaped.

// Shared by the UI test binaries; each uses a part of it.
#[allow(dead_code)]
mod ui_world;

use kizuna_domain::App;
use kizuna_domain::field::{FieldDef, FieldType};
use kizuna_testkit::{Backend, TestApp};
use serde_json::json;
use ui_world::{Browser, PASSWORD};

/// Payloads that would run script if any reached the page unescaped: tags,
/// attribute and element breakouts, a URL scheme, template syntax.
const PAYLOADS: [&str; 8] = [
    "<script>alert(1)</script>",
    "\"><svg onload=alert(2)>",
    "'><img src=x onerror=alert(3)>",
    "</textarea><script>alert(4)</script>",
    "\" autofocus onfocus=\"alert(5)",
    "javascript:alert(6)",
    "{{ 7*7 }}{% raw %}<iframe src=//x>",
    "<a href=\"javascript:alert(8)\">x</a>",
];

/// What would only be on a page if a payload got through unescaped.
const RAW: [&str; 7] = [
    "<script>alert",
    "<svg onload",
    "<img src=x",
    "onfocus=\"alert",
    "<iframe",
    "<a href=\"javascript:",
    "</textarea><script>",
];

fn assert_escaped(path: &str, body: &str) {
    for raw in RAW {
        assert!(!body.contains(raw), "{path} renders {raw:?} unescaped");
    }
}

#[tokio::test]
async fn ui_an_xss_corpus_in_every_field_type_renders_escaped_on_every_page() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, "ui_escaping").await else {
        return;
    };
    let admin = app.actor("admin@example.jp").await;
    // A user's and an org's names are input too.
    let named = app
        .store
        .create_user("named@example.jp", PAYLOADS[0], Some(PASSWORD))
        .await
        .expect("a user");
    let org =
        kizuna_apps::admin::create_org(&app.store, App::Crm, PAYLOADS[1], "enterprise", &named)
            .await
            .expect("an org");
    app.store
        .add_member(org.id, admin.user.id, kizuna_domain::Role::Administrator)
        .await
        .expect("member");
    // A custom field of every type, so that each renders on every page.
    let mut text_fields = Vec::new();
    for (i, t) in FieldType::ALL.into_iter().enumerate() {
        let mut f = FieldDef::new(&format!("X_{}", t.as_str()), t);
        // Labels are an administrator's text, shown on every page that
        // shows the field (in Japanese here); the text field also sorts.
        f.label = PAYLOADS[i % PAYLOADS.len()].to_string();
        f.label_ja = PAYLOADS[(i + 1) % PAYLOADS.len()].to_string();
        f.sortable = t == FieldType::Text;
        if matches!(t, FieldType::Picklist | FieldType::Multiselect) {
            f.picklist = PAYLOADS.iter().map(|p| p.to_string()).collect();
        }
        if t == FieldType::Lookup {
            f.lookup_module = Some("Accounts".into());
        }
        kizuna_apps::admin::add_custom_field(&app.store, org.id, "Contacts", f)
            .await
            .expect("a custom field");
        if matches!(t, FieldType::Text | FieldType::Textarea) {
            text_fields.push(format!("X_{}", t.as_str()));
        }
    }
    let mut ids = Vec::new();
    for p in PAYLOADS {
        let mut fields = json!({"Last_Name": p, "Description": p,
            "X_picklist": p, "X_multiselect": [p]});
        for f in &text_fields {
            fields[f] = json!(p);
        }
        let (status, r) = app
            .post(
                &format!("/api/v1/orgs/{}/modules/Contacts/records", org.id),
                &admin.key,
                &json!({"fields": fields}),
            )
            .await;
        assert_eq!(status, 201, "{r}");
        ids.push(r["id"].as_i64().expect("an id"));
    }
    let (status, _) = app
        .delete(
            &format!(
                "/api/v1/orgs/{}/modules/Contacts/records/{}",
                org.id, ids[0]
            ),
            &admin.key,
        )
        .await;
    assert_eq!(status, 200);

    let mut b = Browser::new(&app, "ja");
    b.sign_in("named@example.jp", PASSWORD).await;
    let contacts = format!("/orgs/{}/modules/Contacts", org.id);
    let mut pages = vec![
        "/home".to_string(),
        format!("/orgs/{}", org.id),
        contacts.clone(),
        format!("{contacts}?sort=Last_Name&order=desc"),
        format!("{contacts}?sort=X_text&order=asc"),
        "/settings/me".to_string(),
        format!("{contacts}?filter_field=Last_Name&filter_value=%3Cscript%3E"),
        format!("{contacts}/new"),
        format!("/orgs/{}/bin", org.id),
        format!("/orgs/{}/settings", org.id),
        format!("/orgs/{}/settings/modules/Contacts", org.id),
        format!("/orgs/{}/settings/marketplace", org.id),
    ];
    for id in &ids[1..] {
        pages.push(format!("{contacts}/{id}"));
        pages.push(format!("{contacts}/{id}/edit"));
    }
    for path in &pages {
        let page = b.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        assert_escaped(path, &page.body);
    }
    // The payloads are there, as text.
    let home = b.get("/home").await;
    assert!(
        home.body
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "the user's name"
    );
    assert!(
        home.body.contains("&#60;svg onload=alert(2)&#62;"),
        "the org's name"
    );
    let list = b.get(&contacts).await;
    assert!(
        list.body
            .contains("&#60;script&#62;alert(4)&#60;/script&#62;"),
        "a field's Japanese label, as text"
    );
    let record = b.get(&format!("{contacts}/{}", ids[7])).await;
    assert!(
        record
            .body
            .contains("&#60;a href=&#34;javascript:alert(8)&#34;&#62;x&#60;/a&#62;")
    );
    // Every type that refuses the text shows it again on the refused form.
    let form = b.get(&format!("{contacts}/new")).await;
    for p in PAYLOADS {
        let mut sent: Vec<(String, String)> = FieldType::ALL
            .iter()
            .map(|t| (format!("X_{}", t.as_str()), p.to_string()))
            .collect();
        sent.push(("Email".into(), p.into()));
        sent.push(("csrf".into(), form.csrf()));
        let fields: Vec<(&str, &str)> =
            sent.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let refused = b.post(&format!("{contacts}/new"), &fields).await;
        assert_eq!(refused.status, 400, "{p}");
        assert_escaped("the refused form", &refused.body);
    }
    // The sign-in page shows the typed address again.
    let mut anonymous = Browser::new(&app, "en");
    let again = anonymous.sign_in(PAYLOADS[2], "wrong").await;
    assert_escaped("/sign-in", &again.body);
}
