//! Three-way merge of a linked pair: the values both sides agreed on at the
//! last sync (the base), and each side's values now. A field changed on one
//! side flows to the other; the same field changed differently on both is a
//! conflict, settled by the integration's policy and always reported — never
//! by whichever write came last.

use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// Who wins when the same field changed differently on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    CrmWins,
    OtherWins,
    /// Change neither side; a person decides.
    Hold,
}

impl Policy {
    pub fn parse(s: Option<&str>) -> Policy {
        match s {
            Some("desk_wins") | Some("events_wins") => Policy::OtherWins,
            Some("hold") => Policy::Hold,
            _ => Policy::CrmWins,
        }
    }
}

/// A field changed differently on both sides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conflict {
    pub field: String,
    pub base: Value,
    pub crm: Value,
    pub other: Value,
    pub policy: Policy,
}

/// What to write on each side, and the new base.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Merge {
    pub crm_changes: Map<String, Value>,
    pub other_changes: Map<String, Value>,
    pub agreed: Map<String, Value>,
    pub conflicts: Vec<Conflict>,
}

fn get<'a>(m: &'a Map<String, Value>, k: &str) -> &'a Value {
    m.get(k).unwrap_or(&Value::Null)
}

/// Merges field by field over the keys of all three maps (values in CRM
/// terms; a missing key is `null`). One-way links (`two_way` false) never
/// write the other side: a CRM-only change stays in the CRM, and a conflict
/// the CRM wins is recorded once, until the other side changes again.
pub fn merge(
    base: &Map<String, Value>,
    crm: &Map<String, Value>,
    other: &Map<String, Value>,
    policy: Policy,
    two_way: bool,
) -> Merge {
    let keys: BTreeSet<&String> = base.keys().chain(crm.keys()).chain(other.keys()).collect();
    let mut out = Merge::default();
    for k in keys {
        let (b, c, o) = (get(base, k), get(crm, k), get(other, k));
        let agreed = if c == o {
            c.clone()
        } else if c == b {
            out.crm_changes.insert(k.clone(), o.clone());
            o.clone()
        } else if o == b {
            if two_way {
                out.other_changes.insert(k.clone(), c.clone());
                c.clone()
            } else {
                b.clone()
            }
        } else {
            out.conflicts.push(Conflict {
                field: k.clone(),
                base: b.clone(),
                crm: c.clone(),
                other: o.clone(),
                policy,
            });
            match policy {
                Policy::CrmWins if two_way => {
                    out.other_changes.insert(k.clone(), c.clone());
                    c.clone()
                }
                Policy::CrmWins => o.clone(),
                Policy::OtherWins => {
                    out.crm_changes.insert(k.clone(), o.clone());
                    o.clone()
                }
                Policy::Hold => b.clone(),
            }
        };
        if !agreed.is_null() {
            out.agreed.insert(k.clone(), agreed);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kizuna_testkit::values as m;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn one_side_changes_flow_and_different_fields_merge() {
        let base = m(json!({"a": 1, "b": 1}));
        let crm = m(json!({"a": 2, "b": 1}));
        let other = m(json!({"a": 1, "b": 3}));
        let r = merge(&base, &crm, &other, Policy::Hold, true);
        assert_eq!(r.crm_changes, m(json!({"b": 3})));
        assert_eq!(r.other_changes, m(json!({"a": 2})));
        assert_eq!(r.agreed, m(json!({"a": 2, "b": 3})));
        assert!(r.conflicts.is_empty());
    }

    #[test]
    fn same_field_on_both_sides_follows_the_policy_and_is_reported() {
        let base = m(json!({"a": 1}));
        let crm = m(json!({"a": 2}));
        let other = m(json!({"a": 3}));
        let crm_wins = merge(&base, &crm, &other, Policy::CrmWins, true);
        assert_eq!(crm_wins.other_changes, m(json!({"a": 2})));
        assert_eq!(crm_wins.conflicts.len(), 1);
        assert_eq!(crm_wins.conflicts[0].crm, json!(2));
        assert_eq!(crm_wins.conflicts[0].other, json!(3));
        let other_wins = merge(&base, &crm, &other, Policy::OtherWins, true);
        assert_eq!(other_wins.crm_changes, m(json!({"a": 3})));
        let hold = merge(&base, &crm, &other, Policy::Hold, true);
        assert!(hold.crm_changes.is_empty() && hold.other_changes.is_empty());
        assert_eq!(hold.agreed, base);
    }

    #[test]
    fn one_way_never_writes_the_other_side() {
        let base = m(json!({"a": 1}));
        let crm = m(json!({"a": 2}));
        let r = merge(&base, &crm, &base, Policy::CrmWins, false);
        assert!(r.other_changes.is_empty() && r.crm_changes.is_empty());
        assert_eq!(r.agreed, base, "the CRM's own edit is kept, the base stays");
    }

    fn small_map() -> impl Strategy<Value = Map<String, Value>> {
        proptest::collection::btree_map("[abc]", 0i64..3, 0..3)
            .prop_map(|b| b.into_iter().map(|(k, v)| (k, json!(v))).collect())
    }

    proptest! {
        /// After applying a two-way merge without conflicts held, both sides
        /// hold the agreed values, and merging again changes nothing (no echo).
        #[test]
        fn two_way_merge_converges_and_is_idempotent(
            base in small_map(), crm in small_map(), other in small_map(),
        ) {
            let r = merge(&base, &crm, &other, Policy::CrmWins, true);
            let apply = |side: &Map<String, Value>, changes: &Map<String, Value>| {
                let mut s = side.clone();
                for (k, v) in changes {
                    if v.is_null() { s.remove(k); } else { s.insert(k.clone(), v.clone()); }
                }
                s
            };
            let crm2 = apply(&crm, &r.crm_changes);
            let other2 = apply(&other, &r.other_changes);
            prop_assert_eq!(&crm2, &r.agreed);
            prop_assert_eq!(&other2, &r.agreed);
            let again = merge(&r.agreed, &crm2, &other2, Policy::CrmWins, true);
            prop_assert!(again.crm_changes.is_empty() && again.other_changes.is_empty());
            prop_assert!(again.conflicts.is_empty());
        }
    }
}
