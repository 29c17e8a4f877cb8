//! Orgs, members, plans and departments.

use crate::fixtures::*;
use kizuna_domain::{App, Role};
use kizuna_store::Store;

// An org gets its own copy of the modules, its creator as administrator,
// and a plan history; unknown plans are refused with nothing written.
conformance!(
    orgs_create_install_modules_and_record_plans,
    |store| async move {
        let w = world(&store, "boss@example.com").await?;
        assert_eq!(w.org.app, "crm");
        assert_eq!(w.org.plan, "free");
        assert_eq!(w.org.name, "Acme");
        assert_eq!(w.org.created_by, Some(w.admin.id));
        assert_eq!(store.org(w.org.id).await?, Some(w.org.clone()));

        assert_eq!(
            store.modules(w.org.id).await?,
            crm_modules(),
            "modules installed as given, in order"
        );
        assert_eq!(store.module(w.org.id, "Contacts").await?, contacts());
        assert_code(
            store.module(w.org.id, "Deals").await,
            "unknown_module",
            "a module not installed",
        );

        let members = store.members(w.org.id).await?;
        assert_eq!(members.len(), 1);
        assert_eq!(
            (members[0].user_id, members[0].role.as_str()),
            (w.admin.id, "administrator")
        );
        assert_eq!(
            store.role_of(w.org.id, w.admin.id).await?,
            Some(Role::Administrator)
        );
        let mine = store.orgs_of_user(w.admin.id).await?;
        assert_eq!(mine, vec![(w.org.clone(), Role::Administrator)]);

        let changes = store.plan_changes(w.org.id).await?;
        assert_eq!(changes.len(), 1);
        assert_eq!(
            (
                changes[0].from_plan.as_deref(),
                changes[0].to_plan.as_str(),
                changes[0].changed_by
            ),
            (None, "free", Some(w.admin.id))
        );

        let up = store
            .change_plan(&w.org, "professional", Some(w.admin.id))
            .await?;
        assert_eq!(up.plan, "professional");
        assert_eq!(
            store.org(w.org.id).await?.map(|o| o.plan),
            Some("professional".to_string())
        );
        let changes = store.plan_changes(w.org.id).await?;
        assert_eq!(changes.len(), 2);
        assert_eq!(
            (
                changes[1].from_plan.as_deref(),
                changes[1].to_plan.as_str(),
                changes[1].changed_by
            ),
            (Some("free"), "professional", Some(w.admin.id))
        );

        let e = assert_code(
            store.change_plan(&up, "premium", None).await,
            "unknown_plan",
            "premium is not a CRM plan",
        );
        assert!(
            e.message
                .en
                .contains("free, standard, professional, enterprise"),
            "{}",
            e.message.en
        );
        assert_eq!(
            store.plan_changes(w.org.id).await?.len(),
            2,
            "a refused change is not recorded"
        );
        assert_eq!(
            store.org(w.org.id).await?.map(|o| o.plan),
            Some("professional".to_string())
        );

        assert_code(
            store
                .create_org(App::Events, "Ev", "enterprise", &w.admin, &[])
                .await,
            "unknown_plan",
            "Events has no enterprise plan",
        );
        assert_code(
            store
                .create_org(App::Crm, "   ", "free", &w.admin, &[])
                .await,
            "invalid_name",
            "a blank org name",
        );
        assert_eq!(
            store.orgs_of_user(w.admin.id).await?.len(),
            1,
            "no org was created"
        );

        let second = store
            .create_org(App::Desk, "Help", "standard", &w.admin, &[leads()])
            .await?;
        assert_eq!(store.modules(second.id).await?, vec![leads()]);
        assert_eq!(
            store.modules(w.org.id).await?.len(),
            4,
            "each org has its own copy"
        );
        Ok(())
    }
);

// An org is 404 to anybody who is not a member, exactly like a missing one.
conformance!(
    orgs_org_for_member_is_404_for_non_members,
    |store| async move {
        let w = world(&store, "boss@example.com").await?;
        let member = user(&store, "member@example.com").await?;
        let outsider = user(&store, "outsider@example.com").await?;
        store.add_member(w.org.id, member.id, Role::Member).await?;

        let (org, role) = store.org_for_member(w.org.id, member.id).await?;
        assert_eq!((org.id, role), (w.org.id, Role::Member));
        let (_, role) = store.org_for_member(w.org.id, w.admin.id).await?;
        assert_eq!(role, Role::Administrator);

        let e = assert_code(
            store.org_for_member(w.org.id, outsider.id).await,
            "not_found",
            "a non-member",
        );
        assert_eq!(e.status(), 404);
        let missing = assert_code(
            store.org_for_member(w.org.id + 1000, w.admin.id).await,
            "not_found",
            "an org that does not exist",
        );
        assert_eq!(
            e.message.en.replace(&w.org.id.to_string(), "N"),
            missing
                .message
                .en
                .replace(&(w.org.id + 1000).to_string(), "N"),
            "nothing tells a non-member that the org exists"
        );
        assert_code(
            store.org_for_admin(w.org.id, outsider.id).await,
            "not_found",
            "non-member admin",
        );
        assert!(store.orgs_of_user(outsider.id).await?.is_empty());
        assert_code(
            store
                .add_member(w.org.id, member.id, Role::Administrator)
                .await,
            "already_exists",
            "adding a member twice",
        );
        Ok(())
    }
);

// GEN-1: a member who is not an administrator is refused, and the refusal
// names the org's administrators.
conformance!(
    gen_1_org_for_admin_names_the_administrators,
    |store| async move {
        let w = world(&store, "boss@example.com").await?;
        let member = user(&store, "member@example.com").await?;
        store.add_member(w.org.id, member.id, Role::Member).await?;

        assert_eq!(
            store.org_for_admin(w.org.id, w.admin.id).await?.id,
            w.org.id
        );
        let e = assert_code(
            store.org_for_admin(w.org.id, member.id).await,
            "admin_required",
            "GEN-1: a plain member",
        );
        assert_eq!(e.rule, Some("GEN-1"));
        assert_eq!(e.status(), 403);
        assert!(
            e.fix.en.contains("boss@example.com"),
            "GEN-1 names the admin: {}",
            e.fix.en
        );
        assert!(
            e.fix.ja.contains("boss@example.com"),
            "GEN-1 names the admin: {}",
            e.fix.ja
        );
        assert!(
            !e.fix.en.contains("member@example.com"),
            "only administrators are named"
        );
        assert_eq!(
            e.details["administrators"].as_array().map(Vec::len),
            Some(1)
        );
        Ok(())
    }
);

// The last administrator cannot be demoted; with two, one can.
conformance!(
    orgs_last_administrator_cannot_be_demoted,
    |store| async move {
        let w = world(&store, "boss@example.com").await?;
        let second = user(&store, "second@example.com").await?;
        let stranger = user(&store, "stranger@example.com").await?;
        store.add_member(w.org.id, second.id, Role::Member).await?;

        let e = assert_code(
            store
                .set_member_role(w.org.id, w.admin.id, Role::Member)
                .await,
            "last_administrator",
            "demoting the only administrator",
        );
        assert_eq!(e.status(), 409);
        assert_eq!(
            store.role_of(w.org.id, w.admin.id).await?,
            Some(Role::Administrator)
        );

        store
            .set_member_role(w.org.id, second.id, Role::Administrator)
            .await?;
        store
            .set_member_role(w.org.id, w.admin.id, Role::Member)
            .await?;
        assert_eq!(
            store.role_of(w.org.id, w.admin.id).await?,
            Some(Role::Member)
        );
        assert_code(
            store
                .set_member_role(w.org.id, second.id, Role::Member)
                .await,
            "last_administrator",
            "the new only administrator",
        );
        // An administrator may be set to administrator again (no demotion).
        store
            .set_member_role(w.org.id, second.id, Role::Administrator)
            .await?;
        assert_code(
            store
                .set_member_role(w.org.id, stranger.id, Role::Administrator)
                .await,
            "not_found",
            "a non-member's role",
        );
        assert_eq!(
            store.role_of(w.org.id, stranger.id).await?,
            None,
            "nobody joins by a role change"
        );
        Ok(())
    }
);

// Two administrators demoting each other at the same moment must leave
// one administrator: the last-administrator rule holds under concurrency.
conformance!(
    orgs_concurrent_demotions_keep_an_administrator,
    |store| async move {
        let w = world(&store, "boss@example.com").await?;
        for round in 0..5 {
            let other = user(&store, &format!("second{round}@example.com")).await?;
            store
                .add_member(w.org.id, other.id, Role::Administrator)
                .await?;
            let (a, b) = tokio::join!(
                store.set_member_role(w.org.id, w.admin.id, Role::Member),
                store.set_member_role(w.org.id, other.id, Role::Member),
            );
            assert!(
                a.is_ok() != b.is_ok(),
                "exactly one demotion succeeds: {a:?} / {b:?}"
            );
            let admins: Vec<i64> = store
                .members(w.org.id)
                .await?
                .into_iter()
                .filter(|m| m.role == "administrator")
                .map(|m| m.user_id)
                .collect();
            assert_eq!(admins.len(), 1, "round {round}: one administrator is left");
            // Make the original administrator the only one again for the next round.
            store
                .set_member_role(w.org.id, w.admin.id, Role::Administrator)
                .await?;
            store
                .set_member_role(w.org.id, other.id, Role::Member)
                .await?;
        }
        Ok(())
    }
);

// Desk departments: unique names per org, members must be org members.
conformance!(orgs_departments_and_their_members, |store| async move {
    let w = world(&store, "boss@example.com").await?;
    let agent = user(&store, "agent@example.com").await?;
    let outsider = user(&store, "outsider@example.com").await?;
    store.add_member(w.org.id, agent.id, Role::Member).await?;
    let other = store
        .create_org(App::Desk, "Other", "free", &outsider, &[])
        .await?;

    let support = store.create_department(w.org.id, " Support ").await?;
    assert_eq!(
        (support.name.as_str(), support.org_id),
        ("Support", w.org.id)
    );
    let sales = store.create_department(w.org.id, "Sales").await?;
    assert_code(
        store.create_department(w.org.id, "Support").await,
        "already_exists",
        "a second department of the same name",
    );
    let theirs = store.create_department(other.id, "Support").await?;
    assert_code(
        store.create_department(w.org.id, "").await,
        "invalid_name",
        "blank name",
    );
    assert_eq!(
        ids_of(&store.departments(w.org.id).await?),
        vec![support.id, sales.id]
    );

    store
        .add_department_member(w.org.id, support.id, agent.id)
        .await?;
    store
        .add_department_member(w.org.id, support.id, w.admin.id)
        .await?;
    store
        .add_department_member(w.org.id, support.id, agent.id)
        .await?;
    let mut expected = vec![agent.id, w.admin.id];
    expected.sort_unstable();
    assert_eq!(
        store.department_members(support.id).await?,
        expected,
        "adding twice is harmless"
    );
    assert!(store.department_members(sales.id).await?.is_empty());

    assert_code(
        store
            .add_department_member(w.org.id, support.id, outsider.id)
            .await,
        "not_found",
        "a user who is not an org member",
    );
    assert_code(
        store
            .add_department_member(w.org.id, theirs.id, agent.id)
            .await,
        "not_found",
        "another org's department",
    );
    assert_eq!(
        store.department_members(theirs.id).await?,
        Vec::<i64>::new()
    );
    Ok(())
});

fn ids_of(d: &[kizuna_store::Department]) -> Vec<i64> {
    d.iter().map(|d| d.id).collect()
}
