//! What the sync engine keeps: change streams read in commit-safe order,
//! cursors moved once, jobs with leases, runs and their items.

use crate::fixtures::*;
use kizuna_domain::integration::State;
use kizuna_domain::{App, IntegrationKind};
use kizuna_store::{
    Counts, Dialect, Item, Json, Link, LinkPair, LinkSide, NewIntegration, Origin, Pos, Store,
};
use serde_json::json;

async fn integration(store: &Store, w: &World) -> kizuna_domain::Result<i64> {
    let events = store
        .create_org(App::Events, "Expo", "free", &w.admin, &[])
        .await?;
    let i = store
        .create_integration(NewIntegration {
            kind: IntegrationKind::CrmEvents,
            from_org: w.org.id,
            to_org: Some(events.id),
            created_by: w.admin.id,
            state: State::Active,
            settings: &json!({}),
            mapping: &json!([]),
        })
        .await?;
    Ok(i.id)
}

async fn read(store: &Store, org: i64, after: Pos) -> kizuna_domain::Result<Vec<i64>> {
    let mut tx = store.begin().await?;
    let changes = store
        .stream_changes_in(&mut tx, org, "Contacts", after, 1000)
        .await?;
    Ok(changes.into_iter().map(|c| c.record_id).collect())
}

/// What a reader sees once every transaction that began before now has
/// ended: on PostgreSQL the bound is cluster-wide, so another test's open
/// transaction may hold it back for a moment.
async fn settled(store: &Store, org: i64, after: Pos, n: usize) -> kizuna_domain::Result<Vec<i64>> {
    for _ in 0..100 {
        let seen = read(store, org, after).await?;
        if seen.len() >= n {
            return Ok(seen);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Ok(Vec::new())
}

// On PostgreSQL a change's sequence number is taken before its transaction
// commits: a later transaction can commit a higher number first. A reader
// must not read past the one still in flight, or it would never see it.
conformance!(
    stream_never_steps_over_a_change_still_in_flight,
    |store| async move {
        let w = world(&store, "boss@example.com").await?;
        let c = contacts();
        let origin = Origin::User(w.admin.id);
        if store.dialect() == Dialect::Postgres {
            let mut slow = store.begin().await?;
            let first = store
                .create_records_in(
                    &mut slow,
                    w.org.id,
                    &c,
                    vec![values(json!({"Last_Name": "Slow"}))],
                    origin,
                )
                .await?[0]
                .id;
            let second = create_one(&store, &w, &c, json!({"Last_Name": "Fast"}))
                .await?
                .id;
            assert!(first < second, "the slow one took the lower number");
            assert!(
                read(&store, w.org.id, Pos::default()).await?.is_empty(),
                "nothing is read past a transaction still running"
            );
            slow.commit().await?;
            assert_eq!(
                settled(&store, w.org.id, Pos::default(), 2).await?,
                vec![first, second]
            );
        } else {
            // One writer at a time: commit order is sequence order.
            let a = create_one(&store, &w, &c, json!({"Last_Name": "A"}))
                .await?
                .id;
            let b = create_one(&store, &w, &c, json!({"Last_Name": "B"}))
                .await?
                .id;
            assert_eq!(
                settled(&store, w.org.id, Pos::default(), 2).await?,
                vec![a, b]
            );
        }
        // Reading on from the last change read returns only what came after.
        let mut tx = store.begin().await?;
        let all = store
            .stream_changes_in(&mut tx, w.org.id, "Contacts", Pos::default(), 1000)
            .await?;
        drop(tx);
        assert_eq!(all.len(), 2, "both read above");
        let last = all.last().expect("changes").pos();
        let third = create_one(&store, &w, &c, json!({"Last_Name": "Third"}))
            .await?
            .id;
        assert_eq!(settled(&store, w.org.id, last, 1).await?, vec![third]);
        Ok(())
    }
);

// An integration does not read back its own writes (GEN: no echo), yet its
// cursor passes them: a read that leaves them out still says how far it
// looked, so an initial sync does not read back every record it made.
conformance!(
    a_stream_read_skips_the_integrations_own_writes_and_says_how_far_it_looked,
    |store| async move {
        let w = world(&store, "boss@example.com").await?;
        let c = contacts();
        let id = integration(&store, &w).await?;
        let write = |origin: Origin, name: &'static str| {
            let (store, c, org) = (store.clone(), c.clone(), w.org.id);
            async move {
                let rows = vec![values(json!({ "Last_Name": name }))];
                Ok::<_, kizuna_domain::Error>(
                    store.create_records(org, &c, rows, origin).await?[0].id,
                )
            }
        };
        let user = write(Origin::User(w.admin.id), "User").await?;
        let own_1 = write(Origin::Integration(id), "Own 1").await?;
        let other = write(Origin::Integration(id + 1000), "Other integration").await?;
        let own_2 = write(Origin::Integration(id), "Own 2").await?;
        let system = write(Origin::System, "System").await?;
        let own_3 = write(Origin::Integration(id), "Own 3").await?;
        // Once every earlier transaction has ended (PostgreSQL's bound).
        settled(&store, w.org.id, Pos::default(), 6).await?;
        let mut tx = store.begin().await?;
        let all = store
            .stream_read_in(&mut tx, w.org.id, "Contacts", Pos::default(), 100, None)
            .await?;
        let ids = |r: &kizuna_store::StreamRead| -> Vec<i64> {
            r.changes.iter().map(|c| c.record_id).collect()
        };
        assert_eq!(ids(&all), vec![user, own_1, other, own_2, system, own_3]);
        let end = all.end.expect("changes were read");
        assert_eq!(Some(end), all.changes.last().map(|c| c.pos()));
        // Skipping: the others' changes only, and the end is the stream's
        // end, past the integration's last write.
        let read = store
            .stream_read_in(&mut tx, w.org.id, "Contacts", Pos::default(), 100, Some(id))
            .await?;
        assert_eq!(ids(&read), vec![user, other, system]);
        assert_eq!(read.end, Some(end));
        // At the limit, the end is the last change returned: nothing after
        // it was looked at.
        let two = store
            .stream_read_in(&mut tx, w.org.id, "Contacts", Pos::default(), 2, Some(id))
            .await?;
        assert_eq!(ids(&two), vec![user, other]);
        assert_eq!(two.end, two.changes.last().map(|c| c.pos()));
        // Past the last change of others: nothing to return, but the cursor
        // may move over the integration's own writes.
        let after_system = read.changes.last().expect("three").pos();
        let rest = store
            .stream_read_in(&mut tx, w.org.id, "Contacts", after_system, 100, Some(id))
            .await?;
        assert!(rest.changes.is_empty());
        assert_eq!(rest.end, Some(end));
        // At the end, nothing at all.
        let none = store
            .stream_read_in(&mut tx, w.org.id, "Contacts", end, 100, Some(id))
            .await?;
        assert_eq!(
            none,
            kizuna_store::StreamRead {
                changes: Vec::new(),
                end: None
            }
        );
        Ok(())
    }
);

// Two runs that read from the same position: only the first moves the
// cursor; the second learns it must read again.
conformance!(a_cursor_moves_once_from_a_position, |store| async move {
    let w = world(&store, "boss@example.com").await?;
    let id = integration(&store, &w).await?;
    let to = Pos { txid: 0, seq: 5 };
    let mut first = store.begin().await?;
    assert_eq!(store.cursor_in(&mut first, id, "s").await?, Pos::default());
    assert!(
        store
            .advance_cursor_in(&mut first, id, "s", Pos::default(), to)
            .await?
    );
    first.commit().await?;
    let mut second = store.begin().await?;
    assert!(
        !store
            .advance_cursor_in(
                &mut second,
                id,
                "s",
                Pos::default(),
                Pos { txid: 0, seq: 9 }
            )
            .await?
    );
    drop(second);
    assert_eq!(store.cursor(id, "s").await?, to);
    // A rolled-back advance leaves the cursor where it was.
    let mut rolled = store.begin().await?;
    assert!(
        store
            .advance_cursor_in(&mut rolled, id, "s", to, Pos { txid: 0, seq: 7 })
            .await?
    );
    drop(rolled);
    assert_eq!(store.cursor(id, "s").await?, to);
    Ok(())
});

// A job is one worker's while its lease lasts; when the worker dies (stops
// renewing), another claims it; the dead worker's late finish changes nothing.
conformance!(
    a_job_whose_worker_died_is_claimed_again_after_its_lease,
    |store| async move {
        let w = world(&store, "boss@example.com").await?;
        let id = integration(&store, &w).await?;
        store.queue_job("sync", id, 0).await?;
        store.queue_job("sync", id, 0).await?;
        let job = store.claim_job("w1", 100).await?.expect("queued");
        assert_eq!((job.integration_id, job.attempts), (Some(id), 1));
        assert!(store.claim_job("w2", 100).await?.is_none(), "leased to w1");
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        let again = store
            .claim_job("w2", 10_000)
            .await?
            .expect("the lease ran out");
        assert_eq!((again.id, again.attempts), (job.id, 2));
        assert!(
            !store.renew_lease(job.id, "w1", 10_000).await?,
            "no longer w1's"
        );
        store.finish_job(job.id, "w1", None).await?;
        assert!(store.claim_job("w3", 10_000).await?.is_none(), "still w2's");
        // Work arriving while it runs queues it again when it ends.
        store.queue_job("sync", id, 0).await?;
        store.finish_job(job.id, "w2", None).await?;
        let third = store.claim_job("w3", 10_000).await?.expect("queued again");
        store.finish_job(third.id, "w3", None).await?;
        assert!(store.claim_job("w3", 10_000).await?.is_none(), "idle");
        // A failure waits for its backoff.
        store.queue_job("sync", id, 0).await?;
        let failing = store.claim_job("w3", 10_000).await?.expect("queued");
        store
            .finish_job(failing.id, "w3", Some(("boom", 60_000)))
            .await?;
        assert!(
            store.claim_job("w3", 10_000).await?.is_none(),
            "backing off"
        );
        Ok(())
    }
);

// A run's counts and items are written with its steps; stale runs are
// marked interrupted; old runs are purged with their items.
conformance!(runs_add_up_and_old_ones_are_purged, |store| async move {
    let w = world(&store, "boss@example.com").await?;
    let id = integration(&store, &w).await?;
    let run = store
        .start_run(id, "api", "events-to-crm", "attendees")
        .await?;
    assert_eq!(run.state, "running");
    let item = Item {
        id: 0,
        run_id: 0,
        outcome: "skipped".into(),
        code: "attendee_status_not_synced".into(),
        rule: Some("EVT-8".into()),
        message: Json(json!({"en": "why", "ja": "理由"})),
        source_module: "Attendees".into(),
        source_id: 7,
        target_module: None,
        target_id: None,
        details: Json(json!({})),
    };
    for _ in 0..2 {
        let mut tx = store.begin().await?;
        let counts = Counts {
            added: 3,
            skipped: 1,
            ..Counts::default()
        };
        store
            .record_progress_in(&mut tx, run.id, counts, std::slice::from_ref(&item))
            .await?;
        tx.commit().await?;
    }
    // A step rolled back leaves no trace.
    let mut tx = store.begin().await?;
    store
        .record_progress_in(
            &mut tx,
            run.id,
            Counts {
                added: 50,
                ..Counts::default()
            },
            std::slice::from_ref(&item),
        )
        .await?;
    drop(tx);
    let done = store.finish_run(run.id, None).await?;
    assert_eq!(
        (done.state.as_str(), done.added, done.skipped),
        ("finished", 6, 2)
    );
    let items = store.run_items(run.id, None, 10).await?;
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].code, "attendee_status_not_synced");
    assert_eq!(items[0].message.0["ja"], "理由");

    let stale = store
        .start_run(id, "worker", "events-to-crm", "attendees")
        .await?;
    assert_eq!(
        store
            .interrupt_stale_runs(id, stale.heartbeat_at + 1)
            .await?,
        1
    );
    assert_eq!(store.runs(id, None, 10).await?[0].state, "interrupted");

    assert_eq!(store.purge_runs(kizuna_store::now_ms() + 1).await?, 2);
    assert!(store.runs(id, None, 10).await?.is_empty());
    assert!(store.run_items(run.id, None, 10).await?.is_empty());
    Ok(())
});

// A transaction counts the links it adds, exactly: a replaced link adds none,
// a removed one takes one away (the mass-delete guard's base is worked out
// from it); links are found by either side, each once.
conformance!(a_transaction_counts_the_links_it_adds, |store| async move {
    let w = world(&store, "boss@example.com").await?;
    let id = integration(&store, &w).await?;
    let link = |other_id: i64, crm_id: i64, how: &str| Link {
        integration_id: id,
        data_type: "attendee".into(),
        other_id,
        crm_id,
        how: how.into(),
        other_version: 1,
        crm_version: 1,
        synced: Json(serde_json::Map::new()),
        linked_at: 1,
    };
    let mut tx = store.begin().await?;
    store
        .save_links_in(&mut tx, &[link(1, 10, "created"), link(2, 10, "matched")])
        .await?;
    assert_eq!(tx.links_added(), 2);
    tx.commit().await?;

    let mut tx = store.begin().await?;
    // Link 2 replaced, link 3 new and then replaced in the same batch.
    store
        .save_links_in(
            &mut tx,
            &[
                link(2, 20, "created"),
                link(3, 30, "created"),
                link(3, 31, "matched"),
            ],
        )
        .await?;
    assert_eq!(tx.links_added(), 1);
    store
        .remove_links_in(&mut tx, id, "attendee", &[1, 99])
        .await?;
    assert_eq!(tx.links_added(), 0, "one added, one removed");
    let by_other = store
        .links_in(&mut tx, id, "attendee", LinkSide::Other, &[3, 2, 3, 1])
        .await?;
    let mut found: Vec<(i64, i64, String)> = by_other
        .into_iter()
        .map(|l| (l.other_id, l.crm_id, l.how))
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            (2, 20, "created".to_string()),
            (3, 31, "matched".to_string())
        ]
    );
    let by_crm = store
        .links_in(&mut tx, id, "attendee", LinkSide::Crm, &[31, 20, 10])
        .await?;
    assert_eq!(by_crm.len(), 2);
    let mut pairs = store
        .link_pairs_in(&mut tx, id, "attendee", LinkSide::Crm, &[31, 20, 10, 20])
        .await?;
    pairs.sort_by_key(|p| p.other_id);
    assert_eq!(
        pairs,
        [
            LinkPair {
                other_id: 2,
                crm_id: 20
            },
            LinkPair {
                other_id: 3,
                crm_id: 31
            }
        ],
        "the ids of each link found, once"
    );
    tx.commit().await?;
    let total: i64 = store.link_counts(id).await?.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 2);
    Ok(())
});

// Figures due (EVT-14): a chunk marks the events it touched in its own
// transaction (rolled back with it); a count claims only the marks still at
// the version it started from, so one bumped by a later chunk stays due; a
// count older than a new mark claims nothing, even after another count took
// the mark it saw (versions only grow); deleting the integration's sync state
// takes the marks too.
conformance!(
    evt_14_figure_marks_claim_only_what_the_count_saw,
    |store| async move {
        let w = world(&store, "boss@example.com").await?;
        let id = integration(&store, &w).await?;
        let ids = |due: &[kizuna_store::referrers::Due]| {
            due.iter().map(|d| d.record_id).collect::<Vec<_>>()
        };
        let mut tx = store.begin().await?;
        store.mark_figures_due_in(&mut tx, id, &[7, 8]).await?;
        drop(tx);
        assert!(
            store.figures_due(None, id).await?.is_empty(),
            "a chunk rolled back marks nothing"
        );

        let mut tx = store.begin().await?;
        store.mark_figures_due_in(&mut tx, id, &[7, 8]).await?;
        tx.commit().await?;
        let seen = store.figures_due(None, id).await?;
        assert_eq!(ids(&seen), [7, 8]);

        // A later chunk touches event 8 again before the count is written.
        let mut tx = store.begin().await?;
        store.mark_figures_due_in(&mut tx, id, &[8]).await?;
        tx.commit().await?;
        let mut tx = store.begin().await?;
        let claimed = store.claim_figures_due_in(&mut tx, id, &seen).await?;
        assert_eq!(claimed, [7], "the mark bumped after the count stays");
        tx.commit().await?;
        let later = store.figures_due(None, id).await?;
        assert_eq!(ids(&later), [8]);

        // A count of that later version writes; then a new chunk marks 8
        // again: a count that started from the later version (before the new
        // chunk) must not pass for the new mark.
        let mut tx = store.begin().await?;
        assert_eq!(store.claim_figures_due_in(&mut tx, id, &later).await?, [8]);
        tx.commit().await?;
        assert!(store.figures_due(None, id).await?.is_empty());
        let mut tx = store.begin().await?;
        store.mark_figures_due_in(&mut tx, id, &[8]).await?;
        tx.commit().await?;
        let mut tx = store.begin().await?;
        assert!(
            store
                .claim_figures_due_in(&mut tx, id, &later)
                .await?
                .is_empty(),
            "a count older than the new mark claims nothing"
        );
        tx.commit().await?;
        assert_eq!(ids(&store.figures_due(None, id).await?), [8]);

        store.forget_sync_state(id).await?;
        assert!(store.figures_due(None, id).await?.is_empty());
        Ok(())
    }
);

// A link lookup seeks an index by the ids it is given even when the
// statistics say the table is empty: PostgreSQL analysed `sync_links`
// empty, then a sync added thousands of links before autovacuum came by.
// With `IN (…)` the planner then read every link of the integration and
// filtered, per statement (an initial CRM ⇄ Desk sync took 43 s instead of
// 7: BENCHMARKS.md, desk-sync).
conformance!(
    a_link_lookup_seeks_by_its_ids_whatever_the_statistics_say,
    |store| async move {
        let w = world(&store, "boss@example.com").await?;
        let id = integration(&store, &w).await?;
        if store.dialect() == Dialect::Postgres {
            store
                .db()
                .x()
                .execute("ANALYZE sync_links", &[])
                .await
                .map_err(|e| kizuna_domain::Error::internal(e.to_string()))?;
        }
        let links: Vec<Link> = (1..=5_000)
            .map(|n| Link {
                integration_id: id,
                data_type: "attendee".into(),
                other_id: n,
                // One CRM record for every two attendees.
                crm_id: 100_000 + n / 2,
                how: "created".into(),
                other_version: 1,
                crm_version: 1,
                synced: Json(serde_json::Map::new()),
                linked_at: 1,
            })
            .collect();
        let mut tx = store.begin().await?;
        store.save_links_in(&mut tx, &links).await?;
        let by_crm = store
            .links_in(&mut tx, id, "attendee", LinkSide::Crm, &[100_010])
            .await?;
        assert_eq!(
            by_crm.iter().map(|l| l.other_id).collect::<Vec<_>>(),
            [20, 21],
            "every link of a CRM record, not one"
        );
        tx.commit().await?;

        for (side, column, ids) in [
            (
                LinkSide::Other,
                "other_id",
                (1..=500).map(|n| n * 7).collect::<Vec<i64>>(),
            ),
            (
                LinkSide::Crm,
                "crm_id",
                (1..=500).map(|n| 100_000 + n * 3).collect(),
            ),
        ] {
            let plan = store.explain_links(id, "attendee", side, &ids).await?;
            // The id column is an index condition (PostgreSQL: `Index Cond:
            // … (crm_id = k.id)`; SQLite: `SEARCH … (crm_id=?)`), not a
            // filter over the integration's links.
            let seeks = plan.iter().any(|line| {
                (line.contains("Index Cond") && line.contains(&format!("{column} =")))
                    || (line.starts_with("SEARCH") && line.contains(&format!("{column}=?")))
            });
            assert!(
                seeks,
                "{side:?}: no index seek by {column}:\n{}",
                plan.join("\n")
            );
        }
        Ok(())
    }
);

// A transaction that only reads sees one snapshot: a commit made while it is
// open is not in its later reads, and the writer does not wait for it. The
// stream's last change is where a read ahead of the sync engine checks that
// nothing of a module was written since its snapshot; it moves with every
// write to the module.
conformance!(
    a_read_transaction_sees_one_snapshot_and_a_streams_last_change_moves_with_each_write,
    |store| async move {
        let w = world(&store, "snapshot@example.com").await?;
        let c = contacts();
        let a = create_one(&store, &w, &c, json!({"Last_Name": "A"})).await?;
        let mut snapshot = store.begin_read().await?;
        let before = store
            .stream_last_in(&mut snapshot, w.org.id, "Contacts")
            .await?;
        assert!(before.is_some(), "A's change");
        let b = create_one(&store, &w, &c, json!({"Last_Name": "B"})).await?;
        let seen = store
            .records_in(&mut snapshot, w.org.id, "Contacts", &[a.id, b.id])
            .await?;
        assert_eq!(seen.iter().map(|r| r.id).collect::<Vec<_>>(), vec![a.id]);
        assert_eq!(
            store
                .stream_last_in(&mut snapshot, w.org.id, "Contacts")
                .await?,
            before,
            "still the snapshot's"
        );
        drop(snapshot);
        let mut tx = store.begin().await?;
        let after = store.stream_last_in(&mut tx, w.org.id, "Contacts").await?;
        assert!(after > before, "B's change: {after:?} after {before:?}");
        assert_eq!(
            store.stream_last_in(&mut tx, w.org.id, "Accounts").await?,
            None,
            "another module's stream"
        );
        Ok(())
    }
);
