//! Finding the statements of a file with PostgreSQL's own scanner, so that
//! dollar quotes, E'' strings, nested comments, quoted identifiers and
//! `BEGIN ATOMIC` bodies split exactly as the server would split them.

use std::ops::Range;

use super::postgres::{self, protobuf::Token, PgError, ScanToken};

/// One statement's extent: from its first token to its last (the `;`
/// excluded), and the indices of its tokens in [`Split::tokens`].
#[derive(Clone, Debug)]
pub struct Piece {
    pub bytes: Range<usize>,
    pub tokens: Range<usize>,
}

/// A `--` comment and the index the statement after it will get.
#[derive(Clone, Debug)]
pub struct LineComment {
    pub bytes: Range<usize>,
    pub next_statement: usize,
}

#[derive(Debug, Default)]
pub struct Split {
    pub tokens: Vec<ScanToken>,
    pub pieces: Vec<Piece>,
    pub comments: Vec<LineComment>,
    /// The scanner stopped at an unterminated string, identifier or comment:
    /// the last piece runs from its first token to the end of the text
    /// (which is also what psql makes of it) and PostgreSQL rejects it.
    pub tail_error: Option<PgError>,
}

/// Splits `text` on top-level semicolons.
pub fn split(text: &str) -> Split {
    match postgres::scan(text) {
        Ok(tokens) => pieces(tokens),
        Err(err) => {
            // Everything before the bad token scans; the statement it is in
            // runs to the end of the file.
            let cut = err.offset.unwrap_or(0).min(text.len());
            let tokens = postgres::scan(&text[..cut]).unwrap_or_default();
            let mut out = pieces(tokens);
            let tail_start = match out.pieces.last() {
                Some(p) if p.tokens.end == out.tokens.len() && !ends_with_semicolon(&out.tokens) => p.bytes.start,
                _ => {
                    out.pieces.push(Piece {
                        bytes: cut..cut,
                        tokens: out.tokens.len()..out.tokens.len(),
                    });
                    cut
                }
            };
            let end = text.trim_end().len().max(tail_start);
            if let Some(last) = out.pieces.last_mut() {
                last.bytes = tail_start..end;
            }
            out.tail_error = Some(err);
            out
        }
    }
}

fn ends_with_semicolon(tokens: &[ScanToken]) -> bool {
    tokens
        .iter()
        .rev()
        .find(|t| !is_comment(t.token))
        .is_some_and(|t| t.token == Token::Ascii59)
}

fn is_comment(t: Token) -> bool {
    matches!(t, Token::SqlComment | Token::CComment)
}

fn pieces(tokens: Vec<ScanToken>) -> Split {
    let mut out = Split::default();
    let mut first: Option<usize> = None;
    let mut last = 0;
    let mut paren_depth: i32 = 0;
    let mut atomic_depth: i32 = 0;
    let mut previous = Token::Nul;
    for (i, t) in tokens.iter().enumerate() {
        match t.token {
            Token::SqlComment => {
                out.comments.push(LineComment {
                    bytes: t.start..t.end,
                    next_statement: out.pieces.len(),
                });
                continue;
            }
            Token::CComment => continue,
            Token::Ascii59 if paren_depth <= 0 && atomic_depth <= 0 => {
                if let Some(f) = first.take() {
                    out.pieces.push(Piece {
                        bytes: tokens[f].start..tokens[last].end,
                        tokens: f..last + 1,
                    });
                }
                paren_depth = 0;
                previous = Token::Nul;
                continue;
            }
            Token::Ascii40 => paren_depth += 1,
            Token::Ascii41 => paren_depth -= 1,
            Token::Atomic if previous == Token::BeginP => atomic_depth += 1,
            Token::Case if atomic_depth > 0 => atomic_depth += 1,
            Token::EndP if atomic_depth > 0 => atomic_depth -= 1,
            _ => {}
        }
        previous = t.token;
        first.get_or_insert(i);
        last = i;
    }
    if let Some(f) = first {
        out.pieces.push(Piece {
            bytes: tokens[f].start..tokens[last].end,
            tokens: f..last + 1,
        });
    }
    out.tokens = tokens;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts<'a>(text: &'a str, s: &Split) -> Vec<&'a str> {
        s.pieces.iter().map(|p| &text[p.bytes.clone()]).collect()
    }

    #[test]
    fn splits_like_postgres() {
        let text = "SELECT 1; -- strata-ignore x: y\nSELECT $q$;$q$, E'\\';' ; /* a /* ; */ b */ ;;\nCREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; SELECT 2; END; SELECT 3";
        let s = split(text);
        assert_eq!(
            texts(text, &s),
            vec![
                "SELECT 1",
                "SELECT $q$;$q$, E'\\';'",
                "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; SELECT 2; END",
                "SELECT 3"
            ]
        );
        assert_eq!(s.comments.len(), 1);
        assert_eq!(s.comments[0].next_statement, 1);
        assert!(s.tail_error.is_none());
    }

    #[test]
    fn an_unterminated_string_makes_the_rest_one_rejected_piece() {
        let text = "SELECT 1;\nSELECT 'oops;\nSELECT 2;\n";
        let s = split(text);
        assert_eq!(texts(text, &s), vec!["SELECT 1", "SELECT 'oops;\nSELECT 2;"]);
        assert!(s.tail_error.unwrap().message.contains("unterminated"));
        let text = "SELECT 1; /* never closed";
        let s = split(text);
        assert_eq!(texts(text, &s), vec!["SELECT 1", "/* never closed"]);
    }
}
