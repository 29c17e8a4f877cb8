//! What needs an administrator's attention (GEN-9): an integration waiting
//! for the other side, a sync that could not write some records, a sync that
//! stopped or cannot run. Each becomes mail to the administrators of both
//! orgs, kept in the outbox (which the API shows) and sent by the mailer when
//! the server has an SMTP server. A topic is mailed once per window; the
//! history keeps every record, so nothing is lost by not mailing it twice.

use kizuna_domain::{Error, Result, Text};
use kizuna_store::{Integration, NewMail, Run, Store, User};
use serde_json::json;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

fn orgs(i: &Integration) -> Vec<i64> {
    std::iter::once(i.from_org).chain(i.to_org).collect()
}

/// A new integration waits for the other org's administrators (GEN-4).
pub async fn awaiting_enable(store: &Store, i: &Integration, by: &User) -> Result<()> {
    let Some(to_org) = i.to_org else {
        return Ok(());
    };
    let subject = Text::new(
        format!(
            "Integration {} ({}) waits for you to enable it",
            i.id, i.kind
        ),
        format!("連携 {}（{}）の有効化をお待ちしています", i.id, i.kind),
    );
    let message = Text::new(
        format!(
            "{} ({}) set up a {} integration (id {}) from org {} with your org {}. Nothing syncs until an administrator of your org enables it.",
            by.name, by.email, i.kind, i.id, i.from_org, to_org
        ),
        format!(
            "{}（{}）が組織 {} とあなたの組織 {} の {} 連携（ID {}）を設定しました。あなたの組織の管理者が有効にするまで、何も同期されません。",
            by.name, by.email, i.from_org, to_org, i.kind, i.id
        ),
    );
    let fix = Text::new(
        format!(
            "If you expect it, enable it: POST /api/v1/integrations/{}/enable. If not, ignore this mail or delete it: DELETE /api/v1/integrations/{}.",
            i.id, i.id
        ),
        format!(
            "心当たりがあれば有効にしてください: POST /api/v1/integrations/{}/enable。なければ、このメールを無視するか削除してください: DELETE /api/v1/integrations/{}。",
            i.id, i.id
        ),
    );
    let topic = format!("integration:{}:awaiting_enable", i.id);
    mail(
        store,
        &[to_org],
        &NewMail {
            topic: &topic,
            code: "integration_awaiting_enable",
            rule: Some("GEN-4"),
            subject: &subject,
            message: &message,
            fix: &fix,
            details: &json!({"integration_id": i.id, "from_org": i.from_org, "to_org": to_org, "created_by": by.id}),
            window_ms: DAY_MS,
        },
    )
    .await
}

/// After a run: records it could not write (GEN-8), or the refusal that
/// stopped it (the mass-delete guard). A database failure is not mailed:
/// the worker retries it, and the log has it.
pub async fn after_run(store: &Store, i: &Integration, run: &Run) -> Result<()> {
    if let Some(error) = run.error.as_ref().map(|e| &e.0)
        && error["code"] != "internal"
    {
        let text = |key: &str| -> Text {
            let at = |lang: &str| error[key][lang].as_str().unwrap_or_default().to_string();
            Text::new(at("en"), at("ja"))
        };
        let code = error["code"].as_str().unwrap_or("sync_stopped");
        let subject = Text::new(
            format!("Integration {} stopped: {code}", i.id),
            format!("連携 {} が停止しました: {code}", i.id),
        );
        let topic = format!("integration:{}:{code}", i.id);
        return mail(
            store,
            &orgs(i),
            &NewMail {
                topic: &topic,
                code,
                rule: error["rule"].as_str(),
                subject: &subject,
                message: &text("message"),
                fix: &text("fix"),
                details: &json!({"integration_id": i.id, "run_id": run.id}),
                window_ms: DAY_MS,
            },
        )
        .await;
    }
    if run.failed == 0 {
        return Ok(());
    }
    let (id, n, r) = (i.id, run.failed, run.id);
    let subject = Text::new(
        format!("Integration {id}: {n} records were not synced"),
        format!("連携 {id}: {n} 件のレコードが同期されませんでした"),
    );
    let message = Text::new(
        format!(
            "Run {r} of integration {id} ({}, {} {}) could not write {n} records. Each is in the sync history with its cause and fix; the rest of the run went on.",
            i.kind, run.data_type, run.direction
        ),
        format!(
            "連携 {id}（{}、{} {}）の実行 {r} で {n} 件のレコードを書き込めませんでした。各レコードは原因と対処とともに同期履歴にあります。残りのレコードは同期されました。",
            i.kind, run.data_type, run.direction
        ),
    );
    let fix = Text::new(
        format!(
            "Open GET /api/v1/integrations/{id}/history/{r}/items and correct each record named there: it syncs again when it next changes. Failures within the next hour are in the history only, not mailed again."
        ),
        format!(
            "GET /api/v1/integrations/{id}/history/{r}/items を開き、記載された各レコードを修正してください。次に変更されたときに再び同期されます。今後 1 時間の失敗は履歴にのみ記録され、再度メールは送られません。"
        ),
    );
    let topic = format!("integration:{id}:records_failed");
    mail(
        store,
        &orgs(i),
        &NewMail {
            topic: &topic,
            code: "records_failed",
            rule: Some("GEN-8"),
            subject: &subject,
            message: &message,
            fix: &fix,
            details: &json!({"integration_id": id, "run_id": r, "failed": n}),
            window_ms: HOUR_MS,
        },
    )
    .await
}

/// The worker could not run an integration that has work waiting: its
/// acting user was deactivated (GEN-10), it was stopped, …
pub async fn refused(store: &Store, i: &Integration, e: &Error) -> Result<()> {
    let subject = Text::new(
        format!("Integration {} cannot sync: {}", i.id, e.code),
        format!("連携 {} を同期できません: {}", i.id, e.code),
    );
    let topic = format!("integration:{}:{}", i.id, e.code);
    mail(
        store,
        &orgs(i),
        &NewMail {
            topic: &topic,
            code: e.code,
            rule: e.rule,
            subject: &subject,
            message: &e.message,
            fix: &e.fix,
            details: &json!({"integration_id": i.id, "cause": e.details}),
            window_ms: DAY_MS,
        },
    )
    .await
}

async fn mail(store: &Store, orgs: &[i64], mail: &NewMail<'_>) -> Result<()> {
    let queued = store.notify_admins(orgs, mail).await?;
    if queued > 0 {
        tracing::info!(topic = mail.topic, queued, "administrator mail queued");
    }
    Ok(())
}
