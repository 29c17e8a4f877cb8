//! A connection's CardDAV address books into CRM Contacts (MAIL-1).
//!
//! Change detection: the server's sync token when it offers one (RFC 6578),
//! else — or when it refuses the token it gave — the whole listing of hrefs
//! and etags compared with `mail_items`. An item whose etag is unchanged is
//! not fetched; one whose etag changed but whose content hash did not is not
//! written (`contacts::apply`). The token is saved only once every change it
//! covers is committed, so a sync that dies part-way reads the same changes
//! again and finds the written ones unchanged.
//!
//! Deletes: a card gone from the address book takes back the contact it
//! created unless someone changed that contact in the CRM since (then it
//! stays, unlinked, and the history says why); a contact that existed
//! before (MAIL-3) is only unlinked. A listing that comes back empty, or
//! deletes more than half of what the connection linked, stops the
//! connection and deletes nothing until a person confirms.

use super::contacts::{self, Incoming, Target};
use super::{INTO_CRM, MailContext, crm_org, settings};
use crate::engine::{
    MASS_DELETE_MIN, MASS_DELETE_SHARE, Outcome, STALE_RUN_MS, Trigger, check_runnable,
    lift_delete_guard, mass_delete,
};
use kizuna_connectors::dav::{Account, CardDav, FETCH_BATCH, Listed};
use kizuna_connectors::vcard::{CardError, parse_card};
use kizuna_domain::{Error, Kind, Result, Text};
use kizuna_store::{Integration, MailItem, Origin, Run, Store};
use serde_json::json;
use std::collections::{HashMap, HashSet};

/// Cards written per transaction.
const BATCH: usize = 500;

/// Syncs every address book of connection `id` (or the one its settings
/// name); a run per address book.
pub async fn sync(
    store: &Store,
    ctx: &MailContext,
    id: i64,
    trigger: Trigger,
    allow_deletes: bool,
) -> Result<Vec<Run>> {
    let i = lift_delete_guard(store, id, allow_deletes).await?;
    check_runnable(store, &i).await?;
    let Some(server) = settings::server(&i.settings.0, "carddav", &ctx.key()?)? else {
        return Err(no_address_book(i.id));
    };
    let dav = CardDav::new(
        &Account {
            url: server.url.clone(),
            username: server.username.clone(),
            password: server.password.clone(),
        },
        ctx.allow_private_addresses,
    )?;
    let books = match &server.collection {
        Some(book) => vec![book.clone()],
        None => dav.address_books().await?,
    };
    if books.is_empty() {
        return Err(no_address_book(i.id));
    }
    let org = crm_org(store, &i).await?;
    let module = kizuna_apps::records::enabled_module(store, &org, contacts::MODULE).await?;
    let options = settings::read(&i.settings.0);
    // Runs left running by a killed process are marked as interrupted.
    store
        .interrupt_stale_runs(i.id, kizuna_store::now_ms() - STALE_RUN_MS)
        .await?;
    let mut runs = Vec::new();
    for book in books {
        let run = store
            .start_run(i.id, trigger.as_str(), INTO_CRM, contacts::DATA_TYPE)
            .await?;
        let source = format!("carddav:{book}");
        let target = Target {
            store,
            org: &org,
            module: module.clone(),
            integration: i.id,
            source: &source,
            settings: &options,
            run: run.id,
        };
        let result = sync_book(&target, &i, &dav, &book, !allow_deletes).await;
        let error = result.as_ref().err().map(|e| e.to_json()["error"].clone());
        let run = store.finish_run(run.id, error.as_ref()).await?;
        crate::attention::after_run(store, &i, &run).await?;
        runs.push(run);
        result?;
    }
    Ok(runs)
}

/// One address book: what changed, fetched and written in batches, then the
/// deletes, then the new token.
async fn sync_book(
    t: &Target<'_>,
    i: &Integration,
    dav: &CardDav,
    book: &str,
    guard: bool,
) -> Result<()> {
    let store = t.store;
    let token = store.mail_sync_token(i.id, t.source).await?;
    let known: HashMap<String, MailItem> = store
        .mail_items_of_source(i.id, t.source)
        .await?
        .into_iter()
        .map(|m| (m.item_key.clone(), m))
        .collect();
    let (listed, deleted, new_token) = match dav.changes(book, token.as_deref()).await? {
        // Only what changed since the token.
        Some(c) if token.is_some() => (c.changed, c.deleted, Some(c.token)),
        // A first sync-collection lists everything: what is not in it is gone.
        Some(c) => {
            let gone = gone_from(&known, &c.changed);
            (c.changed, gone, Some(c.token))
        }
        None => {
            let all = dav.list(book).await?;
            let gone = gone_from(&known, &all);
            (all, gone, None)
        }
    };
    // An etag the last sync saw needs no fetch. An item that was not written
    // last time (it failed, or was outside the category) is read again even
    // when the server lists no change to it: the connection's settings or
    // the CRM may have changed since.
    let gone: HashSet<&str> = deleted.iter().map(String::as_str).collect();
    let mut changed: Vec<Listed> = listed
        .into_iter()
        .filter(|l| {
            known
                .get(&l.href)
                .is_none_or(|m| m.crm_id.is_none() || m.etag.is_none() || m.etag != l.etag)
        })
        .collect();
    let listed_now: HashSet<String> = changed.iter().map(|l| l.href.clone()).collect();
    changed.extend(
        known
            .values()
            .filter(|m| m.crm_id.is_none() && !gone.contains(m.item_key.as_str()))
            .filter(|m| !listed_now.contains(&m.item_key))
            .map(|m| Listed {
                href: m.item_key.clone(),
                etag: m.etag.clone(),
            }),
    );
    let deleted: Vec<&MailItem> = deleted.iter().filter_map(|h| known.get(h)).collect();
    if guard {
        check_mass_delete(i, &known, &deleted, store).await?;
    }
    let mut batch = Vec::with_capacity(BATCH);
    for hrefs in changed.chunks(FETCH_BATCH) {
        let hrefs: Vec<String> = hrefs.iter().map(|l| l.href.clone()).collect();
        for f in dav.fetch(book, &hrefs).await? {
            let card = match f.data {
                Ok(text) => parse_card(&text),
                Err(status) => Err(CardError(format!("the server answered {status} for it"))),
            };
            batch.push(Incoming {
                key: f.href.clone(),
                etag: f.etag,
                card,
                at: json!({"href": f.href}),
            });
        }
        if batch.len() >= BATCH {
            contacts::apply(t, std::mem::take(&mut batch)).await?;
        }
    }
    if !batch.is_empty() {
        contacts::apply(t, batch).await?;
    }
    take_back(t, &deleted).await?;
    store
        .set_mail_sync_token(i.id, t.source, new_token.as_deref())
        .await
}

/// The known items a full listing no longer has.
fn gone_from(known: &HashMap<String, MailItem>, listed: &[Listed]) -> Vec<String> {
    let present: HashSet<&str> = listed.iter().map(|l| l.href.as_str()).collect();
    known
        .keys()
        .filter(|k| !present.contains(k.as_str()))
        .cloned()
        .collect()
}

/// A listing that loses this many linked cards at once, all it had, is an
/// address book that came back empty (a server or account mix-up), not a
/// person cleaning up.
const EMPTIED_MIN: i64 = 5;
/// Fewer deletes than this never trip the share guard (a small address
/// book loses half its cards to one cleanup).
const DELETES_MIN: i64 = 10;

/// The guard: an address book that suddenly lists nothing, or deletes more
/// than half of what the connection linked, stops the connection before
/// anything is deleted.
async fn check_mass_delete(
    i: &Integration,
    known: &HashMap<String, MailItem>,
    deleted: &[&MailItem],
    store: &Store,
) -> Result<()> {
    let linked = known.values().filter(|m| m.crm_id.is_some()).count() as i64;
    let deleting = deleted.iter().filter(|m| m.crm_id.is_some()).count() as i64;
    let limit = ((linked as f64 * MASS_DELETE_SHARE) as i64).max(DELETES_MIN.min(MASS_DELETE_MIN));
    let e = if deleting == linked && linked >= EMPTIED_MIN {
        emptied(i, linked)
    } else if deleting > limit {
        mass_delete(i, contacts::DATA_TYPE, deleting, limit)
    } else {
        return Ok(());
    };
    store
        .set_integration_stopped(i.id, Some(&e.to_json()["error"]))
        .await?;
    Err(e)
}

fn emptied(i: &Integration, linked: i64) -> Error {
    Error::new(
        Kind::Conflict,
        "mass_delete_guard",
        Text::new(
            format!("Mail connection {} stopped before deleting: the address book came back empty, which would delete all {linked} contacts it brought in. Nothing was deleted.", i.id),
            format!("メール連携 {} は削除の前に停止しました: アドレス帳が空で返され、取り込んだ連絡先 {linked} 件がすべて削除されるところでした。何も削除されていません。", i.id),
        ),
        Text::new(
            format!("Check that the connection points at the right account and address book. If the address book really was emptied, sync once allowing the deletes: POST /api/v1/integrations/{}/sync?allow_deletes=true.", i.id),
            format!("連携先のアカウントとアドレス帳が正しいか確認してください。本当に空にしたのであれば、削除を許可して一度同期してください: POST /api/v1/integrations/{}/sync?allow_deletes=true。", i.id),
        ),
    )
    .with_rule("MAIL-1")
    .with_details(json!({"deleted": linked, "data_type": contacts::DATA_TYPE}))
}

/// Cards gone from the address book: the contacts they created go to the
/// recycle bin unless changed in the CRM since; the rest are unlinked.
async fn take_back(t: &Target<'_>, deleted: &[&MailItem]) -> Result<()> {
    let store = t.store;
    for chunk in deleted.chunks(BATCH) {
        let mut tx = store.begin().await?;
        let ids: Vec<i64> = chunk.iter().filter_map(|m| m.crm_id).collect();
        let current: HashMap<i64, kizuna_store::Record> = store
            .records_in(&mut tx, t.org.id, contacts::MODULE, &ids)
            .await?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
        let mut out = Outcome::default();
        for m in chunk {
            let Some(rec) = m.crm_id.and_then(|id| current.get(&id)) else {
                continue;
            };
            if rec.deleted_at.is_some() {
                continue;
            }
            let kept = if m.how.as_deref() == Some("matched") {
                Some(kept_existed(rec.id))
            } else if Some(rec.version) != m.crm_version {
                Some(kept_changed(rec.id))
            } else {
                None
            };
            match kept {
                Some(why) => out.skip(&why, (t.source, m.id), Some((contacts::MODULE, rec.id))),
                None => {
                    store
                        .set_deleted_in(
                            &mut tx,
                            t.org.id,
                            contacts::MODULE,
                            rec.id,
                            true,
                            Origin::Integration(t.integration),
                        )
                        .await?;
                    out.counts.deleted += 1;
                }
            }
        }
        for item in &mut out.items {
            let href = chunk
                .iter()
                .find(|m| m.id == item.source_id)
                .map(|m| m.item_key.clone());
            item.details.0["item"] = json!({"href": href});
        }
        let gone: Vec<i64> = chunk.iter().map(|m| m.id).collect();
        store.remove_mail_items_in(&mut tx, &gone).await?;
        store
            .record_progress_in(&mut tx, t.run, out.counts, &out.items)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}

fn kept_existed(id: i64) -> Error {
    Error::new(
        Kind::Conflict,
        "kept_existing_record",
        Text::new(
            format!("The card was deleted from the address book; Contacts record {id} existed before the card was tied to it, so it stays in the CRM, no longer linked."),
            format!("カードはアドレス帳から削除されました。連絡先のレコード {id} はカードと結び付く前から存在していたため CRM に残し、リンクを解除しました。"),
        ),
        Text::new(
            format!("Delete record {id} in the CRM if it should go too."),
            format!("不要であれば CRM でレコード {id} を削除してください。"),
        ),
    )
    .with_rule("MAIL-3")
}

fn kept_changed(id: i64) -> Error {
    Error::new(
        Kind::Conflict,
        "kept_changed_record",
        Text::new(
            format!("The card was deleted from the address book, but Contacts record {id} was changed in the CRM since the last sync, so it stays, no longer linked."),
            format!("カードはアドレス帳から削除されましたが、連絡先のレコード {id} は前回の同期後に CRM で変更されているため残し、リンクを解除しました。"),
        ),
        Text::new(
            format!("Delete record {id} in the CRM if it should go too."),
            format!("不要であれば CRM でレコード {id} を削除してください。"),
        ),
    )
    .with_rule("MAIL-1")
}

fn no_address_book(id: i64) -> Error {
    Error::new(
        Kind::BadInput,
        "no_address_book",
        Text::new(
            format!("Mail connection {id} has no CardDAV address book to sync."),
            format!("メール連携 {id} には同期する CardDAV のアドレス帳がありません。"),
        ),
        Text::new(
            format!("Set its CardDAV server: PATCH /api/v1/integrations/{id}/settings {{\"carddav\": {{\"url\", \"username\", \"password\"}}}}, or import a .vcf file instead."),
            format!("CardDAV サーバーを設定してください: PATCH /api/v1/integrations/{id}/settings {{\"carddav\": {{\"url\", \"username\", \"password\"}}}}。または .vcf ファイルを取り込んでください。"),
        ),
    )
    .with_rule("MAIL-1")
}
