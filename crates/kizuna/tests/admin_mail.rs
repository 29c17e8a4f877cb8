//! Administrator mail in the real binary (GEN-9): `kizuna serve --smtp-url`
//! sends the outbox through a real SMTP server process (aiosmtpd) that the
//! test starts, in Japanese and English; a server that is down is retried
//! and its answer shown in the outbox until the mail goes through.

// Shared by the CLI test binaries; each uses a part of it.
#[allow(dead_code)]
mod cli_support;

use cli_support::{Cli, Server, path_str};
use kizuna_domain::IntegrationKind;
use kizuna_domain::integration::Action;
use kizuna_store::{Origin, Store};
use kizuna_sync::lifecycle;
use kizuna_testkit::smtp::SmtpSink;
use mail_parser::MessageParser;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

struct Parsed {
    to: String,
    from: String,
    subject: String,
    body: String,
}

fn parse(raw: &[u8]) -> Parsed {
    let m = MessageParser::default()
        .parse(raw)
        .expect("the message parses");
    let first = |list: Option<&mail_parser::Address>| {
        list.and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap_or_default()
            .to_string()
    };
    Parsed {
        to: first(m.to()),
        from: first(m.from()),
        subject: m.subject().unwrap_or_default().to_string(),
        body: m.body_text(0).unwrap_or_default().into_owned(),
    }
}

/// The org's outbox as its administrator sees it.
async fn outbox(server: &Server, key: &str, org: i64) -> Value {
    server
        .get_ok(key, &format!("/api/v1/orgs/{org}/outbox"))
        .await
}

/// Waits until `check` holds for the org's outbox; returns it.
async fn outbox_until(
    server: &Server,
    key: &str,
    org: i64,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let body = outbox(server, key, org).await;
        if check(&body) {
            return body;
        }
        assert!(
            started.elapsed() < WAIT,
            "the outbox never got there: {body:#}\n--- server log ---\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn messages_with_code<'a>(outbox: &'a Value, code: &str) -> Vec<&'a Value> {
    outbox["messages"]
        .as_array()
        .map(|ms| ms.iter().filter(|m| m["code"] == code).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn gen_9_administrator_mail_goes_out_through_smtp_and_a_server_that_is_down_is_retried() {
    let test = "gen_9_administrator_mail_goes_out_through_smtp";
    let Some(mut smtp) = SmtpSink::start(test) else {
        return;
    };
    let cli = Cli::sqlite();
    cli.create_user("crm-admin@example.com", "CRM Admin").await;
    cli.create_user("events-admin@example.com", "Events Admin")
        .await;
    let crm = cli
        .create_org("crm", "CRM", "standard", "crm-admin@example.com")
        .await;
    let events = cli
        .create_org("events", "Events", "standard", "events-admin@example.com")
        .await;
    cli.add_member(events, "crm-admin@example.com", "member")
        .await;
    let crm_key = cli.create_key("crm-admin@example.com").await;
    let events_key = cli.create_key("events-admin@example.com").await;

    let mut args = vec!["serve".to_string()];
    args.extend(cli.data_args());
    args.extend([
        "--smtp-url".to_string(),
        smtp.url(),
        "--mail-from".to_string(),
        "Kizuna <kizuna@example.com>".to_string(),
    ]);
    let server = Server::start(cli.tmp.path(), &args).await;

    // The CRM's administrator sets the integration up: the Events org's
    // administrator is asked, by mail, to enable it (GEN-4).
    let db = cli.tmp.path().join("data").join("kizuna.db");
    let store = Store::open(&path_str(&db)).await.expect("the database");
    let crm_admin = store
        .require_user_by_email("crm-admin@example.com")
        .await
        .expect("the CRM admin");
    let events_admin = store
        .require_user_by_email("events-admin@example.com")
        .await
        .expect("the Events admin");
    let i = lifecycle::create(
        &store,
        &crm_admin,
        IntegrationKind::CrmEvents,
        crm,
        Some(events),
        &json!({}),
    )
    .await
    .expect("set up");

    let got = smtp.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1, "one mail: {}", server.log());
    let mail = parse(&got[0]);
    assert_eq!(mail.to, "events-admin@example.com");
    assert_eq!(mail.from, "kizuna@example.com");
    assert!(
        mail.subject.contains("有効化") && mail.subject.contains("enable"),
        "both languages in the subject: {}",
        mail.subject
    );
    assert!(
        mail.body
            .contains(&format!("POST /api/v1/integrations/{}/enable", i.id))
            && mail.body.contains("crm-admin@example.com")
            && mail.body.contains("対処")
            && mail.body.contains("Fix:"),
        "the cause and the fix in both languages: {}",
        mail.body
    );
    let sent = outbox_until(&server, &events_key, events, |o| {
        messages_with_code(o, "integration_awaiting_enable")
            .first()
            .is_some_and(|m| m["state"] == "sent")
    })
    .await;
    assert_eq!(sent["delivery"]["smtp"], smtp.url());
    let m = messages_with_code(&sent, "integration_awaiting_enable")[0];
    assert_eq!(m["to"], "events-admin@example.com");
    assert_eq!(m["rule"], "GEN-4");
    assert!(m["sent_at"].is_string(), "{m}");

    // The SMTP server goes down; the server's worker syncs an attendee that
    // cannot be written, which both administrators are told about. The
    // outbox shows the failed attempt.
    smtp.stop();
    lifecycle::act(&store, &events_admin, i.id, Action::Enable)
        .await
        .expect("enabled");
    lifecycle::set_mapping(
        &store,
        &crm_admin,
        i.id,
        Some(&json!([
            {"source": "Last_Name", "target": "Last_Name"},
            {"source": "Email", "target": "Email"},
            {"source": "Company", "target": "City"}
        ])),
    )
    .await
    .expect("the mapping");
    let event_module = store.module(events, "Events").await.expect("Events");
    let event = store
        .create_records(
            events,
            &event_module,
            vec![
                json!({"Event_Name": "Expo", "Status": "Live"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            ],
            Origin::System,
        )
        .await
        .expect("an event")[0]
        .id;
    let attendees = store.module(events, "Attendees").await.expect("Attendees");
    store
        .create_records(
            events,
            &attendees,
            vec![
                json!({"Email": "long@example.com", "Last_Name": "Ito", "Company": "K".repeat(40), "Event": event, "Status": "registered"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            ],
            Origin::System,
        )
        .await
        .expect("an attendee");
    let refused = outbox_until(&server, &crm_key, crm, |o| {
        messages_with_code(o, "records_failed")
            .first()
            .is_some_and(|m| m["last_error"].is_string())
    })
    .await;
    let m = messages_with_code(&refused, "records_failed")[0];
    assert_eq!(m["to"], "crm-admin@example.com");
    assert_eq!(m["state"], "queued", "{m}");
    assert!(m["attempts"].as_i64() >= Some(1), "{m}");
    assert!(
        m["last_error"]
            .as_str()
            .is_some_and(|e| e.contains(&format!("127.0.0.1:{}", smtp.port))),
        "the outbox names the server that refused: {m}"
    );
    let failed_run = store
        .run(m["details"]["run_id"].as_i64().expect("the run"))
        .await
        .expect("read the run")
        .expect("the run is in the history");
    assert_eq!((failed_run.integration_id, failed_run.failed), (i.id, 1));

    // Back up: both administrators get it on the next attempt.
    smtp.restart();
    let got = smtp.wait_for(3, WAIT + WAIT).await;
    assert_eq!(got.len(), 3, "{}", server.log());
    let mut to: Vec<String> = got[1..].iter().map(|raw| parse(raw).to).collect();
    to.sort();
    assert_eq!(to, ["crm-admin@example.com", "events-admin@example.com"]);
    let body = parse(&got[2]).body;
    assert!(
        body.contains(&format!(
            "/api/v1/integrations/{}/history/{}/items",
            i.id, failed_run.id
        )),
        "the mail says where the failed record is: {body}"
    );
    outbox_until(&server, &crm_key, crm, |o| {
        messages_with_code(o, "records_failed")
            .first()
            .is_some_and(|m| m["state"] == "sent" && m["attempts"].as_i64() >= Some(2))
    })
    .await;
}

#[tokio::test]
async fn gen_9_a_bad_smtp_setting_is_refused_at_start_naming_the_option() {
    let cli = Cli::sqlite();
    let out = cli
        .run(&["serve", "--smtp-url", "http://127.0.0.1:25"], None)
        .await
        .refusal("smtp_url_invalid");
    assert!(out.stderr.contains("--smtp-url"), "{out}");
    let out = cli
        .run(
            &[
                "serve",
                "--smtp-url",
                "smtp://127.0.0.1:25",
                "--mail-from",
                "not an address",
            ],
            None,
        )
        .await
        .refusal("mail_from_invalid");
    assert!(out.stderr.contains("--mail-from"), "{out}");
}
