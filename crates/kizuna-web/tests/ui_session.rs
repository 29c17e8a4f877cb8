//! The web UI over real HTTP as a browser meets it: sign-in and sign-out,
//! the session cookie's flags, a new session id at sign-in, the CSRF token
//! every form needs, the per-account limit on failed sign-ins, the
//! language, the security headers, escaping, and another org's pages.

// Shared by the UI test binaries; each uses a part of it.
#[allow(dead_code)]
mod ui_world;

use kizuna_domain::App;
use kizuna_testkit::{Backend, TestApp};
use serde_json::json;
use ui_world::{Browser, PASSWORD};

#[tokio::test]
async fn ui_sign_in_starts_a_new_http_only_lax_session_and_sign_out_ends_it() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, "ui_sign_in").await else {
        return;
    };
    let admin = app.actor("admin@example.jp").await;
    let org = app.org(App::Crm, "enterprise", &admin).await;
    let mut b = Browser::new(&app, "ja");

    let form = b.get("/sign-in").await;
    assert_eq!(form.status, 200);
    let csp = form.headers["content-security-policy"]
        .to_str()
        .expect("ASCII");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(form.headers["x-frame-options"], "DENY");
    let token_cookie = form
        .set_cookie("kizuna_sign_in")
        .expect("the form's token cookie");
    assert!(token_cookie.contains("HttpOnly") && token_cookie.contains("SameSite=Lax"));
    assert!(
        !token_cookie.contains("Secure"),
        "plain HTTP: {token_cookie}"
    );
    assert_eq!(b.cookies["kizuna_sign_in"], form.csrf());

    // A session id planted in the browser before sign-in is not the one after.
    b.cookies.insert("kizuna_session".into(), "planted".into());
    let csrf = form.csrf();
    let signed_in = b
        .post(
            "/sign-in",
            &[
                ("email", "admin@example.jp"),
                ("password", PASSWORD),
                ("csrf", &csrf),
                ("next", "/home"),
            ],
        )
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert_eq!(signed_in.location(), "/home");
    let session = signed_in
        .set_cookie("kizuna_session")
        .expect("a session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );
    assert_ne!(b.cookies["kizuna_session"], "planted");
    assert!(
        !b.cookies.contains_key("kizuna_sign_in"),
        "the form's token is used up"
    );

    let home = b.get("/home").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains(&org.name), "{}", home.body);
    assert!(
        home.body.contains("アプリ一覧"),
        "Japanese for a Japanese browser"
    );

    // Signing in again from the same browser ends the first session.
    let first = b.cookies["kizuna_session"].clone();
    assert_eq!(b.sign_in("admin@example.jp", PASSWORD).await.status, 303);
    let second = b.cookies["kizuna_session"].clone();
    assert_ne!(first, second);
    let mut stale = Browser::new(&app, "ja");
    stale.cookies.insert("kizuna_session".into(), first);
    let refused = stale.get("/home").await;
    assert_eq!(refused.status, 303);
    assert_eq!(refused.location(), "/sign-in?next=/home");

    // Sign-out needs the session's CSRF token.
    let page = b.get("/home").await;
    let without = b.post("/sign-out", &[]).await;
    assert_eq!(without.status, 403);
    assert!(
        without.body.contains("data-code=\"csrf_token_invalid\""),
        "{}",
        without.body
    );
    assert!(without.body.contains("CSRF"));
    assert_eq!(b.get("/home").await.status, 200, "still signed in");
    let out = b.post("/sign-out", &[("csrf", &page.csrf())]).await;
    assert_eq!((out.status, out.location()), (303, "/sign-in"));
    assert!(!b.cookies.contains_key("kizuna_session"));
    let mut replay = Browser::new(&app, "ja");
    replay.cookies.insert("kizuna_session".into(), second);
    assert_eq!(
        replay.get("/home").await.status,
        303,
        "the ended session is gone"
    );

    // Behind a TLS proxy, cookies are Secure.
    let mut tls = Browser::new(&app, "ja");
    tls.proto = Some("https");
    let answer = tls.sign_in("admin@example.jp", PASSWORD).await;
    let secure = answer
        .set_cookie("kizuna_session")
        .expect("a session cookie");
    assert!(secure.contains("Secure"), "{secure}");
}

#[tokio::test]
async fn ui_a_sign_in_without_its_csrf_token_is_refused_and_signs_nobody_in() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, "ui_sign_in_csrf").await else {
        return;
    };
    app.actor("admin@example.jp").await;
    let mut b = Browser::new(&app, "en");
    b.get("/sign-in").await;
    for csrf in ["", "forged"] {
        let refused = b
            .post(
                "/sign-in",
                &[
                    ("email", "admin@example.jp"),
                    ("password", PASSWORD),
                    ("csrf", csrf),
                ],
            )
            .await;
        assert_eq!(refused.status, 403);
        assert!(
            refused.body.contains("security token (CSRF)"),
            "{}",
            refused.body
        );
        assert!(!b.cookies.contains_key("kizuna_session"));
    }
}

#[tokio::test]
async fn ui_failed_sign_ins_are_limited_per_account() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, "ui_sign_in_limit").await else {
        return;
    };
    app.actor("admin@example.jp").await;
    app.actor("other@example.jp").await;
    let mut b = Browser::new(&app, "ja");
    for _ in 0..kizuna_web::ui::MAX_SIGN_IN_FAILURES {
        let wrong = b.sign_in("admin@example.jp", "wrong password").await;
        assert_eq!(wrong.status, 401);
        assert!(
            wrong
                .body
                .contains("メールアドレスまたはパスワードが正しくありません")
        );
    }
    // Now even the right password is refused, saying why and for how long.
    let limited = b.sign_in("ADMIN@example.jp ", PASSWORD).await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert!(limited.body.contains("data-code=\"too_many_sign_ins\""));
    assert!(limited.body.contains("15 分待って"), "{}", limited.body);
    assert!(!b.cookies.contains_key("kizuna_session"));
    // Another account is not held up.
    assert_eq!(b.sign_in("other@example.jp", PASSWORD).await.status, 303);
}

#[tokio::test]
async fn ui_pages_speak_the_browsers_language_until_the_user_chooses() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, "ui_language").await else {
        return;
    };
    app.actor("admin@example.jp").await;
    let english = Browser::new(&app, "en-US,en;q=0.9").get("/sign-in").await;
    assert!(english.body.contains("<html lang=\"en\">"));
    assert!(english.body.contains("Sign in to Kizuna"));
    let mut b = Browser::new(&app, "ja,en;q=0.5");
    assert!(b.get("/sign-in").await.body.contains("Kizuna にログイン"));
    b.sign_in("admin@example.jp", PASSWORD).await;
    let home = b.get("/home").await;
    assert!(home.body.contains("ログアウト"));
    let switched = b
        .post(
            "/settings/language",
            &[
                ("csrf", &home.csrf()),
                ("language", "en"),
                ("back", "/home"),
            ],
        )
        .await;
    assert_eq!((switched.status, switched.location()), (303, "/home"));
    let home = b.get("/home").await;
    assert!(home.body.contains("<html lang=\"en\">") && home.body.contains("Sign out"));
}

#[tokio::test]
async fn ui_records_render_escaped_and_another_orgs_pages_are_not_found() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, "ui_records").await else {
        return;
    };
    let admin = app.actor("admin@example.jp").await;
    let stranger = app.actor("stranger@example.jp").await;
    let org = app.org(App::Crm, "enterprise", &admin).await;
    let payload = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>";
    let (status, created) = app
        .post(
            &format!("/api/v1/orgs/{}/modules/Contacts/records", org.id),
            &admin.key,
            &json!({"fields": {"Last_Name": payload, "Email": "x@example.jp"}}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().expect("an id");
    let mut b = Browser::new(&app, "en");
    b.sign_in("admin@example.jp", PASSWORD).await;
    for path in [
        format!("/orgs/{}/modules/Contacts", org.id),
        format!("/orgs/{}/modules/Contacts/{id}", org.id),
        format!(
            "/orgs/{}/modules/Contacts?filter_field=Last_Name&filter_value={}",
            org.id, "%3Cscript%3E"
        ),
    ] {
        let page = b.get(&path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        assert!(!page.body.contains("<script>alert"), "{path}");
        assert!(!page.body.contains("<img src=x"), "{path}");
    }
    let list = b.get(&format!("/orgs/{}/modules/Contacts", org.id)).await;
    assert!(
        list.body
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;")
            || list.body.contains("&lt;script&gt;"),
        "{}",
        list.body
    );

    // An id that is not a number is a page not found, said as a page in
    // the reader's language.
    let mut ja = Browser::new(&app, "ja");
    ja.sign_in("admin@example.jp", PASSWORD).await;
    for path in [
        "/orgs/abc".to_string(),
        format!("/orgs/{}/modules/Contacts/x1", org.id),
        "/integrations/-/delete".to_string(),
    ] {
        let page = ja.get(&path).await;
        assert_eq!(page.status, 404, "{path}");
        assert!(
            page.body.contains("data-code=\"not_found\"") && page.body.contains("存在しない"),
            "{path}: {}",
            page.body
        );
    }

    let mut s = Browser::new(&app, "en");
    s.sign_in(&stranger.user.email, PASSWORD).await;
    for path in [
        format!("/orgs/{}", org.id),
        format!("/orgs/{}/modules/Contacts", org.id),
        format!("/orgs/{}/modules/Contacts/{id}", org.id),
    ] {
        let page = s.get(&path).await;
        assert_eq!(page.status, 404, "{path}");
        assert!(
            page.body.contains("data-code=\"not_found\""),
            "{path}: {}",
            page.body
        );
        assert!(
            !page.body.contains("alert(1)"),
            "{path}: nothing of the record"
        );
    }
}
