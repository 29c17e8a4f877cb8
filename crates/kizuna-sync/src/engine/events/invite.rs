//! Inviting CRM Leads and Contacts to an event (EVT-14): from a Campaign that
//! is an event, each person becomes one of its attendees — linked to the CRM
//! record, so the attendee never comes back as a second Lead, and associated
//! with the Campaign. The whole invitation is one transaction; people who
//! cannot be invited are listed with the reason, never dropped silently.

use super::{ATTENDEE, EVENT, Plan};
use crate::engine::check_runnable;
use crate::engine::twins::new_link;
use crate::lifecycle::visible;
use kizuna_apps::records::association_name;
use kizuna_domain::validate::{Mode, email_key, validate_fields};
use kizuna_domain::{Error, Kind, Result, Text};
use kizuna_store::{LinkSide, Origin, Record, Store, User};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// The most people one invitation may name.
pub const MAX_INVITEES: usize = 500;

/// What an invitation did, person by person.
#[derive(Debug, Serialize)]
pub struct Invitation {
    pub campaign: i64,
    pub event: i64,
    pub invited: Vec<Value>,
    pub not_invited: Vec<Value>,
}

/// Invites the CRM records `people` (Leads or Contacts of the CRM org) to the
/// event of Campaign `campaign`. The caller is a member of the CRM org.
pub async fn invite(
    store: &Store,
    caller: &User,
    id: i64,
    campaign: i64,
    people: &[i64],
) -> Result<Invitation> {
    let (i, _, _) = visible(store, caller, id).await?;
    check_runnable(store, &i).await?;
    let plan = Plan::resolve(store, &i).await?;
    store.org_for_member(plan.crm.id, caller.id).await?;
    if people.is_empty() || people.len() > MAX_INVITEES {
        return Err(Error::bad_request(
            "invitees_count",
            format!("Name from 1 to {MAX_INVITEES} Leads or Contacts to invite."),
            format!("招待する見込み客・連絡先を 1〜{MAX_INVITEES} 件指定してください。"),
        ));
    }
    let mut tx = store.begin().await?;
    let event = store
        .links_in(&mut tx, i.id, EVENT, LinkSide::Crm, &[campaign])
        .await?
        .first()
        .map(|l| l.other_id)
        .ok_or_else(|| campaign_not_an_event(i.id, campaign))?;
    // Every id must be a live Lead or Contact of this CRM org: anything else
    // refuses the whole invitation (another org's ids look like no ids).
    let mut found: HashMap<i64, Record> = HashMap::new();
    for module in ["Leads", "Contacts"] {
        for r in store
            .records_in(&mut tx, plan.crm.id, module, people)
            .await?
        {
            if r.deleted_at.is_none() {
                found.insert(r.id, r);
            }
        }
    }
    if let Some(missing) = people.iter().find(|p| !found.contains_key(p)) {
        return Err(Error::not_found("Lead or Contact", missing));
    }
    let already = store
        .links_in(&mut tx, i.id, ATTENDEE, LinkSide::Crm, people)
        .await?;
    let attendees_of_event: Vec<Record> = {
        let keys: Vec<String> = found
            .values()
            .filter_map(|r| r.fields.get("Email").and_then(Value::as_str))
            .map(email_key)
            .collect();
        store
            .records_by_email_keys_in(&mut tx, plan.events.id, &["Attendees"], &keys)
            .await?
            .into_iter()
            .map(|(_, a)| a)
            .filter(|a| a.fields.get("Event") == Some(&json!(event)))
            .collect()
    };
    let attendees = store.module_of(&plan.events, "Attendees").await?;
    let (mut invited, mut not_invited) = (Vec::new(), Vec::new());
    let mut rows = Vec::new();
    let mut who = Vec::new();
    for &p in people {
        let r = &found[&p];
        let key = r
            .fields
            .get("Email")
            .and_then(Value::as_str)
            .map(email_key)
            .unwrap_or_default();
        let linked = already
            .iter()
            .find(|l| l.crm_id == p && attendees_of_event.iter().any(|a| a.id == l.other_id));
        let same_email = attendees_of_event.iter().find(|a| {
            a.fields.get("Email").and_then(Value::as_str).map(email_key) == Some(key.clone())
        });
        let reason = if key.is_empty() {
            Some(reason(
                "no_email",
                "has no e-mail address, which an attendee needs",
                "にはメールアドレスがありません（参加者に必要です）",
                r,
                None,
            ))
        } else if let Some(a) = linked.map(|l| l.other_id).or(same_email.map(|a| a.id)) {
            Some(reason(
                "already_attending",
                "is already an attendee of this event",
                "はすでにこのイベントの参加者です",
                r,
                Some(a),
            ))
        } else if who.iter().any(|(_, k): &(i64, String)| *k == key) {
            Some(reason(
                "duplicate_email",
                "shares its e-mail address with another person of this invitation",
                "は、この招待の別の人とメールアドレスが同じです",
                r,
                None,
            ))
        } else {
            None
        };
        if let Some(why) = reason {
            not_invited.push(why);
            continue;
        }
        let mut fields = Map::new();
        for pair in &plan.mapping {
            if let Some(v) = r.fields.get(&pair.target).filter(|v| !v.is_null()) {
                fields.insert(pair.source.clone(), v.clone());
            }
        }
        fields.insert("Event".into(), json!(event));
        fields.insert("Status".into(), json!("registered"));
        match validate_fields(&attendees, &fields, Mode::Create) {
            Ok(values) => {
                rows.push(values);
                who.push((p, key));
            }
            Err(e) => not_invited.push(json!({
                "record": {"module": r.module, "id": p},
                "code": e.code, "rule": e.rule, "message": e.message, "fix": e.fix, "details": e.details,
            })),
        }
    }
    let made = store
        .create_records_in(
            &mut tx,
            plan.events.id,
            &attendees,
            rows,
            Origin::Integration(i.id),
        )
        .await?;
    let mut links = Vec::new();
    let mut pairs: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
    for ((p, _), a) in who.iter().zip(&made) {
        let r = &found[p];
        links.push(new_link(
            plan.integration,
            ATTENDEE,
            a,
            r,
            "matched",
            Map::new(),
        ));
        pairs
            .entry(association_name(&r.module, "Campaigns"))
            .or_default()
            .push((r.id, campaign));
        invited.push(json!({"record": {"module": r.module, "id": r.id}, "attendee": a.id}));
    }
    store.save_links_in(&mut tx, &links).await?;
    for (name, list) in &pairs {
        store.associate_in(&mut tx, plan.crm.id, list, name).await?;
    }
    tx.commit().await?;
    Ok(Invitation {
        campaign,
        event,
        invited,
        not_invited,
    })
}

fn reason(code: &str, en: &str, ja: &str, r: &Record, attendee: Option<i64>) -> Value {
    json!({
        "record": {"module": r.module, "id": r.id},
        "code": code,
        "rule": "EVT-14",
        "message": Text::new(format!("{} {} {en}.", r.module, r.id), format!("{} {} {ja}。", r.module, r.id)),
        "attendee": attendee,
    })
}

fn campaign_not_an_event(id: i64, campaign: i64) -> Error {
    Error::new(
        Kind::Conflict,
        "campaign_not_an_event",
        Text::new(
            format!("Campaign {campaign} is not an event of integration {id} yet: it has not been synced, or it is not one of its Campaigns."),
            format!("キャンペーン {campaign} はまだ連携 {id} のイベントではありません。同期されていないか、この連携のキャンペーンではありません。"),
        ),
        Text::new(
            format!("Sync first (POST /api/v1/integrations/{id}/sync), then invite again."),
            format!("先に同期してから（POST /api/v1/integrations/{id}/sync）、もう一度招待してください。"),
        ),
    )
    .with_rule("EVT-14")
    .with_details(json!({"campaign": campaign}))
}
