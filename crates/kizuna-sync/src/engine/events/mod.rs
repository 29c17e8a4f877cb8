//! CRM ⇄ Events: each event is a Campaign and each Campaign an event, kept in
//! step both ways (EVT-9, EVT-14); attendees whose status the settings name
//! become Leads or Contacts (EVT-8), unless their e-mail is already in the
//! CRM, in which case they are tied to that record (EVT-7); synced attendees
//! are associated with their event's Campaign (EVT-9). Financial fields move
//! only once the CRM org has a currency (EVT-11).
//!
//! Deletes: an attendee cancelled or deleted takes back what its sync added —
//! the Campaign association, and the Lead/Contact the link created, if no
//! other attendee is tied to it and nobody changed it in the CRM since (then
//! it is kept, and the history says so). A deleted event moves its Campaign
//! to the recycle bin; a deleted Campaign leaves its event, which may have
//! attendees and orders, and the history says so.

use super::merge::Policy;
use super::twins::{Pairing, Shape, by_id, new_link, reconcile, twin_gone};
use super::{Outcome, Stream, changed_by_others};
use crate::mapping::{Pair, crm_and_other_orgs};
use kizuna_apps::records::{association_name, enabled_module};
use kizuna_domain::field::ModuleDef;
use kizuna_domain::validate::{Mode, email_key, validate_fields};
use kizuna_domain::{App, Result};
use kizuna_store::{
    Integration, Json, Link, LinkSide, Org, Origin, Record, Store, StreamChange, Tx, now_ms,
};
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

mod attendees;
mod figures;
pub(crate) mod invite;
mod reasons;

use reasons::*;

const ATTENDEE: &str = "attendee";
const EVENT: &str = "event";

const EVENTS_STREAM: &str = "events:Events";
const CAMPAIGNS_STREAM: &str = "crm:Campaigns";
const ATTENDEES_STREAM: &str = "events:Attendees";
const ORDERS_STREAM: &str = "events:Orders";

/// Attendee statuses in the order an attendee passes through them.
const STATUS_ORDER: [&str; 3] = ["registered", "confirmed", "attended"];

/// Event status ⇄ Campaign status.
const STATUS_MAP: [(&str, &str); 4] = [
    ("Draft", "Planning"),
    ("Live", "Active"),
    ("Completed", "Complete"),
    ("Cancelled", "Inactive"),
];

/// Event field ⇄ Campaign field, for the fields that are not money.
const EVENT_FIELDS: [(&str, &str); 3] = [
    ("Event_Name", "Campaign_Name"),
    ("Start_Date", "Start_Date"),
    ("End_Date", "End_Date"),
];
/// The money fields (EVT-11).
const MONEY_FIELDS: [(&str, &str); 2] = [("Budget", "Budgeted_Cost"), ("Expenses", "Actual_Cost")];

pub(crate) struct Plan {
    integration: i64,
    crm: Org,
    events: Org,
    leads: Arc<ModuleDef>,
    contacts: Arc<ModuleDef>,
    target: Arc<ModuleDef>,
    campaigns: Arc<ModuleDef>,
    events_module: Arc<ModuleDef>,
    mapping: Vec<Pair>,
    trigger: &'static str,
    policy: Policy,
}

impl Plan {
    pub(crate) async fn resolve(store: &Store, i: &Integration) -> Result<Plan> {
        let (crm, events) = crm_and_other_orgs(store, i, App::Events).await?;
        let settings = &i.settings.0;
        let target_name = settings["target_module"].as_str().unwrap_or("Leads");
        let mapping = crate::mapping::validate(store, i, &i.mapping.0)
            .await
            .map_err(|e| crate::mapping::broken(i.id, &e))?;
        let trigger = STATUS_ORDER
            .into_iter()
            .find(|s| settings["trigger_status"].as_str() == Some(s))
            .unwrap_or("registered");
        Ok(Plan {
            integration: i.id,
            leads: store.module_of(&crm, "Leads").await?,
            contacts: store.module_of(&crm, "Contacts").await?,
            target: enabled_module(store, &crm, target_name).await?,
            campaigns: enabled_module(store, &crm, "Campaigns").await?,
            events_module: store.module_of(&events, "Events").await?,
            mapping,
            trigger,
            policy: Policy::parse(settings["conflict_policy"].as_str()),
            crm,
            events,
        })
    }

    pub(crate) fn streams(&self) -> Vec<Stream> {
        streams(self.crm.id, self.events.id)
    }

    pub(crate) async fn apply(
        &self,
        store: &Store,
        tx: &mut Tx,
        stream: &Stream,
        changes: &[StreamChange],
        out: &mut Outcome,
    ) -> Result<()> {
        if Self::moves_figures(stream) {
            // Every change counts here, the integration's own (an invited
            // attendee) too: the figures are counted, not sent.
            let all: Vec<i64> = changes.iter().map(|c| c.record_id).collect();
            self.mark_events_of(store, tx, &all).await?;
        }
        let (ids, ops) = changed_by_others(changes, self.integration);
        if ids.is_empty() {
            return Ok(());
        }
        let mut w = Writer {
            plan: self,
            store,
            tx,
            out,
            links: Vec::new(),
        };
        match stream.name {
            EVENTS_STREAM => w.events_changed(&ids, &ops).await?,
            CAMPAIGNS_STREAM => w.campaigns_changed(&ids, &ops).await?,
            ATTENDEES_STREAM => w.attendees_changed(&ids).await?,
            // Orders only move figures (above).
            _ => {}
        }
        let links = std::mem::take(&mut w.links);
        store.save_links_in(w.tx, &links).await
    }

    fn crm_module(&self, name: &str) -> &ModuleDef {
        if name == "Contacts" {
            &self.contacts
        } else {
            &self.leads
        }
    }

    fn currency(&self) -> bool {
        self.crm.currency.is_some()
    }

    /// An event's values in Campaign terms.
    fn event_values(&self, e: &Record) -> Map<String, Value> {
        let mut v = Map::new();
        for (ef, cf) in EVENT_FIELDS {
            copy(&e.fields, ef, &mut v, cf);
        }
        if let Some(s) = e.fields.get("Status").and_then(Value::as_str)
            && let Some((_, c)) = STATUS_MAP.iter().find(|(ev, _)| *ev == s)
        {
            v.insert("Status".into(), json!(c));
        }
        if self.currency() {
            for (ef, cf) in MONEY_FIELDS {
                copy(&e.fields, ef, &mut v, cf);
            }
        }
        v
    }

    /// A Campaign's values (the fields an event has).
    fn campaign_values(&self, c: &Record) -> Map<String, Value> {
        let mut v = Map::new();
        for (_, cf) in EVENT_FIELDS {
            copy(&c.fields, cf, &mut v, cf);
        }
        copy(&c.fields, "Status", &mut v, "Status");
        if self.currency() {
            for (_, cf) in MONEY_FIELDS {
                copy(&c.fields, cf, &mut v, cf);
            }
        }
        v
    }

    /// Campaign-term values as event fields (`null` clears).
    fn to_event_fields(&self, values: &Map<String, Value>) -> Map<String, Value> {
        let mut v = Map::new();
        for (ef, cf) in EVENT_FIELDS.into_iter().chain(MONEY_FIELDS) {
            if let Some(x) = values.get(cf) {
                v.insert(ef.into(), x.clone());
            }
        }
        if let Some(s) = values.get("Status") {
            let mapped = STATUS_MAP
                .iter()
                .find(|(_, c)| Some(*c) == s.as_str())
                .map_or(Value::Null, |(e, _)| json!(e));
            v.insert("Status".into(), mapped);
        }
        v
    }

    /// An attendee's values in the target module's terms, by the mapping.
    fn mapped(&self, a: &Record) -> Map<String, Value> {
        let mut v = Map::new();
        for p in &self.mapping {
            copy(&a.fields, &p.source, &mut v, &p.target);
        }
        v
    }

    fn triggered(&self, a: &Record) -> bool {
        let rank = |s: &str| STATUS_ORDER.iter().position(|x| *x == s);
        let status = a.fields.get("Status").and_then(Value::as_str).unwrap_or("");
        match (rank(status), rank(self.trigger)) {
            (Some(s), Some(t)) => s >= t,
            _ => false,
        }
    }
}

/// An event and its Campaign, in Campaign terms.
impl Shape for Plan {
    fn crm_module(&self) -> &ModuleDef {
        &self.campaigns
    }
    fn other_module(&self) -> &ModuleDef {
        &self.events_module
    }
    fn crm_values(&self, r: &Record) -> Map<String, Value> {
        self.campaign_values(r)
    }
    fn other_values(&self, r: &Record) -> Map<String, Value> {
        self.event_values(r)
    }
    fn to_other(&self, values: &Map<String, Value>) -> Map<String, Value> {
        self.to_event_fields(values)
    }
}

/// The streams a CRM ⇄ Events integration reads, in the order a sync reads
/// them: events before the attendees that refer to them.
pub(crate) fn streams(crm: i64, events: i64) -> Vec<Stream> {
    let s = |name, org, module, direction, data_type| Stream {
        name,
        org,
        module,
        direction,
        data_type,
    };
    vec![
        s(EVENTS_STREAM, events, "Events", "events-to-crm", "events"),
        s(
            CAMPAIGNS_STREAM,
            crm,
            "Campaigns",
            "crm-to-events",
            "campaigns",
        ),
        s(
            ATTENDEES_STREAM,
            events,
            "Attendees",
            "events-to-crm",
            "attendees",
        ),
        s(ORDERS_STREAM, events, "Orders", "events-to-crm", "orders"),
    ]
}

fn copy(from: &Map<String, Value>, key: &str, to: &mut Map<String, Value>, as_key: &str) {
    if let Some(v) = from.get(key).filter(|v| !v.is_null()) {
        to.insert(as_key.to_string(), v.clone());
    }
}

/// One chunk's writes, with the links to save at its end.
struct Writer<'a, 'b> {
    plan: &'a Plan,
    store: &'a Store,
    tx: &'b mut Tx,
    out: &'b mut Outcome,
    links: Vec<Link>,
}

impl Writer<'_, '_> {
    fn origin(&self) -> Origin {
        Origin::Integration(self.plan.integration)
    }

    async fn links_by(
        &mut self,
        data_type: &str,
        side: LinkSide,
        ids: &[i64],
    ) -> Result<HashMap<i64, Link>> {
        Ok(self
            .store
            .links_in(self.tx, self.plan.integration, data_type, side, ids)
            .await?
            .into_iter()
            .map(|l| {
                (
                    if side == LinkSide::Other {
                        l.other_id
                    } else {
                        l.crm_id
                    },
                    l,
                )
            })
            .collect())
    }

    // ----- events and Campaigns ------------------------------------------------

    /// Events changed in the Events app: their Campaigns follow.
    async fn events_changed(&mut self, ids: &[i64], ops: &HashMap<i64, Vec<&str>>) -> Result<()> {
        let p = self.plan;
        let events = by_id(
            self.store
                .records_in(self.tx, p.events.id, "Events", ids)
                .await?,
        );
        let links = self.links_by(EVENT, LinkSide::Other, ids).await?;
        let crm_ids: Vec<i64> = links.values().map(|l| l.crm_id).collect();
        let campaigns = by_id(
            self.store
                .records_in(self.tx, p.crm.id, "Campaigns", &crm_ids)
                .await?,
        );
        let mut create: Vec<(&Record, Map<String, Value>)> = Vec::new();
        for id in ids {
            let Some(e) = events.get(id) else {
                // Purged in the Events app: the Campaign stays, unlinked.
                if links.contains_key(id) {
                    self.store
                        .remove_links_in(self.tx, p.integration, EVENT, &[*id])
                        .await?;
                }
                continue;
            };
            let live = e.deleted_at.is_none();
            if live
                && !p.currency()
                && ["Budget", "Expenses"]
                    .iter()
                    .any(|f| e.fields.get(*f).is_some_and(|v| !v.is_null()))
            {
                self.out.notice(
                    &currency_not_set(&p.crm),
                    ("Events", e.id),
                    links.get(id).map(|l| ("Campaigns", l.crm_id)),
                );
            }
            match (links.get(id), live) {
                (None, false) => {}
                (None, true) => {
                    match validate_fields(&p.campaigns, &p.event_values(e), Mode::Create) {
                        Ok(values) => create.push((e, values)),
                        Err(err) => self.out.fail(&err, ("Events", e.id), None),
                    }
                }
                (Some(l), false) => {
                    if let Some(c) = campaigns.get(&l.crm_id).filter(|c| c.deleted_at.is_none()) {
                        self.store
                            .set_deleted_in(
                                self.tx,
                                p.crm.id,
                                "Campaigns",
                                c.id,
                                true,
                                self.origin(),
                            )
                            .await?;
                        self.out.counts.deleted += 1;
                    }
                }
                (Some(l), true) => {
                    let restored = ops.get(id).is_some_and(|o| o.contains(&"restore"));
                    match campaigns.get(&l.crm_id) {
                        Some(c) if c.deleted_at.is_some() && restored => {
                            let c = self
                                .store
                                .set_deleted_in(
                                    self.tx,
                                    p.crm.id,
                                    "Campaigns",
                                    c.id,
                                    false,
                                    self.origin(),
                                )
                                .await?;
                            self.reconcile(l, &c, e).await?;
                        }
                        Some(c) if c.deleted_at.is_none() => self.reconcile(l, c, e).await?,
                        _ => self.out.skip(
                            &twin_gone("Campaigns", l.crm_id, "Events", e.id),
                            ("Events", e.id),
                            Some(("Campaigns", l.crm_id)),
                        ),
                    }
                }
            }
        }
        if !create.is_empty() {
            let rows: Vec<Map<String, Value>> = create.iter().map(|(_, v)| v.clone()).collect();
            let made = self
                .store
                .create_records_in(self.tx, p.crm.id, &p.campaigns, rows, self.origin())
                .await?;
            for ((e, values), c) in create.into_iter().zip(made) {
                self.links
                    .push(new_link(p.integration, EVENT, e, &c, "created", values));
                self.out.counts.added += 1;
            }
        }
        Ok(())
    }

    /// Campaigns changed in the CRM: their events follow (EVT-14).
    async fn campaigns_changed(
        &mut self,
        ids: &[i64],
        ops: &HashMap<i64, Vec<&str>>,
    ) -> Result<()> {
        let p = self.plan;
        let campaigns = by_id(
            self.store
                .records_in(self.tx, p.crm.id, "Campaigns", ids)
                .await?,
        );
        let links: HashMap<i64, Link> = self
            .store
            .links_in(self.tx, p.integration, EVENT, LinkSide::Crm, ids)
            .await?
            .into_iter()
            .map(|l| (l.crm_id, l))
            .collect();
        let event_ids: Vec<i64> = links.values().map(|l| l.other_id).collect();
        let events = by_id(
            self.store
                .records_in(self.tx, p.events.id, "Events", &event_ids)
                .await?,
        );
        let mut create: Vec<(&Record, Map<String, Value>)> = Vec::new();
        for id in ids {
            let Some(c) = campaigns.get(id) else {
                if let Some(l) = links.get(id) {
                    self.store
                        .remove_links_in(self.tx, p.integration, EVENT, &[l.other_id])
                        .await?;
                }
                continue;
            };
            match (links.get(id), c.deleted_at.is_none()) {
                (None, false) => {}
                (None, true) => {
                    let mut fields = p.to_event_fields(&p.campaign_values(c));
                    if let Some(cur) = &p.crm.currency {
                        fields.insert("Currency".into(), json!(cur));
                    }
                    match validate_fields(&p.events_module, &fields, Mode::Create) {
                        Ok(fields) => create.push((c, fields)),
                        Err(err) => self.out.fail(&err, ("Campaigns", c.id), None),
                    }
                }
                (Some(l), false) => {
                    if ops.get(id).is_some_and(|o| o.contains(&"delete")) {
                        self.out.notice(
                            &event_kept(l.other_id),
                            ("Campaigns", c.id),
                            Some(("Events", l.other_id)),
                        );
                    }
                }
                (Some(l), true) => match events.get(&l.other_id).filter(|e| e.deleted_at.is_none())
                {
                    Some(e) => self.reconcile(l, c, e).await?,
                    None => self.out.skip(
                        &twin_gone("Events", l.other_id, "Campaigns", c.id),
                        ("Campaigns", c.id),
                        Some(("Events", l.other_id)),
                    ),
                },
            }
        }
        if !create.is_empty() {
            let rows: Vec<Map<String, Value>> = create.iter().map(|(_, v)| v.clone()).collect();
            let made = self
                .store
                .create_records_in(self.tx, p.events.id, &p.events_module, rows, self.origin())
                .await?;
            for ((c, _), e) in create.into_iter().zip(made) {
                let synced = p.campaign_values(c);
                self.links
                    .push(new_link(p.integration, EVENT, &e, c, "created", synced));
                self.out.counts.added += 1;
            }
        }
        Ok(())
    }

    /// Brings a linked Campaign and event into step (`twins::reconcile`).
    async fn reconcile(&mut self, l: &Link, c: &Record, e: &Record) -> Result<()> {
        let p = self.plan;
        let pairing = Pairing {
            integration: p.integration,
            crm_org: p.crm.id,
            other_org: p.events.id,
            policy: p.policy,
            rule: None,
        };
        if let Some(link) = reconcile(self.store, self.tx, self.out, &pairing, p, l, c, e).await? {
            self.links.push(link);
        }
        Ok(())
    }

    /// The live Campaign of each event, creating the Campaigns of events not
    /// synced yet (an attendee may arrive before its event's change is read).
    async fn campaigns_of(&mut self, event_ids: &[i64]) -> Result<HashMap<i64, i64>> {
        let mut links = self.links_by(EVENT, LinkSide::Other, event_ids).await?;
        let missing: Vec<i64> = event_ids
            .iter()
            .copied()
            .filter(|id| !links.contains_key(id))
            .collect();
        if !missing.is_empty() {
            self.events_changed(&missing, &HashMap::new()).await?;
            for l in self.links.iter().filter(|l| l.data_type == EVENT) {
                links.insert(l.other_id, l.clone());
            }
        }
        let crm_ids: Vec<i64> = links.values().map(|l| l.crm_id).collect();
        let live: BTreeSet<i64> = self
            .store
            .records_in(self.tx, self.plan.crm.id, "Campaigns", &crm_ids)
            .await?
            .into_iter()
            .filter(|c| c.deleted_at.is_none())
            .map(|c| c.id)
            .collect();
        Ok(links
            .into_iter()
            .filter(|(_, l)| live.contains(&l.crm_id))
            .map(|(e, l)| (e, l.crm_id))
            .collect())
    }
}
