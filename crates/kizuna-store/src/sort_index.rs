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
//! it: made before a field is marked (a mark never points at no index),
//! dropped after the last org unmarks it, and reconciled when the store
//! opens (an index a crash left half-way is made then).

use crate::db::{db_error, is_unique_violation};
use crate::{Dialect, Store};
use blake2::{Blake2b, Digest, digest::consts::U8};
use kizuna_domain::field::{FieldDef, FieldType, ModuleDef, is_valid_api_name};
use kizuna_domain::{Error, Kind, Result, Text};
use std::collections::BTreeSet;

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
        Dialect::Postgres => format!("(fields -> '{field}')"),
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
/// several values or files have no order worth an index.
pub fn check_sortable(module: &str, field: &FieldDef) -> Result<()> {
    let too_long = field
        .effective_max_length()
        .is_some_and(|n| n > MAX_SORTABLE_LENGTH);
    let kind = matches!(
        field.field_type,
        FieldType::Textarea | FieldType::Multiselect | FieldType::File
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
                 {MAX_SORTABLE_LENGTH} characters can be sorted by."
            ),
            format!(
                "{module}.{name}（{t}）は並べ替えできる項目にできません。並べ替えできるのは \
                 {MAX_SORTABLE_LENGTH} 文字以内の単一の値だけです。"
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
struct NameRow {
    name: String,
}

#[derive(sqlx::FromRow)]
struct PairRow {
    module: String,
    api_name: String,
}

impl Store {
    /// Makes the indexes of the sortable fields of `modules` (before their
    /// marks are committed). Quick when they exist; on a large table the
    /// first one takes as long as reading the module once.
    pub(crate) async fn make_sort_indexes(&self, modules: &[ModuleDef]) -> Result<()> {
        for (module, field) in sortable_pairs(modules) {
            self.make_sort_index(&module, &field).await?;
        }
        Ok(())
    }

    async fn make_sort_index(&self, module: &str, field: &str) -> Result<()> {
        let name = sort_index_name(module, field);
        // A concurrent build that failed (or whose process died) leaves an
        // invalid index behind, which `IF NOT EXISTS` would take as made.
        if self.dialect() == Dialect::Postgres && self.invalid_index(&name).await? {
            self.drop_sort_index(&name).await?;
        }
        let sql = create_sql(self.dialect(), module, field)?;
        match self.db.x().execute(&sql, &[]).await {
            Ok(_) => Ok(()),
            // Two PostgreSQL processes making the same index at once: one of
            // them finds the name taken, which is what it wanted.
            Err(e) if is_unique_violation(&e) && self.sort_indexes().await?.contains(&name) => {
                Ok(())
            }
            Err(e) => Err(db_error(e)),
        }
    }

    /// Whether PostgreSQL has an index of this name that is not valid.
    async fn invalid_index(&self, name: &str) -> Result<bool> {
        let rows: Vec<NameRow> = self
            .db
            .x()
            .fetch_all(
                "SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
                 WHERE c.relname = $1 AND c.relnamespace = current_schema()::regnamespace \
                 AND NOT i.indisvalid",
                &crate::args![name],
            )
            .await
            .map_err(db_error)?;
        Ok(!rows.is_empty())
    }

    /// The (valid) sort indexes the database has.
    async fn sort_indexes(&self) -> Result<BTreeSet<String>> {
        let sql = match self.dialect() {
            Dialect::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records'"
            }
            Dialect::Postgres => {
                "SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
                 JOIN pg_class t ON t.oid = i.indrelid WHERE t.relname = 'records' \
                 AND c.relnamespace = current_schema()::regnamespace AND i.indisvalid"
            }
        };
        let rows: Vec<NameRow> = self.db.x().fetch_all(sql, &[]).await.map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|r| r.name)
            .filter(|n| n.starts_with(INDEX_PREFIX))
            .collect())
    }

    /// The (module, field) pairs some org has sortable.
    async fn sortable_fields(&self) -> Result<Vec<(String, String)>> {
        let rows: Vec<PairRow> = self
            .db
            .x()
            .fetch_all(
                "SELECT DISTINCT module, api_name FROM fields WHERE sortable = $1",
                &crate::args![true],
            )
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(|r| (r.module, r.api_name)).collect())
    }

    /// Makes the missing indexes of sortable fields and drops those no org
    /// needs any more; run when the store opens.
    pub(crate) async fn reconcile_sort_indexes(&self) -> Result<()> {
        let wanted = self.sortable_fields().await?;
        let have = self.sort_indexes().await?;
        let wanted_names: BTreeSet<String> =
            wanted.iter().map(|(m, f)| sort_index_name(m, f)).collect();
        for (module, field) in &wanted {
            if !have.contains(&sort_index_name(module, field)) {
                tracing::info!(module, field, "making the index of a sortable field");
                self.make_sort_index(module, field).await?;
            }
        }
        for name in have.difference(&wanted_names) {
            self.drop_sort_index(name).await?;
        }
        Ok(())
    }

    async fn drop_sort_index(&self, name: &str) -> Result<()> {
        // `name` is one of ours: the prefix and a hex digest.
        self.db
            .x()
            .execute(
                &format!(
                    "DROP INDEX {}IF EXISTS {name}",
                    concurrently(self.dialect())
                ),
                &[],
            )
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Marks a field sortable or not. Marking makes its index first (a
    /// million records take seconds); unmarking drops it once no org has the
    /// field sortable any more.
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
            self.make_sort_index(module, field).await?;
        }
        let mut tx = self.db.begin().await?;
        tx.x()
            .execute(
                "UPDATE fields SET sortable = $1 WHERE org_id = $2 AND module = $3 AND api_name = $4",
                &crate::args![sortable, org_id, module, field],
            )
            .await
            .map_err(db_error)?;
        crate::meta::bump_meta_version(&mut tx, org_id).await?;
        tx.commit().await?;
        if !sortable
            && !self
                .sortable_fields()
                .await?
                .contains(&(module.into(), field.into()))
        {
            self.drop_sort_index(&sort_index_name(module, field))
                .await?;
        }
        Ok(())
    }
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
            store.sort_indexes().await?,
            BTreeSet::from([wanted.clone()])
        );
        store
            .db
            .x()
            .execute(&format!("DROP INDEX {wanted}"), &[])
            .await
            .map_err(db_error)?;
        store.make_sort_index("Contacts", "Notes").await?;
        assert_eq!(store.sort_indexes().await?, BTreeSet::from([stray]));
        store.close().await;

        let store = Store::open(url).await?;
        assert_eq!(store.sort_indexes().await?, BTreeSet::from([wanted]));
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
