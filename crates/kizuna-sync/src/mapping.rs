//! Field mapping: which field of the other app's module fills which CRM field.
//! Every pair must hold the same kind of data (GEN-5); the Events app has no
//! currency, decimal, integer or file fields to offer (EVT-13); resetting to
//! the defaults is always possible. A kind that syncs several modules (CRM ⇄
//! Desk: contacts, accounts, products) names each pair's module.

use kizuna_apps::events;
use kizuna_domain::field::{FieldDef, FieldType, ModuleDef};
use kizuna_domain::integration::{incompatible_mapping, types_compatible};
use kizuna_domain::{App, Error, IntegrationKind, Kind, Result, Text};
use kizuna_store::{Integration, Store};
use serde_json::{Value, json};

/// One mapped pair: a field of the source module into a field of the target,
/// of the module pair `module` names (`None` where a kind has one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub module: Option<String>,
    pub source: String,
    pub target: String,
}

/// A module of the other app and the CRM module it syncs with.
#[derive(Debug, Clone)]
pub struct ModulePair {
    /// The name a mapped pair gives (`"module"`); `None` where a kind has one.
    pub name: Option<&'static str>,
    pub source: &'static str,
    pub target: String,
}

/// Where a kind's records come from and go to.
pub struct Sides {
    pub source_org: i64,
    pub target_org: i64,
    pub modules: Vec<ModulePair>,
    /// The mapping an integration starts with and returns to on reset.
    pub defaults: Vec<Pair>,
    /// Field types the source app cannot provide (EVT-13).
    pub unsupported: &'static [FieldType],
    /// The rule a refused pair cites.
    pub rule: &'static str,
}

fn pairs(module: Option<&str>, list: &[(&str, &str)]) -> Vec<Pair> {
    list.iter()
        .map(|(s, t)| Pair {
            module: module.map(str::to_string),
            source: s.to_string(),
            target: t.to_string(),
        })
        .collect()
}

/// The sides of an integration, or the refusal saying its mapping is not
/// editable yet.
pub async fn sides(store: &Store, i: &Integration) -> Result<Sides> {
    let kind = crate::lifecycle::parse_kind(&i.kind)?;
    match kind {
        IntegrationKind::CrmEvents => {
            let (crm, events) = crm_and_other(store, i, App::Events).await?;
            // EVT-8: attendees go to Leads (default) or Contacts.
            let target = i
                .settings
                .0
                .get("target_module")
                .and_then(Value::as_str)
                .unwrap_or("Leads");
            let company = if target == "Contacts" {
                "Account_Name"
            } else {
                "Company"
            };
            Ok(Sides {
                source_org: events,
                target_org: crm,
                modules: vec![ModulePair {
                    name: None,
                    source: events::ATTENDEES,
                    target: target.to_string(),
                }],
                defaults: pairs(
                    None,
                    &[
                        ("First_Name", "First_Name"),
                        ("Last_Name", "Last_Name"),
                        ("Email", "Email"),
                        ("Company", company),
                    ],
                ),
                unsupported: &[
                    FieldType::Currency,
                    FieldType::Decimal,
                    FieldType::Integer,
                    FieldType::File,
                ],
                rule: "EVT-13",
            })
        }
        IntegrationKind::CrmDesk => {
            let (crm, desk) = crm_and_other(store, i, App::Desk).await?;
            // DSK-13/14: contacts and accounts, and products; the same module
            // names on both sides.
            let modules = DESK_DEFAULTS
                .iter()
                .map(|(m, _)| ModulePair {
                    name: Some(m),
                    source: m,
                    target: m.to_string(),
                })
                .collect();
            Ok(Sides {
                source_org: desk,
                target_org: crm,
                modules,
                defaults: DESK_DEFAULTS
                    .iter()
                    .flat_map(|(m, list)| pairs(Some(m), list))
                    .collect(),
                unsupported: &[],
                rule: "GEN-5",
            })
        }
        other => Err(Error::new(
            Kind::BadInput,
            "mapping_not_available",
            Text::new(
                format!(
                    "Field mapping of {} integrations is not available in this version.",
                    other.as_str()
                ),
                format!(
                    "このバージョンでは {} 連携の項目マッピングは利用できません。",
                    other.as_str()
                ),
            ),
            Text::new(
                "Use the default mapping; it applies automatically.",
                "既定のマッピングが自動的に使われます。",
            ),
        )),
    }
}

/// CRM ⇄ Desk's modules, in the order a sync reads them (accounts before the
/// contacts that refer to them), with the fields mapped by default (Desk
/// field, CRM field).
pub const DESK_DEFAULTS: [(&str, &[(&str, &str)]); 3] = [
    (
        "Accounts",
        &[
            ("Account_Name", "Account_Name"),
            ("Website", "Website"),
            ("Phone", "Phone"),
        ],
    ),
    (
        "Contacts",
        &[
            ("First_Name", "First_Name"),
            ("Last_Name", "Last_Name"),
            ("Email", "Email"),
            ("Phone", "Phone"),
            ("Account", "Account"),
        ],
    ),
    (
        "Products",
        &[
            ("Product_Name", "Product_Name"),
            ("Product_Code", "Product_Code"),
            ("Unit_Price", "Unit_Price"),
            ("Description", "Description"),
        ],
    ),
];

/// (CRM org, other org) of an integration, whichever side set it up.
pub(crate) async fn crm_and_other(
    store: &Store,
    i: &Integration,
    other: App,
) -> Result<(i64, i64)> {
    let to = i
        .to_org
        .ok_or_else(|| Error::internal("an integration without its second org"))?;
    let from = store
        .org(i.from_org)
        .await?
        .ok_or_else(|| Error::not_found("Org", i.from_org))?;
    if from.app()? == other {
        Ok((to, from.id))
    } else {
        Ok((from.id, to))
    }
}

/// The CRM org and the other org of an integration, read.
pub(crate) async fn crm_and_other_orgs(
    store: &Store,
    i: &Integration,
    other: App,
) -> Result<(kizuna_store::Org, kizuna_store::Org)> {
    let (crm, other) = crm_and_other(store, i, other).await?;
    let org = |id: i64| async move {
        store
            .org(id)
            .await?
            .ok_or_else(|| Error::not_found("Org", id))
    };
    Ok((org(crm).await?, org(other).await?))
}

fn field<'a>(m: &'a ModuleDef, name: &str, side: &str) -> Result<&'a FieldDef> {
    m.field(name).ok_or_else(|| {
        Error::bad_request(
            "mapping_unknown_field",
            format!("The {side} module {} has no field {name}.", m.api_name),
            format!(
                "{side} 側のモジュール {} に項目 {name} はありません。",
                m.api_name
            ),
        )
        .with_details(json!({"module": m.api_name, "field": name}))
    })
}

/// The module pair a mapped item names: the kind's only one, or the one its
/// `"module"` names.
fn module_pair<'a>(s: &'a Sides, item: &Value) -> Result<&'a ModulePair> {
    let named = item.get("module").and_then(Value::as_str);
    match (&s.modules[..], named) {
        ([only], None) => Ok(only),
        (all, named) => all
            .iter()
            .find(|m| m.name.is_some() && m.name == named)
            .ok_or_else(|| {
                let names: Vec<&str> = all.iter().filter_map(|m| m.name).collect();
                Error::new(
                    Kind::BadInput,
                    "mapping_unknown_module",
                    Text::new(
                        format!(
                            "Each mapped pair names its module (\"module\"), one of: {}; not {}.",
                            names.join(", "),
                            named.unwrap_or("none")
                        ),
                        format!(
                            "マッピングの各項目にはモジュール（\"module\"）を指定してください: {}（{} は不可）。",
                            names.join(", "),
                            named.unwrap_or("指定なし")
                        ),
                    ),
                    Text::new(
                        "Add \"module\" to each pair, as GET …/mapping shows them (its \"defaults\").",
                        "各項目に \"module\" を付けてください。GET …/mapping の \"defaults\" が例です。",
                    ),
                )
                .with_details(json!({"modules": names, "module": named}))
            }),
    }
}

/// Parses `[{"source", "target"}, …]` (with `"module"` where a kind has
/// several) and checks every pair: both fields exist, the source app can
/// provide the type, the types hold the same kind of data, a lookup points at
/// the same module on both sides, and no target is filled twice. Bad input is
/// refused whole.
pub async fn validate(store: &Store, i: &Integration, body: &Value) -> Result<Vec<Pair>> {
    let s = sides(store, i).await?;
    let items = body.as_array().ok_or_else(|| {
        Error::malformed_json("the mapping is an array of {\"source\", \"target\"}")
    })?;
    let mut out: Vec<Pair> = Vec::new();
    for item in items {
        let m = module_pair(&s, item)?;
        let source = store.module(s.source_org, m.source).await?;
        let target = store.module(s.target_org, &m.target).await?;
        let pair = validate_pair(store, &s, &source, &target, item).await?;
        if out
            .iter()
            .any(|p| p.module.as_deref() == m.name && p.target == pair.1)
        {
            return Err(Error::bad_request(
                "mapping_target_twice",
                format!("{} is filled by two mapped fields; map it once.", pair.1),
                format!(
                    "{} に 2 つの項目がマッピングされています。1 つにしてください。",
                    pair.1
                ),
            ));
        }
        out.push(Pair {
            module: m.name.map(str::to_string),
            source: pair.0,
            target: pair.1,
        });
    }
    Ok(out)
}

/// One mapped item of `source` into `target`, checked: (source, target).
async fn validate_pair(
    store: &Store,
    s: &Sides,
    source: &ModuleDef,
    target: &ModuleDef,
    item: &Value,
) -> Result<(String, String)> {
    // EVT-12: of the attendees' custom fields, only the purchase form's flow.
    let form = if source.api_name == events::ATTENDEES {
        let org = store
            .org(s.source_org)
            .await?
            .ok_or_else(|| Error::not_found("Org", s.source_org))?;
        Some(events::form_field_names(store, &org).await?)
    } else {
        None
    };
    let (Some(src), Some(dst)) = (
        item.get("source").and_then(Value::as_str),
        item.get("target").and_then(Value::as_str),
    ) else {
        return Err(Error::malformed_json(
            "each mapped pair is {\"source\": …, \"target\": …}",
        ));
    };
    let (sf, tf) = (field(source, src, "source")?, field(target, dst, "target")?);
    for (f, m) in [(sf, source), (tf, target)] {
        if !f.in_use {
            return Err(field_not_in_use(f, m));
        }
    }
    if s.unsupported.contains(&sf.field_type) || s.unsupported.contains(&tf.field_type) {
        return Err(incompatible_mapping(sf, tf, s.rule));
    }
    if let Some(form) = &form
        && sf.custom
        && !form.contains(&sf.api_name)
    {
        return Err(not_a_form_field(sf, s.source_org));
    }
    // A lookup carries a record of its module: both must point at the same
    // module, whose records the integration links.
    if !types_compatible(sf.field_type, tf.field_type)
        || (sf.field_type == FieldType::Lookup && sf.lookup_module != tf.lookup_module)
    {
        return Err(incompatible_mapping(sf, tf, "GEN-5"));
    }
    if sf.field_type == FieldType::Picklist && tf.field_type == FieldType::Picklist {
        let missing: Vec<&String> = sf
            .picklist
            .iter()
            .filter(|v| !tf.picklist.contains(v))
            .collect();
        if !missing.is_empty() {
            return Err(picklist_values_missing(sf, tf, &missing));
        }
    }
    Ok((src.to_string(), dst.to_string()))
}

pub fn to_json(pairs: &[Pair]) -> Value {
    json!(
        pairs
            .iter()
            .map(|p| match &p.module {
                Some(m) => json!({"module": m, "source": p.source, "target": p.target}),
                None => json!({"source": p.source, "target": p.target}),
            })
            .collect::<Vec<_>>()
    )
}

/// A mapped field that was marked unused: it takes no new values.
fn field_not_in_use(f: &FieldDef, m: &ModuleDef) -> Error {
    Error::bad_request(
        "mapping_field_not_in_use",
        format!(
            "{}.{} is marked unused, so it cannot be mapped.",
            m.api_name, f.api_name
        ),
        format!(
            "{}.{} は未使用に設定されているため、マッピングできません。",
            m.api_name, f.api_name
        ),
    )
    .with_rule("EVT-5")
    .with_details(json!({"module": m.api_name, "field": f.api_name}))
}

/// EVT-12: an attendee custom field that is not on the purchase form.
fn not_a_form_field(f: &FieldDef, events_org: i64) -> Error {
    Error::new(
        Kind::BadInput,
        "mapping_not_a_form_field",
        Text::new(
            format!(
                "Attendees.{} is not a field of the ticket purchase form: only the form's custom fields (ticket or buyer information) flow to the CRM.",
                f.api_name
            ),
            format!(
                "Attendees.{} はチケット購入フォームの項目ではありません。CRM に連携されるのは購入フォーム（チケット情報・購入者情報）のカスタム項目のみです。",
                f.api_name
            ),
        ),
        Text::new(
            format!(
                "Add the field to the purchase form (POST /api/v1/orgs/{events_org}/modules/Ticket_Form_Fields/records with Label, Type and Section) and map the field it makes."
            ),
            format!(
                "購入フォームに項目を追加し（POST /api/v1/orgs/{events_org}/modules/Ticket_Form_Fields/records に Label・Type・Section を指定）、作成された項目をマッピングしてください。"
            ),
        ),
    )
    .with_rule("EVT-12")
    .with_details(json!({"module": events::ATTENDEES, "field": f.api_name}))
}

/// A dropdown whose values the CRM picklist lacks: those attendees would fail.
fn picklist_values_missing(sf: &FieldDef, tf: &FieldDef, missing: &[&String]) -> Error {
    let list = missing
        .iter()
        .map(|v| v.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    Error::new(
        Kind::BadInput,
        "mapping_picklist_values",
        Text::new(
            format!(
                "{} offers values the picklist {} does not have: {list}.",
                sf.api_name, tf.api_name
            ),
            format!(
                "{} には選択リスト {} にない値があります: {list}。",
                sf.api_name, tf.api_name
            ),
        ),
        Text::new(
            format!(
                "Add {list} to the values of {} in the CRM, then map again.",
                tf.api_name
            ),
            format!(
                "CRM の {} の選択肢に {list} を追加してから、もう一度マッピングしてください。",
                tf.api_name
            ),
        ),
    )
    .with_rule("EVT-13")
    .with_details(json!({"source": sf.api_name, "target": tf.api_name, "missing": missing}))
}

/// A saved mapping that no longer fits the modules (a field removed from the
/// purchase form, marked unused, changed…): the sync stops until it is
/// mapped again or reset (EVT-5).
pub(crate) fn broken(id: i64, e: &Error) -> Error {
    Error::new(
        Kind::Conflict,
        "mapping_broken",
        Text::new(
            format!("The field mapping of integration {id} no longer fits the modules: {}", e.message.en),
            format!("連携 {id} の項目マッピングがモジュールと合わなくなりました: {}", e.message.ja),
        ),
        Text::new(
            format!("Reset the field mapping (POST /api/v1/integrations/{id}/mapping/reset) or map the fields again."),
            format!("項目マッピングをリセットする（POST /api/v1/integrations/{id}/mapping/reset）か、項目を再度マッピングしてください。"),
        ),
    )
    .with_rule("EVT-5")
    .with_details(e.to_json()["error"].clone())
}
