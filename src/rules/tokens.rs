//! A token view of a statement's text: keyword-level checks of statements
//! sqlparser cannot parse, and the byte offsets fixes edit.

use std::ops::Range;

use sqlparser::ast::{Ident, ObjectName, ObjectNamePart};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

use super::StatementCtx;
use crate::diag::{Pos, Region, SourceFile};
use crate::sql::Statement;

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
    // PostgreSQL's scan, converted to sqlparser's tokens (the same tokens,
    // read once, with exact byte ranges); sqlparser's tokenizer otherwise.
    let Some(scanned) = crate::sql::lex::scanned_tokens(&source.text, stmt.bytes.clone(), stmt.region.start) else {
        return sqlparser_tokens(source, stmt);
    };
    scanned
        .into_iter()
        .map(|(t, bytes)| {
            let (s, e) = (t.span.start, t.span.end);
            let end_col = if e.line == s.line {
                e.column.saturating_sub(1).max(s.column)
            } else {
                e.column.saturating_sub(1).max(1)
            };
            Tok {
                bytes,
                region: Region::new(Pos::new(s.line as u32, s.column as u32), Pos::new(e.line as u32, end_col as u32)),
                token: t.token,
            }
        })
        .collect()
}

/// [`tokens`] by sqlparser's tokenizer.
fn sqlparser_tokens(source: &SourceFile, stmt: &Statement) -> Vec<Tok> {
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

/// The first token that is the keyword `kw`.
pub fn find_kw<'a>(toks: &'a [Tok], kw: &str) -> Option<(usize, &'a Tok)> {
    toks.iter().enumerate().find(|(_, t)| t.is_kw(kw))
}

/// The region of the first keyword `kw` of the statement, or the statement.
pub fn kw_region(cx: &StatementCtx, kw: &str) -> Region {
    find_kw(&tokens(&cx.file.parsed.source, cx.stmt), kw).map_or(cx.stmt.region, |(_, t)| t.region)
}

/// The region of the first word of the statement that names `name` (a
/// folded name: unquoted words fold to lower case).
pub fn word_region(cx: &StatementCtx, name: &str) -> Option<Region> {
    tokens(&cx.file.parsed.source, cx.stmt)
        .into_iter()
        .find(|t| match &t.token {
            Token::Word(w) if w.quote_style.is_some() => w.value == name,
            Token::Word(w) => w.value.to_lowercase() == name,
            _ => false,
        })
        .map(|t| t.region)
}

/// The table of an `ALTER TABLE [IF EXISTS] [ONLY] name ...` (the tokens
/// start with `ALTER TABLE`) and the index after its name.
pub fn alter_table_name(toks: &[Tok]) -> Option<(ObjectName, usize)> {
    let mut i = 2;
    let kw = |i: usize, k: &str| toks.get(i).is_some_and(|t| t.is_kw(k));
    if kw(i, "IF") && kw(i + 1, "EXISTS") {
        i += 2;
    }
    if kw(i, "ONLY") {
        i += 1;
    }
    name_at(toks, i)
}

/// The token ranges of the comma-separated operations of an `ALTER TABLE`
/// (after the table name), so a fix can edit the n-th one.
pub fn alter_table_operations(toks: &[Tok]) -> Vec<Range<usize>> {
    let Some((_, mut start)) = alter_table_name(toks) else {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse_text;

    /// The scanned tokens are sqlparser's: tokens, byte ranges and regions.
    #[test]
    fn scanned_tokens_are_the_tokenizers() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut compared = 0;
        for e in walkdir::WalkDir::new(root.join("schema"))
            .into_iter()
            .chain(walkdir::WalkDir::new(root.join("examples")))
        {
            let e = e.unwrap();
            if e.path().extension().is_none_or(|x| x != "sql") {
                continue;
            }
            let f = parse_text("t.sql", &std::fs::read_to_string(e.path()).unwrap());
            for st in f.statements.iter().filter(|s| s.body.is_none()) {
                let (a, b) = (tokens(&f.source, st), sqlparser_tokens(&f.source, st));
                assert_eq!(a.len(), b.len(), "{}", e.path().display());
                for (x, y) in a.iter().zip(&b) {
                    let at = e.path().display();
                    assert_eq!((&x.token, &x.bytes, x.region.start), (&y.token, &y.bytes, y.region.start), "{at}");
                    // A token's region ends on its last character (the
                    // tokenizer's view got that wrong for multi-line tokens).
                    let last = f.source.text[..x.bytes.end].char_indices().next_back().map_or(0, |(i, _)| i);
                    assert_eq!(x.region.end, f.source.position(last), "{at}");
                    if y.region.start.line == y.region.end.line {
                        assert_eq!(x.region.end, y.region.end, "{at}");
                    }
                }
                compared += 1;
            }
        }
        assert!(compared > 100, "{compared}");
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
