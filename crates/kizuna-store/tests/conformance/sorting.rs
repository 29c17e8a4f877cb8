//! Lists sorted by a field, and sortable fields: their index, and the list
//! queries that walk it.

use crate::fixtures::*;
use kizuna_domain::field::{FieldDef, FieldType as T};
use kizuna_store::sort_index::sort_index_name;
use kizuna_store::{Dialect, ListQuery, Origin, SortKey, Store};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// The plan of every query of a list `q`, one string.
async fn plan(store: &Store, org_id: i64, q: &ListQuery) -> kizuna_domain::Result<String> {
    Ok(store.explain_list(org_id, &contacts(), q).await?.join("\n"))
}

// A list sorted by a sortable field reads its index in order, both ways and
// from a cursor in either stretch (records with and without a value): the
// database neither reads the whole module nor sorts it.
conformance!(sorted_lists_walk_the_sort_index, |store| async move {
    let w = world(&store, "boss@example.com").await?;
    let c = contacts();
    let rows = (0..3000)
        .map(|i| {
            let mut v = json!({"Last_Name": format!("L{}", (i * 7919) % 3000)});
            if i % 10 != 0 {
                v["First_Name"] = json!(format!("F{}", (i * 104_729) % 2000));
            }
            values(v)
        })
        .collect();
    store
        .create_records(w.org.id, &c, rows, Origin::System)
        .await?;
    store
        .set_field_sortable(w.org.id, "Contacts", "First_Name", true)
        .await?;
    if store.dialect() == Dialect::Postgres {
        // PostgreSQL plans by statistics; SQLite by the indexes alone.
        execute(&store, "ANALYZE records", &[]).await;
    }
    let index = sort_index_name("Contacts", "First_Name");
    let by_first = |descending, cursor| ListQuery {
        sort: SortKey::Field(field(&c, "First_Name").clone()),
        descending,
        cursor,
        limit: 50,
        ..ListQuery::default()
    };
    for descending in [false, true] {
        // Cursors in the stretch without a value and in the one with.
        let first = store
            .list_records(w.org.id, &c, &by_first(descending, None))
            .await?;
        let mut cursors = vec![None, first.next_cursor.clone()];
        let deep = store
            .list_records(
                w.org.id,
                &c,
                &ListQuery {
                    limit: 1000,
                    ..by_first(descending, None)
                },
            )
            .await?;
        cursors.push(deep.next_cursor.clone());
        for cursor in cursors {
            let had_cursor = cursor.is_some();
            let p = plan(&store, w.org.id, &by_first(descending, cursor)).await?;
            assert!(
                p.contains(&index),
                "desc={descending} cursor={had_cursor}: uses {index}:\n{p}"
            );
            assert!(
                !p.contains("TEMP B-TREE") && !p.contains("Sort "),
                "desc={descending} cursor={had_cursor}: no sort step:\n{p}"
            );
        }
    }

    // A field that is not sortable has no index to walk.
    let by_last = ListQuery {
        sort: SortKey::Field(field(&c, "Last_Name").clone()),
        ..ListQuery::default()
    };
    let p = plan(&store, w.org.id, &by_last).await?;
    assert!(!p.contains("records_sort_"), "no sort index:\n{p}");
    Ok(())
});

// Marking a field sortable shows in its definition; long texts, several
// values and unknown fields are refused; the index stays while any org has
// the field sortable and goes with the last.
conformance!(
    sortable_marks_refuse_long_texts_and_drop_unused_indexes,
    |store| async move {
        let a = world(&store, "a@example.com").await?;
        let b = world(&store, "b@example.com").await?;
        let mut notes = FieldDef::new("Notes", T::Textarea);
        notes.custom = true;
        store.add_field(a.org.id, "Contacts", &notes).await?;
        let mut long = FieldDef::new("Motto", T::Text).max(2000);
        long.custom = true;
        store.add_field(a.org.id, "Contacts", &long).await?;
        let mut price = FieldDef::new("Price", T::Currency);
        price.custom = true;
        store.add_field(a.org.id, "Contacts", &price).await?;
        for (f, why) in [
            ("Notes", "a textarea"),
            ("Motto", "2,000 characters"),
            ("Price", "money: an amount and a currency"),
        ] {
            let e = assert_code(
                store
                    .set_field_sortable(a.org.id, "Contacts", f, true)
                    .await,
                "field_not_sortable",
                why,
            );
            assert!(
                e.message.en.contains(f) && e.message.ja.contains(f),
                "{why}: names the field: {e}"
            );
        }
        assert_code(
            store
                .set_field_sortable(a.org.id, "Contacts", "Nope", true)
                .await,
            "unknown_field",
            "no such field",
        );
        let mut sortable_notes = notes.clone();
        sortable_notes.api_name = "Notes_2".into();
        sortable_notes.sortable = true;
        assert_code(
            store.add_field(a.org.id, "Contacts", &sortable_notes).await,
            "field_not_sortable",
            "a new textarea marked sortable",
        );
        assert!(
            store
                .module(a.org.id, "Contacts")
                .await?
                .field("Notes_2")
                .is_none()
        );

        for w in [&a, &b] {
            store
                .set_field_sortable(w.org.id, "Contacts", "First_Name", true)
                .await?;
        }
        let m = store.module(a.org.id, "Contacts").await?;
        assert!(m.field("First_Name").is_some_and(|f| f.sortable));
        assert!(m.field("Last_Name").is_some_and(|f| !f.sortable));

        let index = sort_index_name("Contacts", "First_Name");
        let q = ListQuery {
            sort: SortKey::Field(field(&contacts(), "First_Name").clone()),
            ..ListQuery::default()
        };
        let indexes = || index_names(&store);
        if store.dialect() == Dialect::Postgres {
            // A concurrent build that died leaves an invalid index; marking
            // the field again rebuilds it rather than trusting its name.
            execute(
                &store,
                &format!(
                    "UPDATE pg_index SET indisvalid = false WHERE indexrelid = '{index}'::regclass"
                ),
                &[],
            )
            .await;
            store
                .set_field_sortable(a.org.id, "Contacts", "First_Name", true)
                .await?;
            let valid: Vec<Name> = store
                .db()
                .x()
                .fetch_all(
                    "SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
                     WHERE c.relname = $1 AND i.indisvalid",
                    &kizuna_store::args![index.as_str()],
                )
                .await
                .expect("read pg_index");
            assert_eq!(valid.len(), 1, "rebuilt valid");
        }
        store
            .set_field_sortable(a.org.id, "Contacts", "First_Name", false)
            .await?;
        assert!(indexes().await.contains(&index), "b still sorts by it");
        assert!(
            !store
                .module(a.org.id, "Contacts")
                .await?
                .field("First_Name")
                .is_some_and(|f| f.sortable)
        );
        store
            .set_field_sortable(b.org.id, "Contacts", "First_Name", false)
            .await?;
        assert!(!indexes().await.contains(&index), "dropped with the last");
        // The list still answers, in the same order, without it.
        store.list_records(b.org.id, &contacts(), &q).await?;
        Ok(())
    }
);

#[derive(sqlx::FromRow)]
struct Name {
    name: String,
}

/// The names of the database's indexes, read directly.
async fn index_names(store: &Store) -> Vec<String> {
    let rows: Vec<Name> = store
        .db()
        .x()
        .fetch_all(
            match store.dialect() {
                Dialect::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'index'",
                Dialect::Postgres => "SELECT indexname AS name FROM pg_indexes",
            },
            &[],
        )
        .await
        .expect("list indexes");
    rows.into_iter().map(|r| r.name).collect()
}

// One org marking a field sortable while another unmarks it, at the same
// time, over and over: index changes take turns, so after every round the
// index exists exactly while some org has the field sortable.
conformance!(
    concurrent_marks_and_unmarks_never_leave_a_mark_without_its_index,
    |store| async move {
        let a = world(&store, "a@example.com").await?;
        let b = world(&store, "b@example.com").await?;
        let index = sort_index_name("Contacts", "First_Name");
        for round in 0..12 {
            let (one, other) = (store.clone(), store.clone());
            let (r1, r2) = tokio::join!(
                one.set_field_sortable(a.org.id, "Contacts", "First_Name", round % 2 == 0),
                other.set_field_sortable(b.org.id, "Contacts", "First_Name", round % 2 == 1),
            );
            r1?;
            r2?;
            let mut marked = false;
            for w in [&a, &b] {
                let m = store.module(w.org.id, "Contacts").await?;
                marked |= m.field("First_Name").is_some_and(|f| f.sortable);
            }
            assert!(marked, "round {round}: one of the two marks it");
            assert!(
                index_names(&store).await.contains(&index),
                "round {round}: its index exists"
            );
        }
        for w in [&a, &b] {
            store
                .set_field_sortable(w.org.id, "Contacts", "First_Name", false)
                .await?;
        }
        assert!(
            !index_names(&store).await.contains(&index),
            "gone with the last mark"
        );
        Ok(())
    }
);

// Sorting by a text field (ties by id) and by id, both directions.
conformance!(records_list_sorts, |store| async move {
    let w = world(&store, "boss@example.com").await?;
    let c = contacts();
    let names = ["Kato", "Abe", "Mori", "Abe", "Ueda", "Baba"];
    let rows = names
        .iter()
        .map(|n| values(json!({"Last_Name": n})))
        .collect();
    let r = store
        .create_records(w.org.id, &c, rows, Origin::System)
        .await?;
    let by_name = |descending| ListQuery {
        sort: SortKey::Field(field(&c, "Last_Name").clone()),
        descending,
        ..ListQuery::default()
    };
    let page = store.list_records(w.org.id, &c, &by_name(false)).await?;
    let got: Vec<&str> = page
        .records
        .iter()
        .filter_map(|r| r.fields["Last_Name"].as_str())
        .collect();
    assert_eq!(got, vec!["Abe", "Abe", "Baba", "Kato", "Mori", "Ueda"]);
    assert_eq!(page.records[0].id, r[1].id, "ties go by id");
    assert_eq!(page.records[1].id, r[3].id);
    assert_eq!(page.next_cursor, None);

    let page = store.list_records(w.org.id, &c, &by_name(true)).await?;
    let got: Vec<&str> = page
        .records
        .iter()
        .filter_map(|r| r.fields["Last_Name"].as_str())
        .collect();
    assert_eq!(got, vec!["Ueda", "Mori", "Kato", "Baba", "Abe", "Abe"]);
    assert_eq!((page.records[4].id, page.records[5].id), (r[3].id, r[1].id));

    let desc = ListQuery {
        descending: true,
        ..ListQuery::default()
    };
    let page = store.list_records(w.org.id, &c, &desc).await?;
    let mut expected = ids(&r);
    expected.reverse();
    assert_eq!(ids(&page.records), expected);
    Ok(())
});

// Walking every page with a cursor sees each record exactly once, in
// order, for every sort; records without the sort value come first.
conformance!(
    records_cursor_pagination_walks_every_page,
    |store| async move {
        let w = world(&store, "boss@example.com").await?;
        let c = contacts();
        let surnames = ["Sato", "Abe", "Ito", "Kato", "Abe"];
        let rows: Vec<Map<String, Value>> = (0..25)
            .map(|i| {
                let mut v = json!({"Last_Name": surnames[i % 5], "Score": (i * 7) % 4});
                if i % 6 == 0 {
                    v["First_Name"] = json!(format!("F{:02}", 25 - i));
                }
                // No score: left out, or a JSON null (which a create may
                // store); both are no value, on both backends.
                if i % 8 == 0
                    && let Some(o) = v.as_object_mut()
                {
                    o.remove("Score");
                }
                if i % 8 == 4 {
                    v["Score"] = Value::Null;
                }
                values(v)
            })
            .collect();
        let created = store
            .create_records(w.org.id, &c, rows, Origin::System)
            .await?;
        // Other records that must never show up: another module, deleted.
        create_one(&store, &w, &leads(), json!({"Last_Name": "Abe"})).await?;
        let gone = create_one(&store, &w, &c, json!({"Last_Name": "Abe"})).await?;
        store
            .delete_record(w.org.id, "Contacts", gone.id, Origin::System)
            .await?;

        // The expected order of a sort: missing values first, ties by id.
        let expect = |name: Option<&str>, descending: bool| -> Vec<i64> {
            let mut v: Vec<(Value, i64)> = created
                .iter()
                .map(|r| {
                    (
                        name.and_then(|n| r.fields.get(n).cloned())
                            .unwrap_or(Value::Null),
                        r.id,
                    )
                })
                .collect();
            v.sort_by(|a, b| {
                let key = |x: &Value| (!x.is_null(), x.as_i64(), x.as_str().map(str::to_string));
                key(&a.0).cmp(&key(&b.0)).then(a.1.cmp(&b.1))
            });
            if descending {
                v.reverse();
            }
            v.into_iter().map(|(_, id)| id).collect()
        };

        // Without an index (any field sorts, reading the module) and with
        // one (a sortable field's, read as two index ranges): the same order.
        for indexed in [false, true] {
            if indexed {
                for f in ["Last_Name", "First_Name", "Score"] {
                    store
                        .set_field_sortable(w.org.id, "Contacts", f, true)
                        .await?;
                }
            }
            for (sort, name) in [
                (SortKey::Id, None),
                (
                    SortKey::Field(field(&c, "Last_Name").clone()),
                    Some("Last_Name"),
                ),
                (
                    SortKey::Field(field(&c, "First_Name").clone()),
                    Some("First_Name"),
                ),
                (SortKey::Field(field(&c, "Score").clone()), Some("Score")),
            ] {
                for descending in [false, true] {
                    let q = ListQuery {
                        sort: sort.clone(),
                        descending,
                        ..ListQuery::default()
                    };
                    let walked = ids(&walk(&store, w.org.id, &c, q.clone(), 7).await?);
                    let unique: BTreeSet<i64> = walked.iter().copied().collect();
                    assert_eq!(
                        unique.len(),
                        walked.len(),
                        "{name:?} desc={descending} indexed={indexed}: no duplicates"
                    );
                    assert_eq!(
                        walked,
                        expect(name, descending),
                        "{name:?} desc={descending} indexed={indexed}: order"
                    );
                    let whole = store
                        .list_records(w.org.id, &c, &ListQuery { limit: 100, ..q })
                        .await?;
                    assert_eq!(
                        ids(&whole.records),
                        walked,
                        "{name:?}: pages add up to the whole list"
                    );
                }
            }
        }

        // A filter and a cursor together.
        let q = ListQuery {
            filters: vec![(field(&c, "Last_Name").clone(), json!("Abe"))],
            ..ListQuery::default()
        };
        let abes = walk(&store, w.org.id, &c, q, 3).await?;
        assert_eq!(abes.len(), 10);
        assert!(abes.iter().all(|r| r.fields["Last_Name"] == json!("Abe")));
        Ok(())
    }
);
