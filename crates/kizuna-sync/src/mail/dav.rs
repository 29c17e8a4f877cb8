//! A connection's CardDAV address books into CRM Contacts, and its CalDAV
//! calendars' events and tasks into CRM Events and Tasks (MAIL-1).
//!
//! Change detection: the server's sync token when it offers one (RFC 6578),
//! else — or when it refuses the token it gave — the whole listing of hrefs
//! and etags compared with `mail_items`. An item whose etag is unchanged is
//! not fetched; one whose etag changed but whose content hash did not is not
//! written (`items::apply`). The token is saved only once every change it
//! covers is committed, so a sync that dies part-way reads the same changes
//! again and finds the written ones unchanged.
//!
//! Deletes: an item gone from its collection takes back the record it
//! created unless someone changed that record in the CRM since (then it
//! stays, unlinked, and the history says why); a record that existed before
//! (MAIL-3, 4, 5) is only unlinked. A listing that comes back empty, or
//! deletes more than half of what the connection linked, stops the
//! connection and deletes nothing until a person confirms.

use super::items::{Destinations, Incoming, Kind as ItemKind, Target, apply};
use super::{INTO_CRM, MailContext, OUT_OF_CRM, calendar, contacts, crm_org, outbound, settings};
use crate::engine::{
    MASS_DELETE_MIN, MASS_DELETE_SHARE, Outcome, STALE_RUN_MS, Trigger, as_run, check_runnable,
    lift_delete_guard, mass_delete,
};
use kizuna_connectors::dav::{Account, Collections, Dav, FETCH_BATCH, Fetched, Listed};
use kizuna_connectors::ical::parse_calendar;
use kizuna_connectors::vcard::parse_card;
use kizuna_domain::{Error, Kind, Result, Text};
use kizuna_store::{Integration, MailItem, Org, Origin, Run, Store};
use serde_json::json;
use std::collections::{HashMap, HashSet};

/// Items written per transaction.
const BATCH: usize = 500;

/// The parts of a connection that read collections, and what they hold.
const PARTS: [(&str, Collections); 2] = [
    ("carddav", Collections::AddressBooks),
    ("caldav", Collections::Calendars),
];

/// Syncs every address book and calendar of connection `id` (or those its
/// settings name); a run per collection.
pub async fn sync(
    store: &Store,
    ctx: &MailContext,
    id: i64,
    trigger: Trigger,
    allow_deletes: bool,
) -> Result<Vec<Run>> {
    let i = lift_delete_guard(store, id, allow_deletes).await?;
    check_runnable(store, &i).await?;
    let key = ctx.key()?;
    let mut parts = Vec::new();
    for (name, kind) in PARTS {
        if let Some(server) = settings::server(&i.settings.0, name, &key)? {
            parts.push((name, kind, server));
        }
    }
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    let org = crm_org(store, &i).await?;
    let options = settings::read(&i.settings.0);
    // Runs left running by a killed process are marked as interrupted.
    store
        .interrupt_stale_runs(i.id, kizuna_store::now_ms() - STALE_RUN_MS)
        .await?;
    let mut runs = Vec::new();
    for (name, kind, server) in parts {
        let account = Account {
            url: server.url.clone(),
            username: server.username.clone(),
            password: server.password.clone(),
        };
        let dav = Dav::new(&account, kind, ctx.allow_private_addresses)?;
        let collections = match server.collections.is_empty() {
            false => server.collections.clone(),
            true => dav.collections().await?,
        };
        if collections.is_empty() {
            return Err(no_collection(i.id, name));
        }
        let kinds: &[&'static dyn ItemKind] = match kind {
            Collections::AddressBooks => &[&contacts::Contacts],
            Collections::Calendars => &[&calendar::Events, &calendar::Tasks],
        };
        let data_type = match kind {
            Collections::AddressBooks => contacts::DATA_TYPE,
            Collections::Calendars => "calendar",
        };
        let destinations = Destinations::of(store, &org, i.id, &options, kinds).await?;
        for collection in &collections {
            let source = format!("{name}:{collection}");
            let (run, result) = as_run(store, &i, trigger, (INTO_CRM, data_type), async |run| {
                let targets = destinations.targets(&source, run);
                sync_collection(&targets, &i, &org, &dav, collection, !allow_deletes).await
            })
            .await?;
            runs.push(run);
            result?;
        }
        // MAIL-7: the owner's CRM events to their (first) calendar.
        if kind == Collections::Calendars
            && settings::direction_on(&i.settings.0, outbound::DIRECTION)
            && let Some(calendar) = collections.first()
        {
            let (run, result) = as_run(store, &i, trigger, (OUT_OF_CRM, "event"), async |run| {
                outbound::push(store, &i, &org, &dav, calendar, run).await
            })
            .await?;
            runs.push(run);
            result?;
        }
    }
    Ok(runs)
}

/// The items of one fetched resource, each with the target it goes to (an
/// index into the collection's targets): a vCard is one contact; a calendar
/// object is its events and tasks (one, as a rule).
fn read_resource(dav_kind: Collections, href: &str, text: &str) -> Vec<(usize, Incoming)> {
    let one = |item| Incoming {
        key: href.to_string(),
        etag: None,
        item,
        at: json!({"href": href}),
    };
    match dav_kind {
        Collections::AddressBooks => vec![(
            0,
            one(parse_card(text)
                .map(|c| contacts::parsed(&c))
                .map_err(|e| e.0.into())),
        )],
        Collections::Calendars => match parse_calendar(text) {
            Err(e) => vec![(0, one(Err(e.0.into())))],
            Ok(cal) => {
                let many = cal.items.len() > 1;
                cal.items
                    .into_iter()
                    .enumerate()
                    .map(|(n, item)| {
                        let (target, parsed) = match item {
                            Ok(item) => {
                                let (kind, p) = calendar::parsed(&item);
                                (usize::from(kind.module() == "Tasks"), Ok(p))
                            }
                            Err(e) => (0, Err(e.0.into())),
                        };
                        let mut incoming = one(parsed);
                        if many {
                            incoming.key = format!("{href}#{n}");
                        }
                        (target, incoming)
                    })
                    .collect()
            }
        },
    }
}

/// One collection: what changed, fetched and written in batches, then the
/// deletes, then the new token.
async fn sync_collection(
    targets: &[Target<'_>],
    i: &Integration,
    org: &Org,
    dav: &Dav,
    collection: &str,
    guard: bool,
) -> Result<()> {
    let store = targets[0].store;
    let source = targets[0].source;
    let token = store.mail_sync_token(i.id, source).await?;
    let known: HashMap<String, MailItem> = store
        .mail_items_of_source(i.id, source)
        .await?
        .into_iter()
        .map(|m| (m.item_key.clone(), m))
        .collect();
    // A resource that held several items has them under `href#n`.
    let resource = |key: &str| key.split('#').next().unwrap_or(key).to_string();
    let (mut listed, deleted, new_token) = match dav.changes(collection, token.as_deref()).await? {
        // Only what changed since the token.
        Some(c) if token.is_some() => (c.changed, c.deleted, Some(c.token)),
        // A first sync-collection lists everything: what is not in it is gone.
        Some(c) => {
            let gone = gone_from(&known, &c.changed);
            (c.changed, gone, Some(c.token))
        }
        None => {
            let all = dav.list(collection).await?;
            let gone = gone_from(&known, &all);
            (all, gone, None)
        }
    };
    // MAIL-7: what this connection wrote from the CRM is not read back.
    listed.retain(|l| !outbound::is_ours(&l.href));
    let gone: HashSet<String> = deleted.iter().map(|h| resource(h)).collect();
    // An etag the last sync saw needs no fetch. An item that was not written
    // last time (it failed, or was outside the category) is read again even
    // when the server lists no change to it: the connection's settings or
    // the CRM may have changed since.
    let mut by_resource: HashMap<String, Vec<&MailItem>> = HashMap::new();
    for m in known.values() {
        by_resource
            .entry(resource(&m.item_key))
            .or_default()
            .push(m);
    }
    // Written and settled: linked, with the content it was written from.
    let settled = |m: &MailItem| m.crm_id.is_some() && !m.content_hash.is_empty();
    let mut changed: Vec<String> = listed
        .into_iter()
        .filter(|l| match by_resource.get(&l.href) {
            None => true,
            Some(items) => items
                .iter()
                .any(|m| !settled(m) || m.etag.is_none() || m.etag != l.etag),
        })
        .map(|l| l.href)
        .collect();
    let listed_now: HashSet<String> = changed.iter().cloned().collect();
    let again: HashSet<String> = known
        .values()
        .filter(|m| !settled(m))
        .map(|m| resource(&m.item_key))
        .filter(|r| !gone.contains(r) && !listed_now.contains(r))
        .collect();
    changed.extend(again);
    let deleted: Vec<&MailItem> = known
        .values()
        .filter(|m| gone.contains(&resource(&m.item_key)))
        .collect();
    if guard {
        check_mass_delete(i, &known, &deleted, store).await?;
    }
    fetch_and_apply(targets, dav, collection, changed).await?;
    take_back(&targets[0], org, &deleted).await?;
    store
        .set_mail_sync_token(i.id, source, new_token.as_deref())
        .await
}

/// Fetched batches waiting to be written: the server sends the next ones
/// while the CRM writes these, and memory stays bounded.
const PREFETCH: usize = 5;

/// Fetches the resources at `hrefs` in batches and writes their items into
/// the CRM, the fetching of one batch overlapping the writing of those
/// before it (the server and the database work at once).
async fn fetch_and_apply(
    targets: &[Target<'_>],
    dav: &Dav,
    collection: &str,
    hrefs: Vec<String>,
) -> Result<()> {
    let (send, mut received) = tokio::sync::mpsc::channel::<Vec<Fetched>>(PREFETCH);
    let fetching = async move {
        for chunk in hrefs.chunks(FETCH_BATCH) {
            let fetched = dav.fetch(collection, chunk).await?;
            if send.send(fetched).await.is_err() {
                // The writer stopped: its error is the sync's.
                break;
            }
        }
        Ok::<(), Error>(())
    };
    // Owning its receiver, the writer closes the channel when it stops.
    let writing = async move {
        let mut batches: Vec<Vec<Incoming>> = targets.iter().map(|_| Vec::new()).collect();
        while let Some(fetched) = received.recv().await {
            for f in fetched {
                let items = match &f.data {
                    Ok(text) => read_resource(dav_kind(targets), &f.href, text),
                    Err(status) => vec![(
                        0,
                        Incoming {
                            key: f.href.clone(),
                            etag: None,
                            item: Err(format!("the server answered {status} for it").into()),
                            at: json!({"href": f.href}),
                        },
                    )],
                };
                for (target, mut incoming) in items {
                    incoming.etag = f.etag.clone();
                    batches[target].push(incoming);
                }
            }
            for (t, batch) in targets.iter().zip(batches.iter_mut()) {
                if batch.len() >= BATCH {
                    apply(t, std::mem::take(batch)).await?;
                }
            }
        }
        for (t, batch) in targets.iter().zip(batches) {
            if !batch.is_empty() {
                apply(t, batch).await?;
            }
        }
        Ok::<(), Error>(())
    };
    let (fetched, written) = tokio::join!(fetching, writing);
    written.and(fetched)
}

/// Whether a collection's targets are an address book's or a calendar's.
fn dav_kind(targets: &[Target<'_>]) -> Collections {
    if targets[0].kind.module() == contacts::MODULE {
        Collections::AddressBooks
    } else {
        Collections::Calendars
    }
}

/// The resources of known items a full listing no longer has.
fn gone_from(known: &HashMap<String, MailItem>, listed: &[Listed]) -> Vec<String> {
    let present: HashSet<&str> = listed.iter().map(|l| l.href.as_str()).collect();
    known
        .keys()
        .map(|k| k.split('#').next().unwrap_or(k))
        .filter(|k| !present.contains(k))
        .map(str::to_string)
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

/// Items gone from their collection: the records they created go to the
/// recycle bin unless changed in the CRM since; the rest are unlinked.
async fn take_back(t: &Target<'_>, org: &Org, deleted: &[&MailItem]) -> Result<()> {
    let store = t.store;
    for chunk in deleted.chunks(BATCH) {
        let mut tx = store.begin().await?;
        let mut current: HashMap<i64, kizuna_store::Record> = HashMap::new();
        let mut modules: Vec<&str> = chunk
            .iter()
            .filter_map(|m| m.crm_module.as_deref())
            .collect();
        modules.sort_unstable();
        modules.dedup();
        for module in modules {
            let ids: Vec<i64> = chunk
                .iter()
                .filter(|m| m.crm_module.as_deref() == Some(module))
                .filter_map(|m| m.crm_id)
                .collect();
            for r in store.records_in(&mut tx, org.id, module, &ids).await? {
                current.insert(r.id, r);
            }
        }
        let mut out = Outcome::default();
        for m in chunk {
            let Some(rec) = m.crm_id.and_then(|id| current.get(&id)) else {
                continue;
            };
            if rec.deleted_at.is_some() {
                continue;
            }
            let kept = if m.how.as_deref() == Some("matched") {
                Some(kept_existed(&rec.module, rec.id))
            } else if Some(rec.version) != m.crm_version {
                Some(kept_changed(&rec.module, rec.id))
            } else {
                None
            };
            match kept {
                Some(why) => out.skip(&why, (t.source, m.id), Some((&rec.module, rec.id))),
                None => {
                    let origin = Origin::Integration(t.integration);
                    store
                        .set_deleted_in(&mut tx, org.id, &rec.module, rec.id, true, origin)
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

fn kept_existed(module: &str, id: i64) -> Error {
    Error::new(
        Kind::Conflict,
        "kept_existing_record",
        Text::new(
            format!("The item was deleted on the mail side; {module} record {id} existed before the item was tied to it, so it stays in the CRM, no longer linked."),
            format!("項目はメール側で削除されました。{module} のレコード {id} は項目と結び付く前から存在していたため CRM に残し、リンクを解除しました。"),
        ),
        Text::new(
            format!("Delete record {id} in the CRM if it should go too."),
            format!("不要であれば CRM でレコード {id} を削除してください。"),
        ),
    )
    .with_rule("MAIL-1")
}

fn kept_changed(module: &str, id: i64) -> Error {
    Error::new(
        Kind::Conflict,
        "kept_changed_record",
        Text::new(
            format!("The item was deleted on the mail side, but {module} record {id} was changed in the CRM since the last sync, so it stays, no longer linked."),
            format!("項目はメール側で削除されましたが、{module} のレコード {id} は前回の同期後に CRM で変更されているため残し、リンクを解除しました。"),
        ),
        Text::new(
            format!("Delete record {id} in the CRM if it should go too."),
            format!("不要であれば CRM でレコード {id} を削除してください。"),
        ),
    )
    .with_rule("MAIL-1")
}

fn no_collection(id: i64, part: &str) -> Error {
    Error::new(
        Kind::BadInput,
        "no_mail_collection",
        Text::new(
            format!("The {part} account of mail connection {id} has no address book or calendar."),
            format!("メール連携 {id} の {part} アカウントにはアドレス帳もカレンダーもありません。"),
        ),
        Text::new(
            "Make one in the mail or calendar application, or name it in the settings (address_book, calendars).",
            "メール・カレンダーのアプリで作成するか、設定（address_book、calendars）で指定してください。",
        ),
    )
    .with_rule("MAIL-1")
}
