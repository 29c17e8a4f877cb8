//! An integration's life: set up on one side (pending), enabled on the other
//! (active), paused and resumed, disabled and enabled again, deleted — each
//! step allowed only to the right people, on the right plans, once per org.

use kizuna_domain::integration::{Action, State};
use kizuna_domain::org::{plan_excludes_error, plan_includes};
use kizuna_domain::{App, Error, IntegrationKind, Kind, Result, Role, Text};
use kizuna_store::{Integration, NewIntegration, Org, Store, User};
use serde_json::{Value, json};

/// Parses an integration kind, or says which kinds there are.
pub fn parse_kind(s: &str) -> Result<IntegrationKind> {
    IntegrationKind::ALL
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| {
            let all: Vec<&str> = IntegrationKind::ALL.iter().map(|k| k.as_str()).collect();
            Error::bad_request(
                "unknown_integration_kind",
                format!(
                    "There is no integration kind {s}; the kinds are {}.",
                    all.join(", ")
                ),
                format!(
                    "連携の種類 {s} はありません。種類は {} です。",
                    all.join(", ")
                ),
            )
        })
}

/// An org the caller is a member of (404 otherwise, as everywhere).
async fn member_org(store: &Store, org: i64, user: &User) -> Result<(Org, Role)> {
    store.org_for_member(org, user.id).await
}

/// GEN-2: the org's plan must include the integration.
fn check_plan(org: &Org, kind: IntegrationKind) -> Result<App> {
    let app = org.app()?;
    if plan_includes(app, &org.plan, kind) {
        Ok(app)
    } else {
        Err(plan_excludes_error(app, &org.plan, kind))
    }
}

fn wrong_apps(kind: IntegrationKind, org: &Org) -> Error {
    let (a, b) = kind.apps();
    let b = b.map_or("", App::as_str);
    Error::bad_request(
        "integration_apps",
        format!(
            "{} connects a {} org and a {b} org; org {} is a {} org.",
            kind.as_str(),
            a.as_str(),
            org.id,
            org.app
        ),
        format!(
            "{} は {} の組織と {b} の組織をつなぎます。組織 {} は {} の組織です。",
            kind.as_str(),
            a.as_str(),
            org.id,
            org.app
        ),
    )
}

/// GEN-3: the refusal names the existing link — its counterpart, who set it
/// up and when — and how to remove it.
async fn already_integrated(
    store: &Store,
    kind: IntegrationKind,
    org: &Org,
    existing: &Integration,
) -> Result<Error> {
    let counterpart_id = if existing.from_org == org.id {
        existing.to_org
    } else {
        Some(existing.from_org)
    };
    let counterpart = match counterpart_id {
        Some(id) => store
            .org(id)
            .await?
            .map(|o| format!("{} (org {})", o.name, o.id)),
        None => None,
    }
    .unwrap_or_else(|| "-".to_string());
    let by = store
        .user_by_id(existing.created_by)
        .await?
        .map_or_else(|| existing.created_by.to_string(), |u| u.email);
    let when = kizuna_domain::time::rfc3339(existing.created_at);
    let k = kind.as_str();
    let rule = match kind {
        IntegrationKind::CrmEvents => "EVT-3",
        IntegrationKind::CrmDesk => "DSK-4",
        _ => "GEN-3",
    };
    Ok(Error::new(
        Kind::Conflict,
        "already_integrated",
        Text::new(
            format!(
                "{} is already integrated ({k}) with {counterpart}: integration {} set up by {by} on {when}, now {}.",
                org.name, existing.id, existing.state
            ),
            format!(
                "{} は既に {counterpart} と連携（{k}）しています。連携 {} は {by} が {when} に設定し、現在の状態は {} です。",
                org.name, existing.id, existing.state
            ),
        ),
        Text::new(
            format!(
                "An org can have one {k} integration. Delete integration {} first (DELETE /api/v1/integrations/{}?confirm=true); it counts even if it was made from a trial or test account.",
                existing.id, existing.id
            ),
            format!(
                "組織が持てる {k} 連携は 1 つです。先に連携 {} を削除してください（DELETE /api/v1/integrations/{}?confirm=true）。試用版やテスト用アカウントから作った連携も数えられます。",
                existing.id, existing.id
            ),
        ),
    )
    .with_rule(rule)
    .with_details(json!({
        "existing": {"id": existing.id, "counterpart": counterpart, "created_by": by, "created_at": when, "state": existing.state}
    })))
}

/// Sets up an integration from `from_org`'s side: the caller must administer
/// `from_org` (GEN-1) and be a member of `to_org`; both plans must include
/// it (GEN-2); neither org may have one of this kind already (GEN-3). It is
/// pending until the other side enables it (GEN-4).
pub async fn create(
    store: &Store,
    caller: &User,
    kind: IntegrationKind,
    from_org: i64,
    to_org: Option<i64>,
    settings: &Value,
) -> Result<Integration> {
    // A mail connection is a user's own (their mailbox, their calendar):
    // any member sets up theirs. Everything else is for administrators.
    let from = if kind == IntegrationKind::CrmMail {
        member_org(store, from_org, caller).await?.0
    } else {
        store.org_for_admin(from_org, caller.id).await?
    };
    let (first_app, second_app) = kind.apps();
    let from_app = check_plan(&from, kind)?;
    let to = match (second_app, to_org) {
        (Some(_), Some(id)) => Some(member_org(store, id, caller).await?.0),
        (Some(_), None) => {
            return Err(Error::malformed_json(&format!(
                "a {} integration needs \"to_org\"",
                kind.as_str()
            )));
        }
        (None, _) => None,
    };
    if let Some(to) = &to {
        let to_app = to.app()?;
        let pair_ok = (from_app == first_app && Some(to_app) == second_app)
            || (Some(from_app) == second_app && to_app == first_app);
        if !pair_ok {
            return Err(wrong_apps(
                kind,
                if from_app == first_app || Some(from_app) == second_app {
                    to
                } else {
                    &from
                },
            ));
        }
        check_plan(to, kind)?;
    } else if from_app != first_app {
        return Err(wrong_apps(kind, &from));
    }
    if kind == IntegrationKind::CrmDesk
        && let Some(crm) = std::iter::once(&from)
            .chain(to.as_ref())
            .find(|o| o.app().ok() == Some(App::Crm))
        && let Some(problem) = crate::readiness::desk_problems(store, crm)
            .await?
            .into_iter()
            .next()
    {
        return Err(problem);
    }
    for org in std::iter::once(&from).chain(to.as_ref()) {
        if kind != IntegrationKind::CrmMail
            && let Some(existing) = store.live_integration(kind, org.id).await?
        {
            return Err(already_integrated(store, kind, org, &existing).await?);
        }
    }
    let state = if to.is_some() {
        State::Pending
    } else {
        State::Active
    };
    let created = store
        .create_integration(NewIntegration {
            kind,
            from_org: from.id,
            to_org: to.as_ref().map(|o| o.id),
            created_by: caller.id,
            state,
            settings,
            mapping: &json!([]),
        })
        .await?;
    crate::attention::awaiting_enable(store, &created, caller).await?;
    // It starts with its kind's default mapping, where the kind has one.
    match crate::mapping::sides(store, &created).await {
        Ok(sides) => {
            let defaults = crate::mapping::to_json(&sides.defaults);
            store
                .set_integration_config(created.id, settings, &defaults)
                .await?;
            store
                .integration(created.id)
                .await?
                .ok_or_else(|| Error::not_found("Integration", created.id))
        }
        Err(_) => Ok(created),
    }
}

/// Replaces an integration's mapping (administrators of either side), after
/// checking every pair (GEN-5, EVT-13); `None` resets it to the defaults.
pub async fn set_mapping(
    store: &Store,
    caller: &User,
    id: i64,
    body: Option<&Value>,
) -> Result<Integration> {
    let i = administered(store, caller, id).await?;
    let pairs = match body {
        Some(b) => crate::mapping::validate(store, &i, b).await?,
        None => crate::mapping::sides(store, &i).await?.defaults,
    };
    store
        .set_integration_config(i.id, &i.settings.0, &crate::mapping::to_json(&pairs))
        .await?;
    store
        .integration(i.id)
        .await?
        .ok_or_else(|| Error::not_found("Integration", id))
}

/// The integration, if the caller is a member of either of its orgs (404
/// otherwise), with the caller's role in each.
pub async fn visible(
    store: &Store,
    caller: &User,
    id: i64,
) -> Result<(Integration, Option<Role>, Option<Role>)> {
    let found = store.integration(id).await?;
    let Some(i) = found else {
        return Err(Error::not_found("Integration", id));
    };
    let from_role = store.role_of(i.from_org, caller.id).await?;
    let to_role = match i.to_org {
        Some(org) => store.role_of(org, caller.id).await?,
        None => None,
    };
    if from_role.is_none() && to_role.is_none() {
        return Err(Error::not_found("Integration", id));
    }
    // Another user's mail connection is theirs and their administrators'.
    if i.kind == IntegrationKind::CrmMail.as_str()
        && i.created_by != caller.id
        && from_role != Some(Role::Administrator)
    {
        return Err(Error::not_found("Integration", id));
    }
    Ok((i, from_role, to_role))
}

/// A live integration the caller administers a side of, for configuring it:
/// 404 when invisible, GEN-1's refusal for members, and a deleted one refuses
/// with the reason (GEN-7).
pub async fn administered(store: &Store, caller: &User, id: i64) -> Result<Integration> {
    let (i, from, to) = visible(store, caller, id).await?;
    require_admin(store, caller, &i, from, to).await?;
    if i.state() == State::Deleted {
        State::Deleted.apply(Action::Enable)?;
    }
    Ok(i)
}

/// Refuses a caller who administers neither side, naming the administrators
/// of the org they are a member of (GEN-1).
pub async fn require_admin(
    store: &Store,
    caller: &User,
    i: &Integration,
    from: Option<Role>,
    to: Option<Role>,
) -> Result<()> {
    if from == Some(Role::Administrator) || to == Some(Role::Administrator) {
        return Ok(());
    }
    // The owner of a mail connection runs it.
    if i.kind == IntegrationKind::CrmMail.as_str() && i.created_by == caller.id {
        return Ok(());
    }
    let org = if from.is_some() {
        i.from_org
    } else {
        i.to_org.unwrap_or(i.from_org)
    };
    store.org_for_admin(org, caller.id).await.map(|_| ())
}

/// Carries out `action` on an integration the caller administers a side of.
/// Enabling a pending integration is for the *other* side's administrator
/// (GEN-4): the side that set it up cannot enable it alone.
pub async fn act(store: &Store, caller: &User, id: i64, action: Action) -> Result<Integration> {
    let (i, from_role, to_role) = visible(store, caller, id).await?;
    require_admin(store, caller, &i, from_role, to_role).await?;
    let current = i.state();
    if action == Action::Enable && current == State::Pending && to_role != Some(Role::Administrator)
    {
        return Err(waiting_for_other_side(store, &i).await?);
    }
    let next = current.apply(action)?;
    if action == Action::Enable || action == Action::Resume {
        // GEN-2 holds at every (re)start, not only at setup.
        for org in [Some(i.from_org), i.to_org].into_iter().flatten() {
            if let Some(o) = store.org(org).await? {
                check_plan(&o, parse_kind(&i.kind)?)?;
            }
        }
    }
    if action == Action::Enable || action == Action::Resume {
        check_acting_user(store, &i).await?;
        // EVT-4/5: an org setting that would stop every sync is named now.
        if let Some(problem) = crate::readiness::problems(store, &i)
            .await?
            .into_iter()
            .next()
        {
            return Err(problem);
        }
    }
    let enabled_by = (action == Action::Enable).then_some(caller.id);
    let updated = store
        .set_integration_state(i.id, current, next, enabled_by)
        .await?;
    if next == State::Deleted {
        // GEN-7: its mapping, settings and record links go; the records stay.
        store.clear_integration(i.id).await?;
        store.forget_sync_state(i.id).await?;
    }
    Ok(updated)
}

/// What deleting an integration would remove (GEN-7), for a person to read
/// before confirming: its mapping, its settings, its record links.
#[derive(Debug, Clone, PartialEq)]
pub struct Deletion {
    pub mapped_fields: usize,
    pub settings: Vec<String>,
    pub record_associations: i64,
    pub message: Text,
}

/// Says what deleting integration `id` would remove, without removing it;
/// refused as the deletion itself would be (not an administrator, a state
/// it cannot be deleted from).
pub async fn deletion(store: &Store, caller: &User, id: i64) -> Result<(Integration, Deletion)> {
    let (i, from, to) = visible(store, caller, id).await?;
    require_admin(store, caller, &i, from, to).await?;
    i.state().apply(Action::Delete)?;
    let mapped = i.mapping.0.as_array().map_or(0, Vec::len);
    let links: i64 = store.link_counts(i.id).await?.iter().map(|(_, n)| n).sum();
    let settings: Vec<String> = i
        .settings
        .0
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let message = Text::new(
        format!(
            "Deleting integration {} removes its field mapping ({mapped} mapped fields), its sync settings ({}) and every record association between the two orgs ({links} linked records); nothing more will sync. The records stay in each app. To stop it for a while instead, disable it.",
            i.id,
            if settings.is_empty() {
                "none".to_string()
            } else {
                settings.join(", ")
            }
        ),
        format!(
            "連携 {} を削除すると、項目マッピング（{mapped} 項目）、同期設定、2 つの組織間のレコードの関連付け（{links} 件）がすべて削除され、以後同期されません。レコード自体は各アプリに残ります。一時的に止めるだけなら、無効化してください。",
            i.id
        ),
    );
    let d = Deletion {
        mapped_fields: mapped,
        settings,
        record_associations: links,
        message,
    };
    Ok((i, d))
}

/// GEN-4: says which side is missing and who can complete it.
pub async fn waiting_for_other_side(store: &Store, i: &Integration) -> Result<Error> {
    let org_id = i.to_org.unwrap_or(i.from_org);
    let org = store
        .org(org_id)
        .await?
        .ok_or_else(|| Error::not_found("Org", org_id))?;
    let admins: Vec<String> = store
        .members(org_id)
        .await?
        .into_iter()
        .filter(|m| m.role == Role::Administrator.as_str())
        .map(|m| m.email)
        .collect();
    let list = admins.join(", ");
    Ok(Error::new(
        Kind::Forbidden,
        "integration_pending",
        Text::new(
            format!("Integration {} is set up on one side only; {} ({}) has not enabled it yet, so nothing syncs.", i.id, org.name, org.app),
            format!("連携 {} は片側だけ設定されています。{}（{}）側でまだ有効化されていないため、同期は行われません。", i.id, org.name, org.app),
        ),
        Text::new(
            format!("An administrator of {} ({list}) must enable it: POST /api/v1/integrations/{}/enable.", org.name, i.id),
            format!("{} の管理者（{list}）が有効化する必要があります: POST /api/v1/integrations/{}/enable。", org.name, i.id),
        ),
    )
    .with_rule("GEN-4")
    .with_details(json!({"waiting_for": {"org": org.id, "name": org.name, "app": org.app, "administrators": admins}})))
}

/// GEN-10 / DSK-2: an integration acts on behalf of the administrator who set
/// it up (or took it over); while that user is deactivated it cannot run.
pub async fn check_acting_user(store: &Store, i: &Integration) -> Result<()> {
    let user = store.user_by_id(i.acting_user).await?;
    match user {
        Some(u) if u.active => Ok(()),
        other => {
            let email = other.map_or_else(|| i.acting_user.to_string(), |u| u.email);
            Err(Error::new(
                Kind::Forbidden,
                "integration_user_deactivated",
                Text::new(
                    format!("Integration {} acts on behalf of {email}, who is deactivated: their API key is invalid, so the integration cannot run.", i.id),
                    format!("連携 {} は {email} の権限で動作しますが、このユーザーは無効化されているため API キーが無効で、連携を実行できません。", i.id),
                ),
                Text::new(
                    format!("An administrator re-activates {email} (kizuna user activate --email {email}), or another administrator takes the integration over: POST /api/v1/integrations/{}/take-over.", i.id),
                    format!("管理者が {email} を再有効化する（kizuna user activate --email {email}）か、別の管理者が連携を引き継いでください: POST /api/v1/integrations/{}/take-over。", i.id),
                ),
            )
            .with_rule("GEN-10")
            .with_details(json!({"acting_user": email})))
        }
    }
}

/// An administrator of either side takes the integration over: it acts on
/// their behalf from now on (GEN-10).
pub async fn take_over(store: &Store, caller: &User, id: i64) -> Result<Integration> {
    let i = administered(store, caller, id).await?;
    store.set_acting_user(i.id, caller.id).await?;
    store
        .integration(i.id)
        .await?
        .ok_or_else(|| Error::not_found("Integration", id))
}

/// Changes settings (administrators of either side). When the change moves
/// the target module (EVT-8), a mapping that no longer fits the new module
/// returns to that module's defaults; the answer's mapping shows which.
pub async fn set_settings(
    store: &Store,
    caller: &User,
    id: i64,
    changes: &Value,
) -> Result<Integration> {
    let i = administered(store, caller, id).await?;
    let kind = parse_kind(&i.kind)?;
    let settings = crate::settings::merge(kind, &i.settings.0, changes)?;
    if kind == IntegrationKind::CrmDesk
        && let Some(list) = settings["related_lists"].as_array()
    {
        // DSK-6: the list goes on CRM modules that exist.
        let (crm, _) = crate::mapping::crm_and_other(store, &i, App::Desk).await?;
        for m in list.iter().filter_map(Value::as_str) {
            store.module(crm, m).await?;
        }
    }
    let mut updated = i.clone();
    updated.settings = kizuna_store::Json(settings.clone());
    let mapping = match crate::mapping::sides(store, &updated).await {
        // Kinds without an editable mapping keep theirs.
        Err(_) => i.mapping.0.clone(),
        Ok(sides) => match crate::mapping::validate(store, &updated, &i.mapping.0).await {
            Ok(pairs) => crate::mapping::to_json(&pairs),
            Err(_) => crate::mapping::to_json(&sides.defaults),
        },
    };
    store
        .set_integration_config(i.id, &settings, &mapping)
        .await?;
    store
        .integration(i.id)
        .await?
        .ok_or_else(|| Error::not_found("Integration", id))
}

/// Changes an org's plan (its administrator `by`), then applies GEN-2 to its
/// integrations (`apply_plan`); a plan the app does not have is refused and
/// changes nothing.
pub async fn change_plan(store: &Store, org: &Org, plan: &str, by: i64) -> Result<Org> {
    org.app()?.check_plan(plan)?;
    if plan == org.plan {
        return Ok(org.clone());
    }
    let changed = store.change_plan(org, plan, Some(by)).await?;
    apply_plan(store, changed.id).await?;
    Ok(store.org(changed.id).await?.unwrap_or(changed))
}

/// GEN-2 after a plan change: every live integration of the org that the new
/// plan excludes is stopped with the error naming the plan and the plans that
/// include it; one that the plan includes again is released.
pub async fn apply_plan(store: &Store, org_id: i64) -> Result<()> {
    let Some(org) = store.org(org_id).await? else {
        return Ok(());
    };
    for i in store.integrations_of_org(org_id).await? {
        if i.state() == State::Deleted {
            continue;
        }
        let kind = parse_kind(&i.kind)?;
        match check_plan(&org, kind) {
            Err(e) => {
                store
                    .set_integration_stopped(i.id, Some(&e.to_json()["error"]))
                    .await?
            }
            Ok(_) => {
                let stopped_by_plan = i
                    .stopped
                    .as_ref()
                    .is_some_and(|s| s.0["code"] == "plan_excludes_integration");
                if stopped_by_plan {
                    store.set_integration_stopped(i.id, None).await?;
                }
            }
        }
    }
    Ok(())
}

/// Sets (or clears) an org's currency. A CRM org's first currency brings its
/// events' budgets, expenses and revenue to their Campaigns (EVT-11, EVT-14):
/// the events and orders of its live CRM ⇄ Events integration are read again
/// by the next sync.
pub async fn set_currency(store: &Store, org: &Org, currency: Option<&str>) -> Result<()> {
    store.set_currency(org.id, currency).await?;
    if org.currency.is_some() || currency.is_none() || org.app()? != App::Crm {
        return Ok(());
    }
    if let Some(i) = store
        .live_integration(IntegrationKind::CrmEvents, org.id)
        .await?
    {
        let (_, events) = crate::mapping::crm_and_other(store, &i, App::Events).await?;
        // Events carry budgets and expenses; orders, the revenue.
        for module in ["Events", "Orders"] {
            store.resend_records(None, events, module, None).await?;
        }
    }
    Ok(())
}
