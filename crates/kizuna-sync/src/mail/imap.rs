//! The user's mailbox over IMAP (MAIL-11): the sent folder added to the CRM
//! automatically, and a message picked from any folder.
//!
//! Where a folder stands is its UIDVALIDITY and the last UID added
//! (`mail_sources`), saved after each batch has committed. When the server
//! renumbers the folder (a new UIDVALIDITY) it is read again from the
//! start, and the e-mails already in the CRM are found by their Message-ID:
//! nothing is added twice.

use super::emails::{self, Destination};
use super::{MailContext, settings};
use crate::engine::Trigger;
use kizuna_connectors::email::parse_message;
use kizuna_connectors::imap::{FETCH_BATCH, Imap, Message};
use kizuna_domain::{Error, Kind, Result, Text};
use kizuna_store::{Integration, Run, Store};
use serde_json::json;

fn source(folder: &str) -> String {
    format!("imap:{folder}")
}

/// `uidvalidity:last uid` as stored.
fn position(token: Option<&str>) -> Option<(u32, u32)> {
    let (v, u) = token?.split_once(':')?;
    Some((v.parse().ok()?, u.parse().ok()?))
}

fn read(messages: Vec<Message>, folder: &str) -> Vec<emails::Message> {
    messages
        .into_iter()
        .map(|m| {
            let at = json!({"folder": folder, "uid": m.uid});
            (
                m.raw.and_then(|raw| parse_message(&raw).map_err(|e| e.0)),
                at,
            )
        })
        .collect()
}

/// Adds what is new in the sent folder; `None` when the connection has no
/// IMAP sent folder set.
pub async fn sync_sent(
    store: &Store,
    ctx: &MailContext,
    i: &Integration,
    trigger: Trigger,
) -> Result<Vec<Run>> {
    let Some((account, Some(folder))) = settings::imap_account(&i.settings.0, &ctx.key()?)? else {
        return Ok(Vec::new());
    };
    let mut imap = Imap::connect(&account, ctx.allow_private_addresses).await?;
    let selected = imap.examine(&folder).await?;
    let src = source(&folder);
    let after = match position(store.mail_sync_token(i.id, &src).await?.as_deref()) {
        Some((validity, last)) if validity == selected.uid_validity => last,
        // First read, or the folder was renumbered: from the start; the
        // Message-IDs keep what is there from being added twice.
        _ => 0,
    };
    let uids = imap.uids_after(after).await?;
    let mut runs = Vec::new();
    for chunk in uids.chunks(FETCH_BATCH) {
        let messages = read(imap.fetch(chunk).await?, &folder);
        let mut it = messages.into_iter();
        let run = emails::add(
            store,
            i,
            trigger,
            &Destination::Correspondent,
            &mut it,
            &mut |_| {},
        )
        .await?;
        runs.push(run);
        let last = chunk.last().copied().unwrap_or(after);
        store
            .set_mail_sync_token(
                i.id,
                &src,
                Some(&format!("{}:{last}", selected.uid_validity)),
            )
            .await?;
    }
    imap.logout().await;
    Ok(runs)
}

/// MAIL-11's first way with a mailbox: one message, picked by its folder
/// and UID, added where it belongs (or to the record picked with it).
pub async fn add_picked(
    store: &Store,
    ctx: &MailContext,
    i: &Integration,
    folder: &str,
    uid: u32,
    destination: &Destination,
) -> Result<Run> {
    let Some((account, _)) = settings::imap_account(&i.settings.0, &ctx.key()?)? else {
        return Err(no_imap(i.id));
    };
    let mut imap = Imap::connect(&account, ctx.allow_private_addresses).await?;
    imap.examine(folder).await?;
    let found = imap.fetch(&[uid]).await?;
    imap.logout().await;
    if found.is_empty() {
        return Err(Error::not_found("Message", format!("{folder}/{uid}")));
    }
    let mut it = read(found, folder).into_iter();
    emails::add(store, i, Trigger::Api, destination, &mut it, &mut |_| {}).await
}

fn no_imap(id: i64) -> Error {
    Error::new(
        Kind::BadInput,
        "no_imap_server",
        Text::new(
            format!("Mail connection {id} has no IMAP mailbox to pick a message from."),
            format!("メール連携 {id} にはメッセージを選ぶ IMAP のメールボックスがありません。"),
        ),
        Text::new(
            format!("Set it: PATCH /api/v1/integrations/{id}/settings {{\"imap\": {{\"host\", \"username\", \"password\"}}}}, or upload the message instead."),
            format!("設定してください: PATCH /api/v1/integrations/{id}/settings {{\"imap\": {{\"host\", \"username\", \"password\"}}}}。またはメッセージをアップロードしてください。"),
        ),
    )
    .with_rule("MAIL-11")
}
