//! Copy settings (GEN-11, EVT-10): an org's configuration — modules on and
//! off, custom fields, fields marked unused, integration mappings — copied to
//! another org of the same app and plan, e.g. a sandbox.

use crate::lifecycle::parse_kind;
use kizuna_domain::integration::State;
use kizuna_domain::{Error, Kind, Result, Text};
use kizuna_store::{CopyReport, Store, User};
use serde_json::json;

/// What was copied.
pub struct Copied {
    pub metadata: CopyReport,
    pub mappings: Vec<String>,
}

/// Copies `from_org`'s settings to `to_org`; the caller administers both.
/// Refused between different apps or plans, and while any integration of
/// `from_org` is not disabled: a disabled one keeps its mapping, which is what
/// copying carries, while a deleted one has none left to carry.
pub async fn copy_settings(
    store: &Store,
    caller: &User,
    from_org: i64,
    to_org: i64,
) -> Result<Copied> {
    let from = store.org_for_admin(from_org, caller.id).await?;
    let to = store.org_for_admin(to_org, caller.id).await?;
    if from.app != to.app {
        return Err(Error::bad_request(
            "copy_settings_app",
            format!(
                "Settings copy only between orgs of one app: {} is {}, {} is {}.",
                from.name, from.app, to.name, to.app
            ),
            format!(
                "設定のコピーは同じアプリの組織間でのみ可能です: {} は {}、{} は {} です。",
                from.name, from.app, to.name, to.app
            ),
        ));
    }
    let integrations = store.integrations_of_org(from.id).await?;
    if let Some(running) = integrations
        .iter()
        .find(|i| !matches!(i.state(), State::Disabled | State::Deleted))
    {
        return Err(Error::new(
            Kind::Conflict,
            "copy_settings_integration_active",
            Text::new(
                format!("Integration {} ({}) of {} is {}; settings can be copied only while every integration is disabled.", running.id, running.kind, from.name, running.state),
                format!("{} の連携 {}（{}）は {} です。設定のコピーは、すべての連携が無効化されている間のみ可能です。", from.name, running.id, running.kind, running.state),
            ),
            Text::new(
                format!("Disable it for the copy (POST /api/v1/integrations/{}/disable) and enable it again afterwards. Do not delete it: deleting removes the mapping that the copy carries.", running.id),
                format!("コピーの間だけ無効化し（POST /api/v1/integrations/{}/disable）、後で再度有効化してください。削除はしないでください。削除するとコピーされるマッピングも消えます。", running.id),
            ),
        )
        .with_rule("EVT-10")
        .with_details(json!({"integration": running.id, "state": running.state})));
    }
    if from.plan != to.plan {
        return Err(Error::new(
            Kind::Conflict,
            "copy_settings_plan",
            Text::new(
                format!("Settings copy only between orgs of the same plan: {} is on \"{}\", {} on \"{}\".", from.name, from.plan, to.name, to.plan),
                format!("設定のコピーは同じプランの組織間でのみ可能です: {} は「{}」、{} は「{}」です。", from.name, from.plan, to.name, to.plan),
            ),
            Text::new(
                format!(
                    "Put both orgs on the same plan first (PATCH /api/v1/orgs/{} {{\"plan\": \"{}\"}}).",
                    to.id, from.plan
                ),
                format!(
                    "先に 2 つの組織を同じプランにしてください（PATCH /api/v1/orgs/{} {{\"plan\": \"{}\"}}）。",
                    to.id, from.plan
                ),
            ),
        )
        .with_rule("GEN-11")
        .with_details(json!({"from_plan": from.plan, "to_plan": to.plan})));
    }
    let metadata = store.copy_metadata(from.id, to.id).await?;
    let mut mappings = Vec::new();
    for source in integrations.iter().filter(|i| i.state() == State::Disabled) {
        let kind = parse_kind(&source.kind)?;
        if let Some(target) = store.live_integration(kind, to.id).await? {
            store
                .set_integration_config(target.id, &target.settings.0, &source.mapping.0)
                .await?;
            mappings.push(source.kind.clone());
        }
    }
    Ok(Copied { metadata, mappings })
}
