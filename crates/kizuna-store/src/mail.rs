//! What a mail & calendar connection has read from the mail side
//! (`mail_items`): per item, where it is, what the last sync saw of it, and
//! the CRM record it became.

use crate::db::{Tx, db_error};
use crate::records::{INSERT_CHUNK, Sql};
use crate::{Store, now_ms};
use kizuna_domain::Result;
use serde::Serialize;
use std::collections::HashMap;

/// The id a saved item got, by its key (a multi-row statement returns its
/// rows in no promised order).
#[derive(sqlx::FromRow)]
struct SavedItem {
    id: i64,
    source: String,
    item_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct MailItem {
    pub id: i64,
    pub integration_id: i64,
    pub source: String,
    pub item_key: String,
    pub data_type: String,
    pub etag: Option<String>,
    pub content_hash: String,
    pub crm_module: Option<String>,
    pub crm_id: Option<i64>,
    pub crm_version: Option<i64>,
    pub how: Option<String>,
    pub uid: Option<String>,
    pub seen_at: i64,
}

/// An item as a sync leaves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailItemState<'a> {
    pub source: &'a str,
    pub item_key: &'a str,
    pub data_type: &'a str,
    pub etag: Option<&'a str>,
    pub content_hash: &'a str,
    /// The CRM record it is (module, id, version as the sync left it), or
    /// `None` when it was not written.
    pub crm: Option<(&'a str, i64, i64)>,
    /// `created` (the item made the record) or `matched` (it existed).
    pub how: Option<&'a str>,
    pub uid: Option<&'a str>,
}

const COLUMNS: &str = "id, integration_id, source, item_key, data_type, etag, content_hash, crm_module, \
                       crm_id, crm_version, how, uid, seen_at";

impl Store {
    /// The items of one source of a connection among `keys`, inside the
    /// caller's transaction.
    pub async fn mail_items_in(
        &self,
        tx: &mut Tx,
        integration: i64,
        source: &str,
        keys: &[&str],
    ) -> Result<Vec<MailItem>> {
        mail_items_where_in(tx, integration, source, "item_key", keys).await
    }

    /// The items of one source holding any of `uids`, inside the caller's
    /// transaction (two items of one collection with one UID are one
    /// contact twice: the later is reported and skipped).
    pub async fn mail_items_by_uid_in(
        &self,
        tx: &mut Tx,
        integration: i64,
        source: &str,
        uids: &[&str],
    ) -> Result<Vec<MailItem>> {
        mail_items_where_in(tx, integration, source, "uid", uids).await
    }

    /// The sync token a source was last synced to, if the server offers them.
    pub async fn mail_sync_token(&self, integration: i64, source: &str) -> Result<Option<String>> {
        #[derive(sqlx::FromRow)]
        struct Token {
            sync_token: Option<String>,
        }
        let row: Option<Token> = self
            .db
            .x()
            .fetch_optional(
                "SELECT sync_token FROM mail_sources WHERE integration_id = $1 AND source = $2",
                &crate::args![integration, source],
            )
            .await
            .map_err(db_error)?;
        Ok(row.and_then(|t| t.sync_token))
    }

    /// Records where a source's sync stands (`None`: list it whole next time).
    pub async fn set_mail_sync_token(
        &self,
        integration: i64,
        source: &str,
        token: Option<&str>,
    ) -> Result<()> {
        self.db
            .write()
            .await
            .x()
            .execute(
                "INSERT INTO mail_sources (integration_id, source, sync_token, synced_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (integration_id, source) DO UPDATE SET sync_token = excluded.sync_token, \
                 synced_at = excluded.synced_at",
                &crate::args![integration, source, token.map(str::to_string), now_ms()],
            )
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Every item of one source of a connection, for a sync that lists the
    /// whole collection (what is no longer there was deleted).
    pub async fn mail_items_of_source(
        &self,
        integration: i64,
        source: &str,
    ) -> Result<Vec<MailItem>> {
        self.db
            .x()
            .fetch_all(
                &format!(
                    "SELECT {COLUMNS} FROM mail_items WHERE integration_id = $1 AND source = $2 ORDER BY id"
                ),
                &crate::args![integration, source],
            )
            .await
            .map_err(db_error)
    }

    /// Records items as a sync leaves them, inside the chunk's transaction;
    /// returns their ids in the order given (the history names items by id).
    /// Multi-row statements: a round trip per row would cost more than the
    /// rows. An item given twice is saved as its last state.
    pub async fn save_mail_items_in(
        &self,
        tx: &mut Tx,
        integration: i64,
        items: &[MailItemState<'_>],
    ) -> Result<Vec<i64>> {
        let now = now_ms();
        let mut last: HashMap<(&str, &str), usize> = HashMap::new();
        for (n, it) in items.iter().enumerate() {
            last.insert((it.source, it.item_key), n);
        }
        let mut unique: Vec<&MailItemState<'_>> = last.values().map(|n| &items[*n]).collect();
        unique.sort_by_key(|it| last[&(it.source, it.item_key)]);
        let mut ids: HashMap<(String, String), i64> = HashMap::with_capacity(unique.len());
        for chunk in unique.chunks(INSERT_CHUNK) {
            let mut sql = Sql::new(
                "INSERT INTO mail_items (integration_id, source, item_key, data_type, etag, content_hash, \
                 crm_module, crm_id, crm_version, how, uid, seen_at) VALUES ",
            );
            let (i, at) = (sql.arg(integration), sql.arg(now));
            for (n, it) in chunk.iter().enumerate() {
                let (module, crm_id, version) = match it.crm {
                    Some((m, id, v)) => (Some(m.to_string()), Some(id), Some(v)),
                    None => (None, None, None),
                };
                let cols = [
                    sql.arg(it.source),
                    sql.arg(it.item_key),
                    sql.arg(it.data_type),
                    sql.arg(it.etag.map(str::to_string)),
                    sql.arg(it.content_hash),
                    sql.arg(module),
                    sql.arg(crm_id),
                    sql.arg(version),
                    sql.arg(it.how.map(str::to_string)),
                    sql.arg(it.uid.map(str::to_string)),
                ];
                let cols: Vec<String> = cols.iter().map(|c| format!("${c}")).collect();
                let comma = if n > 0 { ", " } else { "" };
                sql.push(&format!("{comma}(${i}, {}, ${at})", cols.join(", ")));
            }
            sql.push(
                " ON CONFLICT (integration_id, source, item_key) DO UPDATE SET data_type = excluded.data_type, \
                 etag = excluded.etag, content_hash = excluded.content_hash, crm_module = excluded.crm_module, \
                 crm_id = excluded.crm_id, crm_version = excluded.crm_version, how = excluded.how, \
                 uid = excluded.uid, seen_at = excluded.seen_at RETURNING id, source, item_key",
            );
            let rows: Vec<SavedItem> = tx
                .x()
                .fetch_all(&sql.text, &sql.args)
                .await
                .map_err(db_error)?;
            ids.extend(rows.into_iter().map(|r| ((r.source, r.item_key), r.id)));
        }
        items
            .iter()
            .map(|it| {
                ids.get(&(it.source.to_string(), it.item_key.to_string()))
                    .copied()
                    .ok_or_else(|| kizuna_domain::Error::internal("a saved mail item has no id"))
            })
            .collect()
    }

    /// Forgets items that are gone from the mail side, inside the caller's
    /// transaction.
    pub async fn remove_mail_items_in(&self, tx: &mut Tx, ids: &[i64]) -> Result<()> {
        for chunk in ids.chunks(INSERT_CHUNK) {
            let mut sql = Sql::new("DELETE FROM mail_items WHERE id IN (");
            sql.push_list(chunk.iter().copied());
            sql.push(")");
            tx.x()
                .execute(&sql.text, &sql.args)
                .await
                .map_err(db_error)?;
        }
        Ok(())
    }
}

/// The items of one source whose `column` (`item_key`, `uid`) is one of
/// `values`.
async fn mail_items_where_in(
    tx: &mut Tx,
    integration: i64,
    source: &str,
    column: &'static str,
    values: &[&str],
) -> Result<Vec<MailItem>> {
    let mut out = Vec::new();
    for chunk in values.chunks(INSERT_CHUNK) {
        let mut sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM mail_items WHERE integration_id = $1 AND source = $2 AND {column} IN ("
        ));
        sql.arg(integration);
        sql.arg(source);
        sql.push_list(chunk.iter().copied());
        sql.push(")");
        let rows: Vec<MailItem> = tx
            .x()
            .fetch_all(&sql.text, &sql.args)
            .await
            .map_err(db_error)?;
        out.extend(rows);
    }
    Ok(out)
}
