//! The schema model and its replay.
//!
//! Every migration statement is applied, in apply order, to a [`Catalog`] so
//! that rules see the state *before* each statement: which tables exist,
//! their columns, constraints, indexes, RLS flags and policies, and which
//! layer and file created each object. Live introspection (pg_catalog) fills
//! the same model.

use std::collections::HashMap;

/// The catalog's maps: keyed by folded names, hashed with FxHash (SipHash's
/// protection against crafted keys buys nothing here and cost 2% of a check).
pub type Map<K, V> = HashMap<K, V, rustc_hash::FxBuildHasher>;

use serde::{Deserialize, Serialize};
use sqlparser::ast::{self, Expr, Ident, ObjectName, ObjectNamePart};

mod model;
mod replay;

/// Where an object was created: the file (index in the check's file table),
/// its layer (index in the layer table) and the statement index in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin {
    pub file: u32,
    pub layer: u16,
    pub stmt: u32,
}

/// A schema-qualified name, normalized as PostgreSQL does: unquoted
/// identifiers fold to lower case.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QName {
    pub schema: String,
    pub name: String,
}

impl QName {
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        QName {
            schema: schema.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for QName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// Whether a table constraint is `NOT ENFORCED` (PostgreSQL 18: a CHECK or
/// foreign key that no row, old or new, is checked against).
pub fn not_enforced(c: &ast::TableConstraint) -> bool {
    match c {
        ast::TableConstraint::Check(ch) => ch.enforced == Some(false),
        ast::TableConstraint::ForeignKey(fk) => fk.characteristics.as_ref().is_some_and(|k| k.enforced == Some(false)),
        _ => false,
    }
}

/// Folds an identifier as PostgreSQL does.
pub fn ident_name(id: &Ident) -> String {
    if id.quote_style.is_some() {
        id.value.clone()
    } else if id.value.is_ascii() {
        // The common case, and the same result as `to_lowercase` (which
        // walks the Unicode tables), in a fraction of the time.
        id.value.to_ascii_lowercase()
    } else {
        id.value.to_lowercase()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// The type as written, lower-cased (`text`, `timestamp with time zone`, `varchar(20)`).
    pub data_type: String,
    pub not_null: bool,
    pub default: Option<String>,
    pub identity: bool,
    /// A generated column (`GENERATED ALWAYS AS (expr)`): stored or virtual.
    #[serde(default)]
    pub generated: Option<crate::sql::model::Generated>,
    pub origin: Origin,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ConstraintKind {
    PrimaryKey,
    Unique,
    ForeignKey {
        table: QName,
        columns: Vec<String>,
    },
    Check {
        expr: String,
    },
    Exclusion,
    /// A named NOT NULL constraint (`ADD CONSTRAINT name NOT NULL column`,
    /// PostgreSQL 18): the one column is in [`Constraint::columns`]. A valid
    /// one is also [`Column::not_null`].
    NotNull,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Constraint {
    pub name: Option<String>,
    pub kind: ConstraintKind,
    /// The constrained columns of this table.
    pub columns: Vec<String>,
    /// Added `NOT VALID` and not validated since, or `NOT ENFORCED`: it does
    /// not prove anything about the rows already there.
    pub not_valid: bool,
    pub origin: Origin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyCommand {
    All,
    Select,
    Insert,
    Update,
    Delete,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    pub command: PolicyCommand,
    pub permissive: bool,
    /// Lower-cased role names; `public` when the policy has no TO clause.
    pub roles: Vec<String>,
    pub using: Option<Expr>,
    pub with_check: Option<Expr>,
    pub origin: Origin,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Table {
    pub name: QName,
    pub columns: Vec<Column>,
    pub constraints: Vec<Constraint>,
    pub rls_enabled: bool,
    pub rls_forced: bool,
    pub policies: Vec<Policy>,
    pub comment: Option<String>,
    pub temporary: bool,
    #[serde(default)]
    pub triggers: Vec<Trigger>,
    /// Privileges granted on the table: (role, privilege), `all` for ALL.
    #[serde(default)]
    pub grants: Vec<(String, String)>,
    /// A partitioned table (`PARTITION BY`): it holds no rows itself, and
    /// PostgreSQL cannot build an index on it CONCURRENTLY.
    #[serde(default)]
    pub partitioned: bool,
    pub origin: Origin,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Trigger {
    pub name: String,
    pub function: QName,
    pub origin: Origin,
}

/// A domain: a type with constraints that every column of it inherits.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Domain {
    pub name: QName,
    pub data_type: String,
    pub not_null: bool,
    pub has_default: bool,
    pub checks: Vec<String>,
    pub origin: Origin,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sequence {
    pub name: QName,
    pub origin: Origin,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EventTrigger {
    pub name: String,
    pub event: String,
    pub function: QName,
    pub origin: Origin,
}

/// Extended statistics (`CREATE STATISTICS`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Statistics {
    pub name: QName,
    pub tables: Vec<QName>,
    pub origin: Origin,
}

/// `ALTER DEFAULT PRIVILEGES`: privileges objects created later get.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DefaultPrivilege {
    /// Empty: every schema.
    pub schemas: Vec<String>,
    /// The roles whose future objects this applies to; empty: the current role.
    pub for_roles: Vec<String>,
    /// `tables`, `sequences`, `functions`, `types` or `schemas`.
    pub objects: String,
    pub privileges: Vec<String>,
    pub grantees: Vec<String>,
    pub is_grant: bool,
    pub origin: Origin,
}

impl Table {
    /// A table as CREATE TABLE makes it: no columns yet, no row level
    /// security, policies, triggers or grants.
    pub fn new(name: QName, temporary: bool, partitioned: bool, origin: Origin) -> Table {
        Table {
            name,
            columns: Vec::new(),
            constraints: Vec::new(),
            rls_enabled: false,
            rls_forced: false,
            policies: Vec::new(),
            comment: None,
            temporary,
            triggers: Vec::new(),
            grants: Vec::new(),
            partitioned,
            origin,
        }
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
    /// The constraint called `name`.
    pub fn constraint(&self, name: &str) -> Option<&Constraint> {
        self.constraints.iter().find(|k| k.name.as_deref() == Some(name))
    }
    /// The name PostgreSQL gives `c` when it is made without one
    /// (`ChooseConstraintName`): `<table>_pkey`, `<table>_<columns>_key`,
    /// `_fkey`, `_excl`, `<table>_<column>_check` (`<table>_check` for a
    /// table CHECK, whose columns the catalog does not keep),
    /// `<table>_<column>_not_null`, as [`index_name`] writes them, with a
    /// number added while the table has the name.
    pub(crate) fn default_constraint_name(&self, c: &Constraint) -> String {
        let first = &c.columns[..c.columns.len().min(1)];
        let (columns, label): (&[String], &str) = match &c.kind {
            ConstraintKind::PrimaryKey => (&[], "pkey"),
            ConstraintKind::Unique => (&c.columns, "key"),
            ConstraintKind::ForeignKey { .. } => (&c.columns, "fkey"),
            ConstraintKind::Exclusion => (&c.columns, "excl"),
            ConstraintKind::Check { .. } => (first, "check"),
            ConstraintKind::NotNull => (first, "not_null"),
        };
        let mut name = index_name(&self.name, columns, label);
        for pass in 1..=100 {
            if self.constraint(&name).is_none() {
                break;
            }
            name = index_name(&self.name, columns, &format!("{label}{pass}"));
        }
        name
    }
    fn column_mut(&mut self, name: &str) -> Option<&mut Column> {
        self.columns.iter_mut().find(|c| c.name == name)
    }
    /// `ADD [CONSTRAINT name] NOT NULL column [NOT VALID]`. A NOT VALID one
    /// holds for new rows only: the column counts as NOT NULL once it is
    /// validated. Unnamed, it gets PostgreSQL's name, `<table>_<column>_not_null`.
    fn add_not_null(&mut self, name: Option<String>, column: &str, not_valid: bool, origin: Origin) {
        let name = name.unwrap_or_else(|| index_name(&self.name, &[column.to_string()], "not_null"));
        let Some(c) = self.column_mut(column) else { return };
        c.not_null |= !not_valid;
        self.constraints.push(Constraint {
            name: Some(name),
            kind: ConstraintKind::NotNull,
            columns: vec![column.to_string()],
            not_valid,
            origin,
        });
    }

    /// `VALIDATE CONSTRAINT name`: a validated NOT NULL constraint makes its
    /// column NOT NULL.
    fn validate_constraint(&mut self, name: &str) {
        let mut proven = Vec::new();
        for k in self.constraints.iter_mut().filter(|k| k.name.as_deref() == Some(name)) {
            k.not_valid = false;
            if k.kind == ConstraintKind::NotNull {
                proven.extend(k.columns.iter().cloned());
            }
        }
        for c in proven {
            if let Some(c) = self.column_mut(&c) {
                c.not_null = true;
            }
        }
    }

    /// `DROP CONSTRAINT name`: dropping a valid NOT NULL constraint makes
    /// its column nullable again.
    fn drop_constraint(&mut self, name: &str) {
        let mut freed = Vec::new();
        self.constraints.retain(|k| {
            let dropped = k.name.as_deref() == Some(name);
            if dropped && k.kind == ConstraintKind::NotNull && !k.not_valid {
                freed.extend(k.columns.iter().cloned());
            }
            !dropped
        });
        for c in freed {
            if let Some(c) = self.column_mut(&c) {
                c.not_null = false;
            }
        }
    }

    /// `ALTER COLUMN ... SET NOT NULL` / `DROP NOT NULL`. SET NOT NULL also
    /// validates a NOT VALID NOT NULL constraint of the column; DROP NOT NULL
    /// removes the column's NOT NULL constraint, valid or not (as
    /// PostgreSQL 18.4 does).
    fn set_not_null(&mut self, column: &str, not_null: bool) {
        let Some(c) = self.column_mut(column) else { return };
        c.not_null = not_null;
        let of_column = |k: &Constraint| k.kind == ConstraintKind::NotNull && k.columns.iter().any(|x| x == column);
        if not_null {
            for k in self.constraints.iter_mut().filter(|k| of_column(k)) {
                k.not_valid = false;
            }
        } else {
            self.constraints.retain(|k| !of_column(k));
        }
    }

    /// The NOT VALID NOT NULL constraint of a column (PostgreSQL 18), if any.
    pub fn invalid_not_null(&self, column: &str) -> Option<&Constraint> {
        self.constraints
            .iter()
            .find(|k| k.kind == ConstraintKind::NotNull && k.not_valid && k.columns.iter().any(|x| x == column))
    }

    pub fn primary_key(&self) -> Option<&Constraint> {
        self.constraints.iter().find(|c| c.kind == ConstraintKind::PrimaryKey)
    }
    /// Foreign keys whose first column is `column`.
    pub fn foreign_keys_on<'a>(&'a self, column: &'a str) -> impl Iterator<Item = &'a Constraint> + 'a {
        self.constraints
            .iter()
            .filter(move |c| matches!(c.kind, ConstraintKind::ForeignKey { .. }) && c.columns.first().map(String::as_str) == Some(column))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Index {
    pub name: QName,
    pub table: QName,
    pub columns: Vec<String>,
    pub unique: bool,
    pub origin: Origin,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct View {
    pub name: QName,
    pub materialized: bool,
    pub security_invoker: bool,
    pub origin: Origin,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Function {
    pub name: QName,
    /// VOLATILE (PostgreSQL's default when CREATE FUNCTION says nothing).
    pub volatile: bool,
    pub security_definer: bool,
    pub sets_search_path: bool,
    pub origin: Origin,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EnumType {
    pub name: QName,
    pub values: Vec<String>,
    pub origin: Origin,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Extension {
    pub name: String,
    pub schema: Option<String>,
    pub origin: Origin,
}

/// The replayed schema. It serializes as a [`Snapshot`]: sorted lists, so
/// the output is deterministic.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(into = "Snapshot", from = "Snapshot")]
pub struct Catalog {
    pub tables: Map<QName, Table>,
    pub indexes: Map<QName, Index>,
    pub views: Map<QName, View>,
    pub functions: Map<QName, Function>,
    pub enums: Map<QName, EnumType>,
    pub extensions: Map<String, Extension>,
    pub schemas: Map<String, Origin>,
    pub domains: Map<QName, Domain>,
    pub sequences: Map<QName, Sequence>,
    pub event_triggers: Map<String, EventTrigger>,
    pub statistics: Map<QName, Statistics>,
    pub default_privileges: Vec<DefaultPrivilege>,
    /// The first schema of the last `SET search_path`, where unqualified
    /// names go; `public` by default.
    pub default_schema: Option<String>,
    /// The tables of indexes dropped during this replay, so that the lock a
    /// `DROP INDEX` took is still known by its table to the statements after
    /// it. Not part of the snapshot: only the same run asks.
    pub dropped_indexes: Map<QName, QName>,
}

impl Catalog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Drops the index `name` (unqualified: searched in every schema, as
    /// PostgreSQL's search path finds it), remembering its table.
    pub fn drop_index(&mut self, name: &ObjectName) {
        self.drop_index_named(self.resolve(name), name.0.len() == 1);
    }

    /// [`Catalog::drop_index`] of a resolved name.
    pub fn drop_index_named(&mut self, q: QName, unqualified: bool) {
        let key = match self.indexes.contains_key(&q) {
            true => Some(q),
            false if unqualified => self.indexes.keys().find(|k| k.name == q.name).cloned(),
            false => None,
        };
        if let Some(i) = key.and_then(|k| self.indexes.remove(&k)) {
            self.dropped_indexes.insert(i.name, i.table);
        }
    }

    /// The table of index `name`, or of the index of that name this replay
    /// dropped (unqualified: searched in every schema).
    pub fn index_table(&self, name: &ObjectName) -> Option<QName> {
        let q = self.resolve(name);
        let unqualified = name.0.len() == 1;
        let live = self
            .indexes
            .get(&q)
            .or_else(|| unqualified.then(|| self.indexes.values().find(|i| i.name.name == q.name)).flatten())
            .map(|i| &i.table);
        let dropped = || {
            self.dropped_indexes.get(&q).or_else(|| {
                unqualified
                    .then(|| self.dropped_indexes.iter().find(|(k, _)| k.name == q.name).map(|(_, t)| t))
                    .flatten()
            })
        };
        live.or_else(dropped).cloned()
    }

    /// Resolves an object name: unqualified names go to the current schema
    /// (`public` unless a `SET search_path` said otherwise).
    pub fn resolve(&self, name: &ObjectName) -> QName {
        let fold = |p: &ObjectNamePart| match p {
            ObjectNamePart::Identifier(id) => ident_name(id),
            ObjectNamePart::Function(f) => f.to_string(),
        };
        // Only the last two parts matter (a database name before them is
        // ignored): fold just those.
        match name.0.as_slice() {
            [] => QName::new(self.current_schema(), ""),
            [n] => QName::new(self.current_schema(), fold(n)),
            [.., s, n] => QName::new(fold(s), fold(n)),
        }
    }

    pub fn current_schema(&self) -> &str {
        self.default_schema.as_deref().unwrap_or("public")
    }

    /// The qualified name of index `name` on `table`: PostgreSQL takes no
    /// schema in an index's name, it lives in its table's.
    pub fn index_on(&self, table: &QName, name: &ObjectName) -> QName {
        QName::new(table.schema.clone(), self.resolve(name).name)
    }

    /// Records an index on `table`. An index lives in its table's schema;
    /// one made without a name gets PostgreSQL's ([`index_name`]).
    #[allow(clippy::too_many_arguments)]
    pub fn add_index(
        &mut self,
        name: Option<String>,
        table: QName,
        columns: Vec<String>,
        unique: bool,
        if_not_exists: bool,
        origin: Origin,
    ) {
        let name = QName::new(table.schema.clone(), name.unwrap_or_else(|| index_name(&table, &columns, "idx")));
        if if_not_exists && self.indexes.contains_key(&name) {
            return;
        }
        self.indexes.insert(
            name.clone(),
            Index {
                name,
                table,
                columns,
                unique,
                origin,
            },
        );
    }

    pub fn table(&self, name: &QName) -> Option<&Table> {
        self.tables.get(name)
    }

    /// Finds a table by an unresolved name (for rules reading the AST).
    /// Whether a function defined by the history is VOLATILE, by its last
    /// name part (overloads share the answer of any volatile one).
    pub fn function_is_volatile(&self, name: &str) -> bool {
        self.functions.values().any(|f| f.name.name == name && f.volatile)
    }

    pub fn lookup_table(&self, name: &ObjectName) -> Option<&Table> {
        self.tables.get(&self.resolve(name))
    }

    /// Applies one statement. Statements that change nothing the model
    /// tracks are ignored.
    pub fn apply(&mut self, stmt: &ast::Statement, origin: Origin) {
        replay::apply(self, stmt, origin);
    }

    /// Applies one statement only PostgreSQL's grammar read (see
    /// [`crate::sql::Model`]).
    pub fn apply_model(&mut self, stmt: &crate::sql::Model, origin: Origin) {
        model::apply(self, stmt, origin);
    }

    /// Resolves a folded name (`["app", "orders"]`) as [`Self::resolve`] does.
    pub fn resolve_parts(&self, parts: &[String]) -> QName {
        match parts {
            [] => QName::new(self.current_schema(), ""),
            [n] => QName::new(self.current_schema(), n.clone()),
            [.., s, n] => QName::new(s.clone(), n.clone()),
        }
    }

    /// The domain a column type names, if the history defined it.
    pub fn domain_of_type(&self, data_type: &str) -> Option<&Domain> {
        let parts: Vec<String> = data_type.split('.').map(|p| p.trim_matches('"').to_string()).collect();
        let q = self.resolve_parts(&parts);
        self.domains.get(&q).or_else(|| {
            (parts.len() == 1)
                .then(|| self.domains.values().find(|d| d.name.name == q.name))
                .flatten()
        })
    }
}

/// The name PostgreSQL gives an index or constraint made without one:
/// `<table>_<columns>_<suffix>` (`idx`, `key`, `excl`, `fkey`, ...;
/// `<table>_<suffix>` without columns), `expr` standing for an expression
/// column, shortened to 63 bytes as PostgreSQL's `makeObjectName` does (the
/// longer of the table name and the columns first).
pub fn index_name(table: &QName, columns: &[String], suffix: &str) -> String {
    const MAX: usize = 63;
    fn part(c: &str) -> &str {
        if c.chars().all(|ch| ch.is_alphanumeric() || ch == '_' || ch == '$') {
            c
        } else {
            "expr"
        }
    }
    fn clip(s: &str, mut n: usize) -> &str {
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        &s[..n]
    }
    let (name1, name2) = (table.name.as_str(), columns.iter().map(|c| part(c)).collect::<Vec<_>>().join("_"));
    let avail = MAX.saturating_sub(suffix.len() + 1 + usize::from(!name2.is_empty()));
    let (mut n1, mut n2) = (name1.len(), name2.len());
    while n1 + n2 > avail {
        if n1 > n2 {
            n1 -= 1;
        } else {
            n2 -= 1;
        }
    }
    if name2.is_empty() {
        format!("{}_{suffix}", clip(name1, n1))
    } else {
        format!("{}_{}_{suffix}", clip(name1, n1), clip(&name2, n2))
    }
}

/// The serialized form of a [`Catalog`]: every map as a list sorted by name.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub tables: Vec<Table>,
    pub indexes: Vec<Index>,
    pub views: Vec<View>,
    pub functions: Vec<Function>,
    pub enums: Vec<EnumType>,
    pub extensions: Vec<Extension>,
    pub schemas: Vec<(String, Origin)>,
    pub domains: Vec<Domain>,
    pub sequences: Vec<Sequence>,
    pub event_triggers: Vec<EventTrigger>,
    pub statistics: Vec<Statistics>,
    pub default_privileges: Vec<DefaultPrivilege>,
    pub default_schema: Option<String>,
}

impl From<Catalog> for Snapshot {
    fn from(c: Catalog) -> Snapshot {
        fn sorted<K: Ord, V>(m: Map<K, V>) -> Vec<V> {
            let mut v: Vec<(K, V)> = m.into_iter().collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v.into_iter().map(|(_, x)| x).collect()
        }
        let mut schemas: Vec<(String, Origin)> = c.schemas.into_iter().collect();
        schemas.sort_by(|a, b| a.0.cmp(&b.0));
        Snapshot {
            tables: sorted(c.tables),
            indexes: sorted(c.indexes),
            views: sorted(c.views),
            functions: sorted(c.functions),
            enums: sorted(c.enums),
            extensions: sorted(c.extensions),
            schemas,
            domains: sorted(c.domains),
            sequences: sorted(c.sequences),
            event_triggers: sorted(c.event_triggers),
            statistics: sorted(c.statistics),
            default_privileges: c.default_privileges,
            default_schema: c.default_schema,
        }
    }
}

impl From<Snapshot> for Catalog {
    fn from(s: Snapshot) -> Catalog {
        Catalog {
            tables: s.tables.into_iter().map(|t| (t.name.clone(), t)).collect(),
            indexes: s.indexes.into_iter().map(|i| (i.name.clone(), i)).collect(),
            views: s.views.into_iter().map(|v| (v.name.clone(), v)).collect(),
            functions: s.functions.into_iter().map(|f| (f.name.clone(), f)).collect(),
            enums: s.enums.into_iter().map(|e| (e.name.clone(), e)).collect(),
            extensions: s.extensions.into_iter().map(|e| (e.name.clone(), e)).collect(),
            schemas: s.schemas.into_iter().collect(),
            domains: s.domains.into_iter().map(|d| (d.name.clone(), d)).collect(),
            sequences: s.sequences.into_iter().map(|d| (d.name.clone(), d)).collect(),
            event_triggers: s.event_triggers.into_iter().map(|d| (d.name.clone(), d)).collect(),
            statistics: s.statistics.into_iter().map(|d| (d.name.clone(), d)).collect(),
            default_privileges: s.default_privileges,
            default_schema: s.default_schema,
            dropped_indexes: Map::default(),
        }
    }
}
/// Applies one statement to the catalog, when it runs with the migration
/// (function bodies run later, when called).
pub fn replay_statement(catalog: &mut Catalog, stmt: &crate::sql::Statement, file: u32, layer: u16, index: usize) {
    if !stmt.runs_with_migration() {
        return;
    }
    let origin = Origin {
        file,
        layer,
        stmt: index as u32,
    };
    // A modeled statement may carry a partial sqlparser tree for the rules
    // (`Statement::ast`): the model is what it does.
    if let Some(model) = stmt.model() {
        catalog.apply_model(model, origin);
    } else if let Some(ast) = stmt.ast() {
        catalog.apply(ast, origin);
    }
}
