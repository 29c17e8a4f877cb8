//! The reasons the history gives for CRM ⇄ Events records, each with its
//! cause and fix in both languages.

use kizuna_domain::{Error, Kind, Text};
use kizuna_store::{Org, Record};
use serde_json::{Value, json};

pub(super) fn currency_not_set(crm: &Org) -> Error {
    Error::new(
        Kind::BadInput,
        "currency_not_set",
        Text::new(
            format!("The event's budget and expenses were not copied to its Campaign: the CRM org {} has no currency set.", crm.name),
            format!("CRM の組織 {} に通貨が設定されていないため、イベントの予算と経費はキャンペーンにコピーされませんでした。", crm.name),
        ),
        Text::new(
            format!("Set the currency in the CRM's organisation info (PATCH /api/v1/orgs/{} {{\"currency\": \"JPY\"}}); the next change to the event brings its financial fields.", crm.id),
            format!("CRM の組織情報で通貨を設定してください（PATCH /api/v1/orgs/{} {{\"currency\": \"JPY\"}}）。次にイベントが変更されたときに金額項目が反映されます。", crm.id),
        ),
    )
    .with_rule("EVT-11")
    .with_details(json!({"crm_org": crm.id}))
}

pub(super) fn status_not_synced(a: &Record, trigger: &str) -> Error {
    let status = a.fields.get("Status").and_then(Value::as_str).unwrap_or("");
    Error::new(
        Kind::BadInput,
        "attendee_status_not_synced",
        Text::new(
            format!("Attendee {} has status {status}; this integration syncs attendees from status {trigger} on.", a.id),
            format!("参加者 {} のステータスは {status} です。この連携はステータス {trigger} 以降の参加者を同期します。", a.id),
        ),
        Text::new(
            "Change the attendee's status, or the integration's trigger_status setting.",
            "参加者のステータスか、連携の trigger_status 設定を変更してください。",
        ),
    )
    .with_rule("EVT-8")
    .with_details(json!({"status": status, "trigger_status": trigger}))
}

/// Attendee `a` tied to the CRM's `module` record `id`, which holds its e-mail.
pub(super) fn duplicate_email(a: &Record, module: &str, id: i64, this_run: bool) -> Error {
    let email = a.fields.get("Email").and_then(Value::as_str).unwrap_or("");
    let (en, ja) = if this_run {
        (
            " (added by this sync for another attendee)",
            "（この同期で別の参加者から追加）",
        )
    } else {
        ("", "")
    };
    Error::new(
        Kind::Conflict,
        "duplicate_email",
        Text::new(
            format!("Attendee {} was not added: {email} is already in the CRM as {module} {id}{en}; the attendee is tied to it.", a.id),
            format!("参加者 {} は追加されませんでした: {email} は CRM の {module} {id} に既にあります{ja}。参加者はそのレコードに関連付けられました。", a.id),
        ),
        Text::new(
            "Nothing to do; to keep them apart, change one of the e-mail addresses.",
            "対応は不要です。別にしたい場合は、どちらかのメールアドレスを変更してください。",
        ),
    )
    .with_rule("EVT-7")
    .with_details(json!({"email": email, "module": module, "id": id}))
}

pub(super) fn event_kept(event: i64) -> Error {
    Error::new(
        Kind::Conflict,
        "event_kept",
        Text::new(
            format!("The Campaign was deleted; its event {event} was kept, since it may have attendees and orders."),
            format!("キャンペーンは削除されましたが、参加者や注文がある可能性があるため、イベント {event} は残しました。"),
        ),
        Text::new(
            "Delete the event in the Events app if it is no longer wanted.",
            "不要であれば、イベントアプリでイベントを削除してください。",
        ),
    )
    .with_rule("EVT-14")
    .with_details(json!({"event": event}))
}

pub(super) fn kept_changed_in_crm(r: &Record, attendee: i64) -> Error {
    Error::new(
        Kind::Conflict,
        "kept_changed_in_crm",
        Text::new(
            format!("Attendee {attendee} no longer syncs, but {} {} was changed in the CRM since it was added, so it was kept.", r.module, r.id),
            format!("参加者 {attendee} は同期対象外になりましたが、{} {} は追加後に CRM で変更されているため残しました。", r.module, r.id),
        ),
        Text::new(
            "Delete the record in the CRM if it is no longer wanted.",
            "不要であれば、CRM でレコードを削除してください。",
        ),
    )
    .with_details(json!({"module": r.module, "id": r.id}))
}
