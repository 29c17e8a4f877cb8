//! The history's words for two-way pairs.

use super::Side;
use kizuna_domain::{Error, Kind, Text};
use serde_json::json;

/// A linked record whose twin was deleted (and not restored with it).
pub(crate) fn twin_gone(module: &str, id: i64, source_module: &str, source_id: i64) -> Error {
    Error::new(
        Kind::NotFound,
        "linked_record_deleted",
        Text::new(
            format!("{source_module} {source_id} is linked to {module} {id}, which was deleted; it is not created again."),
            format!("{source_module} {source_id} は削除された {module} {id} にリンクされているため、再作成しません。"),
        ),
        Text::new(
            format!("Restore {module} {id} from the recycle bin to sync it again."),
            format!("再び同期するには、ごみ箱から {module} {id} を復元してください。"),
        ),
    )
    .with_details(json!({"module": module, "id": id}))
}

/// A record new on one side tied to the one the other side already held.
pub(super) fn matched_existing(
    module: &str,
    id: i64,
    source_module: &str,
    source_id: i64,
) -> Error {
    Error::new(
        Kind::Conflict,
        "matched_existing_record",
        Text::new(
            format!("{source_module} {source_id} was tied to {module} {id}, which already existed under the same e-mail address or name; nothing was created. Their fields were merged."),
            format!("{source_module} {source_id} は、同じメールアドレスまたは名前で既に存在する {module} {id} に関連付けました。新規作成はしていません。項目は統合されました。"),
        ),
        Text::new(
            "Nothing to do; if they are different people or companies, change the e-mail address or name of one and unlink them.",
            "対応は不要です。別の人物・会社である場合は、どちらかのメールアドレスまたは名前を変更してください。",
        ),
    )
    .with_rule("DSK-13")
    .with_details(json!({"module": module, "id": id}))
}

/// DSK-12: a delete that the setting turns into an unlink.
pub(super) fn kept_unlinked(side: Side, app: (&str, &str), module: &str, id: i64) -> Error {
    let (en, ja, setting) = match side {
        Side::Crm => (
            format!(
                "Deleted in the CRM; {} {module} {id} was kept and only unlinked (setting on_crm_delete = unlink).",
                app.0
            ),
            format!(
                "CRM で削除されました。{} の {module} {id} は残し、リンクのみ解除しました（設定 on_crm_delete = unlink）。",
                app.1
            ),
            "on_crm_delete".to_string(),
        ),
        Side::Other => (
            format!(
                "Deleted in {}; the CRM's {module} {id} was kept and only unlinked (setting on_{}_delete = unlink).",
                app.0,
                app.0.to_lowercase()
            ),
            format!(
                "{} で削除されました。CRM の {module} {id} は残し、リンクのみ解除しました（設定 on_{}_delete = unlink）。",
                app.1,
                app.0.to_lowercase()
            ),
            format!("on_{}_delete", app.0.to_lowercase()),
        ),
    };
    Error::new(
        Kind::Conflict,
        "delete_unlinked",
        Text::new(en, ja),
        Text::new(
            "Delete the kept record by hand if it should go too, or change the setting for the next deletes.",
            "残したレコードも不要なら手で削除するか、次回以降のために設定を変更してください。",
        ),
    )
    .with_rule("DSK-12")
    .with_details(json!({"module": module, "id": id, "setting": setting}))
}
