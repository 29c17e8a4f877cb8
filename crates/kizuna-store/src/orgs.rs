//! Orgs, their members and roles, plans, and Desk departments.

use crate::db::{Tx, db_error, is_unique_violation};
use crate::users::User;
use crate::{Store, now_ms};
use kizuna_domain::{App, Error, ModuleDef, Result, Role};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Org {
    pub id: i64,
    pub app: String,
    pub name: String,
    pub plan: String,
    pub currency: Option<String>,
    pub created_by: Option<i64>,
    pub created_at: i64,
    /// Bumped by every change to the org's modules or fields; caches of the
    /// metadata are keyed by it.
    pub meta_version: i64,
}

impl Org {
    pub fn app(&self) -> Result<App> {
        App::parse(&self.app)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Member {
    pub user_id: i64,
    pub email: String,
    pub name: String,
    pub active: bool,
    pub role: String,
    pub added_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct PlanChange {
    pub from_plan: Option<String>,
    pub to_plan: String,
    pub changed_by: Option<i64>,
    pub changed_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Department {
    pub id: i64,
    pub org_id: i64,
    pub name: String,
    pub created_at: i64,
}

#[derive(sqlx::FromRow)]
struct RoleRow {
    role: String,
}

const ORG_COLUMNS: &str =
    "o.id, o.app, o.name, o.plan, o.currency, o.created_by, o.created_at, o.meta_version";

fn check_org_name(name: &str) -> Result<&str> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::bad_request(
            "invalid_name",
            "An org's name must be 1 to 200 characters long.",
            "組織名は 1〜200 文字にしてください。",
        ));
    }
    Ok(name)
}

impl Store {
    /// Creates an org of `app` with `admin` as its first administrator and its
    /// own copy of the app's standard modules, all in one transaction.
    pub async fn create_org(
        &self,
        app: App,
        name: &str,
        plan: &str,
        admin: &User,
        modules: &[ModuleDef],
    ) -> Result<Org> {
        app.check_plan(plan)?;
        let name = check_org_name(name)?;
        self.make_sort_indexes(modules).await?;
        let now = now_ms();
        let mut tx = self.db.begin().await?;
        let sql = "INSERT INTO orgs (app, name, plan, created_by, created_at) \
                   VALUES ($1, $2, $3, $4, $5) \
                   RETURNING id, app, name, plan, currency, created_by, created_at, meta_version";
        let org: Org = tx
            .x()
            .fetch_one(sql, &crate::args![app.as_str(), name, plan, admin.id, now])
            .await
            .map_err(db_error)?;
        tx.x()
            .execute(
                "INSERT INTO org_members (org_id, user_id, role, added_at) VALUES ($1, $2, $3, $4)",
                &crate::args![org.id, admin.id, Role::Administrator.as_str(), now],
            )
            .await
            .map_err(db_error)?;
        record_plan_change(&mut tx, org.id, None, plan, Some(admin.id)).await?;
        for (position, module) in modules.iter().enumerate() {
            crate::meta::insert_module(&mut tx, org.id, module, position as i64).await?;
        }
        tx.commit().await?;
        Ok(org)
    }

    /// Every org, oldest first.
    pub async fn all_orgs(&self) -> Result<Vec<Org>> {
        let sql = format!("SELECT {ORG_COLUMNS} FROM orgs o ORDER BY o.id");
        self.db.x().fetch_all(&sql, &[]).await.map_err(db_error)
    }

    pub async fn org(&self, id: i64) -> Result<Option<Org>> {
        let sql = format!("SELECT {ORG_COLUMNS} FROM orgs o WHERE o.id = $1");
        self.db
            .x()
            .fetch_optional(&sql, &crate::args![id])
            .await
            .map_err(db_error)
    }

    /// The caller's view of an org: the org and their role, or 404 when the org
    /// is absent *or* the caller is not a member (nothing leaks either way).
    pub async fn org_for_member(&self, org_id: i64, user_id: i64) -> Result<(Org, Role)> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            org: Org,
            role: String,
        }
        let sql = format!(
            "SELECT {ORG_COLUMNS}, m.role FROM orgs o \
             JOIN org_members m ON m.org_id = o.id AND m.user_id = $2 WHERE o.id = $1"
        );
        let row: Option<Row> = self
            .db
            .x()
            .fetch_optional(&sql, &crate::args![org_id, user_id])
            .await
            .map_err(db_error)?;
        let row = row.ok_or_else(|| Error::not_found("Org", org_id))?;
        Ok((row.org, Role::parse(&row.role)?))
    }

    /// Like `org_for_member`, and refuses a member who is not an administrator
    /// with an error naming the org's administrators (GEN-1).
    pub async fn org_for_admin(&self, org_id: i64, user_id: i64) -> Result<Org> {
        let (org, role) = self.org_for_member(org_id, user_id).await?;
        if role != Role::Administrator {
            let admins: Vec<String> = self
                .members(org_id)
                .await?
                .into_iter()
                .filter(|m| m.role == Role::Administrator.as_str())
                .map(|m| format!("{} <{}>", m.name, m.email))
                .collect();
            return Err(Error::admin_required(&org.name, &admins));
        }
        Ok(org)
    }

    pub async fn role_of(&self, org_id: i64, user_id: i64) -> Result<Option<Role>> {
        let row: Option<RoleRow> = self
            .db
            .x()
            .fetch_optional(
                "SELECT role FROM org_members WHERE org_id = $1 AND user_id = $2",
                &crate::args![org_id, user_id],
            )
            .await
            .map_err(db_error)?;
        row.map(|r| Role::parse(&r.role)).transpose()
    }

    pub async fn orgs_of_user(&self, user_id: i64) -> Result<Vec<(Org, Role)>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            org: Org,
            role: String,
        }
        let sql = format!(
            "SELECT {ORG_COLUMNS}, m.role FROM orgs o JOIN org_members m ON m.org_id = o.id \
             WHERE m.user_id = $1 ORDER BY o.id"
        );
        let rows: Vec<Row> = self
            .db
            .x()
            .fetch_all(&sql, &crate::args![user_id])
            .await
            .map_err(db_error)?;
        rows.into_iter()
            .map(|r| Ok((r.org, Role::parse(&r.role)?)))
            .collect()
    }

    pub async fn members(&self, org_id: i64) -> Result<Vec<Member>> {
        self.db
            .x()
            .fetch_all(
                "SELECT u.id AS user_id, u.email, u.name, u.active, m.role, m.added_at \
                 FROM org_members m JOIN users u ON u.id = m.user_id \
                 WHERE m.org_id = $1 ORDER BY m.added_at, u.id",
                &crate::args![org_id],
            )
            .await
            .map_err(db_error)
    }

    pub async fn add_member(&self, org_id: i64, user_id: i64, role: Role) -> Result<()> {
        self.db
            .write()
            .await
            .x()
            .execute(
                "INSERT INTO org_members (org_id, user_id, role, added_at) VALUES ($1, $2, $3, $4)",
                &crate::args![org_id, user_id, role.as_str(), now_ms()],
            )
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    Error::already_exists("Member", &user_id.to_string())
                } else {
                    db_error(e)
                }
            })?;
        Ok(())
    }

    /// Changes a member's role; the last administrator cannot be demoted, or the
    /// org would have nobody left to administer it.
    pub async fn set_member_role(&self, org_id: i64, user_id: i64, role: Role) -> Result<()> {
        let mut tx = self.db.begin().await?;
        if self.db.dialect() == crate::Dialect::Postgres {
            // Two administrators demoting each other at once would each count two
            // administrators at READ COMMITTED; the org row's lock makes the second
            // count after the first commits. (SQLite: BEGIN IMMEDIATE serialises.)
            tx.x()
                .execute(
                    "SELECT id FROM orgs WHERE id = $1 FOR UPDATE",
                    &crate::args![org_id],
                )
                .await
                .map_err(db_error)?;
        }
        let current: Option<RoleRow> = tx
            .x()
            .fetch_optional(
                "SELECT role FROM org_members WHERE org_id = $1 AND user_id = $2",
                &crate::args![org_id, user_id],
            )
            .await
            .map_err(db_error)?;
        let Some(current) = current else {
            return Err(Error::not_found("Member", user_id));
        };
        if current.role == Role::Administrator.as_str() && role != Role::Administrator {
            let admins: crate::db::CountRow = tx
                .x()
                .fetch_one(
                    "SELECT COUNT(*) AS n FROM org_members WHERE org_id = $1 AND role = $2",
                    &crate::args![org_id, Role::Administrator.as_str()],
                )
                .await
                .map_err(db_error)?;
            if admins.n <= 1 {
                return Err(Error::new(
                    kizuna_domain::Kind::Conflict,
                    "last_administrator",
                    kizuna_domain::Text::new(
                        "This member is the org's only administrator.",
                        "このメンバーは組織で唯一の管理者です。",
                    ),
                    kizuna_domain::Text::new(
                        "Make another member an administrator first.",
                        "先に別のメンバーを管理者にしてください。",
                    ),
                ));
            }
        }
        tx.x()
            .execute(
                "UPDATE org_members SET role = $1 WHERE org_id = $2 AND user_id = $3",
                &crate::args![role.as_str(), org_id, user_id],
            )
            .await
            .map_err(db_error)?;
        tx.commit().await
    }

    /// Moves an org to another plan of its app; every change is recorded.
    pub async fn change_plan(&self, org: &Org, plan: &str, by: Option<i64>) -> Result<Org> {
        org.app()?.check_plan(plan)?;
        let mut tx = self.db.begin().await?;
        tx.x()
            .execute(
                "UPDATE orgs SET plan = $1 WHERE id = $2",
                &crate::args![plan, org.id],
            )
            .await
            .map_err(db_error)?;
        record_plan_change(&mut tx, org.id, Some(org.plan.clone()), plan, by).await?;
        tx.commit().await?;
        Ok(Org {
            plan: plan.to_string(),
            ..org.clone()
        })
    }

    pub async fn plan_changes(&self, org_id: i64) -> Result<Vec<PlanChange>> {
        self.db
            .x()
            .fetch_all(
                "SELECT from_plan, to_plan, changed_by, changed_at FROM plan_changes \
                 WHERE org_id = $1 ORDER BY id",
                &crate::args![org_id],
            )
            .await
            .map_err(db_error)
    }

    /// Sets the org's currency (CRM organisation info; EVT-11 depends on it).
    pub async fn set_currency(&self, org_id: i64, currency: Option<&str>) -> Result<()> {
        if let Some(c) = currency
            && !(c.len() == 3 && c.chars().all(|ch| ch.is_ascii_uppercase()))
        {
            return Err(Error::bad_request(
                "invalid_currency",
                format!("\"{c}\" is not an ISO 4217 currency code such as JPY or USD."),
                format!("「{c}」は JPY や USD のような ISO 4217 通貨コードではありません。"),
            ));
        }
        self.db
            .write()
            .await
            .x()
            .execute(
                "UPDATE orgs SET currency = $1 WHERE id = $2",
                &crate::args![currency.map(str::to_string), org_id],
            )
            .await
            .map_err(db_error)?;
        Ok(())
    }

    pub async fn create_department(&self, org_id: i64, name: &str) -> Result<Department> {
        let name = check_org_name(name)?;
        self.db
            .write()
            .await
            .x()
            .fetch_one(
                "INSERT INTO departments (org_id, name, created_at) VALUES ($1, $2, $3) \
                 RETURNING id, org_id, name, created_at",
                &crate::args![org_id, name, now_ms()],
            )
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    Error::already_exists("Department", name)
                } else {
                    db_error(e)
                }
            })
    }

    pub async fn departments(&self, org_id: i64) -> Result<Vec<Department>> {
        self.db
            .x()
            .fetch_all(
                "SELECT id, org_id, name, created_at FROM departments WHERE org_id = $1 ORDER BY id",
                &crate::args![org_id],
            )
            .await
            .map_err(db_error)
    }

    /// Adds an org member to one of the org's departments.
    pub async fn add_department_member(
        &self,
        org_id: i64,
        department_id: i64,
        user_id: i64,
    ) -> Result<()> {
        let dept = self
            .departments(org_id)
            .await?
            .into_iter()
            .find(|d| d.id == department_id);
        if dept.is_none() {
            return Err(Error::not_found("Department", department_id));
        }
        if self.role_of(org_id, user_id).await?.is_none() {
            return Err(Error::not_found("Member", user_id));
        }
        self.db
            .write()
            .await
            .x()
            .execute(
                "INSERT INTO department_members (department_id, user_id) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
                &crate::args![department_id, user_id],
            )
            .await
            .map_err(db_error)?;
        Ok(())
    }

    pub async fn department_members(&self, department_id: i64) -> Result<Vec<i64>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            user_id: i64,
        }
        let rows: Vec<Row> = self
            .db
            .x()
            .fetch_all(
                "SELECT user_id FROM department_members WHERE department_id = $1 ORDER BY user_id",
                &crate::args![department_id],
            )
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(|r| r.user_id).collect())
    }
}

async fn record_plan_change(
    tx: &mut Tx,
    org_id: i64,
    from: Option<String>,
    to: &str,
    by: Option<i64>,
) -> Result<()> {
    tx.x()
        .execute(
            "INSERT INTO plan_changes (org_id, from_plan, to_plan, changed_by, changed_at) \
             VALUES ($1, $2, $3, $4, $5)",
            &crate::args![org_id, from, to, by, now_ms()],
        )
        .await
        .map_err(db_error)?;
    Ok(())
}
