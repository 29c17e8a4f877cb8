//! One chunk of a two-way data type's changes, on either side: linked
//! pairs merged, deletes by the policy, new records tied to their existing
//! twin or created, lookups translated through the links.

use super::reasons::{kept_unlinked, matched_existing, twin_gone};
use super::{MatchKey, OnDelete, Pairing, Shape, Side, TwinType, by_id, new_link, reconcile};
use crate::engine::{Outcome, outcome::At};
use kizuna_domain::Result;
use kizuna_domain::field::ModuleDef;
use kizuna_domain::validate::{Mode, email_key, validate_fields};
use kizuna_store::{Link, LinkPair, Record, Store, Tx};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;

/// The ids of linked records by data type, both ways, as far as a chunk
/// needs them for its lookups.
#[derive(Default)]
struct Ids {
    crm_of: HashMap<(&'static str, i64), i64>,
    other_of: HashMap<(&'static str, i64), i64>,
}

impl Ids {
    fn add(&mut self, data_type: &'static str, l: LinkPair) {
        self.crm_of.insert((data_type, l.other_id), l.crm_id);
        self.other_of.insert((data_type, l.crm_id), l.other_id);
    }
}

/// A data type with the chunk's translated lookups: the `Shape` of a pair.
struct Bound<'a> {
    t: &'a TwinType,
    lookups: Vec<(&'a str, &'static str)>,
    ids: &'a Ids,
}

impl Bound<'_> {
    fn lookup_type(&self, crm_field: &str) -> Option<&'static str> {
        self.lookups
            .iter()
            .find(|(f, _)| *f == crm_field)
            .map(|(_, d)| *d)
    }

    /// A lookup's id from one org's terms to the other's; `null` when the
    /// record it points at has no twin.
    fn translate(
        &self,
        v: &Value,
        map: &HashMap<(&'static str, i64), i64>,
        dt: &'static str,
    ) -> Value {
        v.as_i64()
            .and_then(|id| map.get(&(dt, id)))
            .map_or(Value::Null, |id| json!(id))
    }
}

impl Shape for Bound<'_> {
    fn crm_module(&self) -> &ModuleDef {
        &self.t.crm
    }
    fn other_module(&self) -> &ModuleDef {
        &self.t.other
    }
    fn crm_values(&self, r: &Record) -> Map<String, Value> {
        let mut v = Map::new();
        for (_, cf) in &self.t.fields {
            if let Some(x) = r.fields.get(cf).filter(|x| !x.is_null()) {
                v.insert(cf.clone(), x.clone());
            }
        }
        v
    }
    fn other_values(&self, r: &Record) -> Map<String, Value> {
        let mut v = Map::new();
        for (of, cf) in &self.t.fields {
            let Some(x) = r.fields.get(of).filter(|x| !x.is_null()) else {
                continue;
            };
            let x = match self.lookup_type(cf) {
                Some(dt) => self.translate(x, &self.ids.crm_of, dt),
                None => x.clone(),
            };
            if !x.is_null() {
                v.insert(cf.clone(), x);
            }
        }
        v
    }
    fn to_other(&self, values: &Map<String, Value>) -> Map<String, Value> {
        let mut v = Map::new();
        for (of, cf) in &self.t.fields {
            if let Some(x) = values.get(cf) {
                let x = match self.lookup_type(cf) {
                    Some(dt) if !x.is_null() => self.translate(x, &self.ids.other_of, dt),
                    _ => x.clone(),
                };
                v.insert(of.clone(), x);
            }
        }
        v
    }
}

/// One chunk of two-way changes: the integration's pairing, its data types
/// and delete policies, and the links to save at the chunk's end.
pub(crate) struct TwinSync<'a, 'b> {
    pub store: &'a Store,
    pub tx: &'b mut Tx,
    pub out: &'b mut Outcome,
    pub pairing: &'a Pairing,
    pub types: &'a [TwinType],
    pub on_crm_delete: OnDelete,
    pub on_other_delete: OnDelete,
    /// The other app's name in messages: (en, ja).
    pub app: (&'static str, &'static str),
    /// Links made or moved by this chunk, by (data type, other id): one
    /// each, the last one made.
    pub links: BTreeMap<(&'static str, i64), Link>,
}

type Boxed<'f> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'f>>;

impl<'a, 'b> TwinSync<'a, 'b> {
    fn org(&self, side: Side) -> i64 {
        match side {
            Side::Crm => self.pairing.crm_org,
            Side::Other => self.pairing.other_org,
        }
    }

    /// Links of `t` by one side's ids: those saved, and those this chunk made.
    async fn links_of(
        &mut self,
        t: &TwinType,
        side: Side,
        ids: &[i64],
    ) -> Result<HashMap<i64, Link>> {
        let key = |l: &Link| match side {
            Side::Crm => l.crm_id,
            Side::Other => l.other_id,
        };
        let mut found: HashMap<i64, Link> = self
            .store
            .links_in(
                self.tx,
                self.pairing.integration,
                t.data_type,
                side.link_side(),
                ids,
            )
            .await?
            .into_iter()
            .map(|l| (key(&l), l))
            .collect();
        let wanted: BTreeSet<i64> = ids.iter().copied().collect();
        for l in self.links.values().filter(|l| l.data_type == t.data_type) {
            if wanted.contains(&key(l)) {
                found.insert(key(l), l.clone());
            }
        }
        Ok(found)
    }

    /// The ids of the links of `t` by one side's ids: those saved, and those
    /// this chunk made; keyed by that side's id.
    async fn pairs_of(
        &mut self,
        t: &TwinType,
        side: Side,
        ids: &[i64],
    ) -> Result<HashMap<i64, LinkPair>> {
        let key = |p: &LinkPair| match side {
            Side::Crm => p.crm_id,
            Side::Other => p.other_id,
        };
        let saved = self
            .store
            .link_pairs_in(
                self.tx,
                self.pairing.integration,
                t.data_type,
                side.link_side(),
                ids,
            )
            .await?;
        let made = self
            .links
            .values()
            .filter(|l| l.data_type == t.data_type)
            .map(|l| LinkPair {
                other_id: l.other_id,
                crm_id: l.crm_id,
            });
        let wanted: BTreeSet<i64> = ids.iter().copied().collect();
        Ok(saved
            .into_iter()
            .chain(made.filter(|p| wanted.contains(&key(p))))
            .map(|p| (key(&p), p))
            .collect())
    }

    /// Records of `t` changed on `side` (their ids, once each, in order, and
    /// the operations each had): each side follows the other. `read` holds
    /// those records when they were read already, as this transaction sees
    /// them.
    pub(crate) fn changed<'s>(
        &'s mut self,
        t: &'s TwinType,
        side: Side,
        ids: &'s [i64],
        ops: &'s HashMap<i64, Vec<&'s str>>,
        read: Option<Vec<Record>>,
    ) -> Boxed<'s>
    where
        'a: 's,
        'b: 's,
    {
        Box::pin(async move { self.changed_now(t, side, ids, ops, read).await })
    }

    async fn changed_now(
        &mut self,
        t: &TwinType,
        side: Side,
        ids: &[i64],
        ops: &HashMap<i64, Vec<&str>>,
        read: Option<Vec<Record>>,
    ) -> Result<()> {
        let (module, twin_module) = match side {
            Side::Crm => (&t.crm, &t.other),
            Side::Other => (&t.other, &t.crm),
        };
        let records = by_id(match read {
            Some(records) => records,
            None => {
                self.store
                    .records_in(self.tx, self.org(side), &module.api_name, ids)
                    .await?
            }
        });
        let links = self.links_of(t, side, ids).await?;
        let twin_of = |l: &Link| match side {
            Side::Crm => l.other_id,
            Side::Other => l.crm_id,
        };
        let twin_ids: Vec<i64> = links.values().map(twin_of).collect();
        let twin_side = match side {
            Side::Crm => Side::Other,
            Side::Other => Side::Crm,
        };
        let twins = by_id(
            self.store
                .records_in(
                    self.tx,
                    self.org(twin_side),
                    &twin_module.api_name,
                    &twin_ids,
                )
                .await?,
        );
        let seen: Vec<(&Record, Side)> = records
            .values()
            .filter(|r| r.deleted_at.is_none())
            .map(|r| (r, side))
            .chain(twins.values().map(|r| (r, twin_side)))
            .collect();
        let ids_map = self.lookup_ids(t, side, &seen).await?;
        let bound = Bound {
            t,
            lookups: t
                .lookups(self.types)
                .into_iter()
                .map(|(f, tt)| (f, tt.data_type))
                .collect(),
            ids: &ids_map,
        };
        let on_delete = match side {
            Side::Crm => self.on_crm_delete,
            Side::Other => self.on_other_delete,
        };
        let mut new: Vec<&Record> = Vec::new();
        for id in ids {
            let Some(r) = records.get(id) else {
                // Purged: the twin stays, unlinked.
                if let Some(l) = links.get(id) {
                    self.unlink(t, l).await?;
                }
                continue;
            };
            let at: At = (&module.api_name, r.id);
            match (links.get(id), r.deleted_at.is_none()) {
                (None, false) => {}
                (None, true) => new.push(r),
                (Some(l), false) => {
                    let twin = twins.get(&twin_of(l)).filter(|x| x.deleted_at.is_none());
                    match (on_delete, twin) {
                        (OnDelete::Delete, Some(x)) => {
                            self.store
                                .set_deleted_in(
                                    self.tx,
                                    self.org(twin_side),
                                    &twin_module.api_name,
                                    x.id,
                                    true,
                                    self.pairing.origin(),
                                )
                                .await?;
                            self.out.counts.deleted += 1;
                        }
                        (OnDelete::Delete, None) => {}
                        (OnDelete::Unlink, _) => {
                            self.unlink(t, l).await?;
                            self.out.notice(
                                &kept_unlinked(side, self.app, &twin_module.api_name, twin_of(l)),
                                at,
                                Some((&twin_module.api_name, twin_of(l))),
                            );
                        }
                    }
                }
                (Some(l), true) => {
                    let restored = ops.get(id).is_some_and(|o| o.contains(&"restore"));
                    let twin = match twins.get(&twin_of(l)) {
                        Some(x) if x.deleted_at.is_some() && restored => Some(
                            self.store
                                .set_deleted_in(
                                    self.tx,
                                    self.org(twin_side),
                                    &twin_module.api_name,
                                    x.id,
                                    false,
                                    self.pairing.origin(),
                                )
                                .await?,
                        ),
                        Some(x) if x.deleted_at.is_none() => Some(x.clone()),
                        _ => None,
                    };
                    match twin {
                        Some(x) => {
                            let (crm, other) = match side {
                                Side::Crm => (r, &x),
                                Side::Other => (&x, r),
                            };
                            self.reconcile(&bound, l, crm, other).await?;
                        }
                        None => self.out.skip(
                            &twin_gone(&twin_module.api_name, twin_of(l), &module.api_name, r.id),
                            at,
                            Some((&twin_module.api_name, twin_of(l))),
                        ),
                    }
                }
            }
        }
        if !new.is_empty() {
            self.create_twins(&bound, side, &new).await?;
        }
        Ok(())
    }

    async fn reconcile(
        &mut self,
        b: &Bound<'_>,
        l: &Link,
        crm: &Record,
        other: &Record,
    ) -> Result<()> {
        if let Some(link) = reconcile(
            self.store,
            self.tx,
            self.out,
            self.pairing,
            b,
            l,
            crm,
            other,
        )
        .await?
        {
            self.save(b.t, link);
        }
        Ok(())
    }

    fn save(&mut self, t: &TwinType, link: Link) {
        self.links.insert((t.data_type, link.other_id), link);
    }

    async fn unlink(&mut self, t: &TwinType, l: &Link) -> Result<()> {
        self.links.remove(&(t.data_type, l.other_id));
        self.store
            .remove_links_in(
                self.tx,
                self.pairing.integration,
                t.data_type,
                &[l.other_id],
            )
            .await
    }

    /// The twins of every record the lookups of `records` point at, syncing
    /// first those that have none yet (a contact may be read before its
    /// account's change).
    async fn lookup_ids(
        &mut self,
        t: &TwinType,
        side: Side,
        records: &[(&Record, Side)],
    ) -> Result<Ids> {
        let mut ids = Ids::default();
        let lookups = t.lookups(self.types);
        if lookups.is_empty() {
            return Ok(ids);
        }
        for (crm_field, target) in lookups {
            let other_field = t
                .fields
                .iter()
                .find(|(_, cf)| cf == crm_field)
                .map(|(of, _)| of.as_str())
                .unwrap_or(crm_field);
            let mut by_side: [(Side, BTreeSet<i64>); 2] =
                [(Side::Crm, BTreeSet::new()), (Side::Other, BTreeSet::new())];
            for (r, in_side) in records {
                // A CRM record holds CRM ids; the other app's, its own.
                let (s, f) = match in_side {
                    Side::Crm => (0, crm_field),
                    Side::Other => (1, other_field),
                };
                if let Some(id) = r.fields.get(f).and_then(Value::as_i64) {
                    by_side[s].1.insert(id);
                }
            }
            for (s, wanted) in by_side {
                let wanted: Vec<i64> = wanted.into_iter().collect();
                if wanted.is_empty() {
                    continue;
                }
                let mut found = self.pairs_of(target, s, &wanted).await?;
                let missing: Vec<i64> = wanted
                    .iter()
                    .copied()
                    .filter(|id| !found.contains_key(id))
                    .collect();
                // Only a record changing now needs its lookups' twins made.
                if !missing.is_empty() && s == side {
                    self.changed(target, s, &missing, &HashMap::new(), None)
                        .await?;
                    found = self.pairs_of(target, s, &wanted).await?;
                }
                for p in found.into_values() {
                    ids.add(target.data_type, p);
                }
            }
        }
        Ok(ids)
    }

    /// Records new on `side`: each tied to the unlinked record the other side
    /// already holds under the same key, else created there.
    async fn create_twins(&mut self, b: &Bound<'_>, side: Side, new: &[&Record]) -> Result<()> {
        let t = b.t;
        let (module, twin_module, twin_side) = match side {
            Side::Crm => (&t.crm, &t.other, Side::Other),
            Side::Other => (&t.other, &t.crm, Side::Crm),
        };
        let email_field = |s: Side| {
            let m = if s == Side::Crm { &t.crm } else { &t.other };
            m.email_key_field().map(|f| f.api_name.clone())
        };
        let email_fields = [email_field(Side::Crm), email_field(Side::Other)];
        let key_of = |r: &Record, s: Side| -> Option<String> {
            let (field, email) = match (t.key, s) {
                (MatchKey::Email, Side::Crm) => (email_fields[0].as_deref()?, true),
                (MatchKey::Email, Side::Other) => (email_fields[1].as_deref()?, true),
                (MatchKey::Text(cf, _), Side::Crm) => (cf, false),
                (MatchKey::Text(_, of), Side::Other) => (of, false),
            };
            let v = r.fields.get(field).and_then(Value::as_str)?;
            let k = if email {
                email_key(v)
            } else {
                v.trim().to_lowercase()
            };
            (!k.is_empty()).then_some(k)
        };
        let keys: Vec<String> = new
            .iter()
            .filter_map(|r| key_of(r, side))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let candidates = match t.key {
            MatchKey::Email => self
                .store
                .records_by_email_keys_in(
                    self.tx,
                    self.org(twin_side),
                    &[&twin_module.api_name],
                    &keys,
                )
                .await?
                .into_iter()
                .map(|(_, r)| r)
                .collect(),
            MatchKey::Text(cf, of) => {
                let field = if twin_side == Side::Crm { cf } else { of };
                self.store
                    .records_by_text_keys_in(
                        self.tx,
                        self.org(twin_side),
                        &twin_module.api_name,
                        field,
                        &keys,
                    )
                    .await?
            }
        };
        // A candidate already linked to a record of its own is not taken.
        let candidate_ids: Vec<i64> = candidates.iter().map(|r| r.id).collect();
        let taken = self.pairs_of(t, twin_side, &candidate_ids).await?;
        let mut free: HashMap<String, Vec<Record>> = HashMap::new();
        for c in candidates
            .into_iter()
            .filter(|c| !taken.contains_key(&c.id))
        {
            if let Some(k) = key_of(&c, twin_side) {
                free.entry(k).or_default().push(c);
            }
        }
        let mut create: Vec<(&Record, Map<String, Value>)> = Vec::new();
        for r in new {
            let at: At = (&module.api_name, r.id);
            let existing = key_of(r, side)
                .and_then(|k| free.get_mut(&k))
                .and_then(|list| (!list.is_empty()).then(|| list.remove(0)));
            if let Some(x) = existing {
                let (crm, other) = match side {
                    Side::Crm => (*r, &x),
                    Side::Other => (&x, *r),
                };
                self.out.link(
                    &matched_existing(&twin_module.api_name, x.id, &module.api_name, r.id),
                    at,
                    (&twin_module.api_name, x.id),
                );
                let link = new_link(
                    self.pairing.integration,
                    t.data_type,
                    other,
                    crm,
                    "matched",
                    Map::new(),
                );
                self.reconcile(b, &link, crm, other).await?;
                continue;
            }
            let values = match side {
                Side::Crm => b.to_other(&b.crm_values(r)),
                Side::Other => b.other_values(r),
            };
            match validate_fields(twin_module, &values, Mode::Create) {
                Ok(values) => create.push((r, values)),
                Err(err) => self.out.fail(&err, at, None),
            }
        }
        if create.is_empty() {
            return Ok(());
        }
        let (sources, rows): (Vec<&Record>, Vec<Map<String, Value>>) = create.into_iter().unzip();
        let made = self
            .store
            .create_records_in(
                self.tx,
                self.org(twin_side),
                twin_module,
                rows,
                self.pairing.origin(),
            )
            .await?;
        for (r, x) in sources.into_iter().zip(made) {
            let (crm, other) = match side {
                Side::Crm => (r, &x),
                Side::Other => (&x, r),
            };
            // What both sides now hold is the base of the next merge.
            let agreed = b.crm_values(crm);
            self.save(
                t,
                new_link(
                    self.pairing.integration,
                    t.data_type,
                    other,
                    crm,
                    "created",
                    agreed,
                ),
            );
            self.out.counts.added += 1;
        }
        Ok(())
    }
}
