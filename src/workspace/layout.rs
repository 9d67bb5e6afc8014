//! Migration layouts: how each tool that strata adopts names, orders and
//! marks its migration files.
//!
//! A [`Layout`] is the one place that knows a tool's conventions: its file
//! names ([`Naming`]), the order it applies files in ([`Order`]), where its
//! down migrations live ([`DownFiles`]), how a file says it must run outside
//! a transaction ([`TransactionMarker`]). Discovery, `strata new`, messages
//! and fixes read these instead of matching on layout names of their own
//! (the history table each tool keeps is `crate::pg::adopt::Tool`).

use std::cmp::Ordering;

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// strata's own: `NNNN_name.sql`.
    Native,
    Sqlx,
    /// Flyway and refinery: `V<version>__<name>.sql`, `R__<name>.sql`.
    Flyway,
    GolangMigrate,
    /// gobuffalo/pop and ory/popx: one folder for every dialect.
    Pop,
    Diesel,
    Prisma,
    Dbmate,
    Goose,
    /// Any `*.sql`, in lexical order.
    Plain,
}

/// How a file says it runs outside a transaction, in a layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "marker")]
pub enum TransactionMarker {
    /// The file's first bytes (sqlx: `-- no-transaction`).
    FirstLine(&'static str),
    /// An annotation on a comment line anywhere in the file, compared
    /// case-insensitively with runs of blanks collapsed (goose).
    Annotation(&'static str),
    /// An option on the up-section marker line (dbmate:
    /// `-- migrate:up transaction:false`).
    SectionOption(&'static str),
    /// A setting in a file beside the migration (diesel: `metadata.toml`
    /// with `run_in_transaction = false`; Flyway: `<script>.conf` with
    /// `executeInTransaction=false`).
    Sidecar { file: &'static str, setting: &'static str },
    /// A part of the file name (popx: `.autocommit.`).
    FileName(&'static str),
    /// Only strata's own header, `-- strata: no-transaction`.
    StrataHeader,
}

/// Where a layout keeps its down (revert) migrations; they are never part of
/// the forward sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "name")]
pub enum DownFiles {
    /// None: forward only.
    None,
    /// A file beside the up file: `<version>_<name>.down.sql`.
    Sibling(&'static str),
    /// A file in the migration's folder (`down.sql`).
    InFolder(&'static str),
    /// A section of the same file after this marker.
    Section(&'static str),
    /// Separate undo files with this prefix (Flyway `U<version>__`).
    Undo(&'static str),
}

/// How a layout names a new migration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Naming {
    /// `<number>_<name>.sql`, zero-padded to `migrations.number_width`.
    Numbered,
    /// `<YYYYMMDDHHMMSS>_<name>.sql`.
    Timestamp,
    /// `<YYYYMMDDHHMMSS>_<name>.up.sql` (and `.down.sql`).
    TimestampUpDown,
    /// `<number>_<name>.up.sql` (and `.down.sql`).
    NumberedUpDown,
    /// `V<version>__<name>.sql`.
    FlywayVersioned,
    /// `<YYYY-MM-DD-HHMMSS>_<name>/up.sql` (and `down.sql`).
    DieselFolder,
    /// `<YYYYMMDDHHMMSS>_<name>/migration.sql`.
    PrismaFolder,
    /// Any `*.sql`.
    Any,
}

impl Naming {
    /// The pattern, for messages.
    pub fn pattern(self) -> &'static str {
        match self {
            Naming::Numbered => "<number>_<name>.sql",
            Naming::Timestamp => "<YYYYMMDDHHMMSS>_<name>.sql",
            Naming::TimestampUpDown => "<YYYYMMDDHHMMSS>_<name>.up.sql",
            Naming::NumberedUpDown => "<number>_<name>.up.sql",
            Naming::FlywayVersioned => "V<version>__<name>.sql",
            Naming::DieselFolder => "<YYYY-MM-DD-HHMMSS>_<name>/up.sql",
            Naming::PrismaFolder => "<YYYYMMDDHHMMSS>_<name>/migration.sql",
            Naming::Any => "<name>.sql",
        }
    }
}

/// The order a tool applies its migrations in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Order {
    /// Versions as integers (not zero-padded ones included).
    Numeric,
    /// Versions as strings (pop, diesel without its dashes).
    VersionText,
    /// File or folder names as strings (dbmate, Prisma, plain).
    Name,
    /// Flyway: dot-separated numeric segments, trailing zeros ignored;
    /// repeatable migrations after every versioned one, by description.
    Segments,
}

impl Layout {
    pub const ALL: [Layout; 10] = [
        Layout::Native,
        Layout::Sqlx,
        Layout::Flyway,
        Layout::GolangMigrate,
        Layout::Pop,
        Layout::Diesel,
        Layout::Prisma,
        Layout::Dbmate,
        Layout::Goose,
        Layout::Plain,
    ];

    /// Every name `migrations.layout` and `--layout` accept (aliases included).
    pub const NAMES: &'static [&'static str] = &[
        "native",
        "sqlx",
        "flyway",
        "refinery",
        "golang-migrate",
        "pop",
        "popx",
        "diesel",
        "prisma",
        "dbmate",
        "goose",
        "plain",
    ];

    pub fn name(self) -> &'static str {
        match self {
            Layout::Native => "native",
            Layout::Sqlx => "sqlx",
            Layout::Flyway => "flyway",
            Layout::GolangMigrate => "golang-migrate",
            Layout::Pop => "pop",
            Layout::Diesel => "diesel",
            Layout::Prisma => "prisma",
            Layout::Dbmate => "dbmate",
            Layout::Goose => "goose",
            Layout::Plain => "plain",
        }
    }

    pub fn from_name(name: &str) -> Option<Layout> {
        match name {
            "refinery" => Some(Layout::Flyway),
            "popx" => Some(Layout::Pop),
            _ => Self::ALL.iter().copied().find(|l| l.name() == name),
        }
    }

    /// Whether the tool runs each migration inside a transaction of its own
    /// (its marker opting a file out), rather than sending the file to
    /// PostgreSQL as one multi-statement query, in which the file's own
    /// `BEGIN` and `COMMIT` manage its transactions: golang-migrate, and
    /// Prisma, whose documented way to make a PostgreSQL migration atomic
    /// is to add `BEGIN;` and `COMMIT;` to it. `None` when the layout names
    /// no tool (any `*.sql`; strata's own numbering, outside a workspace,
    /// is only a way of naming files).
    pub fn wraps_each_file(self) -> Option<bool> {
        match self {
            Layout::Sqlx | Layout::Goose | Layout::Dbmate | Layout::Diesel | Layout::Flyway | Layout::Pop => Some(true),
            Layout::GolangMigrate | Layout::Prisma => Some(false),
            Layout::Native | Layout::Plain => None,
        }
    }

    pub fn transaction_marker(self) -> TransactionMarker {
        match self {
            Layout::Sqlx => TransactionMarker::FirstLine("-- no-transaction"),
            Layout::Goose => TransactionMarker::Annotation("-- +goose NO TRANSACTION"),
            Layout::Dbmate => TransactionMarker::SectionOption("transaction:false"),
            Layout::Diesel => TransactionMarker::Sidecar {
                file: "metadata.toml",
                setting: "run_in_transaction = false",
            },
            Layout::Flyway => TransactionMarker::Sidecar {
                file: "<script>.conf",
                setting: "executeInTransaction=false",
            },
            Layout::Pop => TransactionMarker::FileName(".autocommit"),
            Layout::Native | Layout::GolangMigrate | Layout::Prisma | Layout::Plain => TransactionMarker::StrataHeader,
        }
    }

    pub fn down_files(self) -> DownFiles {
        match self {
            Layout::Sqlx | Layout::GolangMigrate | Layout::Pop => DownFiles::Sibling(".down.sql"),
            Layout::Diesel => DownFiles::InFolder("down.sql"),
            Layout::Dbmate => DownFiles::Section("-- migrate:down"),
            Layout::Goose => DownFiles::Section("-- +goose Down"),
            Layout::Flyway => DownFiles::Undo("U"),
            Layout::Native | Layout::Prisma | Layout::Plain => DownFiles::None,
        }
    }

    pub fn naming(self) -> Naming {
        match self {
            Layout::Native => Naming::Numbered,
            Layout::Sqlx | Layout::Dbmate | Layout::Goose => Naming::Timestamp,
            Layout::Pop => Naming::TimestampUpDown,
            Layout::GolangMigrate => Naming::NumberedUpDown,
            Layout::Flyway => Naming::FlywayVersioned,
            Layout::Diesel => Naming::DieselFolder,
            Layout::Prisma => Naming::PrismaFolder,
            Layout::Plain => Naming::Any,
        }
    }

    pub fn order(self) -> Order {
        match self {
            Layout::Native | Layout::Sqlx | Layout::GolangMigrate | Layout::Goose => Order::Numeric,
            Layout::Pop | Layout::Diesel => Order::VersionText,
            Layout::Dbmate | Layout::Prisma | Layout::Plain => Order::Name,
            Layout::Flyway => Order::Segments,
        }
    }

    /// Whether the text of a file of this layout declares that it runs
    /// outside a transaction (markers in file names and sidecar files are
    /// read by discovery: [`super::Migration::declared_no_transaction`]).
    pub fn text_says_no_transaction(self, text: &str) -> bool {
        match self.transaction_marker() {
            TransactionMarker::FirstLine(marker) => text.strip_prefix('\u{feff}').unwrap_or(text).starts_with(marker),
            // Each line is compared only in a file that holds the marker's
            // tool name at all (the comparison allocates per line: a plain
            // check asks every layout about every file).
            TransactionMarker::Annotation(marker) => {
                let wanted = normalize_annotation(marker);
                let tool = marker.trim_start_matches(['-', ' ', '+']).split(' ').next().unwrap_or("");
                contains_ignore_case(text, tool)
                    && text
                        .lines()
                        .filter(|l| l.trim_start().starts_with("--") && contains_ignore_case(l, tool))
                        .any(|l| normalize_annotation(l) == wanted)
            }
            TransactionMarker::SectionOption(option) => {
                memchr::memmem::find(text.as_bytes(), b"migrate:").is_some()
                    && text.lines().any(|l| {
                        dbmate_marker(l)
                            .filter(|(dir, _)| *dir == SectionDirection::Up)
                            .is_some_and(|(_, options)| options.split_whitespace().any(|o| o == option))
                    })
            }
            TransactionMarker::Sidecar { .. } | TransactionMarker::FileName(_) | TransactionMarker::StrataHeader => false,
        }
    }

    /// Compares two versions of this layout (apply order).
    pub fn cmp_versions(self, a: &str, b: &str) -> Ordering {
        match self.order() {
            Order::Numeric => cmp_numeric(a, b),
            Order::Segments => cmp_flyway(a, b),
            Order::VersionText if self == Layout::Diesel => diesel_version(a).cmp(&diesel_version(b)),
            Order::VersionText | Order::Name => a.cmp(b),
        }
    }
}

/// Whether `needle` (ASCII) occurs in `text`, ignoring ASCII case.
fn contains_ignore_case(text: &str, needle: &str) -> bool {
    let (t, n) = (text.as_bytes(), needle.as_bytes());
    let Some(&first) = n.first() else { return true };
    memchr::memchr2_iter(first.to_ascii_lowercase(), first.to_ascii_uppercase(), t)
        .any(|i| t.get(i..i + n.len()).is_some_and(|w| w.eq_ignore_ascii_case(n)))
}

/// A comment line lower-cased with its runs of blanks collapsed (goose's
/// annotations are compared this way).
fn normalize_annotation(line: &str) -> String {
    let Some(rest) = line.trim().strip_prefix("--") else {
        return String::new();
    };
    format!("-- {}", rest.split_whitespace().collect::<Vec<_>>().join(" ").to_ascii_lowercase())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SectionDirection {
    Up,
    Down,
}

/// A dbmate section marker (`-- migrate:up [options]`, spaces after `--`
/// optional, as dbmate's own pattern) and its options.
pub(crate) fn dbmate_marker(line: &str) -> Option<(SectionDirection, &str)> {
    let rest = line.trim_start().strip_prefix("--")?.trim_start().strip_prefix("migrate:")?;
    let (dir, options) = if let Some(o) = rest.strip_prefix("up") {
        (SectionDirection::Up, o)
    } else if let Some(o) = rest.strip_prefix("down") {
        (SectionDirection::Down, o)
    } else {
        return None;
    };
    (options.is_empty() || options.starts_with(char::is_whitespace)).then_some((dir, options.trim()))
}

/// A goose section marker (`-- +goose Up` / `Down`, any case).
pub(crate) fn goose_marker(line: &str) -> Option<SectionDirection> {
    let rest = line.trim_start().strip_prefix("--")?.trim_start().strip_prefix("+goose")?;
    match rest.trim().to_ascii_lowercase().as_str() {
        "up" => Some(SectionDirection::Up),
        "down" => Some(SectionDirection::Down),
        _ => None,
    }
}

/// Integers of any length, compared as numbers (`9` < `10`, `007` = `7`);
/// anything that is not all digits sorts after, as text.
pub fn cmp_numeric(a: &str, b: &str) -> Ordering {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    match (digits(a), digits(b)) {
        (true, true) => {
            let (x, y) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
            x.len().cmp(&y.len()).then_with(|| x.cmp(y))
        }
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.cmp(b),
    }
}

/// Flyway's version order: `_` reads as `.`, segments compare as numbers,
/// trailing zero segments do not count (`1.0` = `1`).
pub fn cmp_flyway(a: &str, b: &str) -> Ordering {
    let (x, y) = (flyway_segments(a), flyway_segments(b));
    for i in 0..x.len().max(y.len()) {
        let s = x.get(i).map_or("0", String::as_str);
        let t = y.get(i).map_or("0", String::as_str);
        match cmp_numeric(s, t) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    Ordering::Equal
}

/// A Flyway version's segments, trailing zeros removed (`1.2.0` → `[1, 2]`).
pub fn flyway_segments(version: &str) -> Vec<String> {
    let mut segments: Vec<String> = version
        .replace('_', ".")
        .split('.')
        .map(|s| {
            let t = s.trim_start_matches('0');
            if t.is_empty() {
                "0".to_string()
            } else {
                t.to_string()
            }
        })
        .collect();
    while segments.len() > 1 && segments.last().is_some_and(|s| s == "0") {
        segments.pop();
    }
    segments
}

/// A diesel version as diesel records it: the dashes removed
/// (`2019-02-26-002946` → `20190226002946`).
pub fn diesel_version(version: &str) -> String {
    version.replace('-', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for l in Layout::ALL {
            assert_eq!(Layout::from_name(l.name()), Some(l));
            assert!(Layout::NAMES.contains(&l.name()));
        }
        assert_eq!(Layout::from_name("refinery"), Some(Layout::Flyway));
        assert_eq!(Layout::from_name("nope"), None);
    }

    #[test]
    fn numeric_and_flyway_orders() {
        assert_eq!(cmp_numeric("9", "10"), Ordering::Less);
        assert_eq!(cmp_numeric("0010", "9"), Ordering::Greater);
        assert_eq!(cmp_numeric("007", "7"), Ordering::Equal);
        assert_eq!(cmp_flyway("1.2.3", "1.10"), Ordering::Less);
        assert_eq!(cmp_flyway("1.10", "1.9.9"), Ordering::Greater);
        assert_eq!(cmp_flyway("1_1", "1.1"), Ordering::Equal);
        assert_eq!(cmp_flyway("1.0", "1"), Ordering::Equal);
        assert_eq!(cmp_flyway("2", "10"), Ordering::Less);
        assert_eq!(flyway_segments("1.02.0"), ["1", "2"]);
        assert_eq!(diesel_version("2019-02-26-002946"), "20190226002946");
    }

    #[test]
    fn transaction_markers_in_text() {
        assert!(Layout::Sqlx.text_says_no_transaction("-- no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);"));
        assert!(!Layout::Sqlx.text_says_no_transaction("\n-- no-transaction\n"));
        assert!(Layout::Goose.text_says_no_transaction("-- +goose Up\n-- +goose   no transaction\nSELECT 1;"));
        assert!(Layout::Goose.text_says_no_transaction("-- +goose NO TRANSACTION\n-- +goose Up\nSELECT 1;"));
        assert!(!Layout::Goose.text_says_no_transaction("-- +goose Up\nSELECT 1;"));
        assert!(Layout::Dbmate.text_says_no_transaction("-- migrate:up transaction:false\nSELECT 1;\n-- migrate:down\n"));
        assert!(!Layout::Dbmate.text_says_no_transaction("-- migrate:up\nSELECT 1;\n-- migrate:down transaction:false\n"));
        assert!(!Layout::Native.text_says_no_transaction("-- no-transaction\n"));
    }

    #[test]
    fn section_markers() {
        assert_eq!(dbmate_marker("--migrate:up"), Some((SectionDirection::Up, "")));
        assert_eq!(
            dbmate_marker("-- migrate:up transaction:false"),
            Some((SectionDirection::Up, "transaction:false"))
        );
        assert_eq!(dbmate_marker("-- migrate:upgrade"), None);
        assert_eq!(goose_marker("-- +goose DOWN"), Some(SectionDirection::Down));
        assert_eq!(goose_marker("-- +goose StatementBegin"), None);
    }
}
