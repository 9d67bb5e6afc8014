//! What the lock-safety rules share, so that each rule file holds only its
//! own decision: whether a table existed before the file under review,
//! whether a statement runs inside a transaction, which table lock a
//! statement takes, a token view of a statement (for keyword-level checks of
//! statements sqlparser cannot parse, and for the byte offsets of fixes), and
//! the fix edits several rules attach.

use std::ops::Range;

use sqlparser::ast::{self, AlterTableOperation, Ident, LockTableMode, ObjectName, ObjectNamePart, ObjectType, TableConstraint};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

use super::{Env, FileInfo, Released, StatementCtx};
use crate::catalog::{Catalog, QName};
use crate::diag::{Edit, Fix, Pos, Region, SourceFile};
use crate::sql::Statement;
use crate::workspace::Layout;

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
    let lock = strong_lock(cx.catalog, cx.file, cx.index)?;
    if (0..cx.index).any(|j| strong_lock(cx.catalog, cx.file, j).is_some()) || setting_before(cx.file, cx.index, name) {
        return None;
    }
    Some(lock)
}

/// The edit that adds `SET name = 'value';` before the first statement
/// (after the leading comments, so headers stay first).
pub fn set_before_first_statement(file: &FileInfo, name: &str, value: &str) -> Option<Edit> {
    let first = file.parsed.statements.first()?;
    let text = &file.parsed.source.text;
    let at = text[..first.bytes.start].rfind('\n').map_or(0, |i| i + 1);
    Some(Edit {
        start: at,
        end: at,
        replacement: format!("SET {name} = '{value}';\n"),
    })
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
/// file keep their origin, so the answer is the same).
pub fn strong_lock(catalog: &Catalog, file: &FileInfo, index: usize) -> Option<TakenLock> {
    let stmt = &file.parsed.statements[index];
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
                .map(|n| match index_table(catalog, n) {
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

/// The table an index belongs to, from the catalog (unqualified index names
/// are looked up in every schema, as PostgreSQL's search path would).
pub fn index_table(catalog: &Catalog, index: &ObjectName) -> Option<QName> {
    let q = catalog.resolve(index);
    if let Some(i) = catalog.indexes.get(&q) {
        return Some(i.table.clone());
    }
    (index.0.len() == 1)
        .then(|| catalog.indexes.values().find(|i| i.name.name == q.name).map(|i| i.table.clone()))
        .flatten()
}

/// The table a keyword-level statement works on, when it names one.
fn shape_table(catalog: &Catalog, shape: &Shape) -> Option<QName> {
    match shape {
        Shape::Reindex { kind, name: Some(n), .. } if kind == "INDEX" => index_table(catalog, n),
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

/// The SQL text of a statement (empty if its range does not fit the text).
pub fn statement_text<'a>(source: &'a SourceFile, stmt: &Statement) -> &'a str {
    source.text.get(stmt.bytes.clone()).unwrap_or("")
}

/// One token of a statement with its place in the file.
#[derive(Clone, Debug)]
pub struct Tok {
    pub token: Token,
    /// Byte range in the file's text.
    pub bytes: Range<usize>,
    pub region: Region,
}

impl Tok {
    /// An unquoted keyword, compared case-insensitively.
    pub fn is_kw(&self, kw: &str) -> bool {
        matches!(&self.token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(kw))
    }
}

/// The tokens of a statement (no whitespace or comments), with byte ranges
/// and regions in the file. Empty when the text does not tokenize.
pub fn tokens(source: &SourceFile, stmt: &Statement) -> Vec<Tok> {
    let text = statement_text(source, stmt);
    let Ok(raw) = Tokenizer::new(&PostgreSqlDialect {}, text).tokenize_with_location() else {
        return Vec::new();
    };
    let local = SourceFile::new(String::new(), text.to_string());
    let base = stmt.region.start;
    let abs = |line: u64, col: u64| {
        let (line, col) = (line as u32, col as u32);
        if line <= 1 {
            Pos::new(base.line, base.col + col.saturating_sub(1))
        } else {
            Pos::new(base.line + line - 1, col)
        }
    };
    raw.into_iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_) | Token::EOF))
        .map(|t| {
            let (s, e) = (t.span.start, t.span.end);
            let start = local.offset(Pos::new(s.line as u32, s.column as u32));
            let end = local.offset(Pos::new(e.line as u32, e.column as u32));
            Tok {
                bytes: stmt.bytes.start + start..stmt.bytes.start + end.max(start),
                region: Region::new(abs(s.line, s.column), abs(e.line, e.column.saturating_sub(1).max(s.column))),
                token: t.token,
            }
        })
        .collect()
}

/// Reads a possibly qualified name (`a`, `"A".b`) at `toks[i]`; returns it
/// and the index after it.
pub fn name_at(toks: &[Tok], mut i: usize) -> Option<(ObjectName, usize)> {
    let mut parts = Vec::new();
    while let Some(Tok { token: Token::Word(w), .. }) = toks.get(i) {
        parts.push(ObjectNamePart::Identifier(Ident {
            value: w.value.clone(),
            quote_style: w.quote_style,
            span: sqlparser::tokenizer::Span::empty(),
        }));
        i += 1;
        if !matches!(toks.get(i).map(|t| &t.token), Some(Token::Period)) {
            break;
        }
        i += 1;
    }
    (!parts.is_empty()).then_some((ObjectName(parts), i))
}

/// Statements sqlparser 0.63 cannot parse whose whole meaning for the
/// lock-safety rules is in their keywords.
#[derive(Clone, Debug)]
pub enum Shape {
    /// `REINDEX [(options)] {INDEX|TABLE|SCHEMA|DATABASE|SYSTEM} [CONCURRENTLY] [name]`.
    Reindex {
        kind: String,
        name: Option<ObjectName>,
        concurrently: bool,
    },
    /// `DROP INDEX CONCURRENTLY [IF EXISTS] name`.
    DropIndexConcurrently,
    /// `ALTER TABLE [IF EXISTS] [ONLY] t DETACH PARTITION p [CONCURRENTLY | FINALIZE]`.
    DetachPartition {
        table: ObjectName,
        concurrently: bool,
        finalize: bool,
    },
    /// `CLUSTER [VERBOSE] [t [USING i]]`.
    Cluster { table: Option<ObjectName> },
    /// `VACUUM (FULL ...) [t]`: the parenthesized form sqlparser rejects.
    VacuumFull { table: Option<ObjectName> },
    /// `ALTER DOMAIN d ADD [CONSTRAINT c] CHECK (...) [NOT VALID]` or `ALTER DOMAIN d SET NOT NULL`.
    AlterDomainConstraint {
        domain: ObjectName,
        not_valid: bool,
        set_not_null: bool,
    },
}

/// Recognizes an unparsed statement's [`Shape`] from its tokens.
pub fn keyword_shape(source: &SourceFile, stmt: &Statement) -> Option<Shape> {
    let u = stmt.unparsed()?;
    let first = u.words.first()?.as_str();
    if !matches!(first, "REINDEX" | "DROP" | "ALTER" | "CLUSTER" | "VACUUM") {
        return None;
    }
    let toks = tokens(source, stmt);
    shape_of(&toks)
}

fn shape_of(toks: &[Tok]) -> Option<Shape> {
    let kw = |i: usize, k: &str| toks.get(i).is_some_and(|t| t.is_kw(k));
    let skip_parens = |mut i: usize| -> (usize, bool) {
        let mut full = false;
        if matches!(toks.get(i).map(|t| &t.token), Some(Token::LParen)) {
            let mut depth = 0;
            while let Some(t) = toks.get(i) {
                match t.token {
                    Token::LParen => depth += 1,
                    Token::RParen => depth -= 1,
                    _ => full |= t.is_kw("FULL"),
                }
                i += 1;
                if depth == 0 {
                    break;
                }
            }
        }
        (i, full)
    };
    if kw(0, "REINDEX") {
        let (mut i, _) = skip_parens(1);
        let options_concurrently =
            toks[1..i].iter().any(|t| t.is_kw("CONCURRENTLY")) && !toks[1..i].iter().any(|t| t.is_kw("FALSE") || t.is_kw("OFF"));
        let Token::Word(kind) = &toks.get(i)?.token else { return None };
        let kind = kind.value.to_ascii_uppercase();
        if !matches!(kind.as_str(), "INDEX" | "TABLE" | "SCHEMA" | "DATABASE" | "SYSTEM") {
            return None;
        }
        i += 1;
        let concurrently = kw(i, "CONCURRENTLY");
        if concurrently {
            i += 1;
        }
        let name = name_at(toks, i).map(|(n, _)| n);
        return Some(Shape::Reindex {
            kind,
            name,
            concurrently: concurrently || options_concurrently,
        });
    }
    if kw(0, "DROP") && kw(1, "INDEX") && kw(2, "CONCURRENTLY") {
        let mut i = 3;
        if kw(i, "IF") && kw(i + 1, "EXISTS") {
            i += 2;
        }
        return name_at(toks, i).map(|_| Shape::DropIndexConcurrently);
    }
    if kw(0, "ALTER") && kw(1, "TABLE") {
        let mut i = 2;
        if kw(i, "IF") && kw(i + 1, "EXISTS") {
            i += 2;
        }
        if kw(i, "ONLY") {
            i += 1;
        }
        let (table, next) = name_at(toks, i)?;
        if !(kw(next, "DETACH") && kw(next + 1, "PARTITION")) {
            return None;
        }
        let (_, after) = name_at(toks, next + 2)?;
        return Some(Shape::DetachPartition {
            table,
            concurrently: kw(after, "CONCURRENTLY"),
            finalize: kw(after, "FINALIZE"),
        });
    }
    if kw(0, "CLUSTER") {
        let mut i = 1;
        if kw(i, "VERBOSE") {
            i += 1;
        }
        let (i, _) = skip_parens(i);
        return Some(Shape::Cluster {
            table: name_at(toks, i).map(|(n, _)| n),
        });
    }
    if kw(0, "VACUUM") {
        let (i, full) = skip_parens(1);
        return full.then(|| Shape::VacuumFull {
            table: name_at(toks, i).map(|(n, _)| n),
        });
    }
    if kw(0, "ALTER") && kw(1, "DOMAIN") {
        let (domain, i) = name_at(toks, 2)?;
        if kw(i, "SET") && kw(i + 1, "NOT") && kw(i + 2, "NULL") {
            return Some(Shape::AlterDomainConstraint {
                domain,
                not_valid: false,
                set_not_null: true,
            });
        }
        if !kw(i, "ADD") {
            return None;
        }
        let n = toks.len();
        let not_valid = n >= 2 && toks[n - 2].is_kw("NOT") && toks[n - 1].is_kw("VALID");
        return Some(Shape::AlterDomainConstraint {
            domain,
            not_valid,
            set_not_null: false,
        });
    }
    None
}

/// Whether a file may get fixes: released migrations are never edited.
pub fn fixable(file: &FileInfo) -> bool {
    !matches!(file.released, Released::Released { .. })
}

/// The header that makes strata (or goose) run a file outside a transaction.
pub fn no_transaction_header(source: &SourceFile) -> Edit {
    let goose = crate::workspace::section_layout(&source.text) == Some(Layout::Goose);
    Edit {
        start: 0,
        end: 0,
        replacement: if goose {
            "-- +goose NO TRANSACTION\n"
        } else {
            "-- strata: no-transaction\n"
        }
        .to_string(),
    }
}

/// Whether a statement can run outside a transaction without changing what
/// the file means: index maintenance, partition detach, settings. A file
/// made only of these can take the no-transaction header.
pub fn runs_outside_transaction(source: &SourceFile, stmt: &Statement) -> bool {
    use ast::Statement as S;
    match stmt.ast() {
        Some(S::CreateIndex(_)) | Some(S::Set(_)) | Some(S::Analyze(_)) | Some(S::Vacuum(_)) => true,
        Some(S::Drop {
            object_type: ObjectType::Index,
            ..
        }) => true,
        Some(_) => false,
        None => matches!(
            keyword_shape(source, stmt),
            Some(Shape::Reindex { .. } | Shape::DropIndexConcurrently | Shape::DetachPartition { .. })
        ),
    }
}

/// Whether the whole file can move out of a transaction (see
/// [`runs_outside_transaction`]).
pub fn file_runs_outside_transaction(file: &FileInfo) -> bool {
    let source = &file.parsed.source;
    file.parsed.statements.iter().all(|s| runs_outside_transaction(source, s))
}

/// How a finding names a table whose lock matters.
pub fn describe(age: TableAge, table: &impl std::fmt::Display) -> String {
    match age {
        TableAge::Unknown => format!("table `{table}` (not created in this file)"),
        _ => format!("existing table `{table}`"),
    }
}

/// Where [`concurrently_fix`] inserts `CONCURRENTLY`.
#[derive(Clone, Copy, Debug)]
pub enum At<'a> {
    /// After the first occurrence of this keyword.
    Keyword(&'a str),
    /// After the statement's last token.
    End,
}

/// The fix that makes a statement concurrent: ` CONCURRENTLY` (and
/// `guard`, an `IF [NOT] EXISTS` that lets a half-applied non-transactional
/// file run again) at `at`, plus the no-transaction header
/// when the file runs in strata's transaction. Only offered when the file
/// holds nothing that needs a transaction.
pub fn concurrently_fix(cx: &StatementCtx, at: At, guard: Option<&str>, description: &str) -> Option<Fix> {
    if !fixable(cx.file) || !file_runs_outside_transaction(cx.file) {
        return None;
    }
    let runner = match transaction_at(cx.env, cx.file, cx.index) {
        Tx::Explicit(_) => return None,
        Tx::Runner => true,
        Tx::None => false,
    };
    let source = &cx.file.parsed.source;
    let toks = tokens(source, cx.stmt);
    let anchor = match at {
        At::Keyword(kw) => find_kw(&toks, kw)?.1,
        At::End => toks.last()?,
    };
    let mut text = " CONCURRENTLY".to_string();
    if let Some(g) = guard {
        text.push(' ');
        text.push_str(g);
    }
    let mut edits = Vec::new();
    if runner {
        edits.push(no_transaction_header(source));
    }
    edits.push(insert_after(anchor, &text));
    Some(Fix::new(description, edits))
}

/// An insertion of `text` right after a token.
pub fn insert_after(tok: &Tok, text: &str) -> Edit {
    Edit {
        start: tok.bytes.end,
        end: tok.bytes.end,
        replacement: text.to_string(),
    }
}

/// The first token that is the keyword `kw`.
pub fn find_kw<'a>(toks: &'a [Tok], kw: &str) -> Option<(usize, &'a Tok)> {
    toks.iter().enumerate().find(|(_, t)| t.is_kw(kw))
}

/// The region of the first keyword `kw` of the statement, or the statement.
pub fn kw_region(cx: &StatementCtx, kw: &str) -> Region {
    find_kw(&tokens(&cx.file.parsed.source, cx.stmt), kw).map_or(cx.stmt.region, |(_, t)| t.region)
}

/// The token ranges of the comma-separated operations of an `ALTER TABLE`
/// (after the table name), so a fix can edit the n-th one.
pub fn alter_table_operations(toks: &[Tok]) -> Vec<Range<usize>> {
    let mut i = 2;
    let kw = |i: usize, k: &str| toks.get(i).is_some_and(|t| t.is_kw(k));
    if kw(i, "IF") && kw(i + 1, "EXISTS") {
        i += 2;
    }
    if kw(i, "ONLY") {
        i += 1;
    }
    let Some((_, mut start)) = name_at(toks, i) else {
        return Vec::new();
    };
    if matches!(toks.get(start).map(|t| &t.token), Some(Token::Mul)) {
        start += 1;
    }
    let mut ops = Vec::new();
    let mut depth = 0i32;
    for (j, t) in toks.iter().enumerate().skip(start) {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::Comma if depth == 0 => {
                ops.push(start..j);
                start = j + 1;
            }
            _ => {}
        }
    }
    if start < toks.len() {
        ops.push(start..toks.len());
    }
    ops
}

/// The edit that removes a statement with its `;`, and its whole line when
/// nothing else is on it.
pub fn remove_statement(source: &SourceFile, stmt: &Statement) -> Edit {
    let text = source.text.as_bytes();
    let mut start = stmt.bytes.start;
    let line_start = source.text[..start].rfind('\n').map_or(0, |i| i + 1);
    if source.text[line_start..start].trim().is_empty() {
        start = line_start;
    }
    let mut end = stmt.bytes.end;
    let skip_blanks = |mut i: usize| {
        while i < text.len() && (text[i] == b' ' || text[i] == b'\t') {
            i += 1;
        }
        i
    };
    end = skip_blanks(end);
    if text.get(end) == Some(&b';') {
        end = skip_blanks(end + 1);
    }
    if text.get(end) == Some(&b'\r') {
        end += 1;
    }
    if text.get(end) == Some(&b'\n') {
        end += 1;
    }
    Edit {
        start,
        end,
        replacement: String::new(),
    }
}

/// A snake_case file-name part made of `text`.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

/// The file name part of a display path.
pub fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Whether the SQL text of a statement uses the string literal `value`.
pub fn uses_literal(text: &str, value: &str) -> bool {
    text.contains(&format!("'{}'", value.replace('\'', "''")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse_text;

    fn shape(sql: &str) -> Option<Shape> {
        let f = parse_text("t.sql", sql);
        keyword_shape(&f.source, &f.statements[0])
    }

    #[test]
    fn keyword_shapes() {
        assert!(matches!(
            shape("REINDEX (VERBOSE) INDEX CONCURRENTLY core.orders_pkey"),
            Some(Shape::Reindex { concurrently: true, ref kind, name: Some(_) }) if kind == "INDEX"
        ));
        assert!(matches!(
            shape("REINDEX TABLE orders"),
            Some(Shape::Reindex { concurrently: false, .. })
        ));
        assert!(matches!(
            shape("DROP INDEX CONCURRENTLY IF EXISTS a_idx"),
            Some(Shape::DropIndexConcurrently)
        ));
        assert!(matches!(
            shape("ALTER TABLE ONLY events DETACH PARTITION events_2023 CONCURRENTLY"),
            Some(Shape::DetachPartition { concurrently: true, .. })
        ));
        assert!(matches!(
            shape("CLUSTER orders USING orders_pkey"),
            Some(Shape::Cluster { table: Some(_) })
        ));
        assert!(matches!(
            shape("VACUUM (FULL, ANALYZE) orders"),
            Some(Shape::VacuumFull { table: Some(_) })
        ));
        assert!(shape("VACUUM (ANALYZE) orders").is_none());
        assert!(matches!(
            shape("ALTER DOMAIN email ADD CONSTRAINT email_at CHECK (VALUE LIKE '%@%') NOT VALID"),
            Some(Shape::AlterDomainConstraint { not_valid: true, .. })
        ));
    }

    #[test]
    fn token_offsets_point_into_the_file() {
        let f = parse_text("t.sql", "SELECT 1;\n  CREATE INDEX i\n  ON t (a);");
        let toks = tokens(&f.source, &f.statements[1]);
        let (_, index) = find_kw(&toks, "INDEX").unwrap();
        assert_eq!(&f.source.text[index.bytes.clone()], "INDEX");
        assert_eq!(index.region, Region::new(Pos::new(2, 10), Pos::new(2, 14)));
        let (_, on) = find_kw(&toks, "ON").unwrap();
        assert_eq!(on.region.start, Pos::new(3, 3));
    }

    #[test]
    fn alter_table_operation_ranges() {
        let f = parse_text(
            "t.sql",
            "ALTER TABLE ONLY s.t ADD CONSTRAINT c CHECK (f(a, b) > 0), ADD COLUMN x int",
        );
        let toks = tokens(&f.source, &f.statements[0]);
        let ops = alter_table_operations(&toks);
        assert_eq!(ops.len(), 2);
        let last = &toks[ops[0].end - 1];
        assert_eq!(
            &f.source.text[..last.bytes.end],
            "ALTER TABLE ONLY s.t ADD CONSTRAINT c CHECK (f(a, b) > 0)"
        );
    }
}
