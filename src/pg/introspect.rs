//! Live catalog introspection into a normalized, sorted text model.
//!
//! Reads pg_catalog (not information_schema, which hides policies, RLS flags,
//! NOT VALID and index definitions) in one repeatable-read snapshot with
//! `search_path = pg_catalog`, so every name the server prints is
//! schema-qualified the same way in every database. Objects that belong to an
//! extension, the strata schema and the system schemas are left out; grants
//! to an object's owner are left out (the owner differs between the migrating
//! user and a scratch replay). The same function reads the live tenant and
//! the scratch replay, so the two models compare line by line.

use std::collections::{BTreeMap, BTreeSet};

use tokio_postgres::{Client, Row};

use super::conn::sql_error;
use super::{Result, Target};

/// The normalized schema of one database: objects in a fixed order, each with
/// its sorted detail lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchemaModel {
    /// (section order, object header) → detail lines.
    objects: BTreeMap<(u8, String), BTreeSet<String>>,
}

const EXTENSION: u8 = 0;
const SCHEMA: u8 = 1;
const TYPE: u8 = 2;
const TABLE: u8 = 3;
const VIEW: u8 = 4;
const SEQUENCE: u8 = 5;
const FUNCTION: u8 = 6;

impl SchemaModel {
    fn object(&mut self, section: u8, header: String) -> &mut BTreeSet<String> {
        self.objects.entry((section, header)).or_default()
    }

    fn detail(&mut self, section: u8, header: String, line: String) {
        self.object(section, header).insert(line);
    }

    /// The text form: one object per line, its details indented below.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for ((_, header), details) in &self.objects {
            s.push_str(header);
            s.push('\n');
            for d in details {
                s.push_str("    ");
                s.push_str(d);
                s.push('\n');
            }
        }
        s
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

/// Collapses runs of whitespace (view and function bodies span lines).
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

const NS_FILTER: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema', 'strata') AND n.nspname !~ '^pg_(toast|temp_)'";

fn not_extension_member(catalog: &str, oid: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.classid = '{catalog}'::regclass AND dep.objid = {oid} AND dep.deptype = 'e')"
    )
}

/// Grants of an ACL column except the owner's own, as `grantee:PRIV,...`.
fn acl_expr(acl: &str, owner: &str) -> String {
    format!(
        "coalesce((SELECT string_agg(g.grantee || ':' || g.privs, ' ' ORDER BY g.grantee) FROM (
             SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END AS grantee,
                    string_agg(a.privilege_type, ',' ORDER BY a.privilege_type) AS privs
               FROM aclexplode({acl}) a WHERE a.grantee <> {owner} GROUP BY 1) g), '')"
    )
}

/// The options of the sequence `s` (a `pg_sequence` row), as one line.
const SEQUENCE_OPTIONS: &str = "format('as %s start %s increment %s min %s max %s cache %s%s', format_type(s.seqtypid, NULL), \
     s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, CASE WHEN s.seqcycle THEN ' cycle' ELSE '' END)";

fn s(row: &Row, i: usize) -> String {
    row.get::<_, Option<String>>(i).unwrap_or_default()
}

/// Reads the catalog of the database `client` is connected to.
pub async fn introspect(client: &Client, target: &Target) -> Result<SchemaModel> {
    let err = |what: &str| sql_error(target, format!("cannot introspect {what}"));
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL search_path = pg_catalog")
        .await
        .map_err(err("the catalog"))?;
    let result = read_all(client, target).await;
    let _ = client.batch_execute("COMMIT").await;
    result
}

async fn read_all(client: &Client, target: &Target) -> Result<SchemaModel> {
    let err = |what: &str| sql_error(target, format!("cannot introspect {what}"));
    let mut m = SchemaModel::default();

    for r in client
        .query(
            "SELECT e.extname::text, n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace",
            &[],
        )
        .await
        .map_err(err("extensions"))?
    {
        m.object(EXTENSION, format!("extension {} (schema {})", s(&r, 0), s(&r, 1)));
    }

    let sql = format!(
        "SELECT n.nspname::text, {} FROM pg_namespace n WHERE {NS_FILTER} AND {}",
        acl_expr("n.nspacl", "n.nspowner"),
        not_extension_member("pg_namespace", "n.oid")
    );
    for r in client.query(&sql, &[]).await.map_err(err("schemas"))? {
        let o = m.object(SCHEMA, format!("schema {}", s(&r, 0)));
        let grants = s(&r, 1);
        if !grants.is_empty() {
            o.insert(format!("grants {grants}"));
        }
    }

    let sql = format!(
        "SELECT n.nspname || '.' || t.typname, string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
           FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_enum e ON e.enumtypid = t.oid
          WHERE {NS_FILTER} AND {} GROUP BY 1",
        not_extension_member("pg_type", "t.oid")
    );
    for r in client.query(&sql, &[]).await.map_err(err("enums"))? {
        m.object(TYPE, format!("enum {} ({})", s(&r, 0), s(&r, 1)));
    }

    let sql = format!(
        "SELECT n.nspname || '.' || t.typname, format_type(t.typbasetype, t.typtypmod), t.typnotnull, t.typdefault,
                (SELECT string_agg(c.conname || ' ' || pg_get_constraintdef(c.oid, true), '; ' ORDER BY c.conname)
                   FROM pg_constraint c WHERE c.contypid = t.oid)
           FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
          WHERE t.typtype = 'd' AND {NS_FILTER} AND {}",
        not_extension_member("pg_type", "t.oid")
    );
    for r in client.query(&sql, &[]).await.map_err(err("domains"))? {
        let mut line = format!("domain {} as {}", s(&r, 0), s(&r, 1));
        if r.get::<_, bool>(2) {
            line.push_str(" not null");
        }
        if let Some(d) = r.get::<_, Option<String>>(3) {
            line.push_str(&format!(" default {d}"));
        }
        if let Some(c) = r.get::<_, Option<String>>(4) {
            line.push_str(&format!(" check {c}"));
        }
        m.object(TYPE, line);
    }

    let sql = format!(
        "SELECT n.nspname || '.' || t.typname,
                (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
                   FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped)
           FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_class c ON c.oid = t.typrelid
          WHERE t.typtype = 'c' AND c.relkind = 'c' AND {NS_FILTER} AND {}",
        not_extension_member("pg_type", "t.oid")
    );
    for r in client.query(&sql, &[]).await.map_err(err("composite types"))? {
        m.object(TYPE, format!("type {} as ({})", s(&r, 0), s(&r, 1)));
    }

    // Relations: tables, views, sequences. `header` maps qualified names to
    // their object key, for the detail queries below. Relations internal to
    // another object (identity sequences) are left out; a partitioned table's
    // internal dependency on its own key columns is not such a one.
    let sql = format!(
        "SELECT n.nspname || '.' || c.relname, c.relkind::text, c.relrowsecurity, c.relforcerowsecurity,
                array_to_string(c.reloptions, ','), {}, c.relpersistence::text,
                CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid, true) END,
                CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END,
                CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
                (SELECT {SEQUENCE_OPTIONS} FROM pg_sequence s WHERE s.seqrelid = c.oid)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND {NS_FILTER} AND {}
            AND NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.classid = 'pg_class'::regclass AND dep.objid = c.oid
                            AND dep.deptype = 'i' AND dep.refobjid <> c.oid)",
        acl_expr("c.relacl", "c.relowner"),
        not_extension_member("pg_class", "c.oid")
    );
    let mut header: BTreeMap<String, (u8, String)> = BTreeMap::new();
    for r in client.query(&sql, &[]).await.map_err(err("relations"))? {
        let name = s(&r, 0);
        let kind = s(&r, 1);
        let (section, label) = match kind.as_str() {
            "r" => (TABLE, "table"),
            "p" => (TABLE, "partitioned table"),
            "f" => (TABLE, "foreign table"),
            "v" => (VIEW, "view"),
            "m" => (VIEW, "materialized view"),
            _ => (SEQUENCE, "sequence"),
        };
        let unlogged = if s(&r, 6) == "u" { "unlogged " } else { "" };
        let key = format!("{unlogged}{label} {name}");
        let o = m.object(section, key.clone());
        if section == TABLE {
            let rls = match (r.get::<_, bool>(2), r.get::<_, bool>(3)) {
                (true, true) => "enabled, forced",
                (true, false) => "enabled, not forced",
                (false, true) => "disabled (forced)",
                (false, false) => "disabled",
            };
            o.insert(format!("row level security {rls}"));
        }
        let options = s(&r, 4);
        if !options.is_empty() {
            o.insert(format!("options {options}"));
        }
        let grants = s(&r, 5);
        if !grants.is_empty() {
            o.insert(format!("grants {grants}"));
        }
        if let Some(def) = r.get::<_, Option<String>>(7) {
            o.insert(format!("definition {}", one_line(&def)));
        }
        if let Some(bound) = r.get::<_, Option<String>>(8) {
            o.insert(format!("partition {bound}"));
        }
        if let Some(key) = r.get::<_, Option<String>>(9) {
            o.insert(format!("partition by {key}"));
        }
        if let Some(seq) = r.get::<_, Option<String>>(10) {
            o.insert(format!("sequence {seq}"));
        }
        header.insert(name, (section, key));
    }
    let add = |m: &mut SchemaModel, rel: &str, line: String| {
        if let Some((section, key)) = header.get(rel) {
            m.detail(*section, key.clone(), line);
        }
    };

    let sql = format!(
        "SELECT n.nspname || '.' || c.relname, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, a.attgenerated::text,
                CASE WHEN a.attcollation <> ty.typcollation THEN co.collname::text END,
                (SELECT {SEQUENCE_OPTIONS} FROM pg_depend dep JOIN pg_sequence s ON s.seqrelid = dep.objid
                  WHERE a.attidentity <> '' AND dep.classid = 'pg_class'::regclass AND dep.refclassid = 'pg_class'::regclass
                    AND dep.refobjid = a.attrelid AND dep.refobjsubid = a.attnum AND dep.deptype = 'i')
           FROM pg_attribute a
           JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_type ty ON ty.oid = a.atttypid
           LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
           LEFT JOIN pg_collation co ON co.oid = a.attcollation
          WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {NS_FILTER}"
    );
    for r in client.query(&sql, &[]).await.map_err(err("columns"))? {
        let mut line = format!("column {} {}", s(&r, 1), s(&r, 2));
        if let Some(c) = r.get::<_, Option<String>>(7) {
            line.push_str(&format!(" collate {c}"));
        }
        if r.get::<_, bool>(3) {
            line.push_str(" not null");
        }
        match s(&r, 5).as_str() {
            "a" => line.push_str(" generated always as identity"),
            "d" => line.push_str(" generated by default as identity"),
            _ => {}
        }
        if let Some(seq) = r.get::<_, Option<String>>(8) {
            line.push_str(&format!(" ({seq})"));
        }
        if let Some(expr) = r.get::<_, Option<String>>(4) {
            // attgenerated: 's' stored, 'v' virtual (PostgreSQL 18), '' a default.
            match s(&r, 6).as_str() {
                "s" => line.push_str(&format!(" generated always as ({expr}) stored")),
                "v" => line.push_str(&format!(" generated always as ({expr}) virtual")),
                _ => line.push_str(&format!(" default {expr}")),
            }
        }
        add(&mut m, &s(&r, 0), line);
    }

    let sql = format!(
        "SELECT n.nspname || '.' || c.relname, co.conname::text, pg_get_constraintdef(co.oid, true)
           FROM pg_constraint co JOIN pg_class c ON c.oid = co.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE {NS_FILTER}"
    );
    for r in client.query(&sql, &[]).await.map_err(err("constraints"))? {
        add(&mut m, &s(&r, 0), format!("constraint {} {}", s(&r, 1), s(&r, 2)));
    }

    let sql = format!(
        "SELECT n.nspname || '.' || c.relname, i.relname::text, pg_get_indexdef(x.indexrelid), x.indisvalid
           FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE {NS_FILTER}"
    );
    for r in client.query(&sql, &[]).await.map_err(err("indexes"))? {
        let invalid = if r.get::<_, bool>(3) { "" } else { " (INVALID)" };
        add(&mut m, &s(&r, 0), format!("index {} {}{invalid}", s(&r, 1), s(&r, 2)));
    }

    let sql = format!(
        "SELECT n.nspname || '.' || c.relname, p.polname::text, p.polpermissive, p.polcmd::text,
                (SELECT string_agg(x.role, ', ' ORDER BY x.role) FROM (
                    SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(r)::text END AS role FROM unnest(p.polroles) r) x),
                pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
           FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE {NS_FILTER}"
    );
    for r in client.query(&sql, &[]).await.map_err(err("policies"))? {
        let cmd = match s(&r, 3).as_str() {
            "r" => "SELECT",
            "a" => "INSERT",
            "w" => "UPDATE",
            "d" => "DELETE",
            _ => "ALL",
        };
        let kind = if r.get::<_, bool>(2) { "permissive" } else { "restrictive" };
        let mut line = format!("policy {} {kind} for {cmd} to {}", s(&r, 1), s(&r, 4));
        if let Some(q) = r.get::<_, Option<String>>(5) {
            line.push_str(&format!(" using ({})", one_line(&q)));
        }
        if let Some(c) = r.get::<_, Option<String>>(6) {
            line.push_str(&format!(" with check ({})", one_line(&c)));
        }
        add(&mut m, &s(&r, 0), line);
    }

    let sql = format!(
        "SELECT n.nspname || '.' || c.relname, t.tgname::text, pg_get_triggerdef(t.oid, true), t.tgenabled::text
           FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE NOT t.tgisinternal AND {NS_FILTER}"
    );
    for r in client.query(&sql, &[]).await.map_err(err("triggers"))? {
        let disabled = if s(&r, 3) == "D" { " (DISABLED)" } else { "" };
        add(&mut m, &s(&r, 0), format!("trigger {} {}{disabled}", s(&r, 1), s(&r, 2)));
    }

    let sql = format!(
        "SELECT n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
                pg_get_functiondef(p.oid), {}
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE p.prokind IN ('f', 'p', 'w') AND {NS_FILTER} AND {}",
        acl_expr("p.proacl", "p.proowner"),
        not_extension_member("pg_proc", "p.oid")
    );
    for r in client.query(&sql, &[]).await.map_err(err("functions"))? {
        let o = m.object(FUNCTION, format!("function {}", s(&r, 0)));
        o.insert(format!("definition {}", one_line(&s(&r, 1))));
        let grants = s(&r, 2);
        if !grants.is_empty() {
            o.insert(format!("grants {grants}"));
        }
    }
    Ok(m)
}

/// Leaves tables out of a model, with the sequences their columns own: the
/// history tables of other migration tools, which no replay creates. A
/// schema that holds nothing but such tables (a tool's own schema) goes
/// too. `relations` are quoted names as `to_regclass` reads them; missing
/// ones are ignored.
pub async fn leave_out(model: &mut SchemaModel, client: &Client, target: &Target, relations: &[String]) -> Result<()> {
    if relations.is_empty() {
        return Ok(());
    }
    let rows = client
        .query(
            "WITH r AS (SELECT to_regclass(x) AS oid FROM unnest($1::text[]) x),
                  gone AS (SELECT oid FROM r WHERE oid IS NOT NULL
                           UNION SELECT d.objid FROM pg_depend d
                            WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
                              AND d.deptype IN ('a', 'i') AND d.refobjid IN (SELECT oid FROM r WHERE oid IS NOT NULL))
             SELECT 'relation', n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.oid IN (SELECT oid FROM gone)
             UNION ALL
             SELECT 'schema', n.nspname FROM pg_namespace n
              WHERE n.nspname <> 'public' AND n.oid IN (SELECT relnamespace FROM pg_class WHERE oid IN (SELECT oid FROM gone))
                AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
                                   AND c.oid NOT IN (SELECT oid FROM gone))
                AND NOT EXISTS (SELECT 1 FROM pg_proc p WHERE p.pronamespace = n.oid)
                AND NOT EXISTS (SELECT 1 FROM pg_type t WHERE t.typnamespace = n.oid AND t.typrelid = 0 AND t.typelem = 0)",
            &[&relations],
        )
        .await
        .map_err(sql_error(target, "cannot look up the adopted history tables"))?;
    let mut relations_gone = Vec::new();
    let mut schemas_gone = Vec::new();
    for r in &rows {
        match s(r, 0).as_str() {
            "schema" => schemas_gone.push(format!("schema {}", s(r, 1))),
            _ => relations_gone.push(format!(" {}", s(r, 1))),
        }
    }
    model.objects.retain(|(section, key), _| match *section {
        TABLE | SEQUENCE => !relations_gone.iter().any(|n| key.ends_with(n.as_str())),
        SCHEMA => !schemas_gone.contains(key),
        _ => true,
    });
    Ok(())
}

/// A unified diff from `expected` to `actual` (empty when equal).
pub fn diff(expected: &str, actual: &str, expected_label: &str, actual_label: &str) -> String {
    if expected == actual {
        return String::new();
    }
    similar::TextDiff::from_lines(expected, actual)
        .unified_diff()
        .context_radius(3)
        .header(expected_label, actual_label)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_is_sorted_and_diffable() {
        let mut m = SchemaModel::default();
        m.detail(TABLE, "table public.b".into(), "column z text".into());
        m.detail(TABLE, "table public.b".into(), "column a int".into());
        m.object(SCHEMA, "schema public".into());
        assert_eq!(m.render(), "schema public\ntable public.b\n    column a int\n    column z text\n");
        let mut other = m.clone();
        other.detail(TABLE, "table public.b".into(), "column m text".into());
        let d = diff(&m.render(), &other.render(), "expected", "live");
        assert!(d.contains("+    column m text"), "{d}");
        assert!(diff("a\n", "a\n", "x", "y").is_empty());
    }
}
