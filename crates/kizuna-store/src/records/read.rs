//! Reading records: one, lists with filters, sorts and cursors, related lists,
//! associations, the recycle bin and the change log.

use super::{
    Change, EmailHolder, ListQuery, Page, RECORD_COLUMNS, RawRecord, Record, RecordRow, RefKind,
    SortKey, Sql, insert_refs,
};
use crate::db::{Arg, Dialect, IdRow, Rowed, Tx, db_error};
use crate::{Store, sort_index};
use kizuna_domain::field::{FieldDef, FieldType, ModuleDef};
use kizuna_domain::validate::email_key;
use kizuna_domain::{Error, Result};
use rusqlite::OptionalExtension;
use serde_json::{Value, json};

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

impl Store {
    /// One live record of a module in an org; absent, deleted, another module's
    /// or another org's ids are all 404.
    pub async fn record(&self, org_id: i64, module: &str, id: i64) -> Result<Record> {
        self.record_raw(org_id, module, id).await?.try_into()
    }

    /// `record` with its field values as stored, undecoded.
    pub async fn record_raw(&self, org_id: i64, module: &str, id: i64) -> Result<RawRecord> {
        const SQL: &str = concat!(
            "SELECT ",
            super::record_columns!(),
            " FROM records r \
             WHERE r.id = $1 AND r.org_id = $2 AND r.module = $3 AND r.deleted_at IS NULL"
        );
        let record = match &self.reader {
            Some(reader) => reader.read(|c| {
                c.prepare_cached(SQL)?
                    .query_row(
                        rusqlite::named_params! {"$1": id, "$2": org_id, "$3": module},
                        RawRecord::from_sqlite,
                    )
                    .optional()
            })?,
            None => self
                .db
                .x()
                .fetch_optional(SQL, &crate::args![id, org_id, module])
                .await
                .map_err(db_error)?,
        };
        record.ok_or_else(|| Error::not_found(module, id))
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

    /// A page of a module's live records.
    ///
    /// A list sorted by a field reads its order in two stretches, each one
    /// index range (`sort_index.rs`): the records without a value (first when
    /// ascending, last when descending, as SQL sorts NULL), and those with
    /// one, by (value, id). A page that crosses from one stretch to the other
    /// reads both.
    pub async fn list_records(
        &self,
        org_id: i64,
        module: &ModuleDef,
        q: &ListQuery,
    ) -> Result<Page> {
        let limit = q.limit.clamp(1, 1000) as usize;
        let mut records: Vec<Record> = Vec::new();
        for stretch in stretches(q)? {
            let want = limit + 1 - records.len();
            let sql = list_sql(self.dialect(), org_id, module, q, &stretch, want)?;
            let rows: Vec<RecordRow> = self
                .db
                .x()
                .fetch_all(&sql.text, &sql.args)
                .await
                .map_err(db_error)?;
            records.extend(rows.into_iter().map(Record::from));
            if records.len() > limit {
                break;
            }
        }
        let next_cursor = if records.len() > limit {
            records.truncate(limit);
            records.last().map(|last| {
                let value = match &q.sort {
                    SortKey::Id => Value::Null,
                    SortKey::Field(f) => {
                        last.fields.get(&f.api_name).cloned().unwrap_or(Value::Null)
                    }
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

    /// The database's plan of each query `list_records(q)` may run, as it
    /// words it: shows whether a sorted list walks its index.
    pub async fn explain_list(
        &self,
        org_id: i64,
        module: &ModuleDef,
        q: &ListQuery,
    ) -> Result<Vec<String>> {
        let mut lines = Vec::new();
        for stretch in stretches(q)? {
            let sql = list_sql(self.dialect(), org_id, module, q, &stretch, 51)?;
            lines.extend(self.explain(&sql.text, &sql.args).await?);
        }
        Ok(lines)
    }

    /// The database's plan of one statement, line by line.
    pub(crate) async fn explain(&self, sql: &str, args: &[Arg]) -> Result<Vec<String>> {
        let explain = match self.dialect() {
            Dialect::Sqlite => "EXPLAIN QUERY PLAN ",
            Dialect::Postgres => "EXPLAIN ",
        };
        let rows: Vec<PlanLine> = self
            .db
            .x()
            .fetch_all(&format!("{explain}{sql}"), args)
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Live records of `e-mail key` across several modules of an org (dedup
    /// looks in Leads *and* Contacts, EVT-7); oldest first.
    pub async fn records_by_email(
        &self,
        org_id: i64,
        modules: &[&str],
        email: &str,
    ) -> Result<Vec<Record>> {
        // The modules are filtered here, not in SQL: see `by_email_keys_in`.
        let rows: Vec<RecordRow> = self
            .db
            .x()
            .fetch_all(
                &format!(
                    "SELECT {RECORD_COLUMNS} FROM records r WHERE r.org_id = $1 AND r.email_key = $2 \
                     AND r.deleted_at IS NULL ORDER BY r.created_at, r.id"
                ),
                &crate::args![org_id, email_key(email)],
            )
            .await
            .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .filter(|r| modules.contains(&r.module.as_str()))
            .map(Record::from)
            .collect())
    }

    /// The modules that have live records related to record `id` (by a
    /// lookup or an association), for its page's related lists.
    pub async fn related_modules(&self, org_id: i64, id: i64) -> Result<Vec<String>> {
        #[derive(sqlx::FromRow)]
        struct ModuleRow {
            module: String,
        }
        let sql = format!(
            "SELECT module FROM ({}) related ORDER BY module",
            related_arms("r.module", "").join(" UNION ")
        );
        let rows: Vec<ModuleRow> = self
            .db
            .x()
            .fetch_all(&sql, &crate::args![org_id, id])
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(|r| r.module).collect())
    }

    /// The records of module `list` related to record `id`: those whose lookup
    /// points at it, and those associated with it many-to-many. Each way is
    /// read in id order up to the page's size and the two are merged here:
    /// as one `UNION` the database would read and sort every related record
    /// first (a Campaign's 100,000 attendees for each page).
    pub async fn related_records(
        &self,
        org_id: i64,
        id: i64,
        list: &str,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Record>> {
        let limit = limit.clamp(1, 1000) as usize;
        let mut out: Vec<Record> = Vec::new();
        for arm in related_arms(RECORD_COLUMNS, "AND r.module = $3 AND r.id > $4") {
            let sql = format!("{arm} ORDER BY r.id LIMIT $5");
            let rows: Vec<RecordRow> = self
                .db
                .x()
                .fetch_all(
                    &sql,
                    &crate::args![org_id, id, list, after.unwrap_or(0), limit as i64],
                )
                .await
                .map_err(db_error)?;
            out.extend(rows.into_iter().map(Record::from));
        }
        out.sort_by_key(|r| r.id);
        out.dedup_by_key(|r| r.id);
        out.truncate(limit);
        Ok(out)
    }

    /// Associates two records of the same org many-to-many under `name` (one
    /// row, read both ways: each lists the other).
    pub async fn associate(&self, org_id: i64, a: i64, b: i64, name: &str) -> Result<()> {
        let mut tx = self.db.begin().await?;
        let found: Vec<IdRow> = tx
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
        self.associate_in(&mut tx, org_id, &[(a, b)], name).await?;
        tx.commit().await
    }

    /// Associates pairs of live records inside the caller's transaction; a
    /// pair already associated stays as it is. One row per pair, `from` the
    /// pair's first record: put the record of the longer list second (a
    /// Campaign after its members), whose list then reads an index in order.
    pub async fn associate_in(
        &self,
        tx: &mut Tx,
        org_id: i64,
        pairs: &[(i64, i64)],
        name: &str,
    ) -> Result<()> {
        let refs: Vec<(i64, String, i64)> = pairs
            .iter()
            .map(|(a, b)| (*a, name.to_string(), *b))
            .collect();
        insert_refs(tx, org_id, &refs, RefKind::Association).await
    }

    /// Removes associations inside the caller's transaction; returns how many
    /// pairs were associated.
    pub async fn dissociate_in(
        &self,
        tx: &mut Tx,
        org_id: i64,
        pairs: &[(i64, i64)],
        name: &str,
    ) -> Result<u64> {
        let mut n = 0;
        for (a, b) in pairs {
            n += u64::from(
                tx.x()
                    .execute(
                        "DELETE FROM record_refs WHERE org_id = $1 AND field = $2 AND pair = 1 \
                         AND ((from_id = $3 AND to_id = $4) OR (from_id = $4 AND to_id = $3))",
                        &crate::args![org_id, name, *a, *b],
                    )
                    .await
                    .map_err(db_error)?
                    > 0,
            );
        }
        Ok(n)
    }

    /// Removes a many-to-many association; 404 when the two
    /// were not associated under `name`.
    pub async fn dissociate(&self, org_id: i64, a: i64, b: i64, name: &str) -> Result<()> {
        let mut tx = self.db.begin().await?;
        if self.dissociate_in(&mut tx, org_id, &[(a, b)], name).await? == 0 {
            return Err(Error::not_found("Association", format!("{a}-{b}")));
        }
        tx.commit().await
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
            let n = sql.json_arg(dialect, value);
            sql.push(&format!(" AND {} = ${n}", dialect.json_field(f)));
        }
    }
}

/// One index range of a list's order (see `list_records`).
enum Stretch {
    /// Every record, by id, after the cursor's id.
    All { after: Option<i64> },
    /// The records without a value of the sort field, by id.
    Missing { after: Option<i64> },
    /// The records with a value, by (value, id), after the cursor's.
    Valued { after: Option<(Value, i64)> },
}

/// The stretches a page of `q` reads, in order, from its cursor on.
fn stretches(q: &ListQuery) -> Result<Vec<Stretch>> {
    let cursor = q.cursor.as_deref().map(decode_cursor).transpose()?;
    Ok(match (&q.sort, cursor, q.descending) {
        (SortKey::Id, c, _) => vec![Stretch::All {
            after: c.map(|(_, id)| id),
        }],
        (SortKey::Field(_), None, false) => vec![
            Stretch::Missing { after: None },
            Stretch::Valued { after: None },
        ],
        (SortKey::Field(_), None, true) => vec![
            Stretch::Valued { after: None },
            Stretch::Missing { after: None },
        ],
        (SortKey::Field(_), Some((v, id)), false) if v.is_null() => vec![
            Stretch::Missing { after: Some(id) },
            Stretch::Valued { after: None },
        ],
        (SortKey::Field(_), Some((v, id)), true) if v.is_null() => {
            vec![Stretch::Missing { after: Some(id) }]
        }
        (SortKey::Field(_), Some(c), false) => vec![Stretch::Valued { after: Some(c) }],
        (SortKey::Field(_), Some(c), true) => vec![
            Stretch::Valued { after: Some(c) },
            Stretch::Missing { after: None },
        ],
    })
}

/// The query of one stretch of a list, `limit` rows. The module and the sort
/// expression are literals, as in the sort index's definition.
fn list_sql(
    dialect: Dialect,
    org_id: i64,
    module: &ModuleDef,
    q: &ListQuery,
    stretch: &Stretch,
    limit: usize,
) -> Result<Sql> {
    let mut sql = Sql::new(&format!(
        "SELECT {RECORD_COLUMNS} FROM records r WHERE r.org_id = $1 AND r.module = {} \
         AND r.deleted_at IS NULL",
        sort_index::literal(&module.api_name)?
    ));
    sql.arg(org_id);
    let email_field = module.email_key_field().map(|f| f.api_name.clone());
    for (field, value) in &q.filters {
        push_filter(&mut sql, dialect, field, value, email_field.as_deref());
    }
    let (op, dir) = if q.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    let value = match &q.sort {
        SortKey::Field(f) => sort_index::value_expr(dialect, &f.api_name)?,
        SortKey::Id => String::new(),
    };
    let after_id = |sql: &mut Sql, after: &Option<i64>| {
        if let Some(id) = after {
            let n = sql.arg(*id);
            sql.push(&format!(" AND r.id {op} ${n}"));
        }
    };
    let order = match stretch {
        Stretch::All { after } => {
            after_id(&mut sql, after);
            format!("r.id {dir}")
        }
        // All values missing, the order is by id. PostgreSQL sees that the
        // index hands the rows over in that order only when told to order by
        // the (missing) value first; SQLite only when not.
        Stretch::Missing { after } => {
            sql.push(&format!(" AND {value} IS NULL"));
            after_id(&mut sql, after);
            match dialect {
                Dialect::Sqlite => format!("r.id {dir}"),
                Dialect::Postgres => format!("{value} {dir}, r.id {dir}"),
            }
        }
        Stretch::Valued { after: None } => {
            sql.push(&format!(" AND {value} IS NOT NULL"));
            format!("{value} {dir}, r.id {dir}")
        }
        Stretch::Valued {
            after: Some((v, id)),
        } => {
            let v = sql.json_arg(dialect, v);
            let id = sql.arg(*id);
            sql.push(&format!(" AND ({value}, r.id) {op} (${v}, ${id})"));
            format!("{value} {dir}, r.id {dir}")
        }
    };
    let n = sql.arg(limit as i64);
    sql.push(&format!(" ORDER BY {order} LIMIT ${n}"));
    Ok(sql)
}

/// The live records related to record `$2` of org `$1`, as `columns` of
/// records `r` (with `more` conditions on them), read two ways: those whose
/// lookup points at it or that are associated to it (`to_id`), and those it
/// is associated to (`from_id`, associations only). Each reads the references
/// first (on SQLite `CROSS JOIN` fixes that order: its planner would
/// otherwise walk every record of the org and probe the references, 86 ms a
/// page at 1,000,000 contacts: BENCHMARKS.md, ui-pages).
fn related_arms(columns: &str, more: &str) -> [String; 2] {
    let arm = |x_side: &str, r_side: &str, only: &str| {
        format!(
            "SELECT DISTINCT {columns} FROM record_refs x CROSS JOIN records r \
             WHERE r.id = x.{r_side} AND x.org_id = $1 AND x.{x_side} = $2 {only} AND r.org_id = $1 \
             AND r.deleted_at IS NULL {more}"
        )
    };
    [
        arm("to_id", "from_id", ""),
        arm("from_id", "to_id", "AND x.pair = 1"),
    ]
}

/// One line of a query plan: SQLite's `detail` column, PostgreSQL's only one.
struct PlanLine(String);

impl<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> for PlanLine {
    fn from_row(row: &'r sqlx::sqlite::SqliteRow) -> sqlx::Result<Self> {
        use sqlx::Row;
        row.try_get("detail").map(PlanLine)
    }
}

impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for PlanLine {
    fn from_row(row: &'r sqlx::postgres::PgRow) -> sqlx::Result<Self> {
        use sqlx::Row;
        row.try_get(0).map(PlanLine)
    }
}

impl Store {
    /// Records of a module by id, deleted ones included (a sync must see a
    /// delete), inside the caller's transaction; ids absent or of another org
    /// are simply not returned.
    pub async fn records_in(
        &self,
        tx: &mut Tx,
        org_id: i64,
        module: &str,
        ids: &[i64],
    ) -> Result<Vec<Record>> {
        let d = self.db.dialect();
        // In the order of `Stored`'s fields, which is how each row decodes.
        let columns = d.json_rows(&[
            "r.id",
            "r.module",
            "r.version",
            "r.created_at",
            "r.updated_at",
            "r.deleted_at",
            &d.as_json("r.fields"),
        ]);
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(super::INSERT_CHUNK) {
            let mut sql = Sql::new(&format!(
                "SELECT {columns} FROM records r WHERE r.org_id = $1 AND r.module = $2 AND r.id IN ("
            ));
            sql.arg(org_id);
            sql.arg(module);
            sql.push_list(chunk.iter().copied());
            sql.push(")");
            let rows: Vec<Record> = tx
                .x()
                .fetch_json(&sql.text, &sql.args)
                .await
                .map_err(db_error)?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// Live records of several modules holding any of the e-mail keys, oldest
    /// first, inside the caller's transaction, as far as dedup needs them (id,
    /// module, version: no fields to read and decode): the batch form of
    /// `records_by_email` for the sync engine (EVT-7 dedup across Leads and
    /// Contacts).
    pub async fn email_holders_in(
        &self,
        tx: &mut Tx,
        org_id: i64,
        modules: &[&str],
        keys: &[String],
    ) -> Result<Vec<EmailHolder>> {
        by_email_keys_in(
            tx,
            org_id,
            modules,
            keys,
            "r.email_key, r.id, r.module, r.version",
        )
        .await
    }

    /// `email_holders_in` with whole records, for a caller that reads their
    /// fields.
    pub async fn records_by_email_keys_in(
        &self,
        tx: &mut Tx,
        org_id: i64,
        modules: &[&str],
        keys: &[String],
    ) -> Result<Vec<(String, Record)>> {
        #[derive(sqlx::FromRow)]
        struct Keyed {
            email_key: String,
            #[sqlx(flatten)]
            record: RecordRow,
        }
        impl OfModule for Keyed {
            fn module(&self) -> &str {
                &self.record.module
            }
        }
        let columns = format!("r.email_key, {RECORD_COLUMNS}");
        let rows: Vec<Keyed> = by_email_keys_in(tx, org_id, modules, keys, &columns).await?;
        Ok(rows
            .into_iter()
            .map(|k| (k.email_key, Record::from(k.record)))
            .collect())
    }
}

impl Store {
    /// Live records of a module whose text field `field`, trimmed and in
    /// lower case, is one of `keys` (given trimmed and in lower case), oldest
    /// first, inside the caller's transaction: how a sync finds the record
    /// that already exists under a name (an account by its name). SQLite's
    /// `lower` folds ASCII letters only; names differing in the case of
    /// other letters are not matched there.
    ///
    /// The names are spelled as literals (`name_key_expr`), so that the
    /// name-key indexes of migration 0013 (accounts and products by name)
    /// serve it; without one it reads every record of the module.
    pub async fn records_by_text_keys_in(
        &self,
        tx: &mut Tx,
        org_id: i64,
        module: &str,
        field: &str,
        keys: &[String],
    ) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        for chunk in keys.chunks(super::INSERT_CHUNK) {
            let sql = text_keys_sql(self.db.dialect(), org_id, (module, field), chunk)?;
            let rows: Vec<RecordRow> = tx
                .x()
                .fetch_all(&sql.text, &sql.args)
                .await
                .map_err(db_error)?;
            out.extend(rows.into_iter().map(Record::from));
        }
        Ok(out)
    }
}

impl Store {
    /// The database's plan of `records_by_text_keys_in`, as it words it:
    /// shows whether the names are found by a name-key index.
    pub async fn explain_text_keys(
        &self,
        org_id: i64,
        (module, field): (&str, &str),
        keys: &[String],
    ) -> Result<Vec<String>> {
        let sql = text_keys_sql(self.dialect(), org_id, (module, field), keys)?;
        self.explain(&sql.text, &sql.args).await
    }
}

fn text_keys_sql(
    dialect: Dialect,
    org_id: i64,
    (module, field): (&str, &str),
    keys: &[String],
) -> Result<Sql> {
    let key = name_key_expr(dialect, field)?;
    let module = sort_index::literal(module)?;
    let mut sql = Sql::new(&format!(
        "SELECT {RECORD_COLUMNS} FROM records r WHERE org_id = $1 AND module = {module} \
         AND deleted_at IS NULL AND {key} IN ("
    ));
    sql.arg(org_id);
    sql.push_list(keys.iter());
    sql.push(") ORDER BY r.created_at, r.id");
    Ok(sql)
}

/// A record's text field `field` trimmed and in lower case, unqualified, as
/// the name-key indexes of migration 0013 spell it (a query uses an
/// expression index only when it spells the very same expression).
fn name_key_expr(dialect: Dialect, field: &str) -> Result<String> {
    sort_index::literal(field)?;
    Ok(match dialect {
        Dialect::Sqlite => format!("lower(trim(CAST(json_extract(fields, '$.{field}') AS TEXT)))"),
        Dialect::Postgres => format!("lower(trim(fields ->> '{field}'))"),
    })
}

/// A row that knows its record's module.
trait OfModule {
    fn module(&self) -> &str;
}

impl OfModule for EmailHolder {
    fn module(&self) -> &str {
        &self.module
    }
}

/// `columns` of the live records of `modules` holding any of the e-mail
/// keys, oldest first, in `tx`. The statement names no module: with
/// `module IN (…)` beside the keys, a planner without fresh statistics
/// (SQLite always; PostgreSQL right after a large import) takes
/// `records_list` — every record of the module, per statement — over the
/// e-mail index; without it the e-mail index is the only one that fits.
/// The few rows of other modules sharing an address are dropped here.
async fn by_email_keys_in<T: Rowed + OfModule>(
    tx: &mut Tx,
    org_id: i64,
    modules: &[&str],
    keys: &[String],
    columns: &str,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    if modules.is_empty() {
        return Ok(out);
    }
    for chunk in keys.chunks(super::INSERT_CHUNK) {
        let mut sql = Sql::new(&format!(
            "SELECT {columns} FROM records r WHERE r.org_id = $1 \
             AND r.deleted_at IS NULL AND r.email_key IN ("
        ));
        sql.arg(org_id);
        sql.push_list(chunk.iter());
        sql.push(") ORDER BY r.created_at, r.id");
        let rows: Vec<T> = tx
            .x()
            .fetch_all(&sql.text, &sql.args)
            .await
            .map_err(db_error)?;
        out.extend(rows.into_iter().filter(|r| modules.contains(&r.module())));
    }
    Ok(out)
}

impl Store {
    /// Who created each of the records `ids` of an org (`None`: an
    /// integration or the system did), inside the caller's transaction.
    pub async fn record_creators_in(
        &self,
        tx: &mut Tx,
        org_id: i64,
        ids: &[i64],
    ) -> Result<Vec<(i64, Option<i64>)>> {
        #[derive(sqlx::FromRow)]
        struct Creator {
            id: i64,
            created_by: Option<i64>,
        }
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(super::INSERT_CHUNK) {
            let mut sql =
                Sql::new("SELECT id, created_by FROM records WHERE org_id = $1 AND id IN (");
            sql.arg(org_id);
            sql.push_list(chunk.iter().copied());
            sql.push(")");
            let rows: Vec<Creator> = tx
                .x()
                .fetch_all(&sql.text, &sql.args)
                .await
                .map_err(db_error)?;
            out.extend(rows.into_iter().map(|c| (c.id, c.created_by)));
        }
        Ok(out)
    }
}
