//! Sends the outbox (GEN-9) through the SMTP server given by `--smtp-url`.
//! Messages are claimed with a lease, so several server processes on one
//! PostgreSQL never send the same one at the same time; a process that dies
//! mid-send leaves the message to be claimed again when the lease runs out
//! (so a crash can, rarely, send a message twice, never lose it). A refused
//! delivery is retried with the sync worker's backoff and shows the server's
//! answer in the outbox; after `MAX_ATTEMPTS` it is marked failed.

use kizuna_connectors::smtp::Smtp;
use kizuna_store::{Mail, Store};
use serde_json::Value;
use std::time::Duration;

const POLL: Duration = Duration::from_secs(1);
/// Longer than a batch can take with every delivery timing out (5 × 30 s),
/// so no other process claims a message this one is still sending.
const LEASE: Duration = Duration::from_secs(300);
const BATCH: i64 = 5;
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Runs until the task is dropped; failures are logged and retried.
pub async fn run(store: Store, smtp: Smtp) {
    let owner = format!("mailer-{}", std::process::id());
    loop {
        match store
            .claim_mail(&owner, LEASE.as_millis() as i64, BATCH)
            .await
        {
            Ok(mails) => {
                for mail in &mails {
                    let (subject, body) = render(mail);
                    let sent = smtp.send(&mail.to_address, &subject, &body).await;
                    let retry = kizuna_sync::worker::backoff(mail.attempts, MAX_BACKOFF);
                    if let Err(e) = &sent {
                        tracing::warn!(mail = mail.id, "administrator mail not sent: {e}");
                    }
                    let failure = sent.err();
                    let failure = failure.as_deref().map(|e| (e, retry.as_millis() as i64));
                    if let Err(e) = store.finish_mail(mail.id, &owner, failure).await {
                        tracing::warn!(mail = mail.id, "outbox update failed: {e}");
                    }
                }
                if mails.len() as i64 == BATCH {
                    continue;
                }
            }
            Err(e) => tracing::warn!("outbox read failed: {e}"),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The subject and plain-text body: Japanese first (most of Kizuna's users
/// read it), then English, each with the cause, the fix and the code.
pub fn render(mail: &Mail) -> (String, String) {
    let text = |v: &Value, lang: &str| v[lang].as_str().unwrap_or_default().to_string();
    let subject = format!(
        "[Kizuna] {} / {}",
        text(&mail.subject.0, "ja"),
        text(&mail.subject.0, "en")
    );
    let rule = mail.rule.as_deref().unwrap_or("-");
    let body = format!(
        "{}\n\n対処: {}\nコード: {}（ルール {rule}）\n\n----\n\n{}\n\nFix: {}\nCode: {} (rule {rule})\n\n-- \nKizuna: この組織の管理者に送信されています。\nSent to the administrators of the org.\n",
        text(&mail.message.0, "ja"),
        text(&mail.fix.0, "ja"),
        mail.code,
        text(&mail.message.0, "en"),
        text(&mail.fix.0, "en"),
        mail.code,
    );
    (subject, body)
}
