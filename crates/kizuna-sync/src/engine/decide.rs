//! Deciding a held conflict (policy `hold`, DSK-13): an administrator takes
//! one side's value of a field that changed differently on both. The pair's
//! base becomes the other side's value, so the next merge sees a change on
//! the chosen side only and carries it across; the CRM record goes back on
//! the change log and a sync runs at once, so the decision's writes land in
//! the history like any other run, with the same validation and no echo.

use super::{Trigger, sync};
use crate::lifecycle::{administered, visible};
use kizuna_domain::{Error, Result};
use kizuna_store::{Held, LinkSide, Run, Store, User};
use serde_json::{Value, json};

/// An integration's held conflicts (administrators and members of either
/// side may read them).
pub async fn held(
    store: &Store,
    caller: &User,
    id: i64,
    after: i64,
    limit: u32,
) -> Result<Vec<Held>> {
    let (i, _, _) = visible(store, caller, id).await?;
    store.held(i.id, after, limit).await
}

/// Which side's value a decision takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    Crm,
    Other,
}

impl Take {
    /// `crm`, or `other` (also the other app's name: `desk`, `events`).
    pub fn parse(v: &Value) -> Result<Take> {
        match v.as_str() {
            Some("crm") => Ok(Take::Crm),
            Some("other" | "desk" | "events") => Ok(Take::Other),
            _ => Err(Error::bad_request(
                "invalid_take",
                format!("\"take\" is \"crm\" or the other app (\"desk\", \"events\", or \"other\"); not {v}."),
                format!("\"take\" には \"crm\" または連携先アプリ（\"desk\"、\"events\"、\"other\"）を指定してください（{v} は不可）。"),
            )
            .with_details(json!({"field": "take"}))),
        }
    }
}

/// Decides held conflict `held_id` of integration `id`; returns the runs of
/// the sync that carried the value across.
pub async fn decide(
    store: &Store,
    caller: &User,
    id: i64,
    held_id: i64,
    take: Take,
) -> Result<Vec<Run>> {
    let i = administered(store, caller, id).await?;
    let (crm_org, _) = crate::mapping::crm_and_other(store, &i, other_app(&i)?).await?;
    let mut tx = store.begin().await?;
    let h = store
        .held_one_in(&mut tx, i.id, held_id)
        .await?
        .ok_or_else(|| Error::not_found("Conflict", held_id))?;
    let link = store
        .links_in(&mut tx, i.id, &h.data_type, LinkSide::Other, &[h.other_id])
        .await?
        .into_iter()
        .next();
    store.release_in(&mut tx, h.id).await?;
    if let Some(mut link) = link {
        // The base takes the losing side's value: only the winner changed.
        let losing = match take {
            Take::Crm => &h.other_value.0,
            Take::Other => &h.crm_value.0,
        };
        match losing {
            Value::Null => link.synced.0.remove(&h.field),
            v => link.synced.0.insert(h.field.clone(), v.clone()),
        };
        store.save_links_in(&mut tx, &[link]).await?;
        store
            .resend_records(Some(&mut tx), crm_org, &h.crm_module, Some(&[h.crm_id]))
            .await?;
    }
    // A pair unlinked since has nothing to carry across: the conflict is
    // only forgotten.
    tx.commit().await?;
    sync(store, i.id, Trigger::Api).await
}

fn other_app(i: &kizuna_store::Integration) -> Result<kizuna_domain::App> {
    let kind = crate::lifecycle::parse_kind(&i.kind)?;
    kind.apps()
        .1
        .ok_or_else(|| Error::internal("a conflict held by an integration of one org"))
}
