//! The SQL front end: a migration file becomes a list of statements with
//! exact spans.
//!
//! PostgreSQL's own scanner finds the statements (so dollar quotes, E''
//! strings, nested comments and `BEGIN ATOMIC` bodies split exactly as the
//! server splits them). Each statement is then parsed on its own by
//! sqlparser, whose AST the rules read; a statement sqlparser rejects goes to
//! PostgreSQL's grammar, which either rejects it too (a syntax error, with
//! PostgreSQL's message and position) or accepts it, and then strata reads
//! what matters of it from PostgreSQL's parse tree ([`model`]). One
//! statement that cannot be read never hides the others.
//!
//! The bodies of DO blocks and of SQL and PL/pgSQL functions are read the
//! same way ([`body`]): their static statements follow the statement that
//! holds them, positioned inside the body.

use std::ops::Range;
use std::sync::Arc;

use sqlparser::ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

use crate::diag::{Pos, Region, SourceFile};
use postgres::protobuf::Token as Tok;

pub mod body;
pub mod lex;
mod mask;
pub mod model;
pub mod postgres;
mod split;
pub mod suppress;

pub use mask::mask_source;
pub use model::Model;
pub use suppress::{Suppression, SuppressionScope};

/// One statement of a migration file.
#[derive(Debug)]
pub struct Statement {
    /// From the statement's first token to its last (the `;` excluded).
    pub region: Region,
    /// Byte range in the original text.
    pub bytes: Range<usize>,
    pub kind: StatementKind,
    /// Set when the statement sits inside the body of an earlier statement
    /// (a DO block or a function), and not at the top level of the file.
    pub body: Option<Body>,
}

/// Where a statement inside a body comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Body {
    /// The index of the DO or CREATE FUNCTION statement that holds it.
    pub parent: usize,
    pub kind: BodyKind,
    /// The statement's text is not verbatim in the file (the SQL of an
    /// `EXECUTE` built from pieces): its span is where its string starts.
    pub detached: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// A DO block: runs right there, as part of the migration.
    Do,
    /// A function body: runs when the function is called, not when the
    /// migration runs; only the rules about what a function may do judge it.
    Function,
}

#[derive(Debug)]
pub enum StatementKind {
    /// sqlparser read it: the AST the rules read.
    Parsed(Box<ast::Statement>),
    /// sqlparser did not read it; PostgreSQL's verdict is inside.
    Unparsed(Unparsed),
    /// Not read at all: a data statement (`INSERT`, `UPDATE`, ...) of
    /// history the check does not report on ([`ReadScope::History`]), which
    /// the catalog does not replay.
    NotRead,
}

/// A statement sqlparser did not read. The upper-cased words are kept so
/// that keyword-level checks still see it.
#[derive(Debug)]
pub struct Unparsed {
    /// sqlparser's message.
    pub message: String,
    pub pos: Pos,
    pub words: Vec<String>,
    pub postgres: Verdict,
}

/// What PostgreSQL's grammar makes of a statement sqlparser did not read.
#[derive(Debug)]
pub enum Verdict {
    /// PostgreSQL accepts it and strata models it.
    Modeled(Box<Model>),
    /// PostgreSQL accepts it; strata does not model this kind of statement
    /// (named as PostgreSQL names its parse node, e.g. `CreateForeignTableStmt`).
    Accepted(String),
    /// PostgreSQL rejects it: its message and the position of the error.
    Rejected { message: String, pos: Pos },
}

/// What a transaction control statement does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxControl {
    /// `BEGIN` or `START TRANSACTION`.
    Begin,
    /// `COMMIT`, `END`, `ROLLBACK` or `ABORT` (not `ROLLBACK TO SAVEPOINT`).
    End,
}

impl Statement {
    /// Whether the statement opens or ends a transaction.
    pub fn tx_control(&self) -> Option<TxControl> {
        if self.body.is_some() {
            return None;
        }
        match &self.kind {
            StatementKind::Parsed(s) => match s.as_ref() {
                ast::Statement::StartTransaction { statements, .. } if statements.is_empty() => Some(TxControl::Begin),
                ast::Statement::Commit { .. } | ast::Statement::Rollback { savepoint: None, .. } => Some(TxControl::End),
                _ => None,
            },
            StatementKind::Unparsed(u) => match u.words.first().map(String::as_str) {
                Some("ABORT") => Some(TxControl::End),
                Some("COMMIT") if u.words.get(1).is_none_or(|w| w != "PREPARED") => Some(TxControl::End),
                _ => None,
            },
            StatementKind::NotRead => None,
        }
    }

    /// sqlparser's tree of the statement. A `CREATE TABLE (LIKE ...)`
    /// sqlparser cannot read has one too, without its `LIKE` clauses
    /// ([`Model::CreateTableLike`]): the rules that judge a new table's
    /// name and own columns read it, the catalog replays the model.
    pub fn ast(&self) -> Option<&ast::Statement> {
        match &self.kind {
            StatementKind::Parsed(s) => Some(s),
            StatementKind::Unparsed(Unparsed {
                postgres: Verdict::Modeled(m),
                ..
            }) => match m.as_ref() {
                Model::CreateTableLike { rest, .. } => rest.as_deref(),
                _ => None,
            },
            _ => None,
        }
    }
    pub fn unparsed(&self) -> Option<&Unparsed> {
        match &self.kind {
            StatementKind::Unparsed(u) => Some(u),
            _ => None,
        }
    }
    /// strata's model of a statement only PostgreSQL's grammar read.
    pub fn model(&self) -> Option<&Model> {
        match &self.kind {
            StatementKind::Unparsed(Unparsed {
                postgres: Verdict::Modeled(m),
                ..
            }) => Some(m),
            _ => None,
        }
    }
    /// Whether PostgreSQL's grammar rejects the statement (a `syntax-error`).
    pub fn rejected(&self) -> bool {
        matches!(
            &self.kind,
            StatementKind::Unparsed(Unparsed {
                postgres: Verdict::Rejected { .. },
                ..
            })
        )
    }
    /// Whether strata read the statement: sqlparser's AST or strata's model
    /// of PostgreSQL's parse tree.
    pub fn understood(&self) -> bool {
        self.ast().is_some() || self.model().is_some()
    }
    /// Whether the statement runs when the migration runs (top level or
    /// inside a DO block), as opposed to inside a function body.
    pub fn runs_with_migration(&self) -> bool {
        !matches!(
            self.body,
            Some(Body {
                kind: BodyKind::Function,
                ..
            })
        )
    }
}

/// A migration file after the front end.
#[derive(Debug)]
pub struct ParsedFile {
    pub source: Arc<SourceFile>,
    /// Top-level statements in order, each followed by the statements of its
    /// body (when it is a DO block or a function whose body strata read).
    pub statements: Vec<Statement>,
    pub suppressions: Vec<Suppression>,
    /// The file starts with `-- strata: no-transaction` (or goose's
    /// `-- +goose no transaction`): strata runs it outside a transaction.
    pub no_transaction: bool,
    /// Indices of the statements the parser did not understand, in order,
    /// so that keyword-level checks need not scan the whole file.
    pub unparsed: Vec<usize>,
    /// Indices of the statements that open or end a transaction, in order
    /// (see [`Statement::tx_control`]).
    pub tx_controls: Vec<usize>,
    /// SQL inside bodies that cannot be seen before run time.
    pub dynamic: Vec<body::DynamicSql>,
    /// Outside a workspace, the tool that wraps the file in a transaction
    /// (`goose`, `sqlx`, ...), when the check knows it; inside one, strata
    /// runs the file. For messages.
    pub runner: Option<&'static str>,
}

impl ParsedFile {
    /// The top-level statements with their indices: what a migrator runs
    /// (the statements of bodies run inside the statement that holds them).
    pub fn top_level(&self) -> impl Iterator<Item = (usize, &Statement)> {
        self.statements.iter().enumerate().filter(|(_, s)| s.body.is_none())
    }
    /// Top-level statements (those inside bodies are not counted).
    pub fn statement_count(&self) -> usize {
        self.statements.iter().filter(|s| s.body.is_none()).count()
    }
    /// Top-level statements strata understood (see [`Statement::understood`]).
    pub fn understood_count(&self) -> usize {
        self.statements.iter().filter(|s| s.body.is_none() && s.understood()).count()
    }
}

/// How much of a file a parse reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadScope {
    /// Everything, function bodies included: a file the check reports on.
    All,
    /// What the catalog replays, for a file replayed as history and not
    /// reported on: DO blocks (and what they run) but no function body (it
    /// runs when the function is called, and only the rules judge it), and
    /// top-level data statements (`INSERT`, `UPDATE`, `DELETE`, `MERGE`,
    /// `SELECT`, `WITH`, `VALUES`, `TABLE`, `COPY`) left unread: they
    /// change no schema, and their parse would be thrown away.
    History,
}

/// Whether a statement whose first word is `word` reads or writes rows
/// and changes no schema (a PL/pgSQL body's such statements, and history's,
/// are not read further).
pub(crate) fn starts_data_statement(word: &str) -> bool {
    ["SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "WITH", "VALUES", "TABLE", "COPY"]
        .iter()
        .any(|w| word.eq_ignore_ascii_case(w))
}

/// Whether the statement of `tokens` (its scan, in `masked`) is a data
/// statement ([`starts_data_statement`]); a query with `INTO` is not
/// (`SELECT ... INTO t` creates a table).
fn is_data_statement(masked: &str, tokens: &[postgres::ScanToken]) -> bool {
    let word = |t: &postgres::ScanToken| &masked[t.start..t.end];
    let Some(first) = tokens.iter().find(|t| !matches!(t.token, Tok::SqlComment | Tok::CComment)) else {
        return false;
    };
    let first = word(first);
    let query = ["SELECT", "WITH", "VALUES", "TABLE"].iter().any(|w| first.eq_ignore_ascii_case(w));
    starts_data_statement(first) && !(query && tokens.iter().any(|t| t.keyword && word(t).eq_ignore_ascii_case("INTO")))
}

/// Parses a whole file. `masked` is the text the scanner sees (see
/// [`mask_source`]); it has the same lines, columns and bytes as `source.text`.
pub fn parse_file(source: Arc<SourceFile>, masked: &str) -> ParsedFile {
    parse_file_with(source, masked, ReadScope::All)
}

/// [`parse_file`], reading what `scope` says.
pub fn parse_file_with(source: Arc<SourceFile>, masked: &str, scope: ReadScope) -> ParsedFile {
    let mut out = ParsedFile {
        no_transaction: suppress::has_no_transaction_header(&source.text),
        source,
        statements: Vec::new(),
        suppressions: Vec::new(),
        unparsed: Vec::new(),
        tx_controls: Vec::new(),
        dynamic: Vec::new(),
        runner: None,
    };
    let split = split::split(masked);
    let mut comments = split.comments.iter().peekable();
    let last = split.pieces.len().saturating_sub(1);
    for (n, piece) in split.pieces.iter().enumerate() {
        // Suppressions name the index the next top-level statement gets.
        while let Some(c) = comments.next_if(|c| c.next_statement <= n) {
            push_suppression(&mut out, masked, c.bytes.clone());
        }
        let rejected_tail = split.tail_error.as_ref().filter(|_| n == last);
        let stmt = match rejected_tail {
            Some(err) => {
                let words = words_of(masked, &split.tokens[piece.tokens.clone()]);
                let at = err.offset.unwrap_or(piece.bytes.start).max(piece.bytes.start);
                statement_at(
                    &out.source,
                    piece.bytes.clone(),
                    StatementKind::Unparsed(Unparsed {
                        message: err.message.clone(),
                        pos: out.source.position(at),
                        words,
                        postgres: Verdict::Rejected {
                            message: err.message.clone(),
                            pos: out.source.position(at),
                        },
                    }),
                )
            }
            None => {
                let tokens = &split.tokens[piece.tokens.clone()];
                if scope == ReadScope::History && is_data_statement(masked, tokens) {
                    statement_at(&out.source, piece.bytes.clone(), StatementKind::NotRead)
                } else {
                    parse_statement(&out.source, masked, piece.bytes.clone(), tokens)
                }
            }
        };
        let parent = out.statements.len();
        out.statements.push(stmt);
        body::read_bodies(&mut out, masked, parent, &split.tokens[piece.tokens.clone()], scope);
    }
    for c in comments {
        push_suppression(&mut out, masked, c.bytes.clone());
    }
    out.unparsed = (0..out.statements.len())
        .filter(|&i| out.statements[i].unparsed().is_some())
        .collect();
    out.tx_controls = (0..out.statements.len())
        .filter(|&i| out.statements[i].tx_control().is_some())
        .collect();
    out
}

fn push_suppression(out: &mut ParsedFile, masked: &str, bytes: Range<usize>) {
    let text = masked[bytes.clone()].strip_prefix("--").unwrap_or("");
    let at = out.source.position(bytes.start);
    if let Some(s) = suppress::parse_comment(text, at, out.statements.len(), true) {
        out.suppressions.push(s);
    }
}

/// The upper-cased unquoted words (keywords and identifiers) of a statement.
fn words_of(text: &str, tokens: &[postgres::ScanToken]) -> Vec<String> {
    use postgres::protobuf::Token as T;
    tokens
        .iter()
        .filter(|t| t.keyword || (t.token == T::Ident && !text[t.start..t.end].starts_with('"')))
        .map(|t| text[t.start..t.end].to_ascii_uppercase())
        .collect()
}

/// A statement over `bytes` (which end after its last character).
fn statement_at(source: &SourceFile, bytes: Range<usize>, kind: StatementKind) -> Statement {
    let start = source.position(bytes.start);
    let last_char = source.text[..bytes.end.max(bytes.start)]
        .char_indices()
        .next_back()
        .map_or(bytes.start, |(i, _)| i.max(bytes.start));
    let end = source.position(last_char);
    Statement {
        region: Region::new(start, end.max(start)),
        bytes,
        kind,
        body: None,
    }
}

/// Reads SQL that is not in the file as written (the string an `EXECUTE`
/// runs, built by `format()` or concatenation): as [`parse_statement`], but
/// the tree carries no spans, since they would point into the string. Rules
/// then place their findings at the statement, which the caller positions
/// where the string starts.
pub(crate) fn parse_detached(source: &SourceFile, sql: &str, tokens: &[postgres::ScanToken]) -> StatementKind {
    read_statement(source, sql, 0..sql.len(), tokens, false).kind
}

/// sqlparser's tokens with empty spans: for text that is not the file's
/// (rules then place findings at the statement, and offer no edit).
fn without_spans(mut tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    for t in &mut tokens {
        t.span = sqlparser::tokenizer::Span::empty();
    }
    tokens
}

/// Parses the statement at `bytes` of `masked`: sqlparser first, then
/// PostgreSQL's grammar for what sqlparser rejects.
pub(crate) fn parse_statement(source: &SourceFile, masked: &str, bytes: Range<usize>, tokens: &[postgres::ScanToken]) -> Statement {
    read_statement(source, masked, bytes, tokens, true)
}

/// [`parse_statement`]; without `spans`, sqlparser's tree carries none
/// (PostgreSQL's reading of what sqlparser rejects never has any).
fn read_statement(source: &SourceFile, masked: &str, bytes: Range<usize>, tokens: &[postgres::ScanToken], spans: bool) -> Statement {
    let text = &masked[bytes.clone()];
    let start = source.position(bytes.start);
    let mut converted = lex::sqlparser_tokens(masked, bytes.clone(), tokens, start);
    if !spans {
        converted = converted.or_else(|| sqlparser_tokenize(text, start).ok()).map(without_spans);
    }
    let kind = match sqlparser_parse(text, start, converted) {
        Ok(stmt) => StatementKind::Parsed(stmt),
        Err((message, pos)) => match postgres_reading(source, text, bytes.start) {
            Reading::Reread(stmt) => StatementKind::Parsed(stmt),
            Reading::Verdict(postgres) => StatementKind::Unparsed(Unparsed {
                message,
                pos,
                words: words_of(masked, tokens),
                postgres,
            }),
        },
    };
    statement_at(source, bytes, kind)
}

enum Reading {
    Verdict(Verdict),
    /// sqlparser's tree of PostgreSQL's own rendering of the statement.
    Reread(Box<ast::Statement>),
}

/// PostgreSQL's reading of a statement sqlparser rejected. A statement
/// PostgreSQL accepts and [`model`] does not read is rendered back to SQL by
/// PostgreSQL's deparser (libpg_query), which writes every construct in one
/// canonical spelling, and that text is given to sqlparser: a `CREATE TYPE
/// ... AS ENUM ('a'\n'b')` (two string pieces PostgreSQL joins), a column
/// default sqlparser cannot read in its written form, ... become trees the
/// catalog and the rules read. The tree's spans are empty (they would point
/// into the rendered text, not the file): rules place their findings at the
/// statement and offer no edit that needs a span.
fn postgres_reading(source: &SourceFile, text: &str, at: usize) -> Reading {
    let tree = match postgres::parse(text) {
        Ok(tree) => tree,
        Err(e) => {
            return Reading::Verdict(Verdict::Rejected {
                message: e.message,
                pos: source.position(at + e.offset.unwrap_or(0)),
            })
        }
    };
    match model::read(&tree, text) {
        Verdict::Accepted(node) => match reread(&tree) {
            Some(stmt) => Reading::Reread(stmt),
            None => Reading::Verdict(Verdict::Accepted(node)),
        },
        Verdict::Modeled(mut m) => {
            if let Model::CreateTableLike { rest, .. } = m.as_mut() {
                *rest = without_like(&tree);
            }
            Reading::Verdict(Verdict::Modeled(m))
        }
        other => Reading::Verdict(other),
    }
}

/// sqlparser's tree of a `CREATE TABLE ... (LIKE source ..., ...)` without
/// its `LIKE` clauses (PostgreSQL's deparse of what is left, as
/// [`reread`]), its `like` naming the first source: the table's name, its
/// own columns and constraints for the rules ([`Model::CreateTableLike`]).
fn without_like(tree: &postgres::protobuf::ParseResult) -> Option<Box<ast::Statement>> {
    use postgres::protobuf::node::Node as N;
    let mut stripped = tree.clone();
    let Some(N::CreateStmt(create)) = stripped
        .stmts
        .first_mut()
        .and_then(|s| s.stmt.as_mut())
        .and_then(|n| n.node.as_mut())
    else {
        return None;
    };
    let mut first = None;
    create.table_elts.retain(|e| match &e.node {
        Some(N::TableLikeClause(l)) => {
            if first.is_none() {
                first = l.relation.as_ref().map(|r| (model::range_var(r), l.options));
            }
            false
        }
        _ => true,
    });
    let (source, options) = first?;
    let mut stmt = reread(&stripped)?;
    let ast::Statement::CreateTable(ct) = stmt.as_mut() else {
        return None;
    };
    ct.like = Some(ast::CreateTableLikeKind::Parenthesized(ast::CreateTableLike {
        name: ast::ObjectName::from(source.into_iter().map(|part| ast::Ident::with_quote('"', part)).collect::<Vec<_>>()),
        defaults: (options & model::like::DEFAULTS != 0).then_some(ast::CreateTableLikeDefaults::Including),
    }));
    Some(stmt)
}

/// sqlparser's tree of PostgreSQL's deparse of `tree` (one statement), with
/// empty spans; `None` when it cannot be had. When sqlparser cannot read the
/// deparse either, it is tried once more without the clauses that no rule
/// and nothing in the catalog judges ([`strip_unjudged`]).
fn reread(tree: &postgres::protobuf::ParseResult) -> Option<Box<ast::Statement>> {
    if tree.stmts.len() != 1 {
        return None;
    }
    reread_as_is(tree).or_else(|| {
        let mut stripped = tree.clone();
        strip_unjudged(&mut stripped).then(|| reread_as_is(&stripped)).flatten()
    })
}

fn reread_as_is(tree: &postgres::protobuf::ParseResult) -> Option<Box<ast::Statement>> {
    use postgres::protobuf::node::Node as N;
    let sql = match tree.stmts.first().and_then(|s| s.stmt.as_ref()).and_then(|n| n.node.as_ref()) {
        // The deparser writes `SCHEMA s` without the `WITH` sqlparser needs;
        // the statement is short enough to write out here (what the catalog
        // keeps of it: the name and the schema).
        Some(N::CreateExtensionStmt(s)) => {
            let schema = s.options.iter().find_map(|o| match o.node.as_ref() {
                Some(N::DefElem(d)) if d.defname == "schema" => d.arg.as_deref().and_then(|a| match a.node.as_ref() {
                    Some(N::String(v)) => Some(v.sval.clone()),
                    _ => None,
                }),
                _ => None,
            });
            format!(
                "CREATE EXTENSION {}{}{}",
                if s.if_not_exists { "IF NOT EXISTS " } else { "" },
                quote_ident(&s.extname),
                schema.map(|sc| format!(" WITH SCHEMA {}", quote_ident(&sc))).unwrap_or_default()
            )
        }
        // libpg_query reports a node it cannot deparse as an error; a panic
        // in the binding is a statement left unread, never the tool down.
        _ => std::panic::catch_unwind(|| pg_query::deparse(tree, Default::default()))
            .ok()?
            .ok()?,
    };
    let tokens = without_spans(sqlparser_tokenize(&sql, Pos::new(1, 1)).ok()?);
    sqlparser_parse(&sql, Pos::new(1, 1), Some(tokens)).ok()
}

/// Removes from a `CREATE TABLE`, `CREATE INDEX`, `CREATE VIEW` or `CREATE
/// ... AS` what only
/// tunes storage or checks rows later and what sqlparser cannot read: storage
/// parameters of tables and indexes (`WITH (fillfactor = 70)`; a view's
/// options stay, `security_invoker` is judged), tablespaces, table access
/// methods, column compression and storage, `NO INHERIT`, the column list
/// of `ON DELETE SET NULL (...)`, identity sequence options, a view's
/// `WITH CHECK OPTION`, the `WITH NO DATA` of a materialized view or `CREATE TABLE AS` (a view's boolean
/// option named alone is written out as `= true` instead). Returns whether
/// anything was changed.
fn strip_unjudged(tree: &mut postgres::protobuf::ParseResult) -> bool {
    use postgres::protobuf::{node::Node as N, Node, ViewCheckOption};
    fn constraint(c: &mut postgres::protobuf::Constraint, changed: &mut bool) {
        *changed |= c.is_no_inherit || !c.fk_del_set_cols.is_empty() || !c.options.is_empty() || !c.indexspace.is_empty();
        c.is_no_inherit = false;
        c.fk_del_set_cols.clear();
        c.options.clear();
        c.indexspace.clear();
    }
    fn constraints(list: &mut [Node], changed: &mut bool) {
        for n in list {
            if let Some(N::Constraint(c)) = n.node.as_mut() {
                constraint(c, changed);
            }
        }
    }
    let Some(node) = tree.stmts.first_mut().and_then(|s| s.stmt.as_mut()).and_then(|n| n.node.as_mut()) else {
        return false;
    };
    let mut changed = false;
    match node {
        N::CreateStmt(s) => {
            changed |= !s.options.is_empty() || !s.tablespacename.is_empty() || !s.access_method.is_empty();
            s.options.clear();
            s.tablespacename.clear();
            s.access_method.clear();
            constraints(&mut s.constraints, &mut changed);
            for e in &mut s.table_elts {
                match e.node.as_mut() {
                    Some(N::ColumnDef(c)) => {
                        changed |= !c.compression.is_empty() || !c.storage_name.is_empty();
                        c.compression.clear();
                        c.storage_name.clear();
                        c.storage.clear();
                        constraints(&mut c.constraints, &mut changed);
                    }
                    Some(N::Constraint(c)) => constraint(c, &mut changed),
                    _ => {}
                }
            }
        }
        N::IndexStmt(s) => {
            changed |= !s.options.is_empty() || !s.table_space.is_empty();
            s.options.clear();
            s.table_space.clear();
        }
        N::ViewStmt(s) => {
            let none = ViewCheckOption::NoCheckOption as i32;
            changed |= s.with_check_option != none;
            s.with_check_option = none;
            // A boolean option named alone is true (`WITH (security_barrier)`),
            // which sqlparser reads only written out.
            for o in &mut s.options {
                if let Some(N::DefElem(d)) = o.node.as_mut() {
                    if d.arg.is_none() {
                        // A String, which the deparser writes as the keyword
                        // `true` (it takes no Boolean node there).
                        d.arg = Some(Box::new(Node {
                            node: Some(N::String(postgres::protobuf::String { sval: "true".to_string() })),
                        }));
                        changed = true;
                    }
                }
            }
        }
        // `WITH NO DATA`: the materialized view or table is made empty.
        N::CreateTableAsStmt(s) => {
            if let Some(into) = s.into.as_mut() {
                changed |= into.skip_data || !into.options.is_empty() || !into.table_space_name.is_empty();
                into.skip_data = false;
                into.options.clear();
                into.table_space_name.clear();
            }
        }
        _ => {}
    }
    changed
}

/// Parses one statement with sqlparser; spans are shifted so that they
/// point into the file (the statement starts at `start`). `converted` are
/// its tokens made from PostgreSQL's scan ([`lex`]); without them the text
/// is tokenized by sqlparser.
///
/// The statement is boxed as it leaves the parser: sqlparser's `Statement`
/// is 3.4 KB, and every move of it through the results below was a copy of
/// that size (1.6% of a check's instructions on the corpora).
fn sqlparser_parse(text: &str, start: Pos, converted: Option<Vec<TokenWithSpan>>) -> Result<Box<ast::Statement>, (String, Pos)> {
    let dialect = PostgreSqlDialect {};
    let mut tokens = match converted {
        Some(tokens) => tokens,
        None => sqlparser_tokenize(text, start).map_err(|message| (message, start))?,
    };
    let virtual_columns = mark_virtual_generated(&mut tokens);
    // sqlparser must never take the tool down: a panic inside it counts as
    // a statement it rejected.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut parser = Parser::new(&dialect).with_tokens_with_locations(tokens);
        let parsed = parser.parse_statement().map(Box::new).and_then(|mut stmt| {
            if virtual_columns.iter().any(|v| *v) && !restore_virtual_generated(&mut stmt, &virtual_columns) {
                return Err(sqlparser::parser::ParserError::ParserError(
                    "a generated column strata could not place".to_string(),
                ));
            }
            Ok(stmt)
        });
        let trailing = parser.peek_token();
        match parsed {
            Ok(stmt) if trailing.token == Token::EOF => Ok(stmt),
            Ok(_) => Err((
                format!("unexpected {} after the end of the statement", trailing.token),
                pos_of(&trailing),
            )),
            Err(e) => Err((strip_location(&e.to_string()), pos_of(parser.get_current_token()))),
        }
    }));
    match result {
        Ok(Ok(stmt)) => Ok(stmt),
        Ok(Err((message, pos))) => Err((message, if pos.line == 0 { start } else { pos })),
        Err(_) => Err(("the SQL parser failed on this statement".to_string(), start)),
    }
}

/// sqlparser reads PostgreSQL's generated columns only with `STORED`, but
/// PostgreSQL 18 also has virtual ones: `GENERATED ALWAYS AS (expr)` with
/// `VIRTUAL` or with no keyword. The parser is handed `STORED` in their place
/// (a `STORED` word over the `VIRTUAL`, or at the closing parenthesis), and
/// [`restore_virtual_generated`] marks the columns virtual again. Returns,
/// for every `GENERATED ALWAYS AS (...)` in order, whether it is virtual.
fn mark_virtual_generated(tokens: &mut Vec<TokenWithSpan>) -> Vec<bool> {
    use sqlparser::keywords::Keyword;
    // Keywords are looked up once, when the tokens are made: compare those.
    let is = |t: Option<&TokenWithSpan>, kw: Keyword| matches!(t.map(|t| &t.token), Some(Token::Word(w)) if w.keyword == kw);

    let mut found = Vec::new();
    let mut i = 0;
    while i + 3 < tokens.len() {
        if !(is(tokens.get(i), Keyword::GENERATED)
            && is(tokens.get(i + 1), Keyword::ALWAYS)
            && is(tokens.get(i + 2), Keyword::AS)
            && tokens[i + 3].token == Token::LParen)
        {
            i += 1;
            continue;
        }
        let mut depth = 0;
        let mut close = None;
        for (j, t) in tokens.iter().enumerate().skip(i + 3) {
            match t.token {
                Token::LParen => depth += 1,
                Token::RParen => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(j);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(close) = close else { break };
        let next = tokens.get(close + 1);
        let stored_word = |span| TokenWithSpan::new(Token::make_keyword("STORED"), span);
        if is(next, Keyword::STORED) {
            found.push(false);
        } else if is(next, Keyword::VIRTUAL) {
            tokens[close + 1] = stored_word(tokens[close + 1].span);
            found.push(true);
        } else {
            let span = tokens[close].span;
            tokens.insert(close + 1, stored_word(span));
            found.push(true);
        }
        i = close + 2;
    }
    found
}

/// Marks virtual the generated columns [`mark_virtual_generated`] handed to
/// sqlparser as `STORED`. False when the statement's generated columns do
/// not line up with the ones found in its tokens.
fn restore_virtual_generated(stmt: &mut ast::Statement, virtual_columns: &[bool]) -> bool {
    let mut columns: Vec<&mut ast::ColumnDef> = match stmt {
        ast::Statement::CreateTable(ct) => ct.columns.iter_mut().collect(),
        ast::Statement::AlterTable(at) => at
            .operations
            .iter_mut()
            .filter_map(|op| match op {
                ast::AlterTableOperation::AddColumn { column_def, .. } => Some(column_def),
                _ => None,
            })
            .collect(),
        _ => return false,
    };
    let mut generated = columns
        .iter_mut()
        .flat_map(|c| c.options.iter_mut())
        .filter_map(|o| match &mut o.option {
            ast::ColumnOption::Generated {
                generation_expr: Some(_),
                generated_as,
                generation_expr_mode,
                ..
            } => Some((generated_as, generation_expr_mode)),
            _ => None,
        });
    for &is_virtual in virtual_columns {
        let Some((generated_as, mode)) = generated.next() else {
            return false;
        };
        if is_virtual {
            *generated_as = ast::GeneratedAs::Always;
            *mode = Some(ast::GeneratedExpressionMode::Virtual);
        }
    }
    generated.next().is_none()
}

/// sqlparser's tokens of `text` (no whitespace), placed at `start`.
pub(crate) fn sqlparser_tokenize(text: &str, start: Pos) -> Result<Vec<TokenWithSpan>, String> {
    let shift = |l: Location| -> Location {
        if l.line == 0 {
            return l;
        }
        let column = if l.line == 1 { l.column + start.col as u64 - 1 } else { l.column };
        Location::new(l.line + start.line as u64 - 1, column)
    };
    let mut tokens = Vec::new();
    Tokenizer::new(&PostgreSqlDialect {}, text)
        .tokenize_with_location_into_buf_with_mapper(&mut tokens, |mut t| {
            t.span.start = shift(t.span.start);
            t.span.end = shift(t.span.end);
            t
        })
        .map_err(|e| format!("tokenizer: {}", e.message))?;
    tokens.retain(|t| !matches!(t.token, Token::Whitespace(_)));
    Ok(tokens)
}

/// Checks that the tokens made from PostgreSQL's scan are those sqlparser's
/// tokenizer makes, spans included, for every statement of `text` (as
/// [`parse_file`] splits it). Returns how many statements were converted
/// and how many were left to sqlparser's tokenizer; `Err` names the first
/// statement where the two differ. For the tests and the corpus suite.
pub fn check_conversion(text: &str) -> Result<(usize, usize), String> {
    let masked = mask_source(text, None);
    let source = SourceFile::new(String::new(), text.to_string());
    let split = split::split(&masked);
    let (mut converted, mut left) = (0, 0);
    for piece in &split.pieces {
        let start = source.position(piece.bytes.start);
        let Some(got) = lex::sqlparser_tokens(&masked, piece.bytes.clone(), &split.tokens[piece.tokens.clone()], start) else {
            left += 1;
            continue;
        };
        let Ok(want) = sqlparser_tokenize(&masked[piece.bytes.clone()], start) else {
            return Err(format!("line {}: sqlparser's tokenizer rejects what was converted", start.line));
        };
        let same = |i: usize| got.get(i).map(|g| (&g.token, g.span)) == want.get(i).map(|w| (&w.token, w.span));
        if let Some(i) = (0..got.len().max(want.len())).find(|&i| !same(i)) {
            return Err(format!(
                "line {}: converted tokens differ from sqlparser's at token {i}: {:?} vs {:?}",
                start.line,
                got.get(i),
                want.get(i),
            ));
        }
        converted += 1;
    }
    Ok((converted, left))
}

fn pos_of(t: &TokenWithSpan) -> Pos {
    Pos::new(t.span.start.line as u32, t.span.start.column as u32)
}

/// sqlparser appends " at Line: L, Column: C" to messages; we report the
/// position separately.
fn strip_location(msg: &str) -> String {
    let msg = msg.strip_prefix("sql parser error: ").unwrap_or(msg);
    match msg.find(" at Line: ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// An identifier as SQL text: bare when PostgreSQL would read it back as
/// written (lower case, digits, `_`), else double-quoted.
pub fn quote_ident(s: &str) -> String {
    let plain = s.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

/// Parses SQL text that is not a file on disk (tests, fixes).
pub fn parse_text(path: &str, text: &str) -> ParsedFile {
    let source = Arc::new(SourceFile::new(path.to_string(), text.to_string()));
    let masked = mask_source(text, None);
    parse_file(source, &masked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(f: &ParsedFile) -> Vec<bool> {
        top(f).iter().map(|s| s.ast().is_some()).collect()
    }

    fn top(f: &ParsedFile) -> Vec<&Statement> {
        f.statements.iter().filter(|s| s.body.is_none()).collect()
    }

    #[test]
    fn splits_on_top_level_semicolons_only() {
        let sql = "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; SELECT 2; $$ LANGUAGE sql;\n\
                   SELECT E'a;\\'b';\n/* nested /* ; */ still ; comment */ SELECT 3;";
        let f = parse_text("t.sql", sql);
        assert_eq!(top(&f).len(), 3, "{:?}", f.statements);
        assert_eq!(kinds(&f), vec![true, true, true]);
        assert_eq!(top(&f)[2].region.start, Pos::new(3, 38));
        // The function's body follows it, positioned inside the dollar quotes.
        assert_eq!(f.statements[1].body.map(|b| b.parent), Some(0));
        assert_eq!(f.statements[1].region.start, Pos::new(1, 39));
    }

    #[test]
    fn begin_atomic_body_is_one_statement() {
        let sql = "CREATE FUNCTION g(a int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN a > 0 THEN 1 ELSE 2 END; SELECT 3; END;\nSELECT 4;";
        let f = parse_text("t.sql", sql);
        assert_eq!(top(&f).len(), 2);
        assert_eq!(top(&f)[1].region.start.line, 2);
    }

    #[test]
    fn syntax_error_between_valid_statements_keeps_the_others() {
        let sql = "CREATE TABLE a (id int);\nCREATE TABLEX b (id int);\nCREATE TABLE c (id int);\n";
        let f = parse_text("t.sql", sql);
        assert_eq!(kinds(&f), vec![true, false, true]);
        let u = f.statements[1].unparsed().unwrap();
        assert_eq!(u.pos.line, 2);
        assert!(u.words.contains(&"TABLEX".to_string()));
    }

    #[test]
    fn unterminated_string_makes_the_tail_rejected() {
        let sql = "SELECT 1;\nSELECT 'oops;\nSELECT 2;\n";
        let f = parse_text("t.sql", sql);
        assert_eq!(f.statements.len(), 2);
        assert!(f.statements[0].ast().is_some());
        let u = f.statements[1].unparsed().unwrap();
        assert!(
            matches!(&u.postgres, Verdict::Rejected { message, pos } if message.starts_with("unterminated quoted string") && *pos == Pos::new(2, 8)),
            "{u:?}"
        );
        assert_eq!(f.statements[1].region.start.line, 2);
    }

    #[test]
    fn byte_ranges_end_on_a_character_boundary() {
        let f = parse_text("t.sql", "ALTER TABLE orders RENAME TO commandes_€;\nSELECT 1;");
        assert_eq!(
            &f.source.text[f.statements[0].bytes.clone()],
            "ALTER TABLE orders RENAME TO commandes_€"
        );
    }

    /// Every prefix of real migrations (cut anywhere: inside strings,
    /// dollar quotes, comments, multibyte characters) parses without a
    /// panic, and every statement's span and byte range stay inside the text.
    #[test]
    fn truncated_files_never_panic() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/core");
        let mut text = String::new();
        for e in std::fs::read_dir(dir).unwrap() {
            text.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap());
        }
        text.push_str("\nCREATE FUNCTION f() RETURNS text AS $body$ SELECT 'é;€' $body$ LANGUAGE sql; /* é */ SELECT E'\\x';\n");
        let mut cut = 0;
        while cut < text.len() {
            if text.is_char_boundary(cut) {
                let f = parse_text("t.sql", &text[..cut]);
                for st in &f.statements {
                    assert!(st.bytes.start <= st.bytes.end && st.bytes.end <= cut, "{cut}: {:?}", st.bytes);
                    assert!(st.region.start.line as usize <= f.source.line_count());
                }
            }
            cut += 53;
        }
    }

    /// PostgreSQL 18's virtual generated columns (no keyword, or VIRTUAL)
    /// are read by sqlparser too, and stay virtual; STORED stays stored.
    #[test]
    fn virtual_generated_columns_parse_and_stay_virtual() {
        let f = parse_text(
            "t.sql",
            "CREATE TABLE t (a int, b int GENERATED ALWAYS AS (a * (a + 1)), c int GENERATED ALWAYS AS (a) STORED, d int GENERATED ALWAYS AS (a - 1) VIRTUAL NOT NULL);\n\
             ALTER TABLE t ADD COLUMN e int GENERATED ALWAYS AS (a + 2);",
        );
        let modes = |s: &Statement| -> Vec<String> {
            let text = s.ast().map(|a| a.to_string()).unwrap_or_default();
            text.match_indices(") VIRTUAL")
                .map(|_| "v".to_string())
                .chain(text.match_indices(") STORED").map(|_| "s".to_string()))
                .collect()
        };
        assert_eq!(modes(&f.statements[0]), vec!["v", "v", "s"], "{:?}", f.statements[0]);
        assert!(f.statements[0]
            .ast()
            .unwrap()
            .to_string()
            .contains("d INT GENERATED ALWAYS AS (a - 1) VIRTUAL NOT NULL"));
        assert_eq!(modes(&f.statements[1]), vec!["v"]);
        // Identity columns are not generated expressions.
        let f = parse_text(
            "t.sql",
            "CREATE TABLE u (id bigint GENERATED ALWAYS AS IDENTITY, x int GENERATED ALWAYS AS (id));",
        );
        assert!(f.statements[0].ast().is_some(), "{:?}", f.statements[0]);
    }

    /// What sqlparser cannot read as written but PostgreSQL accepts is read
    /// from PostgreSQL's deparse: string pieces joined, storage clauses
    /// left out; the tree's spans are empty (they would point elsewhere).
    #[test]
    fn statements_sqlparser_rejects_are_reread_from_postgres_deparse() {
        let f = parse_text(
            "t.sql",
            "CREATE TYPE mood AS ENUM ('hap'\n  'py', 'ok');\n\
             CREATE TABLE t (id bigint PRIMARY KEY, b text COMPRESSION lz4) WITH (fillfactor = 70) TABLESPACE pg_default;\n\
             CREATE VIEW v AS SELECT id FROM t WITH LOCAL CHECK OPTION;\n\
             CREATE INDEX i ON t (b) WITH (deduplicate_items = off);\n\
             CREATE TABLE l (LIKE t INCLUDING ALL);\n\
             CREATE TABLE o OF some_type;\n",
        );
        let top = top(&f);
        assert_eq!(top.len(), 6);
        match top[0].ast() {
            Some(ast::Statement::CreateType {
                representation: Some(ast::UserDefinedTypeRepresentation::Enum { labels }),
                ..
            }) => {
                let labels: Vec<String> = labels.iter().map(|l| l.value.clone()).collect();
                assert_eq!(labels, ["happy", "ok"]);
            }
            other => panic!("{other:?}"),
        }
        match top[1].ast() {
            Some(ast::Statement::CreateTable(ct)) => {
                assert_eq!(ct.name.to_string(), "t");
                assert_eq!(ct.columns.len(), 2);
                assert_eq!(ct.columns[0].name.span.start.line, 0, "spans are empty");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(top[2].ast(), Some(ast::Statement::CreateView(_))), "{:?}", top[2].kind);
        assert!(matches!(top[3].ast(), Some(ast::Statement::CreateIndex(_))), "{:?}", top[3].kind);
        // Neither as written nor as PostgreSQL writes it: modeled from
        // PostgreSQL's tree.
        match top[4].model() {
            Some(Model::CreateTableLike { table, sources, .. }) => {
                assert_eq!(table, &["l"]);
                assert_eq!(sources, &[(vec!["t".to_string()], 0x7FFF_FFFF)]);
            }
            other => panic!("{other:?}"),
        }
        // Still unmodeled: `unparsed-statement`.
        assert!(matches!(
            top[5].unparsed().map(|u| &u.postgres),
            Some(Verdict::Accepted(node)) if node == "CreateStmt"
        ));
        assert_eq!(f.understood_count(), 5);
    }

    /// Valid statements sqlparser does not read as PostgreSQL writes them
    /// either: an extension `SCHEMA s` without `WITH` (and `VERSION`,
    /// `CASCADE`), a view's boolean option named alone, `WITH NO DATA`;
    /// and objects the catalog does not keep, modeled as untracked schema
    /// changes or as changing nothing strata tracks.
    #[test]
    fn more_valid_statements_are_understood() {
        let f = parse_text(
            "t.sql",
            "CREATE EXTENSION IF NOT EXISTS \"uuid-ossp\" SCHEMA extensions VERSION '1.1' CASCADE;\n\
             CREATE VIEW v WITH (security_barrier) AS SELECT 1 AS a;\n\
             CREATE MATERIALIZED VIEW mv AS SELECT 1 AS a WITH NO DATA;\n\
             CREATE AGGREGATE my_sum (int) (SFUNC = int4pl, STYPE = int);\n\
             CREATE CAST (text AS int) WITH INOUT AS ASSIGNMENT;\n\
             SET CONSTRAINTS ALL DEFERRED;\n\
             REASSIGN OWNED BY old_role TO new_role;\n\
             DROP OWNED BY old_role;\n\
             ALTER EXTENSION timescaledb DROP TABLE _timescaledb_catalog.chunk;\n",
        );
        let top = top(&f);
        match top[0].ast() {
            Some(ast::Statement::CreateExtension(ce)) => {
                assert_eq!(ce.name.value, "uuid-ossp");
                assert!(ce.if_not_exists);
                assert_eq!(ce.schema.as_ref().map(|s| s.value.as_str()), Some("extensions"));
            }
            other => panic!("{other:?}"),
        }
        match top[1].ast() {
            Some(ast::Statement::CreateView(cv)) => assert!(cv.options.to_string().contains("security_barrier = true"), "{}", cv.options),
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(top[2].ast(), Some(ast::Statement::CreateView(cv)) if cv.materialized),
            "{:?}",
            top[2].kind
        );
        assert!(
            matches!(top[3].model(), Some(Model::Untracked("CREATE AGGREGATE"))),
            "{:?}",
            top[3].kind
        );
        assert!(matches!(top[4].model(), Some(Model::Untracked("CREATE CAST"))), "{:?}", top[4].kind);
        assert!(
            matches!(top[5].model(), Some(Model::NoSchemaEffect("ConstraintsSetStmt"))),
            "{:?}",
            top[5].kind
        );
        assert!(
            matches!(top[6].model(), Some(Model::NoSchemaEffect("ReassignOwnedStmt"))),
            "{:?}",
            top[6].kind
        );
        // DROP OWNED drops what the role owns: what that is, strata cannot say.
        assert!(matches!(
            top[7].unparsed().map(|u| &u.postgres),
            Some(Verdict::Accepted(node)) if node == "DropOwnedStmt"
        ));
        assert!(
            matches!(top[8].model(), Some(Model::NoSchemaEffect("AlterExtensionContentsStmt"))),
            "{:?}",
            top[8].kind
        );
        assert_eq!(f.understood_count(), 8);
    }

    /// History that is replayed and not reported on reads what runs with
    /// the migration (a DO block, and a function it creates, as a
    /// statement) but no function body.
    #[test]
    fn history_reads_do_blocks_but_not_function_bodies() {
        let text = "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN CREATE TABLE inner_t (id int); END $$;\n\
                    DO $$ BEGIN CREATE TABLE made (id int); EXECUTE 'CREATE FUNCTION g() RETURNS void LANGUAGE plpgsql AS $b$ BEGIN DROP TABLE made; END $b$'; END $$;\n";
        let source = || Arc::new(SourceFile::new("t.sql".to_string(), text.to_string()));
        let bodies = |f: &ParsedFile| -> Vec<(BodyKind, String)> {
            f.statements
                .iter()
                .filter_map(|s| s.body.map(|b| (b.kind, s.ast().map(|a| a.to_string()).unwrap_or_default())))
                .collect()
        };
        let all = bodies(&parse_file(source(), text));
        let history = bodies(&parse_file_with(source(), text, ReadScope::History));
        assert!(
            all.iter().any(|(k, s)| *k == BodyKind::Function && s.contains("inner_t")),
            "{all:?}"
        );
        assert!(
            all.iter().any(|(k, s)| *k == BodyKind::Function && s.contains("DROP TABLE made")),
            "{all:?}"
        );
        assert!(history.iter().all(|(k, _)| *k == BodyKind::Do), "{history:?}");
        assert!(history.iter().any(|(_, s)| s.contains("CREATE TABLE made")), "{history:?}");
        assert!(history.iter().any(|(_, s)| s.starts_with("CREATE FUNCTION g")), "{history:?}");
        // Data statements of history are not read; what changes the schema is.
        let text = "/* seed */ INSERT INTO made VALUES (1);\nCREATE TABLE t (id int);\nWITH x AS (SELECT 1) UPDATE t SET id = 2;\nSET search_path = app;\nSELECT id INTO copied FROM t;\n";
        let source = Arc::new(SourceFile::new("t.sql".to_string(), text.to_string()));
        let history = parse_file_with(source.clone(), text, ReadScope::History);
        let kinds: Vec<bool> = history
            .statements
            .iter()
            .map(|s| matches!(s.kind, StatementKind::NotRead))
            .collect();
        // `SELECT ... INTO` creates a table: read.
        assert_eq!(kinds, [true, false, true, false, false]);
        assert!(history.statements[1].ast().is_some() && history.statements[3].ast().is_some());
        assert!(parse_file(source, text).statements.iter().all(|s| s.ast().is_some()));
    }

    #[test]
    fn spans_count_characters_not_bytes() {
        let f = parse_text("t.sql", "SELECT 'é';   CREATE TABLE t (x int);");
        assert_eq!(f.statements[1].region.start, Pos::new(1, 15));
        assert_eq!(&f.source.text[f.statements[1].bytes.clone()], "CREATE TABLE t (x int)");
    }
}
