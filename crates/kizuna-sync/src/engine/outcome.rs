//! What one chunk of a run did: its counts, and an item with the reason for
//! every record it did not simply write (GEN-8).

use super::merge::Conflict;
use kizuna_domain::{Error, Kind, Text};
use kizuna_store::{Counts, Item, Json};
use serde_json::json;

#[derive(Debug, Default)]
pub struct Outcome {
    pub counts: Counts,
    pub items: Vec<Item>,
}

/// A record of one app: (module, id).
pub type At<'a> = (&'a str, i64);

impl Outcome {
    fn push(&mut self, outcome: &str, reason: &Error, source: At, target: Option<At>) {
        let mut details = json!({"fix": reason.fix});
        if !reason.details.is_null() {
            details["cause"] = reason.details.clone();
        }
        self.items.push(Item {
            id: 0,
            run_id: 0,
            outcome: outcome.to_string(),
            code: reason.code.to_string(),
            rule: reason.rule.map(str::to_string),
            message: Json(json!(reason.message)),
            source_module: source.0.to_string(),
            source_id: source.1,
            target_module: target.map(|t| t.0.to_string()),
            target_id: target.map(|t| t.1),
            details: Json(details),
        });
    }

    /// A record that could not be written; the run goes on.
    pub fn fail(&mut self, reason: &Error, source: At, target: Option<At>) {
        self.counts.failed += 1;
        self.push("failed", reason, source, target);
    }

    /// A record deliberately not written.
    pub fn skip(&mut self, reason: &Error, source: At, target: Option<At>) {
        self.counts.skipped += 1;
        self.push("skipped", reason, source, target);
    }

    /// A record tied to one that already existed instead of adding one.
    pub fn link(&mut self, reason: &Error, source: At, target: At) {
        self.counts.linked += 1;
        self.push("linked", reason, source, Some(target));
    }

    /// Something the history must say about a record that was written.
    pub fn notice(&mut self, reason: &Error, source: At, target: Option<At>) {
        self.push("notice", reason, source, target);
    }

    /// Fields changed differently on both sides, and how the policy settled
    /// them, with every value; `rule` is the one the integration follows.
    pub fn conflicts(
        &mut self,
        conflicts: &[Conflict],
        source: At,
        target: At,
        rule: Option<&'static str>,
    ) {
        for c in conflicts {
            let settled = match c.policy {
                super::merge::Policy::CrmWins => {
                    ("the CRM's value was kept", "CRM の値を残しました")
                }
                super::merge::Policy::OtherWins => (
                    "the other app's value was taken",
                    "連携先アプリの値を採用しました",
                ),
                super::merge::Policy::Hold => (
                    "neither side was changed; it waits for a person to decide",
                    "どちらも変更せず、担当者の判断を待っています",
                ),
            };
            let reason = Error::new(
                Kind::Conflict,
                "sync_conflict",
                Text::new(
                    format!(
                        "{} changed on both sides since the last sync ({} in the CRM, {} in the other app); {}.",
                        c.field, c.crm, c.other, settled.0
                    ),
                    format!(
                        "{} が前回の同期以降に両方で変更されました（CRM: {}、連携先: {}）。{}。",
                        c.field, c.crm, c.other, settled.1
                    ),
                ),
                Text::new(
                    "Change the integration's conflict_policy setting to decide differently next time, or set the value by hand.",
                    "次回の扱いを変えるには連携の conflict_policy 設定を変更するか、値を手で設定してください。",
                ),
            )
            .with_details(json!(c));
            let reason = match rule {
                Some(r) => reason.with_rule(r),
                None => reason,
            };
            self.push("conflict", &reason, source, Some(target));
        }
    }

    pub fn add(&mut self, other: Outcome) {
        self.counts.add(other.counts);
        self.items.extend(other.items);
    }
}
