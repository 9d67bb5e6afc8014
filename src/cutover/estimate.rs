//! How many rows a table holds, cheaply: `pg_class.reltuples` once the
//! table was analyzed (or vacuumed), else the planner's estimate from the
//! table's size (`EXPLAIN`), which is what PostgreSQL itself plans with.
//! Never a `count(*)`: plans and progress bars must not scan big tables.

use serde::Serialize;
use tokio_postgres::Client;

use super::{Error, Result};
use crate::pg::conn::sql_error;
use crate::pg::Target;

/// Where a row estimate comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Basis {
    /// `reltuples`, as of the last ANALYZE or VACUUM.
    Statistics,
    /// The table was never analyzed: the planner's guess from its size.
    Planner,
}

impl Basis {
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Statistics => "statistics",
            Basis::Planner => "planner estimate, never analyzed",
        }
    }
}

/// Estimated rows of `table` (a quoted name), or `None` when it does not exist.
pub async fn rows(client: &Client, target: &Target, table: &str) -> Result<Option<(u64, Basis)>> {
    let err = |what: &str| {
        let f = sql_error(target, format!("estimating the rows of {table}: {what}"));
        move |e| Error::Pg(f(e))
    };
    let row = client
        .query_opt("SELECT reltuples::float8 FROM pg_class WHERE oid = to_regclass($1)", &[&table])
        .await
        .map_err(err("pg_class"))?;
    let Some(row) = row else { return Ok(None) };
    let reltuples: f64 = row.try_get(0).map_err(|e| Error::Refused(format!("{table}: reltuples: {e}")))?;
    if reltuples >= 0.0 {
        return Ok(Some((reltuples.round() as u64, Basis::Statistics)));
    }
    // The simple protocol returns the plan as text (json has no FromSql without a driver feature).
    let messages = client
        .simple_query(&format!("EXPLAIN (FORMAT JSON) SELECT 1 FROM {table}"))
        .await
        .map_err(err("EXPLAIN"))?;
    let text = messages
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    let rows = json[0]["Plan"]["Plan Rows"].as_f64().unwrap_or(0.0);
    Ok(Some((rows.round() as u64, Basis::Planner)))
}
