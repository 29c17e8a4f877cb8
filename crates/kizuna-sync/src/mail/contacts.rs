//! Contacts from the mail side into CRM Contacts: the field map of MAIL-2
//! with the CRM's limits, dedup by e-mail, else by last + first name
//! (MAIL-3), the category filter (MAIL-12). A batch of items is one
//! transaction with its `mail_items` rows and the run's history, so a
//! crash anywhere leaves every item either synced with its row or not at
//! all, and the next run neither loses nor doubles one.

use super::reasons;
use super::settings::MailSettings;
use crate::engine::Outcome;
use kizuna_connectors::vcard::{CardError, Contact, ContactField};
use kizuna_domain::field::ModuleDef;
use kizuna_domain::validate::{Mode, email_key, validate_fields};
use kizuna_domain::{Error, Result};
use kizuna_store::{Counts, MailItem, MailItemState, Org, Origin, Record, Store, Tx};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;

pub const MODULE: &str = "Contacts";
pub const DATA_TYPE: &str = "contact";

/// MAIL-2: the mail client's contact field, the CRM Contacts field it fills,
/// and its name for the history (English, Japanese). The limits are the CRM
/// field's own (`kizuna-apps` catalog).
pub const CONTACT_MAP: &[(ContactField, &str, (&str, &str))] = {
    use ContactField as F;
    &[
        (F::FirstName, "First_Name", ("First name", "名")),
        (F::LastName, "Last_Name", ("Last name", "姓")),
        (F::Email, "Email", ("E-mail 1", "電子メール 1")),
        (F::JobTitle, "Title", ("Job title", "役職")),
        (F::Company, "Account_Name", ("Company", "会社名")),
        (F::Department, "Department", ("Department", "部署")),
        (F::BusinessPhone, "Phone", ("Business phone", "会社電話")),
        (F::HomePhone, "Home_Phone", ("Home phone", "自宅電話")),
        (
            F::OtherPhone,
            "Other_Phone",
            ("Other phone", "その他の電話"),
        ),
        (F::BusinessFax, "Fax", ("Business fax", "会社 FAX")),
        (F::MobilePhone, "Mobile", ("Mobile phone", "携帯電話")),
        (
            F::AssistantName,
            "Assistant",
            ("Assistant's name", "秘書の名前"),
        ),
        (
            F::AssistantPhone,
            "Asst_Phone",
            ("Assistant's phone", "秘書の電話"),
        ),
        (
            F::ManagerName,
            "Reports_To",
            ("Manager's name", "上司の名前"),
        ),
        (
            F::BusinessStreet,
            "Mailing_Street",
            ("Business street", "勤務先 番地"),
        ),
        (
            F::BusinessCity,
            "Mailing_City",
            ("Business city", "勤務先 市区町村"),
        ),
        (
            F::BusinessState,
            "Mailing_State",
            ("Business state", "勤務先 都道府県"),
        ),
        (
            F::BusinessPostalCode,
            "Mailing_Zip",
            ("Business postal code", "勤務先 郵便番号"),
        ),
        (
            F::BusinessCountry,
            "Mailing_Country",
            ("Business country", "勤務先 国"),
        ),
        (
            F::OtherStreet,
            "Other_Street",
            ("Other street", "その他 番地"),
        ),
        (
            F::OtherCity,
            "Other_City",
            ("Other city", "その他 市区町村"),
        ),
        (
            F::OtherState,
            "Other_State",
            ("Other state", "その他 都道府県"),
        ),
        (
            F::OtherPostalCode,
            "Other_Zip",
            ("Other postal code", "その他 郵便番号"),
        ),
        (
            F::OtherCountry,
            "Other_Country",
            ("Other country", "その他 国"),
        ),
        (F::Notes, "Description", ("Notes", "メモ")),
        (F::Birthday, "Date_of_Birth", ("Birthday", "誕生日")),
    ]
};

/// One contact read from the mail side.
#[derive(Debug)]
pub struct Incoming {
    /// Its name in its source (`mail_items.item_key`).
    pub key: String,
    pub etag: Option<String>,
    pub card: std::result::Result<Contact, CardError>,
    /// Where it was read, for the history (`{"href"}`, `{"file", "line"}`).
    pub at: Value,
}

/// Where contacts go and how: the CRM org and its Contacts module, the
/// connection, the item source, and the run the history goes to.
pub struct Target<'a> {
    pub store: &'a Store,
    pub org: &'a Org,
    pub module: Arc<ModuleDef>,
    pub integration: i64,
    pub source: &'a str,
    pub settings: &'a MailSettings,
    pub run: i64,
}

/// The CRM values of a contact (MAIL-2), cut or refused by length.
fn crm_values(
    module: &ModuleDef,
    c: &Contact,
    truncate: bool,
    notices: &mut Vec<Error>,
) -> std::result::Result<Map<String, Value>, Error> {
    let mut values = Map::new();
    for (field, crm, label) in CONTACT_MAP {
        let Some(v) = c.get(*field) else { continue };
        let Some(def) = module.field(crm) else {
            continue;
        };
        if !def.in_use {
            continue;
        }
        let mut v = v.to_string();
        if let Some(limit) = def.effective_max_length() {
            let length = v.chars().count();
            if length > limit as usize {
                if !truncate {
                    return Err(reasons::too_long(*label, crm, limit, length));
                }
                v = v.chars().take(limit as usize).collect();
                notices.push(reasons::truncated(*label, crm, limit, length));
            }
        }
        values.insert((*crm).to_string(), json!(v));
    }
    Ok(values)
}

/// The dedup keys of MAIL-3.
fn name_key(values: &Map<String, Value>) -> Option<(String, String)> {
    let t = |f: &str| {
        values
            .get(f)
            .and_then(Value::as_str)
            .map(|s| s.trim().to_lowercase())
            .unwrap_or_default()
    };
    let last = t("Last_Name");
    (!last.is_empty()).then(|| (last, t("First_Name")))
}

fn email_of(values: &Map<String, Value>) -> Option<String> {
    values
        .get("Email")
        .and_then(Value::as_str)
        .map(email_key)
        .filter(|k| !k.is_empty())
}

/// What was decided for one item before writing.
enum Plan {
    Failed(Error),
    Skipped(Error),
    Write {
        values: Map<String, Value>,
        notices: Vec<Error>,
    },
}

/// The CRM record an item is, as the sync leaves it.
#[derive(Debug, Clone, Copy)]
struct Became {
    id: i64,
    version: i64,
    /// `created` by the item, or `matched` (it existed: MAIL-3).
    how: &'static str,
}

/// Syncs a batch of contacts into the CRM in one transaction; returns what
/// it did (also recorded in the run).
pub async fn apply(t: &Target<'_>, batch: Vec<Incoming>) -> Result<Counts> {
    let store = t.store;
    let mut tx = store.begin().await?;
    let keys: Vec<&str> = batch.iter().map(|b| b.key.as_str()).collect();
    let known: HashMap<String, MailItem> = store
        .mail_items_in(&mut tx, t.integration, t.source, &keys)
        .await?
        .into_iter()
        .map(|m| (m.item_key.clone(), m))
        .collect();
    let was = |b: &Incoming| -> Option<Became> {
        let m = known.get(&b.key)?;
        Some(Became {
            id: m.crm_id?,
            version: m.crm_version.unwrap_or_default(),
            how: if m.how.as_deref() == Some("matched") {
                "matched"
            } else {
                "created"
            },
        })
    };
    // Two items of one source with one UID are one contact twice: the item
    // that had the UID first keeps it, the other is reported and skipped.
    let uids: Vec<&str> = batch
        .iter()
        .filter_map(|b| b.card.as_ref().ok()?.uid.as_deref())
        .collect();
    let mut uid_owner: HashMap<String, String> = HashMap::new();
    for m in store
        .mail_items_by_uid_in(&mut tx, t.integration, t.source, &uids)
        .await?
    {
        if let Some(uid) = m.uid {
            uid_owner.entry(uid).or_insert(m.item_key);
        }
    }
    let plans: Vec<Plan> = batch
        .iter()
        .map(|b| {
            let uid = b.card.as_ref().ok().and_then(|c| c.uid.as_deref());
            if let Some(uid) = uid {
                let owner = uid_owner
                    .entry(uid.to_string())
                    .or_insert_with(|| b.key.clone());
                if *owner != b.key {
                    return Plan::Skipped(reasons::duplicate_uid(uid, owner));
                }
            }
            plan(t, b, known.get(&b.key))
        })
        .collect();
    let writes = || {
        batch
            .iter()
            .zip(&plans)
            .filter(|(_, p)| matches!(p, Plan::Write { .. }))
    };
    // The CRM records the linked items became, as they are now.
    let linked_ids: Vec<i64> = writes().filter_map(|(b, _)| was(b).map(|w| w.id)).collect();
    let mut current: HashMap<i64, Record> = store
        .records_in(&mut tx, t.org.id, MODULE, &linked_ids)
        .await?
        .into_iter()
        .map(|r| (r.id, r))
        .collect();
    // MAIL-3: the records that already hold an item's e-mail or name.
    let (mut emails, mut lasts) = (Vec::new(), Vec::new());
    for (_, p) in writes().filter(|(b, _)| was(b).is_none()) {
        if let Plan::Write { values, .. } = p {
            match email_of(values) {
                Some(e) => emails.push(e),
                None => lasts.extend(name_key(values).map(|k| k.0)),
            }
        }
    }
    let mut by_email: HashMap<String, i64> = HashMap::new();
    let mut by_name: HashMap<(String, String), i64> = HashMap::new();
    for (key, r) in store
        .records_by_email_keys_in(&mut tx, t.org.id, &[MODULE], &emails)
        .await?
    {
        // Oldest first: the earliest created contact is the one kept.
        by_email.entry(key).or_insert(r.id);
        current.entry(r.id).or_insert(r);
    }
    if !lasts.is_empty() {
        for r in store
            .records_by_text_keys_in(&mut tx, t.org.id, MODULE, "Last_Name", &lasts)
            .await?
        {
            if let Some(k) = name_key(&r.fields) {
                by_name.entry(k).or_insert(r.id);
            }
            current.entry(r.id).or_insert(r);
        }
    }
    let mut out = Outcome::default();
    let mut states: Vec<Option<Became>> = Vec::with_capacity(batch.len());
    // Items' outcomes name the item by its `mail_items` id, known only once
    // the rows are saved: (index of the item, index in out.items).
    let mut item_of: Vec<(usize, usize)> = Vec::new();
    let origin = Origin::Integration(t.integration);
    for (n, (b, p)) in batch.iter().zip(plans).enumerate() {
        let before = out.items.len();
        let linked = was(b);
        let state = match p {
            Plan::Failed(e) => {
                out.fail(&e, (t.source, 0), None);
                None
            }
            Plan::Skipped(e) => {
                out.skip(&e, (t.source, 0), linked.map(|w| (MODULE, w.id)));
                linked
            }
            Plan::Write { values, notices } => {
                let found = match linked {
                    Some(w) => Some((w.id, None)),
                    None => email_of(&values)
                        .and_then(|e| by_email.get(&e).map(|id| (*id, Some(e))))
                        .or_else(|| {
                            name_key(&values).and_then(|k| by_name.get(&k).map(|id| (*id, None)))
                        }),
                };
                // A linked record purged from the bin since: the item is new again.
                let existing = found.and_then(|(id, by)| current.get(&id).map(|r| (r, by)));
                let written = match existing {
                    Some((rec, _)) if rec.deleted_at.is_some() => {
                        let e = reasons::crm_record_deleted(MODULE, rec.id);
                        out.skip(&e, (t.source, 0), Some((MODULE, rec.id)));
                        Ok(linked)
                    }
                    Some((rec, matched_by)) => {
                        let id = rec.id;
                        let how = linked.map_or("matched", |w| w.how);
                        let changes: Map<String, Value> = values
                            .iter()
                            .filter(|(k, v)| rec.fields.get(*k) != Some(*v))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect();
                        if linked.is_none() {
                            let e = reasons::matched_existing(
                                MODULE,
                                id,
                                matched_by.as_deref(),
                                &display_name(&values),
                            );
                            out.link(&e, (t.source, 0), (MODULE, id));
                        }
                        if changes.is_empty() {
                            Ok(Some(Became {
                                id,
                                version: rec.version,
                                how,
                            }))
                        } else {
                            let updated = store
                                .update_record_in(
                                    &mut tx, t.org.id, &t.module, id, changes, None, origin,
                                )
                                .await;
                            updated.map(|r| {
                                if linked.is_some() {
                                    out.counts.updated += 1;
                                }
                                let became = Became {
                                    id,
                                    version: r.version,
                                    how,
                                };
                                current.insert(id, r);
                                Some(became)
                            })
                        }
                    }
                    None => create(t, &mut tx, &values, origin).await.map(|r| {
                        let became = Became {
                            id: r.id,
                            version: r.version,
                            how: "created",
                        };
                        out.counts.added += 1;
                        if let Some(e) = email_of(&values) {
                            by_email.entry(e).or_insert(r.id);
                        }
                        if let Some(k) = name_key(&values) {
                            by_name.entry(k).or_insert(r.id);
                        }
                        current.insert(r.id, r);
                        Some(became)
                    }),
                };
                match written {
                    Ok(became) => {
                        for notice in &notices {
                            out.notice(notice, (t.source, 0), became.map(|w| (MODULE, w.id)));
                        }
                        became
                    }
                    Err(e) if e.kind == kizuna_domain::Kind::Internal => return Err(e),
                    Err(e) => {
                        out.fail(&e, (t.source, 0), None);
                        None
                    }
                }
            }
        };
        item_of.extend((before..out.items.len()).map(|i| (n, i)));
        states.push(state);
    }
    let rows: Vec<MailItemState> = batch
        .iter()
        .zip(&states)
        .map(|(b, state)| {
            let card = b.card.as_ref().ok();
            MailItemState {
                source: t.source,
                item_key: &b.key,
                data_type: DATA_TYPE,
                etag: b.etag.as_deref(),
                // An item that was not written is read again next time.
                content_hash: match (card, state) {
                    (Some(c), Some(_)) => &c.hash,
                    _ => "",
                },
                crm: state.map(|w| (MODULE, w.id, w.version)),
                how: state.map(|w| w.how),
                uid: card.and_then(|c| c.uid.as_deref()),
            }
        })
        .collect();
    let ids = store
        .save_mail_items_in(&mut tx, t.integration, &rows)
        .await?;
    for (n, i) in item_of {
        let item = &mut out.items[i];
        item.source_id = ids[n];
        let mut details = item.details.0.clone();
        details["item"] = batch[n].at.clone();
        item.details = kizuna_store::Json(details);
    }
    store
        .record_progress_in(&mut tx, t.run, out.counts, &out.items)
        .await?;
    tx.commit().await?;
    Ok(out.counts)
}

async fn create(
    t: &Target<'_>,
    tx: &mut Tx,
    values: &Map<String, Value>,
    origin: Origin,
) -> Result<Record> {
    let valid = validate_fields(&t.module, values, Mode::Create)?;
    let created = t
        .store
        .create_records_in(tx, t.org.id, &t.module, vec![valid], origin)
        .await?;
    created
        .into_iter()
        .next()
        .ok_or_else(|| Error::internal("no record was created"))
}

/// "First Last", for the history.
fn display_name(values: &Map<String, Value>) -> String {
    let t = |f: &str| values.get(f).and_then(Value::as_str).unwrap_or_default();
    format!("{} {}", t("First_Name"), t("Last_Name"))
        .trim()
        .to_string()
}

/// What to do with one item, before looking at the CRM.
fn plan(t: &Target<'_>, b: &Incoming, known: Option<&MailItem>) -> Plan {
    let crm = known.and_then(|m| m.crm_id);
    let c = match &b.card {
        Ok(c) => c,
        Err(e) => return Plan::Failed(reasons::unreadable(&e.0)),
    };
    if let Some(cat) = &t.settings.category
        && !c.categories.iter().any(|x| x.eq_ignore_ascii_case(cat))
    {
        return Plan::Skipped(reasons::not_in_category(cat, &c.categories));
    }
    if let (Some(m), Some(id)) = (known, crm)
        && m.content_hash == c.hash
    {
        return Plan::Skipped(reasons::unchanged(MODULE, id));
    }
    let mut notices = Vec::new();
    let values = match crm_values(&t.module, c, t.settings.truncate, &mut notices) {
        Ok(v) => v,
        Err(e) => return Plan::Failed(e),
    };
    // Every other check of the CRM (e-mail form, dates, a required last
    // name) before anything is written; an update checks only what it sends.
    let mode = if crm.is_some() {
        Mode::Update
    } else {
        Mode::Create
    };
    match validate_fields(&t.module, &values, mode) {
        Ok(valid) => Plan::Write {
            values: valid,
            notices,
        },
        Err(e) => Plan::Failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_2_every_mapped_crm_field_is_a_crm_contact_field_with_the_spec_limit() {
        let module = kizuna_apps::catalog::standard_modules(kizuna_domain::App::Crm)
            .into_iter()
            .find(|m| m.api_name == MODULE)
            .expect("CRM Contacts");
        let spec: &[(&str, Option<u32>)] = &[
            ("First_Name", Some(40)),
            ("Last_Name", Some(80)),
            ("Title", Some(100)),
            ("Account_Name", Some(200)),
            ("Department", Some(50)),
            ("Phone", Some(50)),
            ("Home_Phone", Some(30)),
            ("Other_Phone", Some(30)),
            ("Fax", Some(30)),
            ("Mobile", Some(30)),
            ("Assistant", Some(50)),
            ("Asst_Phone", Some(30)),
            ("Reports_To", Some(50)),
            ("Mailing_Street", Some(250)),
            ("Mailing_City", Some(30)),
            ("Mailing_State", Some(30)),
            ("Mailing_Zip", Some(30)),
            ("Mailing_Country", Some(30)),
            ("Other_Street", Some(250)),
            ("Other_City", Some(30)),
            ("Other_State", Some(30)),
            ("Other_Zip", Some(30)),
            ("Other_Country", Some(30)),
            ("Description", Some(32000)),
        ];
        for (name, limit) in spec {
            let f = module.field(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(f.max_length, *limit, "{name}");
            assert!(CONTACT_MAP.iter().any(|(_, crm, _)| crm == name), "{name}");
        }
        assert_eq!(CONTACT_MAP.len(), 26);
        for (_, crm, _) in CONTACT_MAP {
            assert!(module.field(crm).is_some(), "{crm}");
        }
    }

    #[test]
    fn mail_2_a_long_value_fails_naming_field_limit_and_length_or_is_cut_when_asked() {
        let module = kizuna_apps::catalog::standard_modules(kizuna_domain::App::Crm)
            .into_iter()
            .find(|m| m.api_name == MODULE)
            .expect("CRM Contacts");
        let mut c = Contact::default();
        c.fields.insert(ContactField::LastName, "山".repeat(81));
        let e = crm_values(&module, &c, false, &mut Vec::new()).expect_err("too long");
        assert_eq!(e.rule, Some("MAIL-2"));
        assert_eq!(e.details["field"], "Last_Name");
        assert_eq!(e.details["limit"], 80);
        assert_eq!(e.details["length"], 81);
        assert!(e.message.ja.contains("81") && e.message.ja.contains("80"));
        let mut notices = Vec::new();
        let v = crm_values(&module, &c, true, &mut notices).expect("cut");
        assert_eq!(v["Last_Name"].as_str().map(|s| s.chars().count()), Some(80));
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].code, "value_truncated");
    }
}
