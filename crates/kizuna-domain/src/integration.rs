//! An integration's life (GEN-4, GEN-6, GEN-7) and field-mapping compatibility
//! (GEN-5), as pure rules.

use crate::error::{Error, Kind, Text};
use crate::field::{FieldDef, FieldType};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Where an integration is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Set up on one side; syncs nothing until the other side enables it.
    Pending,
    Active,
    /// Stopped by a person; resuming continues from where it stopped.
    Paused,
    /// Switched off; mapping, settings and associations are kept.
    Disabled,
    /// Removed with its mapping, settings and associations.
    Deleted,
}

/// What a person asks of an integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Enable,
    Pause,
    Resume,
    Disable,
    Delete,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Active => "active",
            State::Paused => "paused",
            State::Disabled => "disabled",
            State::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        [
            State::Pending,
            State::Active,
            State::Paused,
            State::Disabled,
            State::Deleted,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// Whether records flow.
    pub fn syncs(self) -> bool {
        self == State::Active
    }

    /// The state `action` leads to, or the refusal that says why not and what
    /// would work instead.
    pub fn apply(self, action: Action) -> Result<State, Error> {
        use Action as A;
        use State as S;
        let next = match (self, action) {
            (S::Pending, A::Enable) | (S::Disabled, A::Enable) => S::Active,
            (S::Active, A::Pause) => S::Paused,
            (S::Paused, A::Resume) => S::Active,
            (S::Active | S::Paused | S::Pending, A::Disable) => S::Disabled,
            (S::Deleted, _) => return Err(integration_deleted()),
            (_, A::Delete) => S::Deleted,
            (from, action) => return Err(transition_refused(from, action)),
        };
        Ok(next)
    }
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Enable => "enable",
        Action::Pause => "pause",
        Action::Resume => "resume",
        Action::Disable => "disable",
        Action::Delete => "delete",
    }
}

fn transition_refused(from: State, action: Action) -> Error {
    let (a, s) = (action_name(action), from.as_str());
    let (fix_en, fix_ja) = match (from, action) {
        (State::Active, Action::Enable) | (State::Active, Action::Resume) => (
            "Nothing to do: it is already active.".to_string(),
            "対応は不要です。既に有効です。".to_string(),
        ),
        (State::Paused, Action::Enable) => (
            "Resume it instead (POST …/resume).".to_string(),
            "代わりに再開してください（POST …/resume）。".to_string(),
        ),
        (State::Disabled, Action::Resume) => (
            "Enable it instead (POST …/enable): a disabled integration is switched on again by enabling it.".to_string(),
            "代わりに有効化してください（POST …/enable）。無効化された連携は有効化で再開します。".to_string(),
        ),
        (State::Pending, _) => (
            "The other side must enable it first (POST …/enable by an administrator of the other org).".to_string(),
            "先に相手側で有効化が必要です（相手組織の管理者が POST …/enable を実行）。".to_string(),
        ),
        _ => (
            format!("An integration that is {s} cannot be asked to {a}."),
            format!("状態が {s} の連携に対して {a} は実行できません。"),
        ),
    };
    Error::new(
        Kind::Conflict,
        "integration_state",
        Text::new(
            format!("The integration is {s}; it cannot {a} now."),
            format!("連携は現在 {s} のため、{a} できません。"),
        ),
        Text::new(fix_en, fix_ja),
    )
    .with_rule(match action {
        Action::Pause | Action::Resume => "GEN-6",
        Action::Enable => "GEN-4",
        _ => "GEN-7",
    })
    .with_details(json!({"state": s, "action": a}))
}

fn integration_deleted() -> Error {
    Error::new(
        Kind::Conflict,
        "integration_deleted",
        Text::new(
            "The integration was deleted: its mapping, settings and record associations are gone and nothing more syncs.",
            "この連携は削除されています。マッピング・設定・レコードの関連付けは削除され、同期は行われません。",
        ),
        Text::new(
            "Set up a new integration if you want the two orgs connected again.",
            "再び接続するには、新しく連携を設定してください。",
        ),
    )
    .with_rule("GEN-7")
}

/// Whether values of field type `a` can flow into a field of type `b` (GEN-5):
/// the same kind of data only. Text-like fields carry text; a picklist maps
/// to a picklist (the other app's dropdown); numbers to numbers of the same
/// kind; dates to dates.
pub fn types_compatible(a: FieldType, b: FieldType) -> bool {
    use FieldType as T;
    let kind = |t: FieldType| match t {
        T::Text | T::Textarea => "text",
        T::Email => "email",
        T::Phone => "phone",
        T::Url => "url",
        T::Picklist => "picklist",
        T::Multiselect => "multiselect",
        T::Date => "date",
        T::Datetime => "datetime",
        T::Integer => "integer",
        T::Decimal | T::Percent => "decimal",
        T::Currency => "currency",
        T::Boolean => "boolean",
        T::Lookup => "lookup",
        T::File => "file",
    };
    kind(a) == kind(b)
}

/// GEN-5's refusal: names both fields and both types.
pub fn incompatible_mapping(source: &FieldDef, target: &FieldDef, rule: &'static str) -> Error {
    let (s, t) = (&source.api_name, &target.api_name);
    let (st, tt) = (source.field_type.as_str(), target.field_type.as_str());
    Error::new(
        Kind::BadInput,
        "mapping_incompatible",
        Text::new(
            format!("{s} ({st}) cannot be mapped to {t} ({tt}): mapped fields must hold the same kind of data."),
            format!("{s}（{st}）は {t}（{tt}）にマッピングできません。同じ種類のデータを持つ項目同士のみマッピングできます。"),
        ),
        Text::new(
            format!("Map {s} to a {st} field, or reset the mapping to its defaults (POST …/mapping/reset)."),
            format!("{s} を {st} 型の項目にマッピングするか、マッピングを既定に戻してください（POST …/mapping/reset）。"),
        ),
    )
    .with_rule(rule)
    .with_details(json!({"source": {"field": s, "type": st}, "target": {"field": t, "type": tt}}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gen_4_pending_syncs_nothing_until_enabled() {
        assert!(!State::Pending.syncs());
        assert_eq!(State::Pending.apply(Action::Enable), Ok(State::Active));
        let e = State::Pending
            .apply(Action::Pause)
            .expect_err("pending cannot pause");
        assert!(e.fix.en.contains("other side"));
    }

    #[test]
    fn gen_6_pause_and_resume() {
        assert_eq!(State::Active.apply(Action::Pause), Ok(State::Paused));
        assert!(!State::Paused.syncs());
        assert_eq!(State::Paused.apply(Action::Resume), Ok(State::Active));
        let e = State::Active
            .apply(Action::Resume)
            .expect_err("already active");
        assert_eq!(e.rule, Some("GEN-6"));
    }

    #[test]
    fn gen_7_disable_is_temporary_delete_is_final() {
        assert_eq!(State::Active.apply(Action::Disable), Ok(State::Disabled));
        assert_eq!(State::Disabled.apply(Action::Enable), Ok(State::Active));
        let e = State::Disabled
            .apply(Action::Resume)
            .expect_err("enable, not resume");
        assert!(e.fix.en.contains("enable"));
        assert_eq!(State::Disabled.apply(Action::Delete), Ok(State::Deleted));
        let e = State::Deleted
            .apply(Action::Enable)
            .expect_err("deleted is final");
        assert_eq!(e.code, "integration_deleted");
        assert!(!e.message.ja.is_empty());
    }

    #[test]
    fn gen_5_only_the_same_kind_of_data_maps() {
        use FieldType as T;
        assert!(types_compatible(T::Text, T::Textarea));
        assert!(types_compatible(T::Picklist, T::Picklist));
        assert!(!types_compatible(T::Text, T::Picklist));
        assert!(!types_compatible(T::Currency, T::Decimal));
        let e = incompatible_mapping(
            &FieldDef::new("Shirt_Size", T::Picklist),
            &FieldDef::new("Notes", T::Integer),
            "GEN-5",
        );
        assert_eq!(e.status(), 400);
        for needle in ["Shirt_Size", "picklist", "Notes", "integer"] {
            assert!(e.message.en.contains(needle), "{needle}");
            assert!(e.message.ja.contains(needle), "{needle}");
        }
    }
}
