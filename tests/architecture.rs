//! The house of modules: every `crate::` path in the library's code points
//! to a module on a lower floor. Drawn from the source text (every
//! `crate::<module>` reference outside comments and test code), so a new
//! import that points up fails here with the file that holds it.

use std::collections::BTreeMap;
use std::path::Path;

/// Floors, lowest first. A module may use modules of lower floors only.
const FLOORS: &[&[&str]] = &[
    // Leaves: errors and the diagnostic types every layer shares, and the
    // allocator the binary and the benchmarks declare, and work done ahead
    // on every core.
    &["error", "diag", "alloc", "ahead"],
    // The SQL front end.
    &["sql"],
    // What the statements do to a schema.
    &["catalog"],
    // The workspace on disk: configuration, layers, migrations, strata.sum.
    &["workspace", "cache"],
    // The rules.
    &["rules"],
    // PostgreSQL: connections, apply, history, introspection, the shadow run.
    &["pg"],
    // The static checker (and `--shadow`, judged by the same rules) and the
    // renderers of its report.
    &["check", "report"],
    // The findings baseline (what a check accepts).
    &["accepted"],
    // Fixes.
    &["fix"],
    // The fleet.
    &["fleet"],
    // Cutovers.
    &["cutover"],
    // The language server (the checker behind an editor).
    &["lsp"],
    // The command line: arguments, then the commands.
    &["cli"],
    &["app"],
];

/// Names the crate root re-exports, by the module they come from.
fn module_of(name: &str) -> &str {
    match name {
        "Error" | "Result" => "error",
        "declare_rule" => "rules",
        other => other,
    }
}

fn floor(module: &str) -> Option<usize> {
    FLOORS.iter().position(|f| f.contains(&module))
}

/// The code of a file without comments and without its test module (the
/// `#[cfg(test)]` module closes every file that has one).
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn references(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        let name: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if !name.is_empty() {
            found.push(name);
        }
        rest = after;
    }
    found
}

#[test]
fn every_import_points_to_a_lower_floor() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut upward: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut unplaced = Vec::new();
    for entry in walkdir::WalkDir::new(&src) {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.extension().is_none_or(|x| x != "rs") {
            continue;
        }
        let rel = path.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        let file = rel.rsplit('/').next().unwrap();
        if rel == "lib.rs" || rel == "main.rs" || file.ends_with("_tests.rs") || file == "testing.rs" {
            continue;
        }
        let module = rel.split('/').next().unwrap().trim_end_matches(".rs").to_string();
        let Some(own) = floor(&module) else {
            unplaced.push(module);
            continue;
        };
        let text = std::fs::read_to_string(path).unwrap();
        for target in references(&code(&text)) {
            let target = module_of(&target);
            if target == module {
                continue;
            }
            match floor(target) {
                Some(f) if f < own => {}
                Some(_) => upward.entry(format!("{module} -> {target}")).or_default().push(rel.clone()),
                None => unplaced.push(target.to_string()),
            }
        }
    }
    unplaced.sort();
    unplaced.dedup();
    assert!(unplaced.is_empty(), "modules without a floor in FLOORS: {unplaced:?}");
    let report: Vec<String> = upward
        .iter()
        .map(|(edge, files)| {
            let mut files = files.clone();
            files.dedup();
            format!("{edge} (in {})", files.join(", "))
        })
        .collect();
    assert!(report.is_empty(), "imports that point up or sideways:\n{}", report.join("\n"));
}

#[test]
fn the_scan_sees_comments_tests_and_paths() {
    let text = "use crate::a::B; // crate::c\nfn f() { crate::d::e() }\n#[cfg(test)]\nmod tests { use crate::z; }\n";
    assert_eq!(references(&code(text)), ["a", "d"]);
}
