//! Apps, plans, roles and integration kinds: what an org is and what it may do.

use crate::error::{Error, Kind, Text};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The five apps one Kizuna server hosts. An org belongs to exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum App {
    Crm,
    Desk,
    Projects,
    Events,
    Inventory,
}

impl App {
    pub const ALL: [App; 5] = [
        App::Crm,
        App::Desk,
        App::Projects,
        App::Events,
        App::Inventory,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            App::Crm => "crm",
            App::Desk => "desk",
            App::Projects => "projects",
            App::Events => "events",
            App::Inventory => "inventory",
        }
    }

    pub fn parse(s: &str) -> Result<App, Error> {
        App::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                Error::bad_request(
                    "unknown_app",
                    format!("There is no app {s}; the apps are crm, desk, projects, events, inventory."),
                    format!("アプリ {s} はありません。アプリは crm, desk, projects, events, inventory です。"),
                )
            })
    }

    /// The plans an org of this app can be on, cheapest first.
    pub fn plans(self) -> &'static [&'static str] {
        match self {
            App::Crm => &["free", "standard", "professional", "enterprise"],
            App::Projects => &["free", "trial", "premium", "enterprise"],
            App::Desk => &["free", "standard", "professional", "enterprise"],
            App::Events => &["free", "standard", "premium"],
            App::Inventory => &["free", "standard", "professional"],
        }
    }

    pub fn check_plan(self, plan: &str) -> Result<(), Error> {
        if self.plans().contains(&plan) {
            return Ok(());
        }
        let list = self.plans().join(", ");
        Err(Error::bad_request(
            "unknown_plan",
            format!(
                "{} has no plan {plan}; its plans are {list}.",
                self.as_str()
            ),
            format!(
                "{} にプラン {plan} はありません。プランは {list} です。",
                self.as_str()
            ),
        )
        .with_details(json!({"app": self.as_str(), "plans": self.plans()})))
    }
}

/// A member's role in an org.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Administrator,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Administrator => "administrator",
            Role::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Result<Role, Error> {
        match s {
            "administrator" => Ok(Role::Administrator),
            "member" => Ok(Role::Member),
            _ => Err(Error::bad_request(
                "unknown_role",
                format!("There is no role {s}; the roles are administrator and member."),
                format!("ロール {s} はありません。ロールは administrator と member です。"),
            )),
        }
    }
}

/// The kinds of integration between apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IntegrationKind {
    #[serde(rename = "crm-events")]
    CrmEvents,
    #[serde(rename = "crm-desk")]
    CrmDesk,
    #[serde(rename = "crm-projects")]
    CrmProjects,
    #[serde(rename = "desk-inventory")]
    DeskInventory,
    #[serde(rename = "crm-mail")]
    CrmMail,
}

impl IntegrationKind {
    pub const ALL: [IntegrationKind; 5] = [
        IntegrationKind::CrmEvents,
        IntegrationKind::CrmDesk,
        IntegrationKind::CrmProjects,
        IntegrationKind::DeskInventory,
        IntegrationKind::CrmMail,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IntegrationKind::CrmEvents => "crm-events",
            IntegrationKind::CrmDesk => "crm-desk",
            IntegrationKind::CrmProjects => "crm-projects",
            IntegrationKind::DeskInventory => "desk-inventory",
            IntegrationKind::CrmMail => "crm-mail",
        }
    }

    /// The apps on each side; the mail connector has no second org.
    pub fn apps(self) -> (App, Option<App>) {
        match self {
            IntegrationKind::CrmEvents => (App::Crm, Some(App::Events)),
            IntegrationKind::CrmDesk => (App::Crm, Some(App::Desk)),
            IntegrationKind::CrmProjects => (App::Crm, Some(App::Projects)),
            IntegrationKind::DeskInventory => (App::Desk, Some(App::Inventory)),
            IntegrationKind::CrmMail => (App::Crm, None),
        }
    }

    /// The rule that says which plans include this integration, for the app.
    fn rule_for(self, app: App) -> &'static str {
        match (self, app) {
            (IntegrationKind::CrmProjects, App::Projects) => "PRJ-18",
            (IntegrationKind::CrmProjects, _) => "PRJ-10",
            (IntegrationKind::CrmDesk, _) => "DSK-8",
            (IntegrationKind::CrmEvents, _) => "EVT-2",
            _ => "GEN-2",
        }
    }
}

/// Whether an org of `app` on `plan` may use an integration of `kind` (GEN-2):
/// CRM free includes only Projects (PRJ-10; not Desk, DSK-8); Projects needs a
/// paid plan or a trial (PRJ-18); every other app's free plan includes none.
pub fn plan_includes(app: App, plan: &str, kind: IntegrationKind) -> bool {
    match (app, kind) {
        (App::Crm, IntegrationKind::CrmProjects) => true,
        (App::Projects, _) => plan != "free",
        _ => plan != "free",
    }
}

/// The plans of `app` that include `kind`.
pub fn plans_including(app: App, kind: IntegrationKind) -> Vec<&'static str> {
    app.plans()
        .iter()
        .copied()
        .filter(|p| plan_includes(app, p, kind))
        .collect()
}

/// GEN-2's refusal: names the plan and the plans that include the integration.
pub fn plan_excludes_error(app: App, plan: &str, kind: IntegrationKind) -> Error {
    let including = plans_including(app, kind).join(", ");
    let k = kind.as_str();
    let a = app.as_str();
    Error::new(
        Kind::Forbidden,
        "plan_excludes_integration",
        Text::new(
            format!("The {a} plan \"{plan}\" does not include the {k} integration."),
            format!("{a} のプラン「{plan}」には {k} 連携が含まれていません。"),
        ),
        Text::new(
            format!("Change the {a} org's plan to one of: {including}."),
            format!("{a} 組織のプランを次のいずれかに変更してください: {including}。"),
        ),
    )
    .with_rule(kind.rule_for(app))
    .with_details(json!({"app": a, "plan": plan, "integration": k, "plans_including": plans_including(app, kind)}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gen_2_crm_free_includes_projects_only() {
        // PRJ-10: free CRM may integrate Projects; DSK-8: not Desk; nor Events.
        assert!(plan_includes(
            App::Crm,
            "free",
            IntegrationKind::CrmProjects
        ));
        assert!(!plan_includes(App::Crm, "free", IntegrationKind::CrmDesk));
        assert!(!plan_includes(App::Crm, "free", IntegrationKind::CrmEvents));
        assert!(plan_includes(
            App::Crm,
            "standard",
            IntegrationKind::CrmDesk
        ));
    }

    #[test]
    fn prj_18_projects_needs_paid_or_trial() {
        assert!(!plan_includes(
            App::Projects,
            "free",
            IntegrationKind::CrmProjects
        ));
        assert!(plan_includes(
            App::Projects,
            "trial",
            IntegrationKind::CrmProjects
        ));
        assert!(plan_includes(
            App::Projects,
            "premium",
            IntegrationKind::CrmProjects
        ));
    }

    #[test]
    fn dsk_8_refusal_names_plan_and_alternatives() {
        let e = plan_excludes_error(App::Crm, "free", IntegrationKind::CrmDesk);
        assert_eq!(e.status(), 403);
        assert_eq!(e.rule, Some("DSK-8"));
        assert!(e.message.en.contains("\"free\""));
        assert!(e.fix.en.contains("standard, professional, enterprise"));
        assert!(e.fix.ja.contains("standard"));
    }
}
