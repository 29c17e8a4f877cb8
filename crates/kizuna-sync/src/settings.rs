//! An integration's settings, checked per kind before anything is saved.

use kizuna_domain::{Error, IntegrationKind, Result};
use serde_json::{Map, Value};

/// One setting: its name and the values it takes.
struct Setting {
    name: &'static str,
    values: &'static [&'static str],
}

/// A setting that takes a list of module names rather than one value.
const MODULE_LISTS: &[(IntegrationKind, &str)] = &[
    // DSK-6: the custom CRM modules that get the Desk_Tickets related list.
    (IntegrationKind::CrmDesk, "related_lists"),
];

/// The settings a kind has (EVT-8: where attendees go, and which attendee
/// status makes them flow).
fn known(kind: IntegrationKind) -> &'static [Setting] {
    match kind {
        IntegrationKind::CrmEvents => &[
            Setting {
                name: "target_module",
                values: &["Leads", "Contacts"],
            },
            Setting {
                name: "trigger_status",
                values: &["registered", "confirmed", "attended"],
            },
            // The same field changed on both sides of an event and its Campaign.
            Setting {
                name: "conflict_policy",
                values: &["crm_wins", "events_wins", "hold"],
            },
        ],
        IntegrationKind::CrmDesk => &[
            // DSK-13: the same field changed on both sides of a linked pair.
            Setting {
                name: "conflict_policy",
                values: &["crm_wins", "desk_wins", "hold"],
            },
            // DSK-12: what a delete in the CRM does to the Desk twin …
            Setting {
                name: "on_crm_delete",
                values: &["delete", "unlink"],
            },
            // … and a delete in Desk to the CRM twin.
            Setting {
                name: "on_desk_delete",
                values: &["unlink", "delete"],
            },
        ],
        _ => &[],
    }
}

/// The settings of a kind that take one of a few values, each with its
/// values, the default first — what a settings form offers.
pub fn choices(kind: IntegrationKind) -> Vec<(&'static str, &'static [&'static str])> {
    known(kind).iter().map(|s| (s.name, s.values)).collect()
}

/// The module names a list setting holds, or why it is refused.
fn module_list(name: &str, value: &Value) -> Result<Value> {
    let names = value.as_array().filter(|a| {
        a.iter()
            .all(|v| v.as_str().is_some_and(|s| !s.is_empty() && s.len() <= 64))
    });
    match names {
        Some(a) if a.len() <= 50 => Ok(value.clone()),
        _ => Err(Error::bad_request(
            "invalid_setting",
            format!("{name} takes a list of module names (at most 50); not {value}."),
            format!(
                "{name} にはモジュール名のリスト（50 件まで）を指定してください（{value} は不可）。"
            ),
        )),
    }
}

/// Merges `changes` into `current` after checking every entry; bad input
/// changes nothing.
pub fn merge(kind: IntegrationKind, current: &Value, changes: &Value) -> Result<Value> {
    let changes = changes
        .as_object()
        .ok_or_else(|| Error::malformed_json("the settings are a JSON object"))?;
    let mut merged: Map<String, Value> = current.as_object().cloned().unwrap_or_default();
    let settings = known(kind);
    let lists: Vec<&str> = MODULE_LISTS
        .iter()
        .filter(|(k, _)| *k == kind)
        .map(|(_, n)| *n)
        .collect();
    for (name, value) in changes {
        if lists.contains(&name.as_str()) {
            merged.insert(name.clone(), module_list(name, value)?);
            continue;
        }
        let Some(setting) = settings.iter().find(|s| s.name == name) else {
            let names: Vec<&str> = settings
                .iter()
                .map(|s| s.name)
                .chain(lists.iter().copied())
                .collect();
            return Err(Error::bad_request(
                "unknown_setting",
                format!(
                    "{} integrations have no setting {name}; their settings are: {}.",
                    kind.as_str(),
                    if names.is_empty() {
                        "none yet".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
                format!(
                    "{} 連携に設定 {name} はありません。設定項目: {}。",
                    kind.as_str(),
                    if names.is_empty() {
                        "まだありません".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            ));
        };
        match value.as_str() {
            Some(v) if setting.values.contains(&v) => {
                merged.insert(name.clone(), value.clone());
            }
            _ => {
                let allowed = setting.values.join(", ");
                return Err(Error::bad_request(
                    "invalid_setting",
                    format!("{name} takes one of: {allowed}; not {value}."),
                    format!(
                        "{name} には次のいずれかを指定してください: {allowed}（{value} は不可）。"
                    ),
                ));
            }
        }
    }
    Ok(Value::Object(merged))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn evt_8_attendees_go_to_leads_or_contacts() {
        let k = IntegrationKind::CrmEvents;
        let merged = merge(
            k,
            &json!({"target_module": "Leads"}),
            &json!({"target_module": "Contacts"}),
        )
        .expect("valid");
        assert_eq!(merged["target_module"], "Contacts");
        let e = merge(k, &json!({}), &json!({"target_module": "Deals"})).expect_err("not a target");
        assert_eq!(e.code, "invalid_setting");
        assert!(e.message.en.contains("Leads, Contacts"));
        let e = merge(k, &json!({}), &json!({"colour": "red"})).expect_err("unknown");
        assert_eq!(e.code, "unknown_setting");
        assert!(e.message.ja.contains("target_module"));
    }
}
