//! The web UI in a real browser (headless Chromium over WebDriver): a
//! Japanese-reading user signs in, creates a contact, sees the refusal of a
//! bad e-mail address in Japanese beside its field, fixes it, moves the
//! contact to the recycle bin and restores it. Screenshots of each step are
//! saved as artifacts (`KIZUNA_TEST_ARTIFACTS`).

use fantoccini::{Client, Locator};
use kizuna_domain::App;
use kizuna_testkit::chromium::{Chromium, screenshot};
use kizuna_testkit::{Backend, TestApp};

const TEST: &str = "ui_browser";

async fn text(b: &Client, css: &str) -> String {
    b.wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .expect("its text")
}

async fn fill(b: &Client, css: &str, value: &str) {
    let field = b.find(Locator::Css(css)).await.expect(css);
    field.clear().await.expect("cleared");
    field.send_keys(value).await.expect("typed");
}

/// Clicks what submits a form and waits for the next page: until the
/// page the click was made on is gone (its root element stale).
async fn submit(b: &Client, css: &str) {
    let old = b.find(Locator::Css("html")).await.expect("a page");
    b.find(Locator::Css(css))
        .await
        .expect(css)
        .click()
        .await
        .expect("clicked");
    let started = std::time::Instant::now();
    while old.tag_name().await.is_ok() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "no new page after clicking {css}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn path(b: &Client) -> String {
    let url = b.current_url().await.expect("a URL");
    url.path().to_string()
}

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
