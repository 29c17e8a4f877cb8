//! Module and field metadata, per org.

use crate::db::{Tx, db_error, is_unique_violation};
use crate::{Org, Store};
use kizuna_domain::field::{FieldDef, FieldType, ModuleDef};
use kizuna_domain::{Error, Kind, Result, Text};
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(sqlx::FromRow)]
struct ModuleRow {
    api_name: String,
    label: String,
    label_ja: String,
    enabled: bool,
}

#[derive(sqlx::FromRow)]
struct FieldRow {
    module: String,
    api_name: String,
    label: String,
    label_ja: String,
    field_type: String,
    max_length: Option<i64>,
    required: bool,
    is_unique: bool,
    picklist: Json<Value>,
    lookup_module: Option<String>,
    custom: bool,
    in_use: bool,
    sortable: bool,
}

impl FieldRow {
    fn into_def(self) -> Result<FieldDef> {
        let field_type = FieldType::parse(&self.field_type).ok_or_else(|| {
            Error::internal(format!(
                "unknown field type {} in the database",
                self.field_type
            ))
        })?;
        let picklist = match self.picklist.0 {
            Value::Array(items) => items
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        Ok(FieldDef {
            api_name: self.api_name,
            label: self.label,
            label_ja: self.label_ja,
            field_type,
            max_length: self.max_length.and_then(|n| u32::try_from(n).ok()),
            required: self.required,
            unique: self.is_unique,
            picklist,
            lookup_module: self.lookup_module,
            custom: self.custom,
            in_use: self.in_use,
            sortable: self.sortable,
        })
    }
}

pub(crate) async fn insert_module(
    tx: &mut Tx,
    org_id: i64,
    module: &ModuleDef,
    position: i64,
) -> Result<()> {
    tx.x()
        .execute(
            "INSERT INTO modules (org_id, api_name, label, label_ja, enabled, position) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &crate::args![
                org_id,
                &module.api_name,
                &module.label,
                &module.label_ja,
                module.enabled,
                position
            ],
        )
        .await
        .map_err(db_error)?;
    for (i, field) in module.fields.iter().enumerate() {
        insert_field(tx, org_id, &module.api_name, field, i as i64).await?;
    }
    Ok(())
}

async fn insert_field(
    tx: &mut Tx,
    org_id: i64,
    module: &str,
    field: &FieldDef,
    position: i64,
) -> Result<()> {
    tx.x()
        .execute(
            "INSERT INTO fields (org_id, module, api_name, label, label_ja, field_type, max_length, \
             required, is_unique, picklist, lookup_module, custom, in_use, sortable, position) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            &crate::args![
                org_id,
                module,
                &field.api_name,
                &field.label,
                &field.label_ja,
                field.field_type.as_str(),
                field.max_length.map(i64::from),
                field.required,
                field.unique,
                serde_json::json!(field.picklist),
                field.lookup_module.clone(),
                field.custom,
                field.in_use,
                field.sortable,
                position
            ],
        )
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::already_exists("Field", &field.api_name)
            } else {
                db_error(e)
            }
        })?;
    Ok(())
}

/// A field of a module, or 400 `unknown_field`.
pub(crate) fn field_of<'m>(m: &'m ModuleDef, field: &str) -> Result<&'m FieldDef> {
    m.field(field).ok_or_else(|| {
        Error::bad_request(
            "unknown_field",
            format!("{} has no field {field}.", m.api_name),
            format!("{} に項目 {field} はありません。", m.api_name),
        )
    })
}

/// Marks the org's metadata as changed, in the change's transaction.
pub(crate) async fn bump_meta_version(tx: &mut Tx, org_id: i64) -> Result<()> {
    tx.x()
        .execute(
            "UPDATE orgs SET meta_version = meta_version + 1 WHERE id = $1",
            &crate::args![org_id],
        )
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Module definitions by (org, module), each with the org's `meta_version` it
/// was read at. Every request reads the org row anyway, so a stale entry is
/// noticed at once — also when another process changed the metadata.
#[derive(Default)]
pub(crate) struct ModuleCache {
    entries: Mutex<HashMap<ModuleKey, (i64, Arc<ModuleDef>)>>,
}

/// (org id, module API name).
type ModuleKey = (i64, String);

impl Store {
    /// A module of the org, from the cache while the org's metadata is
    /// unchanged; 400 `unknown_module` when there is no such module.
    pub async fn module_of(&self, org: &Org, api_name: &str) -> Result<Arc<ModuleDef>> {
        let key = (org.id, api_name.to_string());
        if let Ok(entries) = self.modules.entries.lock()
            && let Some((version, m)) = entries.get(&key)
            && *version == org.meta_version
        {
            return Ok(m.clone());
        }
        let m = Arc::new(self.module(org.id, api_name).await?);
        if let Ok(mut entries) = self.modules.entries.lock() {
            entries.insert(key, (org.meta_version, m.clone()));
        }
        Ok(m)
    }

    /// Every module of an org with its fields, in display order.
    pub async fn modules(&self, org_id: i64) -> Result<Vec<ModuleDef>> {
        let modules: Vec<ModuleRow> = self
            .db
            .x()
            .fetch_all(
                "SELECT api_name, label, label_ja, enabled FROM modules WHERE org_id = $1 ORDER BY position",
                &crate::args![org_id],
            )
            .await
            .map_err(db_error)?;
        let fields: Vec<FieldRow> = self
            .db
            .x()
            .fetch_all(
                "SELECT module, api_name, label, label_ja, field_type, max_length, required, is_unique, \
                 picklist, lookup_module, custom, in_use, sortable FROM fields WHERE org_id = $1 ORDER BY module, position",
                &crate::args![org_id],
            )
            .await
            .map_err(db_error)?;
        let mut out: Vec<ModuleDef> = modules
            .into_iter()
            .map(|m| ModuleDef {
                api_name: m.api_name,
                label: m.label,
                label_ja: m.label_ja,
                enabled: m.enabled,
                fields: Vec::new(),
            })
            .collect();
        for row in fields {
            let module_name = row.module.clone();
            if let Some(m) = out.iter_mut().find(|m| m.api_name == module_name) {
                m.fields.push(row.into_def()?);
            }
        }
        Ok(out)
    }

    /// One module of an org, or 400 `unknown_module`.
    pub async fn module(&self, org_id: i64, api_name: &str) -> Result<ModuleDef> {
        let row: Option<ModuleRow> = self
            .db
            .x()
            .fetch_optional(
                "SELECT api_name, label, label_ja, enabled FROM modules WHERE org_id = $1 AND api_name = $2",
                &crate::args![org_id, api_name],
            )
            .await
            .map_err(db_error)?;
        let row = row.ok_or_else(|| Error::unknown_module(api_name))?;
        let fields: Vec<FieldRow> = self
            .db
            .x()
            .fetch_all(
                "SELECT module, api_name, label, label_ja, field_type, max_length, required, is_unique, \
                 picklist, lookup_module, custom, in_use, sortable FROM fields WHERE org_id = $1 AND module = $2 ORDER BY position",
                &crate::args![org_id, api_name],
            )
            .await
            .map_err(db_error)?;
        Ok(ModuleDef {
            api_name: row.api_name,
            label: row.label,
            label_ja: row.label_ja,
            enabled: row.enabled,
            fields: fields
                .into_iter()
                .map(FieldRow::into_def)
                .collect::<Result<_>>()?,
        })
    }

    /// Adds a custom module with its fields after the org's modules; one of
    /// the same name is refused.
    pub async fn add_module(&self, org_id: i64, module: &ModuleDef) -> Result<()> {
        for f in module.fields.iter().filter(|f| f.sortable) {
            crate::sort_index::check_sortable(&module.api_name, f)?;
        }
        self.make_sort_indexes(std::slice::from_ref(module)).await?;
        let mut tx = self.db.begin().await?;
        let exists: Vec<crate::db::IdRow> = tx
            .x()
            .fetch_all(
                "SELECT position AS id FROM modules WHERE org_id = $1 AND lower(api_name) = lower($2)",
                &crate::args![org_id, &module.api_name],
            )
            .await
            .map_err(db_error)?;
        if !exists.is_empty() {
            return Err(Error::already_exists("Module", &module.api_name));
        }
        let next: crate::db::IdRow = tx
            .x()
            .fetch_one(
                "SELECT COALESCE(MAX(position) + 1, 0) AS id FROM modules WHERE org_id = $1",
                &crate::args![org_id],
            )
            .await
            .map_err(db_error)?;
        insert_module(&mut tx, org_id, module, next.id).await?;
        bump_meta_version(&mut tx, org_id).await?;
        tx.commit().await
    }

    /// Adds a custom field to a module; it is appended after the existing ones.
    pub async fn add_field(&self, org_id: i64, module: &str, field: &FieldDef) -> Result<()> {
        let mut m = self.module(org_id, module).await?;
        if field.sortable {
            crate::sort_index::check_sortable(module, field)?;
            m.fields = vec![field.clone()];
            self.make_sort_indexes(&[m]).await?;
        }
        let mut tx = self.db.begin().await?;
        self.add_field_in(&mut tx, org_id, module, field).await?;
        tx.commit().await
    }

    /// `add_field` inside the caller's transaction, so that a field and the
    /// record that defines it (a purchase-form field, EVT-12) commit together.
    pub async fn add_field_in(
        &self,
        tx: &mut Tx,
        org_id: i64,
        module: &str,
        field: &FieldDef,
    ) -> Result<()> {
        // The position is taken inside the transaction: two fields added at
        // once never share one (PostgreSQL serialises on the module's row).
        let lock = match self.db.dialect() {
            crate::Dialect::Postgres => " FOR UPDATE",
            crate::Dialect::Sqlite => "",
        };
        tx.x()
            .execute(
                &format!("SELECT api_name FROM modules WHERE org_id = $1 AND api_name = $2{lock}"),
                &crate::args![org_id, module],
            )
            .await
            .map_err(db_error)?;
        let next: crate::db::IdRow = tx
            .x()
            .fetch_one(
                "SELECT COALESCE(MAX(position) + 1, 0) AS id FROM fields WHERE org_id = $1 AND module = $2",
                &crate::args![org_id, module],
            )
            .await
            .map_err(db_error)?;
        insert_field(tx, org_id, module, field, next.id).await?;
        bump_meta_version(tx, org_id).await
    }

    pub async fn set_module_enabled(&self, org_id: i64, module: &str, enabled: bool) -> Result<()> {
        self.module(org_id, module).await?;
        let mut tx = self.db.begin().await?;
        tx.x()
            .execute(
                "UPDATE modules SET enabled = $1 WHERE org_id = $2 AND api_name = $3",
                &crate::args![enabled, org_id, module],
            )
            .await
            .map_err(db_error)?;
        bump_meta_version(&mut tx, org_id).await?;
        tx.commit().await
    }

    /// Changes a field: its labels, whether it is in use, whether lists
    /// sort by it. Every part is checked before any is written, so a refused
    /// change changes nothing. Its API name, the one integrations and the
    /// API use, never changes.
    pub async fn change_field(
        &self,
        org_id: i64,
        module: &str,
        field: &str,
        change: &FieldChange<'_>,
    ) -> Result<()> {
        let m = self.module(org_id, module).await?;
        let def = field_of(&m, field)?;
        if change.in_use == Some(false) && def.required {
            return Err(Error::bad_request(
                "field_required",
                format!("{module}.{field} is required and cannot be marked unused."),
                format!("{module}.{field} は必須項目のため、未使用にできません。"),
            ));
        }
        if change.sortable == Some(true) {
            crate::sort_index::check_sortable(module, def)?;
        }
        let label = change.label.map_or(def.label.as_str(), str::trim);
        let label_ja = change.label_ja.map_or(def.label_ja.as_str(), str::trim);
        if label.is_empty() || label.chars().count() > 100 || label_ja.chars().count() > 100 {
            return Err(Error::new(
                Kind::BadInput,
                "invalid_label",
                Text::new(
                    format!("{module}.{field}: a label is 1 to 100 characters."),
                    format!("{module}.{field}: ラベルは 1〜100 文字です。"),
                ),
                Text::new(
                    "Give the English label 1 to 100 characters; leave the Japanese one empty to show the English one.",
                    "英語のラベルを 1〜100 文字で入力してください。日本語のラベルは空にすると英語のラベルが表示されます。",
                ),
            ));
        }
        let in_use = change.in_use.unwrap_or(def.in_use);
        if (label, label_ja, in_use) != (def.label.as_str(), def.label_ja.as_str(), def.in_use) {
            let mut tx = self.db.begin().await?;
            tx.x()
                .execute(
                    "UPDATE fields SET label = $1, label_ja = $2, in_use = $3 \
                     WHERE org_id = $4 AND module = $5 AND api_name = $6",
                    &crate::args![label, label_ja, in_use, org_id, module, field],
                )
                .await
                .map_err(db_error)?;
            bump_meta_version(&mut tx, org_id).await?;
            tx.commit().await?;
        }
        if let Some(sortable) = change.sortable
            && sortable != def.sortable
        {
            self.set_field_sortable(org_id, module, field, sortable)
                .await?;
        }
        Ok(())
    }

    /// Marks a field used or unused. An unused field keeps its values but takes
    /// no new ones.
    pub async fn set_field_in_use(
        &self,
        org_id: i64,
        module: &str,
        field: &str,
        in_use: bool,
    ) -> Result<()> {
        let change = FieldChange {
            in_use: Some(in_use),
            ..FieldChange::default()
        };
        self.change_field(org_id, module, field, &change).await
    }
}

/// What a change of one field asks for (`Store::change_field`); `None`
/// leaves that part as it is.
#[derive(Debug, Clone, Default)]
pub struct FieldChange<'a> {
    pub in_use: Option<bool>,
    pub sortable: Option<bool>,
    pub label: Option<&'a str>,
    pub label_ja: Option<&'a str>,
}

/// What copying one org's settings to another changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CopyReport {
    pub modules_switched: Vec<String>,
    pub fields_added: Vec<String>,
    pub fields_marked: Vec<String>,
}

impl Store {
    /// Copies modules on/off, custom fields and fields' in-use and sortable
    /// marks from one org to another of the same app, in one transaction: all
    /// of it or none (GEN-11). Modules or fields the target lacks and the source has as
    /// standard are left alone: both orgs have the same standard ones.
    pub async fn copy_metadata(&self, from_org: i64, to_org: i64) -> Result<CopyReport> {
        let source = self.modules(from_org).await?;
        let target = self.modules(to_org).await?;
        // Sortable marks are copied too; their indexes come first.
        self.make_sort_indexes(&source).await?;
        let mut report = CopyReport::default();
        let mut tx = self.db.begin().await?;
        for m in &source {
            let Some(t) = target.iter().find(|t| t.api_name == m.api_name) else {
                continue;
            };
            if t.enabled != m.enabled {
                tx.x()
                    .execute(
                        "UPDATE modules SET enabled = $1 WHERE org_id = $2 AND api_name = $3",
                        &crate::args![m.enabled, to_org, &m.api_name],
                    )
                    .await
                    .map_err(db_error)?;
                report.modules_switched.push(m.api_name.clone());
            }
            let mut position = t.fields.len() as i64;
            for f in &m.fields {
                let name = format!("{}.{}", m.api_name, f.api_name);
                match t.field(&f.api_name) {
                    None if f.custom => {
                        insert_field(&mut tx, to_org, &m.api_name, f, position).await?;
                        position += 1;
                        report.fields_added.push(name);
                    }
                    Some(tf) if (tf.in_use, tf.sortable) != (f.in_use, f.sortable) => {
                        tx.x()
                            .execute(
                                "UPDATE fields SET in_use = $1, sortable = $2 \
                                 WHERE org_id = $3 AND module = $4 AND api_name = $5",
                                &crate::args![
                                    f.in_use,
                                    f.sortable,
                                    to_org,
                                    &m.api_name,
                                    &f.api_name
                                ],
                            )
                            .await
                            .map_err(db_error)?;
                        report.fields_marked.push(name);
                    }
                    _ => {}
                }
            }
        }
        bump_meta_version(&mut tx, to_org).await?;
        tx.commit().await?;
        Ok(report)
    }
}
