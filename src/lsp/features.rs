//! What the editor shows of strata's findings: diagnostics, hover text and
//! code actions, computed from the findings of the document's last check
//! and the text they were found in.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use ls_types as lsp;
use serde_json::{json, Value};

use super::text;
use crate::diag::{Diagnostic, Edit, Severity, SourceFile};
use crate::rules::docs::rule_url;

/// The rule whose findings are suppressions that do not work: offering to
/// suppress them would be absurd, so its action removes the comment.
const UNUSED_SUPPRESSION: &str = "unused-suppression";
/// The placeholder selected after an ignore action, for the user to type over.
const REASON: &str = "reason";
/// The command that selects a range once the client applied an edit.
pub const SELECT_COMMAND: &str = "strata.selectRange";

/// What the client can do with code actions (from its capabilities).
#[derive(Clone, Copy, Debug, Default)]
pub struct EditSupport {
    /// `workspace.workspaceEdit.snippetEditSupport` (LSP 3.18).
    pub snippets: bool,
    /// `window.showDocument.support`: the reason is selected through
    /// [`SELECT_COMMAND`] instead.
    pub show_document: bool,
    /// `documentChanges` with `create` resource operations, for fixes that
    /// add a migration.
    pub create_files: bool,
}

pub fn to_lsp(d: &Diagnostic, docs_url: &str) -> lsp::Diagnostic {
    let message = match &d.help {
        Some(help) => format!("{}\nhelp: {help}", d.message),
        None => d.message.clone(),
    };
    lsp::Diagnostic {
        range: text::region_range(&d.file, d.region),
        severity: Some(match d.severity {
            Severity::Error => lsp::DiagnosticSeverity::ERROR,
            Severity::Warning => lsp::DiagnosticSeverity::WARNING,
            Severity::Off => lsp::DiagnosticSeverity::HINT,
        }),
        code: Some(lsp::NumberOrString::String(d.rule.to_string())),
        code_description: lsp::Uri::from_str(&rule_url(docs_url, d.rule))
            .ok()
            .map(|href| lsp::CodeDescription { href }),
        source: Some("strata".to_string()),
        message,
        related_information: None,
        tags: None,
        data: None,
    }
}

fn contains(range: &lsp::Range, pos: lsp::Position) -> bool {
    range.start <= pos && pos <= range.end
}

fn overlaps(a: &lsp::Range, b: &lsp::Range) -> bool {
    a.start <= b.end && b.start <= a.end
}

/// The documentation of every rule with a finding at `pos`.
pub fn hover(diagnostics: &[Diagnostic], pos: lsp::Position, docs_url: &str) -> Option<lsp::Hover> {
    let mut parts = Vec::new();
    let mut range = None;
    for d in diagnostics {
        let r = text::region_range(&d.file, d.region);
        if !contains(&r, pos) {
            continue;
        }
        range.get_or_insert(r);
        let mut part = format!("**strata: `{}`** ({})\n\n{}\n", d.rule, d.severity.as_str(), d.message);
        if let Some(help) = &d.help {
            part.push_str(&format!("\nhelp: {help}\n"));
        }
        if let Some(meta) = crate::rules::meta_of(d.rule) {
            // The rule's own headings sit below the finding.
            let doc: Vec<String> = meta
                .doc_text()
                .lines()
                .map(|l| match l.strip_prefix("## ") {
                    Some(h) => format!("#### {h}"),
                    None => l.to_string(),
                })
                .collect();
            part.push_str(&format!("\n---\n\n{}\n", doc.join("\n").trim_end()));
        }
        part.push_str(&format!("\n[Documentation of `{}`]({})\n", d.rule, rule_url(docs_url, d.rule)));
        parts.push(part);
    }
    if parts.is_empty() {
        return None;
    }
    Some(lsp::Hover {
        contents: lsp::HoverContents::Markup(lsp::MarkupContent {
            kind: lsp::MarkupKind::Markdown,
            value: parts.join("\n---\n\n"),
        }),
        range,
    })
}

/// The document code actions are computed for.
pub struct ActionDoc<'a> {
    pub uri: &'a lsp::Uri,
    pub path: Option<&'a Path>,
    pub text: &'a str,
    pub version: i32,
}

/// Code actions for the findings overlapping `range`: the rule's fix, a
/// suppression of the statement, a suppression for the file (or, for a
/// suppression that does not work, its removal). Built as JSON because
/// snippet edits are newer than the protocol types.
pub fn code_actions(doc: &ActionDoc, diagnostics: &[Diagnostic], range: lsp::Range, support: EditSupport, docs_url: &str) -> Vec<Value> {
    let mut parsed = None;
    let mut actions = Vec::new();
    for d in diagnostics {
        let r = text::region_range(&d.file, d.region);
        if !overlaps(&r, &range) {
            continue;
        }
        let diagnostic = serde_json::to_value(to_lsp(d, docs_url)).unwrap_or(Value::Null);
        if let Some(action) = fix_action(doc, d, &diagnostic, support) {
            actions.push(action);
        }
        if d.rule == UNUSED_SUPPRESSION {
            let edit = remove_comment(doc.text, d.file.offset(d.region.start));
            actions.push(quickfix(
                "Remove this suppression comment",
                &diagnostic,
                false,
                text_edits(doc, &[edit]),
            ));
            continue;
        }
        let parsed =
            parsed.get_or_insert_with(|| crate::check::parse_source(Arc::new(SourceFile::new(String::new(), doc.text.to_string()))));
        let at = d.file.offset(d.region.start);
        let index = parsed.statements.iter().rposition(|s| s.bytes.start <= at);
        let statement = index.map_or(at, |i| parsed.statements[i].bytes.start);
        let previous_end = index.and_then(|i| i.checked_sub(1)).map_or(0, |i| parsed.statements[i].bytes.end);
        let comment = format!("-- strata-ignore {}: ", d.rule);
        let (edit, select) = insert_line(doc.text, statement, previous_end, &comment);
        actions.push(ignore_action(
            doc,
            format!("Ignore `{}` for this statement", d.rule),
            &diagnostic,
            edit,
            select,
            support,
        ));
        let top = crate::workspace::forward_sections(doc.text)
            .and_then(|s| s.first().map(|r| r.start))
            .unwrap_or(0);
        let comment = format!("-- strata-ignore-file {}: ", d.rule);
        let (edit, select) = insert_line(doc.text, top, 0, &comment);
        actions.push(ignore_action(
            doc,
            format!("Ignore `{}` in this file", d.rule),
            &diagnostic,
            edit,
            select,
            support,
        ));
    }
    actions
}

/// An edit removing the comment starting at `at`: its whole line when the
/// comment is alone on it, else the comment up to the end of the line.
fn remove_comment(text: &str, at: usize) -> Edit {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let (start, end) = if text[line_start..at].trim().is_empty() {
        (line_start, (line_end + 1).min(text.len()))
    } else {
        let end = if text[..line_end].ends_with('\r') { line_end - 1 } else { line_end };
        (at, end.max(at))
    };
    Edit {
        start,
        end,
        replacement: String::new(),
    }
}

/// An edit inserting the line `comment` + [`REASON`] above the line holding
/// `at` (with that line's indentation) when nothing of an earlier statement
/// (which ends at `previous_end`) is on that line, else before `at` on a line
/// of its own; and the byte range the reason will have.
fn insert_line(text: &str, at: usize, previous_end: usize, comment: &str) -> (Edit, std::ops::Range<usize>) {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = &text[line_start..];
    let indent = &line[..line.len() - line.trim_start_matches([' ', '\t']).len()];
    let (offset, prefix, indent) = if previous_end <= line_start {
        (line_start, "", indent)
    } else {
        (at, "\n", "")
    };
    let replacement = format!("{prefix}{indent}{comment}{REASON}\n");
    let reason = offset + prefix.len() + indent.len() + comment.len();
    (
        Edit {
            start: offset,
            end: offset,
            replacement,
        },
        reason..reason + REASON.len(),
    )
}

fn quickfix(title: &str, diagnostic: &Value, preferred: bool, edit: Value) -> Value {
    json!({
        "title": title,
        "kind": "quickfix",
        "diagnostics": [diagnostic],
        "isPreferred": preferred,
        "edit": edit,
    })
}

/// A workspace edit changing this document with `edits` (byte ranges in its
/// text), tied to the version the findings were computed on.
fn text_edits(doc: &ActionDoc, edits: &[Edit]) -> Value {
    let edits: Vec<Value> = edits
        .iter()
        .map(|e| json!({"range": text::range(doc.text, e.start..e.end), "newText": e.replacement}))
        .collect();
    json!({"documentChanges": [document_edit(doc, edits)]})
}

fn document_edit(doc: &ActionDoc, edits: Vec<Value>) -> Value {
    json!({"textDocument": {"uri": doc.uri, "version": doc.version}, "edits": edits})
}

fn fix_action(doc: &ActionDoc, d: &Diagnostic, diagnostic: &Value, support: EditSupport) -> Option<Value> {
    let fix = d.fix.as_ref()?;
    let fits = fix
        .edits
        .iter()
        .all(|e| e.start <= e.end && e.end <= doc.text.len() && doc.text.is_char_boundary(e.start) && doc.text.is_char_boundary(e.end));
    if !fits {
        return None;
    }
    let mut edit = text_edits(doc, &fix.edits);
    if let Some(new_file) = &fix.new_file {
        // The new migration is part of the fix: without it the fix is unsafe
        // (a NOT VALID constraint never validated), so no file, no action.
        if !support.create_files {
            return None;
        }
        let (path, content) = crate::fix::new_file_for(doc.path?, new_file, doc.text)?;
        let uri = lsp::Uri::from_file_path(&path)?;
        let changes = edit["documentChanges"].as_array_mut()?;
        changes.push(json!({"kind": "create", "uri": uri, "options": {"ignoreIfExists": true}}));
        changes.push(json!({
            "textDocument": {"uri": uri, "version": null},
            "edits": [{"range": lsp::Range::default(), "newText": content}],
        }));
    }
    Some(quickfix(&format!("Fix: {}", fix.description), diagnostic, true, edit))
}

/// An action inserting a suppression comment, with the reason selected for
/// typing: as a snippet when the client takes snippet edits, else through a
/// command that asks the client to select it once the edit is applied.
fn ignore_action(
    doc: &ActionDoc,
    title: String,
    diagnostic: &Value,
    edit: Edit,
    reason: std::ops::Range<usize>,
    support: EditSupport,
) -> Value {
    if support.snippets {
        let before = &edit.replacement[..edit.replacement.len() - REASON.len() - 1];
        let snippet = format!("{}${{1:{REASON}}}\n", escape_snippet(before));
        let range = text::range(doc.text, edit.start..edit.end);
        let edits = vec![json!({"range": range, "snippet": {"kind": "snippet", "value": snippet}})];
        return quickfix(&title, diagnostic, false, json!({"documentChanges": [document_edit(doc, edits)]}));
    }
    let mut action = quickfix(&title, diagnostic, false, text_edits(doc, std::slice::from_ref(&edit)));
    if support.show_document {
        let mut after = doc.text.to_string();
        after.replace_range(edit.start..edit.end, &edit.replacement);
        let selection = text::range(&after, reason);
        action["command"] = json!({
            "title": "Select the reason",
            "command": SELECT_COMMAND,
            "arguments": [doc.uri, selection],
        });
    }
    action
}

/// Snippet syntax gives `$`, `}` and `\` a meaning.
fn escape_snippet(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '$' | '}' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_line_keeps_indentation_and_selects_the_reason() {
        let text = "SELECT 1;\n    CREATE INDEX i ON t (a);\n";
        let at = text.find("CREATE").unwrap();
        let (edit, reason) = insert_line(text, at, 8, "-- strata-ignore r: ");
        let after = crate::fix::apply_edits(text, std::slice::from_ref(&edit));
        assert_eq!(after, "SELECT 1;\n    -- strata-ignore r: reason\n    CREATE INDEX i ON t (a);\n");
        assert_eq!(&after[reason], "reason");
    }

    #[test]
    fn insert_line_after_text_on_the_same_line() {
        let text = "SELECT 1; CREATE INDEX i ON t (a);";
        let at = text.find("CREATE").unwrap();
        let (edit, reason) = insert_line(text, at, 8, "-- strata-ignore r: ");
        let after = crate::fix::apply_edits(text, std::slice::from_ref(&edit));
        assert_eq!(after, "SELECT 1; \n-- strata-ignore r: reason\nCREATE INDEX i ON t (a);");
        assert_eq!(&after[reason], "reason");
        // A comment before the statement on its line stays with it.
        let text = "SELECT 1;\n  /* é */ CREATE INDEX i ON t (a);";
        let at = text.find("CREATE").unwrap();
        let (edit, _) = insert_line(text, at, 8, "-- strata-ignore r: ");
        let after = crate::fix::apply_edits(text, std::slice::from_ref(&edit));
        assert_eq!(after, "SELECT 1;\n  -- strata-ignore r: reason\n  /* é */ CREATE INDEX i ON t (a);");
    }

    #[test]
    fn remove_comment_alone_or_after_a_statement() {
        let text = "-- strata-ignore x: y\nSELECT 1; -- strata-ignore z: w\r\nSELECT 2;";
        let apply = |e: Edit| crate::fix::apply_edits(text, &[e]);
        assert_eq!(apply(remove_comment(text, 0)), "SELECT 1; -- strata-ignore z: w\r\nSELECT 2;");
        let at = text.find("-- strata-ignore z").unwrap();
        assert_eq!(apply(remove_comment(text, at)), "-- strata-ignore x: y\nSELECT 1; \r\nSELECT 2;");
    }

    #[test]
    fn snippets_escape_their_syntax() {
        assert_eq!(escape_snippet("a $1 } \\ b"), "a \\$1 \\} \\\\ b");
    }
}
