//! sqlparser's tokens made from PostgreSQL's scan of a statement, so that a
//! statement is tokenized once (by the scanner that split the file) and not
//! a second time by sqlparser's tokenizer.
//!
//! Words, plain numbers, standard and dollar-quoted strings and the common
//! punctuation are converted directly; any other token (operators, E''
//! strings, parameters, ...) is given to sqlparser's tokenizer on its own
//! text. When a token's text does not come out as exactly one sqlparser
//! token, or the scanner and sqlparser could disagree on it, the caller
//! tokenizes the whole statement with sqlparser instead: the converted
//! tokens are always the tokens sqlparser's tokenizer would have produced,
//! spans included (checked on every statement of the corpora by the corpus
//! suite, and on the bundled schema by a unit test).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::OnceLock;

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Location, Span, Token, TokenWithSpan, Tokenizer, Word};

use super::postgres::{protobuf::Token as Pg, ScanToken};
use crate::diag::Pos;

/// Where the scanner's tokens are, as sqlparser counts: lines from 1 and
/// columns in characters from 1, a newline starting the next line.
struct Cursor<'a> {
    text: &'a str,
    byte: usize,
    line: u64,
    col: u64,
}

impl Cursor<'_> {
    /// One pass over the bytes up to `to` (on a character boundary): a
    /// character is a byte that does not continue one (`0b10xxxxxx`).
    fn advance(&mut self, to: usize) -> Location {
        let part = &self.text.as_bytes()[self.byte..to];
        let chars = |b: &[u8]| b.iter().filter(|&&c| (c as i8) >= -0x40).count() as u64;
        match memchr::memrchr(b'\n', part) {
            Some(last) => {
                self.line += part.iter().filter(|&&c| c == b'\n').count() as u64;
                self.col = 1 + chars(&part[last + 1..]);
            }
            None => self.col += chars(part),
        }
        self.byte = to;
        Location::new(self.line, self.col)
    }
}

/// The statement's tokens (without whitespace and comments) as sqlparser's
/// tokenizer makes them from `masked[bytes]`, the statement starting at
/// `start` in the file; `None` when one of them must be left to sqlparser's
/// tokenizer in context.
pub(crate) fn sqlparser_tokens(masked: &str, bytes: Range<usize>, scan: &[ScanToken], start: Pos) -> Option<Vec<TokenWithSpan>> {
    let mut out = Vec::with_capacity(scan.len());
    convert_all(masked, bytes, scan, start, |t, _| out.push(t))?;
    Some(out)
}

/// sqlparser's tokens of the statement at `text[bytes]` (which starts at
/// `start`), each with its byte range in `text`: PostgreSQL's scan
/// converted as in [`sqlparser_tokens`]; `None` when the scan fails or a
/// token must be left to sqlparser's tokenizer.
pub fn scanned_tokens(text: &str, bytes: Range<usize>, start: Pos) -> Option<Vec<(TokenWithSpan, Range<usize>)>> {
    let scan = super::postgres::scan_at(text, bytes.clone()).ok()?;
    let mut out = Vec::with_capacity(scan.len());
    convert_all(text, bytes, &scan, start, |t, r| out.push((t, r)))?;
    Some(out)
}

fn convert_all(
    masked: &str,
    bytes: Range<usize>,
    scan: &[ScanToken],
    start: Pos,
    mut push: impl FnMut(TokenWithSpan, Range<usize>),
) -> Option<()> {
    if bytes.end > masked.len() || !masked.is_char_boundary(bytes.start) {
        return None;
    }
    let mut cursor = Cursor {
        text: masked,
        byte: bytes.start,
        line: start.line as u64,
        col: start.col as u64,
    };
    let mut previous_end = bytes.start;
    let mut previous = Edge::Apart;
    for t in scan {
        if matches!(t.token, Pg::SqlComment | Pg::CComment) {
            continue;
        }
        if t.start < previous_end || t.end > bytes.end || !masked.is_char_boundary(t.start) || !masked.is_char_boundary(t.end) {
            return None;
        }
        let text = &masked[t.start..t.end];
        let (token, edge) = convert(t, text)?;
        // Nothing comes before the first token: `previous` starts `Apart`.
        if t.start == previous_end && !edge.may_touch(previous) {
            return None;
        }
        previous_end = t.end;
        previous = edge;
        let from = cursor.advance(t.start);
        let to = cursor.advance(t.end);
        push(TokenWithSpan::new(token, Span::new(from, to)), t.start..t.end);
    }
    Some(())
}

/// How a token's edges behave when another token touches it (no space
/// between them): where the scanner and sqlparser could cut differently.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Edge {
    /// `(`, `)`, `,`, `;`, `[`, `]`: never part of a longer token.
    Apart,
    /// Words, strings, `.` and `::`: cut the same way by both.
    Plain,
    /// A number.
    Number,
    /// A one-character operator (`-`, `+`, `=`, `<`, `>`, `*`, `/`, `%`, `^`).
    Char,
    /// Any other operator or constant, left to sqlparser when it touches
    /// anything but `Apart`.
    Other,
}

impl Edge {
    fn may_touch(self, previous: Edge) -> bool {
        use Edge::*;
        matches!(
            (previous, self),
            (Apart, _) | (_, Apart) | (Plain, Plain) | (Plain, Char) | (Char, Plain) | (Char, Number) | (Number, Char)
        )
    }
}

/// sqlparser's token for one scanner token, and how its edges behave.
fn convert(t: &ScanToken, text: &str) -> Option<(Token, Edge)> {
    let first = text.as_bytes().first().copied()?;
    if t.keyword || t.token == Pg::Ident {
        return word(text, first).map(|w| (w, Edge::Plain));
    }
    Some(match t.token {
        Pg::Ascii40 => (Token::LParen, Edge::Apart),
        Pg::Ascii41 => (Token::RParen, Edge::Apart),
        Pg::Ascii44 => (Token::Comma, Edge::Apart),
        Pg::Ascii59 => (Token::SemiColon, Edge::Apart),
        Pg::Ascii91 => (Token::LBracket, Edge::Apart),
        Pg::Ascii93 => (Token::RBracket, Edge::Apart),
        Pg::Ascii46 => (Token::Period, Edge::Plain),
        Pg::Typecast => (Token::DoubleColon, Edge::Plain),
        Pg::Ascii42 => (Token::Mul, Edge::Char),
        Pg::Ascii61 => (Token::Eq, Edge::Char),
        Pg::Ascii43 | Pg::Ascii45 | Pg::Ascii47 | Pg::Ascii37 | Pg::Ascii60 | Pg::Ascii62 | Pg::Ascii94 => (alone(text)?, Edge::Char),
        Pg::Sconst if first == b'\'' => (standard_string(text)?, Edge::Plain),
        Pg::Sconst if first == b'$' => (dollar_string(text)?, Edge::Plain),
        Pg::Iconst if text.bytes().all(|b| b.is_ascii_digit()) => (Token::Number(text.to_string(), false), Edge::Number),
        Pg::Iconst | Pg::Fconst => (alone(text)?, Edge::Number),
        _ => (alone(text)?, Edge::Other),
    })
}

/// An identifier or keyword: plain ASCII words and simple quoted names are
/// converted; anything else is left to sqlparser's tokenizer in context.
fn word(text: &str, first: u8) -> Option<Token> {
    if first == b'"' {
        let inner = text.strip_prefix('"')?.strip_suffix('"')?;
        if inner.contains('"') {
            return None;
        }
        return Some(Token::Word(Word {
            value: inner.to_string(),
            quote_style: Some('"'),
            keyword: Keyword::NoKeyword,
        }));
    }
    if !(first.is_ascii_alphabetic() || first == b'_') || !text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$') {
        return None;
    }
    Some(Token::Word(Word {
        value: text.to_string(),
        quote_style: None,
        keyword: keyword(text),
    }))
}

/// sqlparser's keyword for an unquoted ASCII word, as `Token::make_word`
/// finds it (a binary search with a case-insensitive compare, a twentieth
/// of a check's instructions on the corpora), from a hash table of the
/// upper-cased keywords.
fn keyword(word: &str) -> Keyword {
    use sqlparser::keywords::{ALL_KEYWORDS, ALL_KEYWORDS_INDEX};
    const LONGEST: usize = 64;
    static TABLE: OnceLock<HashMap<&'static [u8], Keyword, rustc_hash::FxBuildHasher>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        debug_assert!(ALL_KEYWORDS.iter().all(|k| k.len() <= LONGEST));
        ALL_KEYWORDS
            .iter()
            .zip(ALL_KEYWORDS_INDEX)
            .map(|(k, &kw)| (k.as_bytes(), kw))
            .collect()
    });
    if word.len() > LONGEST {
        return Keyword::NoKeyword;
    }
    let mut upper = [0u8; LONGEST];
    let upper = &mut upper[..word.len()];
    for (u, b) in upper.iter_mut().zip(word.bytes()) {
        *u = b.to_ascii_uppercase();
    }
    table.get(&*upper).copied().unwrap_or(Keyword::NoKeyword)
}

/// `'...'` with doubled quotes inside, and nothing else (a string continued
/// on the next line is two quoted pieces: left to sqlparser).
fn standard_string(text: &str) -> Option<Token> {
    let inner = text.strip_prefix('\'')?.strip_suffix('\'')?;
    if !inner.contains('\'') {
        return Some(Token::SingleQuotedString(inner.to_string()));
    }
    let mut value = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\'' && chars.next() != Some('\'') {
            return None;
        }
        value.push(c);
    }
    Some(Token::SingleQuotedString(value))
}

/// `$tag$...$tag$`.
fn dollar_string(text: &str) -> Option<Token> {
    let rest = text.strip_prefix('$')?;
    let tag_end = rest.find('$')?;
    let tag = &rest[..tag_end];
    let open = tag_end + 2;
    if text.len() < 2 * open || !text.ends_with(&text[..open]) {
        return None;
    }
    let value = text[open..text.len() - open].to_string();
    Some(Token::DollarQuotedString(sqlparser::ast::DollarQuotedString {
        value,
        tag: (!tag.is_empty()).then(|| tag.to_string()),
    }))
}

/// What sqlparser's tokenizer makes of the token's text alone, when that is
/// exactly one token.
fn alone(text: &str) -> Option<Token> {
    let mut tokens = Tokenizer::new(&PostgreSqlDialect {}, text).tokenize().ok()?;
    tokens.retain(|t| !matches!(t, Token::Whitespace(_)));
    if tokens.len() != 1 {
        return None;
    }
    tokens.pop()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::postgres;

    /// sqlparser's own tokens of `text` placed at `start`, without whitespace.
    fn reference(text: &str, start: Pos) -> Vec<TokenWithSpan> {
        crate::sql::sqlparser_tokenize(text, start).unwrap()
    }

    fn converted(text: &str) -> Option<Vec<TokenWithSpan>> {
        let scan = postgres::scan(text).unwrap();
        sqlparser_tokens(text, 0..text.len(), &scan, Pos::new(1, 1))
    }

    #[test]
    fn keywords_are_sqlparsers_in_any_case() {
        use sqlparser::keywords::ALL_KEYWORDS;
        let lower: Vec<String> = ALL_KEYWORDS.iter().map(|k| k.to_ascii_lowercase()).collect();
        let mixed: Vec<String> = ALL_KEYWORDS
            .iter()
            .map(|k| {
                k.chars()
                    .enumerate()
                    .map(|(i, c)| if i % 2 == 0 { c } else { c.to_ascii_lowercase() })
                    .collect()
            })
            .collect();
        let others = ["tenant_id", "contacts", "x", "_", "selects", "a$b", &"k".repeat(80)];
        let words = ALL_KEYWORDS
            .iter()
            .copied()
            .chain(lower.iter().map(String::as_str))
            .chain(mixed.iter().map(String::as_str))
            .chain(others);
        for w in words {
            let Token::Word(want) = Token::make_word(w, None) else {
                unreachable!()
            };
            assert_eq!(keyword(w), want.keyword, "{w}");
        }
        assert_eq!(keyword("contacts"), Keyword::NoKeyword);
        assert_eq!(keyword("Select"), Keyword::SELECT);
    }

    #[test]
    fn the_same_tokens_and_spans_as_sqlparser() {
        let texts = [
            "CREATE TABLE \"Odd Name\" (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text DEFAULT 'it''s')",
            "SELECT a::text || 'x', b ->> 'k', c @> '{}'::jsonb, $1, 1.5, 42 FROM t WHERE x <> 3 AND y >= 2",
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $body$\nSELECT 1;\n$body$",
            "SELECT 'é', \"ünï\", E'a\\nb', x'1f' -- trailing\n, /* c */ 2",
            "UPDATE t SET a = a + 1, b = -2 WHERE id IN (1,2,3)",
        ];
        for text in texts {
            let scan = postgres::scan(text).unwrap();
            if let Some(got) = sqlparser_tokens(text, 0..text.len(), &scan, Pos::new(1, 1)) {
                let want = reference(text, Pos::new(1, 1));
                assert_eq!(got.len(), want.len(), "{text}\n{got:?}\n{want:?}");
                for (g, w) in got.iter().zip(&want) {
                    assert_eq!((&g.token, g.span), (&w.token, w.span), "{text}");
                }
            }
        }
        // The common statements are converted, not left to sqlparser.
        assert!(converted(texts[0]).is_some());
        assert!(converted(texts[1]).is_some());
        assert!(converted(texts[4]).is_some());
    }

    #[test]
    fn what_could_merge_is_left_to_sqlparser() {
        // A string continued on the next line is one constant to PostgreSQL.
        assert!(converted("SELECT 'a'\n'b'").is_none());
        // An operator touching a string: sqlparser's tokenizer decides.
        assert!(converted("SELECT z->>'k' FROM t").is_none());
        // A non-ASCII identifier.
        assert!(converted("SELECT ünï FROM t").is_none());
    }

    /// Every statement of the bundled schema and examples converts to the
    /// tokens sqlparser makes (the corpus suite checks the real histories).
    #[test]
    fn bundled_sql_converts_exactly() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let (mut checked, mut left) = (0, 0);
        for dir in ["schema", "examples"] {
            for e in walkdir::WalkDir::new(root.join(dir)) {
                let e = e.unwrap();
                if e.path().extension().is_some_and(|x| x == "sql") {
                    let text = std::fs::read_to_string(e.path()).unwrap();
                    let (c, l) = crate::sql::check_conversion(&text)
                        .map_err(|m| format!("{}: {m}", e.path().display()))
                        .unwrap();
                    checked += c;
                    left += l;
                }
            }
        }
        // Nearly everything is converted: the double tokenization is gone.
        assert!(
            checked > 100 && left * 10 < checked,
            "{checked} converted, {left} left to sqlparser"
        );
    }
}
