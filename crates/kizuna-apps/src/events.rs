//! The Events app's own rule for its ticket purchase form (EVT-12): a field
//! added to the form (a `Ticket_Form_Fields` record) is a custom field of
//! `Attendees`, created with the record in one transaction. Only those
//! fields are the form's; a custom field added to Attendees any other way is
//! not, and does not flow to the CRM.

use crate::admin::custom_field;
use kizuna_domain::field::{FieldDef, FieldType, ModuleDef};
use kizuna_domain::{Error, Result};
use kizuna_store::{ListQuery, Org, Origin, Record, Store};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

pub const FORM_FIELDS: &str = "Ticket_Form_Fields";
pub const ATTENDEES: &str = "Attendees";

/// The kinds of field the purchase form offers.
pub const FORM_FIELD_TYPES: &[&str] = &["text", "dropdown", "date", "email", "phone"];

/// Fields of a form field that define the Attendees field: fixed once made.
const FIXED: [&str; 3] = ["Type", "Options", "Field_Name"];

/// Whether a create or update of `module` in `org` goes through this rule.
pub fn is_form(org: &Org, module: &str) -> bool {
    org.app().ok() == Some(kizuna_domain::App::Events) && module == FORM_FIELDS
}

/// Creates form fields (already validated against `Ticket_Form_Fields`): each
/// adds its Attendees field, and all commit together or not at all.
pub async fn create_form_fields(
    store: &Store,
    org: &Org,
    form: &ModuleDef,
    mut rows: Vec<Map<String, Value>>,
    origin: Origin,
) -> Result<Vec<Record>> {
    let attendees = store.module(org.id, ATTENDEES).await?;
    let mut taken: BTreeSet<String> = attendees
        .fields
        .iter()
        .map(|f| f.api_name.to_lowercase())
        .collect();
    let mut defs = Vec::with_capacity(rows.len());
    for row in &mut rows {
        let def = custom_field(&attendees, field_of(row, &taken)?)?;
        if !taken.insert(def.api_name.to_lowercase()) {
            return Err(Error::already_exists(
                "Field",
                &format!("{ATTENDEES}.{}", def.api_name),
            ));
        }
        row.insert("Field_Name".into(), json!(def.api_name));
        defs.push(def);
    }
    let mut tx = store.begin().await?;
    for def in &defs {
        store.add_field_in(&mut tx, org.id, ATTENDEES, def).await?;
    }
    let made = store
        .create_records_in(&mut tx, org.id, form, rows, origin)
        .await?;
    tx.commit().await?;
    Ok(made)
}

/// Refuses an edit of what defines a form field's Attendees field.
pub fn check_form_field_update(fields: &Map<String, Value>) -> Result<()> {
    match FIXED.iter().find(|k| fields.contains_key(**k)) {
        None => Ok(()),
        Some(k) => Err(Error::bad_request(
            "form_field_fixed",
            format!(
                "{k} of a purchase-form field cannot change: it defines the Attendees field the form field made."
            ),
            format!(
                "購入フォーム項目の {k} は変更できません。フォーム項目が作成した参加者の項目を定義しているためです。"
            ),
        )
        .with_rule("EVT-12")
        .with_details(json!({"field": k}))),
    }
}

/// The Attendees fields that are on the purchase form now (its records that
/// are not deleted), by API name.
pub async fn form_field_names(store: &Store, events_org: &Org) -> Result<BTreeSet<String>> {
    let form = store.module_of(events_org, FORM_FIELDS).await?;
    let mut names = BTreeSet::new();
    let mut q = ListQuery {
        limit: 1000,
        ..ListQuery::default()
    };
    loop {
        let page = store.list_records(events_org.id, &form, &q).await?;
        names.extend(
            page.records
                .iter()
                .filter_map(|r| r.fields.get("Field_Name").and_then(Value::as_str))
                .map(str::to_string),
        );
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return Ok(names),
        }
    }
}

/// The Attendees field a form-field record asks for.
fn field_of(row: &Map<String, Value>, taken: &BTreeSet<String>) -> Result<FieldDef> {
    let text = |k: &str| row.get(k).and_then(Value::as_str).unwrap_or_default();
    let label = text("Label").trim().to_string();
    let field_type = match text("Type") {
        "text" => FieldType::Text,
        "dropdown" => FieldType::Picklist,
        "date" => FieldType::Date,
        "email" => FieldType::Email,
        "phone" => FieldType::Phone,
        other => {
            return Err(Error::bad_request(
                "form_field_type",
                format!(
                    "A purchase-form field cannot be of type {other}: the form offers {}.",
                    FORM_FIELD_TYPES.join(", ")
                ),
                format!(
                    "購入フォーム項目の種類に {other} は使えません。使える種類: {}。",
                    FORM_FIELD_TYPES.join("、")
                ),
            )
            .with_rule("EVT-13"));
        }
    };
    let api_name = match text("Field_Name") {
        "" => derived_name(&label, taken),
        given => given.to_string(),
    };
    let mut def = FieldDef::new(&api_name, field_type);
    def.label = label;
    if field_type == FieldType::Picklist {
        def.picklist = text("Options")
            .lines()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect();
    }
    Ok(def)
}

/// `Form_<label in ASCII words>`, or `Form_Field_<n>` for a label with no
/// ASCII letters (a Japanese label), never one already taken.
fn derived_name(label: &str, taken: &BTreeSet<String>) -> String {
    let words: Vec<String> = label
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    let base: String = format!("Form_{}", words.join("_"))
        .chars()
        .take(56)
        .collect();
    let free = |name: &str| !taken.contains(&name.to_lowercase());
    if !words.is_empty() && free(&base) {
        return base;
    }
    let stem = if words.is_empty() {
        "Form_Field"
    } else {
        &base
    };
    (1..)
        .map(|n| format!("{stem}_{n}"))
        .find(|name| free(name))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evt_12_form_field_names_come_from_the_label_and_never_collide() {
        let mut taken = BTreeSet::new();
        assert_eq!(derived_name("dietary needs", &taken), "Form_Dietary_Needs");
        taken.insert("form_dietary_needs".to_string());
        assert_eq!(
            derived_name("Dietary needs", &taken),
            "Form_Dietary_Needs_1"
        );
        assert_eq!(derived_name("食事の希望", &taken), "Form_Field_1");
        taken.insert("form_field_1".to_string());
        assert_eq!(derived_name("アレルギー", &taken), "Form_Field_2");
    }
}
