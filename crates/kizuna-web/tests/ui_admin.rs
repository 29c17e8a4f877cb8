//! Administration pages over real HTTP: only an org's administrators reach
//! them (a member is refused and told who can), and each change — plan,
//! members and roles, departments, modules on and off, custom fields,
//! fields marked unused — is made through its form with its CSRF token,
//! and shows where people work.

// Shared by the UI test binaries; each uses a part of it.
#[allow(dead_code)]
mod ui_world;

use kizuna_domain::{App, Role};
use kizuna_testkit::{Backend, TestApp};
use ui_world::{Browser, PASSWORD};

#[tokio::test]
async fn ui_a_member_cannot_reach_or_use_an_administrators_page() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, "ui_admin_member").await else {
        return;
    };
    let admin = app.actor("admin@example.jp").await;
    let member = app.actor("member@example.jp").await;
    let org = app.org(App::Crm, "standard", &admin).await;
    app.store
        .add_member(org.id, member.user.id, Role::Member)
        .await
        .expect("member");
    let mut m = Browser::new(&app, "en");
    m.sign_in("member@example.jp", PASSWORD).await;
    let home = m.get(&format!("/orgs/{}", org.id)).await;
    assert!(
        !home
            .body
            .contains(&format!("href=\"/orgs/{}/settings\"", org.id))
    );
    for path in [
        format!("/orgs/{}/settings", org.id),
        format!("/orgs/{}/settings/modules/Contacts", org.id),
    ] {
        let refused = m.get(&path).await;
        assert_eq!(refused.status, 403, "{path}");
        assert!(
            refused.body.contains("admin@example.jp"),
            "names who can: {}",
            refused.body
        );
    }
    let csrf = home.csrf();
    let promote = m
        .post(
            &format!("/orgs/{}/settings/members/{}", org.id, member.user.id),
            &[("csrf", csrf.as_str()), ("role", "administrator")],
        )
        .await;
    assert_eq!(promote.status, 403);
    assert_eq!(
        app.store
            .role_of(org.id, member.user.id)
            .await
            .expect("read"),
        Some(Role::Member),
        "nothing changed"
    );
    let off = m
        .post(
            &format!("/orgs/{}/settings/modules/Contacts/enabled", org.id),
            &[("csrf", csrf.as_str()), ("value", "false")],
        )
        .await;
    assert_eq!(off.status, 403);
    assert!(
        app.store
            .module(org.id, "Contacts")
            .await
            .expect("read")
            .enabled
    );
}

#[tokio::test]
async fn ui_an_administrator_changes_plan_members_modules_and_fields_through_forms() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, "ui_admin_changes").await else {
        return;
    };
    let admin = app.actor("admin@example.jp").await;
    let rep = app.actor("rep@example.jp").await;
    let org = app.org(App::Crm, "free", &admin).await;
    let mut b = Browser::new(&app, "en");
    b.sign_in("admin@example.jp", PASSWORD).await;
    let settings = format!("/orgs/{}/settings", org.id);
    let page = b.get(&settings).await;
    assert_eq!(page.status, 200);
    let csrf = page.csrf();
    let post = |path: String, form: Vec<(&'static str, String)>| (path, form);
    let steps = [
        post(
            format!("{settings}/plan"),
            vec![("plan", "enterprise".into())],
        ),
        post(
            format!("{settings}/members"),
            vec![
                ("email", "rep@example.jp".into()),
                ("role", "member".into()),
            ],
        ),
        post(
            format!("{settings}/members/{}", rep.user.id),
            vec![("role", "administrator".into())],
        ),
        post(
            format!("{settings}/modules/Deals/enabled"),
            vec![("value", "false".into())],
        ),
        post(
            format!("{settings}/modules/Contacts/fields"),
            vec![
                ("api_name", "Member_Rank".into()),
                ("label", "Member rank".into()),
                ("type", "picklist".into()),
                ("picklist", "Gold\nSilver\n".into()),
            ],
        ),
        post(
            format!("{settings}/modules/Contacts/fields/Fax/in-use"),
            vec![("value", "false".into())],
        ),
    ];
    for (path, form) in steps {
        let mut fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            b.post(&path, &fields).await.status,
            403,
            "{path} without the token"
        );
        fields.push(("csrf", &csrf));
        let done = b.post(&path, &fields).await;
        assert_eq!(done.status, 303, "{path}: {}", done.body);
    }
    let org_now = app.store.org(org.id).await.expect("read").expect("the org");
    assert_eq!(org_now.plan, "enterprise");
    assert_eq!(
        app.store.role_of(org.id, rep.user.id).await.expect("read"),
        Some(Role::Administrator)
    );
    let deals = b.get(&format!("/orgs/{}/modules/Deals", org.id)).await;
    assert_ne!(deals.status, 200, "a module turned off has no list");
    let form = b
        .get(&format!("/orgs/{}/modules/Contacts/new", org.id))
        .await;
    assert!(
        form.body
            .contains("<label for=\"f-Member_Rank\">Member rank")
    );
    assert!(form.body.contains("<option value=\"Gold\">"));
    assert!(
        !form.body.contains("id=\"f-Fax\""),
        "an unused field is not on the form"
    );

    // A refused custom field says why on the page and adds nothing.
    let refused = b
        .post(
            &format!("{settings}/modules/Contacts/fields"),
            &[("csrf", &csrf), ("api_name", "limit"), ("type", "text")],
        )
        .await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.body.contains("cannot be a field"),
        "{}",
        refused.body
    );
    let contacts = app.store.module(org.id, "Contacts").await.expect("read");
    assert!(contacts.field("limit").is_none());
}

#[tokio::test]
async fn dsk_7_desk_departments_are_made_and_staffed_from_the_settings_page() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, "ui_admin_departments").await else {
        return;
    };
    let admin = app.actor("admin@example.jp").await;
    let agent = app.actor("agent@example.jp").await;
    let desk = app.org(App::Desk, "standard", &admin).await;
    app.store
        .add_member(desk.id, agent.user.id, Role::Member)
        .await
        .expect("member");
    let mut b = Browser::new(&app, "ja");
    b.sign_in("admin@example.jp", PASSWORD).await;
    let settings = format!("/orgs/{}/settings", desk.id);
    let page = b.get(&settings).await;
    assert!(page.body.contains("部門"));
    let csrf = page.csrf();
    let made = b
        .post(
            &format!("{settings}/departments"),
            &[("csrf", &csrf), ("name", "サポート")],
        )
        .await;
    assert_eq!(made.status, 303);
    let department = app.store.departments(desk.id).await.expect("read")[0].id;
    let staffed = b
        .post(
            &format!("{settings}/departments/{department}/members"),
            &[("csrf", &csrf), ("email", "agent@example.jp")],
        )
        .await;
    assert_eq!(staffed.status, 303);
    assert_eq!(
        app.store
            .department_members(department)
            .await
            .expect("read"),
        vec![agent.user.id]
    );
    let page = b.get(&settings).await;
    assert!(
        page.body
            .contains("<strong>サポート</strong>: agent@example.jp"),
        "{}",
        page.body
    );
}

// A list's headers sort only where the field is sortable; an administrator
// makes a field sortable and renames its labels from the module's page, each
// with its token; a long text cannot be sortable, and says why; a reader
// sees each field's label in their language.
#[tokio::test]
async fn ui_fields_are_made_sortable_and_renamed_from_their_module_page() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, "ui_admin_sortable").await else {
        return;
    };
    let admin = app.actor("admin@example.jp").await;
    let org = app.org(App::Crm, "free", &admin).await;
    let contacts = app.store.module(org.id, "Contacts").await.expect("read");
    for first in ["Hana", "Aoi", "Ren"] {
        app.store
            .create_records(
                org.id,
                &contacts,
                vec![
                    serde_json::json!({"Last_Name": "Sato", "First_Name": first})
                        .as_object()
                        .cloned()
                        .expect("an object"),
                ],
                kizuna_store::Origin::User(admin.user.id),
            )
            .await
            .expect("contacts");
    }
    let mut b = Browser::new(&app, "ja");
    b.sign_in("admin@example.jp", PASSWORD).await;
    let list = format!("/orgs/{}/modules/Contacts", org.id);
    let page = b.get(&list).await;
    assert!(
        page.body.contains("?sort=Last_Name&#38;order=asc\">姓</a>"),
        "the name field sorts, labelled in Japanese: {}",
        page.body
    );
    assert!(
        page.body.contains("<th scope=\"col\">名</th>"),
        "First_Name does not sort yet"
    );
    let refused = b.get(&format!("{list}?sort=First_Name")).await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.body.contains("並べ替えできません"),
        "{}",
        refused.body
    );

    let fields = format!("/orgs/{}/settings/modules/Contacts/fields", org.id);
    let csrf = page.csrf();
    for (path, form) in [
        (
            format!("{fields}/First_Name/sortable"),
            vec![("value", "true")],
        ),
        (
            format!("{fields}/First_Name/labels"),
            vec![("label", "Given name"), ("label_ja", "下の名前")],
        ),
    ] {
        assert_eq!(
            b.post(&path, &form).await.status,
            403,
            "{path} without the token"
        );
        let mut form = form;
        form.push(("csrf", &csrf));
        let done = b.post(&path, &form).await;
        assert_eq!(done.status, 303, "{path}: {}", done.body);
    }
    let sorted = b.get(&format!("{list}?sort=First_Name&order=desc")).await;
    assert_eq!(sorted.status, 200);
    let at = |name: &str| sorted.body.find(&format!(">{name}<")).expect(name);
    assert!(
        at("Ren") < at("Hana") && at("Hana") < at("Aoi"),
        "descending by first name"
    );
    assert!(sorted.body.contains("aria-sort=\"descending\"><a href="));
    assert!(sorted.body.contains(">下の名前</a>"));
    let mut en = Browser::new(&app, "en");
    en.sign_in("admin@example.jp", PASSWORD).await;
    assert!(en.get(&list).await.body.contains(">Given name</a>"));

    let unknown = b
        .post(
            &format!("{fields}/First_Name/explode"),
            &[("csrf", &csrf), ("value", "true")],
        )
        .await;
    assert_eq!(unknown.status, 404, "no such change");
    let refused = b
        .post(
            &format!("{fields}/Description/sortable"),
            &[("csrf", &csrf), ("value", "true")],
        )
        .await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.body.contains("並べ替えできる項目にできません"),
        "{}",
        refused.body
    );
    let now = app.store.module(org.id, "Contacts").await.expect("read");
    assert!(now.field("Description").is_some_and(|f| !f.sortable));
    assert!(
        now.field("First_Name")
            .is_some_and(|f| f.sortable && f.label_ja == "下の名前")
    );
}
