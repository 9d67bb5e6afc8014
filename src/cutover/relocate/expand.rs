//! The target side of a move's mapping (old-named columns with a replica
//! trigger, or a staging table whose trigger upserts into the real one),
//! and what takes it away again: contract, and rollback (which also empties
//! the target tables, in foreign-key order).

use std::collections::BTreeSet;

use super::{columns, function_name, get, keeps_name, marker, staging_schema, target_of, trigger_name, MoveDbs};
use crate::cutover::{Error, Result, Sql};
use crate::pg::{quote_ident, quote_literal};

/// A foreign key on the target: `child` references `parent`.
struct ForeignKey {
    name: String,
    child: String,
    parent: String,
    /// `c."a" = p."x" AND ...`: the join of referencing to referenced rows.
    join: String,
}

impl MoveDbs<'_> {
    /// `CREATE SCHEMA` marked as ours, unless it exists.
    async fn schema_sql(&self, schema: &str) -> Result<String> {
        let exists: bool = get(
            &self
                .dst
                .query_one("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", &[&schema])
                .await
                .map_err(self.on_dst("reading the schemas"))?,
            0,
            "pg_namespace",
        )?;
        Ok(if exists {
            String::new()
        } else {
            format!(
                "CREATE SCHEMA IF NOT EXISTS {s};\nCOMMENT ON SCHEMA {s} IS {};\n",
                quote_literal(&marker(self.c)),
                s = quote_ident(schema)
            )
        })
    }

    /// The statements of expand (target only), with what each does.
    pub async fn expand_sql(&self) -> Result<Vec<Sql>> {
        let c = self.c;
        let trigger = quote_ident(&trigger_name(c));
        let mark = quote_literal(&marker(c));
        let mut out = Vec::new();
        let staging = self.schema_sql(&staging_schema(c)).await?;
        if !staging.is_empty() {
            out.push(Sql::new("target", "creating the staging schema", staging));
        }
        for t in &c.tables {
            let m = self.mapping(t).await?;
            let f = function_name(c, t);
            let assign_row = "FROM (SELECT NEW.*) AS strata_row";
            // Apply workers run with an empty search_path: the mapping's types and functions resolve in the target's schema.
            let path = format!("{}, pg_catalog", quote_ident(&t.target_schema));
            if m.same {
                let present: BTreeSet<String> = columns(&self.dst, &self.target, &m.target_q)
                    .await?
                    .into_iter()
                    .map(|col| col.name)
                    .collect();
                let missing: Vec<_> = m.published.iter().filter(|col| !present.contains(&col.name)).collect();
                let mut sql = String::new();
                if !missing.is_empty() {
                    let adds: Vec<String> = missing
                        .iter()
                        .map(|col| format!("ADD COLUMN IF NOT EXISTS {} {}", quote_ident(&col.name), col.ty))
                        .collect();
                    sql.push_str(&format!("ALTER TABLE {} {};\n", m.target_q, adds.join(", ")));
                    for col in &missing {
                        sql.push_str(&format!("COMMENT ON COLUMN {}.{} IS {mark};\n", m.target_q, quote_ident(&col.name)));
                    }
                }
                if !t.changes.is_empty() {
                    let body: String = t
                        .changes
                        .iter()
                        .map(|ch| format!("  SELECT ({}) INTO NEW.{} {assign_row};\n", ch.up, quote_ident(&ch.new)))
                        .collect();
                    sql.push_str(&format!(
                        "CREATE OR REPLACE FUNCTION {f}() RETURNS trigger LANGUAGE plpgsql SET search_path = {path} AS $strata$\nBEGIN\n{body}  RETURN NEW;\n\
                         END\n$strata$;\nDROP TRIGGER IF EXISTS {trigger} ON {q};\nCREATE TRIGGER {trigger} BEFORE INSERT OR UPDATE \
                         ON {q} FOR EACH ROW EXECUTE FUNCTION {f}();\nALTER TABLE {q} ENABLE REPLICA TRIGGER {trigger};\n",
                        q = m.target_q
                    ));
                }
                if !sql.is_empty() {
                    out.push(Sql::new(
                        "target",
                        format!("{}: {} old-named columns and the mapping trigger", m.target_q, missing.len()),
                        sql,
                    ));
                }
            } else {
                let key_list = m.key.list("");
                let mut sql = self.schema_sql(&t.schema).await?;
                let cols: Vec<String> = m
                    .published
                    .iter()
                    .map(|col| {
                        let not_null = if t.key.contains(&col.name) { " NOT NULL" } else { "" };
                        format!("{} {}{not_null}", quote_ident(&col.name), col.ty)
                    })
                    .collect();
                let names: Vec<String> = m.pairs.iter().map(|(n, _, _)| quote_ident(n)).collect();
                let exprs: Vec<String> = m.pairs.iter().map(|(_, _, e)| e.clone()).collect();
                let sets: Vec<String> = m
                    .pairs
                    .iter()
                    .filter(|(n, _, _)| !t.key.contains(n))
                    .map(|(n, _, _)| format!("{q} = EXCLUDED.{q}", q = quote_ident(n)))
                    .collect();
                let conflict = if sets.is_empty() {
                    "DO NOTHING".to_string()
                } else {
                    format!("DO UPDATE SET {}", sets.join(", "))
                };
                let is_old = m.key.equal("", "OLD");
                let (old_row, new_row) = (format!("ROW({})", m.key.list("OLD")), format!("ROW({})", m.key.list("NEW")));
                sql.push_str(&format!(
                    "CREATE TABLE IF NOT EXISTS {l} ({}, PRIMARY KEY ({key_list}));\nCOMMENT ON TABLE {l} IS {mark};\n\
                     CREATE OR REPLACE FUNCTION {f}() RETURNS trigger LANGUAGE plpgsql SET search_path = {path} AS $strata$\nBEGIN\n  \
                     IF TG_OP = 'DELETE' THEN\n    DELETE FROM {tq} WHERE {is_old};\n    RETURN NULL;\n  END IF;\n  \
                     IF TG_OP = 'UPDATE' AND {old_row} IS DISTINCT FROM {new_row} THEN\n    DELETE FROM {tq} WHERE {is_old};\n  \
                     END IF;\n  INSERT INTO {tq} ({}) OVERRIDING SYSTEM VALUE SELECT {} {assign_row}\n    ON CONFLICT ({key_list}) {conflict};\n  \
                     RETURN NULL;\nEND\n$strata$;\nDROP TRIGGER IF EXISTS {trigger} ON {l};\nCREATE TRIGGER {trigger} AFTER INSERT OR \
                     UPDATE OR DELETE ON {l} FOR EACH ROW EXECUTE FUNCTION {f}();\nALTER TABLE {l} ENABLE REPLICA TRIGGER {trigger};\n",
                    cols.join(", "),
                    names.join(", "),
                    exprs.join(", "),
                    l = m.landing_q,
                    tq = m.target_q,
                ));
                out.push(Sql::new(
                    "target",
                    format!("{}: staging table for {}.{}", t.display(), t.target_schema, t.target_name),
                    sql,
                ));
            }
        }
        Ok(out)
    }

    /// The target side of the mapping: old-named columns and triggers, or staging tables.
    pub async fn expand(&self) -> Result<String> {
        let statements = self.expand_sql().await?;
        for s in &statements {
            self.dst_ddl(&s.what, &s.sql).await?;
        }
        Ok(statements
            .iter()
            .filter(|s| !s.what.contains("staging schema"))
            .map(|s| s.what.clone())
            .collect::<Vec<_>>()
            .join("; "))
    }

    /// The statements dropping what expand added on the target: triggers,
    /// functions, marked columns (and, before expand ran, the columns it
    /// would add) and staging tables, and the schemas strata created if empty.
    pub async fn teardown_sql(&self) -> Result<Vec<Sql>> {
        let c = self.c;
        let trigger = quote_ident(&trigger_name(c));
        let mut out = Vec::new();
        let mut schemas = vec![staging_schema(c)];
        for t in &c.tables {
            let target_q = target_of(t);
            let mut sql = String::new();
            if keeps_name(t) {
                if self.exists_on_target(&target_q).await? {
                    let marked = self.marked_columns(&target_q).await?;
                    sql.push_str(&format!("DROP TRIGGER IF EXISTS {trigger} ON {target_q};\n"));
                    if !marked.is_empty() {
                        let drops: Vec<String> = marked.iter().map(|m| format!("DROP COLUMN IF EXISTS {}", quote_ident(m))).collect();
                        sql.push_str(&format!("ALTER TABLE {target_q} {};\n", drops.join(", ")));
                    }
                }
            } else {
                if self.is_marked_table(&t.qualified()).await? {
                    sql.push_str(&format!("DROP TABLE IF EXISTS {};\n", t.qualified()));
                }
                schemas.push(t.schema.clone());
            }
            sql.push_str(&format!("DROP FUNCTION IF EXISTS {}();\n", function_name(c, t)));
            out.push(Sql::new(
                "target",
                format!("dropping the replication objects of {}", t.display()),
                sql,
            ));
        }
        schemas.sort();
        schemas.dedup();
        for s in schemas {
            let marked: bool = get(
                &self
                    .dst
                    .query_one(
                        "SELECT coalesce((SELECT obj_description(oid, 'pg_namespace') = $2 FROM pg_namespace WHERE nspname = $1), false)",
                        &[&s, &marker(c)],
                    )
                    .await
                    .map_err(self.on_dst("reading the schemas"))?,
                0,
                "pg_namespace",
            )?;
            if marked {
                out.push(Sql::new(
                    "target",
                    format!("dropping the staging schema {s} if it is empty"),
                    format!(
                        "DO $strata$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                         WHERE n.nspname = {name}) AND NOT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
                         WHERE n.nspname = {name}) THEN DROP SCHEMA IF EXISTS {q}; END IF; END $strata$",
                        name = quote_literal(&s),
                        q = quote_ident(&s)
                    ),
                ));
            }
        }
        Ok(out)
    }

    /// Drops what expand added on the target; returns how many statements ran.
    async fn drop_target_objects(&self) -> Result<usize> {
        let statements = self.teardown_sql().await?;
        for s in &statements {
            self.dst_ddl(&s.what, &s.sql).await?;
        }
        Ok(statements.len())
    }

    /// Contract: the mapping objects go; the source is never touched.
    pub async fn contract(&mut self) -> Result<String> {
        self.drop_replication().await?;
        let before = self.marked_total().await?;
        self.drop_target_objects().await?;
        Ok(format!(
            "{before} old-named columns and staging tables dropped on the target; the source tables are left for the operator"
        ))
    }

    /// Old-named columns and staging tables of this cutover on the target.
    async fn marked_total(&self) -> Result<usize> {
        let mut n = 0;
        for t in &self.c.tables {
            if keeps_name(t) {
                n += self.marked_columns(&target_of(t)).await?.len();
            } else if self.is_marked_table(&t.qualified()).await? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Foreign keys on the target whose referenced table is one of `tables`.
    async fn foreign_keys_into(&self, tables: &[String]) -> Result<Vec<ForeignKey>> {
        let rows = self
            .dst
            .query(
                "SELECT f.conname::text, f.conrelid::regclass::text, f.confrelid::regclass::text,
                        (SELECT string_agg(format('c.%I = p.%I', ca.attname, pa.attname), ' AND ' ORDER BY k.n)
                           FROM unnest(f.conkey, f.confkey) WITH ORDINALITY AS k(ck, pk, n)
                           JOIN pg_attribute ca ON ca.attrelid = f.conrelid AND ca.attnum = k.ck
                           JOIN pg_attribute pa ON pa.attrelid = f.confrelid AND pa.attnum = k.pk)
                   FROM pg_constraint f
                  WHERE f.contype = 'f' AND f.confrelid = ANY (SELECT to_regclass(t) FROM unnest($1::text[]) AS t)",
                &[&tables],
            )
            .await
            .map_err(self.on_dst("reading the foreign keys of the target tables"))?;
        let what = "pg_constraint";
        rows.iter()
            .map(|r| {
                Ok(ForeignKey {
                    name: get(r, 0, what)?,
                    child: get(r, 1, what)?,
                    parent: get(r, 2, what)?,
                    join: get(r, 3, what)?,
                })
            })
            .collect()
    }

    /// How to empty the target tables of this cutover, and nothing else:
    /// one `TRUNCATE` when no other table references them; else `DELETE`s
    /// in foreign-key order (referencing tables first). Refused when a table
    /// outside the cutover has rows pointing at rows the move copied (they
    /// would be deleted by a cascade, or block the delete): those rows are
    /// not the cutover's to remove.
    pub async fn emptying_sql(&self) -> Result<Vec<Sql>> {
        let mut tables = Vec::new();
        for t in &self.c.tables {
            let q = target_of(t);
            if self.exists_on_target(&q).await? {
                // As regclass prints it, to compare with the catalog's names.
                let shown: String = get(
                    &self
                        .dst
                        .query_one("SELECT to_regclass($1)::text", &[&q])
                        .await
                        .map_err(self.on_dst(format!("looking up {q}")))?,
                    0,
                    &q,
                )?;
                tables.push((q, shown));
            }
        }
        if tables.is_empty() {
            return Ok(Vec::new());
        }
        let shown: Vec<String> = tables.iter().map(|(_, s)| s.clone()).collect();
        let fks = self
            .foreign_keys_into(&tables.iter().map(|(q, _)| q.clone()).collect::<Vec<_>>())
            .await?;
        let ours = |name: &str| shown.iter().any(|s| s == name);
        let outside: Vec<&ForeignKey> = fks.iter().filter(|f| !ours(&f.child)).collect();
        let mut blocked = Vec::new();
        for f in &outside {
            let n: i64 = get(
                &self
                    .dst
                    .query_one(
                        &format!(
                            "SELECT count(*) FROM {} AS c WHERE EXISTS (SELECT 1 FROM {} AS p WHERE {})",
                            f.child, f.parent, f.join
                        ),
                        &[],
                    )
                    .await
                    .map_err(self.on_dst(format!("counting the rows of {} that reference {}", f.child, f.parent)))?,
                0,
                &f.child,
            )?;
            if n > 0 {
                blocked.push(format!(
                    "{n} rows of {} reference rows of {} that the move copied (foreign key {})",
                    f.child, f.parent, f.name
                ));
            }
        }
        if !blocked.is_empty() {
            return Err(Error::Refused(format!(
                "rollback cannot empty the target tables: {}; those rows are not the cutover's to delete: remove or re-point \
                 them, then run the rollback again (it carries on where it stopped)",
                blocked.join("; ")
            )));
        }
        if outside.is_empty() {
            let list: Vec<String> = tables.iter().map(|(q, _)| q.clone()).collect();
            return Ok(vec![Sql::new(
                "target",
                "emptying the target tables",
                format!("TRUNCATE {}", list.join(", ")),
            )]);
        }
        // Referencing tables first; a table referencing itself does not wait for itself.
        let mut left: Vec<(String, String)> = tables;
        let mut order = Vec::new();
        while !left.is_empty() {
            let pos = left
                .iter()
                .position(|(_, s)| {
                    !fks.iter()
                        .any(|f| &f.parent == s && f.child != *s && left.iter().any(|(_, other)| other == &f.child))
                })
                // A cycle between two tables: delete in file order, the foreign keys' actions decide.
                .unwrap_or(0);
            order.push(left.remove(pos).0);
        }
        Ok(order
            .into_iter()
            .map(|q| Sql::new("target", format!("emptying {q}"), format!("DELETE FROM {q}")))
            .collect())
    }

    /// The statements of a rollback on the target, in order (after the
    /// replication objects are dropped): empty the tables, drop the mapping.
    pub async fn rollback_sql(&self) -> Result<Vec<Sql>> {
        let mut out = self.emptying_sql().await?;
        out.extend(self.teardown_sql().await?);
        Ok(out)
    }

    /// Undoes everything before the writers flipped: replication, the target
    /// tables' rows (all copies of the source: they were empty at preflight
    /// and nothing else writes them before the writers flip), the mapping
    /// objects. Each part checks what is left, so a rollback that stopped
    /// half way finishes when run again.
    pub async fn rollback(&mut self) -> Result<String> {
        self.drop_replication().await?;
        let emptying = self.emptying_sql().await?;
        for s in &emptying {
            self.dst_ddl(&s.what, &s.sql).await?;
        }
        let dropped = self.marked_total().await?;
        self.drop_target_objects().await?;
        Ok(format!(
            "subscription, slot and publication {} dropped; target tables emptied ({}); {dropped} added columns and staging \
             tables dropped",
            self.name,
            emptying.iter().map(|s| s.sql.clone()).collect::<Vec<_>>().join("; ")
        ))
    }
}
