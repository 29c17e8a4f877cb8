//! What administrators set up: orgs with their app's standard modules, and
//! custom modules and fields.

use crate::catalog::standard_modules;
use crate::records::RESERVED;
use kizuna_domain::field::{FieldDef, FieldType, ModuleDef, is_valid_api_name};
use kizuna_domain::{App, Error, Result};
use kizuna_store::{Org, Store, User};

/// Creates an org of `app` with its standard modules, `admin` as administrator.
pub async fn create_org(
    store: &Store,
    app: App,
    name: &str,
    plan: &str,
    admin: &User,
) -> Result<Org> {
    store
        .create_org(app, name, plan, admin, &standard_modules(app))
        .await
}

/// The most characters a text-like custom field may hold.
fn type_cap(t: FieldType) -> u32 {
    if t == FieldType::Textarea { 32000 } else { 255 }
}

/// Gives every org the standard modules its app gained since the org was
/// created (CRM Products came with CRM ⇄ Desk, DSK-14), with their
/// standard fields, and the standard fields its modules gained (CRM Events'
/// Participants came with the mail connector, MAIL-5); a field of that name
/// already there, standard or custom, is left as it is — but for a standard
/// one without a Japanese label, which gets the catalog's. Returns how many
/// modules and fields were added. Run when a data directory or database is
/// opened, so an upgraded server has them.
pub async fn add_missing_standard_modules(store: &Store) -> Result<u64> {
    let mut added = 0;
    for org in store.all_orgs().await? {
        let have = store.modules(org.id).await?;
        for m in standard_modules(org.app()?) {
            match have
                .iter()
                .find(|h| h.api_name.eq_ignore_ascii_case(&m.api_name))
            {
                // A standard field the module gained since (CRM Events'
                // Participants) is appended to it; one without the Japanese
                // label it has now gets it.
                Some(h) => {
                    for f in &m.fields {
                        match h.field(&f.api_name) {
                            None => {
                                store.add_field(org.id, &h.api_name, f).await?;
                                added += 1;
                            }
                            // Only where the field is as the catalog made it
                            // (its English label untouched): a label an
                            // administrator changed is theirs.
                            Some(have)
                                if have.label_ja.is_empty()
                                    && have.label == f.label
                                    && !f.label_ja.is_empty()
                                    && !have.custom =>
                            {
                                let change = kizuna_store::FieldChange {
                                    label_ja: Some(&f.label_ja),
                                    ..Default::default()
                                };
                                store
                                    .change_field(org.id, &h.api_name, &f.api_name, &change)
                                    .await?;
                            }
                            Some(_) => {}
                        }
                    }
                }
                None => {
                    store.add_module(org.id, &m).await?;
                    added += 1;
                }
            }
        }
    }
    Ok(added)
}

/// Most custom fields a module may start with.
const MAX_MODULE_FIELDS: usize = 200;

/// Checks and adds a custom module (its name, labels and fields) to the org:
/// all of it, or nothing.
pub async fn add_custom_module(store: &Store, org_id: i64, module: ModuleDef) -> Result<ModuleDef> {
    let name = module.api_name.clone();
    if !is_valid_api_name(&name) {
        return Err(Error::bad_request(
            "invalid_api_name",
            format!(
                "\"{name}\" cannot be a module's API name: use letters, digits and underscores, starting with a letter (at most 64)."
            ),
            format!(
                "「{name}」はモジュールの API 名にできません。英字で始まる英数字とアンダースコア（64 文字以内）を使ってください。"
            ),
        ));
    }
    if module.fields.len() > MAX_MODULE_FIELDS {
        return Err(Error::bad_request(
            "too_many_fields",
            format!("A new module takes at most {MAX_MODULE_FIELDS} fields; add more later."),
            format!(
                "新しいモジュールの項目は {MAX_MODULE_FIELDS} 個までです。残りは後から追加してください。"
            ),
        ));
    }
    let mut checked = ModuleDef {
        label: if module.label.trim().is_empty() {
            name.replace('_', " ")
        } else {
            module.label.clone()
        },
        label_ja: if module.label_ja.trim().is_empty() {
            name.replace('_', " ")
        } else {
            module.label_ja.clone()
        },
        enabled: true,
        fields: Vec::new(),
        api_name: name.clone(),
    };
    let existing = store.modules(org_id).await?;
    for field in module.fields {
        let field = custom_field(&checked, field)?;
        if let Some(target) = &field.lookup_module
            && *target != name
            && !existing.iter().any(|m| &m.api_name == target)
        {
            return Err(Error::not_found("Module", target));
        }
        checked.fields.push(field);
    }
    store.add_module(org_id, &checked).await?;
    Ok(checked)
}

/// Checks and adds a custom field to a module of the org.
pub async fn add_custom_field(
    store: &Store,
    org_id: i64,
    module: &str,
    field: FieldDef,
) -> Result<FieldDef> {
    let m = store.module(org_id, module).await?;
    let field = custom_field(&m, field)?;
    if let Some(target) = &field.lookup_module {
        store.module(org_id, target).await?;
    }
    store.add_field(org_id, module, &field).await?;
    Ok(field)
}

/// A custom field for module `m`, checked and completed (length cap, label,
/// flags), or the refusal naming what is wrong. Writes nothing.
pub fn custom_field(m: &ModuleDef, mut field: FieldDef) -> Result<FieldDef> {
    let module = &m.api_name;
    let name = field.api_name.clone();
    if !is_valid_api_name(&name) || RESERVED.contains(&name.as_str()) {
        return Err(Error::bad_request(
            "invalid_api_name",
            format!(
                "\"{name}\" cannot be a field's API name: use letters, digits and underscores, starting with a letter (at most 64), and not limit, cursor, sort or order."
            ),
            format!(
                "「{name}」は項目の API 名にできません。英字で始まる英数字とアンダースコア（64 文字以内）を使い、limit, cursor, sort, order 以外にしてください。"
            ),
        ));
    }
    if m.field(&name).is_some() {
        return Err(Error::already_exists("Field", &format!("{module}.{name}")));
    }
    let t = field.field_type;
    if t.is_textual() {
        let max = field.max_length.unwrap_or(type_cap(t));
        if max == 0 || max > type_cap(t) {
            return Err(Error::bad_request(
                "invalid_max_length",
                format!(
                    "{name}: max_length must be from 1 to {} for a {} field.",
                    type_cap(t),
                    t.as_str()
                ),
                format!(
                    "{name}: {} 型の max_length は 1〜{} にしてください。",
                    t.as_str(),
                    type_cap(t)
                ),
            ));
        }
        field.max_length = Some(max);
    } else {
        field.max_length = None;
    }
    if matches!(t, FieldType::Picklist | FieldType::Multiselect) && field.picklist.is_empty() {
        return Err(Error::bad_request(
            "picklist_empty",
            format!(
                "{name}: a {} field needs its list of values (picklist).",
                t.as_str()
            ),
            format!(
                "{name}: {} 型の項目には選択肢（picklist）が必要です。",
                t.as_str()
            ),
        ));
    }
    if t == FieldType::Lookup {
        field.lookup_module = Some(field.lookup_module.unwrap_or_default());
    } else {
        field.lookup_module = None;
    }
    if field.label.trim().is_empty() {
        field.label = name.replace('_', " ");
    }
    field.custom = true;
    field.in_use = true;
    Ok(field)
}
