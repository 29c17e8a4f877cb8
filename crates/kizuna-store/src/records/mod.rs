//! Records: create, read, update, delete to the recycle bin, restore, purge;
//! lookups and associations for related lists; every change written to the
//! change log in the change's own transaction.

mod read;
mod write;

use crate::db::{Arg, Tx, db_error};
use kizuna_domain::field::{FieldDef, FieldType, ModuleDef};
use kizuna_domain::validate::email_key;
use kizuna_domain::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sqlx::types::Json;

/// Who made a change: recorded with every change-log row, so that a sync can
/// tell its own writes from everybody else's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    User(i64),
    /// An API key (`key`) of a user (`user`, recorded as a new record's
    /// creator).
    Key {
        key: i64,
        user: i64,
    },
    Integration(i64),
    System,
}

impl Origin {
    fn parts(self) -> (&'static str, Option<i64>) {
        match self {
            Origin::User(id) => ("user", Some(id)),
            Origin::Key { key, .. } => ("key", Some(key)),
            Origin::Integration(id) => ("integration", Some(id)),
            Origin::System => ("system", None),
        }
    }
}

/// A record with its field values in the form `F`: decoded (`Record`), as
/// the database hands them over (`RecordRow`), or as stored, undecoded
/// (`RawRecord`, for a read that only passes the record on).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Stored<F> {
    pub id: i64,
    pub module: String,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<i64>,
    pub fields: F,
}

pub type Record = Stored<Map<String, Value>>;
pub(crate) type RecordRow = Stored<Json<Map<String, Value>>>;
pub type RawRecord = Stored<Json<Box<RawValue>>>;

impl<F> Stored<F> {
    /// The same record with its fields in another form.
    fn map_fields<G>(self, f: impl FnOnce(F) -> G) -> Stored<G> {
        Stored {
            id: self.id,
            module: self.module,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            deleted_at: self.deleted_at,
            fields: f(self.fields),
        }
    }
}

impl RawRecord {
    /// A row of `record_columns!()` read by `SqliteReader`, by position.
    pub(crate) fn from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRecord> {
        let fields: String = r.get(3)?;
        let fields = RawValue::from_string(fields).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e))
        })?;
        Ok(RawRecord {
            id: r.get(0)?,
            module: r.get(1)?,
            version: r.get(2)?,
            fields: Json(fields),
            created_at: r.get(4)?,
            updated_at: r.get(5)?,
            deleted_at: r.get(6)?,
        })
    }
}

impl TryFrom<RawRecord> for Record {
    type Error = Error;

    fn try_from(r: RawRecord) -> Result<Record> {
        let fields = serde_json::from_str(r.fields.get())
            .map_err(|e| Error::internal(format!("record {}: stored fields: {e}", r.id)))?;
        Ok(r.map_fields(|_| fields))
    }
}

impl From<RecordRow> for Record {
    fn from(r: RecordRow) -> Self {
        r.map_fields(|f| f.0)
    }
}

/// A live record holding an e-mail key, as far as dedup needs it (EVT-7).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EmailHolder {
    pub email_key: String,
    pub id: i64,
    pub module: String,
    pub version: i64,
}

/// The columns of a `RecordRow`, as a literal for `concat!`.
macro_rules! record_columns {
    () => {
        "r.id, r.module, r.version, r.fields, r.created_at, r.updated_at, r.deleted_at"
    };
}
pub(crate) use record_columns;

pub(crate) const RECORD_COLUMNS: &str = record_columns!();

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

/// Rows per multi-row INSERT, and ids or keys per `IN (…)`: a whole chunk of
/// the sync engine (500 changes) in one statement, since each statement is a
/// round trip (to PostgreSQL, or to sqlx's SQLite worker thread). Well under
/// both backends' parameter limits (PostgreSQL 65,535; SQLite 32,766 `?`, at
/// most 10 per row).
pub(crate) const INSERT_CHUNK: usize = 500;

/// A SQL statement under construction, numbering its `$n` parameters.
pub(crate) struct Sql {
    pub(crate) text: String,
    pub(crate) args: Vec<Arg>,
}

impl Sql {
    pub(crate) fn new(text: &str) -> Self {
        Sql {
            text: text.to_string(),
            args: Vec::new(),
        }
    }

    /// Adds a parameter and returns its number.
    pub(crate) fn arg(&mut self, a: impl Into<Arg>) -> usize {
        self.args.push(a.into());
        self.args.len()
    }

    /// Adds a JSON value to compare with a field's value: on SQLite the
    /// scalar `json_extract` gives, on PostgreSQL the `jsonb` itself.
    pub(crate) fn json_arg(&mut self, dialect: crate::Dialect, v: &Value) -> usize {
        match dialect {
            crate::Dialect::Sqlite => self.arg(sqlite_scalar(v)),
            crate::Dialect::Postgres => self.arg(v.clone()),
        }
    }

    pub(crate) fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }

    /// Binds each item and writes `$a, $b, …` (the inside of an `IN (…)`).
    pub(crate) fn push_list<A: Into<Arg>>(&mut self, items: impl IntoIterator<Item = A>) {
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            let n = self.arg(item);
            self.push_param(n);
        }
    }

    /// Binds each id and writes `unnest(ARRAY[$a, $b, …]::bigint[]) AS k(id)`
    /// (PostgreSQL): a row per id, for a LATERAL subquery that seeks each one
    /// whatever the statistics say (`links.rs`, `records/write.rs`).
    pub(crate) fn push_each_id(&mut self, ids: &[i64]) {
        self.push("unnest(ARRAY[");
        self.push_list(ids.iter().copied());
        self.push("]::bigint[]) AS k(id)");
    }

    /// Writes `$n`. A chunk's multi-row statements have tens of thousands of
    /// parameters, and `format!` on each was a few per cent of a sync's time
    /// (BENCHMARKS.md, desk-sync).
    pub(crate) fn push_param(&mut self, n: usize) {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        let mut rest = n;
        loop {
            start -= 1;
            digits[start] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        self.text.push('$');
        for d in &digits[start..] {
            self.text.push(char::from(*d));
        }
    }

    /// Writes one row of a multi-row `VALUES`, `($a, $b, …)`, after a `, `
    /// unless it is the first.
    pub(crate) fn push_row(&mut self, first: bool, params: &[usize]) {
        if !first {
            self.push(", ");
        }
        self.text.push('(');
        for (i, n) in params.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.push_param(*n);
        }
        self.text.push(')');
    }
}

/// A JSON value as SQLite's `json_extract` returns it, for binding opposite it.
pub(crate) fn sqlite_scalar(v: &Value) -> Arg {
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
pub(crate) fn lookup_targets<'a>(
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

pub(crate) fn email_key_of(module: &ModuleDef, fields: &Map<String, Value>) -> Option<String> {
    let field = module.email_key_field()?;
    fields
        .get(&field.api_name)
        .and_then(Value::as_str)
        .map(email_key)
        .filter(|k| !k.is_empty())
}

pub(crate) async fn write_changes(
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
            let a = sql.arg(*id);
            let b = sql.arg(*version);
            sql.push_row(i == 0, &[org, m, a, b, o, k, oid, t]);
        }
        tx.x()
            .execute(&sql.text, &sql.args)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

/// What a `record_refs` row is: a lookup points one way (the record holding
/// it is listed on its target's page); an association is one row for both
/// ways (each record is listed on the other's page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefKind {
    Lookup,
    Association,
}

pub(crate) async fn insert_refs(
    tx: &mut Tx,
    org_id: i64,
    refs: &[(i64, String, i64)],
    kind: RefKind,
) -> Result<()> {
    for chunk in refs.chunks(INSERT_CHUNK) {
        let mut sql =
            Sql::new("INSERT INTO record_refs (org_id, from_id, field, to_id, pair) VALUES ");
        let org = sql.arg(org_id);
        let pair = sql.arg(i64::from(kind == RefKind::Association));
        for (i, (from, field, to)) in chunk.iter().enumerate() {
            let a = sql.arg(*from);
            let b = sql.arg(field);
            let c = sql.arg(*to);
            sql.push_row(i == 0, &[org, a, b, c, pair]);
        }
        sql.push(" ON CONFLICT DO NOTHING");
        tx.x()
            .execute(&sql.text, &sql.args)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Sql;

    #[test]
    fn a_multi_row_statement_numbers_each_parameter_it_writes() {
        let mut sql = Sql::new("INSERT INTO t (a, b, c) VALUES ");
        sql.push_row(true, &[1, 9, 10]);
        sql.push_row(false, &[100, 12_345, 0]);
        sql.push(" AND x IN (");
        sql.push_list([5_i64, 6]);
        sql.push(")");
        assert_eq!(
            sql.text,
            "INSERT INTO t (a, b, c) VALUES ($1, $9, $10), ($100, $12345, $0) AND x IN ($1, $2)"
        );
        assert_eq!(sql.args.len(), 2);
    }
}
