//! Mapping another tool's history onto a layer's migration files: which
//! files it applied (to be recorded as baseline), which are still pending,
//! and every reason to refuse — a dirty, failed or half-applied state, a
//! recorded version with no file, a checksum that no longer matches, a hole
//! in the applied sequence.

use std::path::Path;

use serde::Serialize;

use super::{checksum, Checksum, ForeignHistory, Recorded, RecordedState, Tool};
use crate::workspace::layout::{cmp_numeric, diesel_version, flyway_segments};
use crate::workspace::{LeftOut, LeftOutReason, Migration};

/// Whether the tool's checksum of a migration was compared with the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChecksumCheck {
    /// The tool's checksum matches the file.
    Verified,
    /// The tool keeps no checksum (or none for this row: a Flyway baseline).
    NotKept,
    /// A repeatable migration whose file changed since: applied again.
    Changed,
    /// Nothing recorded to compare.
    None,
}

/// What strata does with a file (or a recorded version).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Record as applied (`origin = baseline`), without running it.
    Record,
    /// Not applied by the tool: `strata migrate` applies it.
    Pending,
    /// Recorded by the tool, but not a SQL migration strata can manage (a
    /// goose Go migration, a pop fizz file): nothing to record.
    NotSql,
}

/// One line of the mapping.
#[derive(Clone, Debug, Serialize)]
pub struct MappingRow {
    /// The version as the tool recorded it (None: the tool has no row).
    pub recorded: Option<String>,
    pub state: Option<RecordedState>,
    /// The migration file, as shown.
    pub file: Option<String>,
    pub checksum: ChecksumCheck,
    pub action: Action,
}

/// The mapping of one database's foreign history onto a layer.
#[derive(Clone, Debug, Serialize)]
pub struct Mapping {
    pub rows: Vec<MappingRow>,
    /// Indexes (into the layer's migrations) of the files to record.
    #[serde(skip)]
    pub applied: Vec<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error(
        "{relation} is dirty at version {version}: a {tool} migration failed part-way, so the schema is in an unknown \
         state; repair the database and clear the dirty flag with {tool} (`migrate force`), then baseline again"
    )]
    Dirty {
        relation: String,
        tool: &'static str,
        version: String,
    },
    #[error(
        "{relation} records {version} as failed{detail}: it may be half-applied; complete or revert it by hand and \
         resolve it with {tool} ({hint}), then baseline again"
    )]
    Failed {
        relation: String,
        tool: &'static str,
        version: String,
        detail: String,
        hint: &'static str,
    },
    #[error(
        "{relation} records {version} as applied, but layer {layer} has no migration file for it; restore the file \
         (or baseline the layer it belongs to with --layer)"
    )]
    MissingFile { relation: String, version: String, layer: String },
    #[error(
        "{}: {} records the {} checksum {} for {}, the file's is {}: the file changed after {} applied it; restore \
         the applied version of the file",
        .0.file, .0.relation, .0.algorithm, .0.recorded, .0.version, .0.on_disk, .0.tool
    )]
    ChecksumMismatch(Box<Mismatch>),
    #[error(
        "{file} is not applied ({state}), but the later {later} is: strata applies a layer's migrations in order; \
         apply it with {tool} first (or remove it from the layer), then baseline again"
    )]
    Gap {
        file: String,
        later: String,
        state: &'static str,
        tool: &'static str,
    },
    #[error("{relation} holds {rows} rows; golang-migrate keeps exactly one (the current version)")]
    NotOneRow { relation: String, rows: usize },
    #[error("{file}: cannot read: {message}")]
    Unreadable { file: String, message: String },
}

/// A checksum the tool recorded that the file no longer has.
#[derive(Debug)]
pub struct Mismatch {
    pub file: String,
    pub relation: String,
    pub algorithm: &'static str,
    pub tool: &'static str,
    pub version: String,
    pub recorded: String,
    pub on_disk: String,
}

/// A layer's files, as the mapping needs them.
pub struct LayerFiles<'a> {
    pub layer: &'a str,
    pub migrations: &'a [Migration],
    /// The layer's left-out files (a goose Go migration is in the tool's
    /// sequence but not strata's).
    pub left_out: &'a [LeftOut],
    /// How a file is shown (relative to the workspace).
    pub display: &'a dyn Fn(&Path) -> String,
}

fn numeric(v: &str) -> String {
    let t = v.trim_start_matches('0');
    if t.is_empty() {
        "0".into()
    } else {
        t.into()
    }
}

/// Whether `m` is the file of the tool's version `v`.
fn same_version(tool: Tool, m: &Migration, rec: &Recorded) -> bool {
    let v = rec.version.as_str();
    match tool {
        Tool::Sqlx | Tool::GolangMigrate | Tool::Goose => {
            !m.version.is_empty() && m.version.bytes().all(|b| b.is_ascii_digit()) && numeric(&m.version) == numeric(v)
        }
        Tool::Dbmate => m.version == v,
        // popx still finds versions pop recorded as their first 14 digits.
        Tool::Pop => m.version == v || (m.version.len() > 14 && v.len() == 14 && m.version.starts_with(v)),
        Tool::Diesel => diesel_version(&m.version) == diesel_version(v),
        Tool::Prisma => m.rel.split('/').next() == Some(v),
        Tool::Flyway if rec.repeatable => m.repeatable && rec.description.as_deref() == Some(m.name.as_str()),
        Tool::Flyway => !m.repeatable && flyway_segments(&m.version) == flyway_segments(v),
    }
}

/// A recorded version that is a left-out file the tool runs but strata
/// cannot (a goose `.go` migration, a pop `.fizz` file).
fn not_sql(left_out: &[LeftOut], version: &str) -> bool {
    left_out.iter().any(|l| {
        matches!(l.reason, LeftOutReason::GoMigration | LeftOutReason::Fizz) && {
            let name = l.rel.rsplit('/').next().unwrap_or(&l.rel);
            let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
            !digits.is_empty() && numeric(&digits) == numeric(version)
        }
    })
}

fn failed_hint(tool: Tool) -> &'static str {
    match tool {
        Tool::Sqlx => "delete its row from _sqlx_migrations once the database is consistent",
        Tool::Flyway => "`flyway repair`",
        Tool::Prisma => "`prisma migrate resolve --applied` or `--rolled-back`",
        _ => "its own repair command",
    }
}

/// Compares a recorded checksum with the file's.
fn verify(tool: Tool, rec: &Recorded, m: &Migration, shown: &str, relation: &str) -> Result<ChecksumCheck, MappingError> {
    let Some(sum) = &rec.checksum else {
        return Ok(ChecksumCheck::NotKept);
    };
    let bytes = std::fs::read(&m.path).map_err(|e| MappingError::Unreadable {
        file: shown.to_string(),
        message: e.to_string(),
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let (matches, on_disk) = match sum {
        Checksum::Sqlx(hex) => {
            let mine = hex::encode(checksum::sqlx(&bytes));
            (mine == *hex, mine)
        }
        Checksum::Flyway(n) => {
            let mine = checksum::flyway(&text);
            (mine == *n, mine.to_string())
        }
        Checksum::Prisma(hex) => (checksum::prisma_matches(&text, hex), checksum::prisma(&text)),
    };
    if matches {
        Ok(ChecksumCheck::Verified)
    } else if rec.repeatable {
        Ok(ChecksumCheck::Changed)
    } else {
        Err(MappingError::ChecksumMismatch(Box::new(Mismatch {
            file: shown.to_string(),
            relation: relation.to_string(),
            algorithm: tool.checksum().unwrap_or("recorded"),
            tool: tool.name(),
            version: rec.shown(),
            recorded: sum.shown(),
            on_disk,
        })))
    }
}

/// What the tool says about one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileState {
    Unrecorded,
    Applied,
    RolledBack,
}

/// Maps the tool's history onto the layer's files.
pub fn map(history: &ForeignHistory, files: &LayerFiles) -> Result<Mapping, MappingError> {
    let tool = history.tool;
    let relation = history.relation.shown();
    let ms = files.migrations;
    let mut state = vec![FileState::Unrecorded; ms.len()];
    let mut record: Vec<Option<&Recorded>> = vec![None; ms.len()];
    let mut extra: Vec<MappingRow> = Vec::new();
    let find = |rec: &Recorded| ms.iter().position(|m| same_version(tool, m, rec));
    let missing = |rec: &Recorded| MappingError::MissingFile {
        relation: relation.clone(),
        version: rec.shown(),
        layer: files.layer.to_string(),
    };

    if tool == Tool::GolangMigrate {
        if history.rows.len() > 1 {
            return Err(MappingError::NotOneRow {
                relation: relation.clone(),
                rows: history.rows.len(),
            });
        }
        if let Some(current) = history.rows.first() {
            if current.state == RecordedState::Dirty {
                return Err(MappingError::Dirty {
                    relation: relation.clone(),
                    tool: tool.name(),
                    version: current.version.clone(),
                });
            }
            if find(current).is_none() && !not_sql(files.left_out, &current.version) {
                return Err(missing(current));
            }
            for (i, m) in ms.iter().enumerate() {
                if cmp_numeric(&numeric(&m.version), &numeric(&current.version)).is_le() {
                    state[i] = FileState::Applied;
                    record[i] = Some(current);
                }
            }
        }
    } else {
        let mut baseline: Option<&Recorded> = None;
        for rec in &history.rows {
            match rec.state {
                RecordedState::Dirty => {
                    return Err(MappingError::Dirty {
                        relation: relation.clone(),
                        tool: tool.name(),
                        version: rec.shown(),
                    })
                }
                RecordedState::Failed => {
                    return Err(MappingError::Failed {
                        relation: relation.clone(),
                        tool: tool.name(),
                        version: rec.shown(),
                        detail: rec.detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default(),
                        hint: failed_hint(tool),
                    })
                }
                RecordedState::Baseline => baseline = Some(rec),
                RecordedState::Applied | RecordedState::RolledBack | RecordedState::Undone | RecordedState::Deleted => {
                    let applied = rec.state == RecordedState::Applied;
                    match find(rec) {
                        Some(i) => {
                            state[i] = if applied { FileState::Applied } else { FileState::RolledBack };
                            record[i] = Some(rec);
                        }
                        None if applied && not_sql(files.left_out, &rec.version) => extra.push(MappingRow {
                            recorded: Some(rec.shown()),
                            state: Some(rec.state),
                            file: None,
                            checksum: ChecksumCheck::None,
                            action: Action::NotSql,
                        }),
                        None if applied => return Err(missing(rec)),
                        // A rollback or removal of a version with no file left: nothing to do.
                        None => {}
                    }
                }
            }
        }
        // Flyway: every version up to a baseline row counts as applied.
        if let Some(b) = baseline {
            for (i, m) in ms.iter().enumerate() {
                let below = !m.repeatable
                    && crate::workspace::layout::cmp_flyway(&m.version, &b.version).is_le()
                    && state[i] == FileState::Unrecorded;
                if below {
                    state[i] = FileState::Applied;
                    record[i] = Some(b);
                }
            }
        }
    }

    let mut rows = Vec::new();
    let mut applied = Vec::new();
    for (i, m) in ms.iter().enumerate() {
        let shown = (files.display)(&m.path);
        let rec = record[i];
        let mut check = ChecksumCheck::None;
        let mut action = Action::Pending;
        if state[i] == FileState::Applied {
            let r = rec.expect("an applied file has its record");
            check = if r.state == RecordedState::Baseline {
                ChecksumCheck::NotKept
            } else {
                verify(tool, r, m, &shown, &relation)?
            };
            if check != ChecksumCheck::Changed {
                action = Action::Record;
                applied.push(i);
            }
        }
        let recorded = rec.map(|r| match tool {
            Tool::GolangMigrate if !same_version(tool, m, r) => format!("(below {})", r.version),
            _ if r.state == RecordedState::Baseline => format!("(below baseline {})", r.version),
            _ => r.shown(),
        });
        rows.push(MappingRow {
            recorded,
            state: rec.map(|r| match r.state {
                RecordedState::Baseline => RecordedState::Applied,
                s => s,
            }),
            file: Some(shown),
            checksum: check,
            action,
        });
    }

    // No hole below the last applied versioned file.
    let versioned: Vec<usize> = (0..ms.len()).filter(|&i| !ms[i].repeatable).collect();
    if let Some(&last) = versioned.iter().rev().find(|&&i| rows[i].action == Action::Record) {
        if let Some(&hole) = versioned.iter().find(|&&i| i < last && rows[i].action != Action::Record) {
            return Err(MappingError::Gap {
                file: (files.display)(&ms[hole].path),
                later: (files.display)(&ms[last].path),
                state: if state[hole] == FileState::RolledBack {
                    "rolled back"
                } else {
                    "not recorded"
                },
                tool: tool.name(),
            });
        }
    }
    rows.extend(extra);
    Ok(Mapping { rows, applied })
}

#[cfg(test)]
#[path = "mapping_tests.rs"]
mod tests;
