//! Records: create, update, lookups, uniqueness.

use crate::fixtures::*;
use kizuna_store::{Origin, Store};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

// A batch is created whole: ascending ids, version 1, one change-log row
// per record carrying the change's origin.
conformance!(records_create_batch_with_change_log, |store| async move {
    let w = world(&store, "boss@example.com").await?;
    let c = contacts();
    let rows = vec![
        values(json!({"Last_Name": "Abe", "Score": 3, "Newsletter": true})),
        values(json!({"Last_Name": "Baba", "First_Name": "Taro"})),
        values(json!({"Last_Name": "Chiba", "Email": "chiba@example.com"})),
    ];
    let created = store
        .create_records(w.org.id, &c, rows.clone(), Origin::User(w.admin.id))
        .await?;
    assert_eq!(created.len(), 3);
    assert!(
        created.windows(2).all(|p| p[0].id < p[1].id),
        "ids ascend in batch order"
    );
    for (r, v) in created.iter().zip(&rows) {
        assert_eq!(
            (r.version, r.module.as_str(), r.deleted_at),
            (1, "Contacts", None)
        );
        assert_eq!(&r.fields, v);
        assert_eq!(r.created_at, r.updated_at);
        assert_eq!(
            &store.record(w.org.id, "Contacts", r.id).await?,
            r,
            "reads back as returned"
        );
    }

    let log = all_changes(&store, w.org.id).await?;
    assert_eq!(log.len(), 3, "one change row per record");
    for (ch, r) in log.iter().zip(&created) {
        assert_eq!(
            (ch.module.as_str(), ch.record_id, ch.version, ch.op.as_str()),
            ("Contacts", r.id, 1, "create")
        );
        assert_eq!(
            (ch.origin_kind.as_str(), ch.origin_id),
            ("user", Some(w.admin.id))
        );
    }
    assert!(log.windows(2).all(|p| p[0].seq < p[1].seq));

    let a = store
        .create_records(
            w.org.id,
            &accounts(),
            vec![values(json!({"Account_Name": "K"}))],
            Origin::Key {
                key: 77,
                user: w.admin.id,
            },
        )
        .await?;
    let l = store
        .create_records(
            w.org.id,
            &leads(),
            vec![values(json!({"Last_Name": "I"}))],
            Origin::Integration(5),
        )
        .await?;
    let s = store
        .create_records(
            w.org.id,
            &leads(),
            vec![values(json!({"Last_Name": "S"}))],
            Origin::System,
        )
        .await?;
    assert!(created[2].id < a[0].id && a[0].id < l[0].id && l[0].id < s[0].id);
    let log = all_changes(&store, w.org.id).await?;
    let origins: Vec<(String, Option<i64>)> = log[3..]
        .iter()
        .map(|c| (c.origin_kind.clone(), c.origin_id))
        .collect();
    assert_eq!(
        origins,
        vec![
            ("key".to_string(), Some(77)),
            ("integration".to_string(), Some(5)),
            ("system".to_string(), None)
        ]
    );

    assert!(
        store
            .create_records(w.org.id, &c, vec![], Origin::System)
            .await?
            .is_empty()
    );
    assert_eq!(
        all_changes(&store, w.org.id).await?.len(),
        6,
        "an empty batch writes nothing"
    );

    let big: Vec<Map<String, Value>> = (0..450)
        .map(|i| values(json!({"Last_Name": format!("N{i}")})))
        .collect();
    let big = store
        .create_records(w.org.id, &c, big, Origin::System)
        .await?;
    assert!(
        big.windows(2).all(|p| p[0].id < p[1].id),
        "ids ascend across insert chunks"
    );
    assert_eq!(all_changes(&store, w.org.id).await?.len(), 456);
    assert_eq!(count_rows(&store, "records", w.org.id).await, 456);
    Ok(())
});

// Updates merge values, bump the version and log one change; `null`
// clears a field; an update that changes nothing writes nothing.
conformance!(records_update_versions_and_no_op, |store| async move {
    let w = world(&store, "boss@example.com").await?;
    let c = contacts();
    let r = create_one(
        &store,
        &w,
        &c,
        json!({"Last_Name": "Abe", "First_Name": "Ken", "Score": 1}),
    )
    .await?;

    let u = store
        .update_record(
            w.org.id,
            &c,
            r.id,
            values(json!({"Score": 2, "Email": "ken@example.com"})),
            None,
            Origin::Key {
                key: 9,
                user: w.admin.id,
            },
        )
        .await?;
    assert_eq!(u.version, 2);
    assert_eq!(
        u.fields,
        values(
            json!({"Last_Name": "Abe", "First_Name": "Ken", "Score": 2, "Email": "ken@example.com"})
        )
    );
    assert!(u.updated_at >= r.updated_at);
    assert_eq!((u.id, u.created_at), (r.id, r.created_at));
    assert_eq!(store.record(w.org.id, "Contacts", r.id).await?, u);

    let cleared = store
        .update_record(
            w.org.id,
            &c,
            r.id,
            values(json!({"First_Name": null})),
            Some(2),
            Origin::User(w.admin.id),
        )
        .await?;
    assert_eq!(cleared.version, 3);
    assert!(
        !cleared.fields.contains_key("First_Name"),
        "null clears the field"
    );
    assert_eq!(
        store.record(w.org.id, "Contacts", r.id).await?.fields,
        cleared.fields
    );

    let before = all_changes(&store, w.org.id).await?;
    let same = store
        .update_record(
            w.org.id,
            &c,
            r.id,
            values(json!({"Score": 2, "First_Name": null})),
            None,
            Origin::User(w.admin.id),
        )
        .await?;
    assert_eq!(same.version, 3, "no new version");
    assert_eq!(same, store.record(w.org.id, "Contacts", r.id).await?);
    assert_eq!(
        all_changes(&store, w.org.id).await?,
        before,
        "a no-op update writes no change row"
    );

    let log: Vec<(String, i64, String, Option<i64>)> = before
        .iter()
        .map(|c| (c.op.clone(), c.version, c.origin_kind.clone(), c.origin_id))
        .collect();
    assert_eq!(
        log,
        vec![
            (
                "create".to_string(),
                1,
                "user".to_string(),
                Some(w.admin.id)
            ),
            ("update".to_string(), 2, "key".to_string(), Some(9)),
            (
                "update".to_string(),
                3,
                "user".to_string(),
                Some(w.admin.id)
            ),
        ]
    );
    Ok(())
});

// With an expected version, a record changed meanwhile is refused (409)
// and left as it was.
conformance!(
    records_expected_version_mismatch_is_a_conflict,
    |store| async move {
        let w = world(&store, "boss@example.com").await?;
        let c = contacts();
        let r = create_one(&store, &w, &c, json!({"Last_Name": "Abe"})).await?;
        store
            .update_record(
                w.org.id,
                &c,
                r.id,
                values(json!({"Score": 5})),
                Some(1),
                Origin::System,
            )
            .await?;

        let e = assert_code(
            store
                .update_record(
                    w.org.id,
                    &c,
                    r.id,
                    values(json!({"Score": 6})),
                    Some(1),
                    Origin::System,
                )
                .await,
            "version_conflict",
            "a stale version",
        );
        assert_eq!(e.status(), 409);
        assert_eq!(
            (e.details["expected"].as_i64(), e.details["actual"].as_i64()),
            (Some(1), Some(2))
        );
        let now = store.record(w.org.id, "Contacts", r.id).await?;
        assert_eq!((now.version, now.fields.get("Score")), (2, Some(&json!(5))));
        assert_code(
            store
                .update_record(
                    w.org.id,
                    &c,
                    r.id,
                    values(json!({"Score": 5})),
                    Some(3),
                    Origin::System,
                )
                .await,
            "version_conflict",
            "a future version, even for a no-op",
        );
        assert_eq!(all_changes(&store, w.org.id).await?.len(), 2);
        Ok(())
    }
);

// Concurrent updates that all expect version 1: exactly one wins.
conformance!(
    records_concurrent_updates_with_expected_version,
    |store| async move {
        let w = world(&store, "boss@example.com").await?;
        let c = contacts();
        let r = create_one(&store, &w, &c, json!({"Last_Name": "Abe"})).await?;
        let mut tasks = Vec::new();
        for i in 0..6 {
            let (store, c, org) = (store.clone(), c.clone(), w.org.id);
            tasks.push(tokio::spawn(async move {
                store
                    .update_record(
                        org,
                        &c,
                        r.id,
                        values(json!({"Score": i})),
                        Some(1),
                        Origin::System,
                    )
                    .await
            }));
        }
        let mut ok = 0;
        for t in tasks {
            match t.await.expect("the update task finishes") {
                Ok(rec) => {
                    ok += 1;
                    assert_eq!(rec.version, 2);
                }
                Err(e) => assert_eq!(e.code, "version_conflict", "{e}"),
            }
        }
        assert_eq!(ok, 1, "exactly one update at version 1 wins");
        assert_eq!(store.record(w.org.id, "Contacts", r.id).await?.version, 2);
        assert_eq!(all_changes(&store, w.org.id).await?.len(), 2);
        Ok(())
    }
);

// Concurrent batches from many writers: every id distinct, every record
// logged exactly once.
conformance!(records_concurrent_creates, |store| async move {
    let w = world(&store, "boss@example.com").await?;
    let mut tasks = Vec::new();
    for t in 0..6 {
        let (store, org, admin) = (store.clone(), w.org.id, w.admin.id);
        tasks.push(tokio::spawn(async move {
            let rows = (0..20)
                .map(|i| values(json!({"Last_Name": format!("T{t}-{i}")})))
                .collect();
            store
                .create_records(org, &contacts(), rows, Origin::User(admin))
                .await
        }));
    }
    let mut all = BTreeSet::new();
    for t in tasks {
        let batch = t.await.expect("the create task finishes")?;
        assert!(batch.windows(2).all(|p| p[0].id < p[1].id));
        all.extend(ids(&batch));
    }
    assert_eq!(all.len(), 120, "no id was handed out twice");
    let logged: BTreeSet<i64> = all_changes(&store, w.org.id)
        .await?
        .iter()
        .map(|c| c.record_id)
        .collect();
    assert_eq!(logged, all);
    assert_eq!(all_changes(&store, w.org.id).await?.len(), 120);
    Ok(())
});

// ----- records: lookups, uniqueness -----------------------------------------------

// A lookup must name a live record of the target module in the same org;
// anything else is refused (404 `lookup_not_found`) and nothing is written.
conformance!(
    records_lookup_to_another_orgs_record_is_refused,
    |store| async move {
        let w = world(&store, "boss@example.com").await?;
        let theirs = world(&store, "other@example.com").await?;
        let c = contacts();
        let foreign = create_one(
            &store,
            &theirs,
            &accounts(),
            json!({"Account_Name": "Theirs"}),
        )
        .await?;
        let mine = create_one(&store, &w, &accounts(), json!({"Account_Name": "Mine"})).await?;
        let gone = create_one(&store, &w, &accounts(), json!({"Account_Name": "Gone"})).await?;
        store
            .delete_record(w.org.id, "Accounts", gone.id, Origin::System)
            .await?;
        let lead = create_one(&store, &w, &leads(), json!({"Last_Name": "L"})).await?;
        let records_before = count_rows(&store, "records", w.org.id).await;
        let changes_before = all_changes(&store, w.org.id).await?;

        for (target, why) in [
            (foreign.id, "another org's account"),
            (gone.id, "a deleted account"),
            (lead.id, "a record of another module"),
            (999_999, "an id that does not exist"),
        ] {
            let e = assert_code(
                store
                    .create_records(
                        w.org.id,
                        &c,
                        vec![
                            values(json!({"Last_Name": "Good", "Account": mine.id})),
                            values(json!({"Last_Name": "Bad", "Account": target})),
                        ],
                        Origin::System,
                    )
                    .await,
                "lookup_not_found",
                why,
            );
            assert_eq!(
                e.status(),
                404,
                "like any id that is absent or another org's"
            );
            assert_eq!(e.details["field"], json!("Account"));
            assert!(
                !e.message.en.contains("Theirs"),
                "nothing of the other org leaks"
            );
        }
        assert_eq!(
            count_rows(&store, "records", w.org.id).await,
            records_before,
            "nothing written"
        );
        assert_eq!(
            count_rows(&store, "record_refs", w.org.id).await,
            0,
            "no link written"
        );
        assert_eq!(
            all_changes(&store, w.org.id).await?,
            changes_before,
            "no change row"
        );
        assert_eq!(count_rows(&store, "records", theirs.org.id).await, 1);

        let ok = create_one(
            &store,
            &w,
            &c,
            json!({"Last_Name": "Good", "Account": mine.id}),
        )
        .await?;
        assert_code(
            store
                .update_record(
                    w.org.id,
                    &c,
                    ok.id,
                    values(json!({"Account": foreign.id, "Score": 1})),
                    None,
                    Origin::System,
                )
                .await,
            "lookup_not_found",
            "an update pointing at another org's account",
        );
        let after = store.record(w.org.id, "Contacts", ok.id).await?;
        assert_eq!(
            (after.version, after.fields.get("Account")),
            (1, Some(&json!(mine.id)))
        );
        assert!(
            store
                .related_records(theirs.org.id, foreign.id, "Contacts", None, 100)
                .await?
                .is_empty()
        );
        Ok(())
    }
);

// Unique fields: a duplicate is refused within a batch and against live
// records, with nothing written; deleted records do not count.
conformance!(
    records_unique_fields_refuse_duplicates,
    |store| async move {
        let w = world(&store, "boss@example.com").await?;
        let other = world(&store, "other@example.com").await?;
        let p = products();
        let first = create_one(
            &store,
            &w,
            &p,
            json!({"Product_Name": "Bolt", "Product_Code": "B-1"}),
        )
        .await?;
        let log = all_changes(&store, w.org.id).await?;

        assert_code(
            store
                .create_records(
                    w.org.id,
                    &p,
                    vec![
                        values(json!({"Product_Name": "Nut", "Product_Code": "N-1"})),
                        values(json!({"Product_Name": "Nut 2", "Product_Code": "N-1"})),
                    ],
                    Origin::System,
                )
                .await,
            "not_unique",
            "a duplicate within one batch",
        );
        let e = assert_code(
            store
                .create_records(
                    w.org.id,
                    &p,
                    vec![
                        values(json!({"Product_Name": "Washer", "Product_Code": "W-1"})),
                        values(json!({"Product_Name": "Bolt again", "Product_Code": "B-1"})),
                    ],
                    Origin::System,
                )
                .await,
            "not_unique",
            "a duplicate of an existing record",
        );
        assert_eq!(e.status(), 409);
        assert_eq!(e.details["field"], json!("Product_Code"));
        assert_eq!(e.details["existing_id"], json!(first.id));
        assert_eq!(
            count_rows(&store, "records", w.org.id).await,
            1,
            "nothing written"
        );
        assert_eq!(all_changes(&store, w.org.id).await?, log);

        // Records without a value, or in another org, are no duplicates.
        store
            .create_records(
                w.org.id,
                &p,
                vec![
                    values(json!({"Product_Name": "A"})),
                    values(json!({"Product_Name": "B"})),
                ],
                Origin::System,
            )
            .await?;
        create_one(
            &store,
            &other,
            &p,
            json!({"Product_Name": "Bolt", "Product_Code": "B-1"}),
        )
        .await?;

        let second = create_one(
            &store,
            &w,
            &p,
            json!({"Product_Name": "Nut", "Product_Code": "N-1"}),
        )
        .await?;
        assert_code(
            store
                .update_record(
                    w.org.id,
                    &p,
                    second.id,
                    values(json!({"Product_Code": "B-1"})),
                    None,
                    Origin::System,
                )
                .await,
            "not_unique",
            "an update to another record's value",
        );
        assert_eq!(
            store.record(w.org.id, "Products", second.id).await?.version,
            1
        );
        let renamed = store
            .update_record(
                w.org.id,
                &p,
                second.id,
                values(json!({"Product_Code": "N-1", "Product_Name": "Nut!"})),
                None,
                Origin::System,
            )
            .await?;
        assert_eq!(
            renamed.version, 2,
            "a record keeping its own value is no duplicate"
        );

        store
            .delete_record(w.org.id, "Products", first.id, Origin::System)
            .await?;
        create_one(
            &store,
            &w,
            &p,
            json!({"Product_Name": "New bolt", "Product_Code": "B-1"}),
        )
        .await?;
        Ok(())
    }
);

// Concurrent creates of the same unique value: exactly one succeeds.
conformance!(
    records_unique_fields_hold_under_concurrency,
    |store| async move {
        let w = world(&store, "boss@example.com").await?;
        for round in 0..3 {
            let mut tasks = Vec::new();
            for i in 0..6 {
                let (store, org) = (store.clone(), w.org.id);
                tasks.push(tokio::spawn(async move {
                    let row = values(json!({"Product_Name": format!("P{i}"), "Product_Code": format!("C-{round}")}));
                    store.create_records(org, &products(), vec![row], Origin::System).await
                }));
            }
            let mut ok = 0;
            for t in tasks {
                match t.await.expect("the create task finishes") {
                    Ok(_) => ok += 1,
                    Err(e) => assert_eq!(e.code, "not_unique", "{e}"),
                }
            }
            assert_eq!(ok, 1, "round {round}: exactly one record gets the code");
        }
        assert_eq!(count_rows(&store, "records", w.org.id).await, 3);
        Ok(())
    }
);
