//! A mail connection against servers it must not trust: an address on
//! loopback or a private network (by literal, by name, IPv4 inside IPv6)
//! refused unless the operator allows it, and DAV XML that declares a
//! DOCTYPE refused with nothing written.

// Shared by the mail test binaries; each uses a part of it.
#[allow(dead_code)]
mod mail_world;

use kizuna_testkit::code;
use kizuna_testkit::radicale::{PASSWORD, USER, vcard};
use mail_world::*;
use serde_json::json;

/// The mail context of a server started without `--allow-private-addresses`.
fn public_only(key_dir: &std::path::Path) -> kizuna_sync::mail::MailContext {
    kizuna_sync::mail::MailContext::new(key_dir.join("k"), false)
}

#[tokio::test]
async fn mail_a_server_on_a_loopback_or_private_address_is_refused_unless_the_operator_allows_it() {
    let Some(w) = carddav_world("mail_private_address").await else {
        return;
    };
    w.dav
        .put_card(&w.book, "a.vcf", &vcard("a", "Aoki", "Ai", None, &[]))
        .await;
    let id = w.connect(json!({})).await;
    let keys = tempfile::tempdir().expect("dir");
    let strict = public_only(keys.path());
    // The connection's password was sealed with the test server's key: give
    // the strict context a connection of its own with the same server.
    let sealed = kizuna_sync::mail::settings::merge(
        &json!({}),
        &json!({"carddav": {"url": w.dav.url(), "username": USER, "password": PASSWORD, "address_book": w.book}}),
        &strict.key().expect("key"),
    )
    .expect("valid");
    w.app
        .store
        .set_integration_config(id, &sealed, &json!([]))
        .await
        .expect("saved");
    for url in [
        w.dav.url(),
        // By name: what it resolves to counts.
        format!("http://localhost:{}/", w.dav.port),
        // IPv4 inside IPv6.
        format!("http://[::ffff:127.0.0.1]:{}/", w.dav.port),
    ] {
        let s = kizuna_sync::mail::settings::merge(
            &sealed,
            &json!({"carddav": {"url": url, "username": USER, "address_book": w.book}}),
            &strict.key().expect("key"),
        )
        .expect("valid");
        w.app
            .store
            .set_integration_config(id, &s, &json!([]))
            .await
            .expect("saved");
        let e = kizuna_sync::mail::dav::sync(
            &w.app.store,
            &strict,
            id,
            kizuna_sync::engine::Trigger::Api,
            false,
        )
        .await
        .expect_err("refused");
        assert_eq!(e.code, "dav_server_error", "{url}: {e:?}");
        assert!(
            e.message.en.contains("loopback or private"),
            "{url}: {}",
            e.message.en
        );
    }
    assert!(w.contacts().await.is_empty(), "nothing was read");
}

#[tokio::test]
async fn mail_dav_xml_with_a_doctype_is_refused_and_writes_nothing() {
    let Some(w) = carddav_world("mail_doctype").await else {
        return;
    };
    // A hostile server: every answer is a multistatus that declares an
    // entity (the "billion laughs" shape) and uses it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = vec![0u8; 65536];
            let _ = s.read(&mut buf).await;
            let body = r#"<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><d:multistatus xmlns:d="DAV:"><d:response><d:href>/x/&b;.vcf</d:href><d:propstat><d:prop><d:getetag>"1"</d:getetag></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response><d:sync-token>t</d:sync-token></d:multistatus>"#;
            let head = format!(
                "HTTP/1.1 207 Multi-Status\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(body.as_bytes()).await;
        }
    });
    let (status, body) = w
        .app
        .post(
            "/api/v1/integrations",
            &w.rep.key,
            &json!({"kind": "crm-mail", "from_org": w.crm, "settings": {"carddav": {
                "url": format!("http://127.0.0.1:{port}/"), "username": "u", "password": "p", "address_book": "/x/"
            }}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().expect("id");
    let (status, body) = w
        .app
        .post(
            &format!("/api/v1/integrations/{id}/sync"),
            &w.rep.key,
            &json!({}),
        )
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(code(&body), "dav_server_error");
    assert!(
        body["error"]["message"]["en"]
            .as_str()
            .expect("en")
            .contains("DTD"),
        "{body}"
    );
    assert!(w.contacts().await.is_empty());
    let (_, history) = w
        .app
        .get(&format!("/api/v1/integrations/{id}/history"), &w.rep.key)
        .await;
    assert_eq!(
        history["runs"][0]["state"], "failed",
        "the history says it: {history}"
    );
}
