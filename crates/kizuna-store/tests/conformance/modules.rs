//! Modules and fields.

use crate::fixtures::*;
use kizuna_domain::Error;
use kizuna_domain::field::{FieldDef, FieldType as T};
use kizuna_store::{Org, Store, args};
use serde_json::json;

// Custom fields are appended to their module; a duplicate API name is
// refused; other orgs' copies are untouched.
conformance!(
    modules_add_custom_field_and_refuse_duplicates,
    |store| async move {
        let w = world(&store, "boss@example.com").await?;
        let other = world(&store, "other@example.com").await?;
        let mut custom = FieldDef::new("Shoe_Size", T::Picklist)
            .picklist(&["S", "M", "L"])
            .max(10);
        custom.custom = true;
        store.add_field(w.org.id, "Contacts", &custom).await?;

        let m = store.module(w.org.id, "Contacts").await?;
        assert_eq!(m.fields.len(), contacts().fields.len() + 1);
        assert_eq!(
            m.fields.last(),
            Some(&custom),
            "appended, with every attribute kept"
        );
        assert_eq!(m.fields[..contacts().fields.len()], contacts().fields[..]);

        let mut dup = FieldDef::new("Shoe_Size", T::Text);
        dup.custom = true;
        assert_code(
            store.add_field(w.org.id, "Contacts", &dup).await,
            "already_exists",
            "same API name",
        );
        assert_code(
            store
                .add_field(w.org.id, "Contacts", &FieldDef::new("Email", T::Email))
                .await,
            "already_exists",
            "a standard field's name",
        );
        assert_eq!(
            store.module(w.org.id, "Contacts").await?.fields.len(),
            contacts().fields.len() + 1
        );
        assert_code(
            store.add_field(w.org.id, "Deals", &custom).await,
            "unknown_module",
            "no such module",
        );

        store.add_field(w.org.id, "Leads", &custom).await?;
        assert_eq!(
            store.module(other.org.id, "Contacts").await?,
            contacts(),
            "another org is untouched"
        );
        Ok(())
    }
);

// Modules can be disabled and enabled again.
conformance!(modules_set_module_enabled, |store| async move {
    let w = world(&store, "boss@example.com").await?;
    store.set_module_enabled(w.org.id, "Leads", false).await?;
    assert!(!store.module(w.org.id, "Leads").await?.enabled);
    let enabled: Vec<(String, bool)> = store
        .modules(w.org.id)
        .await?
        .into_iter()
        .map(|m| (m.api_name, m.enabled))
        .collect();
    assert_eq!(
        enabled,
        vec![
            ("Accounts".to_string(), true),
            ("Contacts".to_string(), true),
            ("Leads".to_string(), false),
            ("Products".to_string(), true),
        ]
    );
    store.set_module_enabled(w.org.id, "Leads", true).await?;
    assert!(store.module(w.org.id, "Leads").await?.enabled);
    assert_code(
        store.set_module_enabled(w.org.id, "Deals", false).await,
        "unknown_module",
        "no such module",
    );
    Ok(())
});

// Fields can be marked unused, except required ones.
conformance!(modules_set_field_in_use, |store| async move {
    let w = world(&store, "boss@example.com").await?;
    store
        .set_field_in_use(w.org.id, "Contacts", "Score", false)
        .await?;
    let m = store.module(w.org.id, "Contacts").await?;
    assert!(!field(&m, "Score").in_use);
    assert!(field(&m, "First_Name").in_use);

    let e = assert_code(
        store
            .set_field_in_use(w.org.id, "Contacts", "Last_Name", false)
            .await,
        "field_required",
        "a required field",
    );
    assert_eq!(e.status(), 400);
    assert!(field(&store.module(w.org.id, "Contacts").await?, "Last_Name").in_use);
    assert_code(
        store
            .set_field_in_use(w.org.id, "Contacts", "Nope", false)
            .await,
        "unknown_field",
        "no such field",
    );
    assert_code(
        store
            .set_field_in_use(w.org.id, "Deals", "Score", false)
            .await,
        "unknown_module",
        "no such module",
    );
    store
        .set_field_in_use(w.org.id, "Contacts", "Score", true)
        .await?;
    assert_eq!(store.module(w.org.id, "Contacts").await?, contacts());
    Ok(())
});

// Every change to an org's metadata bumps its meta_version, in the change's
// transaction, so that `module_of`'s cache never serves a stale module.
conformance!(
    modules_meta_version_keeps_the_module_cache_fresh,
    |store| async move {
        let w = world(&store, "boss@example.com").await?;
        let other = world(&store, "other@example.com").await?;
        let org = |id: i64| {
            let store = store.clone();
            async move { Ok::<Org, Error>(store.org(id).await?.expect("the org exists")) }
        };
        assert_eq!(*store.module_of(&w.org, "Contacts").await?, contacts());
        assert_code(
            store.module_of(&w.org, "Deals").await,
            "unknown_module",
            "no such module",
        );

        let mut custom = FieldDef::new("Shoe_Size", T::Text).max(10);
        custom.custom = true;
        store.add_field(w.org.id, "Contacts", &custom).await?;
        let o1 = org(w.org.id).await?;
        assert!(
            o1.meta_version > w.org.meta_version,
            "add_field bumps meta_version"
        );
        assert_eq!(
            store.module_of(&o1, "Contacts").await?.fields.last(),
            Some(&custom),
            "the cache sees the new field"
        );

        store
            .set_module_enabled(w.org.id, "Contacts", false)
            .await?;
        let o2 = org(w.org.id).await?;
        assert!(
            o2.meta_version > o1.meta_version,
            "set_module_enabled bumps meta_version"
        );
        assert!(!store.module_of(&o2, "Contacts").await?.enabled);

        store
            .set_field_in_use(w.org.id, "Contacts", "Score", false)
            .await?;
        let o3 = org(w.org.id).await?;
        assert!(
            o3.meta_version > o2.meta_version,
            "set_field_in_use bumps meta_version"
        );
        let m = store.module_of(&o3, "Contacts").await?;
        assert!(!field(&m, "Score").in_use);

        // Refused changes change nothing; records and plans are not metadata.
        assert_code(
            store.add_field(w.org.id, "Contacts", &custom).await,
            "already_exists",
            "duplicate",
        );
        assert_code(
            store
                .set_field_in_use(w.org.id, "Contacts", "Last_Name", false)
                .await,
            "field_required",
            "required",
        );
        create_one(&store, &w, &leads(), json!({"Last_Name": "L"})).await?;
        store.change_plan(&o3, "standard", None).await?;
        assert_eq!(org(w.org.id).await?.meta_version, o3.meta_version);
        assert_eq!(
            org(other.org.id).await?.meta_version,
            other.org.meta_version,
            "other orgs are untouched"
        );
        assert_eq!(*store.module_of(&other.org, "Contacts").await?, contacts());
        Ok(())
    }
);

// Fields added at the same time each get a position of their own.
conformance!(
    modules_concurrent_custom_fields_get_distinct_positions,
    |store| async move {
        let w = world(&store, "boss@example.com").await?;
        let mut tasks = Vec::new();
        for i in 0..6 {
            let (store, org) = (store.clone(), w.org.id);
            tasks.push(tokio::spawn(async move {
                let mut f = FieldDef::new(&format!("Extra_{i}"), T::Text);
                f.custom = true;
                store.add_field(org, "Contacts", &f).await
            }));
        }
        for t in tasks {
            t.await.expect("task")?;
        }
        let row: Count = store
        .db()
        .x()
        .fetch_one(
            "SELECT COUNT(DISTINCT position) - COUNT(*) AS n FROM fields WHERE org_id = $1 AND module = 'Contacts'",
            &args![w.org.id],
        )
        .await
        .expect("count");
        assert_eq!(row.n, 0, "every field has its own position");
        Ok(())
    }
);
