//! The store conformance suite (DESIGN.md, Storage): every test runs once on
//! SQLite (a fresh file) and once on PostgreSQL (a fresh database, when
//! `KIZUNA_TEST_POSTGRES_URL` is set), so that both backends are proven to
//! behave the same through the one `Store` API.

use kizuna_domain::field::{FieldDef, FieldType as T, ModuleDef};
use kizuna_domain::{App, Error, Result, Role};
use kizuna_store::{ListQuery, Org, Origin, Record, SortKey, Store, User, args, now_ms};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// `conformance!(name, |store| async move { …; Ok(()) })` defines the test
/// `name::sqlite` and `name::postgres` with the same body.
macro_rules! conformance {
    ($name:ident, |$store:ident| $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                kizuna_testkit::run(
                    kizuna_testkit::Backend::Sqlite,
                    concat!(stringify!($name), "::sqlite"),
                    |$store: Store| $body,
                )
                .await;
            }

            #[tokio::test]
            async fn postgres() {
                kizuna_testkit::run(
                    kizuna_testkit::Backend::Postgres,
                    concat!(stringify!($name), "::postgres"),
                    |$store: Store| $body,
                )
                .await;
            }
        }
    };
}

// ----- fixtures -----------------------------------------------------------------

fn module(api_name: &str, fields: Vec<FieldDef>) -> ModuleDef {
    ModuleDef {
        api_name: api_name.to_string(),
        label: api_name.replace('_', " "),
        label_ja: format!("{api_name}（日本語）"),
        enabled: true,
        fields,
    }
}

fn accounts() -> ModuleDef {
    module(
        "Accounts",
        vec![
            FieldDef::new("Account_Name", T::Text).max(200).required(),
            FieldDef::new("Email", T::Email),
        ],
    )
}

fn contacts() -> ModuleDef {
    module(
        "Contacts",
        vec![
            FieldDef::new("First_Name", T::Text).max(40),
            FieldDef::new("Last_Name", T::Text).max(80).required(),
            FieldDef::new("Email", T::Email),
            FieldDef::new("Secondary_Email", T::Email),
            FieldDef::new("Account", T::Lookup).lookup("Accounts"),
            FieldDef::new("Score", T::Integer),
            FieldDef::new("Newsletter", T::Boolean),
        ],
    )
}

fn leads() -> ModuleDef {
    module(
        "Leads",
        vec![
            FieldDef::new("Last_Name", T::Text).max(80).required(),
            FieldDef::new("Email", T::Email),
            FieldDef::new("Company", T::Text).max(200),
        ],
    )
}

fn products() -> ModuleDef {
    module(
        "Products",
        vec![
            FieldDef::new("Product_Name", T::Text).max(200).required(),
            FieldDef::new("Product_Code", T::Text).max(40).unique(),
        ],
    )
}

fn crm_modules() -> Vec<ModuleDef> {
    vec![accounts(), contacts(), leads(), products()]
}

/// An org with its administrator.
struct World {
    admin: User,
    org: Org,
}

async fn user(store: &Store, email: &str) -> Result<User> {
    store.create_user(email, "Test User", None).await
}

async fn world(store: &Store, admin_email: &str) -> Result<World> {
    let admin = user(store, admin_email).await?;
    let org = store
        .create_org(App::Crm, "Acme", "free", &admin, &crm_modules())
        .await?;
    Ok(World { admin, org })
}

/// A JSON object literal as a record's values.
fn values(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("record values must be a JSON object, not {other}"),
    }
}

async fn create_one(store: &Store, w: &World, module: &ModuleDef, v: Value) -> Result<Record> {
    let mut created = store
        .create_records(w.org.id, module, vec![values(v)], Origin::User(w.admin.id))
        .await?;
    Ok(created.remove(0))
}

async fn all_changes(store: &Store, org_id: i64) -> Result<Vec<kizuna_store::Change>> {
    store.changes_after(org_id, 0, 100_000).await
}

#[derive(sqlx::FromRow)]
struct Count {
    n: i64,
}

/// How many rows of `table` belong to `org_id`, live or not, read directly.
async fn count_rows(store: &Store, table: &str, org_id: i64) -> i64 {
    let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE org_id = $1");
    let c: Count = store
        .db()
        .x()
        .fetch_one(&sql, &args![org_id])
        .await
        .expect("count rows directly");
    c.n
}

/// Runs a statement directly, for tests that must age a row.
async fn execute(store: &Store, sql: &str, a: &[kizuna_store::db::Arg]) {
    store
        .db()
        .x()
        .execute(sql, a)
        .await
        .expect("run a statement directly");
}

fn ids(records: &[Record]) -> Vec<i64> {
    records.iter().map(|r| r.id).collect()
}

fn field<'a>(m: &'a ModuleDef, name: &str) -> &'a FieldDef {
    m.field(name).expect("the fixture has this field")
}

/// Every page of a list, in order; checks each page's size on the way.
async fn walk(
    store: &Store,
    org_id: i64,
    m: &ModuleDef,
    mut q: ListQuery,
    limit: u32,
) -> Result<Vec<Record>> {
    q.limit = limit;
    let mut out = Vec::new();
    for _ in 0..1000 {
        let page = store.list_records(org_id, m, &q).await?;
        assert!(
            page.records.len() <= limit as usize,
            "a page is at most `limit` long"
        );
        out.extend(page.records.iter().cloned());
        match page.next_cursor {
            Some(c) => {
                assert_eq!(
                    page.records.len(),
                    limit as usize,
                    "only the last page is short"
                );
                q.cursor = Some(c);
            }
            None => return Ok(out),
        }
    }
    panic!("the cursor never ended");
}

fn assert_code<T: std::fmt::Debug>(r: Result<T>, code: &str, why: &str) -> Error {
    let e = r.expect_err(why);
    assert_eq!(e.code, code, "{why}: got {e}");
    e
}

// ----- users and API keys ---------------------------------------------------------

// E-mail is the identity: stored trimmed and lower-case, unique regardless
// of case; bad input is refused before anything is written.
conformance!(
    users_create_and_refuse_duplicate_email,
    |store| async move {
        let ann = store
            .create_user("  Ann@Example.COM ", " Ann ", None)
            .await?;
        assert_eq!(ann.email, "ann@example.com");
        assert_eq!(ann.name, "Ann");
        assert!(ann.active);
        let found = store.user_by_email("ANN@example.com").await?;
        assert_eq!(found.as_ref().map(|u| u.id), Some(ann.id));
        assert_eq!(store.user_by_id(ann.id).await?, Some(ann.clone()));

        let e = assert_code(
            store
                .create_user("ann@EXAMPLE.com", "Other Ann", None)
                .await,
            "already_exists",
            "a second user with the same e-mail in another case",
        );
        assert_eq!(e.status(), 409);

        assert_code(
            store.create_user("not-an-email", "X", None).await,
            "invalid_email",
            "bad e-mail",
        );
        assert_code(
            store.create_user("x@example.com", "  ", None).await,
            "invalid_name",
            "blank name",
        );
        assert_code(
            store
                .create_user("weak@example.com", "Weak", Some("short"))
                .await,
            "weak_password",
            "a 5-character password",
        );
        assert_eq!(
            store.user_by_email("weak@example.com").await?,
            None,
            "nothing was written"
        );
        assert_eq!(
            store.user_by_email("x@example.com").await?,
            None,
            "nothing was written"
        );
        Ok(())
    }
);

// Sign-in: right password accepted (e-mail in any case), wrong one and
// unknown users refused alike, a deactivated user refused (GEN-10).
conformance!(users_password_check, |store| async move {
    let u = store
        .create_user("pat@example.com", "Pat", Some("correct horse battery"))
        .await?;
    let ok = store
        .check_password("PAT@example.com", "correct horse battery")
        .await?;
    assert_eq!(ok.id, u.id);
    assert_code(
        store
            .check_password("pat@example.com", "wrong horse battery")
            .await,
        "bad_credentials",
        "wrong password",
    );
    assert_code(
        store
            .check_password("nobody@example.com", "correct horse battery")
            .await,
        "bad_credentials",
        "unknown user",
    );
    user(&store, "nopass@example.com").await?;
    assert_code(
        store.check_password("nopass@example.com", "").await,
        "bad_credentials",
        "a user without a password cannot sign in",
    );

    let off = store.set_user_active("pat@example.com", false).await?;
    assert!(!off.active);
    let e = assert_code(
        store
            .check_password("pat@example.com", "correct horse battery")
            .await,
        "user_deactivated",
        "a deactivated user's right password",
    );
    assert_eq!(e.rule, Some("GEN-10"));
    assert_code(
        store
            .check_password("pat@example.com", "wrong horse battery")
            .await,
        "bad_credentials",
        "a wrong password says nothing about the account's state",
    );
    store.set_user_active("pat@example.com", true).await?;
    store
        .check_password("pat@example.com", "correct horse battery")
        .await?;
    assert_code(
        store.set_user_active("ghost@example.com", false).await,
        "user_not_found",
        "deactivating an unknown user",
    );
    Ok(())
});

// API keys: shown once, authenticate their owner, refused once revoked;
// only the owner can revoke, and only once.
conformance!(api_keys_create_authenticate_revoke, |store| async move {
    let u = user(&store, "kim@example.com").await?;
    let other = user(&store, "lee@example.com").await?;
    let (k1, key1) = store.create_api_key(u.id).await?;
    let (k2, key2) = store.create_api_key(u.id).await?;
    assert_ne!(k1, k2);
    assert_ne!(key1, key2);
    assert!(key1.starts_with("kz_") && key1.len() > 40, "key: {key1}");

    let p = store.authenticate_key(&key1).await?;
    assert_eq!(p.user.id, u.id);
    assert_eq!(p.key_id, Some(k1));
    let p = store.authenticate_key(&format!("  {key2}\n")).await?;
    assert_eq!(p.key_id, Some(k2), "surrounding whitespace is ignored");

    assert_code(
        store.authenticate_key("kz_0000").await,
        "unauthenticated",
        "unknown key",
    );
    assert_code(
        store.authenticate_key("").await,
        "unauthenticated",
        "empty key",
    );

    assert_code(
        store.revoke_api_key(other.id, k1).await,
        "not_found",
        "another user revoking my key",
    );
    store.authenticate_key(&key1).await?;
    store.revoke_api_key(u.id, k1).await?;
    let e = assert_code(
        store.authenticate_key(&key1).await,
        "key_revoked",
        "revoked key",
    );
    assert_eq!(e.status(), 401);
    assert_code(
        store.revoke_api_key(u.id, k1).await,
        "not_found",
        "revoking twice",
    );
    assert_eq!(
        store.authenticate_key(&key2).await?.key_id,
        Some(k2),
        "the other key still works"
    );
    Ok(())
});

// GEN-10: a deactivated user's key is refused at once, naming the user;
// re-activation brings the same key back.
conformance!(
    gen_10_deactivated_users_key_refused_until_reactivated,
    |store| async move {
        let u = user(&store, "admin@example.com").await?;
        let (kid, key) = store.create_api_key(u.id).await?;
        store.set_user_active("admin@example.com", false).await?;
        let e = assert_code(
            store.authenticate_key(&key).await,
            "user_deactivated",
            "GEN-10",
        );
        assert_eq!(e.rule, Some("GEN-10"));
        assert_eq!(e.status(), 401);
        assert!(
            e.message.en.contains("admin@example.com"),
            "{}",
            e.message.en
        );
        assert!(e.fix.ja.contains("admin@example.com"), "{}", e.fix.ja);

        store.set_user_active("ADMIN@example.com", true).await?;
        let p = store.authenticate_key(&key).await?;
        assert_eq!(
            (p.user.id, p.key_id, p.user.active),
            (u.id, Some(kid), true)
        );
        Ok(())
    }
);

// ----- orgs, members, plans, departments ------------------------------------------

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

// ----- modules and fields ---------------------------------------------------------

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

// ----- records: create, update ----------------------------------------------------

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
            Origin::Key(77),
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
            Origin::Key(9),
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

// ----- records: delete, restore, purge --------------------------------------------

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

// ----- records: lists, sorts, cursors ---------------------------------------------

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
                if i % 8 == 0
                    && let Some(o) = v.as_object_mut()
                {
                    o.remove("Score");
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
                    "{name:?} desc={descending}: no duplicates"
                );
                assert_eq!(
                    walked,
                    expect(name, descending),
                    "{name:?} desc={descending}: order"
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

// ----- isolation ------------------------------------------------------------------

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
