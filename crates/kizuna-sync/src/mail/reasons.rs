//! The history's words for what a mail & calendar sync did not simply write.

use kizuna_domain::{Error, Kind, Text};
use serde_json::json;

/// MAIL-2: a value longer than its CRM field, refused.
pub fn too_long(label: (&str, &str), crm_field: &str, limit: u32, length: usize) -> Error {
    Error::new(
        Kind::BadInput,
        "value_too_long",
        Text::new(
            format!("{} is {length} characters long; the CRM field {crm_field} holds at most {limit}.", label.0),
            format!("{}は {length} 文字です。CRM の項目 {crm_field} の上限は {limit} 文字です。", label.1),
        ),
        Text::new(
            "Shorten it on the mail side, or let the connection cut long values (settings.truncate = true); nothing of this contact was written.",
            "メール側で短くするか、長い値を切り詰める設定（settings.truncate = true）にしてください。この連絡先は何も書き込まれていません。",
        ),
    )
    .with_rule("MAIL-2")
    .with_details(json!({"field": crm_field, "limit": limit, "length": length}))
}

/// MAIL-2: a value cut to its CRM field because the user asked for it.
pub fn truncated(label: (&str, &str), crm_field: &str, limit: u32, length: usize) -> Error {
    Error::new(
        Kind::BadInput,
        "value_truncated",
        Text::new(
            format!("{} was {length} characters long and was cut to the {limit} that the CRM field {crm_field} holds.", label.0),
            format!("{}は {length} 文字あったため、CRM の項目 {crm_field} の上限 {limit} 文字に切り詰めました。", label.1),
        ),
        Text::new(
            "Nothing to do, unless the end of the value matters: then shorten it on the mail side.",
            "対応は不要です。値の末尾が必要な場合は、メール側で短くしてください。",
        ),
    )
    .with_rule("MAIL-2")
    .with_details(json!({"field": crm_field, "limit": limit, "length": length}))
}

/// MAIL-3, 4, 5: an item tied to the CRM record that already had its key
/// (`by`: what the two share, in English and Japanese).
pub fn matched_existing(module: &str, id: i64, by: (&str, &str), rule: &'static str) -> Error {
    Error::new(
        Kind::Conflict,
        "matched_existing_record",
        Text::new(
            format!("{module} record {id} already has {}: the item updated it instead of adding another.", by.0),
            format!("{module} のレコード {id} が既に{}を持っているため、新しく追加せずにそのレコードを更新しました。", by.1),
        ),
        Text::new(
            "Nothing to do: the two are one now.",
            "対応は不要です。両者は同じものとして扱われます。",
        ),
    )
    .with_rule(rule)
    .with_details(json!({"module": module, "id": id}))
}

/// MAIL-12: an item outside the connection's category.
pub fn not_in_category(category: &str, has: &[String]) -> Error {
    let has_en = if has.is_empty() {
        "none".to_string()
    } else {
        has.join(", ")
    };
    let has_ja = if has.is_empty() {
        "なし".to_string()
    } else {
        has.join(", ")
    };
    Error::new(
        Kind::BadInput,
        "not_in_category",
        Text::new(
            format!("The item is not in the category {category} that this connection syncs (its categories: {has_en})."),
            format!("この項目は連携対象のカテゴリ {category} に入っていません（項目のカテゴリ: {has_ja}）。"),
        ),
        Text::new(
            format!("Put it in the category {category} on the mail side to sync it, or clear the connection's category (settings.category = null) to sync everything."),
            format!("同期するにはメール側で項目をカテゴリ {category} に入れるか、連携のカテゴリ設定を外して（settings.category = null）すべてを同期してください。"),
        ),
    )
    .with_rule("MAIL-12")
    .with_details(json!({"category": category, "item_categories": has}))
}

/// An item that is not readable vCard/iCalendar.
pub fn unreadable(why: &str) -> Error {
    Error::new(
        Kind::BadInput,
        "unreadable_item",
        Text::new(
            format!("The item could not be read: {why}."),
            format!("項目を読み取れませんでした: {why}。"),
        ),
        Text::new(
            "Open and save it again in the mail client, or remove it; the other items were synced.",
            "メールソフトで開いて保存し直すか、削除してください。ほかの項目は同期されています。",
        ),
    )
}

/// An item that has not changed since the last sync read it.
pub fn unchanged(module: &str, id: i64) -> Error {
    Error::new(
        Kind::BadInput,
        "unchanged",
        Text::new(
            format!("The item is as it was when it was last synced into {module} record {id}; nothing to write."),
            format!("項目は前回 {module} のレコード {id} に同期したときから変わっていないため、書き込みはありません。"),
        ),
        Text::new("Nothing to do.", "対応は不要です。"),
    )
    .with_rule("MAIL-1")
}

/// The CRM record an item became was deleted in the CRM since.
pub fn crm_record_deleted(module: &str, id: i64) -> Error {
    Error::new(
        Kind::Conflict,
        "crm_record_deleted",
        Text::new(
            format!("{module} record {id}, which this item became, was deleted in the CRM: it is not created again."),
            format!("この項目から作られた {module} のレコード {id} は CRM で削除されているため、再作成しません。"),
        ),
        Text::new(
            format!("Restore record {id} from the recycle bin to sync the item into it again."),
            format!("再び同期するには、ごみ箱からレコード {id} を復元してください。"),
        ),
    )
    .with_rule("MAIL-1")
}

/// Two items of one address book or calendar share a UID.
pub fn duplicate_uid(uid: &str, first: &str) -> Error {
    Error::new(
        Kind::Conflict,
        "duplicate_uid",
        Text::new(
            format!("Another item of the same collection ({first}) already has the UID {uid}: this copy was not synced."),
            format!("同じコレクションの別の項目（{first}）が既に UID {uid} を持っているため、この複製は同期しませんでした。"),
        ),
        Text::new(
            "Remove the duplicate on the mail side (or give it a UID of its own); the other items were synced.",
            "メール側で重複を削除する（または固有の UID を付ける）と解消します。ほかの項目は同期されています。",
        ),
    )
    .with_rule("MAIL-1")
    .with_details(json!({"uid": uid, "first": first}))
}
