//! E-mails into the CRM through a mail connection, over real HTTP: kept
//! with the Contact, Lead or Deal they concern (MAIL-11), made a Case when
//! the sender is a Contact (MAIL-10), from one upload or an mbox file.

// Shared by the mail test binaries; each uses a part of it.
#[allow(dead_code)]
mod mail_world;

use kizuna_domain::App;
use kizuna_testkit::{Actor, Backend, TestApp, code};
use mail_world::*;
use serde_json::{Value, json};

struct World {
    app: TestApp,
    crm: i64,
    admin: Actor,
    id: i64,
}

async fn world(test: &str, settings: Value) -> Option<World> {
    let app = TestApp::spawn(Backend::Sqlite, test).await?;
    let admin = app.actor("owner@kizuna.example").await;
    let crm = app.org(App::Crm, "enterprise", &admin).await.id;
    let (status, body) = app
        .post(
            "/api/v1/integrations",
            &admin.key,
            &json!({"kind": "crm-mail", "from_org": crm, "settings": settings}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().expect("id");
    Some(World {
        app,
        crm,
        admin,
        id,
    })
}

impl World {
    async fn create(&self, module: &str, fields: Value) -> i64 {
        create(&self.app, self.crm, &self.admin.key, module, fields).await
    }

    async fn records(&self, module: &str) -> Vec<Value> {
        records(&self.app, self.crm, &self.admin.key, module).await
    }

    async fn upload(&self, path: &str, body: String) -> (u16, Value) {
        let r = self
            .app
            .http
            .post(
                self.app
                    .url(&format!("/api/v1/integrations/{}/{path}", self.id)),
            )
            .bearer_auth(&self.admin.key)
            .header("content-type", "message/rfc822")
            .body(body)
            .send()
            .await
            .expect("answers");
        let status = r.status().as_u16();
        (status, r.json().await.expect("JSON"))
    }

    async fn items(&self, run: &Value) -> Vec<Value> {
        let (_, body) = self
            .app
            .get(
                &format!(
                    "/api/v1/integrations/{}/history/{}/items",
                    self.id, run["id"]
                ),
                &self.admin.key,
            )
            .await;
        body["items"].as_array().expect("items").clone()
    }
}

fn mail(from: &str, to: &str, id: &str, subject: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: Wed, 01 Apr 2026 10:00:00 +0900\r\n\
         Message-ID: <{id}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
}

#[tokio::test]
async fn mail_11_an_email_goes_to_the_contact_it_concerns_and_is_there_once() {
    let Some(w) = world("mail_11_contact", json!({})).await else {
        return;
    };
    let taro = w
        .create(
            "Contacts",
            json!({"Last_Name": "Yamada", "Email": "taro@example.jp"}),
        )
        .await;
    let hanako = w
        .create(
            "Contacts",
            json!({"Last_Name": "Suzuki", "Email": "hanako@example.jp"}),
        )
        .await;
    // Received: the sender's Contact.
    let received = mail(
        "Taro <TARO@example.jp>",
        "owner@kizuna.example",
        "m1@example.jp",
        "見積もり",
        "お願いします",
    );
    let (status, body) = w.upload("emails", received.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(counts(&body["run"]), [1, 0, 0, 0, 0, 0]);
    // Sent by the connection's owner: the recipient's Contact.
    let sent = mail(
        "owner@kizuna.example",
        "Hanako <hanako@example.jp>",
        "m2@kizuna.example",
        "Re: 見積もり",
        "送付します",
    );
    let (status, _) = w.upload("emails", sent).await;
    assert_eq!(status, 200);
    let emails = w.records("Emails").await;
    assert_eq!(emails.len(), 2);
    let first = emails
        .iter()
        .find(|e| field(e, "Message_ID") == "m1@example.jp")
        .expect("m1");
    assert_eq!(first["fields"]["Contact"], taro);
    assert_eq!(field(first, "Direction"), "Received");
    assert_eq!(field(first, "Subject"), "見積もり");
    assert_eq!(field(first, "Body"), "お願いします");
    assert_eq!(field(first, "Sent_At"), "2026-04-01T01:00:00Z");
    let second = emails
        .iter()
        .find(|e| field(e, "Message_ID") == "m2@kizuna.example")
        .expect("m2");
    assert_eq!(second["fields"]["Contact"], hanako);
    assert_eq!(field(second, "Direction"), "Sent");
    // On the Contact's page, as a related list.
    let (_, related) = w
        .app
        .get(
            &format!(
                "/api/v1/orgs/{}/modules/Contacts/records/{taro}/related/Emails",
                w.crm
            ),
            &w.admin.key,
        )
        .await;
    assert_eq!(
        related["records"].as_array().map(Vec::len),
        Some(1),
        "{related}"
    );
    // Added again: there once.
    let (_, again) = w.upload("emails", received).await;
    assert_eq!(again["run"]["added"], 0, "{again}");
    assert_eq!(w.records("Emails").await.len(), 2);
}

#[tokio::test]
async fn mail_11_without_a_contact_the_setting_decides_a_lead_or_nothing() {
    let Some(w) = world("mail_11_unmatched", json!({})).await else {
        return;
    };
    // By default: a new Lead, then the same Lead.
    for n in 0..2 {
        let m = mail(
            "Newcomer <new@example.jp>",
            "owner@kizuna.example",
            &format!("n{n}@example.jp"),
            "Hello",
            "hi",
        );
        let (status, body) = w.upload("emails", m).await;
        assert_eq!(status, 200, "{body}");
    }
    let leads = w.records("Leads").await;
    assert_eq!(leads.len(), 1, "one Lead for one address");
    assert_eq!(field(&leads[0], "Email"), "new@example.jp");
    assert_eq!(field(&leads[0], "Last_Name"), "Newcomer");
    assert!(
        w.records("Emails")
            .await
            .iter()
            .all(|e| e["fields"]["Lead"] == leads[0]["id"])
    );
    // Set to skip: not added, and the history says why.
    let (status, body) = w
        .app
        .patch(
            &format!("/api/v1/integrations/{}/settings", w.id),
            &w.admin.key,
            &json!({"unmatched_email": "skip"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let m = mail(
        "stranger@example.jp",
        "owner@kizuna.example",
        "s@example.jp",
        "Offer",
        "buy",
    );
    let (_, body) = w.upload("emails", m).await;
    assert_eq!(counts(&body["run"]), [0, 0, 0, 0, 1, 0], "{body}");
    let skipped = &w.items(&body["run"]).await[0];
    assert_eq!(skipped["rule"], "MAIL-11");
    assert_eq!(skipped["code"], "no_matching_record");
    assert_eq!(w.records("Emails").await.len(), 2);
}

#[tokio::test]
async fn mail_11_a_person_picks_the_contact_lead_or_deal_it_goes_to() {
    let Some(w) = world("mail_11_picked", json!({})).await else {
        return;
    };
    let account = w.create("Accounts", json!({"Account_Name": "Acme"})).await;
    let deal = w
        .create(
            "Deals",
            json!({"Deal_Name": "Big one", "Stage": "Qualification", "Account": account}),
        )
        .await;
    let m = mail(
        "someone@example.jp",
        "owner@kizuna.example",
        "d@example.jp",
        "Terms",
        "see attached",
    );
    let (status, body) = w
        .upload(&format!("emails?record=Deals:{deal}"), m.clone())
        .await;
    assert_eq!(status, 200, "{body}");
    let emails = w.records("Emails").await;
    assert_eq!(emails[0]["fields"]["Deal"], deal);
    assert!(
        w.records("Leads").await.is_empty(),
        "a picked record needs no correspondent"
    );
    let (status, body) = w
        .upload(&format!("emails?record=Accounts:{account}"), m.clone())
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(code(&body), "invalid_email_record");
    let (status, _) = w.upload("emails?record=Deals:999999", m).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn mail_10_an_email_becomes_a_case_only_when_its_sender_is_a_contact() {
    let Some(w) = world("mail_10_case", json!({})).await else {
        return;
    };
    let taro = w
        .create(
            "Contacts",
            json!({"Last_Name": "Yamada", "Email": "taro@example.jp"}),
        )
        .await;
    let m = mail(
        "Taro <taro@example.jp>",
        "support@kizuna.example",
        "c1@example.jp",
        "動かない",
        "ログインできません",
    );
    let (status, body) = w.upload("emails?as=case", m.clone()).await;
    assert_eq!(status, 200, "{body}");
    let cases = w.records("Cases").await;
    assert_eq!(cases.len(), 1);
    let c = &cases[0];
    assert_eq!(field(c, "Email"), "taro@example.jp");
    assert_eq!(c["fields"]["Contact_Name"], taro);
    assert_eq!(field(c, "Subject"), "動かない");
    assert_eq!(field(c, "Description"), "ログインできません");
    // Twice: one Case.
    w.upload("emails?as=case", m).await;
    assert_eq!(w.records("Cases").await.len(), 1);
    // A sender who is no Contact: refused, saying so, and nothing written.
    let stranger = mail(
        "who@example.jp",
        "support@kizuna.example",
        "c2@example.jp",
        "?",
        "?",
    );
    let (status, body) = w.upload("emails?as=case", stranger).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(code(&body), "no_contact_for_case");
    assert_eq!(body["error"]["rule"], "MAIL-10");
    assert!(
        body["error"]["message"]["ja"]
            .as_str()
            .expect("ja")
            .contains("who@example.jp")
    );
    assert_eq!(w.records("Cases").await.len(), 1);
}

#[tokio::test]
async fn mail_11_an_mbox_file_is_imported_a_message_at_a_time_and_a_bad_message_fails_alone() {
    let Some(w) = world("mail_11_mbox", json!({})).await else {
        return;
    };
    w.create(
        "Contacts",
        json!({"Last_Name": "Yamada", "Email": "taro@example.jp"}),
    )
    .await;
    let mbox = format!(
        "From taro@example.jp Wed Apr  1 10:00:00 2026\r\n{}\r\nFrom x Wed Apr  1 10:00:00 2026\r\nnot a message at all\r\n\r\n\
         From taro@example.jp Wed Apr  1 11:00:00 2026\r\n{}",
        mail(
            "taro@example.jp",
            "owner@kizuna.example",
            "a@example.jp",
            "one",
            "1"
        ),
        mail(
            "taro@example.jp",
            "owner@kizuna.example",
            "b@example.jp",
            "two",
            "2"
        ),
    );
    let (status, body) = w.upload("import?name=inbox.mbox", mbox).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(counts(&body["run"]), [2, 0, 0, 0, 0, 1], "{body}");
    assert_eq!(body["run"]["data_type"], "email");
    let failed = w
        .items(&body["run"])
        .await
        .into_iter()
        .find(|i| i["outcome"] == "failed")
        .expect("the bad one");
    assert_eq!(failed["details"]["item"]["message"], 2);
}

#[tokio::test]
async fn mail_11_a_message_sent_through_the_users_smtp_server_is_kept_with_its_recipient() {
    let Some(mut sink) = kizuna_testkit::smtp::SmtpSink::start("mail_11_send") else {
        return;
    };
    // aiosmtpd takes mail without a login on a plain connection.
    let settings = json!({"smtp": {"host": "127.0.0.1", "port": sink.port, "security": "none",
        "from": "Owner <owner@kizuna.example>"}});
    let Some(w) = world("mail_11_send", settings).await else {
        return;
    };
    let hanako = w
        .create(
            "Contacts",
            json!({"Last_Name": "Suzuki", "Email": "hanako@example.jp"}),
        )
        .await;
    let (status, shown) = w
        .app
        .get(&format!("/api/v1/integrations/{}", w.id), &w.admin.key)
        .await;
    assert_eq!(status, 200);
    assert!(!shown.to_string().contains("smtp secret"), "{shown}");
    let send = json!({"to": ["Hanako <hanako@example.jp>"], "subject": "お見積もり", "body": "添付のとおりです。"});
    let (status, body) = w
        .app
        .post(
            &format!("/api/v1/integrations/{}/send", w.id),
            &w.admin.key,
            &send,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["run"]["added"], 1);
    let got = sink.wait_for(1, std::time::Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "the SMTP server received it");
    let raw = String::from_utf8_lossy(&got[0]);
    assert!(raw.contains("hanako@example.jp"), "{raw}");
    let emails = w.records("Emails").await;
    assert_eq!(emails.len(), 1);
    assert_eq!(field(&emails[0], "Direction"), "Sent");
    assert_eq!(emails[0]["fields"]["Contact"], hanako);
    assert_eq!(field(&emails[0], "Subject"), "お見積もり");
    assert!(!field(&emails[0], "Message_ID").is_empty());
    // The server down: refused, nothing kept.
    sink.stop();
    let (status, body) = w
        .app
        .post(
            &format!("/api/v1/integrations/{}/send", w.id),
            &w.admin.key,
            &send,
        )
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(code(&body), "smtp_send_failed");
    assert_eq!(w.records("Emails").await.len(), 1);
}

#[tokio::test]
async fn mail_11_the_sent_folder_is_added_automatically_and_a_renumbered_folder_adds_nothing_twice()
{
    use kizuna_testkit::dovecot::{Dovecot, PASSWORD, USER};
    let Some(imap) = Dovecot::start("mail_11_imap") else {
        return;
    };
    let settings = json!({"imap": {"host": "127.0.0.1", "port": imap.port, "tls": false,
        "username": USER, "password": PASSWORD, "sent_folder": "Sent"}});
    let Some(w) = world("mail_11_imap", settings).await else {
        return;
    };
    let taro = w
        .create(
            "Contacts",
            json!({"Last_Name": "Yamada", "Email": "taro@example.jp"}),
        )
        .await;
    imap.create("Sent");
    let sent = [
        mail(
            "owner@kizuna.example",
            "taro@example.jp",
            "s1@kizuna.example",
            "Quote",
            "attached",
        ),
        mail(
            "owner@kizuna.example",
            "Taro <taro@example.jp>",
            "s2@kizuna.example",
            "Re: Quote",
            "thanks",
        ),
    ];
    for m in &sent {
        imap.append("Sent", m);
    }
    let sync = || async {
        let (status, body) = w
            .app
            .post(
                &format!("/api/v1/integrations/{}/sync", w.id),
                &w.admin.key,
                &json!({}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["runs"]
            .as_array()
            .expect("runs")
            .iter()
            .map(|r| r["added"].as_i64().unwrap_or_default())
            .sum::<i64>()
    };
    assert_eq!(sync().await, 2);
    let emails = w.records("Emails").await;
    assert_eq!(emails.len(), 2);
    assert!(
        emails
            .iter()
            .all(|e| e["fields"]["Contact"] == taro && field(e, "Direction") == "Sent")
    );
    assert_eq!(sync().await, 0, "nothing new");
    imap.append(
        "Sent",
        &mail(
            "owner@kizuna.example",
            "taro@example.jp",
            "s3@kizuna.example",
            "Invoice",
            "due",
        ),
    );
    assert_eq!(sync().await, 1);
    // The server renumbers the folder (a new UIDVALIDITY): read again from
    // the start, and found by Message-ID.
    imap.delete("Sent");
    imap.create("Sent");
    for m in &sent {
        imap.append("Sent", m);
    }
    assert_eq!(sync().await, 0, "nothing imported twice");
    assert_eq!(w.records("Emails").await.len(), 3);
    // A message picked from the inbox.
    imap.append(
        "INBOX",
        &mail(
            "Taro <taro@example.jp>",
            "owner@kizuna.example",
            "i1@example.jp",
            "Question",
            "how much?",
        ),
    );
    let (status, body) = w
        .app
        .post(
            &format!("/api/v1/integrations/{}/emails?imap=INBOX&uid=1", w.id),
            &w.admin.key,
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["run"]["added"], 1);
    let picked = w
        .records("Emails")
        .await
        .into_iter()
        .find(|e| field(e, "Message_ID") == "i1@example.jp")
        .expect("the picked message");
    assert_eq!(field(&picked, "Direction"), "Received");
    assert_eq!(picked["fields"]["Contact"], taro);
    let (status, _) = w
        .app
        .post(
            &format!("/api/v1/integrations/{}/emails?imap=INBOX&uid=99", w.id),
            &w.admin.key,
            &json!({}),
        )
        .await;
    assert_eq!(status, 404);
    // A UID that is absent or not a number is refused by name, nothing added.
    let kept = w.records("Emails").await.len();
    for (query, error) in [
        ("imap=INBOX", "query_parameter_missing"),
        ("imap=INBOX&uid=abc", "invalid_parameter"),
    ] {
        let (status, body) = w
            .app
            .post(
                &format!("/api/v1/integrations/{}/emails?{query}", w.id),
                &w.admin.key,
                &json!({}),
            )
            .await;
        assert_eq!((status, code(&body)), (400, error), "{body}");
        assert_eq!(body["error"]["details"]["parameter"], "uid", "{body}");
        assert!(
            body["error"]["fix"]["ja"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        );
    }
    assert_eq!(w.records("Emails").await.len(), kept);
}
