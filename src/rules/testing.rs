//! Helpers for rule tests: build a throwaway workspace or plain file, check
//! it, and count findings.

use std::path::Path;

use crate::diag::Diagnostic;

pub const STRATA_TOML: &str = "pg_version = 15\n[tenancy]\nmode = \"database-per-tenant\"\napp_role = \"orbis_app\"\n";

/// Writes `files` (paths under schema/) into a temporary workspace, lets
/// `prepare` change it, and checks the whole workspace.
pub fn check_ws_with(files: &[(&str, &str)], prepare: impl FnOnce(&Path)) -> Vec<Diagnostic> {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::write(root.join("strata.toml"), STRATA_TOML).expect("write strata.toml");
    for (rel, text) in files {
        let p = root.join("schema").join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    prepare(root);
    let ws = crate::workspace::Workspace::load(root).expect("load workspace");
    crate::check::check_workspace(&ws, &None).expect("check").diagnostics
}

pub fn check_ws(files: &[(&str, &str)]) -> Vec<Diagnostic> {
    check_ws_with(files, |_| {})
}

/// Checks one plain file outside any workspace.
pub fn check_plain(sql: &str) -> Vec<Diagnostic> {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("0001_test.sql");
    std::fs::write(&p, sql).expect("write");
    crate::check::check_files(&[p], dir.path()).expect("check").diagnostics
}

/// Checks a folder of `files` outside any workspace, as its detected
/// layout orders them.
pub fn check_plain_folder(files: &[(&str, &str)]) -> Vec<Diagnostic> {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("migrations");
    std::fs::create_dir(&folder).expect("mkdir");
    for (name, text) in files {
        std::fs::write(folder.join(name), text).expect("write");
    }
    crate::check::check_files(&[folder], dir.path()).expect("check").diagnostics
}

/// How many findings of `rule` there are. `rule` must be a rule's id: a
/// misspelled id fails the test instead of silently counting 0.
pub fn ids(d: &[Diagnostic], rule: &str) -> usize {
    known(rule);
    d.iter().filter(|x| x.rule == rule).count()
}

/// The first finding of `rule`; panics, listing the findings, when there
/// is none.
#[track_caller]
pub fn finding<'a>(d: &'a [Diagnostic], rule: &str) -> &'a Diagnostic {
    let rule = known(rule);
    d.iter()
        .find(|x| x.rule == rule)
        .unwrap_or_else(|| panic!("no `{rule}` finding in {d:#?}"))
}

/// Panics unless `rule` is the id of a rule.
#[track_caller]
pub fn known(rule: &str) -> &'static str {
    match crate::rules::meta_of(rule) {
        Some(m) => m.id,
        None => panic!("`{rule}` is not a rule id (see `strata rules`)"),
    }
}

/// The text rendering of the findings of one rule (no colors, no summary
/// timing), for insta snapshots.
// Kept for the per-rule snapshot tests that other rule issues add.
#[allow(dead_code)]
pub fn render_rule(d: &[Diagnostic], rule: &str) -> String {
    known(rule);
    let report = crate::diag::CheckReport {
        diagnostics: d.iter().filter(|x| x.rule == rule).cloned().collect(),
        ..Default::default()
    };
    let mut out = Vec::new();
    crate::report::text::render(&report, &crate::report::RenderOptions::default(), &mut out).expect("render");
    let text = String::from_utf8(out).expect("utf8");
    // A test that snapshots a rule's output asserts its id exists above.
    // Drop the summary line (it carries a timing).
    text.lines().filter(|l| !l.starts_with("checked ")).collect::<Vec<_>>().join("\n")
}

/// Like [`check_ws`], with the workspace's `pg_version` set to `pg_version`.
pub fn check_ws_pg(pg_version: u32, files: &[(&str, &str)]) -> Vec<Diagnostic> {
    check_ws_with(files, |root| {
        let toml = STRATA_TOML.replace("pg_version = 15", &format!("pg_version = {pg_version}"));
        std::fs::write(root.join("strata.toml"), toml).expect("write strata.toml");
    })
}

/// The fix of the only finding of `rule`, applied to its file's text.
pub fn fixed_text(d: &[Diagnostic], rule: &str) -> Option<String> {
    known(rule);
    let found: Vec<&Diagnostic> = d.iter().filter(|x| x.rule == rule).collect();
    assert_eq!(found.len(), 1, "{found:#?}");
    let fix = found[0].fix.as_ref()?;
    Some(crate::fix::apply_edits(&found[0].file.text, &fix.edits))
}

/// `sql` with the edits of every fix that `rule` attached applied (edits must
/// not overlap), to test fixes without the fix engine.
pub fn apply_fixes(sql: &str, d: &[Diagnostic], rule: &str) -> String {
    known(rule);
    let edits: Vec<crate::diag::Edit> = d
        .iter()
        .filter(|x| x.rule == rule)
        .filter_map(|x| x.fix.as_ref())
        .flat_map(|f| f.edits.iter().cloned())
        .collect();
    crate::fix::apply_edits(sql, &edits)
}

#[cfg(test)]
mod tests {
    #[test]
    #[should_panic(expected = "`rls-mising` is not a rule id")]
    fn a_misspelled_rule_id_fails_the_test() {
        super::ids(&[], "rls-mising");
    }
}
