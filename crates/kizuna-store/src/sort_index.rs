//! Sortable fields. Field values live as JSON in one column, so a list sorted
//! by a field would read every record of the module and keep the top of them
//! (1.3 s at 1,000,000 contacts: BENCHMARKS.md, ui-pages). A field marked
//! sortable gets an expression index over its value instead, one per
//! (module, field) shared by every org that has that field sortable:
//!
//! `(org_id, <the value>, id) WHERE module = 'M' AND deleted_at IS NULL`
//!
//! Both databases use an expression index only for a query that spells the
//! very same expression, and a partial index only for a query whose `WHERE`
//! names the same literals — so the list query (`records/read.rs`) takes the
//! expression from `value_expr` and the module from `literal` here, and
//! never as bound parameters.
//!
//! Which fields are sortable is data (`fields.sortable`); the indexes follow
//! it, one change at a time across processes (`Turn`): an index is made
//! before its field is marked, dropped after the last org unmarks it, and
//! reconciled when the store opens (what a crash between the two steps left:
//! a mark without its index, or an index nobody marks).

use crate::db::{Db, Exec, Tx, db_error};
use crate::{Dialect, Store};
use blake2::{Blake2b, Digest, digest::consts::U8};
use kizuna_domain::field::{FieldDef, FieldType, ModuleDef, is_valid_api_name};
use kizuna_domain::{Error, Kind, Result, Text};
use std::collections::{BTreeMap, BTreeSet};

/// The longest text (in characters) a sortable field may hold: an index entry
/// must fit PostgreSQL's B-tree page (2,704 bytes; 500 characters of Japanese
/// are 1,500 bytes of UTF-8).
const MAX_SORTABLE_LENGTH: u32 = 500;

const INDEX_PREFIX: &str = "records_sort_";

/// The index of a sortable (module, field): a digest of the pair, since a
/// module's and a field's names together may exceed PostgreSQL's 63-byte
/// identifiers.
pub fn sort_index_name(module: &str, field: &str) -> String {
    let digest = Blake2b::<U8>::digest(format!("{module}\0{field}").as_bytes());
    format!("{INDEX_PREFIX}{}", crate::users::hex(&digest))
}

/// An API name as an SQL string literal. API names are letters, digits and
/// underscores (checked when a module or field is made); one that is not is
/// refused here rather than spliced into SQL.
pub(crate) fn literal(name: &str) -> Result<String> {
    if is_valid_api_name(name) {
        Ok(format!("'{name}'"))
    } else {
        Err(Error::internal(format!(
            "{name:?} is not an API name and cannot be sorted by"
        )))
    }
}

/// A record's value of `field` as lists sort by it, unqualified (the index
/// is on one table; the list query reads one table).
pub(crate) fn value_expr(dialect: Dialect, field: &str) -> Result<String> {
    literal(field)?;
    Ok(match dialect {
        Dialect::Sqlite => format!("json_extract(fields, '$.{field}')"),
        // A JSON null is no value, as SQLite's json_extract reads it.
        Dialect::Postgres => format!("(NULLIF(fields -> '{field}', 'null'::jsonb))"),
    })
}

/// On PostgreSQL the index is built `CONCURRENTLY`: writes to `records` go
/// on meanwhile (a plain build would hold them for its seconds, every org's).
fn create_sql(dialect: Dialect, module: &str, field: &str) -> Result<String> {
    Ok(format!(
        "CREATE INDEX {}IF NOT EXISTS {} ON records (org_id, {}, id) \
         WHERE module = {} AND deleted_at IS NULL",
        concurrently(dialect),
        sort_index_name(module, field),
        value_expr(dialect, field)?,
        literal(module)?
    ))
}

fn concurrently(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "",
        Dialect::Postgres => "CONCURRENTLY ",
    }
}

/// Why `field` of `module` cannot be sortable, if it cannot: long texts,
/// several values, money or files have no order worth an index.
pub fn check_sortable(module: &str, field: &FieldDef) -> Result<()> {
    let too_long = field
        .effective_max_length()
        .is_some_and(|n| n > MAX_SORTABLE_LENGTH);
    // Money is an object (amount and currency): no single value to order.
    let kind = matches!(
        field.field_type,
        FieldType::Textarea | FieldType::Multiselect | FieldType::File | FieldType::Currency
    );
    if !(kind || too_long) {
        return Ok(());
    }
    let (name, t) = (&field.api_name, field.field_type.as_str());
    Err(Error::new(
        Kind::BadInput,
        "field_not_sortable",
        Text::new(
            format!(
                "{module}.{name} ({t}) cannot be sortable: only single values of at most \
                 {MAX_SORTABLE_LENGTH} characters, not money, can be sorted by."
            ),
            format!(
                "{module}.{name}（{t}）は並べ替えできる項目にできません。並べ替えできるのは \
                 {MAX_SORTABLE_LENGTH} 文字以内の単一の値だけです（通貨は不可）。"
            ),
        ),
        Text::new(
            "Sort by another field, or filter by this one.",
            "別の項目で並べ替えるか、この項目で絞り込んでください。",
        ),
    ))
}

/// The refusal of a list sorted by a field that is not sortable.
pub fn not_sortable(module: &str, field: &str) -> Error {
    Error::new(
        Kind::BadInput,
        "field_not_sortable",
        Text::new(
            format!("{module} lists cannot be sorted by {field}: it is not a sortable field."),
            format!(
                "{module} の一覧は {field} で並べ替えできません（並べ替えできる項目ではありません）。"
            ),
        ),
        Text::new(
            "Sort by another field, or ask an administrator to make this one sortable \
             (Settings → Modules and fields).",
            "別の項目で並べ替えるか、管理者にこの項目を並べ替えできる項目にしてもらってください\
             （設定 → モジュールと項目）。",
        ),
    )
}

/// The sortable (module, field) pairs of some modules.
fn sortable_pairs(modules: &[ModuleDef]) -> Vec<(String, String)> {
    modules
        .iter()
        .flat_map(|m| {
            m.fields
                .iter()
                .filter(|f| f.sortable)
                .map(|f| (m.api_name.clone(), f.api_name.clone()))
        })
        .collect()
}

#[derive(sqlx::FromRow)]
struct IndexRow {
    name: String,
    valid: bool,
}

#[derive(sqlx::FromRow)]
struct PairRow {
    module: String,
    api_name: String,
}

#[derive(sqlx::FromRow)]
struct LockRow {
    locked: bool,
}

/// The indexes of `records`, each with whether it is valid (PostgreSQL: a
/// concurrent build that failed or whose process died leaves an invalid one,
/// which is still written to on every change of `records`).
fn indexes_sql(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "SELECT name, 1 AS valid FROM sqlite_master WHERE type = 'index' \
             AND tbl_name = 'records'"
        }
        Dialect::Postgres => {
            "SELECT c.relname AS name, i.indisvalid AS valid FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid \
             WHERE t.relname = 'records' AND c.relnamespace = current_schema()::regnamespace"
        }
    }
}

/// The sort indexes among the rows of `indexes_sql`, by name, with whether
/// each is valid.
fn sort_indexes(rows: Vec<IndexRow>) -> BTreeMap<String, bool> {
    rows.into_iter()
        .filter(|r| r.name.starts_with(INDEX_PREFIX))
        .map(|r| (r.name, r.valid))
        .collect()
}

/// The advisory lock every sort-index change takes on PostgreSQL.
const LOCK_KEY: i64 = 0x4b69_7a75_6e61_0001;

/// A turn to change sort indexes: one change at a time across every process,
/// so that no field is marked sortable while its index is being dropped, and
/// no build is mistaken for a dead one. On SQLite a write transaction (DDL
/// commits with it); on PostgreSQL an advisory lock held by a connection of
/// its own, since `CREATE INDEX CONCURRENTLY` cannot run in a transaction.
/// The connection is taken out of the pool: should anything fail before the
/// lock is given back, it closes and the server releases the lock.
enum Turn {
    Sqlite(Tx),
    Postgres(sqlx::PgConnection),
}

impl Turn {
    async fn take(db: &Db) -> Result<Turn> {
        let pool = match db {
            Db::Sqlite(_) => return Ok(Turn::Sqlite(db.begin().await?)),
            Db::Postgres(pool) => pool,
        };
        let mut conn = pool.acquire().await.map_err(db_error)?.detach();
        // Polled, not waited for: a statement waiting for the lock holds a
        // snapshot, which the holder's concurrent index build would wait out.
        loop {
            let row: LockRow = Exec::PgConn(&mut conn)
                .fetch_one(
                    "SELECT pg_try_advisory_lock($1) AS locked",
                    &crate::args![LOCK_KEY],
                )
                .await
                .map_err(db_error)?;
            if row.locked {
                return Ok(Turn::Postgres(conn));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    fn dialect(&self) -> Dialect {
        match self {
            Turn::Sqlite(_) => Dialect::Sqlite,
            Turn::Postgres(_) => Dialect::Postgres,
        }
    }

    fn x(&mut self) -> Exec<'_> {
        match self {
            Turn::Sqlite(tx) => tx.x(),
            Turn::Postgres(conn) => Exec::PgConn(conn),
        }
    }

    async fn end(self) -> Result<()> {
        match self {
            Turn::Sqlite(tx) => tx.commit().await,
            Turn::Postgres(mut conn) => {
                Exec::PgConn(&mut conn)
                    .execute("SELECT pg_advisory_unlock($1)", &crate::args![LOCK_KEY])
                    .await
                    .map_err(db_error)?;
                sqlx::Connection::close(conn).await.map_err(db_error)
            }
        }
    }

    /// The sort indexes the database has, by name, and whether each is valid.
    async fn indexes(&mut self) -> Result<BTreeMap<String, bool>> {
        let sql = indexes_sql(self.dialect());
        let rows: Vec<IndexRow> = self.x().fetch_all(sql, &[]).await.map_err(db_error)?;
        Ok(sort_indexes(rows))
    }

    /// Makes the index of a sortable field unless a valid one exists.
    async fn make(&mut self, module: &str, field: &str) -> Result<()> {
        let dialect = self.dialect();
        let name = sort_index_name(module, field);
        match self.indexes().await?.get(&name) {
            Some(true) => return Ok(()),
            Some(false) => self.drop(&name).await?,
            None => {}
        }
        tracing::info!(module, field, "making the index of a sortable field");
        self.x()
            .execute(&create_sql(dialect, module, field)?, &[])
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn drop(&mut self, name: &str) -> Result<()> {
        // `name` is one of ours: the prefix and a hex digest.
        let sql = format!(
            "DROP INDEX {}IF EXISTS {name}",
            concurrently(self.dialect())
        );
        self.x().execute(&sql, &[]).await.map_err(db_error)?;
        Ok(())
    }
}

impl Store {
    /// Makes the missing indexes of the sortable fields of `modules`, before
    /// their marks are committed. Quick when they exist (the common case:
    /// every org of an app has the same name fields); on a large table a
    /// new one takes as long as reading the module once.
    pub(crate) async fn make_sort_indexes(&self, modules: &[ModuleDef]) -> Result<()> {
        let pairs = sortable_pairs(modules);
        let have = self.valid_sort_indexes().await?;
        if pairs
            .iter()
            .all(|(m, f)| have.contains(&sort_index_name(m, f)))
        {
            return Ok(());
        }
        let mut turn = Turn::take(&self.db).await?;
        for (module, field) in pairs {
            turn.make(&module, &field).await?;
        }
        turn.end().await
    }

    /// The valid sort indexes, read without taking a turn.
    async fn valid_sort_indexes(&self) -> Result<BTreeSet<String>> {
        let sql = indexes_sql(self.dialect());
        let rows: Vec<IndexRow> = self.db.x().fetch_all(sql, &[]).await.map_err(db_error)?;
        Ok(sort_indexes(rows)
            .into_iter()
            .filter_map(|(name, valid)| valid.then_some(name))
            .collect())
    }

    /// The (module, field) pairs some org has sortable.
    async fn sortable_fields(x: Exec<'_>) -> Result<BTreeSet<(String, String)>> {
        let rows: Vec<PairRow> = x
            .fetch_all(
                "SELECT DISTINCT module, api_name FROM fields WHERE sortable = $1",
                &crate::args![true],
            )
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(|r| (r.module, r.api_name)).collect())
    }

    /// Makes the missing (or invalid) indexes of sortable fields and drops
    /// those no org needs; run when the store opens, it repairs what a crash
    /// between an index and its mark left.
    pub(crate) async fn reconcile_sort_indexes(&self) -> Result<()> {
        let mut turn = Turn::take(&self.db).await?;
        let wanted = Store::sortable_fields(turn.x()).await?;
        for (module, field) in &wanted {
            turn.make(module, field).await?;
        }
        let wanted: BTreeSet<String> = wanted.iter().map(|(m, f)| sort_index_name(m, f)).collect();
        for name in turn.indexes().await?.keys() {
            if !wanted.contains(name) {
                turn.drop(name).await?;
            }
        }
        turn.end().await
    }

    /// Marks a field sortable or not, in its turn: marking makes its index
    /// first (a million records take seconds); unmarking drops it once no
    /// org has the field sortable any more.
    pub async fn set_field_sortable(
        &self,
        org_id: i64,
        module: &str,
        field: &str,
        sortable: bool,
    ) -> Result<()> {
        let m = self.module(org_id, module).await?;
        let def = crate::meta::field_of(&m, field)?;
        if sortable {
            check_sortable(module, def)?;
        }
        let mut turn = Turn::take(&self.db).await?;
        if sortable {
            turn.make(module, field).await?;
        }
        match &mut turn {
            Turn::Sqlite(tx) => mark(tx, org_id, module, field, sortable).await?,
            Turn::Postgres(_) => {
                let mut tx = self.db.begin().await?;
                mark(&mut tx, org_id, module, field, sortable).await?;
                tx.commit().await?;
            }
        }
        if !sortable
            && !Store::sortable_fields(turn.x())
                .await?
                .contains(&(module.into(), field.into()))
        {
            turn.drop(&sort_index_name(module, field)).await?;
        }
        turn.end().await
    }
}

/// Writes a field's sortable mark.
async fn mark(tx: &mut Tx, org_id: i64, module: &str, field: &str, sortable: bool) -> Result<()> {
    tx.x()
        .execute(
            "UPDATE fields SET sortable = $1 WHERE org_id = $2 AND module = $3 AND api_name = $4",
            &crate::args![sortable, org_id, module, field],
        )
        .await
        .map_err(db_error)?;
    crate::meta::bump_meta_version(tx, org_id).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use kizuna_domain::App;

    fn contacts() -> ModuleDef {
        ModuleDef {
            api_name: "Contacts".into(),
            label: "Contacts".into(),
            label_ja: "取引先責任者".into(),
            enabled: true,
            fields: vec![
                FieldDef::new("Last_Name", FieldType::Text)
                    .max(80)
                    .sortable(),
                FieldDef::new("Notes", FieldType::Textarea),
            ],
        }
    }

    // The store makes the index an org's new sortable field needs; and when
    // it opens, it remakes one that is missing (a crash between a mark and
    // its index) and drops one no field needs.
    #[tokio::test]
    async fn opening_the_store_reconciles_sort_indexes() -> Result<()> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("kizuna.db");
        let url = path.to_str().expect("a UTF-8 path");
        let wanted = sort_index_name("Contacts", "Last_Name");
        let stray = sort_index_name("Contacts", "Notes");

        let store = Store::open(url).await?;
        let admin = store.create_user("a@example.com", "A", None).await?;
        store
            .create_org(App::Crm, "Acme", "free", &admin, &[contacts()])
            .await?;
        assert_eq!(
            store.valid_sort_indexes().await?,
            BTreeSet::from([wanted.clone()])
        );
        store
            .db
            .x()
            .execute(&format!("DROP INDEX {wanted}"), &[])
            .await
            .map_err(db_error)?;
        let mut turn = Turn::take(&store.db).await?;
        turn.make("Contacts", "Notes").await?;
        turn.end().await?;
        assert_eq!(store.valid_sort_indexes().await?, BTreeSet::from([stray]));
        store.close().await;

        let store = Store::open(url).await?;
        assert_eq!(store.valid_sort_indexes().await?, BTreeSet::from([wanted]));
        store.close().await;
        Ok(())
    }

    #[test]
    fn names_that_are_not_api_names_never_reach_sql() {
        assert!(literal("Last_Name").is_ok());
        for bad in ["x'; DROP TABLE records; --", "a.b", "", "1a"] {
            assert!(literal(bad).is_err(), "{bad:?}");
            assert!(value_expr(Dialect::Sqlite, bad).is_err(), "{bad:?}");
        }
    }
}
