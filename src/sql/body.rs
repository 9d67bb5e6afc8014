//! The statements inside DO blocks and function bodies.
//!
//! A DO block's or PL/pgSQL function's body is read by PostgreSQL's PL/pgSQL
//! parser; its static SQL statements, and the SQL of an `EXECUTE` whose
//! string is constant (a literal, `||` of literals, `format()` or
//! `quote_ident()` of literals), become statements of the file right after
//! the statement that holds them, positioned inside the body. A `LANGUAGE
//! sql` body (`AS $$...$$` or `BEGIN ATOMIC ... END`) is split like a file.
//! What cannot be known before run time (an `EXECUTE` of a computed string)
//! is recorded as [`DynamicSql`].

use std::ops::Range;

use sqlparser::ast;

use super::postgres::{self, protobuf::Token, ScanToken};
use super::{parse_statement, quote_ident, split, Body, BodyKind, ParsedFile, Statement, StatementKind, Unparsed};
use crate::diag::{Region, SourceFile};

/// Bodies inside bodies (an EXECUTE that creates a function) are read this deep.
const MAX_DEPTH: usize = 3;

/// SQL inside a body that strata cannot see statically.
#[derive(Clone, Debug)]
pub struct DynamicSql {
    /// The statement holding the body.
    pub statement: usize,
    pub region: Region,
    pub what: String,
}

/// Reads the body of statement `index` (a DO block or a CREATE FUNCTION /
/// PROCEDURE), appending its statements after it. `tokens` are the
/// statement's tokens from the file's scan (byte ranges in `masked`).
pub(crate) fn read_bodies(out: &mut ParsedFile, masked: &str, index: usize, tokens: &[ScanToken], scope: super::ReadScope) {
    let at = Nesting {
        parent: index,
        inherited: None,
        depth: 0,
        scope,
    };
    read(out, masked, index, at, Some(tokens));
}

/// Where a statement that may hold a body sits.
#[derive(Clone, Copy)]
struct Nesting {
    /// The top-level statement the bodies belong to.
    parent: usize,
    /// The kind of the body the statement is in, if any.
    inherited: Option<BodyKind>,
    depth: usize,
    scope: super::ReadScope,
}

/// `tokens`: the statement's scan when the caller has it (the statements
/// of bodies are scanned here, only when they hold a body themselves).
fn read(out: &mut ParsedFile, masked: &str, index: usize, at: Nesting, tokens: Option<&[ScanToken]>) {
    let Nesting {
        parent,
        inherited,
        depth,
        scope,
    } = at;
    if depth > MAX_DEPTH {
        return;
    }
    let stmt = &out.statements[index];
    let Some(kind) = holder_kind(stmt) else { return };
    let body_kind = match inherited {
        Some(BodyKind::Function) => BodyKind::Function,
        _ => kind,
    };
    if body_kind == BodyKind::Function && scope == super::ReadScope::History {
        return;
    }
    let range = stmt.bytes.clone();
    // The text of a detached statement (from an EXECUTE string) is not in
    // the file: its bodies are not read.
    if stmt.body.is_some_and(|b| b.detached) || range.end > masked.len() {
        return;
    }
    let text = &masked[range.clone()];
    let scanned;
    let tokens = match tokens {
        Some(t) => t,
        None => {
            let Ok(t) = postgres::scan_at(masked, range.clone()) else { return };
            scanned = t;
            &scanned[..]
        }
    };
    let Some(found) = find_body(masked, tokens, kind) else { return };
    let body = Body {
        parent,
        kind: body_kind,
        detached: false,
    };
    let first_child = out.statements.len();
    match found.language.as_str() {
        "plpgsql" => {
            let Some(content) = found.content.clone() else {
                out.dynamic.push(DynamicSql {
                    statement: parent,
                    region: out.statements[index].region,
                    what: "a quoted body with escapes (use dollar quotes so strata can read it)".to_string(),
                });
                return;
            };
            plpgsql(out, masked, text, range.start, content, body);
        }
        "sql" => {
            let Some(content) = found.content.clone() else { return };
            sql_body(out, masked, content, body);
        }
        _ => return,
    }
    let added = out.statements.len();
    for child in first_child..added {
        let within = Nesting {
            inherited: Some(body_kind),
            depth: depth + 1,
            ..at
        };
        read(out, masked, child, within, None);
    }
}

/// Whether a statement holds a body strata reads: DO, or CREATE FUNCTION /
/// PROCEDURE.
fn holder_kind(stmt: &Statement) -> Option<BodyKind> {
    match &stmt.kind {
        StatementKind::Parsed(s) => match s.as_ref() {
            ast::Statement::CreateFunction(_) | ast::Statement::CreateProcedure { .. } => Some(BodyKind::Function),
            _ => None,
        },
        StatementKind::Unparsed(u) => {
            let w: Vec<&str> = u.words.iter().take(4).map(String::as_str).collect();
            match w.as_slice() {
                ["DO", ..] => Some(BodyKind::Do),
                ["CREATE", "FUNCTION" | "PROCEDURE", ..] | ["CREATE", "OR", "REPLACE", "FUNCTION" | "PROCEDURE"] => {
                    Some(BodyKind::Function)
                }
                _ => None,
            }
        }
        StatementKind::NotRead => None,
    }
}

struct Found {
    language: String,
    /// The body's text (bytes of the file): `None` when it is a quoted
    /// string whose text differs from the file (escapes).
    content: Option<Range<usize>>,
}

/// Finds the body of a DO or CREATE FUNCTION statement and its language
/// (`tokens` and the body's range are bytes of `text`).
fn find_body(text: &str, tokens: &[ScanToken], kind: BodyKind) -> Option<Found> {
    let tok = |i: usize| tokens.get(i).map(|t| t.token);
    let word = |t: &ScanToken| text[t.start..t.end].trim_matches(['\'', '"']).to_ascii_lowercase();
    let mut language = match kind {
        BodyKind::Do => "plpgsql".to_string(),
        BodyKind::Function => String::new(),
    };
    let mut content = None;
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        match t.token {
            Token::Language if i + 1 < tokens.len() => {
                language = word(&tokens[i + 1]);
                i += 1;
            }
            Token::Sconst if kind == BodyKind::Do && content.is_none() => content = Some(string_content(text, t)),
            Token::As if kind == BodyKind::Function && tok(i + 1) == Some(Token::Sconst) => {
                content = Some(string_content(text, &tokens[i + 1]));
                i += 1;
            }
            Token::BeginP if kind == BodyKind::Function && tok(i + 1) == Some(Token::Atomic) => {
                let end = tokens.iter().rposition(|t| t.token == Token::EndP)?;
                let from = tokens[i + 1].end;
                let to = tokens[end].start.max(from);
                language = "sql".to_string();
                content = Some(Some(from..to));
                break;
            }
            _ => {}
        }
        i += 1;
    }
    Some(Found {
        language,
        content: content?,
    })
}

/// The text of a string constant token (bytes of `text`), when it is
/// written verbatim: a dollar-quoted string, or a plain '...' string
/// without doubled quotes.
fn string_content(text: &str, t: &ScanToken) -> Option<Range<usize>> {
    let s = &text[t.start..t.end];
    if let Some(rest) = s.strip_prefix('$') {
        let tag_len = rest.find('$')? + 2;
        (s.len() >= 2 * tag_len).then(|| t.start + tag_len..t.end - tag_len)
    } else if s.starts_with('\'') && s.len() >= 2 && !s[1..s.len() - 1].contains('\'') {
        Some(t.start + 1..t.end - 1)
    } else {
        None
    }
}

/// Splits a SQL body at `content` (bytes of the file) into statements.
fn sql_body(out: &mut ParsedFile, masked: &str, content: Range<usize>, body: Body) {
    let split = split::split(&masked[content.clone()]);
    if split.tail_error.is_some() {
        return;
    }
    for piece in &split.pieces {
        let bytes = content.start + piece.bytes.start..content.start + piece.bytes.end;
        let tokens: Vec<ScanToken> = split.tokens[piece.tokens.clone()]
            .iter()
            .map(|t| ScanToken {
                start: t.start + content.start,
                end: t.end + content.start,
                ..*t
            })
            .collect();
        let mut stmt = parse_statement(&out.source, masked, bytes, &tokens);
        stmt.body = Some(body);
        out.statements.push(stmt);
    }
}

/// Reads a PL/pgSQL body with PostgreSQL's PL/pgSQL parser.
fn plpgsql(out: &mut ParsedFile, masked: &str, stmt_text: &str, stmt_start: usize, content: Range<usize>, body: Body) {
    let mut found = Vec::new();
    let mut parsed = postgres::parse_plpgsql(stmt_text, Collect(&mut found));
    // libpg_query's PL/pgSQL compiler resolves a type qualified by a schema
    // other than public or pg_catalog with a stub that fails (`RETURNS SETOF
    // pgmq.message_record`, `DECLARE r auth.users%ROWTYPE`), although
    // PostgreSQL reads such bodies: read it again with those types in
    // public, which changes no line of the body's statements.
    if parsed.as_ref().is_err_and(|e| e.message.contains("LookupExplicitNamespace")) {
        let declared = content.start.saturating_sub(stmt_start)..content.end.saturating_sub(stmt_start);
        if let Some(retry) = types_in_public(stmt_text, declared) {
            found.clear();
            parsed = postgres::parse_plpgsql(&retry, Collect(&mut found));
        }
    }
    match parsed {
        Ok(_) => {}
        // What PL/pgSQL's grammar itself rejects (an unknown condition name
        // in RAISE or EXCEPTION WHEN is one: the list is fixed), not what
        // needs a catalog libpg_query does not have.
        Err(e)
            if e.message.starts_with("syntax error")
                || e.message.starts_with("unterminated")
                || e.message.starts_with("unrecognized exception condition") =>
        {
            rejected_body(out, masked, content, body, e.message);
            return;
        }
        Err(e) => {
            out.dynamic.push(DynamicSql {
                statement: body.parent,
                region: Region::point(out.source.position(stmt_start)),
                what: format!("a body strata's PL/pgSQL reader (libpg_query) could not read ({})", e.message),
            });
            return;
        }
    }
    let text = &masked[content.clone()];
    let line_starts: Vec<usize> = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
    for item in found {
        // PL/pgSQL's parser has checked the syntax of every statement of
        // the body, and no rule judges what a function reads or writes.
        if matches!(item.kind, ItemKind::Static) && body.kind == BodyKind::Function && reads_or_writes_data(&item.text) {
            continue;
        }
        // PL/pgSQL counts lines from the line the body starts on.
        let line_at = line_starts.get(item.lineno.saturating_sub(1)).copied().unwrap_or(0).min(text.len());
        let located = text[line_at..].find(item.text.trim()).map(|i| content.start + line_at + i);
        match item.kind {
            ItemKind::Static => match located {
                Some(at) => {
                    let bytes = at..at + item.text.trim().len();
                    push_exact(out, masked, bytes, body);
                }
                None => push_detached(out, item.text.trim(), content.start + line_at, body),
            },
            ItemKind::Execute => {
                let at = located.unwrap_or(content.start + line_at);
                match constant_sql(item.text.trim()) {
                    Some(sql) => {
                        // A plain literal is verbatim in the file: exact positions.
                        let literal = item.text.trim();
                        let verbatim = literal.len() >= 2
                            && literal.starts_with('\'')
                            && literal.ends_with('\'')
                            && !literal[1..literal.len() - 1].contains('\'')
                            && located.is_some();
                        if verbatim {
                            sql_body(out, masked, at + 1..at + literal.len() - 1, body);
                        } else {
                            let pieces = split::split(&sql);
                            for p in &pieces.pieces {
                                push_detached(out, &sql[p.bytes.clone()], at, body);
                            }
                        }
                    }
                    None => out.dynamic.push(DynamicSql {
                        statement: body.parent,
                        region: Region::point(out.source.position(at)),
                        what: format!("EXECUTE of a computed string ({})", shorten(item.text.trim())),
                    }),
                }
            }
            ItemKind::Dynamic(what) => out.dynamic.push(DynamicSql {
                statement: body.parent,
                region: Region::point(out.source.position(located.unwrap_or(content.start + line_at))),
                what: what.to_string(),
            }),
        }
    }
}

/// `stmt` with the schema of every qualified name in its header (before the
/// body at `body`, bytes of `stmt`) and in the body's declarations (before
/// its first `BEGIN`) written as `public`: what libpg_query's PL/pgSQL
/// compiler can resolve. Lines are unchanged; `None` when nothing changes
/// or the text does not scan.
fn types_in_public(stmt: &str, body: Range<usize>) -> Option<String> {
    fn qualifiers(text: &str, tokens: &[ScanToken], until: impl Fn(&ScanToken) -> bool, out: &mut Vec<Range<usize>>, base: usize) {
        for w in tokens.windows(2) {
            if until(&w[0]) {
                break;
            }
            let name = &text[w[0].start..w[0].end];
            let qualifier = (w[0].token == Token::Ident || w[0].keyword)
                && w[1].token == Token::Ascii46
                && w[1].start == w[0].end
                && !name.eq_ignore_ascii_case("public")
                && !name.eq_ignore_ascii_case("pg_catalog");
            if qualifier {
                out.push(base + w[0].start..base + w[0].end);
            }
        }
    }
    let body_text = stmt.get(body.clone())?;
    let mut spans = Vec::new();
    let header = postgres::scan(stmt).ok()?;
    qualifiers(stmt, &header, |t| t.end > body.start, &mut spans, 0);
    let inner = postgres::scan(body_text).ok()?;
    qualifiers(
        body_text,
        &inner,
        |t| body_text[t.start..t.end].eq_ignore_ascii_case("begin"),
        &mut spans,
        body.start,
    );
    if spans.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(stmt.len() + 4 * spans.len());
    let mut at = 0;
    for span in spans {
        out.push_str(&stmt[at..span.start]);
        out.push_str("public");
        at = span.end;
    }
    out.push_str(&stmt[at..]);
    Some(out)
}

/// A body PL/pgSQL rejects. PostgreSQL gives no position for it, only the
/// token (`syntax error at or near "TABEL"`): the error is placed at the
/// first such token of the body, else at its end (`at end of input`), else
/// where the body starts.
fn rejected_body(out: &mut ParsedFile, masked: &str, content: Range<usize>, body: Body, message: String) {
    let text = &masked[content.clone()];
    // The token the message names: `at or near "x"`, or the condition of
    // `unrecognized exception condition "x"` (written as a name, quoted or not).
    let near = ["at or near \"", "condition \""]
        .iter()
        .find_map(|lead| message.split_once(lead))
        .and_then(|(_, rest)| rest.rsplit_once('"'))
        .map(|(tok, _)| tok.to_string());
    let offset = match &near {
        Some(tok) => postgres::scan(text)
            .ok()
            .and_then(|toks| {
                toks.into_iter().find(|t| {
                    let word = &text[t.start..t.end];
                    word.eq_ignore_ascii_case(tok) || word.strip_prefix('"').and_then(|w| w.strip_suffix('"')) == Some(tok.as_str())
                })
            })
            .map_or(0, |t| t.start),
        None if message.contains("end of input") => text.trim_end().len(),
        None => 0,
    };
    let first = text.len() - text.trim_start().len();
    let bytes = content.start + first..content.start + text.trim_end().len().max(first);
    let pos = out.source.position(content.start + offset);
    let mut stmt = super::statement_at(
        &out.source,
        bytes,
        StatementKind::Unparsed(Unparsed {
            message: message.clone(),
            pos,
            words: Vec::new(),
            postgres: super::Verdict::Rejected { message, pos },
        }),
    );
    stmt.body = Some(body);
    out.statements.push(stmt);
}

fn shorten(s: &str) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 60 {
        format!("{}...", one_line.chars().take(57).collect::<String>())
    } else {
        one_line
    }
}

fn push_exact(out: &mut ParsedFile, masked: &str, bytes: Range<usize>, body: Body) {
    let Ok(tokens) = postgres::scan_at(masked, bytes.clone()) else {
        return;
    };
    let mut stmt = parse_statement(&out.source, masked, bytes, &tokens);
    stmt.body = Some(body);
    out.statements.push(stmt);
}

/// A statement whose text is not verbatim in the file (an EXECUTE string
/// built from pieces): positioned at byte `at`, where its string starts.
fn push_detached(out: &mut ParsedFile, sql: &str, at: usize, body: Body) {
    let source = SourceFile::new(out.source.path.clone(), sql.to_string());
    let tokens = postgres::scan(sql).unwrap_or_default();
    let pos = out.source.position(at);
    let kind = match super::parse_detached(&source, sql, &tokens) {
        // The tree has no spans: the check positions findings of detached
        // statements at the statement.
        StatementKind::Parsed(s) => StatementKind::Parsed(s),
        StatementKind::NotRead => StatementKind::NotRead,
        StatementKind::Unparsed(u) => StatementKind::Unparsed(Unparsed {
            pos,
            postgres: match u.postgres {
                super::Verdict::Rejected { message, .. } => super::Verdict::Rejected { message, pos },
                other => other,
            },
            ..u
        }),
    };
    let end = at + sql.len().min(1);
    out.statements.push(Statement {
        region: Region::new(pos, pos),
        bytes: at..end.max(at),
        kind,
        body: Some(Body { detached: true, ..body }),
    });
}

enum ItemKind {
    Static,
    Execute,
    Dynamic(&'static str),
}

struct Item {
    kind: ItemKind,
    lineno: usize,
    text: String,
}

/// Whether a statement of a PL/pgSQL body only reads or writes rows: in a
/// function body such a statement is not read further (`SELECT ... INTO`
/// sets variables there).
fn reads_or_writes_data(sql: &str) -> bool {
    super::starts_data_statement(sql.trim_start().split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or(""))
}

/// Collects, in the order of the body, the SQL statements, EXECUTEs and
/// dynamic constructs of a PL/pgSQL tree as serde reads its JSON: only the
/// statements' expressions are kept (no JSON tree is built), and the
/// variables' declarations (`datums`) are skipped unread.
struct Collect<'a>(&'a mut Vec<Item>);

/// The keys of the PL/pgSQL tree that matter here.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    ExecSql,
    DynExecute,
    DynFors,
    ReturnQuery,
    Open,
    Datums,
    Lineno,
    Expr,
    Field(Field),
    Other,
}

/// The fields of a statement that hold the expression it runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    SqlStmt,
    Query,
    DynQuery,
}

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key of the PL/pgSQL tree")
            }
            fn visit_str<E: serde::de::Error>(self, k: &str) -> Result<Key, E> {
                Ok(match k {
                    "PLpgSQL_stmt_execsql" => Key::ExecSql,
                    "PLpgSQL_stmt_dynexecute" => Key::DynExecute,
                    "PLpgSQL_stmt_dynfors" => Key::DynFors,
                    "PLpgSQL_stmt_return_query" => Key::ReturnQuery,
                    "PLpgSQL_stmt_open" => Key::Open,
                    "datums" => Key::Datums,
                    "lineno" => Key::Lineno,
                    "PLpgSQL_expr" => Key::Expr,
                    "sqlstmt" => Key::Field(Field::SqlStmt),
                    "query" => Key::Field(Field::Query),
                    "dynquery" => Key::Field(Field::DynQuery),
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Collect<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Collect<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a PL/pgSQL tree")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Collect(self.0))?.is_some() {}
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Datums => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
                Key::ExecSql | Key::DynExecute | Key::DynFors | Key::ReturnQuery | Key::Open => {
                    let mut inner = Vec::new();
                    let s = map.next_value_seed(Stmt(&mut inner))?;
                    let pick = |f: Field| s.exprs.iter().find(|(g, _)| *g == f).map(|(_, q)| q.clone());
                    let item = |kind, text: Option<String>| Item {
                        kind,
                        lineno: s.lineno,
                        text: text.unwrap_or_default(),
                    };
                    let own = match key {
                        Key::ExecSql => pick(Field::SqlStmt).map(|t| item(ItemKind::Static, Some(t))),
                        Key::DynExecute => pick(Field::Query).map(|t| item(ItemKind::Execute, Some(t))),
                        Key::DynFors => Some(item(
                            ItemKind::Dynamic("FOR ... IN EXECUTE of a computed string"),
                            pick(Field::Query),
                        )),
                        _ if !s.dynquery => None,
                        Key::ReturnQuery => Some(item(
                            ItemKind::Dynamic("RETURN QUERY EXECUTE of a computed string"),
                            pick(Field::DynQuery),
                        )),
                        _ => Some(item(
                            ItemKind::Dynamic("OPEN ... FOR EXECUTE of a computed string"),
                            pick(Field::DynQuery),
                        )),
                    };
                    self.0.extend(own);
                    self.0.append(&mut inner);
                }
                _ => map.next_value_seed(Collect(self.0))?,
            }
        }
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// One statement's object: its line, the expressions of its fields, and
/// (into the vector) the statements nested in it.
struct Stmt<'a>(&'a mut Vec<Item>);

struct StmtFields {
    lineno: usize,
    exprs: Vec<(Field, String)>,
    dynquery: bool,
}

impl Default for StmtFields {
    /// PL/pgSQL counts lines from 1.
    fn default() -> StmtFields {
        StmtFields {
            lineno: 1,
            exprs: Vec::new(),
            dynquery: false,
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Stmt<'_> {
    type Value = StmtFields;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<StmtFields, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Stmt<'_> {
    type Value = StmtFields;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a PL/pgSQL statement")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<StmtFields, A::Error> {
        let mut s = StmtFields::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Lineno => s.lineno = map.next_value::<Option<u64>>()?.unwrap_or(1) as usize,
                Key::Field(f) => {
                    s.dynquery |= f == Field::DynQuery;
                    if let Some(q) = map.next_value::<Option<ExprQuery>>()?.and_then(|e| e.0) {
                        s.exprs.push((f, q));
                    }
                }
                _ => map.next_value_seed(Collect(self.0))?,
            }
        }
        Ok(s)
    }
    fn visit_unit<E>(self) -> Result<StmtFields, E> {
        Ok(StmtFields::default())
    }
}

/// `{"PLpgSQL_expr": {"query": "..."}}`: the query's text.
struct ExprQuery(Option<String>);

impl<'de> serde::Deserialize<'de> for ExprQuery {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ExprQuery, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ExprQuery;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a PL/pgSQL expression")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<ExprQuery, A::Error> {
                let mut query = None;
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Expr => query = map.next_value::<ExprQuery>()?.0.or(query),
                        Key::Field(Field::Query) => query = map.next_value::<Option<String>>()?.or(query),
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(ExprQuery(query))
            }
            fn visit_unit<E>(self) -> Result<ExprQuery, E> {
                Ok(ExprQuery(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// The SQL text of a constant string expression: a literal, `||` of
/// constants, `format()` with a constant format and arguments,
/// `quote_ident()` / `quote_literal()` / `concat()` of constants, casts of
/// constants.
pub fn constant_sql(expr: &str) -> Option<String> {
    use postgres::protobuf::node::Node as N;
    let tree = postgres::parse(&format!("SELECT {expr}")).ok()?;
    let select = match tree.stmts.first()?.stmt.as_ref()?.node.as_ref()? {
        N::SelectStmt(s) => s,
        _ => return None,
    };
    if select.target_list.len() != 1 || !select.from_clause.is_empty() {
        return None;
    }
    let target = match select.target_list[0].node.as_ref()? {
        N::ResTarget(r) => r.val.as_deref()?,
        _ => return None,
    };
    fold(target)
}

fn fold(n: &postgres::protobuf::Node) -> Option<String> {
    use postgres::protobuf::{a_const::Val, node::Node as N};
    match n.node.as_ref()? {
        N::AConst(c) => match c.val.as_ref()? {
            Val::Sval(s) => Some(s.sval.clone()),
            Val::Ival(i) => Some(i.ival.to_string()),
            Val::Fval(f) => Some(f.fval.clone()),
            _ => None,
        },
        N::TypeCast(c) => fold(c.arg.as_deref()?),
        N::AExpr(e) => {
            let op = e.name.iter().find_map(|n| match n.node.as_ref()? {
                N::String(s) => Some(s.sval.clone()),
                _ => None,
            })?;
            (op == "||").then_some(())?;
            Some(fold(e.lexpr.as_deref()?)? + &fold(e.rexpr.as_deref()?)?)
        }
        N::FuncCall(f) => {
            let name = f
                .funcname
                .iter()
                .filter_map(|n| match n.node.as_ref()? {
                    N::String(s) => Some(s.sval.as_str()),
                    _ => None,
                })
                .next_back()?;
            let args: Vec<String> = f.args.iter().map(fold).collect::<Option<_>>()?;
            match name {
                "format" => format_sql(args.first()?, &args[1..]),
                "concat" => Some(args.concat()),
                "quote_ident" => Some(quote_ident(args.first()?)),
                "quote_literal" => Some(format!("'{}'", args.first()?.replace('\'', "''"))),
                "lower" => Some(args.first()?.to_lowercase()),
                "upper" => Some(args.first()?.to_uppercase()),
                _ => None,
            }
        }
        _ => None,
    }
}

/// PostgreSQL's `format()`: `%s`, `%I`, `%L`, `%%` and positional `%n$`.
fn format_sql(fmt: &str, args: &[String]) -> Option<String> {
    let mut out = String::new();
    let mut next = 0;
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = String::new();
        while let Some(&d) = chars.peek() {
            if d.is_ascii_digit() || d == '$' || d == '-' {
                spec.push(d);
                chars.next();
            } else {
                break;
            }
        }
        let kind = chars.next()?;
        if kind == '%' {
            out.push('%');
            continue;
        }
        let index = match spec.strip_suffix('$') {
            Some(n) => n.parse::<usize>().ok()?.checked_sub(1)?,
            None => {
                next += 1;
                next - 1
            }
        };
        let arg = args.get(index)?;
        match kind {
            's' => out.push_str(arg),
            'I' => out.push_str(&quote_ident(arg)),
            'L' => out.push_str(&format!("'{}'", arg.replace('\'', "''"))),
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Pos;
    use crate::rules::testing::{check_plain, check_ws, known};

    const ORDERS: &str = "CREATE TABLE orders (id bigint PRIMARY KEY, total numeric);\n";

    fn at(d: &[crate::diag::Diagnostic], rule: &str) -> Vec<Pos> {
        let rule = known(rule);
        d.iter().filter(|x| x.rule == rule).map(|x| x.region.start).collect()
    }

    #[test]
    fn do_block_statements_are_checked_at_their_place_in_the_body() {
        let d = check_ws(&[
            ("core/0001_orders.sql", ORDERS),
            (
                "core/0002_index.sql",
                "DO $$\nBEGIN\n  IF NOT EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'orders_total') THEN\n    CREATE INDEX orders_total ON orders (total);\n  END IF;\nEND $$;\n",
            ),
        ]);
        assert_eq!(at(&d, "require-concurrent-index"), vec![Pos::new(4, 5)], "{d:#?}");
        assert!(at(&d, "opaque-sql").is_empty(), "{d:#?}");
        assert!(at(&d, "unparsed-statement").is_empty(), "{d:#?}");
    }

    #[test]
    fn a_do_block_creates_tables_the_catalog_and_rls_rules_see() {
        let d = check_ws(&[(
            "core/0001_notes.sql",
            "DO $$ BEGIN\n  CREATE TABLE notes (id bigint PRIMARY KEY, body text);\nEND $$;\n",
        )]);
        assert_eq!(at(&d, "rls-missing"), vec![Pos::new(2, 16)], "{d:#?}");
    }

    #[test]
    fn execute_of_constant_strings_is_checked() {
        let d = check_ws(&[
            ("core/0001_orders.sql", ORDERS),
            (
                "core/0002_index.sql",
                "DO $$\nBEGIN\n  EXECUTE 'CREATE INDEX orders_total ON orders (total)';\n  EXECUTE format('ALTER TABLE %I ADD COLUMN placed_by text NOT NULL', 'orders');\nEND $$;\n",
            ),
        ]);
        // The literal is verbatim in the file: the finding is inside it.
        assert_eq!(at(&d, "require-concurrent-index"), vec![Pos::new(3, 12)], "{d:#?}");
        // Built by format(): the finding is where the string starts.
        assert_eq!(at(&d, "add-required-column"), vec![Pos::new(4, 11)], "{d:#?}");
        assert!(at(&d, "opaque-sql").is_empty(), "{d:#?}");
    }

    #[test]
    fn findings_at_the_end_of_a_file_on_built_sql_are_where_its_string_starts() {
        // rls-missing is raised when the file ends, from the name of the
        // table the statement created: a name inside a format() string has
        // no place in the file, the EXECUTE does.
        let d = check_ws(&[(
            "core/0001_notes.sql",
            "DO $$\nBEGIN\n  EXECUTE format('CREATE TABLE %I (id bigint PRIMARY KEY, body text)', 'notes');\nEND $$;\n",
        )]);
        assert_eq!(at(&d, "rls-missing"), vec![Pos::new(3, 11)], "{d:#?}");
    }

    #[test]
    fn function_bodies_are_judged_by_the_function_rules_only() {
        let d = check_ws(&[
            ("core/0001_orders.sql", &format!("{ORDERS}ALTER TABLE orders ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;\n")),
            (
                "core/0002_fn.sql",
                "CREATE FUNCTION app_unlock() RETURNS void LANGUAGE plpgsql AS $$\nBEGIN\n  ALTER TABLE orders DISABLE ROW LEVEL SECURITY;\n  CREATE INDEX o_t ON orders (total);\nEND $$;\n\
                 CREATE FUNCTION totals() RETURNS numeric LANGUAGE sql BEGIN ATOMIC\n  SELECT sum(total) FROM orders;\nEND;\n",
            ),
        ]);
        assert_eq!(at(&d, "rls-disabled"), vec![Pos::new(3, 15)], "{d:#?}");
        // The index is built when the function runs, not by the migration.
        assert!(at(&d, "require-concurrent-index").is_empty(), "{d:#?}");
        assert_eq!(at(&d, "ddl-in-function").len(), 2, "{d:#?}");
        let f = crate::sql::parse_text(
            "t.sql",
            "CREATE FUNCTION t() RETURNS int LANGUAGE sql BEGIN ATOMIC\n  SELECT 1;\n  SELECT 2;\nEND;\n",
        );
        let inner: Vec<_> = f.statements.iter().filter(|s| s.body.is_some()).map(|s| s.region.start).collect();
        assert_eq!(inner, vec![Pos::new(2, 3), Pos::new(3, 3)]);
    }

    /// The first words of the statements read from the bodies of `sql`.
    fn body_statements(sql: &str) -> Vec<String> {
        let f = crate::sql::parse_text("t.sql", sql);
        f.statements
            .iter()
            .filter(|s| s.body.is_some())
            .map(|s| sql[s.bytes.clone()].split_whitespace().take(2).collect::<Vec<_>>().join(" "))
            .collect()
    }

    /// libpg_query's PL/pgSQL compiler cannot resolve types in schemas
    /// other than public and pg_catalog; PostgreSQL can, and so does strata.
    #[test]
    fn bodies_with_types_of_other_schemas_are_read() {
        let sql = "CREATE FUNCTION pgmq.read(q text) RETURNS SETOF pgmq.message_record AS $$\nDECLARE\n  r pgmq.message_record;\n  t \"auth\".users%ROWTYPE;\n  n text := pgmq.format_table_name(q, 'q');\nBEGIN\n  ALTER TABLE pgmq.meta DISABLE ROW LEVEL SECURITY;\n  RETURN;\nEND $$ LANGUAGE plpgsql;\n";
        assert_eq!(body_statements(sql), ["ALTER TABLE"]);
        let f = crate::sql::parse_text("t.sql", sql);
        assert!(f.dynamic.is_empty(), "{:?}", f.dynamic);
        let inner: Vec<_> = f.statements.iter().filter(|s| s.body.is_some()).map(|s| s.region.start).collect();
        assert_eq!(inner, vec![Pos::new(7, 3)]);
    }

    #[test]
    fn a_functions_data_statements_are_not_read_a_do_blocks_are() {
        let body = "BEGIN\n  with x as (select 1) insert into t select * from x;\n  UPDATE t SET a = 1;\n  \
                    CREATE TABLE made (id int);\n  select 1 into n;\n  ALTER TABLE t DISABLE ROW LEVEL SECURITY;\nEND";
        let function = format!("CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ DECLARE n int; {body} $$;\n");
        assert_eq!(body_statements(&function), ["CREATE TABLE", "ALTER TABLE"]);
        let block = format!("DO $$ DECLARE n int; {body} $$;\n");
        assert_eq!(
            body_statements(&block),
            ["with x", "UPDATE t", "CREATE TABLE", "select 1", "ALTER TABLE"]
        );
        // A SQL function's body is not checked by PL/pgSQL's parser: read whole.
        let sql = "CREATE FUNCTION g() RETURNS void LANGUAGE sql AS $$ UPDATE t SET a = 1; DELETE FROM t $$;\n";
        assert_eq!(body_statements(sql), ["UPDATE t", "DELETE FROM"]);
    }

    #[test]
    fn a_bodys_statements_come_in_the_order_of_the_body() {
        let block = "DO $$ BEGIN\n  IF true THEN\n    ALTER TABLE t RENAME COLUMN a TO b;\n  ELSIF false THEN\n    \
                     ALTER TABLE t ADD COLUMN c int;\n  ELSE\n    ALTER TABLE t DROP COLUMN a;\n  END IF;\n  \
                     CREATE INDEX ON t (b);\nEND $$;\n";
        let f = crate::sql::parse_text("t.sql", block);
        let lines: Vec<u32> = f
            .statements
            .iter()
            .filter(|s| s.body.is_some())
            .map(|s| s.region.start.line)
            .collect();
        assert_eq!(lines, [3, 5, 7, 9]);
    }

    #[test]
    fn a_do_block_with_nothing_to_check_raises_nothing() {
        let d = check_plain("DO $$ DECLARE n int; BEGIN SELECT count(*) INTO n FROM pg_class; RAISE NOTICE '%', n; END $$;\n");
        assert!(d.is_empty(), "{d:#?}");
    }

    #[test]
    fn constant_strings_fold() {
        assert_eq!(
            constant_sql("'CREATE TABLE a (id int)'").as_deref(),
            Some("CREATE TABLE a (id int)")
        );
        assert_eq!(
            constant_sql("format('ALTER TABLE %I ADD COLUMN %s %s', 'Orders', 'x', 'int')").as_deref(),
            Some("ALTER TABLE \"Orders\" ADD COLUMN x int")
        );
        assert_eq!(constant_sql("'DROP TABLE ' || quote_ident('t')").as_deref(), Some("DROP TABLE t"));
        assert_eq!(constant_sql("'DROP TABLE ' || v_name"), None);
        assert_eq!(constant_sql("format('DROP TABLE %I', r.tablename)"), None);
    }
}
