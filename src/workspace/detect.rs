//! Detecting the layout of a migration folder from its names (and, for
//! dbmate and goose, the section markers inside its files).
//!
//! Some folders fit more than one tool: `<version>_<name>.up.sql` with
//! `.down.sql` files is what golang-migrate, sqlx and pop all write. Then
//! [`Detection::also`] lists the other candidates, and `strata init --from`
//! asks for `--layout` instead of guessing a tool whose transaction markers
//! and history table may not be the project's.

use std::path::Path;

use super::discovery::{file_name, flyway_versioned, list, section_layout, split_version};
use super::Layout;
use crate::error::Result;

/// The layout a folder was detected as, and the other layouts its files fit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detection {
    pub layout: Layout,
    /// Other layouts the files fit equally well (empty: unambiguous).
    pub also: Vec<Layout>,
    /// What decided it, for messages.
    pub evidence: String,
}

impl Detection {
    fn sure(layout: Layout, evidence: impl Into<String>) -> Detection {
        Detection {
            layout,
            also: Vec::new(),
            evidence: evidence.into(),
        }
    }
}

/// How many SQL files are read for dbmate/goose markers.
const MARKER_SAMPLE: usize = 16;

/// A diesel version: `YYYY-MM-DD-HHMMSS` (what `diesel migration generate` writes).
fn diesel_dated(version: &str) -> bool {
    let b = version.as_bytes();
    b.len() >= 17
        && b[..17]
            .iter()
            .enumerate()
            .all(|(i, c)| if matches!(i, 4 | 7 | 10) { *c == b'-' } else { c.is_ascii_digit() })
}

/// Detects the layout of a folder.
pub fn detect(dir: &Path) -> Result<Detection> {
    let (files, dirs) = list(dir)?;
    if dirs.iter().any(|d| d.join("up.sql").is_file()) {
        return Ok(Detection::sure(Layout::Diesel, "folders holding up.sql"));
    }
    if dirs.iter().any(|d| d.join("migration.sql").is_file()) {
        return Ok(Detection::sure(Layout::Prisma, "folders holding migration.sql"));
    }
    let names: Vec<String> = files.iter().map(|f| file_name(f)).collect();
    let pop_specific = names
        .iter()
        .any(|n| super::pop::parse(n).is_some_and(|p| p.dialect.is_some() || p.autocommit || p.fizz));
    if pop_specific {
        return Ok(Detection::sure(Layout::Pop, "dialect, .autocommit or .fizz migration files"));
    }
    let flyway = names.iter().any(|n| {
        n.strip_suffix(".sql")
            .is_some_and(|s| flyway_versioned(s, 'V').is_some() || s.starts_with("R__"))
    });
    if flyway {
        return Ok(Detection::sure(Layout::Flyway, "V<version>__<name>.sql files"));
    }
    // A sample of the files, read once, for the markers inside them.
    let sample: Vec<String> = files
        .iter()
        .filter(|f| file_name(f).ends_with(".sql"))
        .take(MARKER_SAMPLE)
        .map(|f| std::fs::read_to_string(f).unwrap_or_default())
        .collect();
    for text in &sample {
        match section_layout(text) {
            Some(Layout::Dbmate) => return Ok(Detection::sure(Layout::Dbmate, "-- migrate:up sections")),
            Some(l) => return Ok(Detection::sure(l, "-- +goose Up sections")),
            None => {}
        }
    }
    if names.iter().any(|n| n.ends_with(".go")) && names.iter().any(|n| n.ends_with(".sql")) {
        return Ok(Detection::sure(Layout::Goose, "SQL and Go migrations side by side"));
    }
    let sqlx_header = sample.iter().any(|t| Layout::Sqlx.text_says_no_transaction(t));
    let ups: Vec<&String> = names.iter().filter(|n| n.ends_with(".up.sql")).collect();
    // golang-migrate, sqlx and pop read `<version>_<name>.up.sql`; diesel
    // `<YYYY-MM-DD-HHMMSS>_...`. `.up.sql` files named otherwise (authelia's
    // `V0005.Name.up.sql`, read by a runner of its own) are plain SQL files
    // in lexical order, not a folder of which no file is a migration.
    let versioned = |n: &&String| {
        let stem = n.strip_suffix(".up.sql").unwrap_or(n);
        let (v, _) = split_version(stem, true);
        !v.is_empty() && stem[v.len()..].starts_with('_')
    };
    if ups.iter().any(versioned) {
        if ups.iter().any(|n| diesel_dated(&split_version(n, true).0)) {
            return Ok(Detection::sure(Layout::Diesel, "<YYYY-MM-DD-HHMMSS>_<name>.up.sql files"));
        }
        let simple = names
            .iter()
            .any(|n| n.ends_with(".sql") && !n.ends_with(".up.sql") && !n.ends_with(".down.sql"));
        if simple || sqlx_header {
            return Ok(Detection::sure(
                Layout::Sqlx,
                if sqlx_header {
                    "-- no-transaction headers"
                } else {
                    "simple and reversible migrations side by side"
                },
            ));
        }
        return Ok(Detection {
            layout: Layout::GolangMigrate,
            also: vec![Layout::Sqlx, Layout::Pop],
            evidence: "<version>_<name>.up.sql and .down.sql files".into(),
        });
    }
    let sql: Vec<&String> = names.iter().filter(|n| n.ends_with(".sql")).collect();
    let numbered = |n: &str| {
        let stem = n.strip_suffix(".sql").unwrap_or(n);
        let (v, rest) = split_version(stem, false);
        !v.is_empty() && stem[v.len()..].starts_with(['_', '-']) && !rest.is_empty()
    };
    if !sql.is_empty() && sql.iter().all(|n| numbered(n)) {
        if sqlx_header {
            return Ok(Detection::sure(Layout::Sqlx, "-- no-transaction headers"));
        }
        let widths: Vec<usize> = sql.iter().map(|n| split_version(n, false).0.len()).collect();
        let underscore = sql.iter().all(|n| {
            let v = split_version(n, false).0;
            n[v.len()..].starts_with('_')
        });
        if widths.iter().all(|w| *w < 8) || !underscore {
            return Ok(Detection::sure(Layout::Native, "<number>_<name>.sql files"));
        }
        return Ok(Detection::sure(Layout::Sqlx, "<timestamp>_<name>.sql files"));
    }
    Ok(Detection::sure(Layout::Plain, "SQL files in lexical order"))
}

/// The layout of a folder (the first candidate when it is ambiguous).
pub fn detect_layout(dir: &Path) -> Result<Layout> {
    Ok(detect(dir)?.layout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (rel, text) in files {
            let p = d.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        d
    }

    #[test]
    fn up_files_without_a_version_are_plain_sql_in_lexical_order() {
        let d = folder(&[
            ("V0005.ConsentSubjectNULL.up.sql", "SELECT 1;"),
            ("V0005.ConsentSubjectNULL.down.sql", "SELECT 1;"),
            ("V0012.WebAuthn.up.sql", "SELECT 1;"),
        ]);
        let det = detect(d.path()).unwrap();
        assert_eq!(det.layout, Layout::Plain, "{det:?}");
        let (_, found) = crate::workspace::discover(d.path(), None).unwrap();
        let names: Vec<String> = found.iter().map(|m| file_name(&m.path)).collect();
        assert_eq!(names, ["V0005.ConsentSubjectNULL.up.sql", "V0012.WebAuthn.up.sql"]);
        // One versioned file is enough for golang-migrate's naming.
        let d = folder(&[("V1.a.up.sql", ""), ("2_b.up.sql", "")]);
        assert_eq!(detect(d.path()).unwrap().layout, Layout::GolangMigrate);
    }

    #[test]
    fn up_down_files_are_ambiguous_unless_something_tells() {
        let d = folder(&[("1_a.up.sql", ""), ("1_a.down.sql", "")]);
        let det = detect(d.path()).unwrap();
        assert_eq!(det.layout, Layout::GolangMigrate);
        assert_eq!(det.also, vec![Layout::Sqlx, Layout::Pop]);
        let d = folder(&[("1_a.up.sql", "-- no-transaction\nSELECT 1;"), ("1_a.down.sql", "")]);
        assert_eq!(
            detect(d.path()).unwrap(),
            Detection::sure(Layout::Sqlx, "-- no-transaction headers")
        );
        let d = folder(&[("1_a.up.sql", ""), ("1_a.postgres.up.sql", ""), ("1_a.mysql.up.sql", "")]);
        assert_eq!(detect(d.path()).unwrap().layout, Layout::Pop);
        let d = folder(&[
            ("2019-02-26-002946_create_user.up.sql", ""),
            ("down/2019-02-26-002946_create_user.down.sql", ""),
        ]);
        assert_eq!(detect(d.path()).unwrap().layout, Layout::Diesel);
    }

    #[test]
    fn numbered_files() {
        let d = folder(&[("0001-initial.sql", ""), ("0002-more.sql", "")]);
        assert_eq!(detect(d.path()).unwrap().layout, Layout::Native);
        let d = folder(&[("20240101000000_a.sql", "SELECT 1;")]);
        assert_eq!(detect(d.path()).unwrap().layout, Layout::Sqlx);
        let d = folder(&[("v1.00_1_schema.sql", "")]);
        assert_eq!(detect(d.path()).unwrap().layout, Layout::Plain);
        let d = folder(&[("V1.1__a.sql", ""), ("R__views.sql", "")]);
        assert_eq!(detect(d.path()).unwrap().layout, Layout::Flyway);
    }
}
