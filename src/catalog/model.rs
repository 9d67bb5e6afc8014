//! Applying a statement only PostgreSQL's grammar read (strata's model of
//! it, [`crate::sql::Model`]) to the catalog.

use crate::sql::model::{ColumnDef, DomainChange, GrantTarget, Model, ObjectKind, TableOp};

use super::*;

pub(super) fn apply(cat: &mut Catalog, m: &Model, origin: Origin) {
    match m {
        Model::CreateDomain(d) => {
            let name = cat.resolve_parts(&d.name);
            cat.domains.insert(
                name.clone(),
                Domain {
                    name,
                    data_type: d.data_type.clone(),
                    not_null: d.not_null,
                    has_default: d.has_default,
                    checks: d.checks.clone(),
                    origin,
                },
            );
        }
        Model::AlterDomain { name, change } => {
            let q = cat.resolve_parts(name);
            if let Some(d) = cat.domains.get_mut(&q) {
                match change {
                    DomainChange::SetNotNull => d.not_null = true,
                    DomainChange::DropNotNull => d.not_null = false,
                    DomainChange::SetDefault => d.has_default = true,
                    DomainChange::DropDefault => d.has_default = false,
                    _ => {}
                }
            }
        }
        Model::CreateTrigger { name, table, function, .. } => {
            let t = cat.resolve_parts(table);
            let function = cat.resolve_parts(function);
            if let Some(t) = cat.tables.get_mut(&t) {
                t.triggers.retain(|x| &x.name != name);
                t.triggers.push(Trigger {
                    name: name.clone(),
                    function,
                    origin,
                });
            }
        }
        Model::CreateEventTrigger { name, event, function } => {
            let function = cat.resolve_parts(function);
            cat.event_triggers.insert(
                name.clone(),
                EventTrigger {
                    name: name.clone(),
                    event: event.clone(),
                    function,
                    origin,
                },
            );
        }
        Model::Rename { kind, object, table, to } => rename(cat, *kind, object, table.as_deref(), to),
        Model::CreateSequence { name } => {
            let name = cat.resolve_parts(name);
            cat.sequences.insert(name.clone(), Sequence { name, origin });
        }
        Model::AlterSequence { .. }
        | Model::GrantRole { .. }
        | Model::CreateRole { .. }
        | Model::NoSchemaEffect(_)
        | Model::Untracked(_) => {}
        Model::Drop { kind, names, .. } => {
            for n in names {
                drop(cat, *kind, n);
            }
        }
        Model::Grant(g) => {
            let GrantTarget::Objects {
                kind: ObjectKind::Table,
                names,
            } = &g.target
            else {
                return;
            };
            let privileges = if g.privileges.is_empty() {
                vec!["all".to_string()]
            } else {
                g.privileges.clone()
            };
            for n in names {
                let q = cat.resolve_parts(n);
                let Some(t) = cat.tables.get_mut(&q) else { continue };
                for role in &g.grantees {
                    for p in &privileges {
                        t.grants.retain(|(r, x)| !(r == role && (x == p || p == "all")));
                        if g.is_grant {
                            t.grants.push((role.clone(), p.clone()));
                        }
                    }
                }
            }
        }
        Model::DefaultPrivileges { schemas, for_roles, grant } => {
            let GrantTarget::Future { kind } = grant.target else { return };
            let objects = match kind {
                ObjectKind::Table => "tables",
                ObjectKind::Sequence => "sequences",
                ObjectKind::Function => "functions",
                ObjectKind::Type => "types",
                ObjectKind::Schema => "schemas",
                _ => "objects",
            };
            cat.default_privileges.push(DefaultPrivilege {
                schemas: schemas.clone(),
                for_roles: for_roles.clone(),
                objects: objects.to_string(),
                privileges: grant.privileges.clone(),
                grantees: grant.grantees.clone(),
                is_grant: grant.is_grant,
                origin,
            });
        }
        Model::Comment { kind, object, text } => {
            if *kind == ObjectKind::Table {
                let q = cat.resolve_parts(object);
                if let Some(t) = cat.tables.get_mut(&q) {
                    t.comment = text.clone();
                }
            }
        }
        Model::CreateStatistics { name, tables } => {
            let tables: Vec<QName> = tables.iter().map(|t| cat.resolve_parts(t)).collect();
            let mut name = cat.resolve_parts(name);
            if let (true, Some(t)) = (name.name.is_empty(), tables.first()) {
                name = QName::new(t.schema.clone(), format!("{}_stat", t.name));
            }
            cat.statistics.insert(name.clone(), Statistics { name, tables, origin });
        }
        Model::CreateFunction(f) => {
            let name = cat.resolve_parts(&f.name);
            cat.functions.insert(
                name.clone(),
                Function {
                    name,
                    volatile: f.volatile,
                    security_definer: f.security_definer,
                    sets_search_path: f.sets_search_path,
                    origin,
                },
            );
        }
        Model::AlterTable { table, ops } => {
            let q = cat.resolve_parts(table);
            for op in ops {
                alter_table(cat, &q, op, origin);
            }
        }
        Model::Do { .. } => {}
        Model::CreateTableLike {
            table,
            sources,
            temporary,
            partitioned,
            if_not_exists,
            rest,
        } => {
            let rest = match rest.as_deref() {
                Some(ast::Statement::CreateTable(ct)) => Some(ct),
                _ => None,
            };
            create_table_like(cat, table, sources, *temporary, *partitioned, *if_not_exists, rest, origin)
        }
        Model::CreateIndexOnly {
            name,
            table,
            columns,
            unique,
            if_not_exists,
            ..
        } => {
            let table = cat.resolve_parts(table);
            cat.add_index(name.clone(), table, columns.clone(), *unique, *if_not_exists, origin);
        }
    }
}

/// `CREATE TABLE t (LIKE source INCLUDING ...)`, as PostgreSQL copies: the
/// columns with their types and NOT NULL always; defaults, identity and
/// generation expressions with `INCLUDING DEFAULTS`, `IDENTITY`,
/// `GENERATED`; CHECK constraints with `INCLUDING CONSTRAINTS`; primary
/// keys, unique and exclusion constraints and indexes with `INCLUDING
/// INDEXES` (named after the new table, as PostgreSQL names them); never
/// foreign keys, policies, row level security, triggers or grants. A source
/// the history does not define adds nothing.
#[allow(clippy::too_many_arguments)]
fn create_table_like(
    cat: &mut Catalog,
    table: &[String],
    sources: &[(Vec<String>, u32)],
    temporary: bool,
    partitioned: bool,
    if_not_exists: bool,
    rest: Option<&ast::CreateTable>,
    origin: Origin,
) {
    let name = cat.resolve_parts(table);
    if if_not_exists && cat.tables.contains_key(&name) {
        return;
    }
    let mut new = Table::new(name.clone(), temporary, partitioned, origin);
    let mut indexes = Vec::new();
    for (source, options) in sources {
        let source = cat.resolve_parts(source);
        copy_like(cat, &mut new, &mut indexes, &source, *options, origin);
    }
    // The statement's own columns and constraints follow the copied ones.
    if let Some(ct) = rest {
        super::replay::add_definition(cat, &mut new, ct, origin);
    }
    for i in indexes {
        cat.indexes.insert(i.name.clone(), i);
    }
    cat.tables.insert(name, new);
}

/// What `LIKE source` with `options` (PostgreSQL's `CREATE_TABLE_LIKE_*`
/// bits) copies into `new`: its columns, constraints and (returned in
/// `indexes`) its indexes, named after the new table as PostgreSQL names
/// them.
pub(super) fn copy_like(cat: &Catalog, new: &mut Table, indexes: &mut Vec<Index>, source: &QName, options: u32, origin: Origin) {
    use crate::sql::model::like;
    let has = |bit: u32| options & bit != 0;
    let Some(from) = cat.tables.get(source) else { return };
    let table = new.name.clone();
    for c in &from.columns {
        new.columns.push(Column {
            name: c.name.clone(),
            data_type: c.data_type.clone(),
            not_null: c.not_null,
            default: c.default.clone().filter(|_| has(like::DEFAULTS)),
            identity: c.identity && has(like::IDENTITY),
            generated: c.generated.filter(|_| has(like::GENERATED)),
            origin,
        });
    }
    for k in &from.constraints {
        let copied = match &k.kind {
            ConstraintKind::NotNull => true,
            ConstraintKind::Check { .. } => has(like::CONSTRAINTS),
            ConstraintKind::PrimaryKey | ConstraintKind::Unique | ConstraintKind::Exclusion => has(like::INDEXES),
            ConstraintKind::ForeignKey { .. } => false,
        };
        if !copied {
            continue;
        }
        let name = match &k.kind {
            ConstraintKind::PrimaryKey => Some(index_name(&table, &[], "pkey")),
            ConstraintKind::Unique => Some(index_name(&table, &k.columns, "key")),
            ConstraintKind::Exclusion => Some(index_name(&table, &k.columns, "excl")),
            _ => k.name.clone(),
        };
        new.constraints.push(Constraint {
            name,
            kind: k.kind.clone(),
            columns: k.columns.clone(),
            // PostgreSQL validates nothing it copies: a copied CHECK holds.
            not_valid: false,
            origin,
        });
    }
    if has(like::INDEXES) {
        // Indexes made by CREATE INDEX (constraints' indexes come with the
        // constraints): PostgreSQL names their copies `_idx`.
        for i in cat.indexes.values().filter(|i| &i.table == source) {
            indexes.push(Index {
                name: QName::new(table.schema.clone(), index_name(&table, &i.columns, "idx")),
                table: table.clone(),
                columns: i.columns.clone(),
                unique: i.unique,
                origin,
            });
        }
    }
}

fn rename(cat: &mut Catalog, kind: ObjectKind, object: &[String], table: Option<&[String]>, to: &str) {
    match kind {
        ObjectKind::Table | ObjectKind::View | ObjectKind::MaterializedView => {
            let old = cat.resolve_parts(object);
            let new = QName::new(old.schema.clone(), to);
            if let Some(mut t) = cat.tables.remove(&old) {
                for idx in cat.indexes.values_mut().filter(|i| i.table == old) {
                    idx.table = new.clone();
                }
                t.name = new.clone();
                cat.tables.insert(new, t);
            } else if let Some(mut v) = cat.views.remove(&old) {
                v.name = new.clone();
                cat.views.insert(new, v);
            }
        }
        ObjectKind::Sequence => {
            let old = cat.resolve_parts(object);
            if let Some(mut s) = cat.sequences.remove(&old) {
                s.name = QName::new(old.schema.clone(), to);
                cat.sequences.insert(s.name.clone(), s);
            }
        }
        ObjectKind::Index => {
            let old = cat.resolve_parts(object);
            if let Some(mut i) = cat.indexes.remove(&old) {
                i.name = QName::new(old.schema.clone(), to);
                cat.indexes.insert(i.name.clone(), i);
            }
        }
        ObjectKind::Trigger => {
            let Some(t) = table.map(|t| cat.resolve_parts(t)) else { return };
            let old = object.last().cloned().unwrap_or_default();
            if let Some(t) = cat.tables.get_mut(&t) {
                for tr in t.triggers.iter_mut().filter(|tr| tr.name == old) {
                    tr.name = to.to_string();
                }
            }
        }
        ObjectKind::Column => {
            let Some(t) = table.map(|t| cat.resolve_parts(t)) else { return };
            let old = object.last().cloned().unwrap_or_default();
            if let Some(t) = cat.tables.get_mut(&t) {
                if let Some(c) = t.columns.iter_mut().find(|c| c.name == old) {
                    c.name = to.to_string();
                }
                for k in &mut t.constraints {
                    for c in k.columns.iter_mut().filter(|c| **c == old) {
                        *c = to.to_string();
                    }
                }
            }
        }
        ObjectKind::Domain | ObjectKind::Type => {
            let old = cat.resolve_parts(object);
            if let Some(mut d) = cat.domains.remove(&old) {
                d.name = QName::new(old.schema.clone(), to);
                cat.domains.insert(d.name.clone(), d);
            } else if let Some(mut e) = cat.enums.remove(&old) {
                e.name = QName::new(old.schema.clone(), to);
                cat.enums.insert(e.name.clone(), e);
            }
        }
        ObjectKind::Function => {
            let old = cat.resolve_parts(object);
            if let Some(mut f) = cat.functions.remove(&old) {
                f.name = QName::new(old.schema.clone(), to);
                cat.functions.insert(f.name.clone(), f);
            }
        }
        ObjectKind::Schema => {
            let old = object.last().cloned().unwrap_or_default();
            if let Some(o) = cat.schemas.remove(&old) {
                cat.schemas.insert(to.to_string(), o);
            }
        }
        _ => {}
    }
}

fn drop(cat: &mut Catalog, kind: ObjectKind, name: &[String]) {
    let q = cat.resolve_parts(name);
    match kind {
        ObjectKind::Table => {
            cat.tables.remove(&q);
            cat.indexes.retain(|_, i| i.table != q);
        }
        ObjectKind::View | ObjectKind::MaterializedView => {
            cat.views.remove(&q);
        }
        ObjectKind::Index => cat.drop_index_named(q, name.len() == 1),
        ObjectKind::Sequence => {
            cat.sequences.remove(&q);
        }
        ObjectKind::Domain => {
            cat.domains.remove(&q);
        }
        ObjectKind::Statistics => {
            cat.statistics.remove(&q);
        }
        ObjectKind::EventTrigger => {
            cat.event_triggers.remove(&q.name);
        }
        ObjectKind::Trigger => {
            // DROP TRIGGER t ON table: PostgreSQL's name list is [schema.]table.trigger.
            let (Some(trigger), table) = (name.last(), &name[..name.len().saturating_sub(1)]) else {
                return;
            };
            let t = cat.resolve_parts(table);
            if let Some(t) = cat.tables.get_mut(&t) {
                t.triggers.retain(|tr| &tr.name != trigger);
            }
        }
        ObjectKind::Function => {
            cat.functions.remove(&q);
        }
        _ => {}
    }
}

fn alter_table(cat: &mut Catalog, q: &QName, op: &TableOp, origin: Origin) {
    let Some(t) = cat.tables.get_mut(q) else { return };
    let column = |t: &mut Table, name: &str| -> Option<usize> { t.columns.iter().position(|c| c.name == name) };
    match op {
        TableOp::AddColumn(ColumnDef {
            name,
            data_type,
            not_null,
            has_default,
            identity,
            generated,
        }) => {
            if column(t, name).is_none() {
                t.columns.push(Column {
                    name: name.clone(),
                    data_type: data_type.clone(),
                    not_null: *not_null,
                    default: has_default.then(|| "(default)".to_string()),
                    identity: *identity,
                    generated: *generated,
                    origin,
                });
            }
        }
        TableOp::DropColumn(c) => {
            t.columns.retain(|x| &x.name != c);
            t.constraints.retain(|k| !k.columns.contains(c));
        }
        TableOp::SetNotNull(c) | TableOp::DropNotNull(c) => t.set_not_null(c, matches!(op, TableOp::SetNotNull(_))),
        TableOp::AddNotNull { name, column, not_valid } => t.add_not_null(name.clone(), column, *not_valid, origin),
        TableOp::ValidateConstraint(name) => t.validate_constraint(name),
        TableOp::DropConstraint(name) => t.drop_constraint(name),
        TableOp::SetDefault(c) | TableOp::DropDefault(c) => {
            if let Some(i) = column(t, c) {
                t.columns[i].default = matches!(op, TableOp::SetDefault(_)).then(|| "(default)".to_string());
            }
        }
        TableOp::SetType { column: c, data_type } => {
            if let Some(i) = column(t, c) {
                t.columns[i].data_type = data_type.clone();
            }
        }
        TableOp::Identity { column: c, .. } => {
            if let Some(i) = column(t, c) {
                t.columns[i].identity = true;
                t.columns[i].not_null = true;
            }
        }
        TableOp::DropIdentity(c) => {
            if let Some(i) = column(t, c) {
                t.columns[i].identity = false;
            }
        }
        TableOp::EnableRls => t.rls_enabled = true,
        TableOp::DisableRls => t.rls_enabled = false,
        TableOp::ForceRls => t.rls_forced = true,
        TableOp::NoForceRls => t.rls_forced = false,
        TableOp::DetachPartition { .. } | TableOp::AttachPartition { .. } | TableOp::SetExpression(_) | TableOp::Other(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse_text;

    fn replay(sql: &str) -> Catalog {
        let f = parse_text("t.sql", sql);
        let mut cat = Catalog::new();
        for (i, s) in f.statements.iter().enumerate() {
            assert!(s.understood(), "not understood: {s:?}");
            crate::check::replay(&mut cat, s, 0, 0, i);
        }
        cat
    }

    #[test]
    fn domains_sequences_triggers_statistics_and_grants() {
        let cat = replay(
            "CREATE DOMAIN app.email AS text NOT NULL CHECK (VALUE LIKE '%@%');
             CREATE TABLE app.users (id int, email app.email);
             CREATE SEQUENCE app.ticket_seq; ALTER SEQUENCE app.ticket_seq RENAME TO ticket_no; ALTER SEQUENCE app.ticket_no RESTART WITH 100;
             CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql COST 10 AS $$ BEGIN RETURN NEW; END $$;
             CREATE TRIGGER t_touch BEFORE UPDATE ON app.users FOR EACH ROW EXECUTE FUNCTION app.touch('a', 'b');
             ALTER TRIGGER t_touch ON app.users RENAME TO users_touch;
             CREATE EVENT TRIGGER ddl_log ON ddl_command_end EXECUTE FUNCTION app.touch();
             CREATE STATISTICS app.users_stats (dependencies) ON id, email FROM app.users;
             GRANT SELECT, INSERT ON app.users TO web;
             ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO reader;
             COMMENT ON FUNCTION app.touch() IS 'touches';
             ALTER TABLE app.users RENAME TO members;
             CREATE ROLE web NOLOGIN; CREATE USER app_user WITH PASSWORD 'x' CREATEDB CONNECTION LIMIT 5; GRANT web TO app_user;
             GRANT EXECUTE ON ALL ROUTINES IN SCHEMA app TO web; DROP STATISTICS IF EXISTS app.old_stats;",
        );
        let d = &cat.domains[&QName::new("app", "email")];
        assert!(d.not_null && !d.has_default);
        assert_eq!(d.checks.len(), 1);
        assert!(cat.sequences.contains_key(&QName::new("app", "ticket_no")));
        let members = cat.table(&QName::new("app", "members")).unwrap();
        assert_eq!(members.triggers[0].name, "users_touch");
        assert_eq!(
            members.grants,
            vec![("web".to_string(), "select".to_string()), ("web".to_string(), "insert".to_string())]
        );
        assert_eq!(cat.event_triggers["ddl_log"].event, "ddl_command_end");
        assert_eq!(
            cat.statistics[&QName::new("app", "users_stats")].tables,
            vec![QName::new("app", "users")]
        );
        assert_eq!(cat.default_privileges[0].grantees, vec!["reader"]);
        assert!(cat.functions.contains_key(&QName::new("app", "touch")));
        assert_eq!(cat.domain_of_type("app.email").map(|d| d.not_null), Some(true));
    }

    /// PostgreSQL 18's NOT NULL constraints: a NOT VALID one does not make
    /// the column NOT NULL until VALIDATE (or SET NOT NULL) proves it;
    /// dropping a valid one makes the column nullable again.
    #[test]
    fn not_null_constraints_and_their_validation() {
        let mut sql = String::from("CREATE TABLE t (a int, b int, c int);\nALTER TABLE t ADD CONSTRAINT t_a_nn NOT NULL a NOT VALID;\n");
        let table = |cat: &Catalog| cat.table(&QName::new("public", "t")).unwrap().clone();
        let cat = replay(&sql);
        let t = table(&cat);
        assert!(!t.column("a").unwrap().not_null);
        assert_eq!(t.invalid_not_null("a").and_then(|k| k.name.as_deref()), Some("t_a_nn"));
        sql.push_str("ALTER TABLE t VALIDATE CONSTRAINT t_a_nn;\nALTER TABLE t ADD NOT NULL b;\nALTER TABLE t ADD NOT NULL c NOT VALID;\n");
        let t = table(&replay(&sql));
        assert!(t.column("a").unwrap().not_null && t.invalid_not_null("a").is_none());
        assert!(t.column("b").unwrap().not_null);
        assert!(t
            .constraints
            .iter()
            .any(|k| k.name.as_deref() == Some("t_b_not_null") && k.kind == ConstraintKind::NotNull));
        assert_eq!(t.invalid_not_null("c").and_then(|k| k.name.as_deref()), Some("t_c_not_null"));
        let mut dropped = sql.clone();
        sql.push_str("ALTER TABLE t DROP CONSTRAINT t_a_nn;\nALTER TABLE t ALTER COLUMN b DROP NOT NULL;\nALTER TABLE t ALTER COLUMN c SET NOT NULL;\n");
        let t = table(&replay(&sql));
        assert!(!t.column("a").unwrap().not_null && !t.column("b").unwrap().not_null);
        assert!(t.column("c").unwrap().not_null && t.invalid_not_null("c").is_none());
        assert!(!t.constraints.iter().any(|k| k.columns == ["b"]));
        // DROP NOT NULL removes a NOT VALID one too.
        dropped.push_str("ALTER TABLE t ALTER COLUMN c DROP NOT NULL;\n");
        assert!(table(&replay(&dropped)).invalid_not_null("c").is_none());
        // A NOT ENFORCED check proves nothing about the rows.
        let t = table(&replay(
            "CREATE TABLE t (a int);\nALTER TABLE t ADD CONSTRAINT t_a_check CHECK (a IS NOT NULL) NOT ENFORCED;\n",
        ));
        assert!(t.constraints[0].not_valid);
    }

    #[test]
    fn identity_options_and_drops() {
        let cat = replay(
            "CREATE TABLE t (id int NOT NULL, n int);
             ALTER TABLE t ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (START WITH 10 RESTART 20);
             DROP TRIGGER IF EXISTS x ON t; DROP EVENT TRIGGER IF EXISTS nothing;",
        );
        assert!(cat.table(&QName::new("public", "t")).unwrap().column("id").unwrap().identity);
    }
}
