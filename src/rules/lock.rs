//! What the lock-safety rules share, so that each rule file holds only its
//! own decision: whether a table existed before the file under review,
//! whether a statement runs inside a transaction, and which table lock a
//! statement takes. The token view of statements is in `tokens`, keyword
//! shapes in `shape`, fix edits in `fixes`.

use sqlparser::ast::{self, AlterTableOperation, LockTableMode, ObjectName, ObjectType, TableConstraint};

use super::shape::{keyword_shape, Shape};
use super::tokens::statement_text;
use super::{Env, FileInfo, StatementCtx};
use crate::catalog::{Catalog, QName};
use crate::sql::model::{Model, ObjectKind, TableOp};

/// Whether a table existed before the migration file under review.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableAge {
    /// Created earlier in this file: empty and invisible to other sessions
    /// until the file commits, so nothing it does can block traffic.
    New,
    /// Created by an earlier migration.
    Existing,
    /// Not in the catalog (a plain file checked without its history, or a
    /// table created by SQL strata could not read). Treated as existing.
    Unknown,
}

impl TableAge {
    /// Whether locking or rewriting the table can hurt running traffic.
    pub fn is_live(self) -> bool {
        self != TableAge::New
    }
}

/// How old the table `name` is, as seen before statement `index` of `file`.
pub fn table_age(catalog: &Catalog, file: &FileInfo, index: usize, name: &QName) -> TableAge {
    match catalog.table(name) {
        Some(t) if t.origin.file == file.id => TableAge::New,
        Some(_) => TableAge::Existing,
        None if created_by_unparsed(file, index, name) => TableAge::New,
        None => TableAge::Unknown,
    }
}

/// The age of the table an AST name refers to, before the current statement.
pub fn age_of(cx: &StatementCtx, name: &ObjectName) -> TableAge {
    table_age(cx.catalog, cx.file, cx.index, &cx.catalog.resolve(name))
}

/// The statement's `ALTER TABLE`, when the table it alters can carry live
/// traffic (not created earlier in this file): the statement, the table's
/// age and its resolved name. The common opening of every rule about
/// altering existing tables.
pub fn live_alter<'a>(cx: &'a StatementCtx) -> Option<(&'a sqlparser::ast::AlterTable, TableAge, QName)> {
    let Some(sqlparser::ast::Statement::AlterTable(at)) = cx.stmt.ast() else {
        return None;
    };
    let age = age_of(cx, &at.name);
    age.is_live().then(|| (at, age, cx.catalog.resolve(&at.name)))
}

/// A `CREATE TABLE` earlier in the file that the parser did not understand
/// (the catalog never saw it) still makes the table new.
fn created_by_unparsed(file: &FileInfo, index: usize, name: &QName) -> bool {
    let upper = name.name.to_ascii_uppercase();
    let parsed = file.parsed;
    parsed.unparsed.iter().take_while(|&&i| i < index).any(|&i| {
        parsed.statements[i].unparsed().is_some_and(|u| {
            let w = &u.words;
            w.first().is_some_and(|x| x == "CREATE") && w.iter().take(4).any(|x| x == "TABLE") && w.contains(&upper)
        })
    })
}

/// The transaction a statement runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tx {
    /// Autocommit: the statement is its own transaction.
    None,
    /// The transaction strata's runner wraps around the whole file.
    Runner,
    /// An explicit `BEGIN` (statement index) in a no-transaction file.
    Explicit(usize),
}

/// Whether strata runs this file inside one transaction.
pub fn runner_transaction(env: &Env, file: &FileInfo) -> bool {
    env.transactional && !file.parsed.no_transaction
}

pub use crate::sql::TxControl;

/// The transaction statement `index` of `file` runs in.
pub fn transaction_at(env: &Env, file: &FileInfo, index: usize) -> Tx {
    if runner_transaction(env, file) {
        return Tx::Runner;
    }
    let controls = &file.parsed.tx_controls;
    let before = controls.partition_point(|&j| j < index);
    match before.checked_sub(1).map(|k| controls[k]) {
        Some(j) if file.parsed.statements[j].tx_control() == Some(TxControl::Begin) => Tx::Explicit(j),
        _ => Tx::None,
    }
}

/// The index of the first statement of the transaction statement `index`
/// runs in (the statement after an explicit `BEGIN`), or `None` in autocommit.
pub fn transaction_start(env: &Env, file: &FileInfo, index: usize) -> Option<usize> {
    match transaction_at(env, file, index) {
        Tx::None => None,
        Tx::Runner => Some(0),
        Tx::Explicit(begin) => Some(begin + 1),
    }
}

/// Whether a statement before `index` sets the run-time parameter `name`
/// (`SET [LOCAL|SESSION] name ...` or `set_config('name', ...)`) to
/// something other than 0 (which disables a timeout).
pub fn setting_before(file: &FileInfo, index: usize, name: &str) -> bool {
    let source = &file.parsed.source;
    let call = format!("set_config('{name}'");
    file.parsed.statements[..index.min(file.parsed.statements.len())]
        .iter()
        .any(|s| match s.ast() {
            Some(ast::Statement::Set(ast::Set::SingleAssignment { variable, values, .. })) => {
                variable.to_string().eq_ignore_ascii_case(name)
                    && !values
                        .iter()
                        .any(|v| matches!(v.to_string().trim_matches('\'').trim(), "0" | "DEFAULT" | "default"))
            }
            Some(ast::Statement::Query(_)) => statement_text(source, s).to_ascii_lowercase().contains(&call),
            _ => false,
        })
}

/// The first statement of the file that takes a write-blocking lock on a
/// live table with no `SET name` before it: `Some` only when that statement
/// is `index`, so a file gets one finding.
pub fn first_unguarded_lock(cx: &StatementCtx, name: &str) -> Option<TakenLock> {
    let lock = cx.lock_of(cx.index)?;
    if (0..cx.index).any(|j| cx.lock_of(j).is_some()) || setting_before(cx.file, cx.index, name) {
        return None;
    }
    Some(lock.into_owned())
}

/// Table lock modes that conflict with writes (`ROW EXCLUSIVE`), weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LockMode {
    Share,
    ShareRowExclusive,
    Exclusive,
    AccessExclusive,
}

impl LockMode {
    pub fn name(self) -> &'static str {
        match self {
            LockMode::Share => "SHARE",
            LockMode::ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            LockMode::Exclusive => "EXCLUSIVE",
            LockMode::AccessExclusive => "ACCESS EXCLUSIVE",
        }
    }
    /// What the lock blocks while held (or while it waits in the lock queue).
    pub fn blocks(self) -> &'static str {
        match self {
            LockMode::AccessExclusive => "reads and writes",
            _ => "writes",
        }
    }
}

/// A lock that blocks traffic, taken on a table that existed before the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TakenLock {
    pub table: String,
    pub mode: LockMode,
}

/// The strongest write-blocking lock statement `index` of `file` takes on a
/// table that existed before the file, given `catalog` (the state before the
/// statement, or a later one for earlier statements: tables created in this
/// file keep their origin, so the answer is the same), on the PostgreSQL
/// major of `env`.
pub fn strong_lock(env: &Env, catalog: &Catalog, file: &FileInfo, index: usize) -> Option<TakenLock> {
    let stmt = &file.parsed.statements[index];
    // A function body takes its locks when the function is called.
    if !stmt.runs_with_migration() {
        return None;
    }
    let live = |q: &QName| table_age(catalog, file, index, q).is_live();
    let on = |name: &ObjectName, mode: LockMode| -> Option<TakenLock> {
        let q = catalog.resolve(name);
        live(&q).then(|| TakenLock {
            table: q.to_string(),
            mode,
        })
    };
    let strongest = |locks: Vec<Option<TakenLock>>| locks.into_iter().flatten().max_by_key(|l| l.mode);
    use ast::Statement as S;
    match stmt.ast() {
        Some(S::AlterTable(at)) => {
            let mode = at.operations.iter().filter_map(alter_lock).max()?;
            on(&at.name, mode)
        }
        Some(S::CreateIndex(ci)) if !ci.concurrently => on(&ci.table_name, LockMode::Share),
        Some(S::Drop {
            object_type: ObjectType::Table,
            names,
            ..
        }) => strongest(names.iter().map(|n| on(n, LockMode::AccessExclusive)).collect()),
        Some(S::Drop {
            object_type: ObjectType::Index,
            names,
            ..
        }) => strongest(
            names
                .iter()
                .map(|n| match catalog.index_table(n) {
                    Some(t) => live(&t).then(|| TakenLock {
                        table: t.to_string(),
                        mode: LockMode::AccessExclusive,
                    }),
                    None => Some(TakenLock {
                        table: format!("the table of index {n}"),
                        mode: LockMode::AccessExclusive,
                    }),
                })
                .collect(),
        ),
        Some(S::Truncate(t)) => strongest(t.table_names.iter().map(|n| on(&n.name, LockMode::AccessExclusive)).collect()),
        Some(S::Lock(l)) => {
            let mode = match l.lock_mode {
                None | Some(LockTableMode::AccessExclusive) => LockMode::AccessExclusive,
                Some(LockTableMode::Exclusive) => LockMode::Exclusive,
                Some(LockTableMode::ShareRowExclusive) => LockMode::ShareRowExclusive,
                Some(LockTableMode::Share) => LockMode::Share,
                Some(_) => return None,
            };
            strongest(l.tables.iter().map(|t| on(&t.name, mode)).collect())
        }
        Some(S::CreateTrigger(ct)) => on(&ct.table_name, LockMode::ShareRowExclusive),
        Some(S::CreatePolicy(p)) => on(&p.table_name, LockMode::AccessExclusive),
        Some(S::AlterPolicy(p)) => on(&p.table_name, LockMode::AccessExclusive),
        Some(S::DropPolicy(p)) => on(&p.table_name, LockMode::AccessExclusive),
        Some(S::Vacuum(v)) if v.full => match &v.table_name {
            Some(n) => on(n, LockMode::AccessExclusive),
            None => Some(TakenLock {
                table: "every table".to_string(),
                mode: LockMode::AccessExclusive,
            }),
        },
        Some(_) => None,
        None => {
            if let Some(lock) = stmt.model().and_then(|m| model_lock(env.pg_version, catalog, file, index, m)) {
                return Some(lock);
            }
            let shape = keyword_shape(&file.parsed.source, stmt)?;
            match &shape {
                Shape::Reindex { concurrently: false, .. } | Shape::Cluster { .. } | Shape::VacuumFull { .. } => {
                    match shape_table(catalog, &shape) {
                        Some(q) => live(&q).then(|| TakenLock {
                            table: q.to_string(),
                            mode: LockMode::AccessExclusive,
                        }),
                        None => Some(TakenLock {
                            table: unresolved_target(&shape),
                            mode: LockMode::AccessExclusive,
                        }),
                    }
                }
                Shape::DetachPartition {
                    table,
                    concurrently: false,
                    ..
                } => on(table, LockMode::AccessExclusive),
                _ => None,
            }
        }
    }
}

/// The lock a statement only PostgreSQL's grammar read takes, from strata's
/// model of it.
fn model_lock(pg_version: u32, catalog: &Catalog, file: &FileInfo, index: usize, model: &Model) -> Option<TakenLock> {
    let on = |name: &[String], mode: LockMode| -> Option<TakenLock> {
        let q = catalog.resolve_parts(name);
        table_age(catalog, file, index, &q).is_live().then(|| TakenLock {
            table: q.to_string(),
            mode,
        })
    };
    match model {
        Model::CreateTrigger { table, .. } => on(table, LockMode::ShareRowExclusive),
        // The parent's lock is queued like any other, even where nothing is
        // built (a partitioned table).
        Model::CreateIndexOnly {
            table,
            concurrently: false,
            ..
        } => on(table, LockMode::Share),
        Model::AlterTable { table, ops } => {
            let mut locks = Vec::new();
            let mut parent = None;
            for op in ops {
                let mode = match op {
                    TableOp::DetachPartition { concurrently: true, .. }
                    | TableOp::DetachPartition { finalize: true, .. }
                    | TableOp::ValidateConstraint(_) => None,
                    // Since PostgreSQL 12 the parent gets SHARE UPDATE
                    // EXCLUSIVE (traffic goes on); the table attached is
                    // locked ACCESS EXCLUSIVE while it is checked.
                    TableOp::AttachPartition { partition } if pg_version >= 12 => {
                        locks.push(on(partition, LockMode::AccessExclusive));
                        None
                    }
                    _ => Some(LockMode::AccessExclusive),
                };
                parent = parent.max(mode);
            }
            locks.push(parent.and_then(|mode| on(table, mode)));
            locks.into_iter().flatten().max_by_key(|l| l.mode)
        }
        Model::Rename {
            kind: ObjectKind::Table | ObjectKind::Column | ObjectKind::Constraint,
            object,
            table,
            ..
        } => on(table.as_deref().unwrap_or(object), LockMode::AccessExclusive),
        Model::Rename {
            kind: ObjectKind::Trigger,
            table: Some(table),
            ..
        } => on(table, LockMode::AccessExclusive),
        _ => None,
    }
}

/// The lock one `ALTER TABLE` operation takes, when it blocks writes.
fn alter_lock(op: &AlterTableOperation) -> Option<LockMode> {
    match op {
        AlterTableOperation::ValidateConstraint { .. } | AlterTableOperation::SetOptionsParens { .. } => None,
        AlterTableOperation::AddConstraint {
            constraint: TableConstraint::ForeignKey(_),
            ..
        } => Some(LockMode::ShareRowExclusive),
        AlterTableOperation::DisableTrigger { .. } | AlterTableOperation::EnableTrigger { .. } => Some(LockMode::ShareRowExclusive),
        _ => Some(LockMode::AccessExclusive),
    }
}

/// The table a keyword-level statement works on, when it names one.
fn shape_table(catalog: &Catalog, shape: &Shape) -> Option<QName> {
    match shape {
        Shape::Reindex { kind, name: Some(n), .. } if kind == "INDEX" => catalog.index_table(n),
        Shape::Reindex { kind, name: Some(n), .. } if kind == "TABLE" => Some(catalog.resolve(n)),
        Shape::Cluster { table: Some(n) } | Shape::VacuumFull { table: Some(n) } => Some(catalog.resolve(n)),
        Shape::DetachPartition { table, .. } => Some(catalog.resolve(table)),
        _ => None,
    }
}

/// What a keyword-level statement locks when the catalog cannot name the table.
fn unresolved_target(shape: &Shape) -> String {
    match shape {
        Shape::Reindex { kind, name: Some(n), .. } if kind == "INDEX" => format!("the table of index {n}"),
        Shape::Reindex { kind, name: Some(n), .. } if kind == "SCHEMA" => format!("every table of schema {n}"),
        _ => "every table".to_string(),
    }
}

/// How a finding names a table whose lock matters.
pub fn describe(age: TableAge, table: &impl std::fmt::Display) -> String {
    match age {
        TableAge::Unknown => format!("table `{table}` (not created in this file)"),
        _ => format!("existing table `{table}`"),
    }
}
