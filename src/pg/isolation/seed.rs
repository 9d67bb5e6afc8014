//! Seeding probe rows: generated values per column type, parents first
//! along foreign keys, and values that meet the table's CHECK constraints.

use std::collections::{BTreeSet, HashMap};

use tokio_postgres::Client;

use super::{load_tables, Column, Row, TableInfo};
use crate::pg::conn::sql_error;
use crate::pg::{describe, quote_ident, quote_literal, sqlstate, Result, Target};

/// SQLSTATE check_violation.
const CHECK_VIOLATION: &str = "23514";

/// Seeds two rows into every user table (parents first, following single-
/// and multi-column foreign keys), each in its own savepoint; a table whose
/// rows cannot be generated stays empty. Used by `strata check --shadow` so
/// that rewrites and locks are observed on populated tables. Returns the
/// tables that got no row, as shown, with the reason.
pub async fn seed_every_table(client: &Client, target: &Target) -> Result<Vec<(String, String)>> {
    let tables = load_tables(client, target).await?;
    let mut seeder = Seeder::new(client, &tables);
    client.batch_execute("BEGIN").await.map_err(sql_error(target, "cannot seed"))?;
    let mut unseeded = Vec::new();
    for t in &tables {
        let first = seeder.seed(t, None, 0).await;
        let second = seeder.seed(t, None, 0).await;
        if let (Err(e), Err(_)) = (first, second) {
            unseeded.push((t.shown.clone(), e));
        }
    }
    client.batch_execute("COMMIT").await.map_err(sql_error(target, "cannot seed"))?;
    Ok(unseeded)
}

/// A value expression for a column, or why there is none. `n` makes values
/// of different rows differ (unique constraints).
pub(super) fn value_for(c: &Column, n: u32) -> std::result::Result<String, String> {
    let expr = if c.is_enum {
        format!("(SELECT e FROM unnest(enum_range(NULL::{})) WITH ORDINALITY AS u(e, i) ORDER BY (i + {n}) % cardinality(enum_range(NULL::{})) LIMIT 1)", c.ty, c.ty)
    } else {
        match (c.base.as_str(), c.category.as_str()) {
            ("uuid", _) => "gen_random_uuid()".to_string(),
            ("json" | "jsonb", _) => "'{}'".to_string(),
            ("bytea", _) => "'\\x00'".to_string(),
            ("inet" | "cidr", _) => format!("'10.0.{}.{}'", (n / 250) % 250, n % 250 + 1),
            ("interval", _) => "'1 hour'".to_string(),
            ("date" | "timestamp" | "timestamptz" | "time" | "timetz", _) => "now()".to_string(),
            (_, "A") => "'{}'".to_string(),
            (_, "S") => quote_literal(&format!("p{n}")),
            (_, "N") => format!("{}", n % 30000),
            (_, "B") => "false".to_string(),
            (other, _) => return Err(format!("no probe value for column {} of type {} ({other})", c.name, c.ty)),
        }
    };
    Ok(format!("({expr})::{}", c.ty))
}

/// Seeds rows with generated values; parents first (one per table and scope).
impl<'a> Seeder<'a> {
    /// A seeder of `tables` that has made no row yet.
    pub(super) fn new(client: &'a Client, tables: &'a [TableInfo]) -> Seeder<'a> {
        Seeder {
            client,
            tables: tables.iter().map(|t| (t.oid, t)).collect(),
            counter: 0,
            parents: HashMap::new(),
            nulled: HashMap::new(),
            fitted: HashMap::new(),
        }
    }
}

pub(super) struct Seeder<'a> {
    pub(super) client: &'a Client,
    pub(super) tables: HashMap<u32, &'a TableInfo>,
    pub(super) counter: u32,
    pub(super) parents: HashMap<(u32, Option<String>), Row>,
    /// Nullable columns left NULL per table: they appear in a CHECK that
    /// rejected the generated values.
    pub(super) nulled: HashMap<u32, BTreeSet<String>>,
    /// Values per table and column that meet a CHECK which rejected the
    /// generated ones ([`super::check_values`]).
    pub(super) fitted: HashMap<u32, HashMap<String, String>>,
}

impl<'a> Seeder<'a> {
    pub(super) fn next(&mut self) -> u32 {
        self.counter += 1;
        self.counter
    }

    /// The INSERT of one row of `t` (with the key set to `key` when given).
    pub(super) async fn insert_sql(&mut self, t: &TableInfo, key: Option<(&str, &str)>, depth: u32) -> std::result::Result<String, String> {
        let nulled = self.nulled.get(&t.oid).cloned().unwrap_or_default();
        let fitted = self.fitted.get(&t.oid).cloned().unwrap_or_default();
        let n = self.next();
        let is_key = |name: &str| key.is_some_and(|(k, _)| k == name);
        // A foreign key with a required column (other than the scope key)
        // takes every one of its columns from one parent row, so that
        // multi-column keys match a real tuple.
        let mut from_parent: HashMap<String, String> = HashMap::new();
        for fk in &t.fks {
            let required = fk.columns.iter().any(|name| {
                !is_key(name)
                    && t.columns
                        .iter()
                        .any(|c| c.name == *name && c.not_null && !c.has_default && !c.no_insert)
            });
            if !required {
                continue;
            }
            let parent = self.parent(fk.target, key, depth + 1).await?;
            for (column, target_column) in fk.columns.iter().zip(&fk.target_columns) {
                if is_key(column) || from_parent.contains_key(column) {
                    continue;
                }
                let value = parent
                    .get(target_column)
                    .ok_or_else(|| format!("parent row of {} has no {target_column}", t.shown))?;
                from_parent.insert(column.clone(), value.clone());
            }
        }
        let mut cols = Vec::new();
        let mut vals = Vec::new();
        for c in &t.columns {
            if c.no_insert {
                continue;
            }
            if let Some((k, v)) = key.filter(|(k, _)| *k == c.name) {
                cols.push(quote_ident(k));
                vals.push(format!("{}::{}", quote_literal(v), c.ty));
                continue;
            }
            if let Some(value) = from_parent.get(&c.name) {
                cols.push(quote_ident(&c.name));
                vals.push(format!("{}::{}", quote_literal(value), c.ty));
                continue;
            }
            if t.fks.iter().any(|f| f.columns.contains(&c.name)) {
                // Nullable or defaulted: left to the default.
                continue;
            }
            if c.has_default || nulled.contains(&c.name) {
                continue;
            }
            if let Some(v) = fitted.get(&c.name) {
                cols.push(quote_ident(&c.name));
                vals.push(format!("{}::{}", quote_literal(v), c.ty));
                continue;
            }
            match value_for(c, n) {
                Ok(v) => {
                    cols.push(quote_ident(&c.name));
                    vals.push(v);
                }
                Err(e) if c.not_null => return Err(e),
                Err(_) => {}
            }
        }
        Ok(if cols.is_empty() {
            format!("INSERT INTO {} AS strata_row DEFAULT VALUES", t.qualified)
        } else {
            format!(
                "INSERT INTO {} AS strata_row ({}) VALUES ({})",
                t.qualified,
                cols.join(", "),
                vals.join(", ")
            )
        })
    }

    /// One row of a parent table, seeded once per scope.
    fn parent<'s>(
        &'s mut self,
        oid: u32,
        key: Option<(&'s str, &'s str)>,
        depth: u32,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::result::Result<Row, String>> + 's>> {
        Box::pin(async move {
            let t = *self.tables.get(&oid).ok_or("a parent table is not a plain user table")?;
            // The scope key travels down only to parents that carry it.
            let key = key.filter(|(k, _)| t.has_column(k));
            let memo = (oid, key.map(|(_, v)| v.to_string()));
            if let Some(row) = self.parents.get(&memo) {
                return Ok(row.clone());
            }
            if depth > 8 {
                return Err(format!("foreign keys nest too deep at {}", t.shown));
            }
            let row = self.seed(t, key, depth).await.map_err(|e| format!("parent {}: {e}", t.shown))?;
            self.parents.insert(memo, row.clone());
            Ok(row)
        })
    }

    /// Inserts one row (inside a savepoint) and returns its values. A CHECK
    /// violation is retried with the constraint's nullable columns left NULL.
    pub(super) async fn seed(&mut self, t: &TableInfo, key: Option<(&str, &str)>, depth: u32) -> std::result::Result<Row, String> {
        loop {
            let sql = self.insert_sql(t, key, depth).await?;
            let sql = format!("{sql} RETURNING to_jsonb(strata_row)::text");
            self.client.batch_execute("SAVEPOINT strata_seed").await.map_err(|e| describe(&e))?;
            let e = match self.client.query_one(&sql, &[]).await {
                Ok(row) => {
                    self.client
                        .batch_execute("RELEASE SAVEPOINT strata_seed")
                        .await
                        .map_err(|e| describe(&e))?;
                    let json: String = row.get(0);
                    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&json).map_err(|e| e.to_string())?;
                    return Ok(map
                        .into_iter()
                        .map(|(k, v)| {
                            let text = match v {
                                serde_json::Value::String(s) => s,
                                other => other.to_string(),
                            };
                            (k, text)
                        })
                        .collect());
                }
                Err(e) => e,
            };
            let _ = self.client.batch_execute("ROLLBACK TO SAVEPOINT strata_seed").await;
            if sqlstate(&e) == Some(CHECK_VIOLATION) && (self.fit_check(t, &e).await || self.null_columns_of(t, &e).await) {
                continue;
            }
            return Err(describe(&e));
        }
    }
}

impl Seeder<'_> {
    /// Takes values that meet the violated CHECK for the columns it
    /// constrains simply; false when it yields nothing new.
    async fn fit_check(&mut self, t: &TableInfo, e: &tokio_postgres::Error) -> bool {
        let Some(name) = e.as_db_error().and_then(|d| d.constraint()) else {
            return false;
        };
        let Ok(Some(row)) = self
            .client
            .query_opt(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = $1 AND conname = $2",
                &[&t.oid, &name],
            )
            .await
        else {
            return false;
        };
        let definition: String = row.get(0);
        let fitted = self.fitted.entry(t.oid).or_default();
        let mut changed = false;
        for (column, value) in super::check_values::values_for_check(&definition) {
            if t.has_column(&column) && !fitted.contains_key(&column) {
                fitted.insert(column, value);
                changed = true;
            }
        }
        changed
    }

    /// Marks the nullable columns of the violated CHECK as NULL; false when
    /// there is nothing new to leave out.
    async fn null_columns_of(&mut self, t: &TableInfo, e: &tokio_postgres::Error) -> bool {
        let Some(name) = e.as_db_error().and_then(|d| d.constraint()) else {
            return false;
        };
        let Ok(rows) = self
            .client
            .query(
                "SELECT a.attname FROM pg_constraint c
                 JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
                 WHERE c.conrelid = $1 AND c.conname = $2 AND NOT a.attnotnull",
                &[&t.oid, &name],
            )
            .await
        else {
            return false;
        };
        let set = self.nulled.entry(t.oid).or_default();
        let before = set.len();
        set.extend(rows.into_iter().map(|r| r.get::<_, String>(0)));
        set.len() > before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_values_differ_per_row() {
        let c = Column {
            name: "title".into(),
            ty: "text".into(),
            not_null: true,
            has_default: false,
            no_insert: false,
            category: "S".into(),
            base: "text".into(),
            is_enum: false,
        };
        assert_ne!(value_for(&c, 1), value_for(&c, 2));
    }
}
