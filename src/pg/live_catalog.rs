//! A live database's schema read into the static engine's
//! [`crate::catalog::Catalog`], so that the rules written for replayed SQL
//! can judge what a migration really left behind (`strata check --shadow`).
//!
//! Two parts:
//! - [`object_keys`]: the identity of every user object (relations, columns,
//!   constraints, policies, functions, enum types, schemas, extensions) as a
//!   set of short keys (`c<oid>`, `a<relid>.<attnum>`, ...). Diffing the set
//!   before and after a statement tells which objects that statement created,
//!   whether it did so directly or inside a DO block or a function.
//! - [`read_catalog`]: the whole user schema as a [`Catalog`], every object
//!   carrying the [`Origin`] its key was given (objects that existed before
//!   the reviewed files get the `pre` origin).
//!
//! What the model keeps is what the replay keeps; where the server's text
//! differs from the written SQL it is normalized as far as the rules need:
//! - column types are `format_type` output (`character varying(20)`);
//! - policy expressions are `pg_get_expr` output with the `'...'::text`
//!   casts PostgreSQL adds to string literals removed, then parsed with
//!   sqlparser; an expression sqlparser cannot read is kept as absent
//!   (`None`), which the policy rules treat like a missing clause;
//! - CHECK constraints are `pg_get_constraintdef` text without `CHECK`;
//! - NOT NULL is `attnotnull`, except while the column's not-null constraint
//!   is NOT VALID (PostgreSQL 18), and a generated column has no default;
//! - objects that belong to an extension, the `strata` schema and the system
//!   schemas are left out, as in [`super::introspect`].

use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;

use regex::Regex;
use tokio_postgres::Client;

use super::conn::sql_error;
use super::{Result, Target};
use crate::catalog::{
    Catalog, Column, Constraint, ConstraintKind, EnumType, Extension, Function, Index, Origin, Policy, PolicyCommand, QName, Table, View,
};

/// Namespaces that hold user objects.
const USER_NS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema', 'strata') AND n.nspname !~ '^pg_'";

fn not_extension_member(catalog: &str, oid: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.classid = '{catalog}'::regclass AND dep.objid = {oid} AND dep.deptype = 'e')"
    )
}

/// The key of a relation (table, view, index) with this oid.
pub fn relation_key(oid: u32) -> String {
    format!("c{oid}")
}

/// The keys of every user object of the database (see the module doc).
pub async fn object_keys(client: &Client, target: &Target) -> Result<BTreeSet<String>> {
    let sql = format!(
        "SELECT 'c' || c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE {USER_NS} AND c.relkind IN ('r', 'p', 'v', 'm', 'i', 'I')
         UNION ALL
         SELECT 'a' || a.attrelid || '.' || a.attnum FROM pg_attribute a
           JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE {USER_NS} AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
         UNION ALL
         SELECT 'k' || co.oid FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace WHERE {USER_NS}
         UNION ALL
         SELECT 'p' || p.oid FROM pg_policy p
         UNION ALL
         SELECT 'f' || p.oid FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {USER_NS}
         UNION ALL
         SELECT 't' || t.oid FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE {USER_NS} AND t.typtype = 'e'
         UNION ALL
         SELECT 'n' || n.oid FROM pg_namespace n WHERE {USER_NS}
         UNION ALL
         SELECT 'e' || e.oid FROM pg_extension e"
    );
    let rows = client
        .query(&sql, &[])
        .await
        .map_err(sql_error(target, "cannot list the objects of the shadow database"))?;
    Ok(rows.into_iter().map(|r| r.get::<_, String>(0)).collect())
}

static TEXT_CAST: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"('(?:[^']|'')*')::text\b").expect("regex"));

/// A policy expression as the server prints it, made readable for the
/// policy rules: `'orbis.container_id'::text` becomes `'orbis.container_id'`.
pub fn policy_expr(text: &str) -> Option<sqlparser::ast::Expr> {
    let cleaned = TEXT_CAST.replace_all(text, "$1");
    crate::rules::parse_policy_expr(&cleaned).ok()
}

fn policy_command(c: &str) -> PolicyCommand {
    match c {
        "r" => PolicyCommand::Select,
        "a" => PolicyCommand::Insert,
        "w" => PolicyCommand::Update,
        "d" => PolicyCommand::Delete,
        _ => PolicyCommand::All,
    }
}

/// Reads the user schema into a [`Catalog`]. `origins` maps object keys (as
/// [`object_keys`] returns them) to where they were created; every other
/// object gets `pre`. A column without its own origin gets its table's.
pub async fn read_catalog(client: &Client, target: &Target, origins: &HashMap<String, Origin>, pre: Origin) -> Result<Catalog> {
    let err = |what: &str| sql_error(target, format!("cannot read the {what} of the shadow database"));
    let origin = |key: String| origins.get(&key).copied().unwrap_or(pre);
    let mut cat = Catalog::new();

    for r in client
        .query(&format!("SELECT n.oid, n.nspname::text FROM pg_namespace n WHERE {USER_NS}"), &[])
        .await
        .map_err(err("schemas"))?
    {
        let oid: u32 = r.get(0);
        cat.schemas.insert(r.get(1), origin(format!("n{oid}")));
    }

    for r in client
        .query(
            "SELECT e.oid, e.extname::text, n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
             WHERE e.extname <> 'plpgsql'",
            &[],
        )
        .await
        .map_err(err("extensions"))?
    {
        let oid: u32 = r.get(0);
        let name: String = r.get(1);
        cat.extensions.insert(
            name.clone(),
            Extension {
                name,
                schema: Some(r.get(2)),
                origin: origin(format!("e{oid}")),
            },
        );
    }

    // Tables and views.
    let sql = format!(
        "SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text, c.relrowsecurity, c.relforcerowsecurity,
                c.relpersistence = 't', obj_description(c.oid, 'pg_class'),
                EXISTS (SELECT 1 FROM unnest(c.reloptions) o
                         WHERE lower(o) IN ('security_invoker=true', 'security_invoker=on', 'security_invoker=1', 'security_invoker=yes'))
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE {USER_NS} AND c.relkind IN ('r', 'p', 'v', 'm') AND {}",
        not_extension_member("pg_class", "c.oid")
    );
    let mut by_oid: HashMap<u32, QName> = HashMap::new();
    for r in client.query(&sql, &[]).await.map_err(err("tables"))? {
        let oid: u32 = r.get(0);
        let name = QName::new(r.get::<_, String>(1), r.get::<_, String>(2));
        let kind: String = r.get(3);
        let o = origin(relation_key(oid));
        if kind == "v" || kind == "m" {
            cat.views.insert(
                name.clone(),
                View {
                    name,
                    materialized: kind == "m",
                    security_invoker: r.get(8),
                    origin: o,
                },
            );
            continue;
        }
        by_oid.insert(oid, name.clone());
        cat.tables.insert(
            name.clone(),
            Table {
                name,
                columns: Vec::new(),
                constraints: Vec::new(),
                rls_enabled: r.get(4),
                rls_forced: r.get(5),
                policies: Vec::new(),
                comment: r.get(7),
                temporary: r.get(6),
                triggers: Vec::new(),
                grants: Vec::new(),
                partitioned: kind == "p",
                origin: o,
            },
        );
    }
    let oids: Vec<u32> = by_oid.keys().copied().collect();
    let table_of = |cat: &mut Catalog, oid: u32| -> Option<QName> { by_oid.get(&oid).filter(|n| cat.tables.contains_key(*n)).cloned() };

    for r in client
        .query(
            // A NOT NULL added NOT VALID (PostgreSQL 18) sets attnotnull but
            // does not prove the column: it counts once validated. A generated
            // column's expression is not a default (as in the static replay).
            "SELECT a.attrelid, a.attnum::int4, a.attname::text, format_type(a.atttypid, a.atttypmod),
                    a.attnotnull AND NOT EXISTS (SELECT 1 FROM pg_constraint nn WHERE nn.conrelid = a.attrelid
                        AND nn.contype = 'n' AND NOT nn.convalidated AND a.attnum = ANY (nn.conkey)),
                    CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END, a.attidentity <> '',
                    a.attgenerated::text
             FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             WHERE a.attrelid = ANY ($1) AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attrelid, a.attnum",
            &[&oids],
        )
        .await
        .map_err(err("columns"))?
    {
        let relid: u32 = r.get(0);
        let attnum: i32 = r.get(1);
        let Some(q) = table_of(&mut cat, relid) else { continue };
        let t = cat.tables.get_mut(&q).expect("table listed above");
        let o = origins.get(&format!("a{relid}.{attnum}")).copied().unwrap_or(t.origin);
        t.columns.push(Column {
            name: r.get(2),
            data_type: r.get::<_, String>(3).to_lowercase(),
            not_null: r.get(4),
            default: r.get(5),
            identity: r.get(6),
            generated: match r.get::<_, String>(7).as_str() {
                "s" => Some(crate::sql::model::Generated::Stored),
                "v" => Some(crate::sql::model::Generated::Virtual),
                _ => None,
            },
            origin: o,
        });
    }

    let keys = |arr: &str, rel: &str| {
        format!(
            "ARRAY(SELECT a.attname::text FROM unnest({arr}) WITH ORDINALITY k(num, i)
                   JOIN pg_attribute a ON a.attrelid = {rel} AND a.attnum = k.num ORDER BY k.i)"
        )
    };
    let sql = format!(
        "SELECT co.oid, co.conrelid, co.conname::text, co.contype::text, co.convalidated, {}, fn.nspname::text, fc.relname::text, {},
                pg_get_constraintdef(co.oid)
         FROM pg_constraint co
         LEFT JOIN pg_class fc ON fc.oid = co.confrelid LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
         WHERE co.conrelid = ANY ($1) AND (co.contype IN ('p', 'u', 'f', 'c', 'x') OR (co.contype = 'n' AND NOT co.convalidated))
         ORDER BY co.conrelid, co.conname",
        keys("co.conkey", "co.conrelid"),
        keys("co.confkey", "co.confrelid")
    );
    for r in client.query(&sql, &[&oids]).await.map_err(err("constraints"))? {
        let oid: u32 = r.get(0);
        let Some(q) = table_of(&mut cat, r.get(1)) else { continue };
        let contype: String = r.get(3);
        let kind = match contype.as_str() {
            "p" => ConstraintKind::PrimaryKey,
            "u" => ConstraintKind::Unique,
            "x" => ConstraintKind::Exclusion,
            // Only the NOT VALID ones (PostgreSQL 18): a valid NOT NULL is the column's.
            "n" => ConstraintKind::NotNull,
            "f" => ConstraintKind::ForeignKey {
                table: QName::new(
                    r.get::<_, Option<String>>(6).unwrap_or_default(),
                    r.get::<_, Option<String>>(7).unwrap_or_default(),
                ),
                columns: r.get(8),
            },
            _ => {
                let def: String = r.get(9);
                let expr = def.strip_prefix("CHECK ").unwrap_or(&def);
                let expr = expr.strip_suffix(" NOT VALID").unwrap_or(expr);
                ConstraintKind::Check { expr: expr.to_string() }
            }
        };
        let o = origin(format!("k{oid}"));
        let t = cat.tables.get_mut(&q).expect("table listed above");
        t.constraints.push(Constraint {
            name: Some(r.get(2)),
            kind,
            columns: r.get(5),
            not_valid: !r.get::<_, bool>(4),
            origin: o,
        });
    }

    for r in client
        .query(
            "SELECT p.oid, p.polrelid, p.polname::text, p.polcmd::text, p.polpermissive,
                    ARRAY(SELECT CASE WHEN x.r = 0 THEN 'public' ELSE lower(pg_get_userbyid(x.r)::text) END
                          FROM unnest(p.polroles) WITH ORDINALITY x(r, i) ORDER BY x.i),
                    pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
             FROM pg_policy p WHERE p.polrelid = ANY ($1) ORDER BY p.polrelid, p.polname",
            &[&oids],
        )
        .await
        .map_err(err("policies"))?
    {
        let oid: u32 = r.get(0);
        let Some(q) = table_of(&mut cat, r.get(1)) else { continue };
        let using: Option<String> = r.get(6);
        let with_check: Option<String> = r.get(7);
        let o = origin(format!("p{oid}"));
        let t = cat.tables.get_mut(&q).expect("table listed above");
        t.policies.push(Policy {
            name: r.get(2),
            command: policy_command(&r.get::<_, String>(3)),
            permissive: r.get(4),
            roles: r.get(5),
            using: using.as_deref().and_then(policy_expr),
            with_check: with_check.as_deref().and_then(policy_expr),
            origin: o,
        });
    }

    for r in client
        .query(
            "SELECT i.indexrelid, n.nspname::text, ic.relname::text, i.indrelid, i.indisunique,
                    ARRAY(SELECT coalesce(a.attname::text, pg_get_indexdef(i.indexrelid, k.i::int, true))
                          FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(num, i)
                          LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.num AND k.num > 0
                          WHERE k.i <= i.indnkeyatts ORDER BY k.i)
             FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
             WHERE i.indrelid = ANY ($1)",
            &[&oids],
        )
        .await
        .map_err(err("indexes"))?
    {
        let oid: u32 = r.get(0);
        let Some(table) = by_oid.get(&r.get::<_, u32>(3)).cloned() else {
            continue;
        };
        let name = QName::new(r.get::<_, String>(1), r.get::<_, String>(2));
        cat.indexes.insert(
            name.clone(),
            Index {
                name,
                table,
                columns: r.get(5),
                unique: r.get(4),
                origin: origin(relation_key(oid)),
            },
        );
    }

    let sql = format!(
        "SELECT p.oid, n.nspname::text, p.proname::text, p.provolatile = 'v', p.prosecdef,
                coalesce((SELECT bool_or(c LIKE 'search_path=%') FROM unnest(p.proconfig) c), false)
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE {USER_NS} AND p.prokind IN ('f', 'p') AND {}
         ORDER BY p.oid",
        not_extension_member("pg_proc", "p.oid")
    );
    for r in client.query(&sql, &[]).await.map_err(err("functions"))? {
        let oid: u32 = r.get(0);
        let name = QName::new(r.get::<_, String>(1), r.get::<_, String>(2));
        cat.functions.insert(
            name.clone(),
            Function {
                name,
                volatile: r.get(3),
                security_definer: r.get(4),
                sets_search_path: r.get(5),
                origin: origin(format!("f{oid}")),
            },
        );
    }

    let sql = format!(
        "SELECT t.oid, n.nspname::text, t.typname::text,
                ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder)
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE {USER_NS} AND t.typtype = 'e' AND {}",
        not_extension_member("pg_type", "t.oid")
    );
    for r in client.query(&sql, &[]).await.map_err(err("enum types"))? {
        let oid: u32 = r.get(0);
        let name = QName::new(r.get::<_, String>(1), r.get::<_, String>(2));
        cat.enums.insert(
            name.clone(),
            EnumType {
                name,
                values: r.get(3),
                origin: origin(format!("t{oid}")),
            },
        );
    }
    Ok(cat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_printed_policies_read_like_written_ones() {
        let e = policy_expr("(container_id = (current_setting('orbis.container_id'::text))::uuid)").unwrap();
        assert_eq!(e.to_string(), "(container_id = (current_setting('orbis.container_id'))::UUID)");
        let e = policy_expr("(note = 'it''s'::text)").unwrap();
        assert_eq!(e.to_string(), "(note = 'it''s')");
        assert!(policy_expr("(((").is_none());
    }
}
