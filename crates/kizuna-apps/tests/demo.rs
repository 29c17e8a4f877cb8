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
