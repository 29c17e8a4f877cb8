//! Property (DSK-13): random edits on both sides of CRM ⇄ Desk — creates,
//! changes, deletes, the same field changed differently on both — with
//! random syncs and syncs that crash part-way (the sync's future dropped
//! after a random number of polls, as a killed process would leave it: what
//! it committed stays, the rest rolls back). Afterwards the two sides
//! converge: every link joins two live contacts holding the same values,
//! no e-mail is on two live contacts of one side, every conflict on a
//! linked pair is in the history, and a sync right after writes nothing.

use kizuna_store::{Org, Origin, Store};
use kizuna_sync::engine::{self, Trigger};
use kizuna_testkit::{CrmDesk, TestDb, values};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::task::Poll;

/// The people contacts are made of: at most one live contact each per side.
const PEOPLE: usize = 3;

/// The fields the edits change.
const FIELDS: [&str; 2] = ["Phone", "First_Name"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Crm,
    Desk,
}

#[derive(Debug, Clone)]
enum Op {
    Create(Side, usize),
    Edit(Side, usize, &'static str, u8),
    Delete(Side, usize),
    Sync,
    /// A sync dropped after this many polls.
    Crash(u8),
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Crm), Just(Side::Desk)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (side(), 0..PEOPLE).prop_map(|(s, p)| Op::Create(s, p)),
        3 => (side(), 0..PEOPLE, prop::sample::select(FIELDS.to_vec()), 0u8..3)
            .prop_map(|(s, p, f, k)| Op::Edit(s, p, f, k)),
        1 => (side(), 0..PEOPLE).prop_map(|(s, p)| Op::Delete(s, p)),
        2 => Just(Op::Sync),
        // A whole sync of these few contacts takes about 160–190 polls.
        1 => (1u8..220).prop_map(Op::Crash),
    ]
}

/// Drives `f` for at most `polls` polls, then drops it.
async fn crash_after<F: Future>(f: F, polls: u8) {
    let mut f = std::pin::pin!(f);
    let mut n = 0;
    std::future::poll_fn(|cx| {
        n += 1;
        match f.as_mut().poll(cx) {
            Poll::Ready(_) => Poll::Ready(()),
            Poll::Pending if n >= polls => Poll::Ready(()),
            Poll::Pending => Poll::Pending,
        }
    })
    .await;
}

struct World {
    _db: TestDb,
    store: Store,
    crm: Org,
    desk: Org,
    integration: i64,
    /// The live contact of each person on each side.
    live: BTreeMap<(Side, usize), i64>,
    /// People whose two contacts were linked by a finished sync and are
    /// still both live.
    linked: BTreeSet<usize>,
    /// What a linked person's edited fields held after the last finished
    /// sync (both sides agreed then).
    base: BTreeMap<(usize, &'static str), Option<String>>,
    /// A sync crashed since the last finished one: what it committed, and
    /// so the base, is unknown.
    uncertain: bool,
    /// CRM contacts whose conflict must be in the history.
    conflicted: BTreeSet<i64>,
}

impl World {
    async fn new(policy: &str) -> World {
        let (db, store, admin) = TestDb::sqlite_with_admin("desk_convergence").await;
        let CrmDesk {
            crm,
            desk,
            integration,
        } = CrmDesk::create(&store, &admin).await;
        kizuna_sync::lifecycle::set_settings(
            &store,
            &admin,
            integration,
            &json!({"conflict_policy": policy}),
        )
        .await
        .expect("policy");
        World {
            _db: db,
            store,
            crm,
            desk,
            integration,
            live: BTreeMap::new(),
            linked: BTreeSet::new(),
            base: BTreeMap::new(),
            uncertain: false,
            conflicted: BTreeSet::new(),
        }
    }

    fn org(&self, s: Side) -> i64 {
        match s {
            Side::Crm => self.crm.id,
            Side::Desk => self.desk.id,
        }
    }

    async fn apply(&mut self, op: &Op) {
        match *op {
            Op::Create(s, p) if !self.live.contains_key(&(s, p)) => {
                let module = self
                    .store
                    .module(self.org(s), "Contacts")
                    .await
                    .expect("Contacts");
                let email = format!("p{p}@example.com");
                // A person looks before adding: the contact may be there
                // already, made by a sync the model could not follow (one
                // that crashed after committing part of its work).
                let there = self
                    .store
                    .records_by_email(self.org(s), &["Contacts"], &email)
                    .await
                    .expect("look up");
                if let Some(r) = there.first() {
                    self.live.insert((s, p), r.id);
                    return;
                }
                let row = values(json!({"Email": email, "Last_Name": format!("L{p}")}));
                let id = self
                    .store
                    .create_records(self.org(s), &module, vec![row], Origin::System)
                    .await
                    .expect("create")[0]
                    .id;
                self.live.insert((s, p), id);
            }
            Op::Create(..) => {}
            Op::Edit(s, p, field, k) => {
                let Some(id) = self.live.get(&(s, p)).copied() else {
                    return;
                };
                let value = match field {
                    "Phone" => format!("03-{p}{k}{}", s as u8),
                    _ => format!("N{k}{:?}", s),
                };
                let module = self
                    .store
                    .module(self.org(s), "Contacts")
                    .await
                    .expect("Contacts");
                // A crashed sync may have deleted it (a CRM delete takes the
                // Desk twin along) after committing part of its work.
                let Ok(current) = self.store.record(self.org(s), "Contacts", id).await else {
                    self.live.remove(&(s, p));
                    return;
                };
                if current.fields.get(field).and_then(Value::as_str) == Some(value.as_str()) {
                    // Not a change: the value is already there.
                    return;
                }
                self.store
                    .update_record(
                        self.org(s),
                        &module,
                        id,
                        values(json!({field: value})),
                        None,
                        Origin::System,
                    )
                    .await
                    .expect("edit");
            }
            Op::Delete(s, p) => {
                if let Some(id) = self.live.remove(&(s, p)) {
                    // Gone already if a crashed sync deleted it.
                    let deleted = self
                        .store
                        .delete_record(self.org(s), "Contacts", id, Origin::System)
                        .await;
                    assert!(
                        deleted.as_ref().is_ok_and(|r| r.deleted_at.is_some())
                            || deleted.as_ref().is_err_and(|e| e.code == "not_found"),
                        "{deleted:?}"
                    );
                    // A CRM delete takes the Desk twin with it (DSK-12).
                    if s == Side::Crm && self.linked.contains(&p) {
                        self.live.remove(&(Side::Desk, p));
                    }
                    self.linked.remove(&p);
                }
            }
            Op::Sync => self.sync().await,
            Op::Crash(polls) => {
                crash_after(
                    engine::sync(&self.store, self.integration, Trigger::Api),
                    polls,
                )
                .await;
                self.uncertain = true;
            }
        }
    }

    /// A field's value on one side now; `None` when absent or the record
    /// is gone.
    async fn value(&self, s: Side, p: usize, field: &str) -> Option<Option<String>> {
        let id = self.live.get(&(s, p))?;
        let r = self.store.record(self.org(s), "Contacts", *id).await.ok()?;
        Some(
            r.fields
                .get(field)
                .and_then(Value::as_str)
                .map(str::to_string),
        )
    }

    async fn sync(&mut self) {
        // A field both sides changed since they last agreed, to different
        // values, is a conflict this sync must report.
        if !self.uncertain {
            for p in self.linked.clone() {
                for f in FIELDS {
                    let base = self.base.get(&(p, f)).cloned().flatten();
                    let (Some(c), Some(d)) = (
                        self.value(Side::Crm, p, f).await,
                        self.value(Side::Desk, p, f).await,
                    ) else {
                        continue;
                    };
                    if c != base && d != base && c != d {
                        self.conflicted.insert(self.live[&(Side::Crm, p)]);
                    }
                }
            }
        }
        engine::sync(&self.store, self.integration, Trigger::Api)
            .await
            .expect("sync");
        self.uncertain = false;
        // Whatever the sync created on the other side is live now.
        for s in [Side::Crm, Side::Desk] {
            let module = self
                .store
                .module(self.org(s), "Contacts")
                .await
                .expect("Contacts");
            let page = self
                .store
                .list_records(
                    self.org(s),
                    &module,
                    &kizuna_store::ListQuery {
                        limit: 1000,
                        ..Default::default()
                    },
                )
                .await
                .expect("list");
            for r in page.records {
                let email = r.fields["Email"].as_str().unwrap_or_default();
                if let Some(p) = (0..PEOPLE).find(|p| email == format!("p{p}@example.com")) {
                    self.live.insert((s, p), r.id);
                }
            }
        }
        // Both contacts of a person are linked once a sync has seen them:
        // the same e-mail ties them.
        self.linked = (0..PEOPLE)
            .filter(|p| {
                self.live.contains_key(&(Side::Crm, *p))
                    && self.live.contains_key(&(Side::Desk, *p))
            })
            .collect();
        self.base.clear();
        for p in self.linked.clone() {
            for f in FIELDS {
                if let Some(v) = self.value(Side::Crm, p, f).await {
                    self.base.insert((p, f), v);
                }
            }
        }
    }

    async fn check(&self, ops: &[Op]) {
        let db = self.store.db();
        #[derive(sqlx::FromRow, Debug)]
        struct Pair {
            crm_fields: String,
            desk_fields: String,
            crm_deleted: Option<i64>,
            desk_deleted: Option<i64>,
        }
        let pairs: Vec<Pair> = db
            .x()
            .fetch_all(
                "SELECT c.fields AS crm_fields, d.fields AS desk_fields, c.deleted_at AS crm_deleted, \
                 d.deleted_at AS desk_deleted FROM sync_links l JOIN records c ON c.id = l.crm_id \
                 JOIN records d ON d.id = l.other_id WHERE l.integration_id = $1 AND l.data_type = 'contact'",
                &kizuna_store::args![self.integration],
            )
            .await
            .expect("pairs");
        for p in &pairs {
            let (c, d): (Value, Value) = (
                serde_json::from_str(&p.crm_fields).expect("json"),
                serde_json::from_str(&p.desk_fields).expect("json"),
            );
            assert_eq!(
                p.crm_deleted.is_some(),
                p.desk_deleted.is_some(),
                "a link joins two live or two deleted contacts: {p:?}\nops: {ops:?}"
            );
            if p.crm_deleted.is_some() {
                // Both in the recycle bin: an edit made to one just before
                // the other's delete had nowhere to go.
                continue;
            }
            for f in ["First_Name", "Last_Name", "Email", "Phone"] {
                assert_eq!(
                    c.get(f),
                    d.get(f),
                    "{f} differs across a link: {p:?}\nops: {ops:?}"
                );
            }
        }
        for org in [self.crm.id, self.desk.id] {
            #[derive(sqlx::FromRow)]
            struct N {
                n: i64,
            }
            let twice: N = db
                .x()
                .fetch_one(
                    "SELECT COUNT(*) AS n FROM (SELECT email_key FROM records WHERE org_id = $1 AND module = 'Contacts' \
                     AND deleted_at IS NULL GROUP BY email_key HAVING COUNT(*) > 1) t",
                    &kizuna_store::args![org],
                )
                .await
                .expect("count");
            assert_eq!(
                twice.n, 0,
                "an e-mail on two live contacts of org {org}\nops: {ops:?}"
            );
        }
        #[derive(sqlx::FromRow)]
        struct Target {
            target_id: Option<i64>,
        }
        let reported: BTreeSet<i64> = db
            .x()
            .fetch_all::<Target>(
                "SELECT i.target_id FROM sync_items i JOIN sync_runs r ON r.id = i.run_id \
                 WHERE r.integration_id = $1 AND i.outcome = 'conflict'",
                &kizuna_store::args![self.integration],
            )
            .await
            .expect("items")
            .into_iter()
            .filter_map(|t| t.target_id)
            .collect();
        for crm in &self.conflicted {
            assert!(
                reported.contains(crm),
                "the conflict on CRM contact {crm} is in the history (conflicts on {reported:?}; live {:?})\nops: {ops:?}",
                self.live
            );
        }
    }
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(f)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn random_edits_syncs_and_crashes_on_both_sides_converge_without_echo(
        ops in prop::collection::vec(op(), 1..40),
        policy in prop::sample::select(vec!["crm_wins", "desk_wins"]),
    ) {
        block_on(async {
            let mut w = World::new(policy).await;
            for op in &ops {
                w.apply(op).await;
            }
            w.sync().await;
            w.check(&ops).await;
            let again = engine::sync(&w.store, w.integration, Trigger::Api).await.expect("sync");
            assert!(
                again.iter().all(|r| r.added + r.updated + r.deleted + r.linked == 0),
                "a sync right after writes nothing: {again:?}\nops: {ops:?}"
            );
        });
    }
}
