//! Migration file discovery for the layouts real projects use, each in its
//! tool's own apply order.
//!
//! | layout | forward files | version | order |
//! |---|---|---|---|
//! | native | `NNNN_name.sql` (or `NNNN-name.sql`) | `NNNN` | numeric |
//! | sqlx | `<version>_<desc>.sql`, `.up.sql` | digits | numeric |
//! | flyway (refinery) | `V<v>__<name>.sql`, then `R__<name>.sql` | `<v>` | numeric segments |
//! | golang-migrate | `<v>_<name>.up.sql` | digits | numeric |
//! | pop / popx | `<v>_<name>[.postgres].[autocommit.]up.sql` | digits | version text |
//! | diesel | `<v>_<name>/up.sql` (or `<v>_<name>.up.sql`) | the folder's prefix | version without dashes |
//! | prisma | `<dir>/migration.sql` | the folder's prefix | folder name |
//! | dbmate | `<v>_<name>.sql`, `-- migrate:up` sections | digits | file name |
//! | goose | `<v>_<name>.sql`, `-- +goose Up` sections | digits | numeric |
//! | plain | any `*.sql` | file stem | file name |
//!
//! Down migrations (files, folders' `down.sql`, down sections), Flyway undo
//! files and other dialects' files are never part of the forward sequence;
//! [`Discovery::left_out`] says what was left out and why.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::layout::{dbmate_marker, goose_marker, Layout, Order, SectionDirection};
use crate::error::{Error, Result};

pub use super::detect::{detect, detect_layout, Detection};

/// One forward migration.
#[derive(Clone, Debug, Serialize)]
pub struct Migration {
    /// The SQL file to read.
    pub path: PathBuf,
    /// The path relative to the layer's folder, with `/` (`0001_a.sql`,
    /// `2019-11-15-182353_Add email/up.sql`): its key in strata.sum.
    pub rel: String,
    /// The version part of the name (`0001`, `20240115180414`,
    /// `2019-02-26-002946`, `1.2.3`; `R__<name>` for a repeatable migration).
    pub version: String,
    /// The descriptive part of the name.
    pub name: String,
    pub layout: Layout,
    /// A Flyway repeatable (`R__`) migration: applied after the versioned
    /// ones, and again whenever its checksum changes.
    pub repeatable: bool,
    /// The file's name or a file beside it says it runs outside a
    /// transaction (popx `.autocommit`, diesel `metadata.toml`, Flyway
    /// `<script>.conf`); markers inside the file are read with it.
    pub declared_no_transaction: bool,
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

    /// The name shown and keyed in strata.sum: the path relative to the
    /// layer's folder (for diesel/prisma: `<dir>/up.sql`).
    pub fn file_name(&self) -> String {
        self.rel.clone()
    }

    /// Whether this migration runs outside a transaction, given its text:
    /// strata's own header, or its layout's marker.
    pub fn runs_outside_transaction(&self, text: &str) -> bool {
        self.declared_no_transaction || self.layout.text_says_no_transaction(text) || crate::sql::suppress::has_no_transaction_header(text)
    }
}

/// Why a file of a migration folder is not part of the forward sequence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "reason", content = "detail")]
pub enum LeftOutReason {
    /// A down (revert) migration.
    Down,
    /// A Flyway undo (`U<version>__`) migration.
    Undo,
    /// A pop/popx file for another database (`mysql`, `sqlite3`, `cockroach`).
    OtherDialect(String),
    /// A pop/popx generic file replaced by the PostgreSQL file of its version.
    Superseded(String),
    /// A Go migration (goose): compiled code strata cannot run.
    GoMigration,
    /// A pop fizz file (pop's Go DSL, not SQL).
    Fizz,
    /// A Flyway callback (`beforeMigrate.sql`, ...) or baseline migration (`B<version>__`).
    FlywayScript(String),
    /// A folder with no migration file in it.
    NoMigrationFile(String),
    /// A `.sql` file whose name is not a migration name of the layout.
    NotAMigrationName(String),
    /// Not SQL.
    NotSql,
}

impl LeftOutReason {
    /// A short, plural-friendly description for `init --from`'s summary.
    pub fn describe(&self) -> String {
        match self {
            LeftOutReason::Down => "down migrations (never applied forward)".into(),
            LeftOutReason::Undo => "Flyway undo migrations (never applied forward)".into(),
            LeftOutReason::OtherDialect(d) => format!("{d} migrations (another database)"),
            LeftOutReason::Superseded(_) => "generic migrations replaced by their PostgreSQL file".into(),
            LeftOutReason::GoMigration => "Go migrations (compiled code; strata runs SQL only)".into(),
            LeftOutReason::Fizz => "fizz migrations (pop's Go DSL, not SQL)".into(),
            LeftOutReason::FlywayScript(kind) => format!("Flyway {kind}"),
            LeftOutReason::NoMigrationFile(f) => format!("folders without {f}"),
            LeftOutReason::NotAMigrationName(pattern) => format!("SQL files not named like a migration ({pattern})"),
            LeftOutReason::NotSql => "files that are not SQL".into(),
        }
    }
}

/// A file or folder left out of the forward sequence.
#[derive(Clone, Debug, Serialize)]
pub struct LeftOut {
    /// Relative to the layer's folder, with `/`.
    pub rel: String,
    pub reason: LeftOutReason,
}

/// What a migration folder holds, in one layout.
#[derive(Clone, Debug, Serialize)]
pub struct Discovery {
    pub layout: Layout,
    /// The forward migrations, in apply order.
    pub migrations: Vec<Migration>,
    pub left_out: Vec<LeftOut>,
}

/// Splits `<version><sep><name>` where version is the leading run of digits
/// (and `-` for diesel's dates).
pub(crate) fn split_version(stem: &str, allow_dash: bool) -> (String, String) {
    let end = stem
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || (allow_dash && *c == '-')))
        .map_or(stem.len(), |(i, _)| i);
    let version = stem[..end].trim_end_matches('-').to_string();
    let rest = stem[version.len()..].trim_start_matches(['_', '-']);
    (version, rest.to_string())
}

pub(crate) fn file_name(p: &Path) -> String {
    p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The files and folders of `dir` (hidden ones left out), sorted.
pub(crate) fn list(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        // The listing gives the name: no path to take apart again.
        let name = entry.file_name();
        if name.as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let p = entry.path();
        // The entry's type comes with the listing: only a symbolic link
        // needs a look at what it points to.
        let is_dir = match entry.file_type() {
            Ok(t) if !t.is_symlink() => t.is_dir(),
            _ => p.is_dir(),
        };
        if is_dir {
            dirs.push((name, p));
        } else {
            files.push((name, p));
        }
    }
    // All in `dir`: their names order them as their paths would.
    let sorted = |mut v: Vec<(std::ffi::OsString, PathBuf)>| {
        v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        v.into_iter().map(|(_, p)| p).collect::<Vec<_>>()
    };
    Ok((sorted(files), sorted(dirs)))
}

/// dbmate or goose markers in a file.
pub fn section_layout(text: &str) -> Option<Layout> {
    // Most files have neither: one fast search instead of a look at every line.
    let has = |marker: &[u8]| memchr::memmem::find(text.as_bytes(), marker).is_some();
    if !has(b"migrate:") && !has(b"+goose") {
        return None;
    }
    for line in text.lines() {
        if dbmate_marker(line).is_some_and(|(d, _)| d == SectionDirection::Up) {
            return Some(Layout::Dbmate);
        }
        if goose_marker(line) == Some(SectionDirection::Up) {
            return Some(Layout::Goose);
        }
    }
    None
}

/// The byte ranges of forward SQL in a dbmate or goose file (None: the
/// whole file is forward SQL). Text before the first marker is not applied
/// by either tool, so it is excluded too.
pub fn forward_sections(text: &str) -> Option<Vec<std::ops::Range<usize>>> {
    let layout = section_layout(text)?;
    let mut sections = Vec::new();
    let mut start: Option<usize> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let dir = match layout {
            Layout::Dbmate => dbmate_marker(line).map(|(d, _)| d),
            _ => goose_marker(line),
        };
        match dir {
            Some(SectionDirection::Up) if start.is_none() => start = Some(offset + line.len()),
            Some(SectionDirection::Down) => {
                if let Some(s) = start.take() {
                    sections.push(s..offset);
                }
            }
            _ => {}
        }
        offset += line.len();
    }
    if let Some(s) = start {
        sections.push(s..text.len());
    }
    Some(sections)
}

/// Lists the forward migrations of a folder in apply order.
pub fn discover(dir: &Path, layout: Option<Layout>) -> Result<(Layout, Vec<Migration>)> {
    let d = discover_all(dir, layout)?;
    Ok((d.layout, d.migrations))
}

/// Lists a folder's forward migrations in apply order, and what was left out.
pub fn discover_all(dir: &Path, layout: Option<Layout>) -> Result<Discovery> {
    if !dir.exists() {
        return Err(Error::MissingPath { path: dir.to_path_buf() });
    }
    let layout = match layout {
        Some(l) => l,
        None => detect(dir)?.layout,
    };
    let mut found = Found {
        dir,
        layout,
        migrations: Vec::new(),
        left_out: Vec::new(),
    };
    let (files, dirs) = list(dir)?;
    match layout {
        Layout::Diesel | Layout::Prisma => found.folders(&dirs)?,
        _ => {
            for d in &dirs {
                found.folder_left_out(d)?;
            }
        }
    }
    if layout == Layout::Prisma {
        check_prisma_provider(dir)?;
    }
    for p in &files {
        found.file(p)?;
    }
    if layout == Layout::Pop {
        super::pop::prefer_postgres(&mut found.migrations, &mut found.left_out);
    }
    sort(layout, &mut found.migrations);
    found.left_out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(Discovery {
        layout,
        migrations: found.migrations,
        left_out: found.left_out,
    })
}

/// Sorts migrations into their tool's apply order (ties by file name).
fn sort(layout: Layout, ms: &mut [Migration]) {
    ms.sort_by(|a, b| match layout.order() {
        Order::Name => a.rel.cmp(&b.rel),
        Order::Segments => a.repeatable.cmp(&b.repeatable).then_with(|| {
            if a.repeatable {
                a.name.cmp(&b.name)
            } else {
                layout.cmp_versions(&a.version, &b.version)
            }
            .then_with(|| a.rel.cmp(&b.rel))
        }),
        Order::Numeric | Order::VersionText => layout.cmp_versions(&a.version, &b.version).then_with(|| a.rel.cmp(&b.rel)),
    });
}

/// Discovery in progress.
struct Found<'a> {
    dir: &'a Path,
    layout: Layout,
    migrations: Vec<Migration>,
    left_out: Vec<LeftOut>,
}

impl Found<'_> {
    fn rel(&self, p: &Path) -> String {
        super::display_path(self.dir, p)
    }

    fn leave(&mut self, p: &Path, reason: LeftOutReason) {
        let rel = self.rel(p);
        self.left_out.push(LeftOut { rel, reason });
    }

    fn push(&mut self, path: &Path, version: String, name: String, repeatable: bool, declared_no_transaction: bool) {
        let rel = self.rel(path);
        self.migrations.push(Migration {
            path: path.to_path_buf(),
            rel,
            version,
            name,
            layout: self.layout,
            repeatable,
            declared_no_transaction,
        });
    }

    /// Diesel and Prisma: one folder per migration.
    fn folders(&mut self, dirs: &[PathBuf]) -> Result<()> {
        let file = if self.layout == Layout::Diesel { "up.sql" } else { "migration.sql" };
        for d in dirs {
            let p = d.join(file);
            if !p.is_file() {
                self.folder_left_out(d)?;
                continue;
            }
            let (version, name) = split_version(&file_name(d), self.layout == Layout::Diesel);
            let no_tx = self.layout == Layout::Diesel && diesel_no_transaction(&d.join("metadata.toml"))?;
            self.push(&p, version, name, false, no_tx);
            if self.layout == Layout::Diesel && d.join("down.sql").is_file() {
                self.leave(&d.join("down.sql"), LeftOutReason::Down);
            }
        }
        Ok(())
    }

    /// A folder that holds no migration: a folder of down files (`down/`)
    /// is reported as its down migrations, any other one as a folder.
    fn folder_left_out(&mut self, d: &Path) -> Result<()> {
        let (files, dirs) = list(d)?;
        if dirs.is_empty() && !files.is_empty() && files.iter().all(|f| file_name(f).ends_with(".down.sql")) {
            for f in files {
                self.leave(&f, LeftOutReason::Down);
            }
            return Ok(());
        }
        let expected = match self.layout {
            Layout::Diesel => "up.sql",
            Layout::Prisma => "migration.sql",
            _ => "migrations (this layout keeps its files at the top level)",
        };
        let mut rel = self.rel(d);
        rel.push('/');
        self.left_out.push(LeftOut {
            rel,
            reason: LeftOutReason::NoMigrationFile(expected.into()),
        });
        Ok(())
    }

    fn file(&mut self, p: &Path) -> Result<()> {
        let n = file_name(p);
        if self.layout == Layout::Pop {
            return super::pop::file(self.dir, p, &n).map(|outcome| match outcome {
                super::pop::Outcome::Migration(m) => self.migrations.push(*m),
                super::pop::Outcome::LeftOut(l) => self.left_out.push(l),
            });
        }
        if n.ends_with(".go") && self.layout == Layout::Goose {
            self.leave(p, LeftOutReason::GoMigration);
            return Ok(());
        }
        let Some(stem) = n.strip_suffix(".sql") else {
            let sidecar = n.strip_suffix(".conf").is_some_and(|s| s.ends_with(".sql"));
            let known = (self.layout == Layout::Flyway && sidecar) || (self.layout == Layout::Prisma && n == "migration_lock.toml");
            if !known {
                self.leave(p, LeftOutReason::NotSql);
            }
            return Ok(());
        };
        if stem.ends_with(".down") {
            self.leave(p, LeftOutReason::Down);
            return Ok(());
        }
        let up = stem.strip_suffix(".up");
        let stem = up.unwrap_or(stem);
        let not_named = |pattern: &str| LeftOutReason::NotAMigrationName(pattern.into());
        match self.layout {
            Layout::Flyway => self.flyway(p, stem)?,
            Layout::Plain => self.push(p, stem.to_string(), stem.to_string(), false, false),
            Layout::Diesel => {
                let (version, name) = split_version(stem, true);
                if version.is_empty() || up.is_none() {
                    self.leave(p, not_named("<version>_<name>/up.sql"));
                } else {
                    self.push(p, version, name, false, false);
                }
            }
            Layout::GolangMigrate if up.is_none() => self.leave(p, not_named("<version>_<title>.up.sql")),
            Layout::Prisma => self.leave(p, not_named("<timestamp>_<name>/migration.sql")),
            layout => {
                // dbmate takes any leading digits; the others want `_` after them.
                let (version, name) = split_version(stem, false);
                let sep_ok = match layout {
                    Layout::Dbmate => true,
                    Layout::Native => stem[version.len()..].starts_with(['_', '-']),
                    _ => stem[version.len()..].starts_with('_'),
                };
                if version.is_empty() || !sep_ok {
                    self.leave(p, not_named(layout.naming().pattern()));
                } else {
                    self.push(p, version, name, false, false);
                }
            }
        }
        Ok(())
    }

    /// Flyway: `V<version>__<desc>`, `R__<desc>`; undo, baseline and
    /// callback scripts are not forward migrations.
    fn flyway(&mut self, p: &Path, stem: &str) -> Result<()> {
        let conf = p.with_file_name(format!("{}.conf", file_name(p)));
        let no_tx = conf.is_file() && flyway_no_transaction(&conf)?;
        if let Some((v, name)) = flyway_versioned(stem, 'V') {
            self.push(p, v.to_string(), name.replace('_', " "), false, no_tx);
        } else if let Some(name) = stem.strip_prefix("R__") {
            self.push(p, stem.to_string(), name.replace('_', " "), true, no_tx);
        } else if flyway_versioned(stem, 'U').is_some() {
            self.leave(p, LeftOutReason::Undo);
        } else if flyway_versioned(stem, 'B').is_some() {
            self.leave(p, LeftOutReason::FlywayScript("baseline migrations (B<version>__)".into()));
        } else if stem.starts_with("before") || stem.starts_with("after") {
            self.leave(p, LeftOutReason::FlywayScript("callbacks".into()));
        } else {
            self.leave(p, LeftOutReason::NotAMigrationName("V<version>__<name>.sql".into()));
        }
        Ok(())
    }
}

/// `<prefix><version>__<description>` with a version of digits, `.` and `_`.
pub(crate) fn flyway_versioned(stem: &str, prefix: char) -> Option<(&str, &str)> {
    let (v, name) = stem.strip_prefix(prefix)?.split_once("__")?;
    (!v.is_empty() && v.starts_with(|c: char| c.is_ascii_digit()) && v.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'_'))
        .then_some((v, name))
}

/// diesel's `metadata.toml`: `run_in_transaction = false`.
fn diesel_no_transaction(path: &Path) -> Result<bool> {
    if !path.is_file() {
        return Ok(false);
    }
    let text = crate::error::read_utf8(path)?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| Error::config_at(path, &text, e.span().map(|s| s.start), e.message()))?;
    match table.get("run_in_transaction") {
        None => Ok(false),
        Some(toml::Value::Boolean(b)) => Ok(!b),
        Some(_) => Err(Error::config_at(
            path,
            &text,
            text.find("run_in_transaction"),
            "run_in_transaction must be true or false",
        )),
    }
}

/// A Flyway script configuration file: `executeInTransaction=false`.
fn flyway_no_transaction(path: &Path) -> Result<bool> {
    let text = crate::error::read_utf8(path)?;
    Ok(text.lines().any(|l| {
        l.split_once('=')
            .is_some_and(|(k, v)| k.trim() == "executeInTransaction" && v.trim().eq_ignore_ascii_case("false"))
    }))
}

/// Prisma's `migration_lock.toml` names the database the migrations are
/// written for; strata applies PostgreSQL only.
fn check_prisma_provider(dir: &Path) -> Result<()> {
    let path = dir.join("migration_lock.toml");
    if !path.is_file() {
        return Ok(());
    }
    let text = crate::error::read_utf8(&path)?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| Error::config_at(&path, &text, e.span().map(|s| s.start), e.message()))?;
    match table.get("provider").and_then(toml::Value::as_str) {
        None | Some("postgresql" | "postgres") => Ok(()),
        Some(other) => Err(Error::config_at(
            &path,
            &text,
            text.find("provider"),
            format!(
                "these Prisma migrations are written for provider `{other}`; strata applies PostgreSQL migrations only \
                 (provider = \"postgresql\")"
            ),
        )),
    }
}

#[cfg(test)]
#[path = "discovery_tests.rs"]
mod tests;
