//! PostgreSQL's own scanner and parsers (libpg_query, through the `pg_query`
//! crate), with the error position PostgreSQL reports.
//!
//! `pg_query`'s safe functions drop the error's cursor position, so the few
//! entry points strata needs are declared here against the same C library
//! (it is linked statically by `pg_query`). Every call copies what it needs
//! and frees the C result before returning.

use std::ffi::{c_char, c_int, CStr, CString};

use prost::Message;

pub use pg_query::protobuf;

#[repr(C)]
struct PgQueryError {
    message: *mut c_char,
    funcname: *mut c_char,
    filename: *mut c_char,
    lineno: c_int,
    cursorpos: c_int,
    context: *mut c_char,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct PgQueryScanToken {
    start: c_int,
    end: c_int,
    token: c_int,
    keyword_kind: c_int,
}

#[repr(C)]
struct PgQueryScanTokensResult {
    tokens: *mut PgQueryScanToken,
    n_tokens: c_int,
    error: *mut PgQueryError,
}

#[repr(C)]
struct PgQueryProtobuf {
    len: usize,
    data: *mut c_char,
}

#[repr(C)]
struct PgQueryProtobufParseResult {
    parse_tree: PgQueryProtobuf,
    stderr_buffer: *mut c_char,
    error: *mut PgQueryError,
}

#[repr(C)]
struct PgQueryPlpgsqlParseResult {
    plpgsql_funcs: *mut c_char,
    error: *mut PgQueryError,
}

extern "C" {
    fn pg_query_scan_tokens(input: *const c_char) -> PgQueryScanTokensResult;
    fn pg_query_free_scan_tokens_result(result: PgQueryScanTokensResult);
    fn pg_query_parse_protobuf_opts(input: *const c_char, parser_options: c_int) -> PgQueryProtobufParseResult;
    fn pg_query_free_protobuf_parse_result(result: PgQueryProtobufParseResult);
    fn pg_query_parse_plpgsql(input: *const c_char) -> PgQueryPlpgsqlParseResult;
    fn pg_query_free_plpgsql_parse_result(result: PgQueryPlpgsqlParseResult);
}

/// An error PostgreSQL reported: its message and, when it gave one, the
/// byte offset in the input where it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgError {
    pub message: String,
    pub offset: Option<usize>,
}

/// Copies a C error. `cursorpos` counts characters from 1 (0: none).
///
/// # Safety
/// `err` is a valid error of a result not yet freed.
unsafe fn take_error(err: *const PgQueryError, input: &str) -> PgError {
    let e = &*err;
    let message = if e.message.is_null() {
        "PostgreSQL rejected this statement".to_string()
    } else {
        CStr::from_ptr(e.message).to_string_lossy().into_owned()
    };
    let offset = (e.cursorpos > 0).then(|| char_offset(input, e.cursorpos as usize - 1));
    PgError { message, offset }
}

/// The byte offset of the `chars`-th character of `text` (its end when shorter).
fn char_offset(text: &str, chars: usize) -> usize {
    text.char_indices().nth(chars).map_or(text.len(), |(i, _)| i)
}

/// The C library reads NUL-terminated strings: a NUL inside the text (which
/// PostgreSQL rejects anyway) becomes a space, keeping every offset.
fn c_string(text: &str) -> CString {
    match CString::new(text) {
        Ok(c) => c,
        Err(_) => CString::new(text.replace('\0', " ")).unwrap_or_default(),
    }
}

/// One token of PostgreSQL's scanner: its byte range in the input and its
/// kind (comments included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanToken {
    pub start: usize,
    pub end: usize,
    pub token: protobuf::Token,
    pub keyword: bool,
}

/// Scans `text` as PostgreSQL's lexer does (standard_conforming_strings on).
/// On an error (an unterminated string, quoted identifier or comment) the
/// error's offset is where the bad token starts.
pub fn scan(text: &str) -> Result<Vec<ScanToken>, PgError> {
    let input = c_string(text);
    // SAFETY: `input` outlives the call; the result is read, then freed once.
    unsafe {
        let result = pg_query_scan_tokens(input.as_ptr());
        let out = if !result.error.is_null() {
            Err(take_error(result.error, text))
        } else if result.tokens.is_null() || result.n_tokens <= 0 {
            Ok(Vec::new())
        } else {
            let raw = std::slice::from_raw_parts(result.tokens, result.n_tokens as usize);
            Ok(raw
                .iter()
                .filter(|t| t.start >= 0 && t.end >= t.start && t.end as usize <= text.len())
                .map(|t| ScanToken {
                    start: t.start as usize,
                    end: t.end as usize,
                    token: protobuf::Token::try_from(t.token).unwrap_or(protobuf::Token::Nul),
                    // KeywordKind: 0 is "no keyword".
                    keyword: t.keyword_kind != 0,
                })
                .collect())
        };
        pg_query_free_scan_tokens_result(result);
        out
    }
}

/// Scans `text[bytes]`, the tokens' ranges given in `text`.
pub fn scan_at(text: &str, bytes: std::ops::Range<usize>) -> Result<Vec<ScanToken>, PgError> {
    let part = text.get(bytes.clone()).ok_or_else(|| PgError {
        message: "a statement outside its text".to_string(),
        offset: None,
    })?;
    Ok(scan(part)?
        .into_iter()
        .map(|t| ScanToken {
            start: t.start + bytes.start,
            end: t.end + bytes.start,
            ..t
        })
        .collect())
}

/// Parses SQL text with PostgreSQL's grammar into its raw parse tree.
pub fn parse(text: &str) -> Result<protobuf::ParseResult, PgError> {
    let input = c_string(text);
    // SAFETY: as in `scan`; the protobuf bytes are decoded before the free.
    unsafe {
        let result = pg_query_parse_protobuf_opts(input.as_ptr(), 0);
        let out = if !result.error.is_null() {
            Err(take_error(result.error, text))
        } else {
            let data = if result.parse_tree.data.is_null() {
                &[][..]
            } else {
                std::slice::from_raw_parts(result.parse_tree.data as *const u8, result.parse_tree.len)
            };
            protobuf::ParseResult::decode(data).map_err(|e| PgError {
                message: format!("could not read PostgreSQL's parse tree: {e}"),
                offset: None,
            })
        };
        pg_query_free_protobuf_parse_result(result);
        out
    }
}

/// Parses the PL/pgSQL body of a `CREATE FUNCTION ... LANGUAGE plpgsql` or a
/// `DO` statement into PostgreSQL's PL/pgSQL tree (JSON), read by `seed` as
/// it streams (no JSON tree is built unless the seed builds one); `None`
/// when there is no function.
///
/// libpg_query 18 writes invalid JSON for trigger functions: the datums
/// PL/pgSQL promises to trigger functions (`tg_name`, `tg_op`, ...) come
/// out as `{}}` instead of `{}`. [`repair_plpgsql_json`] undoes exactly that.
pub fn parse_plpgsql<S, V>(text: &str, seed: S) -> Result<Option<V>, PgError>
where
    S: for<'de> serde::de::DeserializeSeed<'de, Value = V>,
{
    let input = c_string(text);
    // SAFETY: as in `scan`; the JSON text is read before the free.
    unsafe {
        let result = pg_query_parse_plpgsql(input.as_ptr());
        let out = if !result.error.is_null() {
            Err(take_error(result.error, text))
        } else if result.plpgsql_funcs.is_null() {
            Ok(None)
        } else {
            // Read as bytes: serde_json checks the UTF-8 of what it reads,
            // and the text is megabytes for a history's functions (two
            // more passes over it were 1% of a check).
            let raw = CStr::from_ptr(result.plpgsql_funcs).to_bytes();
            let fixed = repair_plpgsql_json(raw);
            let mut de = serde_json::Deserializer::from_slice(&fixed);
            seed.deserialize(&mut de)
                .and_then(|v| de.end().map(|()| Some(v)))
                .map_err(|e| PgError {
                    message: format!("could not read PostgreSQL's PL/pgSQL tree: {e}"),
                    offset: None,
                })
        };
        pg_query_free_plpgsql_parse_result(result);
        out
    }
}

/// Replaces `{}}` by `{}` where it stands for an array element (after `[`
/// or `,`, outside JSON strings): an empty object that is a field's value
/// (`"PLpgSQL_stmt_return":{}}`) is valid and left alone.
pub fn repair_plpgsql_json(raw: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if memchr::memmem::find(raw, b"{}}").is_none() {
        return std::borrow::Cow::Borrowed(raw);
    }
    let bytes = raw;
    let mut out = Vec::with_capacity(bytes.len());
    let mut in_string = false;
    let mut i = 0;
    // From one byte that matters to the next (a quote, and a backslash in a
    // string or a brace outside one), copying the runs between them whole.
    loop {
        let rest = &bytes[i..];
        let hit = if in_string {
            memchr::memchr2(b'"', b'\\', rest)
        } else {
            memchr::memchr2(b'"', b'{', rest)
        };
        let Some(k) = hit else {
            out.extend_from_slice(rest);
            break;
        };
        let at = i + k;
        out.extend_from_slice(&bytes[i..at]);
        i = match bytes[at] {
            // An escape: the backslash and the byte it escapes.
            b'\\' => {
                let end = (at + 2).min(bytes.len());
                out.extend_from_slice(&bytes[at..end]);
                end
            }
            b'"' => {
                in_string = !in_string;
                out.push(b'"');
                at + 1
            }
            _ if at > 0 && matches!(bytes[at - 1], b',' | b'[') && bytes[at + 1..].starts_with(b"}}") => {
                out.extend_from_slice(b"{}");
                at + 3
            }
            _ => {
                out.push(b'{');
                at + 1
            }
        };
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_gives_byte_ranges_and_comments() {
        let text = "SELECT 'é;' /* c */ ; -- x\n";
        let toks = scan(text).unwrap();
        let kinds: Vec<protobuf::Token> = toks.iter().map(|t| t.token).collect();
        assert_eq!(
            kinds,
            vec![
                protobuf::Token::Select,
                protobuf::Token::Sconst,
                protobuf::Token::CComment,
                protobuf::Token::Ascii59,
                protobuf::Token::SqlComment
            ]
        );
        assert_eq!(&text[toks[1].start..toks[1].end], "'é;'");
    }

    #[test]
    fn errors_carry_postgres_message_and_position() {
        let text = "CREATE TABEL t (id int)";
        let e = parse(text).unwrap_err();
        assert_eq!(e.message, "syntax error at or near \"TABEL\"");
        assert_eq!(e.offset, Some(7));
        let e = scan("SELECT 1; SELECT 'é unterminated").unwrap_err();
        assert!(e.message.contains("unterminated quoted string"), "{}", e.message);
        assert_eq!(e.offset, Some(17));
    }

    #[test]
    fn trigger_functions_parse_despite_the_json_bug() {
        let f = "CREATE FUNCTION t() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.a := TG_OP; RETURN NEW; END $$";
        let v = parse_plpgsql(f, std::marker::PhantomData::<serde_json::Value>).unwrap().unwrap();
        assert!(v.to_string().contains("PLpgSQL_stmt_return"), "{v}");
    }

    #[test]
    fn repair_leaves_strings_alone() {
        let repair = |s: &str| String::from_utf8(repair_plpgsql_json(s.as_bytes()).into_owned()).unwrap();
        assert_eq!(repair(r#"[{}},{"q":"[{}}"}]"#), r#"[{},{"q":"[{}}"}]"#);
        let valid = r#"{"body":[{"PLpgSQL_stmt_return":{}}]}"#;
        assert_eq!(repair(valid), valid);
        // Escaped quotes and backslashes keep a string open; a brace at the
        // very end, and one not after `[` or `,`, are kept.
        assert_eq!(repair(r#"[{"q":"a\"[{}}\\"},{}},{}}]{"#), r#"[{"q":"a\"[{}}\\"},{},{}]{"#);
        assert_eq!(repair(r#"{"a":{}},x{}}"#), r#"{"a":{}},x{}}"#);
    }
}
