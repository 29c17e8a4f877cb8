//! The demo: one org of each app, an administrator and a member, and sample
//! records in every module, generated from the modules' own metadata so that a
//! new module gets demo data without anyone writing it.

use crate::admin::create_org;
use crate::catalog::standard_modules;
use kizuna_domain::field::{FieldDef, FieldType, ModuleDef};
use kizuna_domain::{App, Result, Role};
use kizuna_store::{ListQuery, Org, Origin, Store, User};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const MEMBER_EMAIL: &str = "member@example.com";
pub const DEMO_PASSWORD: &str = "kizuna-demo";

/// Sample records per module.
const PER_MODULE: usize = 3;

const LAST: [&str; 3] = ["山田", "佐藤", "Tanaka"];
const FIRST: [&str; 3] = ["太郎", "花子", "Ken"];
const COMPANY: [&str; 3] = ["株式会社サンプル", "絆商事", "Example Ltd."];

/// A plausible value for field `f` of sample number `i`.
fn sample_value(
    module: &str,
    f: &FieldDef,
    i: usize,
    lookups: &HashMap<String, Vec<i64>>,
) -> Option<Value> {
    let name = f.api_name.as_str();
    if name == "Field_Name" {
        // Derived from the label by the purchase-form rule (EVT-12).
        return None;
    }
    Some(match f.field_type {
        FieldType::Email => json!(format!("{}{}@example.com", module.to_lowercase(), i + 1)),
        FieldType::Phone => json!(format!("03-1234-{:04}", i + 1)),
        FieldType::Url => json!(format!("https://example.com/{}", i + 1)),
        FieldType::Picklist => json!(f.picklist.get(i % f.picklist.len().max(1))?),
        FieldType::Multiselect => json!([f.picklist.first()?]),
        FieldType::Date => json!(format!("2026-0{}-15", i + 4)),
        FieldType::Datetime => json!(format!("2026-0{}-15T0{}:00:00Z", i + 4, i + 1)),
        FieldType::Integer => json!((i as i64 + 1) * 10),
        FieldType::Decimal | FieldType::Percent => json!((i as f64 + 1.0) * 25.0),
        FieldType::Currency => json!({"amount_minor": (i as i64 + 1) * 100_000, "currency": "JPY"}),
        FieldType::Boolean => json!(i.is_multiple_of(2)),
        FieldType::Lookup => {
            let ids = lookups.get(f.lookup_module.as_deref()?)?;
            json!(ids.get(i % ids.len().max(1))?)
        }
        FieldType::Textarea => json!(format!(
            "{} のサンプルです。 / A sample {}.",
            module,
            module.to_lowercase()
        )),
        _ if name == "Last_Name" => json!(LAST[i % 3]),
        _ if name == "First_Name" => json!(FIRST[i % 3]),
        _ if name.contains("Account_Name") || name.contains("Company") => json!(COMPANY[i % 3]),
        _ if name == "Currency" => json!("JPY"),
        _ => {
            let max = f.effective_max_length().unwrap_or(255) as usize;
            let text = format!("{} {}", f.label, i + 1);
            json!(text.chars().take(max).collect::<String>())
        }
    })
}

/// Modules in an order where every required lookup's target comes first.
fn creation_order(modules: Vec<ModuleDef>) -> Vec<ModuleDef> {
    let mut pending = modules;
    let mut done: Vec<ModuleDef> = Vec::new();
    while !pending.is_empty() {
        let ready = pending.iter().position(|m| {
            m.fields
                .iter()
                .all(|f| match (&f.lookup_module, f.required) {
                    (Some(t), true) => t == &m.api_name || done.iter().any(|d| &d.api_name == t),
                    _ => true,
                })
        });
        // A cycle of required lookups would stop here; the catalog has none.
        let i = ready.unwrap_or(0);
        done.push(pending.remove(i));
    }
    done
}

/// Fills every module of an org that has no records yet with sample records.
/// Each module is written in one transaction, so an interrupted demo resumes
/// where it stopped instead of keeping half its data.
async fn seed_org(store: &Store, org: &Org, app: App, user: &User) -> Result<()> {
    let mut lookups: HashMap<String, Vec<i64>> = HashMap::new();
    for module in creation_order(standard_modules(app)) {
        let m = store.module_of(org, &module.api_name).await?;
        let first = ListQuery {
            limit: PER_MODULE as u32,
            ..ListQuery::default()
        };
        let mut ids: Vec<i64> = store
            .list_records(org.id, &m, &first)
            .await?
            .records
            .iter()
            .map(|r| r.id)
            .collect();
        if ids.is_empty() {
            let rows: Vec<Map<String, Value>> = (0..PER_MODULE)
                .map(|i| {
                    m.fields
                        .iter()
                        .filter_map(|f| {
                            Some((
                                f.api_name.clone(),
                                sample_value(&m.api_name, f, i, &lookups)?,
                            ))
                        })
                        .collect()
                })
                .collect();
            let created =
                crate::records::create_many(store, org, &m.api_name, &rows, Origin::User(user.id))
                    .await?;
            ids = created.iter().map(|r| r.id).collect();
        }
        lookups.insert(m.api_name.clone(), ids);
    }
    Ok(())
}

/// What `kizuna demo` made (or found from an earlier run).
pub struct Demo {
    pub admin: User,
    pub member: User,
    pub orgs: Vec<Org>,
}

async fn ensure_user(store: &Store, email: &str, name: &str) -> Result<User> {
    match store.user_by_email(email).await? {
        Some(user) => Ok(user),
        None => store.create_user(email, name, Some(DEMO_PASSWORD)).await,
    }
}

fn demo_org_name(app: App) -> String {
    format!("Demo {}", app.as_str())
}

/// Makes sure the demo is complete: creates whatever of it is missing —
/// users, orgs, memberships, departments, sample records — and keeps what an
/// earlier run made. Running it twice changes nothing; running it after an
/// interrupted run finishes that run's work.
pub async fn ensure_demo(store: &Store) -> Result<Demo> {
    let admin = ensure_user(store, ADMIN_EMAIL, "管理者 Admin").await?;
    let member = ensure_user(store, MEMBER_EMAIL, "メンバー Member").await?;
    let existing = store.orgs_of_user(admin.id).await?;
    let mut orgs = Vec::new();
    for app in App::ALL {
        let name = demo_org_name(app);
        let found = existing
            .iter()
            .find(|(o, _)| o.app == app.as_str() && o.name == name);
        let org = match found {
            Some((org, _)) => org.clone(),
            None => {
                let plan = app.plans().get(1).copied().unwrap_or("free");
                create_org(store, app, &name, plan, &admin).await?
            }
        };
        if store.role_of(org.id, member.id).await?.is_none() {
            store.add_member(org.id, member.id, Role::Member).await?;
        }
        if app == App::Crm && org.currency.is_none() {
            store.set_currency(org.id, Some("JPY")).await?;
        }
        if app == App::Desk {
            let dept = match store.departments(org.id).await?.into_iter().next() {
                Some(d) => d,
                None => store.create_department(org.id, "Support").await?,
            };
            store
                .add_department_member(org.id, dept.id, member.id)
                .await?;
        }
        seed_org(store, &org, app, &admin).await?;
        orgs.push(org);
    }
    Ok(Demo {
        admin,
        member,
        orgs,
    })
}
