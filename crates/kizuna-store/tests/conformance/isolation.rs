//! Isolation at the store level.

use crate::fixtures::*;
use kizuna_store::{ListQuery, Origin, Store};
use serde_json::json;

// Another org's record id is 404 for read, update, delete and restore, and
// the record is left untouched; so is a wrong module's.
conformance!(
    isolation_other_orgs_record_ids_are_404,
    |store| async move {
        let mine = world(&store, "boss@example.com").await?;
        let theirs = world(&store, "other@example.com").await?;
        let c = contacts();
        let r = create_one(&store, &theirs, &c, json!({"Last_Name": "Secret"})).await?;
        let binned = create_one(&store, &theirs, &c, json!({"Last_Name": "Binned"})).await?;
        store
            .delete_record(theirs.org.id, "Contacts", binned.id, Origin::System)
            .await?;

        let e = assert_code(
            store.record(mine.org.id, "Contacts", r.id).await,
            "not_found",
            "read",
        );
        assert_eq!(e.status(), 404);
        assert!(!e.message.en.contains("Secret"));
        assert_code(
            store
                .update_record(
                    mine.org.id,
                    &c,
                    r.id,
                    values(json!({"Last_Name": "Mine"})),
                    None,
                    Origin::System,
                )
                .await,
            "not_found",
            "update",
        );
        assert_code(
            store
                .update_record(
                    mine.org.id,
                    &c,
                    r.id,
                    values(json!({"Last_Name": "Mine"})),
                    Some(1),
                    Origin::System,
                )
                .await,
            "not_found",
            "update with a version: 404, not a conflict",
        );
        assert_code(
            store
                .delete_record(mine.org.id, "Contacts", r.id, Origin::System)
                .await,
            "not_found",
            "delete",
        );
        assert_code(
            store
                .restore_record(mine.org.id, "Contacts", binned.id, Origin::System)
                .await,
            "not_found",
            "restore",
        );
        assert_code(
            store.record(theirs.org.id, "Leads", r.id).await,
            "not_found",
            "the wrong module",
        );
        assert_code(
            store
                .delete_record(theirs.org.id, "Leads", r.id, Origin::System)
                .await,
            "not_found",
            "delete, wrong module",
        );

        let still = store.record(theirs.org.id, "Contacts", r.id).await?;
        assert_eq!(still, r, "untouched");
        assert_eq!(
            ids(&store.recycle_bin(theirs.org.id, 10).await?),
            vec![binned.id]
        );
        assert!(store.recycle_bin(mine.org.id, 10).await?.is_empty());
        assert!(
            store
                .list_records(mine.org.id, &c, &ListQuery::default())
                .await?
                .records
                .is_empty()
        );
        assert!(
            all_changes(&store, mine.org.id).await?.is_empty(),
            "nothing logged in my org"
        );
        assert_eq!(all_changes(&store, theirs.org.id).await?.len(), 3);
        Ok(())
    }
);
