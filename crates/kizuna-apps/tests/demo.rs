//! The demo resumes an interrupted run instead of keeping half its data, and a
//! second run changes nothing.

use kizuna_apps::{admin, demo};
use kizuna_domain::App;
use kizuna_store::ListQuery;
use kizuna_testkit::{Backend, fingerprint, run};

#[tokio::test]
async fn an_interrupted_demo_is_completed_and_a_second_run_changes_nothing() {
    run(Backend::Sqlite, "demo", |store| async move {
        // What a first run killed right after creating the CRM org leaves.
        let admin_user = store
            .create_user(demo::ADMIN_EMAIL, "Admin", Some(demo::DEMO_PASSWORD))
            .await?;
        store
            .create_user(demo::MEMBER_EMAIL, "Member", Some(demo::DEMO_PASSWORD))
            .await?;
        let crm = admin::create_org(&store, App::Crm, "Demo crm", "standard", &admin_user).await?;

        let d = demo::ensure_demo(&store).await?;
        assert_eq!(d.orgs.len(), 5);
        assert_eq!(
            d.orgs[0].id, crm.id,
            "the org of the first run is kept, not made twice"
        );
        assert_eq!(store.orgs_of_user(d.admin.id).await?.len(), 5);
        assert_eq!(store.orgs_of_user(d.member.id).await?.len(), 5);
        for org in &d.orgs {
            for m in store.modules(org.id).await? {
                let page = store
                    .list_records(org.id, &m, &ListQuery::default())
                    .await?;
                assert!(
                    !page.records.is_empty(),
                    "{} {} has no demo record",
                    org.app,
                    m.api_name
                );
            }
        }

        let before = fingerprint(&store).await;
        demo::ensure_demo(&store).await?;
        assert_eq!(
            fingerprint(&store).await,
            before,
            "a second run changes nothing"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn an_org_made_before_its_app_gained_a_module_gets_it_once() {
    run(Backend::Sqlite, "catalog_upgrade", |store| async move {
        let user = store.create_user("a@example.com", "A", None).await?;
        let crm = admin::create_org(&store, App::Crm, "Old CRM", "standard", &user).await?;
        // What an org created before CRM Products and the Participants of
        // CRM Events existed holds.
        for sql in [
            "DELETE FROM fields WHERE org_id = $1 AND module = 'Products'",
            "DELETE FROM fields WHERE org_id = $1 AND module = 'Events' AND api_name = 'Participants'",
            "DELETE FROM modules WHERE org_id = $1 AND api_name = 'Products'",
            "UPDATE orgs SET meta_version = meta_version + 1 WHERE id = $1",
        ] {
            store
                .db()
                .x()
                .execute(sql, &kizuna_store::args![crm.id])
                .await
                .map_err(|e| kizuna_domain::Error::internal(e.to_string()))?;
        }
        assert!(store.module(crm.id, "Products").await.is_err());
        assert_eq!(admin::add_missing_standard_modules(&store).await?, 2);
        let products = store.module(crm.id, "Products").await?;
        assert!(products.field("Product_Name").is_some_and(|f| f.required));
        let events = store.module(crm.id, "Events").await?;
        assert!(events.field("Participants").is_some_and(|f| !f.custom));
        let before = fingerprint(&store).await;
        assert_eq!(
            admin::add_missing_standard_modules(&store).await?,
            0,
            "once"
        );
        assert_eq!(fingerprint(&store).await, before);
        Ok(())
    })
    .await;
}
