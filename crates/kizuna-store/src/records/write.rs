//! Writing records: create, update, delete to the recycle bin, restore, purge.

use super::{
    INSERT_CHUNK, Origin, RECORD_COLUMNS, Record, RecordRow, RefKind, Sql, email_key_of,
    insert_refs, lookup_targets, write_changes,
};
use crate::db::{CountRow, Dialect, IdRow, Tx, db_error};
use crate::{Store, now_ms};
use kizuna_domain::field::{FieldType, ModuleDef};
use kizuna_domain::{Error, Kind, Result, Text};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

impl Store {
    /// Creates records of one module in one transaction: lookups must point at
    /// live records of this org, unique fields must be unique, and each record
    /// gets its change-log row. The values must already be validated against
    /// `module` (kizuna_domain::validate).
    pub async fn create_records(
        &self,
        org_id: i64,
        module: &ModuleDef,
        rows: Vec<Map<String, Value>>,
        origin: Origin,
    ) -> Result<Vec<Record>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.db.begin().await?;
        let created = self
            .create_records_in(&mut tx, org_id, module, rows, origin)
            .await?;
        tx.commit().await?;
        Ok(created)
    }

    /// `create_records` inside the caller's transaction (the sync engine
    /// commits a write with its link row and cursor).
    pub async fn create_records_in(
        &self,
        tx: &mut Tx,
        org_id: i64,
        module: &ModuleDef,
        rows: Vec<Map<String, Value>>,
        origin: Origin,
    ) -> Result<Vec<Record>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_ms();
        self.check_lookups(tx, org_id, module, &rows).await?;
        self.check_unique(tx, org_id, module, &rows, None).await?;
        let ids = self.allocate_ids(tx, rows.len()).await?;
        let created_by = match origin {
            Origin::User(id) | Origin::Key { user: id, .. } => Some(id),
            _ => None,
        };
        for (chunk_rows, chunk_ids) in rows.chunks(INSERT_CHUNK).zip(ids.chunks(INSERT_CHUNK)) {
            let mut sql = Sql::new(
                "INSERT INTO records (id, org_id, module, version, fields, email_key, created_by, created_at, updated_at) VALUES ",
            );
            let org = sql.arg(org_id);
            let m = sql.arg(&module.api_name);
            let by = sql.arg(created_by);
            let t = sql.arg(now);
            let first_version = sql.arg(1);
            for (i, (fields, id)) in chunk_rows.iter().zip(chunk_ids).enumerate() {
                let a = sql.arg(*id);
                let f = sql.arg(fields);
                let e = sql.arg(email_key_of(module, fields));
                sql.push_row(i == 0, &[a, org, m, first_version, f, e, by, t, t]);
            }
            tx.x()
                .execute(&sql.text, &sql.args)
                .await
                .map_err(db_error)?;
        }
        let refs: Vec<(i64, String, i64)> = rows
            .iter()
            .zip(&ids)
            .flat_map(|(fields, id)| {
                lookup_targets(module, fields)
                    .into_iter()
                    .map(|(f, to)| (*id, f.api_name.clone(), to))
            })
            .collect();
        insert_refs(tx, org_id, &refs, RefKind::Lookup).await?;
        let versions: Vec<(i64, i64)> = ids.iter().map(|id| (*id, 1)).collect();
        write_changes(
            tx,
            org_id,
            &module.api_name,
            &versions,
            "create",
            origin,
            now,
        )
        .await?;
        Ok(rows
            .into_iter()
            .zip(ids)
            .map(|(fields, id)| Record {
                id,
                module: module.api_name.clone(),
                version: 1,
                created_at: now,
                updated_at: now,
                deleted_at: None,
                fields,
            })
            .collect())
    }

    /// Ids for `n` new records, allocated inside the write transaction so that
    /// a batch can be inserted with multi-row statements.
    async fn allocate_ids(&self, tx: &mut Tx, n: usize) -> Result<Vec<i64>> {
        match self.db.dialect() {
            Dialect::Postgres => {
                let rows: Vec<IdRow> = tx
                    .x()
                    .fetch_all(
                        "SELECT nextval(pg_get_serial_sequence('records', 'id')) AS id \
                         FROM generate_series(1, $1)",
                        &crate::args![n as i64],
                    )
                    .await
                    .map_err(db_error)?;
                Ok(rows.into_iter().map(|r| r.id).collect())
            }
            Dialect::Sqlite => {
                // The write lock (BEGIN IMMEDIATE) is held: no one else can take
                // these ids. AUTOINCREMENT's sequence keeps purged ids unused.
                let base: IdRow = tx
                    .x()
                    .fetch_one(
                        "SELECT COALESCE(MAX(x), 0) AS id FROM (\
                         SELECT seq AS x FROM sqlite_sequence WHERE name = 'records' \
                         UNION ALL SELECT MAX(id) AS x FROM records)",
                        &[],
                    )
                    .await
                    .map_err(db_error)?;
                Ok((1..=n as i64).map(|i| base.id + i).collect())
            }
        }
    }

    /// Every lookup value must name a live record of the target module in the
    /// same org: another org's id is refused exactly like a missing one.
    async fn check_lookups(
        &self,
        tx: &mut Tx,
        org_id: i64,
        module: &ModuleDef,
        rows: &[Map<String, Value>],
    ) -> Result<()> {
        let mut wanted: BTreeMap<(&str, &str), BTreeSet<i64>> = BTreeMap::new();
        for fields in rows {
            for (field, id) in lookup_targets(module, fields) {
                let target = field.lookup_module.as_deref().unwrap_or_default();
                wanted
                    .entry((field.api_name.as_str(), target))
                    .or_default()
                    .insert(id);
            }
        }
        for ((field, target), ids) in wanted {
            let ids: Vec<i64> = ids.into_iter().collect();
            for chunk in ids.chunks(INSERT_CHUNK) {
                // One primary-key seek per id, whatever the statistics say.
                // On PostgreSQL with statistics from when the org was small,
                // `id IN (…)` read every record of the module by
                // `records_list` and filtered (46 ms a chunk in an initial
                // sync: BENCHMARKS.md, desk-sync). A LATERAL subquery per id
                // whose only condition is the id (its LIMIT keeps the other
                // conditions out of it) leaves it only the seek, as in
                // `links.rs`.
                let dialect = self.db.dialect();
                let live = |columns: &str| {
                    let mut sql = Sql::new(&format!("SELECT {columns} FROM "));
                    sql.arg(org_id);
                    sql.arg(target);
                    match dialect {
                        Dialect::Postgres => {
                            sql.push_each_id(chunk);
                            sql.push(
                                " CROSS JOIN LATERAL (SELECT id, org_id, module, deleted_at \
                                 FROM records WHERE id = k.id LIMIT 1) r \
                                 WHERE r.org_id = $1 AND r.module = $2 AND r.deleted_at IS NULL",
                            );
                        }
                        Dialect::Sqlite => {
                            sql.push(
                                "records r WHERE org_id = $1 AND module = $2 \
                                 AND deleted_at IS NULL AND id IN (",
                            );
                            sql.push_list(chunk.iter().copied());
                            sql.push(")");
                        }
                    }
                    sql
                };
                // Counted first: one row back, not one per target, when all
                // are there (nearly always).
                let sql = live("COUNT(*) AS n");
                let counted: CountRow = tx
                    .x()
                    .fetch_one(&sql.text, &sql.args)
                    .await
                    .map_err(db_error)?;
                if counted.n == chunk.len() as i64 {
                    continue;
                }
                let sql = live("r.id AS id");
                let found: Vec<IdRow> = tx
                    .x()
                    .fetch_all(&sql.text, &sql.args)
                    .await
                    .map_err(db_error)?;
                let found: BTreeSet<i64> = found.into_iter().map(|r| r.id).collect();
                if let Some(missing) = chunk.iter().find(|id| !found.contains(id)) {
                    // 404, like any id that is absent or another org's.
                    return Err(Error::new(
                        Kind::NotFound,
                        "lookup_not_found",
                        Text::new(
                            format!("{field}: there is no {target} record {missing} in this org."),
                            format!(
                                "{field}: この組織に {target} のレコード {missing} はありません。"
                            ),
                        ),
                        Text::new(
                            format!("Set {field} to the id of a {target} record of this org."),
                            format!(
                                "{field} にはこの組織の {target} レコードの ID を指定してください。"
                            ),
                        ),
                    )
                    .with_details(json!({"field": field, "module": target, "id": missing})));
                }
            }
        }
        Ok(())
    }

    /// Unique fields: no two live records of the module share a value.
    async fn check_unique(
        &self,
        tx: &mut Tx,
        org_id: i64,
        module: &ModuleDef,
        rows: &[Map<String, Value>],
        updating: Option<i64>,
    ) -> Result<()> {
        let dialect = self.db.dialect();
        if dialect == Dialect::Postgres && module.fields.iter().any(|f| f.unique) {
            // At READ COMMITTED two writers would both find no duplicate and both
            // insert; this lock, held to commit, makes the second wait and then
            // see the first one's row. (SQLite: BEGIN IMMEDIATE serialises.)
            tx.x()
                .execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended('kizuna.unique:' || $1 || ':' || $2, 0))",
                    &crate::args![org_id.to_string(), &module.api_name],
                )
                .await
                .map_err(db_error)?;
        }
        for field in module.fields.iter().filter(|f| f.unique) {
            let mut seen = BTreeSet::new();
            for fields in rows {
                let Some(value) = fields.get(&field.api_name).filter(|v| !v.is_null()) else {
                    continue;
                };
                let key = value.to_string();
                let mut sql = Sql::new(
                    "SELECT r.id FROM records r WHERE r.org_id = $1 AND r.module = $2 AND r.deleted_at IS NULL AND r.id <> $3 AND ",
                );
                sql.arg(org_id);
                sql.arg(&module.api_name);
                sql.arg(updating.unwrap_or(0));
                let f = sql.arg(&field.api_name);
                let v = sql.json_arg(dialect, value);
                sql.push(&format!("{} = ${v} LIMIT 1", dialect.json_field(f)));
                let existing: Option<IdRow> = tx
                    .x()
                    .fetch_optional(&sql.text, &sql.args)
                    .await
                    .map_err(db_error)?;
                if existing.is_some() || !seen.insert(key) {
                    return Err(Error::new(
                        Kind::Conflict,
                        "not_unique",
                        Text::new(
                            format!(
                                "{}: another {} record already has the value {value}.",
                                field.api_name, module.api_name
                            ),
                            format!(
                                "{}: 値 {value} を持つ {} のレコードが既にあります。",
                                field.api_name, module.api_name
                            ),
                        ),
                        Text::new(
                            "Choose another value, or edit the existing record.",
                            "別の値を指定するか、既存のレコードを編集してください。",
                        ),
                    )
                    .with_details(
                        json!({"field": field.api_name, "existing_id": existing.map(|e| e.id)}),
                    ));
                }
            }
        }
        Ok(())
    }

    async fn lock_record(
        &self,
        tx: &mut Tx,
        org_id: i64,
        module: &str,
        id: i64,
        deleted: bool,
    ) -> Result<Record> {
        let lock = match self.db.dialect() {
            Dialect::Postgres => " FOR UPDATE",
            Dialect::Sqlite => "",
        };
        let state = if deleted { "IS NOT NULL" } else { "IS NULL" };
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM records r \
             WHERE r.id = $1 AND r.org_id = $2 AND r.module = $3 AND r.deleted_at {state}{lock}"
        );
        let row: Option<RecordRow> = tx
            .x()
            .fetch_optional(&sql, &crate::args![id, org_id, module])
            .await
            .map_err(db_error)?;
        row.map(Record::from)
            .ok_or_else(|| Error::not_found(module, id))
    }

    /// Applies validated changes to a record (a `null` clears a field). With
    /// `expected_version`, a record changed meanwhile is refused with 409.
    pub async fn update_record(
        &self,
        org_id: i64,
        module: &ModuleDef,
        id: i64,
        changes: Map<String, Value>,
        expected_version: Option<i64>,
        origin: Origin,
    ) -> Result<Record> {
        let mut tx = self.db.begin().await?;
        let updated = self
            .update_record_in(
                &mut tx,
                org_id,
                module,
                id,
                changes,
                expected_version,
                origin,
            )
            .await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// `update_record` inside the caller's transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn update_record_in(
        &self,
        tx: &mut Tx,
        org_id: i64,
        module: &ModuleDef,
        id: i64,
        changes: Map<String, Value>,
        expected_version: Option<i64>,
        origin: Origin,
    ) -> Result<Record> {
        let now = now_ms();
        let current = self
            .lock_record(tx, org_id, &module.api_name, id, false)
            .await?;
        if let Some(v) = expected_version
            && v != current.version
        {
            return Err(Error::version_conflict(id, v, current.version));
        }
        let mut fields = current.fields.clone();
        for (k, v) in &changes {
            if v.is_null() {
                fields.remove(k);
            } else {
                fields.insert(k.clone(), v.clone());
            }
        }
        if fields == current.fields {
            // Nothing changed: no new version, no change-log row (no echo).
            return Ok(current);
        }
        let changed_only: Map<String, Value> = changes
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        self.check_lookups(tx, org_id, module, std::slice::from_ref(&changed_only))
            .await?;
        self.check_unique(
            tx,
            org_id,
            module,
            std::slice::from_ref(&changed_only),
            Some(id),
        )
        .await?;
        let version = current.version + 1;
        tx.x()
            .execute(
                "UPDATE records SET fields = $1, email_key = $2, version = $3, updated_at = $4 WHERE id = $5",
                &crate::args![Value::Object(fields.clone()), email_key_of(module, &fields), version, now, id],
            )
            .await
            .map_err(db_error)?;
        // The links of the lookups this update sets are re-derived from the new
        // values; the others are left as they are (their target may have been
        // purged since, and its link with it).
        let lookup_names: Vec<String> = module
            .fields
            .iter()
            .filter(|f| f.field_type == FieldType::Lookup && changes.contains_key(&f.api_name))
            .map(|f| f.api_name.clone())
            .collect();
        for name in &lookup_names {
            tx.x()
                .execute(
                    "DELETE FROM record_refs WHERE from_id = $1 AND field = $2",
                    &crate::args![id, name],
                )
                .await
                .map_err(db_error)?;
        }
        let refs: Vec<(i64, String, i64)> = lookup_targets(module, &changed_only)
            .into_iter()
            .map(|(f, to)| (id, f.api_name.clone(), to))
            .collect();
        insert_refs(tx, org_id, &refs, RefKind::Lookup).await?;
        write_changes(
            tx,
            org_id,
            &module.api_name,
            &[(id, version)],
            "update",
            origin,
            now,
        )
        .await?;
        Ok(Record {
            version,
            updated_at: now,
            fields,
            ..current
        })
    }

    /// Moves a record to the recycle bin (kept 30 days, restorable).
    pub async fn delete_record(
        &self,
        org_id: i64,
        module: &str,
        id: i64,
        origin: Origin,
    ) -> Result<Record> {
        self.set_deleted(org_id, module, id, true, origin).await
    }

    /// Brings a record back from the recycle bin.
    pub async fn restore_record(
        &self,
        org_id: i64,
        module: &str,
        id: i64,
        origin: Origin,
    ) -> Result<Record> {
        self.set_deleted(org_id, module, id, false, origin).await
    }

    async fn set_deleted(
        &self,
        org_id: i64,
        module: &str,
        id: i64,
        delete: bool,
        origin: Origin,
    ) -> Result<Record> {
        let mut tx = self.db.begin().await?;
        let record = self
            .set_deleted_in(&mut tx, org_id, module, id, delete, origin)
            .await?;
        tx.commit().await?;
        Ok(record)
    }

    /// Moves a record to the recycle bin (`delete`) or back, inside the
    /// caller's transaction.
    pub async fn set_deleted_in(
        &self,
        tx: &mut Tx,
        org_id: i64,
        module: &str,
        id: i64,
        delete: bool,
        origin: Origin,
    ) -> Result<Record> {
        let now = now_ms();
        let current = self.lock_record(tx, org_id, module, id, !delete).await?;
        let version = current.version + 1;
        let deleted_at = delete.then_some(now);
        tx.x()
            .execute(
                "UPDATE records SET deleted_at = $1, version = $2, updated_at = $3 WHERE id = $4",
                &crate::args![deleted_at, version, now, id],
            )
            .await
            .map_err(db_error)?;
        let op = if delete { "delete" } else { "restore" };
        write_changes(tx, org_id, module, &[(id, version)], op, origin, now).await?;
        Ok(Record {
            version,
            updated_at: now,
            deleted_at,
            ..current
        })
    }

    /// Removes for good the records deleted before `before` (ms), with their
    /// links; returns how many. Each purge is in the change log too.
    pub async fn purge_deleted(&self, before: i64) -> Result<u64> {
        #[derive(sqlx::FromRow)]
        struct Gone {
            id: i64,
            org_id: i64,
            module: String,
            version: i64,
        }
        let mut tx = self.db.begin().await?;
        let gone: Vec<Gone> = tx
            .x()
            .fetch_all(
                "SELECT id, org_id, module, version FROM records WHERE deleted_at IS NOT NULL AND deleted_at < $1",
                &crate::args![before],
            )
            .await
            .map_err(db_error)?;
        let now = now_ms();
        for g in &gone {
            // record_refs has no foreign keys (migration 0005): its rows go here.
            tx.x()
                .execute(
                    "DELETE FROM record_refs WHERE from_id = $1 OR to_id = $1",
                    &crate::args![g.id],
                )
                .await
                .map_err(db_error)?;
            tx.x()
                .execute("DELETE FROM records WHERE id = $1", &crate::args![g.id])
                .await
                .map_err(db_error)?;
            write_changes(
                &mut tx,
                g.org_id,
                &g.module,
                &[(g.id, g.version + 1)],
                "purge",
                Origin::System,
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(gone.len() as u64)
    }
    /// Puts live records of a module (`ids`, or all of them) back on the
    /// change log (an `update` at their current version, by the system), so
    /// that integrations read them again: after a setting changed what they
    /// carry (a CRM currency set at last, EVT-11), or to retry the records a
    /// sync could not write. Returns how many records.
    /// In `tx` when one is given.
    pub async fn resend_records(
        &self,
        tx: Option<&mut Tx>,
        org_id: i64,
        module: &str,
        ids: Option<&[i64]>,
    ) -> Result<u64> {
        let only = match ids {
            Some([]) => return Ok(0),
            Some(ids) => format!(" AND id IN ({})", crate::referrers::id_list(ids)),
            None => String::new(),
        };
        self.reads(tx)
            .execute(
                &format!(
                    "INSERT INTO changes (org_id, module, record_id, version, op, origin_kind, origin_id, at) \
                     SELECT org_id, module, id, version, 'update', 'system', NULL, $3 FROM records \
                     WHERE org_id = $1 AND module = $2 AND deleted_at IS NULL{only} ORDER BY id"
                ),
                &crate::args![org_id, module, now_ms()],
            )
            .await
            .map_err(db_error)
    }
}
