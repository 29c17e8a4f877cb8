//! The web UI in a real browser (headless Chromium over WebDriver): a
//! Japanese-reading user signs in, creates a contact, sees the refusal of a
//! bad e-mail address in Japanese beside its field, fixes it, moves the
//! contact to the recycle bin and restores it. Screenshots of each step are
//! saved as artifacts (`KIZUNA_TEST_ARTIFACTS`).

use fantoccini::Locator;
use kizuna_domain::App;
use kizuna_testkit::chromium::{Chromium, fill, path, screenshot, submit, text};
use kizuna_testkit::{Backend, TestApp};

const TEST: &str = "ui_browser";

#[tokio::test]
async fn ui_in_chromium_sign_in_create_a_contact_see_the_japanese_refusal_delete_and_restore() {
    let Some(chromium) = Chromium::start(TEST) else {
        return;
    };
    let Some(app) = TestApp::spawn(Backend::Sqlite, TEST).await else {
        return;
    };
    let admin = app.actor("admin@example.jp").await;
    let org = app.org(App::Crm, "enterprise", &admin).await;
    let b = chromium.open("ja").await;

    b.goto(&app.url("/home")).await.expect("the app");
    assert_eq!(
        path(&b).await,
        "/sign-in",
        "not signed in: to the sign-in page"
    );
    assert_eq!(text(&b, "h1").await, "Kizuna にログイン");
    fill(&b, "#email", "admin@example.jp").await;
    fill(&b, "#password", "correct horse battery").await;
    submit(&b, "form.sign-in button[type=submit]").await;
    assert_eq!(text(&b, "h1").await, "アプリ一覧");
    assert_eq!(path(&b).await, "/home");
    screenshot(&b, TEST, "1-home").await;

    b.goto(&app.url(&format!("/orgs/{}/modules/Contacts/new", org.id)))
        .await
        .expect("the form");
    fill(&b, "#f-Last_Name", "山田").await;
    fill(&b, "#f-First_Name", "太郎").await;
    fill(&b, "#f-Email", "yamada at example").await;
    submit(&b, "form.record button[type=submit]").await;
    let refusal = text(&b, "#e-Email").await;
    assert!(
        refusal.contains("メールアドレスの形式ではありません"),
        "the refusal in Japanese beside its field: {refusal}"
    );
    let kept = b
        .find(Locator::Css("#f-Last_Name"))
        .await
        .expect("the field")
        .prop("value")
        .await
        .expect("its value");
    assert_eq!(kept.as_deref(), Some("山田"), "what was typed is kept");
    screenshot(&b, TEST, "2-refused").await;

    fill(&b, "#f-Email", "taro.yamada@example.jp").await;
    submit(&b, "form.record button[type=submit]").await;
    let heading = text(&b, "h1").await;
    assert!(heading.starts_with("連絡先 #"), "{heading}");
    let fields = text(&b, "dl.fields").await;
    assert!(
        fields.contains("taro.yamada@example.jp") && fields.contains("山田"),
        "{fields}"
    );
    let record = path(&b).await;
    screenshot(&b, TEST, "3-created").await;

    submit(&b, ".actions form button[type=submit]").await;
    assert_eq!(path(&b).await, format!("/orgs/{}/bin", org.id));
    let bin = text(&b, "table.records").await;
    assert!(bin.contains("山田"), "{bin}");
    screenshot(&b, TEST, "4-bin").await;
    submit(&b, "table.records form button[type=submit]").await;
    assert_eq!(path(&b).await, record, "restored, back on its page");
    assert!(
        text(&b, "dl.fields")
            .await
            .contains("taro.yamada@example.jp")
    );
    b.close().await.expect("the browser closes");
}

/// Signs `email` in on a fresh window.
async fn signed_in(chromium: &Chromium, app: &TestApp, email: &str) -> fantoccini::Client {
    let b = chromium.open("ja").await;
    b.goto(&app.url("/sign-in"))
        .await
        .expect("the sign-in page");
    fill(&b, "#email", email).await;
    fill(&b, "#password", "correct horse battery").await;
    submit(&b, "form.sign-in button[type=submit]").await;
    assert_eq!(path(&b).await, "/home");
    b
}

#[tokio::test]
async fn ui_in_chromium_crm_events_set_up_from_both_sides_an_attendee_becomes_a_lead_then_delete() {
    const TEST: &str = "ui_browser_crm_events";
    let Some(chromium) = Chromium::start(TEST) else {
        return;
    };
    let Some(app) = TestApp::spawn(Backend::Sqlite, TEST).await else {
        return;
    };
    let sales = app.actor("sales-admin@example.jp").await;
    let events_admin = app.actor("events-admin@example.jp").await;
    let crm = app.org(App::Crm, "enterprise", &sales).await;
    let events = app.org(App::Events, "standard", &events_admin).await;
    // The CRM's administrator belongs to the Events org, so they can pick it.
    app.store
        .add_member(events.id, sales.user.id, kizuna_domain::Role::Member)
        .await
        .expect("a member");

    // The CRM side sets it up.
    let a = signed_in(&chromium, &app, "sales-admin@example.jp").await;
    a.goto(&app.url(&format!("/orgs/{}/settings/marketplace", crm.id)))
        .await
        .expect("the marketplace");
    submit(&a, "li[data-kind=crm-events] a.button").await;
    kizuna_testkit::chromium::select(&a, "#to_org", &events.id.to_string()).await;
    submit(&a, "form.record button[type=submit]").await;
    let integration: i64 = path(&a)
        .await
        .trim_start_matches("/integrations/")
        .parse()
        .expect("the integration's page");
    assert_eq!(text(&a, "h1 .state").await, "相手側の有効化待ち");
    assert!(
        text(&a, ".notice").await.contains(&events.name),
        "says which side is missing"
    );
    screenshot(&a, TEST, "1-pending").await;

    // The Events side enables it.
    let b = signed_in(&chromium, &app, "events-admin@example.jp").await;
    b.goto(&app.url(&format!("/integrations/{integration}")))
        .await
        .expect("the integration");
    submit(&b, "form[action$='/act'] button[type=submit]").await;
    assert_eq!(text(&b, "h1 .state").await, "有効");
    screenshot(&b, TEST, "2-enabled").await;

    // An attendee registers for an event, entered in the Events app.
    let (status, event) = app
        .post(
            &format!("/api/v1/orgs/{}/modules/Events/records", events.id),
            &events_admin.key,
            &serde_json::json!({"fields": {"Event_Name": "Tokyo Expo", "Status": "Live"}}),
        )
        .await;
    assert_eq!(status, 201, "{event}");
    b.goto(&app.url(&format!("/orgs/{}/modules/Attendees/new", events.id)))
        .await
        .expect("the attendee form");
    fill(&b, "#f-Email", "hanako.suzuki@example.jp").await;
    fill(&b, "#f-Last_Name", "鈴木").await;
    fill(&b, "#f-First_Name", "花子").await;
    fill(&b, "#f-Event", &event["id"].to_string()).await;
    kizuna_testkit::chromium::select(&b, "#f-Status", "registered").await;
    submit(&b, "form.record button[type=submit]").await;
    assert!(text(&b, "h1").await.starts_with("参加者 #"));

    // The CRM side syncs, and sees the run and the Lead.
    a.goto(&app.url(&format!("/integrations/{integration}")))
        .await
        .expect("the integration");
    submit(&a, "form[action$='/sync'] button[type=submit]").await;
    let runs = text(&a, "table.runs").await;
    assert!(runs.contains("events-to-crm"), "{runs}");
    a.find(Locator::Css("figure.chart svg rect.bar-added"))
        .await
        .expect("the day's bar of added records");
    screenshot(&a, TEST, "3-history").await;
    a.goto(&app.url(&format!("/orgs/{}/modules/Leads", crm.id)))
        .await
        .expect("the Leads");
    let leads = text(&a, "table.records").await;
    assert!(leads.contains("鈴木"), "the attendee is a Lead: {leads}");
    screenshot(&a, TEST, "4-lead").await;

    // Delete, after reading what it removes.
    a.goto(&app.url(&format!("/integrations/{integration}")))
        .await
        .expect("the integration");
    submit(&a, "a[href$='/delete']").await;
    let removes = text(&a, ".would-remove").await;
    assert!(
        removes.contains("削除すると") && removes.contains("関連付け"),
        "{removes}"
    );
    screenshot(&a, TEST, "5-delete").await;
    submit(&a, "form[action$='/delete'] button[type=submit]").await;
    assert_eq!(
        path(&a).await,
        format!("/orgs/{}/settings/marketplace", crm.id)
    );
    let (_, gone) = app
        .get(&format!("/api/v1/integrations/{integration}"), &sales.key)
        .await;
    assert_eq!(gone["state"], "deleted", "{gone}");
    a.close().await.expect("closes");
    b.close().await.expect("closes");
}

/// Presses `key` in whatever has the focus.
async fn press(b: &fantoccini::Client, key: fantoccini::key::Key) {
    b.active_element()
        .await
        .expect("a focused element")
        .send_keys(&key)
        .await
        .expect("pressed");
}

/// The id of the focused element.
async fn focused(b: &fantoccini::Client) -> String {
    b.active_element()
        .await
        .expect("a focused element")
        .attr("id")
        .await
        .expect("its id")
        .unwrap_or_default()
}

#[tokio::test]
async fn ui_in_chromium_signs_in_by_keyboard_alone_and_pages_fit_at_200_percent_zoom() {
    use fantoccini::key::Key;
    const TEST: &str = "ui_browser_keyboard_zoom";
    let Some(chromium) = Chromium::start(TEST) else {
        return;
    };
    let Some(app) = TestApp::spawn(Backend::Sqlite, TEST).await else {
        return;
    };
    let admin = app.actor("admin@example.jp").await;
    let org = app.org(App::Crm, "enterprise", &admin).await;
    let b = chromium.open("en").await;
    b.goto(&app.url("/sign-in"))
        .await
        .expect("the sign-in page");
    // Tab from the top of the page to the e-mail field, then through the form.
    let mut tabs = 0;
    while focused(&b).await != "email" {
        press(&b, Key::Tab).await;
        tabs += 1;
        assert!(tabs <= 5, "the e-mail field is among the first stops");
    }
    b.active_element()
        .await
        .expect("focus")
        .send_keys("admin@example.jp")
        .await
        .expect("typed");
    press(&b, Key::Tab).await;
    assert_eq!(
        focused(&b).await,
        "password",
        "Tab goes from e-mail to password"
    );
    b.active_element()
        .await
        .expect("focus")
        .send_keys("correct horse battery")
        .await
        .expect("typed");
    let old = b.find(Locator::Css("html")).await.expect("the page");
    press(&b, Key::Enter).await;
    while old.tag_name().await.is_ok() {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(path(&b).await, "/home", "Enter sends the form");

    // 200% zoom of a 1280-pixel window is a 640-pixel viewport: nothing may
    // need a horizontal scroll.
    b.set_window_size(640, 800).await.expect("resized");
    for page in [
        "/home".to_string(),
        format!("/orgs/{}", org.id),
        format!("/orgs/{}/modules/Contacts", org.id),
        format!("/orgs/{}/modules/Contacts/new", org.id),
        format!("/orgs/{}/settings", org.id),
        format!("/orgs/{}/settings/marketplace", org.id),
    ] {
        b.goto(&app.url(&page)).await.expect("the page");
        let overflow = b
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                vec![],
            )
            .await
            .expect("measured");
        assert!(
            overflow.as_i64().unwrap_or(1) <= 0,
            "{page} scrolls sideways by {overflow} px at 200% zoom"
        );
    }
    screenshot(&b, TEST, "zoomed-settings").await;
    b.close().await.expect("closes");
}
