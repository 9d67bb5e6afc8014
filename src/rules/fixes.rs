//! The fix edits several lock-safety rules attach: the no-transaction
//! header, `CONCURRENTLY`, `SET` before the first statement, removing a
//! statement.

use sqlparser::ast::{self, ObjectType};

use super::lock::{transaction_at, Tx};
use super::shape::{keyword_shape, Shape};
use super::tokens::{find_kw, tokens, Tok};
use super::{FileInfo, Released, StatementCtx};
use crate::report::{Edit, Fix, SourceFile};
use crate::sql::Statement;
use crate::workspace::Layout;

/// Whether a file may get fixes: released migrations are never edited.
pub fn fixable(file: &FileInfo) -> bool {
    !matches!(file.released, Released::Released { .. })
}

/// The layout a file is written for: its layer's, or, for a file checked
/// outside a workspace, the one its section markers say (goose, dbmate);
/// strata's own otherwise.
pub fn layout_of(file: &FileInfo) -> Layout {
    file.migration
        .map(|m| m.layout)
        .or_else(|| crate::workspace::section_layout(&file.parsed.source.text))
        .unwrap_or(Layout::Native)
}

/// How to run a statement outside a transaction in the file's own tool:
/// completes "put it in ...".
pub fn no_transaction_advice(file: &FileInfo) -> String {
    layout_of(file).no_transaction_advice()
}

/// The edit that makes the file run outside a transaction, in its tool's
/// marker (`-- +goose NO TRANSACTION`, sqlx `-- no-transaction`, dbmate
/// `transaction:false`, strata's header); `None` when the tool keeps the
/// marker outside the file (diesel `metadata.toml`, Flyway `.conf`, popx
/// `.autocommit` names).
pub fn no_transaction_header(file: &FileInfo) -> Option<Edit> {
    let source = &file.parsed.source;
    let (at, replacement) = layout_of(file).no_transaction_insertion(&source.text)?;
    Some(Edit {
        start: at,
        end: at,
        replacement,
    })
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
        edits.push(no_transaction_header(cx.file)?);
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
