//! The SQL front end: a migration file becomes a list of statements with
//! exact spans. Splitting uses sqlparser's tokenizer (so dollar quotes,
//! E'' strings, nested comments and `BEGIN ATOMIC` bodies are respected);
//! every statement is then parsed on its own, so one statement the parser
//! rejects never hides the others.

use std::ops::Range;
use std::sync::Arc;

use sqlparser::ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Whitespace};

use crate::diag::{Pos, Region, SourceFile};

mod mask;
pub mod suppress;

pub use mask::mask_source;
pub use suppress::{Suppression, SuppressionScope};

/// One statement of a migration file.
#[derive(Debug)]
pub struct Statement {
    /// From the statement's first token to its last (the `;` excluded).
    pub region: Region,
    /// Byte range in the original text.
    pub bytes: Range<usize>,
    pub kind: StatementKind,
}

#[derive(Debug)]
pub enum StatementKind {
    Parsed(Box<ast::Statement>),
    Unparsed(Unparsed),
}

/// A statement sqlparser did not understand. The upper-cased words are kept
/// so that keyword-level fallback checks still see it.
#[derive(Debug)]
pub struct Unparsed {
    pub message: String,
    pub pos: Pos,
    pub words: Vec<String>,
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
        }
    }

    pub fn ast(&self) -> Option<&ast::Statement> {
        match &self.kind {
            StatementKind::Parsed(s) => Some(s),
            StatementKind::Unparsed(_) => None,
        }
    }
    pub fn unparsed(&self) -> Option<&Unparsed> {
        match &self.kind {
            StatementKind::Unparsed(u) => Some(u),
            StatementKind::Parsed(_) => None,
        }
    }
}

/// A migration file after the front end.
#[derive(Debug)]
pub struct ParsedFile {
    pub source: Arc<SourceFile>,
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
}

impl ParsedFile {
    pub fn parsed_count(&self) -> usize {
        self.statements.iter().filter(|s| s.ast().is_some()).count()
    }
}

/// Parses a whole file. `masked` is the text the tokenizer sees (see
/// [`mask_source`]); it has the same lines and columns as `source.text`.
pub fn parse_file(source: Arc<SourceFile>, masked: &str) -> ParsedFile {
    let dialect = PostgreSqlDialect {};
    let mut out = ParsedFile {
        no_transaction: suppress::has_no_transaction_header(&source.text),
        source,
        statements: Vec::new(),
        suppressions: Vec::new(),
        unparsed: Vec::new(),
        tx_controls: Vec::new(),
    };
    let mut tokens = Vec::new();
    match Tokenizer::new(&dialect, masked).tokenize_with_location_into_buf(&mut tokens) {
        Ok(()) => split_and_parse(&dialect, tokens, &mut out, None),
        Err(err) => {
            // The buffer holds every token before the error. The statement
            // the error is in runs to the end of the file (which is also
            // what psql would make of an unterminated string or comment):
            // it becomes one unparsed statement.
            let err_pos = Pos::new(err.location.line.max(1) as u32, err.location.column.max(1) as u32);
            let tail_error = Unparsed {
                message: format!("tokenizer: {}", err.message),
                pos: err_pos,
                words: Vec::new(),
            };
            split_and_parse(&dialect, tokens, &mut out, Some(tail_error));
        }
    }
    out.unparsed = (0..out.statements.len())
        .filter(|&i| out.statements[i].unparsed().is_some())
        .collect();
    out.tx_controls = (0..out.statements.len())
        .filter(|&i| out.statements[i].tx_control().is_some())
        .collect();
    out
}

fn pos_of(t: &TokenWithSpan) -> Pos {
    Pos::new(t.span.start.line as u32, t.span.start.column as u32)
}

fn end_pos_of(t: &TokenWithSpan) -> Pos {
    // sqlparser's end location is exclusive; ours is inclusive.
    Pos::new(t.span.end.line as u32, (t.span.end.column as u32).saturating_sub(1).max(1))
}

fn is_word(t: &Token, kw: Keyword) -> bool {
    matches!(t, Token::Word(w) if w.keyword == kw && w.quote_style.is_none())
}

/// Splits a token stream on top-level semicolons and parses each piece.
/// `tail` is the tokenizer error of the remainder of the file, if any:
/// the trailing unterminated piece becomes one unparsed statement with it.
fn split_and_parse(dialect: &PostgreSqlDialect, tokens: Vec<TokenWithSpan>, out: &mut ParsedFile, tail: Option<Unparsed>) {
    let mut current: Vec<TokenWithSpan> = Vec::new();
    let mut paren_depth: i32 = 0;
    let mut atomic_depth: i32 = 0;
    let mut last_word_begin = false;
    for tok in tokens {
        match &tok.token {
            Token::Whitespace(ws) => {
                if let Whitespace::SingleLineComment { comment, .. } = ws {
                    let at = pos_of(&tok);
                    if let Some(s) = suppress::parse_comment(comment, at, out.statements.len(), current.is_empty()) {
                        out.suppressions.push(s);
                    }
                }
                continue;
            }
            Token::EOF => continue,
            Token::SemiColon if paren_depth <= 0 && atomic_depth <= 0 => {
                if !current.is_empty() {
                    let stmt = parse_statement(dialect, std::mem::take(&mut current), &out.source);
                    out.statements.push(stmt);
                }
                paren_depth = 0;
                last_word_begin = false;
                continue;
            }
            Token::LParen => paren_depth += 1,
            Token::RParen => paren_depth -= 1,
            t if is_word(t, Keyword::ATOMIC) && last_word_begin => atomic_depth += 1,
            t if atomic_depth > 0 && is_word(t, Keyword::CASE) => atomic_depth += 1,
            t if atomic_depth > 0 && is_word(t, Keyword::END) => atomic_depth -= 1,
            _ => {}
        }
        last_word_begin = is_word(&tok.token, Keyword::BEGIN);
        current.push(tok);
    }
    match tail {
        Some(mut unparsed) => {
            let start = current.first().map(pos_of).unwrap_or(unparsed.pos);
            unparsed.words = words_of(&current);
            let text_end = Pos::new(out.source.line_count() as u32, 1);
            let region = Region::new(start, text_end.max(start));
            out.statements.push(Statement {
                bytes: out.source.offset(start)..out.source.text.len(),
                region,
                kind: StatementKind::Unparsed(unparsed),
            });
        }
        None => {
            if !current.is_empty() {
                let stmt = parse_statement(dialect, current, &out.source);
                out.statements.push(stmt);
            }
        }
    }
}

fn words_of(tokens: &[TokenWithSpan]) -> Vec<String> {
    tokens
        .iter()
        .filter_map(|t| match &t.token {
            Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
            _ => None,
        })
        .collect()
}

fn parse_statement(dialect: &PostgreSqlDialect, tokens: Vec<TokenWithSpan>, source: &SourceFile) -> Statement {
    let start = tokens.first().map(pos_of).unwrap_or_default();
    let end = tokens.last().map(end_pos_of).unwrap_or(start);
    let region = Region::new(start, end);
    // `end` is the position of the last character, which may take several bytes.
    let last = source.offset(end);
    let last_len = source.text[last..].chars().next().map_or(0, char::len_utf8);
    let bytes = source.offset(start)..last + last_len;
    // sqlparser must never take the tool down: a panic inside it becomes an
    // unparsed statement like any other parser error.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut parser = Parser::new(dialect).with_tokens_with_locations(tokens);
        let parsed = parser.parse_statement();
        let trailing = parser.peek_token();
        match parsed {
            Ok(stmt) if trailing.token == Token::EOF => Ok(stmt),
            Ok(_) => Err((
                format!("unexpected {} after the end of the statement", trailing.token),
                pos_of(&trailing),
                parser.into_tokens(),
            )),
            Err(e) => {
                let at = parser.get_current_token().clone();
                Err((strip_location(&e.to_string()), pos_of(&at), parser.into_tokens()))
            }
        }
    }));
    let kind = match result {
        Ok(Ok(stmt)) => StatementKind::Parsed(Box::new(stmt)),
        Ok(Err((message, pos, tokens))) => StatementKind::Unparsed(Unparsed {
            message,
            pos: if pos.line == 0 { start } else { pos },
            words: words_of(&tokens),
        }),
        Err(_) => StatementKind::Unparsed(Unparsed {
            message: "the SQL parser failed on this statement".to_string(),
            pos: start,
            words: Vec::new(),
        }),
    };
    Statement { region, bytes, kind }
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
        f.statements.iter().map(|s| s.ast().is_some()).collect()
    }

    #[test]
    fn splits_on_top_level_semicolons_only() {
        let sql = "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; SELECT 2; $$ LANGUAGE sql;\n\
                   SELECT E'a;\\'b';\n/* nested /* ; */ still ; comment */ SELECT 3;";
        let f = parse_text("t.sql", sql);
        assert_eq!(f.statements.len(), 3, "{:?}", f.statements);
        assert_eq!(kinds(&f), vec![true, true, true]);
        assert_eq!(f.statements[2].region.start, Pos::new(3, 38));
    }

    #[test]
    fn begin_atomic_body_is_one_statement() {
        let sql = "CREATE FUNCTION g(a int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN a > 0 THEN 1 ELSE 2 END; SELECT 3; END;\nSELECT 4;";
        let f = parse_text("t.sql", sql);
        assert_eq!(f.statements.len(), 2);
        assert_eq!(f.statements[1].region.start.line, 2);
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
    fn unterminated_string_makes_the_tail_unparsed() {
        let sql = "SELECT 1;\nSELECT 'oops;\nSELECT 2;\n";
        let f = parse_text("t.sql", sql);
        assert_eq!(f.statements.len(), 2);
        assert!(f.statements[0].ast().is_some());
        let u = f.statements[1].unparsed().unwrap();
        assert!(u.message.contains("tokenizer"), "{}", u.message);
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

    #[test]
    fn spans_count_characters_not_bytes() {
        let f = parse_text("t.sql", "SELECT 'é';   CREATE TABLE t (x int);");
        assert_eq!(f.statements[1].region.start, Pos::new(1, 15));
        assert_eq!(&f.source.text[f.statements[1].bytes.clone()], "CREATE TABLE t (x int)");
    }
}
