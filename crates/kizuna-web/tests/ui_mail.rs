//! The mail & calendar connection page over real HTTP: a CRM member
//! connects their servers, a password is never shown and is kept when left
//! empty, a bad address is refused on the page and saves nothing.

// Shared by the UI test binaries; each uses a part of it.
#[allow(dead_code)]
mod ui_world;

use kizuna_domain::{App, Role};
use kizuna_testkit::{Backend, TestApp};
use ui_world::{Browser, PASSWORD};

#[tokio::test]
async fn mail_1_a_member_connects_their_servers_from_the_mail_page_and_no_password_is_shown() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, "ui_mail").await else {
        return;
    };
    let admin = app.actor("admin@example.jp").await;
    let rep = app.actor("rep@example.jp").await;
    let crm = app.org(App::Crm, "enterprise", &admin).await;
    app.store
        .add_member(crm.id, rep.user.id, Role::Member)
        .await
        .expect("member");
    let mut b = Browser::new(&app, "en");
    b.sign_in("rep@example.jp", PASSWORD).await;
    let path = format!("/orgs/{}/mail", crm.id);
    let page = b.get(&path).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Not connected yet"));

    let refused = b
        .post(
            &path,
            &[
                ("csrf", &page.csrf()),
                ("carddav.url", "ftp://dav.example.jp/"),
                ("carddav.username", "rep"),
            ],
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("carddav.url"), "{}", refused.body);
    let connection = kizuna_sync::mail::connection_of(&app.store, crm.id, rep.user.id).await;
    assert!(connection.expect("read").is_none(), "nothing saved");

    let secret = "s3cret-pass-word";
    let saved = b
        .post(
            &path,
            &[
                ("csrf", &page.csrf()),
                ("carddav.url", "https://dav.example.jp/"),
                ("carddav.username", "rep"),
                ("carddav.password", secret),
                ("auto_sync_minutes", "30"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let page = b.get(&path).await;
    assert!(page.body.contains("Connected (active)"), "{}", page.body);
    assert!(page.body.contains("value=\"https://dav.example.jp/\""));
    assert!(page.body.contains("stored; leave empty to keep it"));
    assert!(!page.body.contains(secret), "the password is never shown");

    // Saved again without a password: the stored one stays.
    let again = b
        .post(
            &path,
            &[
                ("csrf", &page.csrf()),
                ("carddav.url", "https://dav.example.jp/"),
                ("carddav.username", "rep2"),
            ],
        )
        .await;
    assert_eq!(again.status, 303, "{}", again.body);
    let i = kizuna_sync::mail::connection_of(&app.store, crm.id, rep.user.id)
        .await
        .expect("read")
        .expect("the connection");
    assert_eq!(i.settings.0["carddav"]["username"], "rep2");
    assert!(
        i.settings.0["carddav"]["password"].is_string(),
        "still sealed and stored"
    );
    assert_ne!(
        i.settings.0["carddav"]["password"], secret,
        "sealed, not plain"
    );
    assert_eq!(i.settings.0["auto_sync_minutes"], 30);

    // Another org's member does not reach it.
    let stranger = app.actor("stranger@example.jp").await;
    let mut s = Browser::new(&app, "en");
    s.sign_in(&stranger.user.email, PASSWORD).await;
    assert_eq!(s.get(&path).await.status, 404);
}
