//! The fix edits several lock-safety rules attach: the no-transaction
//! header, `CONCURRENTLY`, `SET` before the first statement, removing a
//! statement.

use sqlparser::ast::{self, ObjectType};

use super::lock::{transaction_at, Tx};
use super::shape::{keyword_shape, Shape};
use super::tokens::{find_kw, tokens, Tok};
use super::{FileInfo, Released, StatementCtx};
use crate::diag::{Edit, Fix, SourceFile};
use crate::sql::Statement;
use crate::workspace::Layout;

/// Whether a file may get fixes: released migrations are never edited.
pub fn fixable(file: &FileInfo) -> bool {
    !matches!(file.released, Released::Released { .. })
}

/// Why a released file gets no fix (`--fix` counts these together).
pub const RELEASED: &str = "the migration is released (in strata.sum): released files are never edited";

/// Why a file that does other work cannot move out of its transaction.
pub const NEEDS_TRANSACTION: &str =
    "the file does other work that needs its transaction: move the statement into a migration file of its own";

/// [`fixable`], with the reason when not.
pub fn editable(file: &FileInfo) -> Result<(), String> {
    if fixable(file) {
        Ok(())
    } else {
        Err(RELEASED.to_string())
    }
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

/// The edits that move a file out of its transaction: the header, and the
/// removal of the note `strata new` writes about the transaction (it would
/// be wrong under the header).
pub fn no_transaction_edits(file: &FileInfo) -> Option<Vec<Edit>> {
    let mut edits = vec![no_transaction_header(file)?];
    edits.extend(transaction_note(file));
    Some(edits)
}

/// The note of a new migration's template that says the file runs in one
/// transaction: from its first line to the line that shows the header, or
/// to the end of its comment block. Only among the comments before the
/// first statement.
fn transaction_note(file: &FileInfo) -> Option<Edit> {
    let text = &file.parsed.source.text;
    let limit = file.parsed.statements.first().map_or(text.len(), |s| s.bytes.start);
    let mut start = None;
    let mut offset = 0;
    // Where the previous line starts when it is a bare `--` separator.
    let mut separator = None;
    for line in text[..limit].split_inclusive('\n') {
        let trimmed = line.trim();
        match start {
            None if trimmed.starts_with("--") && trimmed.contains(crate::workspace::scaffold::TRANSACTION_NOTE) => {
                start = Some(separator.unwrap_or(offset));
            }
            Some(_) if !trimmed.starts_with("--") => break,
            _ => {}
        }
        separator = (trimmed == "--").then_some(offset);
        offset += line.len();
        let shown = trimmed.trim_start_matches(['-', ' ']);
        if start.is_some() && shown.starts_with("strata: no-transaction") {
            break;
        }
    }
    Some(Edit {
        start: start?,
        end: offset,
        replacement: String::new(),
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
/// holds nothing that needs a transaction; otherwise the reason.
pub fn concurrently_fix(cx: &StatementCtx, at: At, guard: Option<&str>, description: &str) -> Result<Fix, String> {
    editable(cx.file)?;
    if !file_runs_outside_transaction(cx.file) {
        return Err(NEEDS_TRANSACTION.to_string());
    }
    let runner = match transaction_at(cx.env, cx.file, cx.index) {
        Tx::Explicit(_) => return Err("the statement is inside the file's own BEGIN ... COMMIT: take it out of the block".to_string()),
        Tx::Runner => true,
        Tx::None => false,
    };
    let source = &cx.file.parsed.source;
    let toks = tokens(source, cx.stmt);
    let unplaced = || "strata could not place CONCURRENTLY in this statement".to_string();
    let anchor = match at {
        At::Keyword(kw) => find_kw(&toks, kw).ok_or_else(unplaced)?.1,
        At::End => toks.last().ok_or_else(unplaced)?,
    };
    let mut text = " CONCURRENTLY".to_string();
    if let Some(g) = guard {
        text.push(' ');
        text.push_str(g);
    }
    let mut edits = Vec::new();
    if runner {
        edits.extend(no_transaction_edits(cx.file).ok_or_else(|| {
            format!(
                "the file's tool keeps its no-transaction marker outside the file: put the statement in {}",
                no_transaction_advice(cx.file)
            )
        })?);
    }
    edits.push(insert_after(anchor, &text));
    Ok(Fix::new(description, edits))
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
