//! The mail & calendar connector (`crm-mail`): a CRM user's own connection
//! to the mail and calendar systems they use, through the standards those
//! speak (CardDAV so far) and the files they export (vCard so far). Items
//! flow into the CRM by the rules of `spec/mail.md`, into the same history as
//! every integration. Unlike the other kinds it reads no change log: the
//! other side is an outside server or a file, so what it has read is kept
//! per item (`mail_items`) instead of behind a cursor.

pub mod calendar;
pub mod contacts;
pub mod dav;
pub mod emails;
pub mod imap;
pub mod import;
pub mod items;
pub mod outbound;
mod reasons;
pub mod secret;
pub mod settings;

use crate::lifecycle;
use kizuna_domain::{Error, IntegrationKind, Kind, Result, Text};
use kizuna_store::{Integration, Org, Store, User};
use secret::SecretKey;
use serde_json::{Value, json};

/// What the server gives mail connections: the key their passwords are
/// sealed with, and whether servers on private addresses may be reached.
#[derive(Clone, Debug)]
pub struct MailContext {
    key_file: std::path::PathBuf,
    /// Read (or made) on first use: a server whose users never connect
    /// their mail makes no key file.
    key: std::sync::Arc<std::sync::Mutex<Option<SecretKey>>>,
    /// `--allow-private-addresses`: a connection may reach servers on
    /// loopback and private networks (an on-premises mail server; tests).
    /// Off by default, so that a user cannot make the server probe its own
    /// network.
    pub allow_private_addresses: bool,
}

impl MailContext {
    pub fn new(key_file: std::path::PathBuf, allow_private_addresses: bool) -> MailContext {
        MailContext {
            key_file,
            key: Default::default(),
            allow_private_addresses,
        }
    }

    /// The key, read from its file (made there on first use).
    pub fn key(&self) -> Result<SecretKey> {
        let mut held = self
            .key
            .lock()
            .map_err(|_| Error::internal("the secret key's lock was poisoned"))?;
        if let Some(k) = held.as_ref() {
            return Ok(k.clone());
        }
        let k = SecretKey::load_or_create(&self.key_file)?;
        *held = Some(k.clone());
        Ok(k)
    }
}

/// The history's direction of everything a mail connection brings in.
pub const INTO_CRM: &str = "mail-to-crm";
/// The history's direction of what it sends out (MAIL-7).
pub const OUT_OF_CRM: &str = "crm-to-mail";

/// Sets up a mail connection for the caller in a CRM org they are a member
/// of: active at once (there is no other org to enable it). One per user per
/// org: a second is refused naming the first.
pub async fn connect(
    store: &Store,
    ctx: &MailContext,
    caller: &User,
    org: i64,
    raw_settings: &Value,
) -> Result<Integration> {
    let sealed = settings::merge(&json!({}), raw_settings, &ctx.key()?)?;
    if let Some(existing) = connection_of(store, org, caller.id).await? {
        return Err(already_connected(&existing));
    }
    lifecycle::create(store, caller, IntegrationKind::CrmMail, org, None, &sealed).await
}

/// The caller's live mail connection in an org, if they have one.
pub async fn connection_of(store: &Store, org: i64, user: i64) -> Result<Option<Integration>> {
    Ok(store.integrations_of_org(org).await?.into_iter().find(|i| {
        i.kind == IntegrationKind::CrmMail.as_str()
            && i.created_by == user
            && i.state() != kizuna_domain::integration::State::Deleted
    }))
}

fn already_connected(existing: &Integration) -> Error {
    Error::new(
        Kind::Conflict,
        "mail_already_connected",
        Text::new(
            format!("You already have a mail connection in this org (integration {}, {}).", existing.id, existing.state),
            format!("この組織には既にあなたのメール連携があります（連携 {}、状態 {}）。", existing.id, existing.state),
        ),
        Text::new(
            format!("Change its settings instead (PATCH /api/v1/integrations/{}/settings), or delete it first.", existing.id),
            format!("代わりにその設定を変更する（PATCH /api/v1/integrations/{}/settings）か、先に削除してください。", existing.id),
        ),
    )
    .with_rule("GEN-3")
    .with_details(json!({"existing": existing.id}))
}

/// Changes a mail connection's settings (its owner or an administrator):
/// checked whole, new passwords sealed, passwords left out kept.
pub async fn set_settings(
    store: &Store,
    ctx: &MailContext,
    caller: &User,
    id: i64,
    changes: &Value,
) -> Result<Integration> {
    let i = lifecycle::administered(store, caller, id).await?;
    let merged = settings::merge(&i.settings.0, changes, &ctx.key()?)?;
    store
        .set_integration_config(i.id, &merged, &i.mapping.0)
        .await?;
    store
        .integration(i.id)
        .await?
        .ok_or_else(|| Error::not_found("Integration", id))
}

/// Whether an integration is a mail connection.
pub fn is_mail(i: &Integration) -> bool {
    i.kind == IntegrationKind::CrmMail.as_str()
}

/// Whether integration `id` is a mail connection (false when there is none:
/// the caller's next step says it is not found).
pub async fn is_mail_id(store: &Store, id: i64) -> Result<bool> {
    Ok(store.integration(id).await?.is_some_and(|i| is_mail(&i)))
}

/// Whether a connection's automatic sync is due (MAIL-9): it has an
/// interval, and its last sync (not an import) started longer ago than that.
pub async fn due(store: &Store, i: &Integration) -> Result<bool> {
    let Some(minutes) = settings::read(&i.settings.0).auto_sync_minutes else {
        return Ok(false);
    };
    let last = store
        .runs(i.id, None, 50)
        .await?
        .into_iter()
        .find(|r| r.trigger != crate::engine::Trigger::Import.as_str())
        .map(|r| r.started_at);
    Ok(last.is_none_or(|at| kizuna_store::now_ms() - at >= minutes * 60_000))
}

/// Runs a sync of any integration: a mail connection reads its servers,
/// every other kind its streams of changes (`engine::sync_with`).
pub async fn sync_any(
    store: &Store,
    ctx: Option<&MailContext>,
    id: i64,
    trigger: crate::engine::Trigger,
    allow_deletes: bool,
) -> Result<Vec<kizuna_store::Run>> {
    match ctx {
        Some(ctx) if is_mail_id(store, id).await? => {
            sync_connection(store, ctx, id, trigger, allow_deletes).await
        }
        _ => crate::engine::sync_with(store, id, trigger, allow_deletes).await,
    }
}

/// Syncs a mail connection with its servers: its address books and
/// calendars (and its CRM events out, MAIL-7), then its sent folder.
async fn sync_connection(
    store: &Store,
    ctx: &MailContext,
    id: i64,
    trigger: crate::engine::Trigger,
    allow_deletes: bool,
) -> Result<Vec<kizuna_store::Run>> {
    let i = store
        .integration(id)
        .await?
        .ok_or_else(|| Error::not_found("Integration", id))?;
    let s = &i.settings.0;
    let has_dav = s.get("carddav").is_some_and(Value::is_object)
        || s.get("caldav").is_some_and(Value::is_object);
    let has_sent = s["imap"]["sent_folder"].is_string();
    if !has_dav && !has_sent {
        return Err(no_server(i.id));
    }
    let mut runs = dav::sync(store, ctx, id, trigger, allow_deletes).await?;
    if has_sent {
        crate::engine::check_runnable(store, &i).await?;
        runs.extend(imap::sync_sent(store, ctx, &i, trigger).await?);
    }
    Ok(runs)
}

fn no_server(id: i64) -> Error {
    Error::new(
        Kind::BadInput,
        "no_mail_server",
        Text::new(
            format!("Mail connection {id} has no CardDAV or CalDAV server, nor an IMAP sent folder, to sync."),
            format!("メール連携 {id} には同期する CardDAV・CalDAV サーバーも IMAP の送信済みフォルダーもありません。"),
        ),
        Text::new(
            format!("Set one: PATCH /api/v1/integrations/{id}/settings {{\"carddav\": {{\"url\", \"username\", \"password\"}}}} (or \"caldav\"), or import a file instead (POST …/import)."),
            format!("サーバーを設定してください: PATCH /api/v1/integrations/{id}/settings {{\"carddav\": {{\"url\", \"username\", \"password\"}}}}（または \"caldav\"）。またはファイルを取り込んでください（POST …/import）。"),
        ),
    )
    .with_rule("MAIL-1")
}

/// The CRM org of a connection.
async fn crm_org(store: &Store, i: &Integration) -> Result<Org> {
    store
        .org(i.from_org)
        .await?
        .ok_or_else(|| Error::not_found("Org", i.from_org))
}
