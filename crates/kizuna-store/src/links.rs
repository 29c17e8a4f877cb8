//! Sync links: which record of the other app is the twin of which CRM
//! record, with the values both held at the last sync. Read in bulk by
//! either side's ids, written in multi-row statements.

use crate::Store;
use crate::db::{Dialect, Tx, db_error};
use crate::records::Sql;
use kizuna_domain::Result;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::types::Json;
use std::collections::HashSet;

/// A CRM record and its twin in the other app, with the mapped values both
/// sides held at the last sync (the base of a three-way merge).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub integration_id: i64,
    pub data_type: String,
    pub other_id: i64,
    pub crm_id: i64,
    /// `created` when the link made the record, `matched` when it existed.
    pub how: String,
    pub other_version: i64,
    pub crm_version: i64,
    pub synced: Json<Map<String, Value>>,
    pub linked_at: i64,
}

/// The two ids of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct LinkPair {
    pub other_id: i64,
    pub crm_id: i64,
}

/// Which side's ids a link lookup is by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkSide {
    Other,
    Crm,
}

const LINK_COLUMNS: &str = "integration_id, data_type, other_id, crm_id, how, other_version, \
     crm_version, synced, linked_at";

impl Store {
    /// Links of an integration's data type by the ids of one side.
    pub async fn links_in(
        &self,
        tx: &mut Tx,
        integration: i64,
        data_type: &str,
        side: LinkSide,
        ids: &[i64],
    ) -> Result<Vec<Link>> {
        self.links(Some(tx), integration, data_type, side, ids)
            .await
    }

    /// `links_in`, in `tx` or outside any transaction.
    pub async fn links(
        &self,
        tx: Option<&mut Tx>,
        integration: i64,
        data_type: &str,
        side: LinkSide,
        ids: &[i64],
    ) -> Result<Vec<Link>> {
        let synced = self.dialect().as_json("synced");
        // In the order of `Link`'s fields, which is how each row decodes.
        let values = [
            "integration_id",
            "data_type",
            "other_id",
            "crm_id",
            "how",
            "other_version",
            "crm_version",
            &synced,
            "linked_at",
        ];
        self.link_rows(
            tx,
            (&values, LINK_COLUMNS),
            integration,
            data_type,
            side,
            ids,
        )
        .await
    }

    /// The (other, CRM) ids of the links of an integration's data type by
    /// one side's ids, inside `tx`: what translating a lookup needs, without
    /// reading each link's synced values.
    pub async fn link_pairs_in(
        &self,
        tx: &mut Tx,
        integration: i64,
        data_type: &str,
        side: LinkSide,
        ids: &[i64],
    ) -> Result<Vec<LinkPair>> {
        let values = ["other_id", "crm_id"];
        self.link_rows(
            Some(tx),
            (&values, "other_id, crm_id"),
            integration,
            data_type,
            side,
            ids,
        )
        .await
    }

    /// The links of a data type by one side's ids, each link once, as rows
    /// of `values` (over the link's `columns`) read as one JSON document.
    async fn link_rows<T: DeserializeOwned>(
        &self,
        mut tx: Option<&mut Tx>,
        (values, columns): (&[&str], &str),
        integration: i64,
        data_type: &str,
        side: LinkSide,
        ids: &[i64],
    ) -> Result<Vec<T>> {
        // Each link once, as `IN (…)` returns it, also from the join below.
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut out = Vec::new();
        for chunk in ids.chunks(crate::records::INSERT_CHUNK) {
            let sql = self.link_rows_sql((values, columns), integration, data_type, side, chunk);
            let rows: Vec<T> = self
                .reads(tx.as_deref_mut())
                .fetch_json(&sql.text, &sql.args)
                .await
                .map_err(db_error)?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// The statement `link_rows` runs for one chunk of ids.
    fn link_rows_sql(
        &self,
        (values, columns): (&[&str], &str),
        integration: i64,
        data_type: &str,
        side: LinkSide,
        chunk: &[i64],
    ) -> Sql {
        let select = self.dialect().json_rows(values);
        let column = match side {
            LinkSide::Other => "other_id",
            LinkSide::Crm => "crm_id",
        };
        match self.db.dialect() {
            // One index seek per id, whatever the statistics say. With
            // `other_id IN (…)` or `crm_id IN (…)` and statistics taken
            // while the table was nearly empty (no autovacuum yet),
            // PostgreSQL scans every link of the integration by the
            // primary key's first two columns and filters: 123 ms per
            // statement at 50,000 links against 0.4 ms, and an initial
            // CRM ⇄ Desk sync of 43 s instead of 7 (BENCHMARKS.md,
            // desk-sync). So each id gets a LATERAL subquery that the
            // planner cannot turn back into that scan: by the other
            // side's id, equal on the whole primary key with LIMIT 1 (the
            // key is unique); by the CRM's id (not unique: one CRM record
            // may stand for several attendees), `OFFSET 0` keeps it from
            // being flattened into a join, and `+ 0` / `|| ''` keep the
            // primary key's columns from serving as its condition, which
            // leaves `sync_links_crm (crm_id, …)`.
            Dialect::Postgres => {
                let inner = match side {
                    LinkSide::Other => {
                        "other_id = k.id AND integration_id = $1 AND data_type = $2 LIMIT 1"
                    }
                    LinkSide::Crm => {
                        "crm_id = k.id AND integration_id + 0 = $1 AND data_type || '' = $2 OFFSET 0"
                    }
                };
                let mut sql = Sql::new(&format!("SELECT {select} FROM "));
                sql.arg(integration);
                sql.arg(data_type);
                sql.push_each_id(chunk);
                sql.push(&format!(
                    " CROSS JOIN LATERAL (SELECT {columns} FROM sync_links WHERE {inner}) l"
                ));
                sql
            }
            Dialect::Sqlite => {
                let mut sql = Sql::new(&format!(
                    "SELECT {select} FROM sync_links WHERE integration_id = $1 AND data_type = $2 AND {column} IN ("
                ));
                sql.arg(integration);
                sql.arg(data_type);
                sql.push_list(chunk.iter().copied());
                sql.push(")");
                sql
            }
        }
    }

    /// The database's plan of a link lookup by one side's ids: shows that
    /// each id is an index seek, whatever the statistics say.
    pub async fn explain_links(
        &self,
        integration: i64,
        data_type: &str,
        side: LinkSide,
        ids: &[i64],
    ) -> Result<Vec<String>> {
        let sql = self.link_rows_sql((&["crm_id"], "crm_id"), integration, data_type, side, ids);
        self.explain(&sql.text, &sql.args).await
    }

    /// Writes links, replacing those with the same other-side id (of two
    /// with the same key, the later). New links go in first with `ON
    /// CONFLICT DO NOTHING`, whose count of rows is the links it added, so the
    /// transaction knows exactly how many links it added (the mass-delete
    /// guard's base); only when some key was there already does an upsert
    /// replace them (rewriting the rows just added with the same values).
    pub async fn save_links_in(&self, tx: &mut Tx, links: &[Link]) -> Result<()> {
        let mut last: HashSet<(i64, &str, i64)> = HashSet::new();
        let mut unique: Vec<&Link> = links
            .iter()
            .rev()
            .filter(|l| last.insert((l.integration_id, l.data_type.as_str(), l.other_id)))
            .collect();
        unique.reverse();
        for chunk in unique.chunks(crate::records::INSERT_CHUNK) {
            let sql = insert_links(
                chunk.iter().copied(),
                " ON CONFLICT (integration_id, data_type, other_id) DO NOTHING",
            );
            let added = tx
                .x()
                .execute(&sql.text, &sql.args)
                .await
                .map_err(db_error)?;
            tx.links_added += added as i64;
            if added == chunk.len() as u64 {
                continue;
            }
            let sql = insert_links(
                chunk.iter().copied(),
                " ON CONFLICT (integration_id, data_type, other_id) DO UPDATE SET \
                 crm_id = excluded.crm_id, how = excluded.how, other_version = excluded.other_version, \
                 crm_version = excluded.crm_version, synced = excluded.synced",
            );
            tx.x()
                .execute(&sql.text, &sql.args)
                .await
                .map_err(db_error)?;
        }
        Ok(())
    }

    /// Removes links by other-side id.
    pub async fn remove_links_in(
        &self,
        tx: &mut Tx,
        integration: i64,
        data_type: &str,
        other_ids: &[i64],
    ) -> Result<()> {
        for chunk in other_ids.chunks(crate::records::INSERT_CHUNK) {
            let mut sql = Sql::new(
                "DELETE FROM sync_links WHERE integration_id = $1 AND data_type = $2 AND other_id IN (",
            );
            sql.arg(integration);
            sql.arg(data_type);
            sql.push_list(chunk.iter().copied());
            sql.push(")");
            let removed = tx
                .x()
                .execute(&sql.text, &sql.args)
                .await
                .map_err(db_error)?;
            tx.links_added -= removed as i64;
        }
        Ok(())
    }

    /// How many links an integration has, per data type.
    pub async fn link_counts(&self, integration: i64) -> Result<Vec<(String, i64)>> {
        #[derive(sqlx::FromRow)]
        struct Count {
            data_type: String,
            n: i64,
        }
        let rows: Vec<Count> = self
            .db
            .x()
            .fetch_all(
                "SELECT data_type, COUNT(*) AS n FROM sync_links WHERE integration_id = $1 \
                 GROUP BY data_type ORDER BY data_type",
                &crate::args![integration],
            )
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(|c| (c.data_type, c.n)).collect())
    }
}

/// `INSERT INTO sync_links … VALUES` of `links`, then `tail`.
fn insert_links<'a>(links: impl Iterator<Item = &'a Link>, tail: &str) -> Sql {
    let mut sql = Sql::new(&format!("INSERT INTO sync_links ({LINK_COLUMNS}) VALUES "));
    for (i, l) in links.enumerate() {
        let ns = [
            sql.arg(l.integration_id),
            sql.arg(&l.data_type),
            sql.arg(l.other_id),
            sql.arg(l.crm_id),
            sql.arg(&l.how),
            sql.arg(l.other_version),
            sql.arg(l.crm_version),
            sql.arg(&l.synced.0),
            sql.arg(l.linked_at),
        ];
        sql.push_row(i == 0, &ns);
    }
    sql.push(tail);
    sql
}
