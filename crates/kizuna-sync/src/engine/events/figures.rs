//! An event's figures on its Campaign (EVT-14): tickets sold (attendees not
//! cancelled), check-ins (attended) and revenue (paid orders; money, so only
//! once the CRM org has a currency, EVT-11). They are derived values: counted
//! whole by the database for the events a run touched, when the run's stream
//! ends, and written only where they changed — never merged, never sent back.

use super::{ATTENDEES_STREAM, EVENT, ORDERS_STREAM, Plan};
use crate::engine::Stream;
use kizuna_domain::Result;
use kizuna_domain::validate::{Mode, validate_fields};
use kizuna_store::{Counts, LinkSide, ListQuery, Origin, Store, Tx};
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap};

const FIGURES: [&str; 3] = ["Tickets_Sold", "Check_Ins", "Revenue"];

impl Plan {
    /// Whether changes of `stream` can move an event's figures.
    pub(super) fn moves_figures(stream: &Stream) -> bool {
        matches!(stream.name, ATTENDEES_STREAM | ORDERS_STREAM)
    }

    /// The events that the attendees or orders `ids` belong to.
    pub(super) async fn events_of(
        &self,
        store: &Store,
        tx: &mut Tx,
        ids: &[i64],
    ) -> Result<Vec<i64>> {
        store.targets_of_in(tx, self.events.id, ids, "Event").await
    }

    /// Writes the figures of the `touched` events (of every event, after a
    /// run that did not finish) on their Campaigns, in `tx`; returns the
    /// Campaigns it updated.
    pub(crate) async fn settle_in(
        &self,
        store: &Store,
        tx: &mut Tx,
        stream: &Stream,
        touched: &BTreeSet<i64>,
        all: bool,
    ) -> Result<Counts> {
        let mut counts = Counts::default();
        // An org made before the Campaign had these fields has no place for them.
        if !Self::moves_figures(stream) || self.campaigns.field(FIGURES[0]).is_none() {
            return Ok(counts);
        }
        let events: Vec<i64> = if all {
            self.all_events(store).await?
        } else {
            touched.iter().copied().collect()
        };
        if events.is_empty() {
            return Ok(counts);
        }
        let campaign_of: HashMap<i64, i64> = store
            .links_in(tx, self.integration, EVENT, LinkSide::Other, &events)
            .await?
            .into_iter()
            .map(|l| (l.other_id, l.crm_id))
            .collect();
        let figures = self.figures(store, tx, &events).await?;
        let ids: Vec<i64> = campaign_of.values().copied().collect();
        let campaigns = store.records_in(tx, self.crm.id, "Campaigns", &ids).await?;
        for c in campaigns.iter().filter(|c| c.deleted_at.is_none()) {
            let Some((event, _)) = campaign_of.iter().find(|(_, id)| **id == c.id) else {
                continue;
            };
            let wanted = figures
                .get(event)
                .cloned()
                .unwrap_or_else(|| self.no_figures());
            let changed: Map<String, Value> = wanted
                .into_iter()
                .filter(|(k, v)| c.fields.get(k).unwrap_or(&Value::Null) != v)
                .collect();
            if changed.is_empty() {
                continue;
            }
            let values = validate_fields(&self.campaigns, &changed, Mode::Update)?;
            store
                .update_record_in(
                    tx,
                    self.crm.id,
                    &self.campaigns,
                    c.id,
                    values,
                    None,
                    Origin::Integration(self.integration),
                )
                .await?;
            counts.updated += 1;
        }
        Ok(counts)
    }

    /// Figures of an event with no attendees and no orders.
    fn no_figures(&self) -> Map<String, Value> {
        let mut v = Map::new();
        v.insert(FIGURES[0].into(), json!(0));
        v.insert(FIGURES[1].into(), json!(0));
        if let Some(currency) = &self.crm.currency {
            v.insert(
                FIGURES[2].into(),
                json!({"amount_minor": 0, "currency": currency}),
            );
        }
        v
    }

    /// Each event's figures, counted by the database.
    async fn figures(
        &self,
        store: &Store,
        tx: &mut Tx,
        events: &[i64],
    ) -> Result<HashMap<i64, Map<String, Value>>> {
        let mut out: HashMap<i64, Map<String, Value>> =
            events.iter().map(|e| (*e, self.no_figures())).collect();
        let tallies = store
            .tally_referrers_in(tx, self.events.id, events, ("Attendees", "Event"), "Status")
            .await?;
        for t in tallies {
            let v = out.entry(t.target).or_insert_with(|| self.no_figures());
            let status = t.value.as_deref().unwrap_or_default();
            let add = |v: &mut Map<String, Value>, key: &str, n: i64| {
                let now = v.get(key).and_then(Value::as_i64).unwrap_or(0);
                v.insert(key.into(), json!(now + n));
            };
            if status != "cancelled" {
                add(v, FIGURES[0], t.n);
            }
            if status == "attended" {
                add(v, FIGURES[1], t.n);
            }
        }
        if let Some(crm_currency) = &self.crm.currency {
            let totals = store
                .total_referrers_in(
                    tx,
                    self.events.id,
                    events,
                    ("Orders", "Event"),
                    "Total",
                    ("Status", "paid"),
                )
                .await?;
            // Orders in another currency than the CRM's are not added up
            // into a figure that would mix them.
            for t in totals
                .iter()
                .filter(|t| t.currency.as_deref() == Some(crm_currency.as_str()))
            {
                if let Some(v) = out.get_mut(&t.target) {
                    v.insert(
                        FIGURES[2].into(),
                        json!({"amount_minor": t.amount_minor, "currency": crm_currency}),
                    );
                }
            }
        }
        Ok(out)
    }

    /// Every live event of the Events org.
    async fn all_events(&self, store: &Store) -> Result<Vec<i64>> {
        let mut ids = Vec::new();
        let mut q = ListQuery {
            limit: 1000,
            ..ListQuery::default()
        };
        loop {
            let page = store
                .list_records(self.events.id, &self.events_module, &q)
                .await?;
            ids.extend(page.records.iter().map(|r| r.id));
            match page.next_cursor {
                Some(c) => q.cursor = Some(c),
                None => return Ok(ids),
            }
        }
    }
}
