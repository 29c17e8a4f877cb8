//! Conflicts held for a person to decide (conflict policy `hold`): one row
//! per linked pair and field, kept while the two sides disagree.

use crate::db::{Dialect, Tx, db_error};
use crate::{Store, now_ms};
use kizuna_domain::Result;
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Held {
    pub id: i64,
    pub integration_id: i64,
    pub data_type: String,
    pub other_id: i64,
    pub crm_id: i64,
    pub crm_module: String,
    pub field: String,
    pub base_value: Json<Value>,
    pub crm_value: Json<Value>,
    pub other_value: Json<Value>,
    pub held_at: i64,
}

/// One field in conflict: (field, base, CRM value, other value).
pub type HeldField = (String, Value, Value, Value);

const COLUMNS: &str = "id, integration_id, data_type, other_id, crm_id, crm_module, field, base_value, \
                       crm_value, other_value, held_at";

impl Store {
    /// Records the fields of one pair (`crm_record`: the CRM side's module
    /// and id) now in conflict and forgets those no
    /// longer in it, inside the caller's transaction; returns the fields
    /// that are newly held or whose values changed since they were held
    /// (those a run reports).
    #[allow(clippy::too_many_arguments)]
    pub async fn hold_in(
        &self,
        tx: &mut Tx,
        integration: i64,
        data_type: &str,
        other_id: i64,
        crm_record: (&str, i64),
        conflicts: &[HeldField],
    ) -> Result<Vec<String>> {
        let existing: Vec<Held> = tx
            .x()
            .fetch_all(
                &format!(
                    "SELECT {COLUMNS} FROM sync_held WHERE integration_id = $1 AND data_type = $2 AND other_id = $3"
                ),
                &crate::args![integration, data_type, other_id],
            )
            .await
            .map_err(db_error)?;
        for h in &existing {
            if !conflicts.iter().any(|c| c.0 == h.field) {
                tx.x()
                    .execute("DELETE FROM sync_held WHERE id = $1", &crate::args![h.id])
                    .await
                    .map_err(db_error)?;
            }
        }
        let mut fresh = Vec::new();
        for (field, base, crm, other) in conflicts {
            let same = existing
                .iter()
                .any(|h| &h.field == field && &h.crm_value.0 == crm && &h.other_value.0 == other);
            if same {
                continue;
            }
            tx.x()
                .execute(
                    "INSERT INTO sync_held (integration_id, data_type, other_id, crm_id, crm_module, field, \
                     base_value, crm_value, other_value, held_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (integration_id, data_type, other_id, field) DO UPDATE SET \
                     crm_id = excluded.crm_id, crm_module = excluded.crm_module, base_value = excluded.base_value, \
                     crm_value = excluded.crm_value, other_value = excluded.other_value, \
                     held_at = excluded.held_at",
                    &crate::args![
                        integration,
                        data_type,
                        other_id,
                        crm_record.1,
                        crm_record.0,
                        field.as_str(),
                        base.clone(),
                        crm.clone(),
                        other.clone(),
                        now_ms()
                    ],
                )
                .await
                .map_err(db_error)?;
            fresh.push(field.clone());
        }
        Ok(fresh)
    }

    /// An integration's held conflicts, oldest first, after id `after`.
    pub async fn held(&self, integration: i64, after: i64, limit: u32) -> Result<Vec<Held>> {
        self.db
            .x()
            .fetch_all(
                &format!(
                    "SELECT {COLUMNS} FROM sync_held WHERE integration_id = $1 AND id > $2 ORDER BY id LIMIT $3"
                ),
                &crate::args![integration, after, i64::from(limit.clamp(1, 1000))],
            )
            .await
            .map_err(db_error)
    }

    /// One held conflict of an integration, locked for a decision, inside
    /// the caller's transaction.
    pub async fn held_one_in(
        &self,
        tx: &mut Tx,
        integration: i64,
        id: i64,
    ) -> Result<Option<Held>> {
        let rows: Vec<Held> = tx
            .x()
            .fetch_all(
                &format!(
                    "SELECT {COLUMNS} FROM sync_held WHERE integration_id = $1 AND id = $2{}",
                    match self.db.dialect() {
                        // SQLite's write transaction already excludes every other writer.
                        Dialect::Sqlite => "",
                        Dialect::Postgres => " FOR UPDATE",
                    }
                ),
                &crate::args![integration, id],
            )
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().next())
    }

    /// Forgets a held conflict (it was decided).
    pub async fn release_in(&self, tx: &mut Tx, id: i64) -> Result<()> {
        tx.x()
            .execute("DELETE FROM sync_held WHERE id = $1", &crate::args![id])
            .await
            .map_err(db_error)?;
        Ok(())
    }
}
