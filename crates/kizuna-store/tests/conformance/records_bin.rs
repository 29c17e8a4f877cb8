//! Records: delete to the recycle bin, restore, purge.

use crate::fixtures::*;
use kizuna_store::{ListQuery, Origin, Store, args, now_ms};
use serde_json::json;

// Delete moves to the recycle bin; restore brings back; each is a new
// version with its change row.
conformance!(records_delete_recycle_bin_restore, |store| async move {
    let w = world(&store, "boss@example.com").await?;
    let c = contacts();
    let a = create_one(&store, &w, &c, json!({"Last_Name": "Abe"})).await?;
    let b = create_one(&store, &w, &c, json!({"Last_Name": "Baba"})).await?;

    let d = store
        .delete_record(w.org.id, "Contacts", a.id, Origin::User(w.admin.id))
        .await?;
    assert_eq!(d.version, 2);
    assert!(d.deleted_at.is_some());
    assert_code(
        store.record(w.org.id, "Contacts", a.id).await,
        "not_found",
        "a deleted record",
    );
    assert_code(
        store
            .delete_record(w.org.id, "Contacts", a.id, Origin::System)
            .await,
        "not_found",
        "deleting twice",
    );
    assert_code(
        store
            .update_record(
                w.org.id,
                &c,
                a.id,
                values(json!({"Score": 1})),
                None,
                Origin::System,
            )
            .await,
        "not_found",
        "updating a deleted record",
    );
    let listed = store
        .list_records(w.org.id, &c, &ListQuery::default())
        .await?;
    assert_eq!(ids(&listed.records), vec![b.id]);

    store
        .delete_record(w.org.id, "Contacts", b.id, Origin::System)
        .await?;
    let bin = store.recycle_bin(w.org.id, 10).await?;
    assert_eq!(ids(&bin), vec![b.id, a.id], "newest deletion first");
    assert!(bin.iter().all(|r| r.deleted_at.is_some()));
    assert_eq!(bin[1].fields, a.fields);
    assert_eq!(store.recycle_bin(w.org.id, 1).await?.len(), 1);

    let r = store
        .restore_record(w.org.id, "Contacts", a.id, Origin::User(w.admin.id))
        .await?;
    assert_eq!((r.version, r.deleted_at), (3, None));
    let back = store.record(w.org.id, "Contacts", a.id).await?;
    assert_eq!(
        (back.version, &back.fields, back.deleted_at),
        (3, &a.fields, None)
    );
    assert_eq!(ids(&store.recycle_bin(w.org.id, 10).await?), vec![b.id]);
    assert_code(
        store
            .restore_record(w.org.id, "Contacts", a.id, Origin::System)
            .await,
        "not_found",
        "restoring a live record",
    );

    let log: Vec<(i64, i64, String)> = all_changes(&store, w.org.id)
        .await?
        .into_iter()
        .map(|c| (c.record_id, c.version, c.op))
        .collect();
    assert_eq!(
        log,
        vec![
            (a.id, 1, "create".to_string()),
            (b.id, 1, "create".to_string()),
            (a.id, 2, "delete".to_string()),
            (b.id, 2, "delete".to_string()),
            (a.id, 3, "restore".to_string()),
        ]
    );
    Ok(())
});

// Purge removes for good what was deleted before the cut-off, with its
// links, logs it, and never reuses the ids.
conformance!(records_purge_deleted_removes_old_ones, |store| async move {
    let w = world(&store, "boss@example.com").await?;
    let c = contacts();
    let old = create_one(&store, &w, &accounts(), json!({"Account_Name": "Old"})).await?;
    let recent = create_one(&store, &w, &accounts(), json!({"Account_Name": "Recent"})).await?;
    let live = create_one(&store, &w, &accounts(), json!({"Account_Name": "Live"})).await?;
    let person = create_one(
        &store,
        &w,
        &c,
        json!({"Last_Name": "Abe", "Account": old.id}),
    )
    .await?;
    store
        .delete_record(w.org.id, "Accounts", old.id, Origin::System)
        .await?;
    store
        .delete_record(w.org.id, "Accounts", recent.id, Origin::System)
        .await?;
    let thirty_days = 30 * 24 * 3600 * 1000;
    let long_ago = now_ms() - thirty_days - 1000;
    execute(
        &store,
        "UPDATE records SET deleted_at = $1 WHERE id = $2",
        &args![long_ago, old.id],
    )
    .await;

    assert_eq!(
        store.purge_deleted(long_ago).await?,
        0,
        "nothing was deleted before then"
    );
    assert_eq!(store.purge_deleted(now_ms() - thirty_days).await?, 1);
    assert_eq!(
        ids(&store.recycle_bin(w.org.id, 10).await?),
        vec![recent.id]
    );
    assert_code(
        store
            .restore_record(w.org.id, "Accounts", old.id, Origin::System)
            .await,
        "not_found",
        "a purged record cannot be restored",
    );
    assert_eq!(
        count_rows(&store, "record_refs", w.org.id).await,
        0,
        "its links went with it"
    );
    store.record(w.org.id, "Accounts", live.id).await?;
    store
        .restore_record(w.org.id, "Accounts", recent.id, Origin::System)
        .await?;

    let purge = all_changes(&store, w.org.id)
        .await?
        .into_iter()
        .find(|c| c.op == "purge")
        .expect("a purge row");
    assert_eq!(
        (purge.record_id, purge.version, purge.origin_kind.as_str()),
        (old.id, 3, "system")
    );

    // A record that pointed at the purged one can still be edited.
    let edited = store
        .update_record(
            w.org.id,
            &c,
            person.id,
            values(json!({"First_Name": "Ken"})),
            None,
            Origin::System,
        )
        .await?;
    assert_eq!(edited.version, 2);

    // Purge the newest record: its id is never handed out again.
    let newest = create_one(&store, &w, &accounts(), json!({"Account_Name": "Newest"})).await?;
    store
        .delete_record(w.org.id, "Accounts", newest.id, Origin::System)
        .await?;
    assert_eq!(store.purge_deleted(now_ms() + 1).await?, 1);
    let next = create_one(&store, &w, &accounts(), json!({"Account_Name": "Next"})).await?;
    assert!(
        next.id > newest.id,
        "purged ids are not reused: {} after {}",
        next.id,
        newest.id
    );
    Ok(())
});
