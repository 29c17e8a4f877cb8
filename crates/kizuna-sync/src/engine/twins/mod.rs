//! Two-way sync of linked pairs of records: a record of the other app and
//! its twin in the CRM are kept in step field by field (DSK-13, DSK-14, and
//! events ⇄ Campaigns). A field changed on one side goes to the other; the
//! same field changed on both follows the integration's policy and goes into
//! the history with both values (`merge`). A record new on one side is
//! tied to the record that already exists on the other under the same key
//! (e-mail, name) before one is created, so an initial sync of two filled
//! orgs duplicates nothing. Lookups between synced modules (a contact's
//! account) are translated through the links.
//!
//! `chunk.rs` handles one chunk of a data type's changes on either side;
//! `reasons.rs` holds the history's words.

mod chunk;
mod reasons;

pub(crate) use chunk::TwinSync;
pub(crate) use reasons::twin_gone;

use super::merge::{Conflict, Policy, merge};
use super::{Outcome, outcome::At};
use kizuna_domain::Result;
use kizuna_domain::field::{FieldType, ModuleDef};
use kizuna_domain::validate::{Mode, validate_fields};
use kizuna_store::{HeldField, Json, Link, LinkSide, Origin, Record, Store, Tx, now_ms};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// A linked pair's values on each side, in CRM field names, and back.
pub(crate) trait Shape: Sync {
    fn crm_module(&self) -> &ModuleDef;
    fn other_module(&self) -> &ModuleDef;
    /// The CRM record's values that the pair keeps in step.
    fn crm_values(&self, r: &Record) -> Map<String, Value>;
    /// The other record's values, in CRM terms.
    fn other_values(&self, r: &Record) -> Map<String, Value>;
    /// CRM-term values as the other module's fields (`null` clears).
    fn to_other(&self, values: &Map<String, Value>) -> Map<String, Value>;
}

/// Where a pair's writes go and how conflicts are settled.
pub(crate) struct Pairing {
    pub integration: i64,
    pub crm_org: i64,
    pub other_org: i64,
    pub policy: Policy,
    /// The rule a conflict's history item cites.
    pub rule: Option<&'static str>,
}

impl Pairing {
    fn origin(&self) -> Origin {
        Origin::Integration(self.integration)
    }
}

/// Brings a linked pair into step: the changes of `merge` written on each
/// side (after validation: a value one side refuses fails the pair, and
/// nothing of it is written), the conflicts reported, and the link's new
/// base returned for the caller to save.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn reconcile(
    store: &Store,
    tx: &mut Tx,
    out: &mut Outcome,
    pairing: &Pairing,
    shape: &dyn Shape,
    l: &Link,
    crm: &Record,
    other: &Record,
) -> Result<Option<Link>> {
    let (cm, om) = (shape.crm_module(), shape.other_module());
    let at_other: At = (&om.api_name, other.id);
    let at_crm: At = (&cm.api_name, crm.id);
    let m = merge(
        &l.synced.0,
        &shape.crm_values(crm),
        &shape.other_values(other),
        pairing.policy,
        true,
    );
    // A held conflict is reported when it starts or its values move, not
    // again by every sync that finds it still waiting.
    let reported: Vec<Conflict> = if pairing.policy == Policy::Hold {
        let fields: Vec<HeldField> = m
            .conflicts
            .iter()
            .map(|c| {
                (
                    c.field.clone(),
                    c.base.clone(),
                    c.crm.clone(),
                    c.other.clone(),
                )
            })
            .collect();
        let fresh = store
            .hold_in(
                tx,
                pairing.integration,
                &l.data_type,
                other.id,
                (&cm.api_name, crm.id),
                &fields,
            )
            .await?;
        m.conflicts
            .iter()
            .filter(|c| fresh.contains(&c.field))
            .cloned()
            .collect()
    } else {
        m.conflicts.clone()
    };
    out.conflicts(&reported, at_other, at_crm, pairing.rule);
    let other_changes = shape.to_other(&m.other_changes);
    let checked = validate_fields(cm, &m.crm_changes, Mode::Update)
        .and_then(|cc| validate_fields(om, &other_changes, Mode::Update).map(|oc| (cc, oc)));
    let (crm_changes, other_changes) = match checked {
        Ok(x) => x,
        Err(err) => {
            out.fail(&err, at_other, Some(at_crm));
            return Ok(None);
        }
    };
    let (mut crm_version, mut other_version) = (crm.version, other.version);
    if !crm_changes.is_empty() {
        crm_version = store
            .update_record_in(
                tx,
                pairing.crm_org,
                cm,
                crm.id,
                crm_changes,
                None,
                pairing.origin(),
            )
            .await?
            .version;
    }
    if !other_changes.is_empty() {
        other_version = store
            .update_record_in(
                tx,
                pairing.other_org,
                om,
                other.id,
                other_changes,
                None,
                pairing.origin(),
            )
            .await?
            .version;
    }
    if crm_version != crm.version || other_version != other.version {
        out.counts.updated += 1;
    }
    let mut link = l.clone();
    link.synced = Json(m.agreed);
    link.crm_version = crm_version;
    link.other_version = other_version;
    Ok(Some(link))
}

/// Which app a changed record is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Crm,
    Other,
}

impl Side {
    fn link_side(self) -> LinkSide {
        match self {
            Side::Crm => LinkSide::Crm,
            Side::Other => LinkSide::Other,
        }
    }
}

/// What a delete on one side does to the twin (DSK-12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnDelete {
    /// The twin goes to the recycle bin too (and comes back with a restore).
    Delete,
    /// The twin stays; the link is removed.
    Unlink,
}

/// How a record new on one side finds the twin that already exists.
#[derive(Debug, Clone, Copy)]
pub(crate) enum MatchKey {
    /// The e-mail key (trimmed, lower case).
    Email,
    /// A text field, trimmed and in lower case: (CRM field, other field).
    Text(&'static str, &'static str),
}

/// One data type kept in step both ways.
pub(crate) struct TwinType {
    pub data_type: &'static str,
    pub crm: Arc<ModuleDef>,
    pub other: Arc<ModuleDef>,
    /// Mapped fields: (other field, CRM field).
    pub fields: Vec<(String, String)>,
    pub key: MatchKey,
}

impl TwinType {
    /// The mapped lookups: (CRM field, data type of the records it points at).
    fn lookups<'t>(&self, all: &'t [TwinType]) -> Vec<(&str, &'t TwinType)> {
        self.fields
            .iter()
            .filter_map(|(_, cf)| {
                let f = self.crm.field(cf)?;
                let target = f.lookup_module.as_deref()?;
                let t = all.iter().find(|t| t.crm.api_name == target)?;
                (f.field_type == FieldType::Lookup).then_some((cf.as_str(), t))
            })
            .collect()
    }
}

pub(crate) fn new_link(
    integration: i64,
    data_type: &str,
    other: &Record,
    crm: &Record,
    how: &str,
    synced: Map<String, Value>,
) -> Link {
    Link {
        integration_id: integration,
        data_type: data_type.to_string(),
        other_id: other.id,
        crm_id: crm.id,
        how: how.to_string(),
        other_version: other.version,
        crm_version: crm.version,
        synced: Json(synced),
        linked_at: now_ms(),
    }
}

pub(crate) fn by_id(records: Vec<Record>) -> HashMap<i64, Record> {
    records.into_iter().map(|r| (r.id, r)).collect()
}
