//! Reading a migration file into its parsed statements: the text as the
//! user wrote it, masked where the layout hides SQL (down sections, psql
//! meta-commands, templates), parsed, and marked non-transactional when the
//! layout's marker says so.

use std::path::Path;
use std::sync::Arc;

use crate::diag::SourceFile;
use crate::error::Result;
use crate::sql::{mask_source, parse_file_with, ParsedFile, ReadScope};

use super::{forward_sections, Migration};

/// Reads, masks and parses one migration file.
pub fn load_file(path: &Path, display: String) -> Result<ParsedFile> {
    Ok(parse_source(Arc::new(SourceFile::new(display, crate::error::read_utf8(path)?))))
}

/// Reads and parses one migration of a layer: as [`load_file`], and the
/// file runs outside a transaction when its layout's marker says so.
pub fn load_migration(m: &Migration, display: String) -> Result<ParsedFile> {
    let mut parsed = load_file(&m.path, display)?;
    apply_layout(&mut parsed, m);
    Ok(parsed)
}

/// Marks a parsed migration as non-transactional when its layout says so
/// (sqlx `-- no-transaction`, popx `.autocommit`, diesel `metadata.toml`, ...).
pub fn apply_layout(parsed: &mut ParsedFile, m: &Migration) {
    if !parsed.no_transaction && m.runs_outside_transaction(&parsed.source.text) {
        parsed.no_transaction = true;
    }
}

/// Masks (down sections, psql meta-commands, templates) and parses a file.
pub fn parse_source(source: Arc<SourceFile>) -> ParsedFile {
    parse_source_with(source, ReadScope::All)
}

/// [`parse_source`], reading what `scope` says (a history file the check
/// does not report on needs only what the catalog replays).
pub fn parse_source_with(source: Arc<SourceFile>, scope: ReadScope) -> ParsedFile {
    let sections = forward_sections(&source.text);
    let masked = mask_source(&source.text, sections.as_deref());
    parse_file_with(source.clone(), &masked, scope)
}
