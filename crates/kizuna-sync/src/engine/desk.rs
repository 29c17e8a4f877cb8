//! CRM ⇄ Desk: accounts, contacts and products kept in step both ways, custom
//! fields included (DSK-13, DSK-14), by the generic two-way sync of
//! `twins`. Accounts are read before contacts, so that a contact's account
//! is linked before the contact needs it (and if not, `twins` links it
//! first). A new record is tied to the one the other side already holds —
//! accounts and products by name, contacts by e-mail — so that connecting two
//! filled orgs duplicates nothing.
//!
//! Deletes (DSK-12): a CRM delete moves the Desk twin to the recycle bin by
//! default (`on_crm_delete` = `unlink` keeps it); a Desk delete only unlinks
//! the CRM twin by default (`on_desk_delete` = `delete` follows it). The CRM
//! is where sales keeps its history with a customer, and a support agent
//! closing a Desk contact should not erase it (ARCHITECTURE.md).

use super::merge::Policy;
use super::twins::{MatchKey, OnDelete, Pairing, Side, TwinSync, TwinType};
use super::{Outcome, Stream, changed_by_others};
use crate::mapping::{DESK_DEFAULTS, crm_and_other_orgs};
use kizuna_apps::records::enabled_module;
use kizuna_domain::{App, Result};
use kizuna_store::{Integration, Link, Record, Store, StreamChange, Tx};

/// One module both apps keep in step, in the order of `DESK_DEFAULTS`.
struct Kept {
    /// The links' data type.
    data_type: &'static str,
    /// The history's data type of its runs.
    runs: &'static str,
    /// Its two streams: Desk's changes, the CRM's changes.
    desk_stream: &'static str,
    crm_stream: &'static str,
    /// How a new record finds the one the other side already holds.
    key: MatchKey,
}

const KEPT: [Kept; 3] = [
    Kept {
        data_type: "account",
        runs: "accounts",
        desk_stream: "desk:Accounts",
        crm_stream: "crm:Accounts",
        key: MatchKey::Text("Account_Name", "Account_Name"),
    },
    Kept {
        data_type: "contact",
        runs: "contacts",
        desk_stream: "desk:Contacts",
        crm_stream: "crm:Contacts",
        key: MatchKey::Email,
    },
    Kept {
        data_type: "product",
        runs: "products",
        desk_stream: "desk:Products",
        crm_stream: "crm:Products",
        key: MatchKey::Text("Product_Name", "Product_Name"),
    },
];

/// The app's name in messages.
pub(crate) const APP: (&str, &str) = ("Desk", "Desk");

pub(crate) struct Plan {
    pairing: Pairing,
    types: Vec<TwinType>,
    on_crm_delete: OnDelete,
    on_desk_delete: OnDelete,
}

impl Plan {
    pub(crate) async fn resolve(store: &Store, i: &Integration) -> Result<Plan> {
        let (crm, desk) = crm_and_other_orgs(store, i, App::Desk).await?;
        let mapping = crate::mapping::validate(store, i, &i.mapping.0)
            .await
            .map_err(|e| crate::mapping::broken(i.id, &e))?;
        let mut types = Vec::new();
        for ((module, _), kept) in DESK_DEFAULTS.iter().zip(&KEPT) {
            types.push(TwinType {
                data_type: kept.data_type,
                crm: enabled_module(store, &crm, module).await?,
                other: enabled_module(store, &desk, module).await?,
                fields: mapping
                    .iter()
                    .filter(|p| p.module.as_deref() == Some(module))
                    .map(|p| (p.source.clone(), p.target.clone()))
                    .collect(),
                key: kept.key,
            });
        }
        let settings = &i.settings.0;
        let on_delete = |name: &str, default: OnDelete| match settings[name].as_str() {
            Some("delete") => OnDelete::Delete,
            Some("unlink") => OnDelete::Unlink,
            _ => default,
        };
        Ok(Plan {
            pairing: Pairing {
                integration: i.id,
                crm_org: crm.id,
                other_org: desk.id,
                policy: Policy::parse(settings["conflict_policy"].as_str()),
                rule: Some("DSK-13"),
            },
            types,
            on_crm_delete: on_delete("on_crm_delete", OnDelete::Delete),
            on_desk_delete: on_delete("on_desk_delete", OnDelete::Unlink),
        })
    }

    pub(crate) fn streams(&self) -> Vec<Stream> {
        streams(self.pairing.crm_org, self.pairing.other_org)
    }

    pub(crate) async fn apply(
        &self,
        store: &Store,
        tx: &mut Tx,
        stream: &Stream,
        changes: &[StreamChange],
        read: Option<Vec<Record>>,
        out: &mut Outcome,
    ) -> Result<()> {
        let (ids, ops) = changed_by_others(changes, self.pairing.integration);
        let Some((n, side)) = KEPT.iter().enumerate().find_map(|(n, k)| {
            if k.desk_stream == stream.name {
                Some((n, Side::Other))
            } else if k.crm_stream == stream.name {
                Some((n, Side::Crm))
            } else {
                None
            }
        }) else {
            return Ok(());
        };
        if ids.is_empty() {
            return Ok(());
        }
        let mut w = TwinSync {
            store,
            tx,
            out,
            pairing: &self.pairing,
            types: &self.types,
            on_crm_delete: self.on_crm_delete,
            on_other_delete: self.on_desk_delete,
            app: APP,
            links: Default::default(),
        };
        w.changed(&self.types[n], side, &ids, &ops, read).await?;
        let links: Vec<Link> = std::mem::take(&mut w.links).into_values().collect();
        store.save_links_in(w.tx, &links).await
    }
}

/// The streams a CRM ⇄ Desk integration reads, accounts first.
pub(crate) fn streams(crm: i64, desk: i64) -> Vec<Stream> {
    let mut out = Vec::new();
    for ((module, _), k) in DESK_DEFAULTS.iter().zip(&KEPT) {
        out.push(Stream {
            name: k.desk_stream,
            org: desk,
            module,
            direction: "desk-to-crm",
            data_type: k.runs,
        });
        out.push(Stream {
            name: k.crm_stream,
            org: crm,
            module,
            direction: "crm-to-desk",
            data_type: k.runs,
        });
    }
    out
}
