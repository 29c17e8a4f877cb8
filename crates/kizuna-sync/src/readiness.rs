//! What an org's own settings and customisations can do to an integration
//! (EVT-4, EVT-5): a module it needs switched off, a saved mapping that no
//! longer fits, a required CRM field nothing fills. Checked when an
//! integration is enabled or resumed (each refusal names the setting), by
//! `doctor`, and — the mapping — by every sync.

use crate::mapping::{self, Pair};
use kizuna_domain::{App, Error, IntegrationKind, Kind, Result, Text};
use kizuna_store::{Integration, Org, Store};
use serde_json::{Value, json};

/// Everything in the orgs' settings that stops `i` from syncing, most
/// basic first; empty when nothing does.
pub async fn problems(store: &Store, i: &Integration) -> Result<Vec<Error>> {
    match crate::lifecycle::parse_kind(&i.kind)? {
        IntegrationKind::CrmEvents => events_problems(store, i).await,
        IntegrationKind::CrmDesk => {
            let (crm, _) = mapping::crm_and_other(store, i, App::Desk).await?;
            let crm = store
                .org(crm)
                .await?
                .ok_or_else(|| Error::not_found("Org", crm))?;
            desk_problems(store, &crm).await
        }
        _ => Ok(Vec::new()),
    }
}

/// DSK-3: CRM ⇄ Desk stands on the CRM's Accounts (the related lists of
/// Desk tickets hang on Accounts, Contacts and Deals). Their Account_Name is
/// required, and a required field cannot be marked unused at all, so that
/// half of DSK-3 is refused where it would start.
pub async fn desk_problems(store: &Store, crm: &Org) -> Result<Vec<Error>> {
    let accounts = store.module_of(crm, "Accounts").await?;
    let mut found = Vec::new();
    if !accounts.enabled {
        found.push(desk_needs(
            crm,
            "crm_accounts_disabled",
            "modules.Accounts.enabled",
            (
                "the CRM module Accounts is disabled",
                "CRM のモジュール Accounts が無効になっています",
            ),
            format!(
                "PATCH /api/v1/orgs/{}/modules/Accounts {{\"enabled\": true}}",
                crm.id
            ),
        ));
    }
    Ok(found)
}

fn desk_needs(
    crm: &Org,
    code: &'static str,
    setting: &str,
    what: (&str, &str),
    fix: String,
) -> Error {
    Error::new(
        Kind::Conflict,
        code,
        Text::new(
            format!(
                "CRM ⇄ Desk cannot be set up with org {} ({}): {}. Desk tickets are shown on CRM Accounts, Contacts and Deals, and accounts sync by their name.",
                crm.id, crm.name, what.0
            ),
            format!(
                "組織 {}（{}）と CRM ⇄ Desk 連携を設定できません: {}。Desk のチケットは CRM の Accounts・Contacts・Deals に表示され、取引先は名前で連携されます。",
                crm.id, crm.name, what.1
            ),
        ),
        Text::new(
            format!("An administrator of the CRM org turns it back on: {fix}."),
            format!("CRM 組織の管理者が元に戻してください: {fix}。"),
        ),
    )
    .with_rule("DSK-3")
    .with_details(json!({"org": crm.id, "setting": setting}))
}

async fn events_problems(store: &Store, i: &Integration) -> Result<Vec<Error>> {
    let (crm, events) = mapping::crm_and_other(store, i, App::Events).await?;
    let target = i
        .settings
        .0
        .get("target_module")
        .and_then(Value::as_str)
        .unwrap_or("Leads");
    let needed = [
        (
            crm,
            target,
            "attendees become its records (EVT-8)",
            "参加者がこのモジュールのレコードになります（EVT-8）",
        ),
        (
            crm,
            "Campaigns",
            "each event becomes a Campaign (EVT-9)",
            "各イベントがキャンペーンになります（EVT-9）",
        ),
        (
            events,
            "Events",
            "its events become Campaigns (EVT-9)",
            "イベントがキャンペーンになります（EVT-9）",
        ),
        (
            events,
            "Attendees",
            "its attendees flow to the CRM (EVT-8)",
            "参加者が CRM に連携されます（EVT-8）",
        ),
    ];
    let mut found = Vec::new();
    for (org_id, module, en, ja) in needed {
        let org = store
            .org(org_id)
            .await?
            .ok_or_else(|| Error::not_found("Org", org_id))?;
        if !store.module_of(&org, module).await?.enabled {
            found.push(module_off(i, org_id, &org.name, module, (en, ja)));
        }
    }
    if !found.is_empty() {
        return Ok(found);
    }
    match mapping::validate(store, i, &i.mapping.0).await {
        Err(e) if e.kind == Kind::Internal => return Err(e),
        Err(e) => found.push(mapping::broken(i.id, &e)),
        Ok(pairs) => {
            let module = store.module(crm, target).await?;
            for f in module.fields.iter().filter(|f| f.required && f.in_use) {
                if !pairs.iter().any(|p: &Pair| p.target == f.api_name) {
                    found.push(required_not_mapped(i, target, &f.api_name));
                }
            }
        }
    }
    Ok(found)
}

/// EVT-4: a module the integration needs is switched off in an org.
fn module_off(i: &Integration, org: i64, org_name: &str, module: &str, why: (&str, &str)) -> Error {
    Error::new(
        Kind::Conflict,
        "org_setting_module_disabled",
        Text::new(
            format!(
                "Integration {} cannot run: the module {module} is disabled in org {org} ({org_name}), and {}.",
                i.id, why.0
            ),
            format!(
                "連携 {} を実行できません: 組織 {org}（{org_name}）でモジュール {module} が無効になっています。{}。",
                i.id, why.1
            ),
        ),
        Text::new(
            format!(
                "An administrator of org {org} enables it: PATCH /api/v1/orgs/{org}/modules/{module} {{\"enabled\": true}}."
            ),
            format!(
                "組織 {org} の管理者が有効にしてください: PATCH /api/v1/orgs/{org}/modules/{module} {{\"enabled\": true}}。"
            ),
        ),
    )
    .with_rule("EVT-4")
    .with_details(json!({"org": org, "setting": format!("modules.{module}.enabled"), "module": module}))
}

/// EVT-5: a required field of the CRM module that no mapped field fills, so
/// that every attendee would fail.
fn required_not_mapped(i: &Integration, module: &str, field: &str) -> Error {
    Error::new(
        Kind::Conflict,
        "required_field_not_mapped",
        Text::new(
            format!(
                "{module}.{field} is required in the CRM, but no field of the mapping of integration {} fills it: every attendee would fail.",
                i.id
            ),
            format!(
                "CRM の {module}.{field} は必須ですが、連携 {} のマッピングでこの項目を埋める項目がありません。すべての参加者が失敗します。",
                i.id
            ),
        ),
        Text::new(
            format!(
                "Map a field of the attendees to {field} (PUT /api/v1/integrations/{}/mapping), or make {field} optional in the CRM.",
                i.id
            ),
            format!(
                "参加者の項目を {field} にマッピングする（PUT /api/v1/integrations/{}/mapping）か、CRM で {field} を任意にしてください。",
                i.id
            ),
        ),
    )
    .with_rule("EVT-5")
    .with_details(json!({"module": module, "field": field}))
}
