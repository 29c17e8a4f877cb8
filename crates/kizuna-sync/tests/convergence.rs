//! Property: whatever the interleaving of attendee creates, edits,
//! cancellations, re-registrations, deletes and syncs, the CRM ends in the
//! same state as one sync of the final attendees (EVT-7, EVT-8, EVT-9).

use kizuna_store::{Org, Origin, Store};
use kizuna_sync::engine::{self, Trigger};
use kizuna_testkit::{CrmEvents, TestDb, values};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The people attendees are made of: one live attendee each at most.
const PEOPLE: usize = 5;

#[derive(Debug, Clone)]
enum Op {
    Create(usize),
    Rename(usize, u8),
    Status(usize, &'static str),
    Delete(usize),
    Sync,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..PEOPLE).prop_map(Op::Create),
        (0..PEOPLE, 0u8..4).prop_map(|(p, k)| Op::Rename(p, k)),
        (
            0..PEOPLE,
            prop::sample::select(vec!["registered", "confirmed", "cancelled"])
        )
            .prop_map(|(p, s)| Op::Status(p, s)),
        (0..PEOPLE).prop_map(Op::Delete),
        Just(Op::Sync),
    ]
}

/// One database with an active CRM ⇄ Events integration and one event.
struct World {
    _db: TestDb,
    store: Store,
    crm: Org,
    events: Org,
    integration: i64,
    event: i64,
    /// The live attendee of each person.
    live: BTreeMap<usize, i64>,
}

impl World {
    async fn new() -> World {
        let (db, store, admin) = TestDb::sqlite_with_admin("convergence").await;
        let CrmEvents {
            crm,
            events,
            integration,
            event,
        } = CrmEvents::create(&store, &admin).await;
        World {
            _db: db,
            store,
            crm,
            events,
            integration,
            event,
            live: BTreeMap::new(),
        }
    }

    async fn apply(&mut self, op: &Op) {
        let attendees = self
            .store
            .module(self.events.id, "Attendees")
            .await
            .expect("Attendees");
        match *op {
            Op::Create(p) if !self.live.contains_key(&p) => {
                let row = values(
                    json!({"Email": format!("p{p}@example.com"), "Last_Name": format!("L{p}"), "Event": self.event, "Status": "registered"}),
                );
                let id = self
                    .store
                    .create_records(self.events.id, &attendees, vec![row], Origin::System)
                    .await
                    .expect("create")[0]
                    .id;
                self.live.insert(p, id);
            }
            Op::Rename(p, k) => {
                self.edit(p, json!({"Last_Name": format!("L{p}-{k}")}))
                    .await
            }
            Op::Status(p, s) => self.edit(p, json!({"Status": s})).await,
            Op::Delete(p) => {
                if let Some(id) = self.live.remove(&p) {
                    self.store
                        .delete_record(self.events.id, "Attendees", id, Origin::System)
                        .await
                        .expect("delete");
                }
            }
            Op::Sync => {
                engine::sync(&self.store, self.integration, Trigger::Api)
                    .await
                    .expect("sync");
            }
            Op::Create(_) => {}
        }
    }

    async fn edit(&self, p: usize, changes: Value) {
        if let Some(id) = self.live.get(&p) {
            let attendees = self
                .store
                .module(self.events.id, "Attendees")
                .await
                .expect("Attendees");
            self.store
                .update_record(
                    self.events.id,
                    &attendees,
                    *id,
                    values(changes),
                    None,
                    Origin::System,
                )
                .await
                .expect("edit");
        }
    }

    /// The CRM as a person sees it: each live Lead's e-mail with its values,
    /// and whether it is on the event's Campaign.
    async fn crm_state(&self) -> BTreeMap<String, (Map<String, Value>, bool)> {
        let leads = self
            .store
            .module(self.crm.id, "Leads")
            .await
            .expect("Leads");
        let page = self
            .store
            .list_records(
                self.crm.id,
                &leads,
                &kizuna_store::ListQuery {
                    limit: 1000,
                    ..Default::default()
                },
            )
            .await
            .expect("leads");
        let campaigns = self
            .store
            .list_records(
                self.crm.id,
                &self
                    .store
                    .module(self.crm.id, "Campaigns")
                    .await
                    .expect("Campaigns"),
                &Default::default(),
            )
            .await
            .expect("campaigns");
        let mut members = Vec::new();
        for c in &campaigns.records {
            members.extend(
                self.store
                    .related_records(self.crm.id, c.id, "Leads", None, 1000)
                    .await
                    .expect("related")
                    .into_iter()
                    .map(|r| r.id),
            );
        }
        page.records
            .into_iter()
            .map(|r| {
                let email = r.fields["Email"].as_str().unwrap_or_default().to_string();
                (email, (r.fields.clone(), members.contains(&r.id)))
            })
            .collect()
    }

    /// The final attendees, as they are now.
    async fn final_attendees(&self) -> Vec<Map<String, Value>> {
        let mut out = Vec::new();
        for id in self.live.values() {
            let a = self
                .store
                .record(self.events.id, "Attendees", *id)
                .await
                .expect("attendee");
            out.push(a.fields);
        }
        out
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(f)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn interleaved_syncs_converge_to_one_sync_of_the_final_attendees(ops in prop::collection::vec(op(), 1..30)) {
        block_on(async {
            let mut interleaved = World::new().await;
            for op in &ops {
                interleaved.apply(op).await;
            }
            interleaved.apply(&Op::Sync).await;
            let finals = interleaved.final_attendees().await;

            let once = World::new().await;
            let attendees = once.store.module(once.events.id, "Attendees").await.expect("Attendees");
            let rows: Vec<Map<String, Value>> = finals
                .into_iter()
                .map(|mut f| {
                    f.insert("Event".into(), json!(once.event));
                    f
                })
                .collect();
            if !rows.is_empty() {
                once.store.create_records(once.events.id, &attendees, rows, Origin::System).await.expect("attendees");
            }
            engine::sync(&once.store, once.integration, Trigger::Api).await.expect("sync");

            let (a, b) = (interleaved.crm_state().await, once.crm_state().await);
            assert_eq!(a, b, "ops: {ops:?}");
            // And a sync right after writes nothing.
            let again = engine::sync(&interleaved.store, interleaved.integration, Trigger::Api).await.expect("sync");
            assert!(again.iter().all(|r| r.added + r.updated + r.deleted + r.linked == 0), "{again:?}");
        });
    }
}
