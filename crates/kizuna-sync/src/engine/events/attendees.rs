//! Attendees into Leads or Contacts: new ones added or tied to the record
//! holding their e-mail (EVT-7, EVT-8), linked ones merged, those no longer
//! synced taken back; each associated with its event's Campaign (EVT-9).

use super::reasons::*;
use super::*;
use crate::engine::merge::merge;
use crate::engine::twins::twin_gone;
use kizuna_store::EmailHolder;

impl Writer<'_, '_> {
    pub(super) async fn attendees_changed(&mut self, ids: &[i64]) -> Result<()> {
        let p = self.plan;
        let attendees = by_id(
            self.store
                .records_in(self.tx, p.events.id, "Attendees", ids)
                .await?,
        );
        let links = self.links_by(ATTENDEE, LinkSide::Other, ids).await?;
        let event_ids: Vec<i64> = attendees
            .values()
            .filter_map(|a| a.fields.get("Event").and_then(Value::as_i64))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let campaigns = self.campaigns_of(&event_ids).await?;
        let campaign_of = |a: &Record| {
            a.fields
                .get("Event")
                .and_then(Value::as_i64)
                .and_then(|e| campaigns.get(&e).copied())
        };
        let crm_ids: Vec<i64> = links.values().map(|l| l.crm_id).collect();
        let mut crm = by_id(
            self.store
                .records_in(self.tx, p.crm.id, "Leads", &crm_ids)
                .await?,
        );
        crm.extend(by_id(
            self.store
                .records_in(self.tx, p.crm.id, "Contacts", &crm_ids)
                .await?,
        ));

        let mut fresh: Vec<&Record> = Vec::new();
        let mut associate: Vec<(i64, i64, String)> = Vec::new();
        for id in ids {
            let a = attendees.get(id).filter(|a| a.deleted_at.is_none());
            let wanted = a.filter(|a| p.triggered(a));
            match (links.get(id), wanted) {
                (None, Some(a)) => fresh.push(a),
                (None, None) => {
                    if let Some(a) = a {
                        self.out
                            .skip(&status_not_synced(a, p.trigger), ("Attendees", a.id), None);
                    }
                }
                (Some(l), None) => {
                    let campaign = attendees.get(id).and_then(campaign_of);
                    self.unlink(l, crm.get(&l.crm_id), campaign).await?;
                }
                (Some(l), Some(a)) => {
                    let Some(r) = crm.get(&l.crm_id).filter(|r| r.deleted_at.is_none()) else {
                        self.out.skip(
                            &twin_gone(&p.target.api_name, l.crm_id, "Attendees", a.id),
                            ("Attendees", a.id),
                            Some((&p.target.api_name, l.crm_id)),
                        );
                        continue;
                    };
                    if let Some(c) = campaign_of(a) {
                        associate.push((r.id, c, r.module.clone()));
                    }
                    self.update_linked(l, a, r).await?;
                }
            }
        }
        self.add_fresh(&fresh, &campaign_of, &mut associate).await?;
        let mut by_name: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
        for (r, c, module) in associate {
            by_name
                .entry(association_name("Campaigns", &module))
                .or_default()
                .push((r, c));
        }
        for (name, pairs) in by_name {
            self.store
                .associate_in(self.tx, p.crm.id, &pairs, &name)
                .await?;
        }
        Ok(())
    }

    /// A linked attendee changed: one-way three-way merge into the record the
    /// link created. A record that existed before (EVT-7) belongs to the CRM
    /// and is not changed.
    async fn update_linked(&mut self, l: &Link, a: &Record, r: &Record) -> Result<()> {
        let p = self.plan;
        let mut link = l.clone();
        link.other_version = a.version;
        if l.how == "created" {
            let module = p.crm_module(&r.module);
            let values = match validate_fields(module, &p.mapped(a), Mode::Update) {
                Ok(v) => v,
                Err(err) => {
                    self.out
                        .fail(&err, ("Attendees", a.id), Some((&r.module, r.id)));
                    return Ok(());
                }
            };
            let current: Map<String, Value> = r
                .fields
                .iter()
                .filter(|(k, _)| p.mapping.iter().any(|m| &m.target == *k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let m = merge(&l.synced.0, &current, &values, p.policy, false);
            self.out
                .conflicts(&m.conflicts, ("Attendees", a.id), (&r.module, r.id), None);
            if !m.crm_changes.is_empty() {
                let updated = self
                    .store
                    .update_record_in(
                        self.tx,
                        p.crm.id,
                        module,
                        r.id,
                        m.crm_changes,
                        None,
                        self.origin(),
                    )
                    .await?;
                link.crm_version = updated.version;
                self.out.counts.updated += 1;
            }
            link.synced = Json(m.agreed);
        }
        self.links.push(link);
        Ok(())
    }

    /// New attendees: tied to the CRM record that holds their e-mail (EVT-7),
    /// else added to the target module (EVT-8).
    async fn add_fresh(
        &mut self,
        fresh: &[&Record],
        campaign_of: &(dyn Fn(&Record) -> Option<i64> + Sync),
        associate: &mut Vec<(i64, i64, String)>,
    ) -> Result<()> {
        let p = self.plan;
        let key_of = |a: &Record| {
            a.fields
                .get("Email")
                .and_then(Value::as_str)
                .map(email_key)
                .unwrap_or_default()
        };
        let keys: Vec<String> = fresh
            .iter()
            .map(|a| key_of(a))
            .filter(|k| !k.is_empty())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut holders: HashMap<String, EmailHolder> = HashMap::new();
        for h in self
            .store
            .email_holders_in(self.tx, p.crm.id, &["Leads", "Contacts"], &keys)
            .await?
        {
            // Oldest first: the earliest record holding the address wins.
            holders.entry(h.email_key.clone()).or_insert(h);
        }
        let mut create: Vec<(&Record, Map<String, Value>)> = Vec::new();
        let mut twins: Vec<(&Record, usize)> = Vec::new();
        let mut new_by_key: HashMap<String, usize> = HashMap::new();
        for a in fresh {
            let key = key_of(a);
            if let Some(r) = holders.get(&key) {
                self.out.link(
                    &duplicate_email(a, &r.module, r.id, false),
                    ("Attendees", a.id),
                    (&r.module, r.id),
                );
                self.links.push(Link {
                    integration_id: p.integration,
                    data_type: ATTENDEE.to_string(),
                    other_id: a.id,
                    crm_id: r.id,
                    how: "matched".to_string(),
                    other_version: a.version,
                    crm_version: r.version,
                    synced: Json(Map::new()),
                    linked_at: now_ms(),
                });
                if let Some(c) = campaign_of(a) {
                    associate.push((r.id, c, r.module.clone()));
                }
            } else if let Some(&n) = new_by_key.get(&key).filter(|_| !key.is_empty()) {
                twins.push((a, n));
            } else {
                match validate_fields(&p.target, &p.mapped(a), Mode::Create) {
                    Ok(values) => {
                        new_by_key.insert(key, create.len());
                        create.push((a, values));
                    }
                    Err(err) => self.out.fail(&err, ("Attendees", a.id), None),
                }
            }
        }
        if create.is_empty() {
            return Ok(());
        }
        let rows: Vec<Map<String, Value>> = create.iter().map(|(_, v)| v.clone()).collect();
        let made = self
            .store
            .create_records_in(self.tx, p.crm.id, &p.target, rows, self.origin())
            .await?;
        for ((a, values), r) in create.iter().zip(&made) {
            self.links.push(new_link(
                p.integration,
                ATTENDEE,
                a,
                r,
                "created",
                values.clone(),
            ));
            self.out.counts.added += 1;
            if let Some(c) = campaign_of(a) {
                associate.push((r.id, c, r.module.clone()));
            }
        }
        for (a, n) in twins {
            let r = &made[n];
            self.out.link(
                &duplicate_email(a, &r.module, r.id, true),
                ("Attendees", a.id),
                (&r.module, r.id),
            );
            self.links.push(new_link(
                p.integration,
                ATTENDEE,
                a,
                r,
                "matched",
                Map::new(),
            ));
            if let Some(c) = campaign_of(a) {
                associate.push((r.id, c, r.module.clone()));
            }
        }
        Ok(())
    }

    /// An attendee no longer synced (cancelled, below the trigger status, or
    /// deleted): takes back what its sync added.
    async fn unlink(&mut self, l: &Link, r: Option<&Record>, campaign: Option<i64>) -> Result<()> {
        let p = self.plan;
        self.store
            .remove_links_in(self.tx, p.integration, ATTENDEE, &[l.other_id])
            .await?;
        self.links
            .retain(|x| !(x.data_type == ATTENDEE && x.other_id == l.other_id));
        let Some(r) = r.filter(|r| r.deleted_at.is_none()) else {
            return Ok(());
        };
        if let Some(c) = campaign {
            self.store
                .dissociate_in(
                    self.tx,
                    p.crm.id,
                    &[(r.id, c)],
                    &association_name("Campaigns", &r.module),
                )
                .await?;
        }
        if l.how != "created" {
            return Ok(());
        }
        let others = self
            .store
            .links_in(self.tx, p.integration, ATTENDEE, LinkSide::Crm, &[r.id])
            .await?;
        let pending = self
            .links
            .iter()
            .any(|x| x.data_type == ATTENDEE && x.crm_id == r.id);
        if !others.is_empty() || pending {
            return Ok(());
        }
        if r.version != l.crm_version {
            self.out.notice(
                &kept_changed_in_crm(r, l.other_id),
                ("Attendees", l.other_id),
                Some((&r.module, r.id)),
            );
            return Ok(());
        }
        self.store
            .set_deleted_in(self.tx, p.crm.id, &r.module, r.id, true, self.origin())
            .await?;
        self.out.counts.deleted += 1;
        Ok(())
    }
}
