//! `doctor` (GEN-12): the product diagnoses, by itself, the situations the
//! source documents send users to support for — each finding with its rule,
//! its cause and its fix, in English and Japanese.

use crate::lifecycle::{check_acting_user, parse_kind, waiting_for_other_side};
use kizuna_domain::integration::State;
use kizuna_domain::org::{plan_excludes_error, plan_includes};
use kizuna_domain::{Error, Kind, Result, Text};
use kizuna_store::{Integration, Store};
use serde_json::json;

/// What is wrong with one integration, most blocking first; empty when it
/// runs as it should.
pub async fn diagnose(store: &Store, i: &Integration) -> Result<Vec<Error>> {
    let mut findings = Vec::new();
    let state = i.state();
    if state == State::Deleted {
        return Ok(findings);
    }
    let kind = parse_kind(&i.kind)?;
    for org_id in [Some(i.from_org), i.to_org].into_iter().flatten() {
        if let Some(org) = store.org(org_id).await? {
            let app = org.app()?;
            if !plan_includes(app, &org.plan, kind) {
                findings.push(plan_excludes_error(app, &org.plan, kind));
            }
        }
    }
    if let Err(e) = check_acting_user(store, i).await {
        findings.push(e);
    }
    match state {
        State::Pending => findings.push(waiting_for_other_side(store, i).await?),
        State::Paused => findings.push(stopped_by_a_person(i, "paused", "GEN-6", "resume", "再開")),
        State::Disabled => findings.push(stopped_by_a_person(
            i,
            "disabled",
            "GEN-7",
            "enable",
            "有効化",
        )),
        _ => {}
    }
    findings.extend(crate::readiness::problems(store, i).await?);
    Ok(findings)
}

fn stopped_by_a_person(
    i: &Integration,
    state: &str,
    rule: &'static str,
    action: &str,
    action_ja: &str,
) -> Error {
    Error::new(
        Kind::Conflict,
        "integration_stopped",
        Text::new(
            format!(
                "Integration {} ({}) is {state}: nothing syncs until it is switched on again.",
                i.id, i.kind
            ),
            format!(
                "連携 {}（{}）は {state} の状態です。再び有効にするまで同期されません。",
                i.id, i.kind
            ),
        ),
        Text::new(
            format!(
                "An administrator can {action} it: POST /api/v1/integrations/{}/{action}.",
                i.id
            ),
            format!(
                "管理者が{action_ja}できます: POST /api/v1/integrations/{}/{action}。",
                i.id
            ),
        ),
    )
    .with_rule(rule)
    .with_details(json!({"integration": i.id, "state": state}))
}
