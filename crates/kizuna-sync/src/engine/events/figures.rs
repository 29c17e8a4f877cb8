//! An event's figures on its Campaign (EVT-14): tickets sold (attendees not
//! cancelled), check-ins (attended) and revenue (paid orders; money, so only
//! once the CRM org has a currency, EVT-11). They are derived values: each
//! chunk marks the events it touched as due (`sync_figures_due`, in the
//! chunk's transaction), and when a run's stream ends the database counts the
//! due events whole and they are written where they changed — never merged,
//! never sent back.

use super::{ATTENDEES_STREAM, EVENT, ORDERS_STREAM, Plan};
use crate::engine::Stream;
use kizuna_domain::Result;
use kizuna_domain::validate::{Mode, validate_fields};
use kizuna_store::{Counts, LinkSide, Origin, Store, Tx};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

const FIGURES: [&str; 3] = ["Tickets_Sold", "Check_Ins", "Revenue"];

impl Plan {
    /// Whether changes of `stream` can move an event's figures.
    pub(crate) fn moves_figures(stream: &Stream) -> bool {
        matches!(stream.name, ATTENDEES_STREAM | ORDERS_STREAM)
    }

    /// Marks the events of the attendees or orders `ids` due to be counted
    /// again, in the chunk's transaction: exactly once with the chunk, and
    /// still there after a crash.
    pub(super) async fn mark_events_of(
        &self,
        store: &Store,
        tx: &mut Tx,
        ids: &[i64],
    ) -> Result<()> {
        let events = store
            .targets_of_in(tx, self.events.id, ids, "Event")
            .await?;
        store
            .mark_figures_due_in(tx, self.integration, &events)
            .await
    }

    /// After a run of a stream that moves figures: the due events' figures,
    /// counted outside any write transaction (a count costs every attendee
    /// and order of the events, and on SQLite a write transaction holds every
    /// writer up, the attendee being registered too), then written where they
    /// changed in a short one that also records the run's counts. Only the
    /// events whose mark is still at the version the count started from are
    /// written (`claim_figures_due_in`); one bumped meanwhile stays due, for
    /// the count after that change. An org without the figure fields has its
    /// marks settled with nothing to write.
    pub(crate) async fn settle(
        &self,
        store: &Store,
        stream: &Stream,
        run: Option<i64>,
    ) -> Result<()> {
        if !Self::moves_figures(stream) {
            return Ok(());
        }
        let due = store.figures_due(None, self.integration).await?;
        if due.is_empty() {
            return Ok(());
        }
        let figures = match self.has_figures() {
            true => {
                let events: Vec<i64> = due.iter().map(|d| d.record_id).collect();
                Some(self.figures(store, None, &events).await?)
            }
            false => None,
        };
        let mut tx = store.begin().await?;
        let claimed = store
            .claim_figures_due_in(&mut tx, self.integration, &due)
            .await?;
        let counts = match figures {
            Some(figures) => {
                self.write_figures(store, &mut tx, &claimed, figures)
                    .await?
            }
            None => Counts::default(),
        };
        if let Some(run) = run {
            store.record_progress_in(&mut tx, run, counts, &[]).await?;
        }
        tx.commit().await
    }

    /// `settle` inside `tx`, for a preview (which rolls everything back).
    pub(crate) async fn settle_in(
        &self,
        store: &Store,
        tx: &mut Tx,
        stream: &Stream,
    ) -> Result<Counts> {
        if !Self::moves_figures(stream) || !self.has_figures() {
            return Ok(Counts::default());
        }
        let due = store.figures_due(Some(tx), self.integration).await?;
        let events: Vec<i64> = due.iter().map(|d| d.record_id).collect();
        let figures = self.figures(store, Some(tx), &events).await?;
        self.write_figures(store, tx, &events, figures).await
    }

    /// Whether the CRM has a place for the figures (an org made before the
    /// Campaign had these fields has none).
    pub(crate) fn has_figures(&self) -> bool {
        self.campaigns.field(FIGURES[0]).is_some()
    }

    /// Writes the `figures` of the `events` on their Campaigns where they
    /// changed; counts the Campaigns it updated.
    async fn write_figures(
        &self,
        store: &Store,
        tx: &mut Tx,
        events: &[i64],
        figures: HashMap<i64, Map<String, Value>>,
    ) -> Result<Counts> {
        let mut counts = Counts::default();
        if events.is_empty() {
            return Ok(counts);
        }
        let campaign_of: HashMap<i64, i64> = store
            .links_in(tx, self.integration, EVENT, LinkSide::Other, events)
            .await?
            .into_iter()
            .map(|l| (l.other_id, l.crm_id))
            .collect();
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
        mut tx: Option<&mut Tx>,
        events: &[i64],
    ) -> Result<HashMap<i64, Map<String, Value>>> {
        let mut out: HashMap<i64, Map<String, Value>> =
            events.iter().map(|e| (*e, self.no_figures())).collect();
        let tallies = store
            .tally_referrers(
                tx.as_deref_mut(),
                self.events.id,
                events,
                ("Attendees", "Event"),
                "Status",
            )
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
                .total_referrers(
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
}
