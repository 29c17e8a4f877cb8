//! Figures over the records that point at a record through a lookup — an
//! event's attendees by status, the total of its paid orders — counted by the
//! database through `record_refs`, so a figure costs the referrers of the
//! records asked about and nothing else.

use crate::Store;
use crate::db::{Dialect, Exec, Tx, db_error};
use crate::sort_index::{literal, value_expr};
use kizuna_domain::Result;

/// How many records point at `target`, with `value` in the grouped field.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Tally {
    pub target: i64,
    pub value: Option<String>,
    pub n: i64,
}

/// The sum of a currency field over the records that point at `target`, in
/// one currency (minor units).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Total {
    pub target: i64,
    pub currency: Option<String>,
    pub amount_minor: i64,
}

/// Ids written into a statement as a list (integers: nothing to escape).
pub(crate) fn id_list(ids: &[i64]) -> String {
    ids.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The live records of `module` pointing at one of `targets` through
/// `lookup`: the target's id as the statement selects it, and the `FROM` and
/// `WHERE` of a count over them. It reads the records' own lookup values
/// rather than `record_refs`, in the expressions of the tally indexes
/// (migration 0011: attendees and orders by event and status), so that
/// counting an event's 100,000 attendees reads that index's entries and not
/// their rows (0.5 s a count before: BENCHMARKS.md, attendee-sync). Names are
/// checked API names (`sort_index::literal`), spelled into the statement as
/// literals because an expression index serves only the very same
/// expression; `$1` is the org, compared as `+org_id` so that SQLite's
/// planner, without statistics, does not prefer `records_list` (org and
/// module) to the tally index (the targets and their org are in its entries).
fn referrers_of(
    dialect: Dialect,
    targets: &[i64],
    (module, lookup): (&str, &str),
) -> Result<(String, String)> {
    let target = value_expr(dialect, lookup)?;
    let (target_id, target_list) = match dialect {
        Dialect::Sqlite => (target.clone(), id_list(targets)),
        Dialect::Postgres => (
            format!("CAST({target} AS BIGINT)"),
            targets
                .iter()
                .map(|id| format!("'{id}'::jsonb"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
    };
    let from = format!(
        "FROM records WHERE +org_id = $1 AND module = {} AND deleted_at IS NULL \
         AND {target} IN ({target_list})",
        literal(module)?
    );
    Ok((target_id, from))
}

/// `tally_referrers`' count, grouped by the target and `by`'s text.
fn tally_sql(
    dialect: Dialect,
    targets: &[i64],
    (module, lookup): (&str, &str),
    by: &str,
) -> Result<String> {
    let (target, from) = referrers_of(dialect, targets, (module, lookup))?;
    let grouped = value_expr(dialect, lookup)?;
    let value = value_expr(dialect, by)?;
    let text = match dialect {
        Dialect::Sqlite => format!("CAST({value} AS TEXT)"),
        Dialect::Postgres => format!("({value} #>> '{{}}')"),
    };
    Ok(format!(
        "SELECT {target} AS target, {text} AS value, COUNT(*) AS n {from} GROUP BY {grouped}, {value}"
    ))
}

/// A record whose figures wait to be counted, at the version of its mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Due {
    pub record_id: i64,
    pub version: i64,
}

impl Store {
    /// Reads in `tx`, or on the pool when `None`.
    pub(crate) fn reads<'a>(&'a self, tx: Option<&'a mut Tx>) -> Exec<'a> {
        match tx {
            Some(tx) => tx.x(),
            None => self.db.x(),
        }
    }

    /// Marks the records' figures of an integration due to be counted again
    /// (a new mark, or a later version of one), in the caller's transaction.
    pub async fn mark_figures_due_in(
        &self,
        tx: &mut Tx,
        integration: i64,
        ids: &[i64],
    ) -> Result<()> {
        for chunk in ids.chunks(crate::records::INSERT_CHUNK) {
            let values = chunk
                .iter()
                .map(|id| format!("($1, {id}, 1, 0)"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO sync_figures_due (integration_id, record_id, version, counted) \
                 VALUES {values} ON CONFLICT (integration_id, record_id) \
                 DO UPDATE SET version = sync_figures_due.version + 1"
            );
            tx.x()
                .execute(&sql, &crate::args![integration])
                .await
                .map_err(db_error)?;
        }
        Ok(())
    }

    /// The integration's records whose figures are due (changed since their
    /// last written count), in `tx` or outside any transaction.
    pub async fn figures_due(&self, tx: Option<&mut Tx>, integration: i64) -> Result<Vec<Due>> {
        self.reads(tx)
            .fetch_all(
                "SELECT record_id, version FROM sync_figures_due \
                 WHERE integration_id = $1 AND version > counted ORDER BY record_id",
                &crate::args![integration],
            )
            .await
            .map_err(db_error)
    }

    /// Of the marks a count started from, those still at the version it saw,
    /// recorded as counted, in the caller's transaction (which then writes
    /// their figures). A mark bumped since is left due: the count predates
    /// its change. On PostgreSQL the row stays locked to the end of the
    /// transaction, so two counts of one version write one after the other.
    pub async fn claim_figures_due_in(
        &self,
        tx: &mut Tx,
        integration: i64,
        seen: &[Due],
    ) -> Result<Vec<i64>> {
        let mut claimed = Vec::new();
        for d in seen {
            let n = tx
                .x()
                .execute(
                    "UPDATE sync_figures_due SET counted = version WHERE integration_id = $1 \
                     AND record_id = $2 AND version = $3",
                    &crate::args![integration, d.record_id, d.version],
                )
                .await
                .map_err(db_error)?;
            if n > 0 {
                claimed.push(d.record_id);
            }
        }
        Ok(claimed)
    }

    /// Live records of `module` pointing at each of `targets` through the
    /// lookup `lookup`, counted by the text value of their field `by`.
    /// In `tx`, or outside any transaction when `None` (a count costs every
    /// referrer of the targets: on SQLite a write transaction would hold
    /// every writer up meanwhile).
    pub async fn tally_referrers(
        &self,
        tx: Option<&mut Tx>,
        org_id: i64,
        targets: &[i64],
        (module, lookup): (&str, &str),
        by: &str,
    ) -> Result<Vec<Tally>> {
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        let sql = tally_sql(self.dialect(), targets, (module, lookup), by)?;
        self.reads(tx)
            .fetch_all(&sql, &crate::args![org_id])
            .await
            .map_err(db_error)
    }

    /// The database's plan of `tally_referrers`, as it words it: shows
    /// whether a count reads the tally index alone.
    pub async fn explain_tally(
        &self,
        org_id: i64,
        targets: &[i64],
        (module, lookup): (&str, &str),
        by: &str,
    ) -> Result<Vec<String>> {
        let sql = tally_sql(self.dialect(), targets, (module, lookup), by)?;
        self.explain(&sql, &crate::args![org_id]).await
    }

    /// The sum of the currency field `money` over the live records of
    /// `module` pointing at each of `targets` through `lookup`, among those
    /// whose field `only.0` is `only.1`, per currency; in `tx` or outside
    /// any transaction, as `tally_referrers`.
    pub async fn total_referrers(
        &self,
        tx: Option<&mut Tx>,
        org_id: i64,
        targets: &[i64],
        (module, lookup): (&str, &str),
        money: &str,
        only: (&str, &str),
    ) -> Result<Vec<Total>> {
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        let dialect = self.dialect();
        let (target, from) = referrers_of(dialect, targets, (module, lookup))?;
        let filter = value_expr(dialect, only.0)?;
        let (amount, currency, wanted) = match dialect {
            Dialect::Sqlite => (
                "json_extract(fields, '$.' || $2 || '.amount_minor')",
                "json_extract(fields, '$.' || $2 || '.currency')",
                "$3",
            ),
            Dialect::Postgres => (
                "((fields -> $2) ->> 'amount_minor')::bigint",
                "((fields -> $2) ->> 'currency')",
                "to_jsonb(CAST($3 AS TEXT))",
            ),
        };
        let sql = format!(
            "SELECT {target} AS target, {currency} AS currency, CAST(SUM({amount}) AS BIGINT) AS amount_minor \
             {from} AND {filter} = {wanted} AND {amount} IS NOT NULL GROUP BY {target}, {currency}"
        );
        self.reads(tx)
            .fetch_all(&sql, &crate::args![org_id, money, only.1])
            .await
            .map_err(db_error)
    }

    /// The records that the records `from` point at through `lookup`.
    pub async fn targets_of_in(
        &self,
        tx: &mut Tx,
        org_id: i64,
        from: &[i64],
        lookup: &str,
    ) -> Result<Vec<i64>> {
        if from.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT DISTINCT to_id AS id FROM record_refs WHERE org_id = $1 AND field = $2 AND from_id IN ({})",
            id_list(from)
        );
        let rows: Vec<crate::db::IdRow> = tx
            .x()
            .fetch_all(&sql, &crate::args![org_id, lookup])
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(|r| r.id).collect())
    }
}
