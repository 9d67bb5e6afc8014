use sqlparser::ast::{ColumnOption, DataType, Statement as Ast, TableConstraint};

use super::helpers::{base_type, in_table_primary_key, typed_columns, TypeSource, TypedColumn};
use super::prefer_identity::{serial_base, SERIAL_REPLACEMENT};
use super::{ident_region, Finding, Rule, RuleMeta, StatementCtx};
use crate::catalog::{ident_name, Catalog, ConstraintKind};

crate::declare_rule! {
    /// ## What it does
    /// Flags 16- and 32-bit integer key columns: a primary key, identity or
    /// serial column, or a foreign key, typed `smallint`, `integer`,
    /// `serial` or `smallserial`. With `scope = "all"` every such integer
    /// column is flagged (squawk's `prefer-bigint-over-int` and
    /// `prefer-bigint-over-smallint`).
    ///
    /// ## Why is this bad?
    /// An `integer` key runs out at 2,147,483,647. Ids are never reused, so a
    /// busy table (events, messages) gets there sooner than expected, and
    /// widening a key later rewrites the table and every table that
    /// references it, under an ACCESS EXCLUSIVE lock, across the whole fleet.
    /// `bigint` costs 4 more bytes per row.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// CREATE TABLE events (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, kind text NOT NULL);
    /// -- good
    /// CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, kind text NOT NULL);
    /// ```
    ///
    /// ## How to fix
    /// Use `bigint` (or `uuid`) for keys and for the columns that reference
    /// them.
    ///
    /// ## Options
    /// `scope`: `"keys"` (default) flags key columns only; `"all"` flags every
    /// `smallint` / `integer` column.
    pub struct PreferBigint {
        id: "prefer-bigint",
        group: Correctness,
        severity: Warning,
        summary: "a smallint / integer / serial key column: use bigint",
        needs_workspace: false,
    }
}

/// The configured instance (the declared type holds only metadata).
#[derive(Debug, Clone, Default)]
pub struct PreferBigintRule {
    all_columns: bool,
}

fn small_integer(t: &DataType) -> Option<&'static str> {
    match base_type(t) {
        DataType::SmallInt(_) | DataType::Int2(_) => Some("smallint"),
        DataType::Int(_) | DataType::Int4(_) | DataType::Integer(_) => Some("integer"),
        t => serial_base(t).filter(|b| *b != "bigint"),
    }
}

/// Whether the column is a key: primary key, identity, serial or foreign key.
fn is_key(stmt: &Ast, c: &TypedColumn, catalog: &Catalog) -> bool {
    let column = ident_name(c.name);
    if serial_base(c.data_type).is_some()
        || c.has_option(|o| {
            matches!(
                o,
                ColumnOption::PrimaryKey(_)
                    | ColumnOption::ForeignKey(_)
                    | ColumnOption::Identity(_)
                    | ColumnOption::Generated { generation_expr: None, .. }
            )
        })
        || in_table_primary_key(stmt, &column)
    {
        return true;
    }
    if let Ast::CreateTable(ct) = stmt {
        let in_fk = ct.constraints.iter().any(|k| match k {
            TableConstraint::ForeignKey(fk) => fk.columns.iter().any(|id| ident_name(id) == column),
            _ => false,
        });
        if in_fk {
            return true;
        }
    }
    c.source == TypeSource::AlterType
        && catalog.table(&c.table).is_some_and(|t| {
            t.column(&column).is_some_and(|col| col.identity)
                || t.constraints.iter().any(|k| {
                    matches!(k.kind, ConstraintKind::PrimaryKey | ConstraintKind::ForeignKey { .. }) && k.columns.contains(&column)
                })
        })
}

/// Whether the column references (as a foreign key) a key column that is
/// itself smallint or integer.
fn references_small_key(stmt: &Ast, c: &TypedColumn, catalog: &Catalog) -> bool {
    let column = ident_name(c.name);
    let mut targets: Vec<(&sqlparser::ast::ObjectName, Option<String>)> = Vec::new();
    for o in c.options {
        if let ColumnOption::ForeignKey(fk) = &o.option {
            targets.push((&fk.foreign_table, fk.referred_columns.first().map(ident_name)));
        }
    }
    if let Ast::CreateTable(ct) = stmt {
        for k in &ct.constraints {
            if let TableConstraint::ForeignKey(fk) = k {
                if let Some(i) = fk.columns.iter().position(|id| ident_name(id) == column) {
                    targets.push((&fk.foreign_table, fk.referred_columns.get(i).map(ident_name)));
                }
            }
        }
    }
    targets.into_iter().any(|(table, referred)| {
        // A table referencing itself is not in the catalog yet.
        if let Ast::CreateTable(ct) = stmt {
            if catalog.resolve(&ct.name) == catalog.resolve(table) {
                let key = referred.or_else(|| {
                    ct.columns
                        .iter()
                        .find(|col| col.options.iter().any(|o| matches!(o.option, ColumnOption::PrimaryKey(_))))
                        .map(|col| ident_name(&col.name))
                });
                return ct
                    .columns
                    .iter()
                    .find(|col| key.as_deref() == Some(ident_name(&col.name).as_str()))
                    .is_some_and(|col| small_integer(&col.data_type).is_some());
            }
        }
        let Some(t) = catalog.lookup_table(table) else { return false };
        let key = referred.or_else(|| {
            t.constraints
                .iter()
                .find(|k| k.kind == ConstraintKind::PrimaryKey && k.columns.len() == 1)
                .map(|k| k.columns[0].clone())
        });
        key.and_then(|k| t.column(&k)).is_some_and(|col| small_type_name(&col.data_type))
    })
}

/// A catalog column type (lower-cased SQL) that is smallint or integer.
fn small_type_name(t: &str) -> bool {
    matches!(
        t,
        "smallint" | "int2" | "int" | "int4" | "integer" | "serial" | "serial4" | "smallserial" | "serial2"
    )
}

impl Rule for PreferBigintRule {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn configure(&mut self, options: &toml::Table) -> Result<(), String> {
        match options.get("scope").map(|v| v.as_str()) {
            None => Ok(()),
            Some(Some("keys")) => {
                self.all_columns = false;
                Ok(())
            }
            Some(Some("all")) => {
                self.all_columns = true;
                Ok(())
            }
            Some(_) => Err("`scope` must be \"keys\" or \"all\"".to_string()),
        }
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some(stmt) = cx.stmt.ast() else { return };
        for c in typed_columns(stmt, cx.catalog) {
            let Some(width) = small_integer(c.data_type) else { continue };
            let key = is_key(stmt, &c, cx.catalog);
            if !key && !self.all_columns {
                continue;
            }
            // A foreign key column follows the key it references: widening
            // it alone is no fix (the finding belongs on the target key).
            if references_small_key(stmt, &c, cx.catalog) {
                continue;
            }
            let help = if serial_base(c.data_type).is_some() {
                format!("use `{SERIAL_REPLACEMENT}`")
            } else if c.has_option(|o| matches!(o, ColumnOption::Identity(_) | ColumnOption::Generated { generation_expr: None, .. })) {
                "use `bigint` for the identity column (GENERATED ... AS IDENTITY stays as it is)".to_string()
            } else {
                "use `bigint` (and widen the foreign keys that reference it with it)".to_string()
            };
            let what = if key { "key column" } else { "column" };
            out.push(
                Finding::new(
                    ident_region(c.name).unwrap_or(cx.stmt.region),
                    format!(
                        "{what} `{}.{}` is {}: {width} ids run out, and widening a key later rewrites every table that references it",
                        c.table,
                        ident_name(c.name),
                        c.data_type.to_string().to_lowercase()
                    ),
                )
                .help(help)
                .at_statement(cx.index),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_plain, check_ws_with, ids, render_rule};

    #[test]
    fn fires_on_integer_keys() {
        let d = check_plain(
            "CREATE TABLE events (\n    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n    kind text NOT NULL,\n    attempts integer NOT NULL DEFAULT 0\n);\nCREATE TABLE event_tags (\n    event_id int4 REFERENCES events (id),\n    tag smallint,\n    PRIMARY KEY (event_id, tag)\n);\n",
        );
        // event_id references the integer events.id: the finding is on events.id.
        assert_eq!(ids(&d, "prefer-bigint"), 2, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "prefer-bigint"));
    }

    #[test]
    fn a_foreign_key_follows_its_target_key() {
        let d = check_plain(
            "CREATE TABLE users (id integer PRIMARY KEY);\nCREATE TABLE big (id bigint PRIMARY KEY);\n\
             CREATE TABLE posts (id bigint PRIMARY KEY, user_id int REFERENCES users, big_id int REFERENCES big (id),\n\
                 parent_id int, FOREIGN KEY (parent_id) REFERENCES users (id));\n\
             CREATE TABLE tree (id int PRIMARY KEY, up int REFERENCES tree (id));\n\
             ALTER TABLE posts ADD COLUMN editor_id int REFERENCES users (id);\n",
        );
        let flagged: Vec<String> = d
            .iter()
            .filter(|x| x.rule == "prefer-bigint")
            .map(|x| x.message.split('`').nth(1).unwrap().to_string())
            .collect();
        // users.id and tree.id are the keys to widen; big_id references a bigint.
        assert_eq!(flagged, ["public.users.id", "public.posts.big_id", "public.tree.id"], "{d:#?}");
    }

    #[test]
    fn quiet_on_bigint_keys_and_plain_counters() {
        let d = check_plain(
            "CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, attempts integer NOT NULL DEFAULT 0, ref uuid);",
        );
        assert_eq!(ids(&d, "prefer-bigint"), 0, "{d:#?}");
    }

    #[test]
    fn scope_all_flags_every_small_integer() {
        let d = check_ws_with(
            &[(
                "core/0001_events.sql",
                "CREATE TABLE events (id bigint PRIMARY KEY, attempts integer NOT NULL DEFAULT 0);\n",
            )],
            |root| {
                std::fs::create_dir_all(root.join("rules")).unwrap();
                std::fs::write(root.join("rules/correctness.toml"), "[rules.prefer-bigint]\nscope = \"all\"\n").unwrap();
            },
        );
        assert_eq!(ids(&d, "prefer-bigint"), 1, "{d:#?}");
    }
}
