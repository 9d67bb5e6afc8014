//! What strata tells a project about running a file outside a transaction,
//! in the words of the project's own migration tool: the phrase for the
//! tool's transaction, the advice, and the edit `--fix` makes (each from the
//! layout's [`TransactionMarker`]).

use super::layout::{dbmate_marker, Layout, SectionDirection, TransactionMarker};

/// strata's own header, understood in every layout.
pub const STRATA_HEADER: &str = "-- strata: no-transaction";

impl Layout {
    /// The tool that runs the files, as messages name it.
    pub fn tool_name(self) -> &'static str {
        match self {
            Layout::Native | Layout::Plain => "strata",
            Layout::Sqlx => "sqlx",
            Layout::Flyway => "Flyway",
            Layout::GolangMigrate => "golang-migrate",
            Layout::Pop => "pop",
            Layout::Diesel => "diesel",
            Layout::Prisma => "Prisma",
            Layout::Dbmate => "dbmate",
            Layout::Goose => "goose",
        }
    }

    /// Whether the tool has no way to say that a file runs outside a
    /// transaction (it sends the file as one multi-statement query, which
    /// PostgreSQL runs as one implicit transaction).
    pub fn lacks_transaction_marker(self) -> bool {
        matches!(self, Layout::GolangMigrate | Layout::Prisma)
    }

    /// Ends "X cannot run inside a transaction block, and ...".
    pub fn runs_file_in_transaction(self) -> String {
        match self {
            Layout::Native | Layout::Plain => "strata runs this migration file in one".to_string(),
            l if l.lacks_transaction_marker() => format!(
                "{} sends this file as one query, which PostgreSQL runs as one transaction (strata runs it in one too)",
                l.tool_name()
            ),
            l => format!("{} runs this migration file in one (and so does strata)", l.tool_name()),
        }
    }

    /// How to run a statement outside a transaction, in the tool's terms:
    /// completes "put it in ...".
    pub fn no_transaction_advice(self) -> String {
        match self.transaction_marker() {
            TransactionMarker::StrataHeader if self.lacks_transaction_marker() => format!(
                "a migration file of its own, alone: {} has no marker for running a file outside a transaction, but \
                 sends a file of one statement without a transaction block; start that file with `{STRATA_HEADER}` so \
                 that strata runs it outside one too",
                self.tool_name()
            ),
            TransactionMarker::StrataHeader => format!("a migration file of its own that starts with `{STRATA_HEADER}`"),
            TransactionMarker::FirstLine(m) => format!("a migration file of its own whose first line is `{m}`"),
            TransactionMarker::Annotation(m) => format!("a migration file of its own with the line `{m}`"),
            TransactionMarker::SectionOption(o) => format!("a migration file of its own whose up marker reads `-- migrate:up {o}`"),
            TransactionMarker::Sidecar { file, setting } => {
                if self == Layout::Diesel {
                    format!("a migration folder of its own with a `{file}` that says `{setting}`")
                } else {
                    format!("a migration of its own with a `{file}` beside it that says `{setting}`")
                }
            }
            TransactionMarker::FileName(part) => {
                format!("a migration file of its own whose name has `{part}` (`<version>_<name>{part}.up.sql`)")
            }
        }
    }

    /// The edit (byte offset, text inserted there) that makes a file of this
    /// layout run outside a transaction, when the marker is in the file's
    /// text; `None` when it is in a file name or a file beside it (the help
    /// says what to do), or when a dbmate file has no up marker.
    pub fn no_transaction_insertion(self, text: &str) -> Option<(usize, String)> {
        let line = |s: &str| format!("{s}\n");
        match self.transaction_marker() {
            TransactionMarker::StrataHeader => Some((0, line(STRATA_HEADER))),
            TransactionMarker::FirstLine(m) => Some((usize::from(text.starts_with('\u{feff}')) * 3, line(m))),
            TransactionMarker::Annotation(m) => Some((0, line(m))),
            TransactionMarker::SectionOption(o) => {
                let mut at = 0;
                for l in text.split_inclusive('\n') {
                    if dbmate_marker(l).is_some_and(|(d, _)| d == SectionDirection::Up) {
                        let end = at + l.trim_end_matches(['\n', '\r']).len();
                        return Some((end, format!(" {o}")));
                    }
                    at += l.len();
                }
                None
            }
            TransactionMarker::Sidecar { .. } | TransactionMarker::FileName(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(l: Layout, text: &str) -> Option<String> {
        let (at, s) = l.no_transaction_insertion(text)?;
        Some(format!("{}{s}{}", &text[..at], &text[at..]))
    }

    #[test]
    fn each_layout_speaks_its_own_marker_and_the_fix_is_what_it_reads() {
        let sql = "CREATE INDEX CONCURRENTLY i ON t (a);\n";
        for l in [Layout::Native, Layout::Sqlx, Layout::Goose, Layout::GolangMigrate, Layout::Plain] {
            let fixed = insert(l, sql).unwrap();
            assert!(
                l.text_says_no_transaction(&fixed) || crate::sql::suppress::has_no_transaction_header(&fixed),
                "{l:?}: {fixed}"
            );
        }
        let dbmate = "-- migrate:up\nCREATE INDEX CONCURRENTLY i ON t (a);\n-- migrate:down\nDROP INDEX i;\n";
        let fixed = insert(Layout::Dbmate, dbmate).unwrap();
        assert_eq!(fixed, dbmate.replace("-- migrate:up\n", "-- migrate:up transaction:false\n"));
        assert!(Layout::Dbmate.text_says_no_transaction(&fixed));
        assert_eq!(insert(Layout::Diesel, sql), None);
        assert_eq!(insert(Layout::Pop, sql), None);
        assert!(Layout::Goose.no_transaction_advice().contains("`-- +goose NO TRANSACTION`"));
        assert!(Layout::Diesel
            .no_transaction_advice()
            .contains("`metadata.toml` that says `run_in_transaction = false`"));
        assert!(Layout::Dbmate.no_transaction_advice().contains("`-- migrate:up transaction:false`"));
        assert!(Layout::Sqlx.no_transaction_advice().contains("first line is `-- no-transaction`"));
        assert!(Layout::GolangMigrate
            .no_transaction_advice()
            .contains("golang-migrate has no marker"));
        assert!(Layout::Goose.runs_file_in_transaction().starts_with("goose runs"));
        assert!(Layout::Native.runs_file_in_transaction().starts_with("strata runs"));
    }
}
