//! The `move` kind between two databases. Only its preflight runs today:
//! both databases answer, the source can feed logical replication
//! (`wal_level = logical`, a free replication slot, a role with REPLICATION),
//! every source table has a primary key or a replica identity, and every
//! target table exists. Expand, replication, flips and contract of a move
//! are not implemented yet (docs/cutovers.md has the design notes).

use super::plan::Cutover;
use super::{Error, Result};
use crate::pg::conn::sql_error;
use crate::pg::Target;

async fn text(client: &tokio_postgres::Client, target: &Target, sql: &str) -> Result<String> {
    let row = client
        .query_one(sql, &[])
        .await
        .map_err(|e| Error::Pg(sql_error(target, sql.to_string())(e)))?;
    Ok(row.get(0))
}

pub async fn preflight(c: &Cutover) -> Result<String> {
    let source = Target::parse(c.file.source.as_deref().unwrap_or_default())?;
    let target = Target::parse(c.file.target.as_deref().unwrap_or_default())?;
    let src = crate::pg::connect(&source).await?;
    let dst = crate::pg::connect(&target).await?;
    let mut problems = Vec::new();
    let wal = text(&src, &source, "SELECT current_setting('wal_level')").await?;
    if wal != "logical" {
        problems.push(format!(
            "source wal_level is {wal}: logical replication needs wal_level = logical (a restart)"
        ));
    }
    let free = text(
        &src,
        &source,
        "SELECT (current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots))::text",
    )
    .await?;
    if free.parse::<i64>().unwrap_or(0) < 1 {
        problems.push("source has no free replication slot (max_replication_slots)".into());
    }
    let can = text(
        &src,
        &source,
        "SELECT (rolreplication OR rolsuper)::text FROM pg_roles WHERE rolname = current_user",
    )
    .await?;
    if can != "true" {
        problems.push("the source role has neither REPLICATION nor SUPERUSER".into());
    }
    for t in &c.tables {
        let row = src
            .query_opt(
                "SELECT c.relreplident::text, EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) \
                 FROM pg_class c WHERE c.oid = to_regclass($1)",
                &[&t.qualified()],
            )
            .await
            .map_err(|e| Error::Pg(sql_error(&source, format!("reading {}", t.display()))(e)))?;
        match row {
            None => problems.push(format!("source table {} does not exist", t.display())),
            Some(r) => {
                let ident: String = r.get(0);
                let pk: bool = r.get(1);
                if ident == "n" || (ident == "d" && !pk) {
                    problems.push(format!(
                        "source table {} has no primary key or replica identity: updates and deletes could not be replicated",
                        t.display()
                    ));
                }
            }
        }
        let target_table = format!(
            "{}.{}",
            crate::pg::quote_ident(&t.target_schema),
            crate::pg::quote_ident(&t.target_name)
        );
        let exists: bool = dst
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&target_table])
            .await
            .map_err(|e| Error::Pg(sql_error(&target, "looking up target tables")(e)))?
            .get(0);
        if !exists {
            problems.push(format!(
                "target table {}.{} does not exist (apply the target's schema first: strata migrate)",
                t.target_schema, t.target_name
            ));
        }
    }
    if problems.is_empty() {
        Ok(format!("source {source} and target {target} ready; {} tables", c.tables.len()))
    } else {
        Err(Error::Refused(format!("preflight failed: {}", problems.join("; "))))
    }
}
