//! Integrations between orgs: their state, settings and field mapping.

use crate::db::{db_error, is_unique_violation};
use crate::{Store, now_ms};
use kizuna_domain::integration::State;
use kizuna_domain::{Error, IntegrationKind, Kind, Result, Text};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::types::Json;

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Integration {
    pub id: i64,
    pub kind: String,
    pub from_org: i64,
    pub to_org: Option<i64>,
    pub state: String,
    pub created_by: i64,
    pub created_at: i64,
    pub enabled_by: Option<i64>,
    pub enabled_at: Option<i64>,
    pub acting_user: i64,
    pub settings: Json<Value>,
    pub mapping: Json<Value>,
    pub stopped: Option<Json<Value>>,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
}

impl Integration {
    pub fn state(&self) -> State {
        State::parse(&self.state).unwrap_or(State::Deleted)
    }
}

const COLUMNS: &str = "id, kind, from_org, to_org, state, created_by, created_at, enabled_by, \
     enabled_at, acting_user, settings, mapping, stopped, updated_at, deleted_at";

/// A new integration, set up by an administrator of `from_org`.
pub struct NewIntegration<'a> {
    pub kind: IntegrationKind,
    pub from_org: i64,
    pub to_org: Option<i64>,
    pub created_by: i64,
    pub state: State,
    pub settings: &'a Value,
    pub mapping: &'a Value,
}

impl Store {
    /// Records a new integration. A second live one of the same kind for
    /// either org is refused here too (a unique index), so two concurrent
    /// setups cannot both succeed (GEN-3); the caller explains the refusal.
    pub async fn create_integration(&self, new: NewIntegration<'_>) -> Result<Integration> {
        let now = now_ms();
        let sql = format!(
            "INSERT INTO integrations (kind, from_org, to_org, state, created_by, created_at, \
             acting_user, settings, mapping, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $5, $7, $8, $6) RETURNING {COLUMNS}"
        );
        self.db
            .write()
            .await
            .x()
            .fetch_one(
                &sql,
                &crate::args![
                    new.kind.as_str(),
                    new.from_org,
                    new.to_org,
                    new.state.as_str(),
                    new.created_by,
                    now,
                    new.settings.clone(),
                    new.mapping.clone()
                ],
            )
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    Error::new(
                        Kind::Conflict,
                        "already_integrated",
                        Text::new(
                            "One of the two orgs was integrated meanwhile.",
                            "2 つの組織のどちらかが、その間に連携されました。",
                        ),
                        Text::new(
                            "Look at the org's integrations and try again.",
                            "組織の連携を確認して、もう一度お試しください。",
                        ),
                    )
                    .with_rule("GEN-3")
                } else {
                    db_error(e)
                }
            })
    }

    pub async fn integration(&self, id: i64) -> Result<Option<Integration>> {
        let sql = format!("SELECT {COLUMNS} FROM integrations WHERE id = $1");
        self.db
            .x()
            .fetch_optional(&sql, &crate::args![id])
            .await
            .map_err(db_error)
    }

    /// The live (not deleted) integration of `kind` that `org` is on either
    /// side of, if any (GEN-3).
    pub async fn live_integration(
        &self,
        kind: IntegrationKind,
        org: i64,
    ) -> Result<Option<Integration>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM integrations WHERE kind = $1 AND state <> 'deleted' \
             AND (from_org = $2 OR to_org = $2) ORDER BY id LIMIT 1"
        );
        self.db
            .x()
            .fetch_optional(&sql, &crate::args![kind.as_str(), org])
            .await
            .map_err(db_error)
    }

    /// Every integration an org is on either side of, deleted ones included
    /// (they are history), newest first.
    pub async fn integrations_of_org(&self, org: i64) -> Result<Vec<Integration>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM integrations WHERE from_org = $1 OR to_org = $1 ORDER BY id DESC"
        );
        self.db
            .x()
            .fetch_all(&sql, &crate::args![org])
            .await
            .map_err(db_error)
    }

    /// The integrations that sync: active, and not stopped by the engine.
    pub async fn running_integrations(&self) -> Result<Vec<Integration>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM integrations WHERE state = 'active' AND stopped IS NULL ORDER BY id"
        );
        self.db.x().fetch_all(&sql, &[]).await.map_err(db_error)
    }

    /// Moves an integration from `from` to `to`, only if it is still in
    /// `from`: two people acting at once cannot both win. `enabled_by` is
    /// recorded when the other side enables it.
    pub async fn set_integration_state(
        &self,
        id: i64,
        from: State,
        to: State,
        enabled_by: Option<i64>,
    ) -> Result<Integration> {
        let now = now_ms();
        let deleted_at = (to == State::Deleted).then_some(now);
        let sql = format!(
            "UPDATE integrations SET state = $1, updated_at = $2, deleted_at = $3, \
             enabled_by = COALESCE($4, enabled_by), enabled_at = CASE WHEN $4 IS NULL THEN enabled_at ELSE $2 END, \
             stopped = NULL \
             WHERE id = $5 AND state = $6 RETURNING {COLUMNS}"
        );
        let row: Option<Integration> = self
            .db
            .write()
            .await
            .x()
            .fetch_optional(
                &sql,
                &crate::args![to.as_str(), now, deleted_at, enabled_by, id, from.as_str()],
            )
            .await
            .map_err(db_error)?;
        row.ok_or_else(|| {
            Error::new(
                Kind::Conflict,
                "integration_changed",
                Text::new(
                    format!("Integration {id} changed meanwhile."),
                    format!("連携 {id} はその間に変更されました。"),
                ),
                Text::new(
                    "Read it again and retry.",
                    "再読み込みして、もう一度お試しください。",
                ),
            )
            .with_details(json!({"id": id}))
        })
    }

    /// Replaces the settings and the mapping (validated by the caller).
    pub async fn set_integration_config(
        &self,
        id: i64,
        settings: &Value,
        mapping: &Value,
    ) -> Result<()> {
        self.db
            .write()
            .await
            .x()
            .execute(
                "UPDATE integrations SET settings = $1, mapping = $2, updated_at = $3 WHERE id = $4",
                &crate::args![settings.clone(), mapping.clone(), now_ms(), id],
            )
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Hands the integration to another administrator: it acts on their
    /// behalf from now on (GEN-10).
    pub async fn set_acting_user(&self, id: i64, user: i64) -> Result<()> {
        self.db
            .write()
            .await
            .x()
            .execute(
                "UPDATE integrations SET acting_user = $1, updated_at = $2 WHERE id = $3",
                &crate::args![user, now_ms(), id],
            )
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Records why the integration cannot run (an error's JSON), or clears it.
    pub async fn set_integration_stopped(&self, id: i64, why: Option<&Value>) -> Result<()> {
        let result = match why {
            Some(why) => {
                self.db
                    .write()
                    .await
                    .x()
                    .execute(
                        "UPDATE integrations SET stopped = $1, updated_at = $2 WHERE id = $3",
                        &crate::args![why.clone(), now_ms(), id],
                    )
                    .await
            }
            // A literal NULL: a NULL parameter would be typed text, which a
            // JSONB column refuses.
            None => {
                self.db
                    .write()
                    .await
                    .x()
                    .execute(
                        "UPDATE integrations SET stopped = NULL, updated_at = $1 WHERE id = $2",
                        &crate::args![now_ms(), id],
                    )
                    .await
            }
        };
        result.map_err(db_error)?;
        Ok(())
    }

    /// Removes what deleting an integration removes (GEN-7): its mapping and
    /// settings; the records stay in each app.
    pub async fn clear_integration(&self, id: i64) -> Result<()> {
        self.set_integration_config(id, &json!({}), &json!([]))
            .await
    }
}
