//! Records: lists, sorts, cursors, related lists, e-mail look-ups, the change log.

use crate::fixtures::*;
use kizuna_store::{ListQuery, Origin, Store, args, now_ms};
use serde_json::{Map, Value, json};

// Equality filters, e-mail ones case-insensitive, combined with AND; only
// this org's live records of this module.
conformance!(records_list_filters, |store| async move {
    let w = world(&store, "boss@example.com").await?;
    let other = world(&store, "other@example.com").await?;
    let c = contacts();
    let acct = create_one(
        &store,
        &w,
        &accounts(),
        json!({"Account_Name": "A", "Email": "pat@example.com"}),
    )
    .await?;
    let rows = vec![
        values(
            json!({"Last_Name": "Abe", "Email": "Pat@Example.com", "Score": 3, "Newsletter": true, "Account": acct.id}),
        ),
        values(
            json!({"Last_Name": "Abe", "Email": "kim@example.com", "Secondary_Email": "Alt@Example.COM", "Score": 4, "Newsletter": false}),
        ),
        values(json!({"Last_Name": "Baba", "Email": "pat@example.com", "Score": 3})),
        values(json!({"Last_Name": "Chiba", "Score": 30})),
    ];
    let r = store
        .create_records(w.org.id, &c, rows.clone(), Origin::System)
        .await?;
    let gone = create_one(
        &store,
        &w,
        &c,
        json!({"Last_Name": "Abe", "Email": "pat@example.com"}),
    )
    .await?;
    store
        .delete_record(w.org.id, "Contacts", gone.id, Origin::System)
        .await?;
    let theirs: Vec<Map<String, Value>> = rows
        .into_iter()
        .map(|mut v| {
            v.remove("Account");
            v
        })
        .collect();
    store
        .create_records(other.org.id, &c, theirs, Origin::System)
        .await?;

    let list = |filters: Vec<(&'static str, Value)>| {
        let store = store.clone();
        let c = c.clone();
        let org = w.org.id;
        async move {
            let q = ListQuery {
                filters: filters
                    .into_iter()
                    .map(|(f, v)| (field(&c, f).clone(), v))
                    .collect(),
                ..ListQuery::default()
            };
            store
                .list_records(org, &c, &q)
                .await
                .map(|p| ids(&p.records))
        }
    };
    assert_eq!(list(vec![]).await?, ids(&r));
    assert_eq!(
        list(vec![("Email", json!("PAT@example.COM"))]).await?,
        vec![r[0].id, r[2].id]
    );
    assert_eq!(
        list(vec![("Email", json!(" pat@example.com "))]).await?,
        vec![r[0].id, r[2].id]
    );
    assert_eq!(
        list(vec![("Secondary_Email", json!("alt@example.com"))]).await?,
        vec![r[1].id]
    );
    assert_eq!(
        list(vec![("Last_Name", json!("Abe"))]).await?,
        vec![r[0].id, r[1].id]
    );
    assert_eq!(
        list(vec![("Last_Name", json!("abe"))]).await?,
        Vec::<i64>::new(),
        "text is exact"
    );
    assert_eq!(
        list(vec![("Score", json!(3))]).await?,
        vec![r[0].id, r[2].id]
    );
    assert_eq!(list(vec![("Score", json!(30))]).await?, vec![r[3].id]);
    assert_eq!(
        list(vec![("Newsletter", json!(true))]).await?,
        vec![r[0].id]
    );
    assert_eq!(
        list(vec![("Newsletter", json!(false))]).await?,
        vec![r[1].id]
    );
    assert_eq!(
        list(vec![("Account", json!(acct.id))]).await?,
        vec![r[0].id]
    );
    assert_eq!(
        list(vec![("Last_Name", json!("Abe")), ("Score", json!(4))]).await?,
        vec![r[1].id],
        "filters combine with AND"
    );
    assert_eq!(
        list(vec![("Last_Name", json!("Nobody"))]).await?,
        Vec::<i64>::new()
    );
    Ok(())
});

// A cursor the list did not give out is refused as `invalid_cursor`.
conformance!(records_invalid_cursor_is_refused, |store| async move {
    let w = world(&store, "boss@example.com").await?;
    let c = contacts();
    store
        .create_records(
            w.org.id,
            &c,
            (0..3)
                .map(|i| values(json!({"Last_Name": format!("N{i}")})))
                .collect(),
            Origin::System,
        )
        .await?;
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    for cursor in [
        "zz".to_string(),
        "abc".to_string(),
        "ééé".to_string(),
        hex("not json"),
        hex("{\"a\": 1}"),
        hex("[\"x\"]"),
        hex("[\"x\", \"y\"]"),
        "a".repeat(9000),
    ] {
        let q = ListQuery {
            cursor: Some(cursor.clone()),
            ..ListQuery::default()
        };
        let e = assert_code(
            store.list_records(w.org.id, &c, &q).await,
            "invalid_cursor",
            &cursor,
        );
        assert_eq!(e.status(), 400);
    }
    // A cursor given out works.
    let first = store
        .list_records(
            w.org.id,
            &c,
            &ListQuery {
                limit: 2,
                ..ListQuery::default()
            },
        )
        .await?;
    let next = store
        .list_records(
            w.org.id,
            &c,
            &ListQuery {
                limit: 2,
                cursor: first.next_cursor,
                ..ListQuery::default()
            },
        )
        .await?;
    assert_eq!(next.records.len(), 1);
    Ok(())
});

// ----- records: related lists, e-mail, change log ---------------------------------

// Related lists: records whose lookup points at a record, and records
// associated with it, paged by id; deleted ones are left out.
conformance!(
    records_related_via_lookup_and_association,
    |store| async move {
        let w = world(&store, "boss@example.com").await?;
        let other = world(&store, "other@example.com").await?;
        let c = contacts();
        let a1 = create_one(&store, &w, &accounts(), json!({"Account_Name": "One"})).await?;
        let a2 = create_one(&store, &w, &accounts(), json!({"Account_Name": "Two"})).await?;
        let people = store
            .create_records(
                w.org.id,
                &c,
                vec![
                    values(json!({"Last_Name": "P1", "Account": a1.id})),
                    values(json!({"Last_Name": "P2", "Account": a1.id})),
                    values(json!({"Last_Name": "P3", "Account": a2.id})),
                    values(json!({"Last_Name": "P4"})),
                ],
                Origin::System,
            )
            .await?;
        let related = |id: i64, list: &'static str, after: Option<i64>, limit: u32| {
            let store = store.clone();
            let org = w.org.id;
            async move {
                store
                    .related_records(org, id, list, after, limit)
                    .await
                    .map(|r| ids(&r))
            }
        };
        assert_eq!(
            related(a1.id, "Contacts", None, 100).await?,
            vec![people[0].id, people[1].id]
        );
        assert_eq!(
            related(a2.id, "Contacts", None, 100).await?,
            vec![people[2].id]
        );
        assert_eq!(
            related(a1.id, "Contacts", None, 1).await?,
            vec![people[0].id]
        );
        assert_eq!(
            related(a1.id, "Contacts", Some(people[0].id), 1).await?,
            vec![people[1].id]
        );
        assert_eq!(related(a1.id, "Leads", None, 100).await?, Vec::<i64>::new());
        assert!(
            store
                .related_records(other.org.id, a1.id, "Contacts", None, 100)
                .await?
                .is_empty(),
            "not from another org"
        );

        // Moving a contact to another account moves it between related lists;
        // clearing the lookup removes it.
        store
            .update_record(
                w.org.id,
                &c,
                people[1].id,
                values(json!({"Account": a2.id})),
                None,
                Origin::System,
            )
            .await?;
        assert_eq!(
            related(a1.id, "Contacts", None, 100).await?,
            vec![people[0].id]
        );
        assert_eq!(
            related(a2.id, "Contacts", None, 100).await?,
            vec![people[1].id, people[2].id]
        );
        store
            .update_record(
                w.org.id,
                &c,
                people[2].id,
                values(json!({"Account": null})),
                None,
                Origin::System,
            )
            .await?;
        assert_eq!(
            related(a2.id, "Contacts", None, 100).await?,
            vec![people[1].id]
        );
        // An update of another field keeps the link.
        store
            .update_record(
                w.org.id,
                &c,
                people[1].id,
                values(json!({"Score": 9})),
                None,
                Origin::System,
            )
            .await?;
        assert_eq!(
            related(a2.id, "Contacts", None, 100).await?,
            vec![people[1].id]
        );

        store
            .delete_record(w.org.id, "Contacts", people[0].id, Origin::System)
            .await?;
        assert_eq!(
            related(a1.id, "Contacts", None, 100).await?,
            Vec::<i64>::new(),
            "deleted ones are left out"
        );
        store
            .restore_record(w.org.id, "Contacts", people[0].id, Origin::System)
            .await?;
        assert_eq!(
            related(a1.id, "Contacts", None, 100).await?,
            vec![people[0].id],
            "and come back"
        );

        // Many-to-many associations list each side from the other.
        let lead = create_one(&store, &w, &leads(), json!({"Last_Name": "L"})).await?;
        let refs_before = count_rows(&store, "record_refs", w.org.id).await;
        store
            .associate(w.org.id, people[3].id, lead.id, "Campaign")
            .await?;
        store
            .associate(w.org.id, people[3].id, lead.id, "Campaign")
            .await?;
        store
            .associate(w.org.id, lead.id, people[2].id, "Campaign")
            .await?;
        assert_eq!(
            related(lead.id, "Contacts", None, 100).await?,
            vec![people[2].id, people[3].id]
        );
        assert_eq!(
            related(people[3].id, "Leads", None, 100).await?,
            vec![lead.id],
            "no duplicates"
        );
        // An association is one row, read both ways: pages walk the records
        // it points at and those pointing at it as one list.
        assert_eq!(
            count_rows(&store, "record_refs", w.org.id).await,
            refs_before + 2,
            "two associations, a row each"
        );
        store
            .associate(w.org.id, lead.id, people[3].id, "Campaign")
            .await?;
        assert_eq!(
            related(people[3].id, "Leads", None, 100).await?,
            vec![lead.id],
            "associated again the other way: still once"
        );
        let first = related(lead.id, "Contacts", None, 1).await?;
        assert_eq!(first, vec![people[2].id]);
        assert_eq!(
            related(lead.id, "Contacts", Some(first[0]), 1).await?,
            vec![people[3].id]
        );
        assert_eq!(
            related(people[1].id, "Accounts", None, 100).await?,
            Vec::<i64>::new(),
            "a lookup lists its holder on its target's page, not the other way"
        );
        store
            .associate(w.org.id, people[3].id, lead.id, "Other_Link")
            .await?;
        assert_eq!(
            related(people[3].id, "Leads", None, 100).await?,
            vec![lead.id],
            "one row per record"
        );

        let foreign = create_one(&store, &other, &leads(), json!({"Last_Name": "X"})).await?;
        assert_code(
            store
                .associate(w.org.id, people[3].id, foreign.id, "Campaign")
                .await,
            "not_found",
            "another org's record",
        );
        assert_code(
            store
                .associate(other.org.id, foreign.id, people[3].id, "Campaign")
                .await,
            "not_found",
            "from the other side",
        );
        assert_code(
            store
                .associate(w.org.id, people[3].id, 999_999, "Campaign")
                .await,
            "not_found",
            "a missing record",
        );
        assert!(
            store
                .related_records(other.org.id, foreign.id, "Contacts", None, 100)
                .await?
                .is_empty()
        );

        // Dissociating removes one association, both directions, and only it.
        store
            .dissociate(w.org.id, lead.id, people[3].id, "Campaign")
            .await?;
        assert_eq!(
            related(lead.id, "Contacts", None, 100).await?,
            vec![people[2].id, people[3].id],
            "still linked as Other_Link"
        );
        store
            .dissociate(w.org.id, people[3].id, lead.id, "Other_Link")
            .await?;
        assert_eq!(
            related(lead.id, "Contacts", None, 100).await?,
            vec![people[2].id]
        );
        assert_eq!(
            related(people[3].id, "Leads", None, 100).await?,
            Vec::<i64>::new()
        );
        assert_code(
            store
                .dissociate(w.org.id, people[3].id, lead.id, "Campaign")
                .await,
            "not_found",
            "dissociating twice",
        );
        assert_code(
            store
                .dissociate(other.org.id, lead.id, people[2].id, "Campaign")
                .await,
            "not_found",
            "from another org",
        );
        assert_eq!(
            related(lead.id, "Contacts", None, 100).await?,
            vec![people[2].id],
            "another org cannot remove it"
        );
        assert_eq!(
            related(a2.id, "Contacts", None, 100).await?,
            vec![people[1].id],
            "lookups are untouched"
        );
        Ok(())
    }
);

// EVT-7's look-up: live records with an e-mail across the named modules,
// oldest first, whatever the case of the address.
conformance!(
    records_by_email_across_modules_oldest_first,
    |store| async move {
        let w = world(&store, "boss@example.com").await?;
        let other = world(&store, "other@example.com").await?;
        let contact = create_one(
            &store,
            &w,
            &contacts(),
            json!({"Last_Name": "C", "Email": "Pat@Example.com"}),
        )
        .await?;
        let lead = create_one(
            &store,
            &w,
            &leads(),
            json!({"Last_Name": "L", "Email": "pat@example.COM"}),
        )
        .await?;
        let account = create_one(
            &store,
            &w,
            &accounts(),
            json!({"Account_Name": "A", "Email": "pat@example.com"}),
        )
        .await?;
        let gone = create_one(
            &store,
            &w,
            &leads(),
            json!({"Last_Name": "G", "Email": "pat@example.com"}),
        )
        .await?;
        store
            .delete_record(w.org.id, "Leads", gone.id, Origin::System)
            .await?;
        create_one(
            &store,
            &other,
            &leads(),
            json!({"Last_Name": "O", "Email": "pat@example.com"}),
        )
        .await?;
        create_one(
            &store,
            &w,
            &contacts(),
            json!({"Last_Name": "S", "Secondary_Email": "pat@example.com"}),
        )
        .await?;
        // The lead is older than the contact, though its id is higher.
        execute(
            &store,
            "UPDATE records SET created_at = $1 WHERE id = $2",
            &args![1_000_i64, lead.id],
        )
        .await;

        let found = store
            .records_by_email(w.org.id, &["Leads", "Contacts"], "  PAT@example.com")
            .await?;
        assert_eq!(
            ids(&found),
            vec![lead.id, contact.id],
            "oldest first, only the named modules"
        );
        assert_eq!(found[0].module, "Leads");
        let all = store
            .records_by_email(
                w.org.id,
                &["Accounts", "Leads", "Contacts"],
                "pat@example.com",
            )
            .await?;
        assert_eq!(ids(&all), vec![lead.id, contact.id, account.id]);
        assert!(
            store
                .records_by_email(w.org.id, &["Leads"], "nobody@example.com")
                .await?
                .is_empty()
        );
        assert!(
            store
                .records_by_email(w.org.id, &[], "pat@example.com")
                .await?
                .is_empty(),
            "no modules, no records"
        );

        store
            .update_record(
                w.org.id,
                &contacts(),
                contact.id,
                values(json!({"Email": "new@example.com"})),
                None,
                Origin::System,
            )
            .await?;
        assert_eq!(
            ids(&store
                .records_by_email(w.org.id, &["Leads", "Contacts"], "pat@example.com")
                .await?),
            vec![lead.id]
        );
        assert_eq!(
            ids(&store
                .records_by_email(w.org.id, &["Contacts"], "NEW@example.com")
                .await?),
            vec![contact.id]
        );
        store
            .update_record(
                w.org.id,
                &contacts(),
                contact.id,
                values(json!({"Email": null})),
                None,
                Origin::System,
            )
            .await?;
        assert!(
            store
                .records_by_email(w.org.id, &["Contacts"], "new@example.com")
                .await?
                .is_empty()
        );
        Ok(())
    }
);

// The change log reads in pages after a cursor (its `seq`), oldest first,
// one org at a time.
conformance!(changes_after_cursor_pages, |store| async move {
    let w = world(&store, "boss@example.com").await?;
    let other = world(&store, "other@example.com").await?;
    let c = contacts();
    let rs = store
        .create_records(
            w.org.id,
            &c,
            (0..5)
                .map(|i| values(json!({"Last_Name": format!("N{i}")})))
                .collect(),
            Origin::System,
        )
        .await?;
    create_one(&store, &other, &c, json!({"Last_Name": "Other"})).await?;
    store
        .update_record(
            w.org.id,
            &c,
            rs[0].id,
            values(json!({"Score": 1})),
            None,
            Origin::System,
        )
        .await?;
    create_one(&store, &other, &c, json!({"Last_Name": "Other 2"})).await?;
    store
        .delete_record(w.org.id, "Contacts", rs[1].id, Origin::System)
        .await?;

    let everything = all_changes(&store, w.org.id).await?;
    assert_eq!(everything.len(), 7);
    let mut walked = Vec::new();
    let mut after = 0;
    loop {
        let page = store.changes_after(w.org.id, after, 2).await?;
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = last.seq;
        walked.extend(page);
    }
    assert_eq!(walked, everything, "paging sees every row once, in order");
    assert!(walked.windows(2).all(|p| p[0].seq < p[1].seq));
    let tail: Vec<(i64, String)> = walked[5..]
        .iter()
        .map(|c| (c.record_id, c.op.clone()))
        .collect();
    assert_eq!(
        tail,
        vec![
            (rs[0].id, "update".to_string()),
            (rs[1].id, "delete".to_string())
        ]
    );
    assert!(store.changes_after(w.org.id, after, 10).await?.is_empty());
    assert_eq!(
        all_changes(&store, other.org.id).await?.len(),
        2,
        "each org sees only its own"
    );

    let t0 = now_ms();
    store
        .update_record(
            w.org.id,
            &c,
            rs[2].id,
            values(json!({"Score": 2})),
            None,
            Origin::System,
        )
        .await?;
    let fresh = store.changes_after(w.org.id, after, 10).await?;
    assert_eq!(fresh.len(), 1, "a new change shows after the cursor");
    assert!(fresh[0].at >= t0 && fresh[0].at <= now_ms());
    Ok(())
});

// DSK-13/DSK-14: a sync ties a new account to the one the other app holds
// under the same name, trimmed and in lower case; only this org's live
// accounts, oldest first, found through the name-key index (not by reading
// every account of the org).
conformance!(
    accounts_found_by_name_key_from_its_index,
    |store| async move {
        let w = world(&store, "boss@example.com").await?;
        let other = world(&store, "other@example.com").await?;
        let a = accounts();
        let names = ["  Acme Corp ", "acme corp", "Globex", "Initech"];
        let made = store
            .create_records(
                w.org.id,
                &a,
                names
                    .iter()
                    .map(|n| values(json!({"Account_Name": n})))
                    .collect(),
                Origin::System,
            )
            .await?;
        store
            .create_records(
                other.org.id,
                &a,
                vec![values(json!({"Account_Name": "Acme Corp"}))],
                Origin::System,
            )
            .await?;
        store
            .delete_record(w.org.id, "Accounts", made[2].id, Origin::System)
            .await?;
        // Enough accounts that reading them all would cost more than the
        // index, also by PostgreSQL's statistics.
        store
            .create_records(
                w.org.id,
                &a,
                (0..2000)
                    .map(|i| values(json!({"Account_Name": format!("Filler {i}")})))
                    .collect(),
                Origin::System,
            )
            .await?;
        let keys = [
            "acme corp".to_string(),
            "globex".to_string(),
            "nobody".to_string(),
        ];
        let mut tx = store.begin().await?;
        let found = store
            .records_by_text_keys_in(&mut tx, w.org.id, "Accounts", "Account_Name", &keys)
            .await?;
        drop(tx);
        assert_eq!(
            ids(&found),
            vec![made[0].id, made[1].id],
            "both spellings of Acme, oldest first; not the deleted Globex, not the other org's Acme"
        );
        if store.dialect() == kizuna_store::Dialect::Postgres {
            // PostgreSQL plans by statistics; SQLite by the indexes alone.
            execute(&store, "ANALYZE records", &[]).await;
        }
        let plan = store
            .explain_text_keys(w.org.id, ("Accounts", "Account_Name"), &keys)
            .await?
            .join("\n");
        assert!(plan.contains("records_name_accounts"), "{plan}");
        Ok(())
    }
);
