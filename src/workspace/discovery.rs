//! Migration file discovery for the layouts real projects use.
//!
//! | layout | files | version |
//! |---|---|---|
//! | native | `NNNN_name.sql` | `NNNN` |
//! | sqlx | `<version>_<desc>.sql` (and `.up.sql`/`.down.sql`) | digits |
//! | flyway (refinery) | `V<n>__<name>.sql` | `<n>` |
//! | golang-migrate / pop | `<v>_<name>.up.sql` + `.down.sql` | `<v>` |
//! | diesel | `<dir>/up.sql` + `down.sql` | the folder's prefix |
//! | prisma | `<dir>/migration.sql` | the folder's prefix |
//! | dbmate | `-- migrate:up` / `-- migrate:down` sections | file prefix |
//! | goose | `-- +goose Up` / `-- +goose Down` sections | file prefix |
//! | plain | any `*.sql`, lexical order | file stem |
//!
//! Down migrations (files, folders' `down.sql`, down sections) are never part
//! of the forward sequence.

use std::cmp::Ordering;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    Native,
    Sqlx,
    Flyway,
    GolangMigrate,
    Diesel,
    Prisma,
    Dbmate,
    Goose,
    Plain,
}

impl Layout {
    pub const NAMES: &'static [&'static str] = &[
        "native",
        "sqlx",
        "flyway",
        "golang-migrate",
        "diesel",
        "prisma",
        "dbmate",
        "goose",
        "plain",
    ];
    const ALL: [Layout; 9] = [
        Layout::Native,
        Layout::Sqlx,
        Layout::Flyway,
        Layout::GolangMigrate,
        Layout::Diesel,
        Layout::Prisma,
        Layout::Dbmate,
        Layout::Goose,
        Layout::Plain,
    ];

    pub fn name(self) -> &'static str {
        Self::NAMES[Self::ALL.iter().position(|l| *l == self).unwrap_or(8)]
    }

    pub fn from_name(name: &str) -> Option<Layout> {
        match name {
            "refinery" => Some(Layout::Flyway),
            "pop" => Some(Layout::GolangMigrate),
            _ => Self::NAMES.iter().position(|n| *n == name).map(|i| Self::ALL[i]),
        }
    }
}

/// One forward migration.
#[derive(Clone, Debug, Serialize)]
pub struct Migration {
    /// The SQL file to read.
    pub path: PathBuf,
    /// The version part of the name (`0001`, `20240115180414`, `2019-02-26-002946`).
    pub version: String,
    /// The descriptive part of the name.
    pub name: String,
    pub layout: Layout,
}

impl Migration {
    /// The version as a number, when it is one (used for numbering rules).
    pub fn number(&self) -> Option<u64> {
        if !self.version.is_empty() && self.version.bytes().all(|b| b.is_ascii_digit()) {
            self.version.parse().ok()
        } else {
            None
        }
    }

    /// The file name (for diesel/prisma: `<dir>/up.sql`).
    pub fn file_name(&self) -> String {
        let file = self.path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        match self.layout {
            Layout::Diesel | Layout::Prisma => {
                let dir = self
                    .path
                    .parent()
                    .and_then(|p| p.file_name())
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                format!("{dir}/{file}")
            }
            _ => file,
        }
    }
}

/// Splits `<version><sep><name>` where version is the leading run of digits
/// (and `-` for diesel's dates).
fn split_version(stem: &str, allow_dash: bool) -> (String, String) {
    let end = stem
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || (allow_dash && *c == '-')))
        .map_or(stem.len(), |(i, _)| i);
    let version = stem[..end].trim_end_matches('-').to_string();
    let rest = stem[version.len()..].trim_start_matches(['_', '-']);
    (version, rest.to_string())
}

/// Detects the layout of a folder from its entries (and, for dbmate/goose,
/// from the first SQL file's markers).
pub fn detect_layout(dir: &Path) -> Result<Layout> {
    let (files, dirs) = list(dir)?;
    if dirs.iter().any(|d| d.join("up.sql").is_file()) {
        return Ok(Layout::Diesel);
    }
    if dirs.iter().any(|d| d.join("migration.sql").is_file()) {
        return Ok(Layout::Prisma);
    }
    let names: Vec<String> = files.iter().map(|f| file_name(f)).collect();
    if names.iter().any(|n| n.ends_with(".up.sql")) {
        return Ok(
            if names.iter().all(|n| n.starts_with(|c: char| c.is_ascii_digit()))
                && names.iter().any(|n| split_version(n, false).0.len() >= 14)
            {
                Layout::Sqlx
            } else {
                Layout::GolangMigrate
            },
        );
    }
    if names.iter().any(|n| is_flyway(n)) {
        return Ok(Layout::Flyway);
    }
    if let Some(first) = files.iter().find(|f| file_name(f).ends_with(".sql")) {
        let text = std::fs::read_to_string(first).unwrap_or_default();
        if let Some(l) = section_layout(&text) {
            return Ok(l);
        }
    }
    let sql: Vec<&String> = names.iter().filter(|n| n.ends_with(".sql")).collect();
    if !sql.is_empty() && sql.iter().all(|n| native_version(n).is_some()) {
        let widths: Vec<usize> = sql.iter().map(|n| split_version(n, false).0.len()).collect();
        return Ok(if widths.iter().all(|w| *w < 8) {
            Layout::Native
        } else {
            Layout::Sqlx
        });
    }
    Ok(Layout::Plain)
}

fn native_version(name: &str) -> Option<String> {
    let stem = name.strip_suffix(".sql")?;
    let (v, rest) = split_version(stem, false);
    (!v.is_empty() && stem[v.len()..].starts_with('_') && !rest.is_empty()).then_some(v)
}

fn is_flyway(name: &str) -> bool {
    name.strip_prefix('V')
        .and_then(|r| r.split_once("__"))
        .is_some_and(|(v, _)| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'_'))
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
}

fn list(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let p = entry.path();
        if p.is_dir() {
            dirs.push(p);
        } else {
            files.push(p);
        }
    }
    files.sort();
    dirs.sort();
    Ok((files, dirs))
}

/// dbmate or goose markers in a file.
pub fn section_layout(text: &str) -> Option<Layout> {
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with("-- migrate:up") {
            return Some(Layout::Dbmate);
        }
        if l.to_ascii_lowercase().starts_with("-- +goose up") {
            return Some(Layout::Goose);
        }
    }
    None
}

/// The byte ranges of forward SQL in a dbmate or goose file (None: the
/// whole file is forward SQL). Text before the first marker is not applied
/// by either tool, so it is excluded too.
pub fn forward_sections(text: &str) -> Option<Vec<Range<usize>>> {
    let layout = section_layout(text)?;
    let mut sections = Vec::new();
    let mut start: Option<usize> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let l = line.trim().to_ascii_lowercase();
        let (is_up, is_down) = match layout {
            Layout::Dbmate => (l.starts_with("-- migrate:up"), l.starts_with("-- migrate:down")),
            _ => (l.starts_with("-- +goose up"), l.starts_with("-- +goose down")),
        };
        if is_up && start.is_none() {
            start = Some(offset + line.len());
        } else if is_down {
            if let Some(s) = start.take() {
                sections.push(s..offset);
            }
        }
        offset += line.len();
    }
    if let Some(s) = start {
        sections.push(s..text.len());
    }
    Some(sections)
}

/// Compares versions: numerically when both are digits, else lexically.
fn cmp_versions(a: &Migration, b: &Migration) -> Ordering {
    match (a.number(), b.number()) {
        (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.path.cmp(&b.path)),
        _ => a.path.cmp(&b.path),
    }
}

/// Lists the forward migrations of a folder in apply order.
pub fn discover(dir: &Path, layout: Option<Layout>) -> Result<(Layout, Vec<Migration>)> {
    if !dir.exists() {
        return Err(Error::MissingPath { path: dir.to_path_buf() });
    }
    let layout = match layout {
        Some(l) => l,
        None => detect_layout(dir)?,
    };
    let (files, dirs) = list(dir)?;
    let mut out = Vec::new();
    match layout {
        Layout::Diesel | Layout::Prisma => {
            let file = if layout == Layout::Diesel { "up.sql" } else { "migration.sql" };
            for d in dirs {
                let p = d.join(file);
                if p.is_file() {
                    let (version, name) = split_version(&file_name(&d), layout == Layout::Diesel);
                    out.push(Migration {
                        path: p,
                        version,
                        name,
                        layout,
                    });
                }
            }
            out.sort_by(|a, b| a.path.cmp(&b.path));
        }
        _ => {
            for p in files {
                let n = file_name(&p);
                if !n.ends_with(".sql") || n.ends_with(".down.sql") {
                    continue;
                }
                let stem = n.trim_end_matches(".sql").trim_end_matches(".up");
                let (version, name) = match layout {
                    Layout::Flyway => match stem.strip_prefix('V').and_then(|r| r.split_once("__")) {
                        Some((v, name)) => (v.to_string(), name.to_string()),
                        // Repeatable (R__) and other files sort after versioned ones.
                        None => (String::new(), stem.to_string()),
                    },
                    Layout::Plain => (stem.to_string(), stem.to_string()),
                    _ => split_version(stem, false),
                };
                out.push(Migration {
                    path: p,
                    version,
                    name,
                    layout,
                });
            }
            if layout == Layout::Plain {
                out.sort_by(|a, b| a.path.cmp(&b.path));
            } else {
                out.sort_by(cmp_versions);
            }
        }
    }
    Ok((layout, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    fn names(ms: &[Migration]) -> Vec<String> {
        ms.iter().map(|m| m.file_name()).collect()
    }

    #[test]
    fn native_sorts_numerically() {
        let d = tempfile::tempdir().unwrap();
        for f in ["0002_b.sql", "0010_c.sql", "0001_a.sql"] {
            write(d.path(), f, "SELECT 1;");
        }
        let (layout, ms) = discover(d.path(), None).unwrap();
        assert_eq!(layout, Layout::Native);
        assert_eq!(names(&ms), vec!["0001_a.sql", "0002_b.sql", "0010_c.sql"]);
        assert_eq!(ms[2].number(), Some(10));
        assert_eq!(ms[0].name, "a");
    }

    #[test]
    fn golang_migrate_skips_down_files() {
        let d = tempfile::tempdir().unwrap();
        for f in ["1_init.up.sql", "1_init.down.sql", "2_more.up.sql", "2_more.down.sql"] {
            write(d.path(), f, "SELECT 1;");
        }
        let (layout, ms) = discover(d.path(), None).unwrap();
        assert_eq!(layout, Layout::GolangMigrate);
        assert_eq!(names(&ms), vec!["1_init.up.sql", "2_more.up.sql"]);
    }

    #[test]
    fn diesel_and_prisma_folders() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "2019-02-26-002946_create_user/up.sql", "SELECT 1;");
        write(d.path(), "2019-02-26-002946_create_user/down.sql", "SELECT 2;");
        write(d.path(), "2018-01-01-000000_first/up.sql", "SELECT 1;");
        let (layout, ms) = discover(d.path(), None).unwrap();
        assert_eq!(layout, Layout::Diesel);
        assert_eq!(
            names(&ms),
            vec!["2018-01-01-000000_first/up.sql", "2019-02-26-002946_create_user/up.sql"]
        );
        assert_eq!(ms[1].version, "2019-02-26-002946");

        let p = tempfile::tempdir().unwrap();
        write(p.path(), "20240101000000_init/migration.sql", "SELECT 1;");
        write(p.path(), "migration_lock.toml", "provider = \"postgresql\"");
        let (layout, ms) = discover(p.path(), None).unwrap();
        assert_eq!(layout, Layout::Prisma);
        assert_eq!(ms.len(), 1);
    }

    #[test]
    fn flyway_and_sections() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "V2__add.sql", "SELECT 1;");
        write(d.path(), "V10__more.sql", "SELECT 1;");
        write(d.path(), "V1__init.sql", "SELECT 1;");
        let (layout, ms) = discover(d.path(), None).unwrap();
        assert_eq!(layout, Layout::Flyway);
        assert_eq!(names(&ms), vec!["V1__init.sql", "V2__add.sql", "V10__more.sql"]);

        let g = tempfile::tempdir().unwrap();
        write(
            g.path(),
            "20240101_a.sql",
            "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Down\nDROP TABLE a;\n",
        );
        assert_eq!(discover(g.path(), None).unwrap().0, Layout::Goose);
        let text = "-- migrate:up\nCREATE TABLE a (id int);\n\n-- migrate:down\nDROP TABLE a;\n";
        let s = forward_sections(text).unwrap();
        assert_eq!(s.len(), 1);
        assert!(text[s[0].clone()].contains("CREATE TABLE"));
        assert!(!text[s[0].clone()].contains("DROP"));
    }
}
