//! Records: create, read, update, delete to the recycle bin, restore, purge;
//! lookups and associations for related lists; every change written to the
//! change log in the change's own transaction.

use crate::db::{Arg, Dialect, Tx, db_error};
use crate::{Store, now_ms};
use kizuna_domain::field::{FieldDef, FieldType, ModuleDef};
use kizuna_domain::validate::email_key;
use kizuna_domain::{Error, Kind, Result, Text};
use serde::Serialize;
use serde_json::{Map, Value, json};
use sqlx::types::Json;
use std::collections::{BTreeMap, BTreeSet};

/// Who made a change: recorded with every change-log row, so that a sync can
/// tell its own writes from everybody else's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    User(i64),
    Key(i64),
    Integration(i64),
    System,
}

impl Origin {
    fn parts(self) -> (&'static str, Option<i64>) {
        match self {
            Origin::User(id) => ("user", Some(id)),
            Origin::Key(id) => ("key", Some(id)),
            Origin::Integration(id) => ("integration", Some(id)),
            Origin::System => ("system", None),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    pub id: i64,
    pub module: String,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<i64>,
    pub fields: Map<String, Value>,
}

#[derive(sqlx::FromRow)]
struct RecordRow {
    id: i64,
    module: String,
    version: i64,
    fields: Json<Map<String, Value>>,
    created_at: i64,
    updated_at: i64,
    deleted_at: Option<i64>,
}

impl From<RecordRow> for Record {
    fn from(r: RecordRow) -> Self {
        Record {
            id: r.id,
            module: r.module,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
            deleted_at: r.deleted_at,
            fields: r.fields.0,
        }
    }
}

const RECORD_COLUMNS: &str =
    "r.id, r.module, r.version, r.fields, r.created_at, r.updated_at, r.deleted_at";

/// One row of the change log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Change {
    pub seq: i64,
    pub module: String,
    pub record_id: i64,
    pub version: i64,
    pub op: String,
    pub origin_kind: String,
    pub origin_id: Option<i64>,
    pub at: i64,
}

/// How a list is sorted.
#[derive(Debug, Clone, PartialEq)]
pub enum SortKey {
    Id,
    Field(FieldDef),
}

/// A list request: equality filters, one sort key, a page.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub filters: Vec<(FieldDef, Value)>,
    pub sort: SortKey,
    pub descending: bool,
    pub cursor: Option<String>,
    pub limit: u32,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            filters: Vec::new(),
            sort: SortKey::Id,
            descending: false,
            cursor: None,
            limit: 50,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page {
    pub records: Vec<Record>,
    pub next_cursor: Option<String>,
}

/// Rows per multi-row INSERT: well under both backends' parameter limits.
const INSERT_CHUNK: usize = 200;

/// A SQL statement under construction, numbering its `$n` parameters.
struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    fn new(text: &str) -> Self {
        Sql {
            text: text.to_string(),
            args: Vec::new(),
        }
    }

    /// Adds a parameter and returns its number.
    fn arg(&mut self, a: impl Into<Arg>) -> usize {
        self.args.push(a.into());
        self.args.len()
    }

    fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }
}

fn invalid_cursor() -> Error {
    Error::bad_request(
        "invalid_cursor",
        "The cursor is not one this list gave out (or the sort changed since).",
        "カーソルがこの一覧で発行されたものではありません（または並び順が変わりました）。",
    )
}

/// Cursors are opaque to clients: the sort value and id of the last row, as
/// hex-encoded JSON.
fn encode_cursor(value: &Value, id: i64) -> String {
    json!([value, id])
        .to_string()
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_cursor(cursor: &str) -> Result<(Value, i64)> {
    if !cursor.len().is_multiple_of(2) || cursor.len() > 8192 {
        return Err(invalid_cursor());
    }
    let bytes: Option<Vec<u8>> = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(cursor.get(i..i + 2)?, 16).ok())
        .collect();
    let parsed: Option<(Value, i64)> = bytes
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| Some((v.get(0)?.clone(), v.get(1)?.as_i64()?)));
    parsed.ok_or_else(invalid_cursor)
}

/// A JSON value as SQLite's `json_extract` returns it, for binding opposite it.
fn sqlite_scalar(v: &Value) -> Arg {
    match v {
        Value::Null => Arg::Text(String::new()),
        Value::Bool(b) => Arg::I64(i64::from(*b)),
        Value::Number(n) => n
            .as_i64()
            .map(Arg::I64)
            .unwrap_or(Arg::F64(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => Arg::Text(s.clone()),
        other => Arg::Text(other.to_string()),
    }
}

/// The lookup fields' targets of a set of values: (field, target id).
fn lookup_targets<'a>(
    module: &'a ModuleDef,
    fields: &Map<String, Value>,
) -> Vec<(&'a FieldDef, i64)> {
    module
        .fields
        .iter()
        .filter(|f| f.field_type == FieldType::Lookup)
        .filter_map(|f| {
            fields
                .get(&f.api_name)
                .and_then(Value::as_i64)
                .map(|id| (f, id))
        })
        .collect()
}

fn email_key_of(module: &ModuleDef, fields: &Map<String, Value>) -> Option<String> {
    let field = module.email_key_field()?;
    fields
        .get(&field.api_name)
        .and_then(Value::as_str)
        .map(email_key)
        .filter(|k| !k.is_empty())
}

async fn write_changes(
    tx: &mut Tx,
    org_id: i64,
    module: &str,
    rows: &[(i64, i64)],
    op: &str,
    origin: Origin,
    at: i64,
) -> Result<()> {
    let (kind, origin_id) = origin.parts();
    for chunk in rows.chunks(INSERT_CHUNK) {
        let mut sql = Sql::new(
            "INSERT INTO changes (org_id, module, record_id, version, op, origin_kind, origin_id, at) VALUES ",
        );
        let org = sql.arg(org_id);
        let m = sql.arg(module);
        let o = sql.arg(op);
        let k = sql.arg(kind);
        let oid = sql.arg(origin_id);
        let t = sql.arg(at);
        for (i, (id, version)) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            let a = sql.arg(*id);
            let b = sql.arg(*version);
            sql.push(&format!(
                "(${org}, ${m}, ${a}, ${b}, ${o}, ${k}, ${oid}, ${t})"
            ));
        }
        tx.x()
            .execute(&sql.text, &sql.args)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

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
        let now = now_ms();
        let mut tx = self.db.begin().await?;
        self.check_lookups(&mut tx, org_id, module, &rows).await?;
        self.check_unique(&mut tx, org_id, module, &rows, None)
            .await?;
        let ids = self.allocate_ids(&mut tx, rows.len()).await?;
        let created_by = match origin {
            Origin::User(id) => Some(id),
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
            for (i, (fields, id)) in chunk_rows.iter().zip(chunk_ids).enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                let a = sql.arg(*id);
                let f = sql.arg(Value::Object(fields.clone()));
                let e = sql.arg(email_key_of(module, fields));
                sql.push(&format!(
                    "(${a}, ${org}, ${m}, 1, ${f}, ${e}, ${by}, ${t}, ${t})"
                ));
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
        insert_refs(&mut tx, org_id, &refs).await?;
        let versions: Vec<(i64, i64)> = ids.iter().map(|id| (*id, 1)).collect();
        write_changes(
            &mut tx,
            org_id,
            &module.api_name,
            &versions,
            "create",
            origin,
            now,
        )
        .await?;
        tx.commit().await?;
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
        #[derive(sqlx::FromRow)]
        struct Id {
            id: i64,
        }
        match self.db.dialect() {
            Dialect::Postgres => {
                let rows: Vec<Id> = tx
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
                let base: Id = tx
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
                let mut sql = Sql::new(
                    "SELECT id FROM records WHERE org_id = $1 AND module = $2 AND deleted_at IS NULL AND id IN (",
                );
                sql.arg(org_id);
                sql.arg(target);
                for (i, id) in chunk.iter().enumerate() {
                    let n = sql.arg(*id);
                    sql.push(&format!("{}${n}", if i > 0 { ", " } else { "" }));
                }
                sql.push(")");
                #[derive(sqlx::FromRow)]
                struct Id {
                    id: i64,
                }
                let found: Vec<Id> = tx
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
                let v = match dialect {
                    Dialect::Sqlite => sql.arg(sqlite_scalar(value)),
                    Dialect::Postgres => sql.arg(value.clone()),
                };
                sql.push(&format!("{} = ${v} LIMIT 1", dialect.json_field(f)));
                #[derive(sqlx::FromRow)]
                struct Id {
                    id: i64,
                }
                let existing: Option<Id> = tx
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

    /// One live record of a module in an org; absent, deleted, another module's
    /// or another org's ids are all 404.
    pub async fn record(&self, org_id: i64, module: &str, id: i64) -> Result<Record> {
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM records r \
             WHERE r.id = $1 AND r.org_id = $2 AND r.module = $3 AND r.deleted_at IS NULL"
        );
        let row: Option<RecordRow> = self
            .db
            .x()
            .fetch_optional(&sql, &crate::args![id, org_id, module])
            .await
            .map_err(db_error)?;
        row.map(Record::from)
            .ok_or_else(|| Error::not_found(module, id))
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
        let now = now_ms();
        let mut tx = self.db.begin().await?;
        let current = self
            .lock_record(&mut tx, org_id, &module.api_name, id, false)
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
        self.check_lookups(&mut tx, org_id, module, std::slice::from_ref(&changed_only))
            .await?;
        self.check_unique(
            &mut tx,
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
        insert_refs(&mut tx, org_id, &refs).await?;
        write_changes(
            &mut tx,
            org_id,
            &module.api_name,
            &[(id, version)],
            "update",
            origin,
            now,
        )
        .await?;
        tx.commit().await?;
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
        let now = now_ms();
        let mut tx = self.db.begin().await?;
        let current = self
            .lock_record(&mut tx, org_id, module, id, !delete)
            .await?;
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
        write_changes(&mut tx, org_id, module, &[(id, version)], op, origin, now).await?;
        tx.commit().await?;
        Ok(Record {
            version,
            updated_at: now,
            deleted_at,
            ..current
        })
    }

    /// The org's recycle bin, newest deletion first.
    pub async fn recycle_bin(&self, org_id: i64, limit: u32) -> Result<Vec<Record>> {
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM records r WHERE r.org_id = $1 AND r.deleted_at IS NOT NULL \
             ORDER BY r.deleted_at DESC, r.id DESC LIMIT $2"
        );
        let rows: Vec<RecordRow> = self
            .db
            .x()
            .fetch_all(&sql, &crate::args![org_id, i64::from(limit)])
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(Record::from).collect())
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

    /// A page of a module's live records.
    pub async fn list_records(
        &self,
        org_id: i64,
        module: &ModuleDef,
        q: &ListQuery,
    ) -> Result<Page> {
        let dialect = self.db.dialect();
        let mut sql = Sql::new(&format!(
            "SELECT {RECORD_COLUMNS} FROM records r WHERE r.org_id = $1 AND r.module = $2 AND r.deleted_at IS NULL"
        ));
        sql.arg(org_id);
        sql.arg(&module.api_name);
        let email_field = module.email_key_field().map(|f| f.api_name.clone());
        for (field, value) in &q.filters {
            push_filter(&mut sql, dialect, field, value, email_field.as_deref());
        }
        let (key_expr, cmp) = match &q.sort {
            SortKey::Id => ("r.id".to_string(), None),
            SortKey::Field(f) => {
                let n = sql.arg(&f.api_name);
                let expr = match dialect {
                    // -9e999 is -Infinity: a missing value sorts before every
                    // number and text, as PostgreSQL's jsonb null does.
                    Dialect::Sqlite => format!("COALESCE({}, -9e999)", dialect.json_field(n)),
                    Dialect::Postgres => {
                        format!("COALESCE({}, 'null'::jsonb)", dialect.json_field(n))
                    }
                };
                (expr, Some(f))
            }
        };
        let (op, dir) = if q.descending {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        if let Some(cursor) = &q.cursor {
            let (value, last_id) = decode_cursor(cursor)?;
            let id = sql.arg(last_id);
            match cmp {
                None => sql.push(&format!(" AND r.id {op} ${id}")),
                Some(_) => {
                    let v = match dialect {
                        Dialect::Sqlite if value.is_null() => sql.arg(Arg::F64(f64::NEG_INFINITY)),
                        Dialect::Sqlite => sql.arg(sqlite_scalar(&value)),
                        Dialect::Postgres => sql.arg(value),
                    };
                    sql.push(&format!(
                        " AND ({key_expr} {op} ${v} OR ({key_expr} = ${v} AND r.id {op} ${id}))"
                    ));
                }
            }
        }
        let limit = q.limit.clamp(1, 1000);
        let l = sql.arg(i64::from(limit) + 1);
        sql.push(&format!(
            " ORDER BY {key_expr} {dir}, r.id {dir} LIMIT ${l}"
        ));
        let rows: Vec<RecordRow> = self
            .db
            .x()
            .fetch_all(&sql.text, &sql.args)
            .await
            .map_err(db_error)?;
        let mut records: Vec<Record> = rows.into_iter().map(Record::from).collect();
        let next_cursor = if records.len() > limit as usize {
            records.truncate(limit as usize);
            records.last().map(|last| {
                let value = match cmp {
                    None => Value::Null,
                    Some(f) => last.fields.get(&f.api_name).cloned().unwrap_or(Value::Null),
                };
                encode_cursor(&value, last.id)
            })
        } else {
            None
        };
        Ok(Page {
            records,
            next_cursor,
        })
    }

    /// Live records of `e-mail key` across several modules of an org (dedup
    /// looks in Leads *and* Contacts, EVT-7); oldest first.
    pub async fn records_by_email(
        &self,
        org_id: i64,
        modules: &[&str],
        email: &str,
    ) -> Result<Vec<Record>> {
        if modules.is_empty() {
            // `IN ()` is not SQL on PostgreSQL.
            return Ok(Vec::new());
        }
        let mut sql = Sql::new(&format!(
            "SELECT {RECORD_COLUMNS} FROM records r WHERE r.org_id = $1 AND r.email_key = $2 AND r.deleted_at IS NULL AND r.module IN ("
        ));
        sql.arg(org_id);
        sql.arg(email_key(email));
        for (i, m) in modules.iter().enumerate() {
            let n = sql.arg(*m);
            sql.push(&format!("{}${n}", if i > 0 { ", " } else { "" }));
        }
        sql.push(") ORDER BY r.created_at, r.id");
        let rows: Vec<RecordRow> = self
            .db
            .x()
            .fetch_all(&sql.text, &sql.args)
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(Record::from).collect())
    }

    /// The records of module `list` related to record `id`: those whose lookup
    /// points at it, and those associated with it many-to-many.
    pub async fn related_records(
        &self,
        org_id: i64,
        id: i64,
        list: &str,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Record>> {
        let sql = format!(
            "SELECT DISTINCT {RECORD_COLUMNS} FROM record_refs x JOIN records r ON r.id = x.from_id \
             WHERE x.org_id = $1 AND x.to_id = $2 AND r.org_id = $1 AND r.module = $3 \
             AND r.deleted_at IS NULL AND r.id > $4 ORDER BY r.id LIMIT $5"
        );
        let rows: Vec<RecordRow> = self
            .db
            .x()
            .fetch_all(
                &sql,
                &crate::args![
                    org_id,
                    id,
                    list,
                    after.unwrap_or(0),
                    i64::from(limit.clamp(1, 1000))
                ],
            )
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(Record::from).collect())
    }

    /// Associates two records of the same org many-to-many under `name` (both
    /// directions, so each lists the other).
    pub async fn associate(&self, org_id: i64, a: i64, b: i64, name: &str) -> Result<()> {
        let mut tx = self.db.begin().await?;
        #[derive(sqlx::FromRow)]
        struct Id {
            id: i64,
        }
        let found: Vec<Id> = tx
            .x()
            .fetch_all(
                "SELECT id FROM records WHERE org_id = $1 AND deleted_at IS NULL AND id IN ($2, $3)",
                &crate::args![org_id, a, b],
            )
            .await
            .map_err(db_error)?;
        for id in [a, b] {
            if !found.iter().any(|f| f.id == id) {
                return Err(Error::not_found("Record", id));
            }
        }
        insert_refs(
            &mut tx,
            org_id,
            &[(a, name.to_string(), b), (b, name.to_string(), a)],
        )
        .await?;
        tx.commit().await
    }

    /// Removes a many-to-many association (both directions); 404 when the two
    /// were not associated under `name`.
    pub async fn dissociate(&self, org_id: i64, a: i64, b: i64, name: &str) -> Result<()> {
        let n = self
            .db
            .x()
            .execute(
                "DELETE FROM record_refs WHERE org_id = $1 AND field = $2 \
                 AND ((from_id = $3 AND to_id = $4) OR (from_id = $4 AND to_id = $3))",
                &crate::args![org_id, name, a, b],
            )
            .await
            .map_err(db_error)?;
        if n == 0 {
            return Err(Error::not_found("Association", format!("{a}-{b}")));
        }
        Ok(())
    }

    /// Change-log rows of an org after `after`, oldest first.
    pub async fn changes_after(&self, org_id: i64, after: i64, limit: u32) -> Result<Vec<Change>> {
        self.db
            .x()
            .fetch_all(
                "SELECT seq, module, record_id, version, op, origin_kind, origin_id, at FROM changes \
                 WHERE org_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                &crate::args![org_id, after, i64::from(limit)],
            )
            .await
            .map_err(db_error)
    }
}

fn push_filter(
    sql: &mut Sql,
    dialect: Dialect,
    field: &FieldDef,
    value: &Value,
    email_field: Option<&str>,
) {
    if Some(field.api_name.as_str()) == email_field {
        let n = sql.arg(email_key(value.as_str().unwrap_or_default()));
        sql.push(&format!(" AND r.email_key = ${n}"));
        return;
    }
    let f = sql.arg(&field.api_name);
    match field.field_type {
        FieldType::Email => {
            let n = sql.arg(email_key(value.as_str().unwrap_or_default()));
            sql.push(&format!(
                " AND lower({}) = ${n}",
                dialect.json_field_text(f)
            ));
        }
        FieldType::Multiselect => {
            let n = sql.arg(value.as_str().unwrap_or_default());
            match dialect {
                Dialect::Sqlite => sql.push(&format!(
                    " AND EXISTS (SELECT 1 FROM json_each(r.fields, '$.' || ${f}) WHERE value = ${n})"
                )),
                Dialect::Postgres => sql.push(&format!(" AND jsonb_exists(r.fields -> ${f}, ${n})")),
            }
        }
        _ => {
            let n = match dialect {
                Dialect::Sqlite => sql.arg(sqlite_scalar(value)),
                Dialect::Postgres => sql.arg(value.clone()),
            };
            sql.push(&format!(" AND {} = ${n}", dialect.json_field(f)));
        }
    }
}

async fn insert_refs(tx: &mut Tx, org_id: i64, refs: &[(i64, String, i64)]) -> Result<()> {
    for chunk in refs.chunks(INSERT_CHUNK) {
        let mut sql = Sql::new("INSERT INTO record_refs (org_id, from_id, field, to_id) VALUES ");
        let org = sql.arg(org_id);
        for (i, (from, field, to)) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            let a = sql.arg(*from);
            let b = sql.arg(field);
            let c = sql.arg(*to);
            sql.push(&format!("(${org}, ${a}, ${b}, ${c})"));
        }
        sql.push(" ON CONFLICT DO NOTHING");
        tx.x()
            .execute(&sql.text, &sql.args)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}
