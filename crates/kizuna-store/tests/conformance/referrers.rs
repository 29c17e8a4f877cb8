//! Figures over the records that point at a record (EVT-14: an event's
//! attendees by status, the total of its paid orders), counted by the
//! database from the tally indexes.

use crate::fixtures::*;
use kizuna_domain::App;
use kizuna_domain::field::{FieldDef, FieldType as T, ModuleDef};
use kizuna_store::{Dialect, Origin, Store};
use serde_json::json;

fn events() -> ModuleDef {
    module(
        "Events",
        vec![FieldDef::new("Event_Name", T::Text).max(200).required()],
    )
}

fn attendees() -> ModuleDef {
    module(
        "Attendees",
        vec![
            FieldDef::new("Email", T::Email),
            FieldDef::new("Event", T::Lookup).lookup("Events"),
            FieldDef::new("Status", T::Picklist).picklist(&["registered", "attended", "cancelled"]),
        ],
    )
}

fn orders() -> ModuleDef {
    module(
        "Orders",
        vec![
            FieldDef::new("Event", T::Lookup).lookup("Events"),
            FieldDef::new("Status", T::Picklist).picklist(&["pending", "paid"]),
            FieldDef::new("Total", T::Currency),
        ],
    )
}

// EVT-14: an event's attendees counted by status and its paid orders added
// up, per event, leaving out deleted records, records without a status, and
// the events not asked about — read from the tally index in its order.
conformance!(
    evt_14_referrers_are_counted_from_the_tally_index,
    |store| async move {
        let admin = user(&store, "boss@example.com").await?;
        let org = store
            .create_org(
                App::Events,
                "Expo",
                "free",
                &admin,
                &[events(), attendees(), orders()],
            )
            .await?;
        let made = store
            .create_records(
                org.id,
                &events(),
                (0..3)
                    .map(|i| values(json!({"Event_Name": format!("E{i}")})))
                    .collect(),
                Origin::System,
            )
            .await?;
        let e: Vec<i64> = made.iter().map(|r| r.id).collect();
        let statuses = ["registered", "attended", "cancelled"];
        let rows = (0..300)
            .map(|i: usize| {
                let mut v = json!({"Email": format!("a{i}@example.com"), "Event": e[i % 3]});
                if i % 10 != 9 {
                    v["Status"] = json!(statuses[i % 7 % 3]);
                }
                values(v)
            })
            .collect();
        let people = store
            .create_records(org.id, &attendees(), rows, Origin::System)
            .await?;
        // Deleted attendees are not counted.
        for p in people.iter().filter(|p| p.id % 11 == 0) {
            store
                .delete_record(org.id, "Attendees", p.id, Origin::System)
                .await?;
        }
        let mut expected = std::collections::BTreeMap::new();
        for p in people
            .iter()
            .filter(|p| p.id % 11 != 0 && p.fields["Event"] != json!(e[2]))
        {
            let status = p
                .fields
                .get("Status")
                .and_then(|s| s.as_str())
                .map(str::to_string);
            *expected
                .entry((p.fields["Event"].as_i64().expect("an event id"), status))
                .or_insert(0i64) += 1;
        }
        let asked = [e[0], e[1]];
        let counted: std::collections::BTreeMap<_, _> = store
            .tally_referrers(None, org.id, &asked, ("Attendees", "Event"), "Status")
            .await?
            .into_iter()
            .map(|t| ((t.target, t.value), t.n))
            .collect();
        assert_eq!(counted, expected);
        assert!(
            counted.keys().any(|(_, s)| s.is_none()),
            "a count without a status"
        );

        if store.dialect() == Dialect::Postgres {
            // PostgreSQL plans by statistics; SQLite by the indexes alone.
            execute(&store, "ANALYZE records", &[]).await;
        }
        let plan = store
            .explain_tally(org.id, &asked, ("Attendees", "Event"), "Status")
            .await?
            .join("\n");
        assert!(plan.contains("records_tally_attendees"), "{plan}");
        if store.dialect() == Dialect::Sqlite {
            // The index's order is the groups' order: nothing is sorted.
            assert!(!plan.contains("TEMP B-TREE"), "{plan}");
        }

        let money = |n: i64, c: &str| json!({"amount_minor": n, "currency": c});
        let orders_rows = vec![
            json!({"Event": e[0], "Status": "paid", "Total": money(1000, "JPY")}),
            json!({"Event": e[0], "Status": "paid", "Total": money(2500, "JPY")}),
            json!({"Event": e[0], "Status": "pending", "Total": money(9000, "JPY")}),
            json!({"Event": e[0], "Status": "paid", "Total": money(700, "USD")}),
            json!({"Event": e[1], "Status": "paid"}),
            json!({"Event": e[2], "Status": "paid", "Total": money(5, "JPY")}),
        ];
        store
            .create_records(
                org.id,
                &orders(),
                orders_rows.into_iter().map(values).collect(),
                Origin::System,
            )
            .await?;
        let mut totals: Vec<(i64, Option<String>, i64)> = store
            .total_referrers(
                None,
                org.id,
                &asked,
                ("Orders", "Event"),
                "Total",
                ("Status", "paid"),
            )
            .await?
            .into_iter()
            .map(|t| (t.target, t.currency, t.amount_minor))
            .collect();
        totals.sort();
        assert_eq!(
            totals,
            vec![
                (e[0], Some("JPY".into()), 3500),
                (e[0], Some("USD".into()), 700)
            ]
        );
        Ok(())
    }
);
