//! Items from the mail side into CRM records, whatever their kind
//! (contacts, tasks, events): each kind maps its fields (`Kind`), and this
//! module applies the rules every kind shares — the CRM field's length
//! (refused, or cut when the user asked: MAIL-2), the category filter
//! (MAIL-12), unchanged items left alone, duplicate UIDs reported, dedup
//! against records that already exist (MAIL-3, 4, 5), participants resolved
//! to Contacts, Leads and users (MAIL-6, 8). A batch of items is one
//! transaction with its `mail_items` rows and the run's history, so a crash
//! anywhere leaves every item either synced with its row or not at all, and
//! the next run neither loses nor doubles one.

use super::reasons;
use super::settings::MailSettings;
use crate::engine::Outcome;
use kizuna_domain::field::ModuleDef;
use kizuna_domain::validate::{Mode, email_key, validate_fields};
use kizuna_domain::{Error, Result};
use kizuna_store::{Counts, MailItem, MailItemState, Org, Origin, Record, Store, Tx};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A mail item read, in CRM terms.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    pub uid: Option<String>,
    /// Its content hash (what is compared to tell a real change).
    pub hash: String,
    pub categories: Vec<String>,
    /// (CRM field, its name on the mail side in English and Japanese,
    /// value), before the CRM's length checks.
    pub values: Vec<(&'static str, (&'static str, &'static str), Value)>,
    /// The e-mail addresses of its participants (events: MAIL-6).
    pub attendees: Vec<String>,
    /// What the history must say about it even when it is written.
    pub notices: Vec<Error>,
}

/// How the records an item may duplicate are found.
pub enum Probe {
    /// By the normalised e-mail key (the index spanning modules).
    Email(String),
    /// By a text field's trimmed, lower-case value.
    Text(&'static str, String),
}

/// What one kind of item is in the CRM.
pub trait Kind: Sync {
    fn module(&self) -> &'static str;
    fn data_type(&self) -> &'static str;
    /// The rule its dedup follows (MAIL-3, 4, 5).
    fn dedup_rule(&self) -> &'static str;
    /// The keys a record is the same item by, best first; computed alike
    /// for an item's values and a stored record's fields.
    fn keys(&self, fields: &Map<String, Value>) -> Vec<String>;
    /// How to find the records that may hold those keys.
    fn probe(&self, fields: &Map<String, Value>) -> Option<Probe>;
    /// What a key says, for the history (English, Japanese).
    fn explain(&self, key: &str) -> (String, String);
}

/// One item read from the mail side.
#[derive(Debug)]
pub struct Incoming {
    /// Its name in its source (`mail_items.item_key`).
    pub key: String,
    pub etag: Option<String>,
    /// The item, or why it is not written.
    pub item: std::result::Result<Parsed, NotRead>,
    /// Where it was read, for the history (`{"href"}`, `{"file", "line"}`).
    pub at: Value,
}

/// Why an item is not written: it could not be read (failed), or it is
/// left out for a reason of its own (skipped).
#[derive(Debug)]
pub enum NotRead {
    Unreadable(String),
    Skipped(Error),
}

impl From<String> for NotRead {
    fn from(why: String) -> Self {
        NotRead::Unreadable(why)
    }
}

/// Where items go and how: the CRM org and the kind's module, the
/// connection, the item source, and the run the history goes to.
pub struct Target<'a> {
    pub store: &'a Store,
    pub org: &'a Org,
    pub kind: &'a dyn Kind,
    pub module: Arc<ModuleDef>,
    pub integration: i64,
    pub source: &'a str,
    pub settings: &'a MailSettings,
    pub run: i64,
}

/// Where a sync's items of several kinds go: the CRM org, and each kind with
/// its module, checked enabled once before any run starts; `targets` makes
/// a run's targets, one per kind in the same order.
pub(crate) struct Destinations<'a> {
    pub store: &'a Store,
    pub org: &'a Org,
    pub integration: i64,
    pub settings: &'a MailSettings,
    pub kinds: Vec<(&'static dyn Kind, Arc<ModuleDef>)>,
}

impl<'a> Destinations<'a> {
    pub(crate) async fn of(
        store: &'a Store,
        org: &'a Org,
        integration: i64,
        settings: &'a MailSettings,
        kinds: &[&'static dyn Kind],
    ) -> Result<Self> {
        let mut with_modules = Vec::with_capacity(kinds.len());
        for k in kinds {
            let module = kizuna_apps::records::enabled_module(store, org, k.module()).await?;
            with_modules.push((*k, module));
        }
        Ok(Destinations {
            store,
            org,
            integration,
            settings,
            kinds: with_modules,
        })
    }

    /// The targets of run `run` for items from `source`.
    pub(crate) fn targets(&self, source: &'a str, run: i64) -> Vec<Target<'a>> {
        self.kinds
            .iter()
            .map(|(kind, module)| Target {
                store: self.store,
                org: self.org,
                kind: *kind,
                module: module.clone(),
                integration: self.integration,
                source,
                settings: self.settings,
                run,
            })
            .collect()
    }
}

/// The CRM values of an item, cut or refused by length (MAIL-2).
pub(crate) fn crm_values(
    module: &ModuleDef,
    p: &Parsed,
    truncate: bool,
    notices: &mut Vec<Error>,
) -> std::result::Result<Map<String, Value>, Error> {
    let mut values = Map::new();
    for (crm, label, v) in &p.values {
        let Some(def) = module.field(crm) else {
            continue;
        };
        if !def.in_use {
            continue;
        }
        let mut v = v.clone();
        if let (Some(limit), Some(text)) = (def.effective_max_length(), v.as_str()) {
            let length = text.chars().count();
            if length > limit as usize {
                if !truncate {
                    return Err(reasons::too_long(*label, crm, limit, length));
                }
                v = json!(text.chars().take(limit as usize).collect::<String>());
                notices.push(reasons::truncated(*label, crm, limit, length));
            }
        }
        values.insert((*crm).to_string(), v);
    }
    Ok(values)
}

/// What was decided for one item before writing.
enum Plan {
    Failed(Error),
    Skipped(Error),
    Write {
        values: Map<String, Value>,
        notices: Vec<Error>,
    },
}

/// The CRM record an item is, as the sync leaves it.
#[derive(Debug, Clone, Copy)]
struct Became {
    id: i64,
    version: i64,
    /// `created` by the item, or `matched` (it existed: MAIL-3).
    how: &'static str,
}

/// Syncs a batch of contacts into the CRM in one transaction; returns what
/// it did (also recorded in the run).
pub async fn apply(t: &Target<'_>, batch: Vec<Incoming>) -> Result<Counts> {
    let (module, kind) = (t.kind.module(), t.kind);
    let store = t.store;
    let mut tx = store.begin().await?;
    let keys: Vec<&str> = batch.iter().map(|b| b.key.as_str()).collect();
    let known: HashMap<String, MailItem> = store
        .mail_items_in(&mut tx, t.integration, t.source, &keys)
        .await?
        .into_iter()
        .map(|m| (m.item_key.clone(), m))
        .collect();
    let was = |b: &Incoming| -> Option<Became> {
        let m = known.get(&b.key)?;
        Some(Became {
            id: m.crm_id?,
            version: m.crm_version.unwrap_or_default(),
            how: if m.how.as_deref() == Some("matched") {
                "matched"
            } else {
                "created"
            },
        })
    };
    let attendees: Vec<String> = batch
        .iter()
        .filter_map(|b| b.item.as_ref().ok())
        .flat_map(|p| p.attendees.iter().map(|a| email_key(a)))
        .collect();
    let people = People::resolve(t, &mut tx, &attendees).await?;
    // Two items of one source with one UID are one contact twice: the item
    // that had the UID first keeps it, the other is reported and skipped.
    let uids: Vec<&str> = batch
        .iter()
        .filter_map(|b| b.item.as_ref().ok()?.uid.as_deref())
        .collect();
    let mut uid_owner: HashMap<String, String> = HashMap::new();
    for m in store
        .mail_items_by_uid_in(&mut tx, t.integration, t.source, &uids)
        .await?
    {
        if let Some(uid) = m.uid {
            uid_owner.entry(uid).or_insert(m.item_key);
        }
    }
    let plans: Vec<Plan> = batch
        .iter()
        .map(|b| {
            let uid = b.item.as_ref().ok().and_then(|c| c.uid.as_deref());
            if let Some(uid) = uid {
                let owner = uid_owner
                    .entry(uid.to_string())
                    .or_insert_with(|| b.key.clone());
                if *owner != b.key {
                    return Plan::Skipped(reasons::duplicate_uid(uid, owner));
                }
            }
            plan(t, b, known.get(&b.key), &people)
        })
        .collect();
    let writes = || {
        batch
            .iter()
            .zip(&plans)
            .filter(|(_, p)| matches!(p, Plan::Write { .. }))
    };
    // The CRM records the linked items became, as they are now.
    let linked_ids: Vec<i64> = writes().filter_map(|(b, _)| was(b).map(|w| w.id)).collect();
    let mut current: HashMap<i64, Record> = store
        .records_in(&mut tx, t.org.id, module, &linked_ids)
        .await?
        .into_iter()
        .map(|r| (r.id, r))
        .collect();
    // MAIL-3, 4, 5: the records that may already be an item, by key.
    let (mut emails, mut texts): (Vec<String>, HashMap<&'static str, Vec<String>>) =
        (Vec::new(), HashMap::new());
    for (_, p) in writes().filter(|(b, _)| was(b).is_none()) {
        if let Plan::Write { values, .. } = p {
            match kind.probe(values) {
                Some(Probe::Email(e)) => emails.push(e),
                Some(Probe::Text(field, v)) => texts.entry(field).or_default().push(v),
                None => {}
            }
        }
    }
    let mut candidates: Vec<Record> = store
        .records_by_email_keys_in(&mut tx, t.org.id, &[module], &emails)
        .await?
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    for (field, values) in &texts {
        candidates.extend(
            store
                .records_by_text_keys_in(&mut tx, t.org.id, module, field, values)
                .await?,
        );
    }
    // Oldest first: of several records with one key, the earliest created
    // is the one an item becomes.
    candidates.sort_by_key(|r| (r.created_at, r.id));
    let mut by_key: HashMap<String, i64> = HashMap::new();
    for r in candidates {
        for k in kind.keys(&r.fields) {
            by_key.entry(k).or_insert(r.id);
        }
        current.entry(r.id).or_insert(r);
    }
    let origin = Origin::Integration(t.integration);
    let mut w = Written {
        out: Outcome::default(),
        states: vec![None; batch.len()],
        again: Vec::new(),
        item_of: Vec::new(),
        by_key,
        current,
    };
    // New records are made together at the end of the batch: a round trip
    // per record would cost more than the records. An item whose key a
    // record still to be made has gets those made first, and then matches.
    let mut pending: Vec<Pending> = Vec::new();
    let mut pending_keys: HashSet<String> = HashSet::new();
    for (n, (b, p)) in batch.iter().zip(plans).enumerate() {
        let before = w.out.items.len();
        let linked = was(b);
        let (values, notices) = match p {
            // A failed item keeps the record it is linked to (so a later
            // sync updates it rather than matching it afresh) and is read
            // again: its row keeps no content hash.
            Plan::Failed(e) => {
                w.out
                    .fail(&e, (t.source, 0), linked.map(|l| (module, l.id)));
                w.again.push(n);
                w.end(n, before, linked);
                continue;
            }
            Plan::Skipped(e) => {
                w.out
                    .skip(&e, (t.source, 0), linked.map(|l| (module, l.id)));
                w.end(n, before, linked);
                continue;
            }
            Plan::Write { values, notices } => (values, notices),
        };
        let keys = kind.keys(&values);
        if linked.is_none() && keys.iter().any(|k| pending_keys.contains(k)) {
            pending_keys.clear();
            w.create(t, &mut tx, &people, &batch, std::mem::take(&mut pending))
                .await?;
        }
        let found = match linked {
            Some(l) => Some((l.id, None)),
            None => keys
                .iter()
                .find_map(|k| w.by_key.get(k).map(|id| (*id, Some(k.clone())))),
        };
        // A linked record purged from the bin since: the item is new again.
        let existing = found.and_then(|(id, by)| w.current.get(&id).map(|r| (r.clone(), by)));
        let written = match existing {
            Some((rec, _)) if rec.deleted_at.is_some() => {
                let e = reasons::crm_record_deleted(module, rec.id);
                w.out.skip(&e, (t.source, 0), Some((module, rec.id)));
                Ok(linked)
            }
            Some((rec, matched_by)) => {
                let id = rec.id;
                let how = linked.map_or("matched", |l| l.how);
                let changes: Map<String, Value> = values
                    .iter()
                    .filter(|(k, v)| rec.fields.get(*k) != Some(*v))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if linked.is_none() {
                    let (en, ja) = kind.explain(matched_by.as_deref().unwrap_or_default());
                    let e = reasons::matched_existing(module, id, (&en, &ja), kind.dedup_rule());
                    w.out.link(&e, (t.source, 0), (module, id));
                }
                if changes.is_empty() {
                    Ok(Some(Became {
                        id,
                        version: rec.version,
                        how,
                    }))
                } else {
                    let updated = store
                        .update_record_in(&mut tx, t.org.id, &t.module, id, changes, None, origin)
                        .await;
                    updated.map(|r| {
                        if linked.is_some() {
                            w.out.counts.updated += 1;
                        }
                        let became = Became {
                            id,
                            version: r.version,
                            how,
                        };
                        w.current.insert(id, r);
                        Some(became)
                    })
                }
            }
            None => {
                pending_keys.extend(keys);
                pending.push(Pending { n, values, notices });
                continue;
            }
        };
        w.settle(
            t,
            &mut tx,
            &people,
            (n, before),
            &batch[n],
            written,
            &notices,
            linked,
        )
        .await?;
    }
    w.create(t, &mut tx, &people, &batch, pending).await?;
    let Written {
        mut out,
        states,
        again,
        item_of,
        ..
    } = w;
    let rows: Vec<MailItemState> = batch
        .iter()
        .zip(&states)
        .enumerate()
        .map(|(n, (b, state))| {
            let card = b.item.as_ref().ok();
            MailItemState {
                source: t.source,
                item_key: &b.key,
                data_type: kind.data_type(),
                etag: b.etag.as_deref(),
                // An item that was not written, or failed, is read again
                // next time.
                content_hash: match (card, state) {
                    (Some(c), Some(_)) if !again.contains(&n) => &c.hash,
                    _ => "",
                },
                crm: state.map(|w| (module, w.id, w.version)),
                how: state.map(|w| w.how),
                uid: card.and_then(|c| c.uid.as_deref()),
            }
        })
        .collect();
    let ids = store
        .save_mail_items_in(&mut tx, t.integration, &rows)
        .await?;
    for (n, i) in item_of {
        let item = &mut out.items[i];
        item.source_id = ids[n];
        let mut details = item.details.0.clone();
        details["item"] = batch[n].at.clone();
        item.details = kizuna_store::Json(details);
    }
    store
        .record_progress_in(&mut tx, t.run, out.counts, &out.items)
        .await?;
    tx.commit().await?;
    Ok(out.counts)
}

/// An item whose record is still to be made, with what its settling needs.
struct Pending {
    n: usize,
    values: Map<String, Value>,
    notices: Vec<Error>,
}

/// What a batch has written so far, and what its history will say.
struct Written {
    out: Outcome,
    /// The record each item is, by the item's index.
    states: Vec<Option<Became>>,
    /// The items to read again next time (they failed).
    again: Vec<usize>,
    /// Items' outcomes name the item by its `mail_items` id, known only once
    /// the rows are saved: (index of the item, index in out.items).
    item_of: Vec<(usize, usize)>,
    /// The record each dedup key is (MAIL-3, 4, 5).
    by_key: HashMap<String, i64>,
    current: HashMap<i64, Record>,
}

impl Written {
    /// Item `n` is `state`; its history items from `before` on are its own.
    fn end(&mut self, n: usize, before: usize, state: Option<Became>) {
        self.item_of
            .extend((before..self.out.items.len()).map(|i| (n, i)));
        self.states[n] = state;
    }

    /// Ends a written item: its participants associated with its record
    /// and its notices told; or, when the write was refused, its failure
    /// recorded and the item read again next time.
    #[allow(clippy::too_many_arguments)]
    async fn settle(
        &mut self,
        t: &Target<'_>,
        tx: &mut Tx,
        people: &People,
        (n, before): (usize, usize),
        item: &Incoming,
        written: Result<Option<Became>>,
        notices: &[Error],
        linked: Option<Became>,
    ) -> Result<()> {
        let module = t.kind.module();
        let written = match (written, item.item.as_ref()) {
            (Ok(Some(w)), Ok(p)) if !p.attendees.is_empty() => people
                .associate(t, tx, w.id, &p.attendees)
                .await
                .map(|()| Some(w)),
            (w, _) => w,
        };
        let state = match written {
            Ok(became) => {
                for notice in notices {
                    self.out
                        .notice(notice, (t.source, 0), became.map(|w| (module, w.id)));
                }
                became
            }
            Err(e) if e.kind == kizuna_domain::Kind::Internal => return Err(e),
            Err(e) => {
                self.out
                    .fail(&e, (t.source, 0), linked.map(|w| (module, w.id)));
                self.again.push(n);
                linked
            }
        };
        self.end(n, before, state);
        Ok(())
    }

    /// Makes the records of `pending` in one statement, and settles their
    /// items. When the store refuses the batch (a unique field two of them
    /// share, say), they are made one at a time, so that the refusal fails
    /// only the item it is about.
    async fn create(
        &mut self,
        t: &Target<'_>,
        tx: &mut Tx,
        people: &People,
        batch: &[Incoming],
        pending: Vec<Pending>,
    ) -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let origin = Origin::Integration(t.integration);
        let rows: Vec<Map<String, Value>> = pending.iter().map(|p| p.values.clone()).collect();
        let created: Vec<Result<Record>> = match t
            .store
            .create_records_in(tx, t.org.id, &t.module, rows, origin)
            .await
        {
            Ok(records) => records.into_iter().map(Ok).collect(),
            Err(e) if e.kind == kizuna_domain::Kind::Internal => return Err(e),
            Err(_) => {
                let mut one_by_one = Vec::with_capacity(pending.len());
                for p in &pending {
                    let made = t
                        .store
                        .create_records_in(tx, t.org.id, &t.module, vec![p.values.clone()], origin)
                        .await
                        .and_then(|r| {
                            r.into_iter()
                                .next()
                                .ok_or_else(|| Error::internal("no record was created"))
                        });
                    one_by_one.push(made);
                }
                one_by_one
            }
        };
        for (p, made) in pending.into_iter().zip(created) {
            let written = made.map(|r| {
                self.out.counts.added += 1;
                for k in t.kind.keys(&p.values) {
                    self.by_key.entry(k).or_insert(r.id);
                }
                let became = Became {
                    id: r.id,
                    version: r.version,
                    how: "created",
                };
                self.current.insert(r.id, r);
                Some(became)
            });
            // Nothing was told of it before it was put off.
            let before = self.out.items.len();
            self.settle(
                t,
                tx,
                people,
                (p.n, before),
                &batch[p.n],
                written,
                &p.notices,
                None,
            )
            .await?;
        }
        Ok(())
    }
}

/// What to do with one item, before looking at the CRM.
fn plan(t: &Target<'_>, b: &Incoming, known: Option<&MailItem>, people: &People) -> Plan {
    let crm = known.and_then(|m| m.crm_id);
    let c = match &b.item {
        Ok(c) => c,
        Err(NotRead::Unreadable(e)) => return Plan::Failed(reasons::unreadable(e)),
        Err(NotRead::Skipped(e)) => return Plan::Skipped(e.clone()),
    };
    if let Some(cat) = &t.settings.category
        && !c.categories.iter().any(|x| x.eq_ignore_ascii_case(cat))
    {
        return Plan::Skipped(reasons::not_in_category(cat, &c.categories));
    }
    if let (Some(m), Some(id)) = (known, crm)
        && m.content_hash == c.hash
    {
        return Plan::Skipped(reasons::unchanged(t.kind.module(), id));
    }
    let mut notices = c.notices.clone();
    let with_people;
    let c = if c.attendees.is_empty() {
        c
    } else {
        let mut p = c.clone();
        p.values.push((
            PARTICIPANTS,
            ("Attendees", "出席者"),
            json!(people.describe(&c.attendees)),
        ));
        with_people = p;
        &with_people
    };
    let values = match crm_values(&t.module, c, t.settings.truncate, &mut notices) {
        Ok(v) => v,
        Err(e) => return Plan::Failed(e),
    };
    // Every other check of the CRM (e-mail form, dates, a required last
    // name) before anything is written; an update checks only what it sends.
    let mode = if crm.is_some() {
        Mode::Update
    } else {
        Mode::Create
    };
    match validate_fields(&t.module, &values, mode) {
        Ok(valid) => Plan::Write {
            values: valid,
            notices,
        },
        Err(e) => Plan::Failed(e),
    }
}

/// The CRM field an event's participants are listed in (MAIL-5, 6).
pub const PARTICIPANTS: &str = "Participants";

/// Who the participants of a batch's items are in the CRM (MAIL-6, 8): a
/// Contact (the earliest created when several share the address), else a
/// Lead, else a CRM user, else the address alone.
#[derive(Default)]
struct People {
    records: HashMap<String, (&'static str, i64)>,
    users: std::collections::HashSet<String>,
}

impl People {
    async fn resolve(t: &Target<'_>, tx: &mut Tx, emails: &[String]) -> Result<People> {
        let mut people = People::default();
        if emails.is_empty() {
            return Ok(people);
        }
        // Oldest first, so the first Contact seen is the earliest created.
        for (key, r) in t
            .store
            .records_by_email_keys_in(tx, t.org.id, &["Contacts", "Leads"], emails)
            .await?
        {
            let module = if r.module == "Contacts" {
                "Contacts"
            } else {
                "Leads"
            };
            match people.records.get(&key) {
                Some(("Contacts", _)) => {}
                Some(_) if module == "Leads" => {}
                _ => {
                    people.records.insert(key, (module, r.id));
                }
            }
        }
        for m in t.store.members(t.org.id).await? {
            people.users.insert(email_key(&m.email));
        }
        Ok(people)
    }

    /// The participants as the CRM event lists them, one a line: each
    /// address with what it is in the CRM.
    fn describe(&self, attendees: &[String]) -> String {
        attendees
            .iter()
            .map(|a| match self.records.get(&email_key(a)) {
                Some((m, id)) => format!("{a} ({m} {id})"),
                None if self.users.contains(&email_key(a)) => format!("{a} (user)"),
                None => a.clone(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Associates a written event with the Contacts and Leads among its
    /// participants.
    async fn associate(
        &self,
        t: &Target<'_>,
        tx: &mut Tx,
        id: i64,
        attendees: &[String],
    ) -> Result<()> {
        for module in ["Contacts", "Leads"] {
            let pairs: Vec<(i64, i64)> = attendees
                .iter()
                .filter_map(|a| self.records.get(&email_key(a)))
                .filter(|(m, _)| *m == module)
                .map(|(_, other)| (id, *other))
                .collect();
            if !pairs.is_empty() {
                let name = kizuna_apps::records::association_name(t.kind.module(), module);
                t.store.associate_in(tx, t.org.id, &pairs, &name).await?;
            }
        }
        Ok(())
    }
}

/// The e-mail addresses a participants list names, in lower case and
/// sorted (an event's dedup key: MAIL-5).
pub fn participant_keys(listed: &str) -> Vec<String> {
    let mut keys: Vec<String> = listed
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(email_key)
        .filter(|k| !k.is_empty())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}
