//! Fixtures shared by the suite: small module definitions, an org with its
//! administrator, and assertions on refusals.

use kizuna_domain::field::{FieldDef, FieldType as T, ModuleDef};
use kizuna_domain::{App, Error, Result};
use kizuna_store::{ListQuery, Org, Origin, Record, Store, User, args};
use serde_json::Value;

pub fn module(api_name: &str, fields: Vec<FieldDef>) -> ModuleDef {
    ModuleDef {
        api_name: api_name.to_string(),
        label: api_name.replace('_', " "),
        label_ja: format!("{api_name}（日本語）"),
        enabled: true,
        fields,
    }
}

pub fn accounts() -> ModuleDef {
    module(
        "Accounts",
        vec![
            FieldDef::new("Account_Name", T::Text).max(200).required(),
            FieldDef::new("Email", T::Email),
        ],
    )
}

pub fn contacts() -> ModuleDef {
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

pub fn leads() -> ModuleDef {
    module(
        "Leads",
        vec![
            FieldDef::new("Last_Name", T::Text).max(80).required(),
            FieldDef::new("Email", T::Email),
            FieldDef::new("Company", T::Text).max(200),
        ],
    )
}

pub fn products() -> ModuleDef {
    module(
        "Products",
        vec![
            FieldDef::new("Product_Name", T::Text).max(200).required(),
            FieldDef::new("Product_Code", T::Text).max(40).unique(),
        ],
    )
}

pub fn crm_modules() -> Vec<ModuleDef> {
    vec![accounts(), contacts(), leads(), products()]
}

/// An org with its administrator.
pub struct World {
    pub admin: User,
    pub org: Org,
}

pub async fn user(store: &Store, email: &str) -> Result<User> {
    store.create_user(email, "Test User", None).await
}

pub async fn world(store: &Store, admin_email: &str) -> Result<World> {
    let admin = user(store, admin_email).await?;
    let org = store
        .create_org(App::Crm, "Acme", "free", &admin, &crm_modules())
        .await?;
    Ok(World { admin, org })
}

pub use kizuna_testkit::values;

pub async fn create_one(store: &Store, w: &World, module: &ModuleDef, v: Value) -> Result<Record> {
    let mut created = store
        .create_records(w.org.id, module, vec![values(v)], Origin::User(w.admin.id))
        .await?;
    Ok(created.remove(0))
}

pub async fn all_changes(store: &Store, org_id: i64) -> Result<Vec<kizuna_store::Change>> {
    store.changes_after(org_id, 0, 100_000).await
}

#[derive(sqlx::FromRow)]
pub struct Count {
    pub n: i64,
}

/// How many rows of `table` belong to `org_id`, live or not, read directly.
pub async fn count_rows(store: &Store, table: &str, org_id: i64) -> i64 {
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
pub async fn execute(store: &Store, sql: &str, a: &[kizuna_store::db::Arg]) {
    store
        .db()
        .x()
        .execute(sql, a)
        .await
        .expect("run a statement directly");
}

pub fn ids(records: &[Record]) -> Vec<i64> {
    records.iter().map(|r| r.id).collect()
}

pub fn field<'a>(m: &'a ModuleDef, name: &str) -> &'a FieldDef {
    m.field(name).expect("the fixture has this field")
}

/// Every page of a list, in order; checks each page's size on the way.
pub async fn walk(
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

pub fn assert_code<T: std::fmt::Debug>(r: Result<T>, code: &str, why: &str) -> Error {
    let e = r.expect_err(why);
    assert_eq!(e.code, code, "{why}: got {e}");
    e
}
