//! `strata check --fix`: applies the mechanical fixes that rules attach to
//! their findings.
//!
//! Rules only attach fixes that are safe to apply without review of the
//! result (a `CONCURRENTLY` and the no-transaction header on a file that
//! holds only index statements, `NOT VALID` with a separate `VALIDATE`
//! migration, ...). The fixer takes them file by file in position order,
//! keeps those whose edits do not overlap an edit already taken (identical
//! edits, like the same header added by two findings, count once), applies
//! the edits from the end of the file backwards so earlier offsets stay
//! valid, and names each new migration after the last one of the fixed
//! file's folder. Nothing is written until every change is computed.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::diag::{CheckReport, Edit, NewFile};
use crate::error::{Error, Result};
use crate::workspace::{section_layout, Layout};

/// One file the fixes change or create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileChange {
    pub path: PathBuf,
    /// The path as shown to the user.
    pub display: String,
    /// The text before the fixes; `None` for a file the fixes create.
    pub before: Option<String>,
    pub after: String,
}

/// What `--fix` will do.
#[derive(Clone, Debug, Default)]
pub struct FixPlan {
    pub changes: Vec<FileChange>,
    /// Fixes applied.
    pub applied: usize,
    /// Findings left unfixed, with the reason (shown to the user).
    pub skipped: Vec<String>,
    /// Findings left unfixed because their migration is released.
    pub released: usize,
    /// Findings of rules that have no mechanical fix for them, per rule.
    pub manual: Vec<(&'static str, usize)>,
}

impl FixPlan {
    /// The files the fixes create.
    pub fn created(&self) -> impl Iterator<Item = &FileChange> {
        self.changes.iter().filter(|c| c.before.is_none())
    }
}

/// Whether two edits of one file cannot both be applied. Insertions at the
/// same point can (see [`apply_edits`] for their order).
fn conflicts(a: &Edit, b: &Edit) -> bool {
    let inside = |p: usize, e: &Edit| e.start < p && p < e.end;
    match (a.start == a.end, b.start == b.end) {
        (true, true) => false,
        (true, false) => inside(a.start, b),
        (false, true) => inside(b.start, a),
        (false, false) => a != b && a.start < b.end && b.start < a.end,
    }
}

/// Applies non-overlapping edits, from the end of the text backwards so
/// that earlier offsets stay valid. Insertions at one point keep their
/// order, except that comment lines (a file header such as
/// `-- strata: no-transaction`) go before statements.
pub fn apply_edits(text: &str, edits: &[Edit]) -> String {
    let mut order: Vec<(usize, &Edit)> = edits.iter().enumerate().collect();
    order.sort_by_key(|(i, e)| (e.start, e.end, !e.replacement.starts_with("--"), *i));
    let mut out = text.to_string();
    for (_, e) in order.into_iter().rev() {
        out.replace_range(e.start..e.end, &e.replacement);
    }
    out
}

/// How the migrations of a folder are numbered, read from one file name.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Numbering {
    /// `V` for Flyway, empty otherwise.
    prefix: &'static str,
    /// Between the number and the name: `_` or `__`.
    separator: &'static str,
    /// `.sql` or `.up.sql`.
    suffix: &'static str,
    /// Zero-padded width of the number (0: no padding).
    width: usize,
}

impl Numbering {
    fn of(file_name: &str) -> Option<(Numbering, u64)> {
        let (prefix, separator, rest) = match file_name.strip_prefix('V') {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => ("V", "__", rest),
            _ => ("", "_", file_name),
        };
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let after = rest[digits..].strip_prefix(separator)?;
        let suffix = if after.ends_with(".up.sql") {
            ".up.sql"
        } else if after.ends_with(".sql") && !after.ends_with(".down.sql") {
            ".sql"
        } else {
            return None;
        };
        if digits == 0 || after.len() == suffix.len() {
            return None;
        }
        let width = if rest.starts_with('0') { digits } else { 0 };
        let numbering = Numbering {
            prefix,
            separator,
            suffix,
            width,
        };
        Some((numbering, rest[..digits].parse().ok()?))
    }

    fn name(&self, number: u64, name: &str) -> String {
        format!("{}{number:0w$}{}{name}{}", self.prefix, self.separator, self.suffix, w = self.width)
    }
}

/// Names new migrations after the last one of their folder, remembering the
/// numbers it handed out.
#[derive(Default)]
struct Namer {
    next: HashMap<PathBuf, u64>,
}

impl Namer {
    fn allocate(&mut self, fixed: &Path, file: &NewFile, fixed_text: &str) -> Option<(PathBuf, String)> {
        let dir = fixed.parent()?.to_path_buf();
        let (numbering, _) = Numbering::of(&fixed.file_name()?.to_string_lossy())?;
        let next = match self.next.get(&dir) {
            Some(n) => *n,
            None => {
                let max = std::fs::read_dir(&dir)
                    .ok()?
                    .filter_map(|e| e.ok())
                    .filter_map(|e| Numbering::of(&e.file_name().to_string_lossy()).filter(|(n, _)| n.prefix == numbering.prefix))
                    .map(|(_, number)| number)
                    .max()?;
                max + 1
            }
        };
        self.next.insert(dir.clone(), next + 1);
        let content = match section_layout(fixed_text) {
            Some(Layout::Dbmate) => format!("-- migrate:up\n{}", file.content),
            Some(Layout::Goose) => format!("-- +goose Up\n{}", file.content),
            _ => file.content.clone(),
        };
        Some((dir.join(numbering.name(next, &file.name)), content))
    }
}

/// Where a fix of the migration `fixed` would create its new migration, and
/// that file's content, as `strata check --fix` names it (the language
/// server offers the same file in a code action).
pub fn new_file_for(fixed: &Path, file: &NewFile, fixed_text: &str) -> Option<(PathBuf, String)> {
    Namer::default().allocate(fixed, file, fixed_text)
}

/// Computes what the fixes of `report` change. `base` resolves the paths
/// shown in diagnostics (the workspace root, or the working directory for
/// plain files). A file that changed on disk since the check is left alone.
pub fn plan(report: &CheckReport, base: &Path) -> Result<FixPlan> {
    let mut plan = FixPlan::default();
    let mut manual: std::collections::BTreeMap<&'static str, usize> = Default::default();
    for d in report.diagnostics.iter().filter(|d| d.fix.is_none()) {
        match d.unfixed.as_deref() {
            Some(crate::rules::fixes::RELEASED) => plan.released += 1,
            Some(why) => plan
                .skipped
                .push(format!("{}:{}: [{}] {why}", d.file.path, d.region.start.line, d.rule)),
            None => *manual.entry(d.rule).or_default() += 1,
        }
    }
    plan.manual = manual.into_iter().collect();
    let mut namer = Namer::default();
    // Diagnostics are sorted by file, then position.
    let mut files: Vec<(&str, Vec<&crate::diag::Diagnostic>)> = Vec::new();
    for d in report.diagnostics.iter().filter(|d| d.fix.is_some()) {
        match files.last_mut() {
            Some((path, list)) if *path == d.file.path => list.push(d),
            _ => files.push((&d.file.path, vec![d])),
        }
    }
    for (display, diagnostics) in files {
        let path = base.join(display);
        let source = &diagnostics[0].file.text;
        let on_disk = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        if on_disk != *source {
            plan.skipped.push(format!(
                "{display}: changed on disk since the check; run `strata check --fix` again"
            ));
            continue;
        }
        let mut taken: Vec<Edit> = Vec::new();
        let mut created = Vec::new();
        for d in diagnostics {
            let Some(fix) = &d.fix else { continue };
            if fix
                .edits
                .iter()
                .any(|e| e.end < e.start || e.end > source.len() || !source.is_char_boundary(e.start) || !source.is_char_boundary(e.end))
            {
                plan.skipped.push(format!(
                    "{display}: [{}] {}: the fix does not fit the file",
                    d.rule, fix.description
                ));
                continue;
            }
            if fix.edits.iter().any(|e| taken.iter().any(|t| conflicts(e, t))) {
                plan.skipped.push(format!(
                    "{display}:{}: [{}] {}: overlaps another fix; run `strata check --fix` again",
                    d.region.start.line, d.rule, fix.description
                ));
                continue;
            }
            if let Some(new_file) = &fix.new_file {
                let Some((new_path, content)) = namer.allocate(&path, new_file, source) else {
                    plan.skipped.push(format!(
                        "{display}: [{}] {}: cannot name a new migration next to this file",
                        d.rule, fix.description
                    ));
                    continue;
                };
                let shown = Path::new(display).with_file_name(new_path.file_name().unwrap_or_default());
                created.push(FileChange {
                    display: shown.to_string_lossy().replace('\\', "/"),
                    path: new_path,
                    before: None,
                    after: content,
                });
            }
            for e in &fix.edits {
                if !taken.contains(e) {
                    taken.push(e.clone());
                }
            }
            plan.applied += 1;
        }
        if !taken.is_empty() {
            plan.changes.push(FileChange {
                path,
                display: display.to_string(),
                before: Some(source.clone()),
                after: apply_edits(source, &taken),
            });
        }
        plan.changes.extend(created);
    }
    Ok(plan)
}

/// Writes the planned changes.
pub fn write(plan: &FixPlan) -> Result<()> {
    for c in &plan.changes {
        if c.before.is_none() && c.path.exists() {
            return Err(Error::Usage(format!(
                "{}: already exists; not overwritten by --fix",
                c.path.display()
            )));
        }
        std::fs::write(&c.path, &c.after).map_err(|e| Error::io(&c.path, e))?;
    }
    Ok(())
}

/// Prints a unified diff of every change, then a one-line summary and the
/// fixes that were left out.
pub fn render(plan: &FixPlan, w: &mut dyn Write) -> io::Result<()> {
    for c in &plan.changes {
        let before = c.before.as_deref().unwrap_or("");
        let old = if c.before.is_some() {
            format!("a/{}", c.display)
        } else {
            "/dev/null".to_string()
        };
        let diff = similar::TextDiff::from_lines(before, &c.after);
        write!(w, "{}", diff.unified_diff().header(&old, &format!("b/{}", c.display)))?;
    }
    let created = plan.created().count();
    let edited = plan.changes.len() - created;
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    write!(
        w,
        "fixed {} finding{} in {edited} file{}",
        plan.applied,
        plural(plan.applied),
        plural(edited)
    )?;
    if created > 0 {
        write!(w, ", {created} new migration{}", plural(created))?;
    }
    writeln!(w)?;
    for s in &plan.skipped {
        writeln!(w, "not fixed: {s}")?;
    }
    if plan.released > 0 {
        writeln!(
            w,
            "not fixed: {} finding{} in released migrations (released files are never edited; write a new migration)",
            plan.released,
            plural(plan.released)
        )?;
    }
    if !plan.manual.is_empty() {
        let rules: Vec<String> = plan.manual.iter().map(|(rule, n)| format!("{rule} ({n})")).collect();
        let total: usize = plan.manual.iter().map(|(_, n)| n).sum();
        writeln!(
            w,
            "not fixed: {total} finding{} of rules without an automatic fix, to fix by hand: {}",
            plural(total),
            rules.join(", ")
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::STRATA_TOML;

    fn edit(start: usize, end: usize, text: &str) -> Edit {
        Edit {
            start,
            end,
            replacement: text.to_string(),
        }
    }

    #[test]
    fn overlapping_edits() {
        assert!(!conflicts(&edit(0, 0, "a"), &edit(0, 0, "b")));
        assert!(conflicts(&edit(2, 5, ""), &edit(4, 8, "")));
        assert!(!conflicts(&edit(2, 5, ""), &edit(5, 8, "")));
        assert!(conflicts(&edit(3, 3, "x"), &edit(2, 5, "")));
        assert!(!conflicts(&edit(5, 5, "x"), &edit(2, 5, "")));
        assert_eq!(
            apply_edits("abcdef", &[edit(0, 0, "<"), edit(2, 4, "XY"), edit(6, 6, ">")]),
            "<abXYef>"
        );
        let header = edit(0, 0, "-- strata: no-transaction\n");
        let lock = edit(0, 0, "SET lock_timeout = '5s';\n");
        let statement = edit(0, 0, "SET statement_timeout = '10min';\n");
        assert_eq!(
            apply_edits("X;", &[lock, header, statement]),
            "-- strata: no-transaction\nSET lock_timeout = '5s';\nSET statement_timeout = '10min';\nX;"
        );
    }

    #[test]
    fn numbering_follows_the_folder() {
        let (n, v) = Numbering::of("0007_add_orders.sql").unwrap();
        assert_eq!((n.name(8, "validate_fk"), v), ("0008_validate_fk.sql".to_string(), 7));
        let (n, v) = Numbering::of("V12__orders.sql").unwrap();
        assert_eq!((n.name(13, "validate_fk"), v), ("V13__validate_fk.sql".to_string(), 12));
        let (n, _) = Numbering::of("20240115180414_orders.up.sql").unwrap();
        assert_eq!(n.name(20240115180415, "x"), "20240115180415_x.up.sql");
        assert!(Numbering::of("up.sql").is_none());
        assert!(Numbering::of("0001_orders.down.sql").is_none());
    }

    /// A workspace with `files` under schema/, checked, fixed, written and
    /// checked again.
    fn fix_workspace(files: &[(&str, &str)]) -> (tempfile::TempDir, FixPlan, CheckReport) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("strata.toml"), STRATA_TOML).unwrap();
        for (rel, text) in files {
            let p = root.join("schema").join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let check = || {
            let ws = crate::workspace::Workspace::load(root).unwrap();
            crate::check::check_workspace(&ws, &None).unwrap()
        };
        let plan = plan(&check(), root).unwrap();
        write(&plan).unwrap();
        let after = check();
        (dir, plan, after)
    }

    #[test]
    fn fixes_a_workspace_end_to_end() {
        let (dir, plan, after) = fix_workspace(&[
            (
                "core/0001_orders.sql",
                "CREATE TABLE customers (id bigint PRIMARY KEY);\nCREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint);\n\
                 ALTER TABLE customers ENABLE ROW LEVEL SECURITY;\nALTER TABLE orders ENABLE ROW LEVEL SECURITY;\n",
            ),
            (
                "core/0002_orders_indexes.sql",
                "CREATE INDEX orders_customer_idx ON orders (customer_id);\nCREATE INDEX orders_id_customer_idx ON orders (id, customer_id);\n",
            ),
            (
                "core/0003_orders_customer_fk.sql",
                "ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id);\n",
            ),
        ]);
        let schema = dir.path().join("schema/core");
        assert_eq!(plan.applied, 3, "{plan:#?}");
        assert!(plan.skipped.is_empty(), "{plan:#?}");
        assert_eq!(
            std::fs::read_to_string(schema.join("0002_orders_indexes.sql")).unwrap(),
            "-- strata: no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_idx ON orders (customer_id);\n\
             CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_id_customer_idx ON orders (id, customer_id);\n"
        );
        assert_eq!(
            std::fs::read_to_string(schema.join("0003_orders_customer_fk.sql")).unwrap(),
            "ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;\n"
        );
        let validate = std::fs::read_to_string(schema.join("0004_validate_orders_customer_fk.sql")).unwrap();
        assert!(
            validate.ends_with("ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;\n"),
            "{validate}"
        );
        let lock_findings: Vec<_> = after
            .diagnostics
            .iter()
            .filter(|d| crate::rules::meta_of(d.rule).is_some_and(|m| m.group == crate::rules::Group::LockSafety))
            .collect();
        assert!(lock_findings.is_empty(), "{lock_findings:#?}");

        let mut out = Vec::new();
        render(&plan, &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains("--- a/schema/core/0002_orders_indexes.sql\n+++ b/schema/core/0002_orders_indexes.sql\n"),
            "{out}"
        );
        assert!(
            out.contains("--- /dev/null\n+++ b/schema/core/0004_validate_orders_customer_fk.sql\n"),
            "{out}"
        );
        // What is left has no mechanical fix (the fixture has no policies).
        let summary = out.find("fixed 3 findings in 2 files, 1 new migration\n").expect(&out);
        assert!(
            out[summary..]
                .lines()
                .skip(1)
                .all(|l| l.starts_with("not fixed: ") && l.contains("without an automatic fix")),
            "{out}"
        );
    }

    #[test]
    fn new_migrations_get_distinct_numbers() {
        let (dir, plan, _) = fix_workspace(&[
            (
                "core/0001_orders.sql",
                "CREATE TABLE orders (id bigint PRIMARY KEY, total numeric, tax numeric);\n",
            ),
            (
                "core/0002_checks.sql",
                "ALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total >= 0);\nALTER TABLE orders ADD CONSTRAINT orders_tax_check CHECK (tax >= 0);\n",
            ),
        ]);
        assert_eq!(plan.created().count(), 2, "{plan:#?}");
        let schema = dir.path().join("schema/core");
        assert!(schema.join("0003_validate_orders_total_check.sql").is_file());
        assert!(schema.join("0004_validate_orders_tax_check.sql").is_file());
    }

    #[test]
    fn says_which_findings_it_did_not_fix_and_why() {
        let (_dir, plan, _) = fix_workspace(&[
            (
                "core/0001_orders.sql",
                "CREATE TABLE orders (id bigint PRIMARY KEY, total numeric);\nALTER TABLE orders ENABLE ROW LEVEL SECURITY;\n",
            ),
            (
                "core/0002_mixed.sql",
                "CREATE TABLE refunds (id bigint PRIMARY KEY);\nCREATE INDEX orders_total_idx ON orders (total);\n",
            ),
        ]);
        assert_eq!(plan.applied, 0, "{plan:#?}");
        let mut out = Vec::new();
        render(&plan, &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains(
                "fixed 0 findings in 0 files\nnot fixed: schema/core/0002_mixed.sql:2: [require-concurrent-index] \
                 the file does other work that needs its transaction: move the statement into a migration file of its own\n"
            ),
            "{out}"
        );
        // `refunds` lacks row level security: no rule can write a policy.
        assert!(out.contains("of rules without an automatic fix, to fix by hand: "), "{out}");
        assert!(out.contains("rls-missing (1)"), "{out}");
    }
}
