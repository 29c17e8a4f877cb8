//! Mail to administrators (GEN-9): queued here, shown by the API, and sent
//! by the mailer when the server has an SMTP server to send through. One row
//! per recipient; a topic (what the mail is about) is mailed at most once per
//! window, so a problem that recurs every few seconds does not flood anyone.

use crate::db::{Dialect, db_error};
use crate::{Json, Store, now_ms};
use kizuna_domain::{Result, Text};
use serde::Serialize;
use serde_json::Value;

/// A message to queue for the administrators of some orgs.
#[derive(Debug, Clone)]
pub struct NewMail<'a> {
    /// What it is about, e.g. `integration:7:records_failed`.
    pub topic: &'a str,
    pub code: &'a str,
    pub rule: Option<&'a str>,
    pub subject: &'a Text,
    pub message: &'a Text,
    pub fix: &'a Text,
    pub details: &'a Value,
    /// The same topic is not queued again within this many milliseconds.
    pub window_ms: i64,
}

/// One message to one administrator, and how its delivery stands.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Mail {
    pub id: i64,
    pub org_id: i64,
    #[serde(rename = "to")]
    pub to_address: String,
    pub topic: String,
    pub code: String,
    pub rule: Option<String>,
    pub subject: Json<Value>,
    pub message: Json<Value>,
    pub fix: Json<Value>,
    pub details: Json<Value>,
    /// queued, sending, sent, or failed (given up after `MAX_ATTEMPTS`).
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

const MAIL_COLUMNS: &str = "id, org_id, to_address, topic, code, rule, subject, message, fix, \
     details, state, attempts, last_error, created_at, sent_at";

/// Attempts before a message is marked failed and no longer tried.
pub const MAX_ATTEMPTS: i64 = 10;

impl Store {
    /// Queues `mail` for every active administrator of each org in `orgs`,
    /// unless that org already got the same topic within the window.
    /// Returns how many messages were queued.
    pub async fn notify_admins(&self, orgs: &[i64], mail: &NewMail<'_>) -> Result<u64> {
        let now = now_ms();
        let mut tx = self.db.begin().await?;
        let mut queued = 0;
        for &org in orgs {
            queued += tx
                .x()
                .execute(
                    "INSERT INTO outbox (org_id, user_id, to_address, topic, code, rule, subject, \
                     message, fix, details, state, send_after, created_at) \
                     SELECT m.org_id, u.id, u.email, $2, $3, $4, $5, $6, $7, $8, 'queued', $9, $9 \
                     FROM org_members m JOIN users u ON u.id = m.user_id \
                     WHERE m.org_id = $1 AND m.role = 'administrator' AND u.active = $10 \
                     AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.org_id = $1 AND o.topic = $2 \
                                     AND o.created_at > $11)",
                    &crate::args![
                        org,
                        mail.topic,
                        mail.code,
                        mail.rule.map(str::to_string),
                        serde_json::to_value(mail.subject).unwrap_or_default(),
                        serde_json::to_value(mail.message).unwrap_or_default(),
                        serde_json::to_value(mail.fix).unwrap_or_default(),
                        mail.details.clone(),
                        now,
                        true,
                        now - mail.window_ms,
                    ],
                )
                .await
                .map_err(db_error)?;
        }
        tx.commit().await?;
        Ok(queued)
    }

    /// An org's messages, newest first: up to `limit` older than `before`.
    pub async fn outbox(&self, org: i64, before: Option<i64>, limit: i64) -> Result<Vec<Mail>> {
        self.db
            .x()
            .fetch_all(
                &format!(
                    "SELECT {MAIL_COLUMNS} FROM outbox WHERE org_id = $1 AND id < $2 \
                     ORDER BY id DESC LIMIT $3"
                ),
                &crate::args![org, before.unwrap_or(i64::MAX), limit],
            )
            .await
            .map_err(db_error)
    }

    /// Takes up to `limit` messages that are due (or whose sender died
    /// mid-send) for `owner` to send within `lease_ms`.
    pub async fn claim_mail(&self, owner: &str, lease_ms: i64, limit: i64) -> Result<Vec<Mail>> {
        let now = now_ms();
        let due =
            "((state = 'queued' AND send_after <= $3) OR (state = 'sending' AND lease_until < $3))";
        let lock = match self.db.dialect() {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let sql = format!(
            "UPDATE outbox SET state = 'sending', lease_owner = $1, lease_until = $2, \
             attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM outbox WHERE {due} ORDER BY id LIMIT $4{lock}) AND {due} \
             RETURNING {MAIL_COLUMNS}"
        );
        let mut tx = self.db.begin().await?;
        let mails = tx
            .x()
            .fetch_all(&sql, &crate::args![owner, now + lease_ms, now, limit])
            .await
            .map_err(db_error)?;
        tx.commit().await?;
        Ok(mails)
    }

    /// Ends a claimed message's attempt: sent, or (with the error) queued
    /// again after `retry_in_ms`, or failed for good after `MAX_ATTEMPTS`.
    pub async fn finish_mail(
        &self,
        id: i64,
        owner: &str,
        failure: Option<(&str, i64)>,
    ) -> Result<()> {
        let now = now_ms();
        let done = match failure {
            None => {
                self.db
                    .write()
                    .await
                    .x()
                    .execute(
                        "UPDATE outbox SET state = 'sent', sent_at = $1, last_error = NULL, \
                         lease_owner = NULL, lease_until = NULL WHERE id = $2 AND lease_owner = $3",
                        &crate::args![now, id, owner],
                    )
                    .await
            }
            Some((error, retry_in_ms)) => {
                self.db
                    .write()
                    .await
                    .x()
                    .execute(
                        "UPDATE outbox SET state = CASE WHEN attempts >= $4 THEN 'failed' ELSE 'queued' END, \
                         send_after = $1, last_error = $5, lease_owner = NULL, lease_until = NULL \
                         WHERE id = $2 AND lease_owner = $3",
                        &crate::args![now + retry_in_ms, id, owner, MAX_ATTEMPTS, error],
                    )
                    .await
            }
        };
        done.map_err(db_error)?;
        Ok(())
    }

    /// Removes messages made before `before` (kept as long as the sync
    /// history), whatever became of them — also those never sent because the
    /// server has no SMTP server — except one being sent right now.
    pub async fn purge_outbox(&self, before: i64) -> Result<u64> {
        self.db
            .write()
            .await
            .x()
            .execute(
                "DELETE FROM outbox WHERE state <> 'sending' AND created_at < $1",
                &crate::args![before],
            )
            .await
            .map_err(db_error)
    }
}
