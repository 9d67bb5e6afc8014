//! The key a backfill and a verification walk: one or more columns of a
//! unique btree index, in that index's order. Batches are key ranges written
//! with row comparisons (`(a, b) > ($1, $2) ORDER BY a, b LIMIT n`), which
//! PostgreSQL turns into range scans of the index for any orderable type
//! (uuid, text, bigint, timestamps, several columns) — unlike `min()`/`max()`,
//! which exist only for some types. Key values travel as text (`text[]`, one
//! element per column) and are cast back to the columns' types in SQL, so
//! one code path serves every key.

use tokio_postgres::Client;

use super::{Error, Result};
use crate::pg::conn::sql_error;
use crate::pg::{quote_ident, Target};

/// The columns of a key with their SQL types, in index order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub columns: Vec<(String, String)>,
}

impl Key {
    /// Reads the types of `names` on `table` (a quoted `"schema"."name"`).
    pub async fn load(client: &Client, target: &Target, table: &str, names: &[String]) -> Result<Key> {
        let mut columns = Vec::new();
        for n in names {
            let row = client
                .query_opt(
                    "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
                     WHERE attrelid = to_regclass($1) AND attname = $2 AND attnum > 0 AND NOT attisdropped",
                    &[&table, n],
                )
                .await
                .map_err(|e| Error::Pg(sql_error(target, format!("reading the key of {table}"))(e)))?;
            let ty: String = match row {
                Some(r) => r
                    .try_get(0)
                    .map_err(|e| Error::Refused(format!("{table}: the type of key column {n}: {e}")))?,
                None => return Err(Error::Refused(format!("{table}: key column {n} does not exist"))),
            };
            columns.push((n.clone(), ty));
        }
        Ok(Key { columns })
    }

    fn each(&self, f: impl Fn(usize, &str, &str) -> String, sep: &str) -> String {
        self.columns
            .iter()
            .enumerate()
            .map(|(i, (n, t))| f(i, n, t))
            .collect::<Vec<_>>()
            .join(sep)
    }

    fn col(alias: &str, name: &str) -> String {
        if alias.is_empty() {
            quote_ident(name)
        } else {
            format!("{alias}.{}", quote_ident(name))
        }
    }

    /// `a."x", a."y"` (the ORDER BY and the column list).
    pub fn list(&self, alias: &str) -> String {
        self.each(|_, n, _| Self::col(alias, n), ", ")
    }

    /// `a."x" DESC, a."y" DESC`.
    pub fn desc(&self, alias: &str) -> String {
        self.each(|_, n, _| format!("{} DESC", Self::col(alias, n)), ", ")
    }

    /// `(a."x", a."y")`: the left side of a row comparison.
    pub fn row(&self, alias: &str) -> String {
        format!("({})", self.list(alias))
    }

    /// `((($n::text[])[1])::uuid, (($n::text[])[2])::bigint)`: parameter `$n` (a text[]) as a key.
    pub fn param(&self, n: usize) -> String {
        format!("({})", self.each(|i, _, t| format!("((${n}::text[])[{}])::{t}", i + 1), ", "))
    }

    /// The same from a text[] expression (`b.lo`).
    pub fn from_text(&self, array: &str) -> String {
        format!("({})", self.each(|i, _, t| format!("(({array})[{}])::{t}", i + 1), ", "))
    }

    /// `ARRAY[a."x"::text, a."y"::text]`: a key as the text[] it travels as.
    pub fn to_text(&self, alias: &str) -> String {
        format!("ARRAY[{}]", self.each(|_, n, _| format!("{}::text", Self::col(alias, n)), ", "))
    }

    /// `"x" = OLD."x" AND ...`-style equality of two rows' keys.
    pub fn equal(&self, left: &str, right: &str) -> String {
        self.each(|_, n, _| format!("{} = {}", Self::col(left, n), Self::col(right, n)), " AND ")
    }

    pub fn names(&self) -> Vec<String> {
        self.columns.iter().map(|(n, _)| n.clone()).collect()
    }
}

/// One unique index of a table, as the key check sees it.
struct UniqueIndex {
    name: String,
    primary: bool,
    columns: Vec<String>,
    default_opclasses: bool,
    same_collations: bool,
}

/// Why `key` cannot drive keyset batches over `table` (a quoted name shown
/// as `display`), or nothing when it can: every column exists and is NOT
/// NULL (a NULL key would be skipped by every range), and a valid,
/// non-partial unique btree index has exactly these columns, in this order,
/// with the types' default operator classes and the columns' collations
/// (so that `ORDER BY` and row comparisons follow the index).
pub async fn problems(client: &Client, target: &Target, table: &str, display: &str, key: &[String]) -> Result<Vec<String>> {
    let err = |what: &str| {
        let f = sql_error(target, format!("reading the {what} of {display}"));
        move |e| Error::Pg(f(e))
    };
    let mut problems = Vec::new();
    for k in key {
        let row = client
            .query_opt(
                "SELECT attnotnull FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2 AND attnum > 0 AND NOT attisdropped",
                &[&table, k],
            )
            .await
            .map_err(err("columns"))?;
        match row.map(|r| r.try_get::<_, bool>(0)) {
            None => problems.push(format!("{display}: key column {k} does not exist")),
            Some(Ok(false)) => problems.push(format!(
                "{display}: key column {k} is nullable: rows whose key is NULL would be skipped by every batch \
                 (make it NOT NULL, or use the primary key)"
            )),
            Some(Ok(true)) => {}
            Some(Err(e)) => return Err(Error::Refused(format!("{display}: reading key column {k}: {e}"))),
        }
    }
    if !problems.is_empty() {
        return Ok(problems);
    }
    let rows = client
        .query(
            "SELECT ic.relname::text, i.indisprimary,
                    array(SELECT coalesce(a.attname::text, '(expression)')
                            FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
                            LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                           WHERE k.n <= i.indnkeyatts ORDER BY k.n),
                    coalesce((SELECT bool_and(o.opcdefault) FROM unnest(i.indclass::oid[]) WITH ORDINALITY AS k(opc, n)
                               JOIN pg_opclass o ON o.oid = k.opc WHERE k.n <= i.indnkeyatts), false),
                    coalesce((SELECT bool_and(k.coll = coalesce(a.attcollation, 0))
                                FROM unnest(i.indcollation::oid[], i.indkey::int2[]) AS k(coll, attnum)
                                LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum), true)
               FROM pg_index i
               JOIN pg_class ic ON ic.oid = i.indexrelid
               JOIN pg_am am ON am.oid = ic.relam
              WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indisvalid AND i.indpred IS NULL
                AND am.amname = 'btree'
              ORDER BY i.indisprimary DESC, ic.relname",
            &[&table],
        )
        .await
        .map_err(err("indexes"))?;
    let mut indexes = Vec::new();
    for r in &rows {
        let bad = |e: tokio_postgres::Error| Error::Refused(format!("{display}: reading its unique indexes: {e}"));
        indexes.push(UniqueIndex {
            name: r.try_get(0).map_err(bad)?,
            primary: r.try_get(1).map_err(bad)?,
            columns: r.try_get(2).map_err(bad)?,
            default_opclasses: r.try_get(3).map_err(bad)?,
            same_collations: r.try_get(4).map_err(bad)?,
        });
    }
    let wanted = format!("({})", key.join(", "));
    if let Some(i) = indexes.iter().find(|i| i.columns == key) {
        if !i.default_opclasses {
            problems.push(format!(
                "{display}: the unique index {} on {wanted} uses a non-default operator class: ORDER BY would not follow it \
                 (add a unique index with the default operator class)",
                i.name
            ));
        } else if !i.same_collations {
            problems.push(format!(
                "{display}: the unique index {} on {wanted} has another collation than its columns: ORDER BY would not follow it",
                i.name
            ));
        }
        return Ok(problems);
    }
    let mut sorted_key = key.to_vec();
    sorted_key.sort();
    let reordered = indexes.iter().find(|i| {
        let mut c = i.columns.clone();
        c.sort();
        c == sorted_key
    });
    let hint = match reordered {
        Some(i) => format!(
            "the unique index {} has these columns in another order: write key = [{}]",
            i.name,
            i.columns.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ")
        ),
        None if indexes.is_empty() => "the table has no unique index".into(),
        None => format!(
            "its unique keys: {}",
            indexes
                .iter()
                .map(|i| format!(
                    "{}{} ({})",
                    i.name,
                    if i.primary { " (primary key)" } else { "" },
                    i.columns.join(", ")
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    problems.push(format!(
        "{display}: key {wanted} is not a unique btree index of the table, so batches cannot walk it ({hint})"
    ));
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_of_a_composite_key() {
        let k = Key {
            columns: vec![("org_id".into(), "uuid".into()), ("id".into(), "bigint".into())],
        };
        assert_eq!(k.list("t"), "t.\"org_id\", t.\"id\"");
        assert_eq!(k.row(""), "(\"org_id\", \"id\")");
        assert_eq!(k.param(1), "((($1::text[])[1])::uuid, (($1::text[])[2])::bigint)");
        assert_eq!(k.to_text("s"), "ARRAY[s.\"org_id\"::text, s.\"id\"::text]");
        assert_eq!(k.desc(""), "\"org_id\" DESC, \"id\" DESC");
        assert_eq!(k.equal("a", "b"), "a.\"org_id\" = b.\"org_id\" AND a.\"id\" = b.\"id\"");
    }
}
