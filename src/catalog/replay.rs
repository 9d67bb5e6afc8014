//! Applying one parsed statement to the catalog.

use sqlparser::ast::{
    self, AlterColumnOperation, AlterIndexOperation, AlterPolicyOperation, AlterTableOperation, AlterTypeOperation, ColumnDef,
    ColumnOption, CommentObject, CreatePolicyCommand, CreatePolicyType, CreateTableOptions, FunctionSecurity, ObjectType, Owner,
    RenameTableNameKind, SchemaName, SqlOption, TableConstraint, UserDefinedTypeRepresentation,
};

use super::*;

pub(super) fn apply(cat: &mut Catalog, stmt: &ast::Statement, origin: Origin) {
    use ast::Statement as S;
    match stmt {
        S::CreateTable(ct) => create_table(cat, ct, origin),
        S::AlterTable(at) => {
            let name = cat.resolve(&at.name);
            for op in &at.operations {
                alter_table(cat, &name, op, origin);
            }
        }
        S::CreateIndex(ci) => {
            let table = cat.resolve(&ci.table_name);
            // PostgreSQL takes no schema in an index's name: it lives in
            // its table's.
            let name = ci.name.as_ref().map(|n| cat.resolve(n).name);
            let columns = ci.columns.iter().map(|c| expr_column(&c.column.expr)).collect();
            cat.add_index(name, table, columns, ci.unique, ci.if_not_exists, origin);
        }
        S::CreatePolicy(p) => {
            let table = cat.resolve(&p.table_name);
            let policy = Policy {
                name: ident_name(&p.name),
                command: match p.command {
                    None | Some(CreatePolicyCommand::All) => PolicyCommand::All,
                    Some(CreatePolicyCommand::Select) => PolicyCommand::Select,
                    Some(CreatePolicyCommand::Insert) => PolicyCommand::Insert,
                    Some(CreatePolicyCommand::Update) => PolicyCommand::Update,
                    Some(CreatePolicyCommand::Delete) => PolicyCommand::Delete,
                },
                permissive: !matches!(p.policy_type, Some(CreatePolicyType::Restrictive)),
                roles: owners(p.to.as_deref()),
                using: p.using.clone(),
                with_check: p.with_check.clone(),
                origin,
            };
            if let Some(t) = cat.tables.get_mut(&table) {
                t.policies.retain(|x| x.name != policy.name);
                t.policies.push(policy);
            }
        }
        S::AlterPolicy(ap) => {
            let table = cat.resolve(&ap.table_name);
            let name = ident_name(&ap.name);
            if let Some(p) = cat
                .tables
                .get_mut(&table)
                .and_then(|t| t.policies.iter_mut().find(|p| p.name == name))
            {
                match &ap.operation {
                    AlterPolicyOperation::Rename { new_name } => p.name = ident_name(new_name),
                    AlterPolicyOperation::Apply { to, using, with_check } => {
                        if let Some(to) = to {
                            p.roles = owners(Some(to));
                        }
                        if using.is_some() {
                            p.using = using.clone();
                        }
                        if with_check.is_some() {
                            p.with_check = with_check.clone();
                        }
                    }
                }
            }
        }
        S::DropPolicy(dp) => {
            let table = cat.resolve(&dp.table_name);
            let name = ident_name(&dp.name);
            if let Some(t) = cat.tables.get_mut(&table) {
                t.policies.retain(|p| p.name != name);
            }
        }
        S::Drop { object_type, names, .. } => {
            for n in names {
                let q = cat.resolve(n);
                match object_type {
                    ObjectType::Table => drop_table(cat, &q),
                    ObjectType::View | ObjectType::MaterializedView => {
                        cat.views.remove(&q);
                    }
                    ObjectType::Index => cat.drop_index(n),
                    ObjectType::Type => {
                        cat.enums.remove(&q);
                    }
                    ObjectType::Schema => {
                        let schema = q.name.clone();
                        cat.schemas.remove(&schema);
                        cat.tables.retain(|k, _| k.schema != schema);
                        cat.indexes.retain(|k, _| k.schema != schema);
                        cat.views.retain(|k, _| k.schema != schema);
                        cat.functions.retain(|k, _| k.schema != schema);
                        cat.enums.retain(|k, _| k.schema != schema);
                    }
                    _ => {}
                }
            }
        }
        S::CreateView(cv) => {
            let name = cat.resolve(&cv.name);
            let security_invoker = match &cv.options {
                CreateTableOptions::With(opts) | CreateTableOptions::Options(opts) | CreateTableOptions::Plain(opts) => {
                    opts.iter().any(|o| match o {
                        SqlOption::KeyValue { key, value } => {
                            key.value.eq_ignore_ascii_case("security_invoker") && {
                                let v = value.to_string().to_ascii_lowercase();
                                matches!(v.trim_matches('\''), "true" | "on" | "1" | "yes")
                            }
                        }
                        _ => false,
                    })
                }
                _ => false,
            };
            cat.views.insert(
                name.clone(),
                View {
                    name,
                    materialized: cv.materialized,
                    security_invoker,
                    origin,
                },
            );
        }
        S::CreateFunction(cf) => {
            let name = cat.resolve(&cf.name);
            let sets_search_path = cf.set_params.iter().any(|p| p.name.to_string().eq_ignore_ascii_case("search_path"));
            cat.functions.insert(
                name.clone(),
                Function {
                    name,
                    volatile: matches!(cf.behavior, None | Some(ast::FunctionBehavior::Volatile)),
                    security_definer: matches!(cf.security, Some(FunctionSecurity::Definer)),
                    sets_search_path,
                    origin,
                },
            );
        }
        S::DropFunction(df) => {
            for f in &df.func_desc {
                let q = cat.resolve(&f.name);
                cat.functions.remove(&q);
            }
        }
        S::CreateType {
            name,
            representation: Some(UserDefinedTypeRepresentation::Enum { labels }),
        } => {
            let name = cat.resolve(name);
            let values = labels.iter().map(|l| l.value.clone()).collect();
            cat.enums.insert(name.clone(), EnumType { name, values, origin });
        }
        S::AlterType(at) => {
            let name = cat.resolve(&at.name);
            match &at.operation {
                AlterTypeOperation::AddValue(add) => {
                    if let Some(e) = cat.enums.get_mut(&name) {
                        if !e.values.contains(&add.value.value) {
                            e.values.push(add.value.value.clone());
                        }
                    }
                }
                AlterTypeOperation::Rename(r) => {
                    if let Some(mut e) = cat.enums.remove(&name) {
                        e.name.name = ident_name(&r.new_name);
                        cat.enums.insert(e.name.clone(), e);
                    }
                }
                _ => {}
            }
        }
        S::CreateExtension(ce) => {
            let name = ident_name(&ce.name);
            cat.extensions.entry(name.clone()).or_insert(Extension {
                name,
                schema: ce.schema.as_ref().map(ident_name),
                origin,
            });
        }
        S::DropExtension(de) => {
            for n in &de.names {
                cat.extensions.remove(&ident_name(n));
            }
        }
        S::CreateSchema { schema_name, .. } => {
            let name = match schema_name {
                SchemaName::Simple(n) | SchemaName::NamedAuthorization(n, _) => cat.resolve(n).name,
                SchemaName::UnnamedAuthorization(id) => ident_name(id),
            };
            cat.schemas.entry(name).or_insert(origin);
        }
        S::Comment {
            object_type: CommentObject::Table,
            object_name,
            comment,
            ..
        } => {
            let q = cat.resolve(object_name);
            if let Some(t) = cat.tables.get_mut(&q) {
                t.comment = comment.clone();
            }
        }
        S::AlterIndex {
            name,
            operation: AlterIndexOperation::RenameIndex { index_name },
        } => {
            let old = cat.resolve(name);
            if let Some(mut idx) = cat.indexes.remove(&old) {
                idx.name = QName::new(old.schema.clone(), cat.resolve(index_name).name);
                cat.indexes.insert(idx.name.clone(), idx);
            }
        }
        S::Grant(g) => {
            let Some(ast::GrantObjects::Tables(tables)) = &g.objects else {
                return;
            };
            let privileges = match &g.privileges {
                ast::Privileges::All { .. } => Vec::new(),
                ast::Privileges::Actions(actions) => actions
                    .iter()
                    .filter_map(|a| a.to_string().split_whitespace().next().map(str::to_lowercase))
                    .collect(),
            };
            let grantees = g
                .grantees
                .iter()
                .map(|e| match (&e.grantee_type, &e.name) {
                    (ast::GranteesType::Public, _) | (_, None) => "public".to_string(),
                    (_, Some(n)) => n.to_string().trim_matches('"').to_lowercase(),
                })
                .collect();
            let grant = crate::sql::model::Grant {
                is_grant: true,
                privileges,
                target: crate::sql::model::GrantTarget::Objects {
                    kind: crate::sql::model::ObjectKind::Table,
                    names: tables
                        .iter()
                        .map(|t| {
                            t.0.iter()
                                .map(|p| p.as_ident().map(ident_name).unwrap_or_else(|| p.to_string()))
                                .collect()
                        })
                        .collect(),
                },
                grantees,
            };
            cat.apply_model(&crate::sql::Model::Grant(grant), origin);
        }
        S::CreateSequence { name, if_not_exists, .. } => {
            let q = cat.resolve(name);
            if !(*if_not_exists && cat.sequences.contains_key(&q)) {
                cat.sequences.insert(q.clone(), Sequence { name: q, origin });
            }
        }
        S::CreateDomain(d) => {
            let q = cat.resolve(&d.name);
            cat.domains.insert(
                q.clone(),
                Domain {
                    name: q,
                    data_type: d.data_type.to_string().to_lowercase(),
                    // sqlparser reads only domains without NOT NULL; those
                    // with it come from PostgreSQL's grammar (catalog::model).
                    not_null: false,
                    has_default: d.default.is_some(),
                    checks: d.constraints.iter().map(|c| c.to_string()).collect(),
                    origin,
                },
            );
        }
        S::CreateTrigger(ct) => {
            let table = cat.resolve(&ct.table_name);
            let function = ct.exec_body.as_ref().map(|b| cat.resolve(&b.func_desc.name)).unwrap_or_default();
            let name = cat.resolve(&ct.name).name;
            if let Some(t) = cat.tables.get_mut(&table) {
                t.triggers.retain(|x| x.name != name);
                t.triggers.push(Trigger { name, function, origin });
            }
        }
        S::Set(ast::Set::SingleAssignment { variable, values, .. }) if variable.to_string().eq_ignore_ascii_case("search_path") => {
            let first = values.first().map(|v| v.to_string().trim_matches(['\'', '"']).to_lowercase());
            cat.default_schema = first.filter(|s| !s.is_empty() && s != "\"$user\"" && s != "$user");
        }
        _ => {}
    }
}

fn owners(to: Option<&[Owner]>) -> Vec<String> {
    match to {
        None => vec!["public".to_string()],
        Some(list) => list
            .iter()
            .map(|o| match o {
                Owner::Ident(id) => ident_name(id),
                Owner::CurrentRole => "current_role".to_string(),
                Owner::CurrentUser => "current_user".to_string(),
                Owner::SessionUser => "session_user".to_string(),
            })
            .collect(),
    }
}

/// The column an index or constraint element names (`lower(email)` → `lower(email)`).
fn expr_column(e: &Expr) -> String {
    match e {
        Expr::Identifier(id) => ident_name(id),
        Expr::CompoundIdentifier(ids) => ids.last().map(ident_name).unwrap_or_default(),
        other => other.to_string(),
    }
}

fn index_columns(cols: &[ast::IndexColumn]) -> Vec<String> {
    cols.iter().map(|c| expr_column(&c.column.expr)).collect()
}

fn create_table(cat: &mut Catalog, ct: &ast::CreateTable, origin: Origin) {
    let name = cat.resolve(&ct.name);
    if ct.if_not_exists && cat.tables.contains_key(&name) {
        return;
    }
    let mut table = Table::new(name.clone(), ct.temporary, ct.partition_by.is_some(), origin);
    // `(LIKE source [INCLUDING DEFAULTS])`, as far as sqlparser reads it
    // (PostgreSQL's other INCLUDING options: catalog::model).
    if let Some(like) = &ct.like {
        let (ast::CreateTableLikeKind::Parenthesized(l) | ast::CreateTableLikeKind::Plain(l)) = like;
        let options = match l.defaults {
            Some(ast::CreateTableLikeDefaults::Including) => crate::sql::model::like::DEFAULTS,
            _ => 0,
        };
        let source = cat.resolve(&l.name);
        let mut indexes = Vec::new();
        super::model::copy_like(cat, &mut table, &mut indexes, &source, options, origin);
    }
    add_definition(cat, &mut table, ct, origin);
    cat.tables.insert(name, table);
}

/// The columns and table constraints a `CREATE TABLE` writes out, added to
/// `table` (after what its `LIKE` copied).
pub(super) fn add_definition(cat: &Catalog, table: &mut Table, ct: &ast::CreateTable, origin: Origin) {
    for col in &ct.columns {
        add_column(cat, table, col, origin);
    }
    for c in &ct.constraints {
        if let Some(c) = table_constraint(cat, c, false, origin) {
            apply_constraint(table, c);
        }
    }
}

fn add_column(cat: &Catalog, table: &mut Table, col: &ColumnDef, origin: Origin) {
    let name = ident_name(&col.name);
    let mut column = Column {
        name: name.clone(),
        data_type: col.data_type.to_string().to_lowercase(),
        not_null: false,
        default: None,
        identity: false,
        generated: None,
        origin,
    };
    let mut constraints = Vec::new();
    for opt in &col.options {
        let cname = opt.name.as_ref().map(ident_name);
        match &opt.option {
            ColumnOption::NotNull => column.not_null = true,
            ColumnOption::Null => column.not_null = false,
            ColumnOption::Default(e) => column.default = Some(e.to_string()),
            ColumnOption::PrimaryKey(_) => {
                column.not_null = true;
                constraints.push(Constraint {
                    name: cname,
                    kind: ConstraintKind::PrimaryKey,
                    columns: vec![name.clone()],
                    not_valid: false,
                    origin,
                });
            }
            ColumnOption::Unique(_) => constraints.push(Constraint {
                name: cname,
                kind: ConstraintKind::Unique,
                columns: vec![name.clone()],
                not_valid: false,
                origin,
            }),
            ColumnOption::ForeignKey(fk) => {
                let mut target = cat.resolve(&fk.foreign_table);
                if fk.foreign_table.0.len() == 1 && target.name == table.name.name && target.schema != table.name.schema {
                    target.schema = table.name.schema.clone();
                }
                constraints.push(Constraint {
                    name: cname,
                    kind: ConstraintKind::ForeignKey {
                        table: target,
                        columns: fk.referred_columns.iter().map(ident_name).collect(),
                    },
                    columns: vec![name.clone()],
                    not_valid: false,
                    origin,
                })
            }
            ColumnOption::Check(ch) => constraints.push(Constraint {
                name: cname,
                kind: ConstraintKind::Check { expr: ch.expr.to_string() },
                columns: vec![name.clone()],
                not_valid: false,
                origin,
            }),
            ColumnOption::Generated { generation_expr: None, .. } => {
                column.identity = true;
                column.not_null = true;
            }
            ColumnOption::Generated { generation_expr_mode, .. } => {
                column.generated = Some(if *generation_expr_mode == Some(ast::GeneratedExpressionMode::Virtual) {
                    crate::sql::model::Generated::Virtual
                } else {
                    crate::sql::model::Generated::Stored
                });
            }
            ColumnOption::Identity(_) => column.identity = true,
            _ => {}
        }
    }
    if let Some(i) = table.columns.iter().position(|c| c.name == name) {
        table.columns[i] = column;
    } else {
        table.columns.push(column);
    }
    for c in constraints {
        apply_constraint(table, c);
    }
}

/// Adds a constraint as PostgreSQL does: unnamed, it gets PostgreSQL's name
/// (so a later `DROP CONSTRAINT orders_customer_id_fkey` finds it); named
/// like one the table has, PostgreSQL refuses it (a guarded `IF NOT EXISTS`
/// DO block would not have run it), and the table keeps the one it has.
fn apply_constraint(table: &mut Table, mut c: Constraint) {
    let name = c.name.take().unwrap_or_else(|| table.default_constraint_name(&c));
    if table.constraint(&name).is_some() {
        return;
    }
    c.name = Some(name);
    if c.kind == ConstraintKind::PrimaryKey {
        for col in &c.columns {
            if let Some(column) = table.column_mut(col) {
                column.not_null = true;
            }
        }
    }
    table.constraints.push(c);
}

fn table_constraint(cat: &Catalog, c: &TableConstraint, not_valid: bool, origin: Origin) -> Option<Constraint> {
    let (name, kind, columns) = match c {
        TableConstraint::PrimaryKey(pk) => (pk.name.as_ref(), ConstraintKind::PrimaryKey, index_columns(&pk.columns)),
        TableConstraint::Unique(u) => (u.name.as_ref(), ConstraintKind::Unique, index_columns(&u.columns)),
        TableConstraint::ForeignKey(fk) => (
            fk.name.as_ref(),
            ConstraintKind::ForeignKey {
                table: cat.resolve(&fk.foreign_table),
                columns: fk.referred_columns.iter().map(ident_name).collect(),
            },
            fk.columns.iter().map(ident_name).collect(),
        ),
        TableConstraint::Check(ch) => (ch.name.as_ref(), ConstraintKind::Check { expr: ch.expr.to_string() }, Vec::new()),
        TableConstraint::PrimaryKeyUsingIndex(u) => (u.name.as_ref(), ConstraintKind::PrimaryKey, Vec::new()),
        TableConstraint::UniqueUsingIndex(u) => (u.name.as_ref(), ConstraintKind::Unique, Vec::new()),
        _ => return None,
    };
    // A NOT ENFORCED constraint (PostgreSQL 18) is never checked against the
    // rows: PostgreSQL records it as not validated.
    Some(Constraint {
        name: name.map(ident_name),
        kind,
        columns,
        not_valid: not_valid || super::not_enforced(c),
        origin,
    })
}

fn drop_table(cat: &mut Catalog, q: &QName) {
    cat.tables.remove(q);
    cat.indexes.retain(|_, i| &i.table != q);
}

fn alter_table(cat: &mut Catalog, name: &QName, op: &AlterTableOperation, origin: Origin) {
    // Constraints need the catalog for name resolution; compute before
    // borrowing the table mutably.
    let new_constraint = match op {
        AlterTableOperation::AddConstraint { constraint, not_valid } => table_constraint(cat, constraint, *not_valid, origin),
        _ => None,
    };
    if let AlterTableOperation::RenameTable { table_name } = op {
        let (RenameTableNameKind::As(n) | RenameTableNameKind::To(n)) = table_name;
        if let Some(mut t) = cat.tables.remove(name) {
            let mut new = cat.resolve(n);
            if n.0.len() == 1 {
                new.schema = name.schema.clone();
            }
            for idx in cat.indexes.values_mut().filter(|i| &i.table == name) {
                idx.table = new.clone();
            }
            t.name = new.clone();
            cat.tables.insert(new, t);
        }
        return;
    }
    let snapshot = cat.clone_for_columns();
    let Some(table) = cat.tables.get_mut(name) else { return };
    match op {
        AlterTableOperation::AddColumn {
            column_def, if_not_exists, ..
        } => {
            if *if_not_exists && table.column(&ident_name(&column_def.name)).is_some() {
                return;
            }
            add_column(&snapshot, table, column_def, origin);
        }
        AlterTableOperation::DropColumn { column_names, .. } => {
            for c in column_names {
                let c = ident_name(c);
                table.columns.retain(|x| x.name != c);
                table.constraints.retain(|k| !k.columns.contains(&c));
            }
        }
        AlterTableOperation::RenameColumn {
            old_column_name,
            new_column_name,
        } => {
            let (old, new) = (ident_name(old_column_name), ident_name(new_column_name));
            if let Some(c) = table.column_mut(&old) {
                c.name = new.clone();
            }
            for k in &mut table.constraints {
                for c in &mut k.columns {
                    if *c == old {
                        *c = new.clone();
                    }
                }
            }
        }
        AlterTableOperation::AlterColumn { column_name, op } => {
            let Some(c) = table.column_mut(&ident_name(column_name)) else {
                return;
            };
            match op {
                AlterColumnOperation::SetNotNull | AlterColumnOperation::DropNotNull => {
                    let column = c.name.clone();
                    table.set_not_null(&column, matches!(op, AlterColumnOperation::SetNotNull));
                }
                AlterColumnOperation::SetDefault { value } => c.default = Some(value.to_string()),
                AlterColumnOperation::DropDefault => c.default = None,
                AlterColumnOperation::SetDataType { data_type, .. } => c.data_type = data_type.to_string().to_lowercase(),
                AlterColumnOperation::AddGenerated { .. } => c.identity = true,
            }
        }
        AlterTableOperation::AddConstraint { .. } => {
            if let Some(c) = new_constraint {
                apply_constraint(table, c);
            }
        }
        AlterTableOperation::DropConstraint { name: cname, .. } => table.drop_constraint(&ident_name(cname)),
        AlterTableOperation::ValidateConstraint { name: cname } => table.validate_constraint(&ident_name(cname)),
        AlterTableOperation::RenameConstraint { old_name, new_name } => {
            let (old, new) = (ident_name(old_name), ident_name(new_name));
            for k in table.constraints.iter_mut().filter(|k| k.name.as_deref() == Some(old.as_str())) {
                k.name = Some(new.clone());
            }
        }
        AlterTableOperation::EnableRowLevelSecurity => table.rls_enabled = true,
        AlterTableOperation::DisableRowLevelSecurity => table.rls_enabled = false,
        AlterTableOperation::ForceRowLevelSecurity => table.rls_forced = true,
        AlterTableOperation::NoForceRowLevelSecurity => table.rls_forced = false,
        _ => {}
    }
}

impl Catalog {
    /// What `add_column` needs to resolve foreign-key targets while a table
    /// is borrowed mutably: only the search path matters.
    fn clone_for_columns(&self) -> Catalog {
        Catalog {
            default_schema: self.default_schema.clone(),
            ..Catalog::default()
        }
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
            let stmt = s.ast().unwrap_or_else(|| panic!("unparsed: {:?}", s.unparsed()));
            cat.apply(
                stmt,
                Origin {
                    file: 0,
                    layer: 0,
                    stmt: i as u32,
                },
            );
        }
        cat
    }

    #[test]
    fn tables_columns_constraints_and_rls() {
        let cat = replay(
            "CREATE TABLE contacts (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), phone text NOT NULL UNIQUE);
             CREATE TABLE app.messages (id bigint GENERATED ALWAYS AS IDENTITY, contact_id uuid REFERENCES contacts(id), body text,
               CONSTRAINT messages_pk PRIMARY KEY (id));
             ALTER TABLE app.messages ADD CONSTRAINT body_len CHECK (length(body) < 5000) NOT VALID;
             ALTER TABLE app.messages ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
             CREATE POLICY m_app ON app.messages FOR SELECT TO orbis_app USING (true);
             CREATE INDEX messages_contact_idx ON app.messages (contact_id);",
        );
        let c = cat.table(&QName::new("public", "contacts")).unwrap();
        assert!(c.column("id").unwrap().not_null);
        assert_eq!(c.column("phone").unwrap().data_type, "text");
        let m = cat.table(&QName::new("app", "messages")).unwrap();
        assert!(m.rls_enabled && m.rls_forced);
        assert!(m.column("id").unwrap().identity);
        assert_eq!(m.foreign_keys_on("contact_id").count(), 1);
        assert!(m.constraints.iter().any(|k| k.name.as_deref() == Some("body_len") && k.not_valid));
        assert_eq!(m.policies[0].roles, vec!["orbis_app"]);
        assert_eq!(m.policies[0].command, PolicyCommand::Select);
        assert_eq!(cat.indexes[&QName::new("app", "messages_contact_idx")].columns, vec!["contact_id"]);
    }

    #[test]
    fn renames_and_drops() {
        let cat = replay(
            "CREATE TABLE a (x int, y int); CREATE INDEX a_x ON a (x);
             ALTER TABLE a RENAME COLUMN x TO z; ALTER TABLE a RENAME TO b; ALTER TABLE b DROP COLUMN y;
             CREATE TABLE gone (id int); DROP TABLE gone; CREATE TYPE mood AS ENUM ('sad'); ALTER TYPE mood ADD VALUE 'happy';",
        );
        assert!(cat.table(&QName::new("public", "a")).is_none());
        let b = cat.table(&QName::new("public", "b")).unwrap();
        assert_eq!(b.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), vec!["z"]);
        assert_eq!(cat.indexes[&QName::new("public", "a_x")].table, QName::new("public", "b"));
        assert!(cat.table(&QName::new("public", "gone")).is_none());
        assert_eq!(cat.enums[&QName::new("public", "mood")].values, vec!["sad", "happy"]);
    }

    #[test]
    fn search_path_and_quoted_names() {
        let cat = replay("SET search_path = storage, public; CREATE TABLE \"Objects\" (\"Id\" int);");
        assert!(cat.table(&QName::new("storage", "Objects")).unwrap().column("Id").is_some());
    }

    #[test]
    fn unnamed_constraints_get_postgres_names() {
        let long = "a_table_name_long_enough_to_need_shortening_by_postgres_x";
        let cat = replay(&format!(
            "CREATE TABLE p (id int PRIMARY KEY);\n\
             CREATE TABLE {long} (id int PRIMARY KEY, p_id int REFERENCES p, code text UNIQUE, n int CHECK (n > 0));\n"
        ));
        let t = cat.table(&QName::new("public", long)).unwrap();
        let mut names: Vec<&str> = t.constraints.iter().filter_map(|k| k.name.as_deref()).collect();
        names.sort_unstable();
        // What PostgreSQL 15 names them (pg_constraint after this CREATE TABLE).
        assert_eq!(
            names,
            [
                "a_table_name_long_enough_to_need_shortening_by_postgr_p_id_fkey",
                "a_table_name_long_enough_to_need_shortening_by_postgre_code_key",
                "a_table_name_long_enough_to_need_shortening_by_postgres_n_check",
                "a_table_name_long_enough_to_need_shortening_by_postgres_x_pkey",
            ]
        );
        // A second unnamed CHECK on the column is numbered, as PostgreSQL does.
        let cat = replay("CREATE TABLE t (n int CHECK (n > 0) CHECK (n < 9));");
        let t = cat.table(&QName::new("public", "t")).unwrap();
        let names: Vec<&str> = t.constraints.iter().filter_map(|k| k.name.as_deref()).collect();
        assert_eq!(names, ["t_n_check", "t_n_check1"]);
    }
}
