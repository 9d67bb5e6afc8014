//! The optional corpus suite: real migration histories from public projects
//! (../shared/corpora, never copied into this repository).
//!
//! These tests are `#[ignore]`d so that `cargo test` needs no corpora (they
//! show as "ignored", not silently skipped); `.ci/run` runs them with
//! `cargo test --test corpus -- --ignored --nocapture` when the folder
//! exists. Set STRATA_CORPORA to use another folder.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

mod common;

fn corpora() -> PathBuf {
    let dir = std::env::var_os("STRATA_CORPORA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora"));
    assert!(
        dir.is_dir(),
        "the corpus suite needs the shared corpora at {} (or STRATA_CORPORA=<folder>)",
        dir.display()
    );
    dir
}

fn corpus_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(corpora())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// The `.sql` files of a corpus folder, by name.
fn sql_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    files
}

fn strata(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let run = common::strata_in(cwd, args);
    (run.code, run.stdout, run.stderr)
}

fn governance_rules() -> HashSet<String> {
    let (code, out, _) = strata(&["rules", "--format", "json"], Path::new(env!("CARGO_MANIFEST_DIR")));
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["group"] == "governance")
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
#[ignore = "needs ../shared/corpora; run with --ignored (the CI does)"]
fn every_corpus_checks_without_a_panic_and_understands_at_least_99_5_percent() {
    let governance = governance_rules();
    let mut totals = (0u64, 0u64);
    let mut below = Vec::new();
    println!(
        "\n{:<20} {:>6} {:>10} {:>8} {:>8}  findings by rule",
        "corpus", "files", "statements", "understood", "share"
    );
    for dir in corpus_dirs() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        // Checked from inside the corpus, without a workspace: the files are
        // one plain migration sequence in the order discovery gives.
        let (code, out, err) = strata(&["check", "--no-workspace", ".", "--format", "json"], &dir);
        assert!(code == 0 || code == 1, "{name}: exit {code}\n{err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{name}: bad JSON ({e}): {err}"));
        let s = &v["summary"];
        let (stmts, parsed) = (s["statements"].as_u64().unwrap(), s["understood"].as_u64().unwrap());
        totals.0 += stmts;
        totals.1 += parsed;
        let mut by_rule: BTreeMap<String, usize> = BTreeMap::new();
        for d in v["diagnostics"].as_array().unwrap() {
            let rule = d["rule"].as_str().unwrap().to_string();
            assert!(
                !governance.contains(&rule),
                "{name}: governance rule {rule} fired without a workspace: {d}"
            );
            if rule == "unparsed-statement" || rule == "syntax-error" {
                // The reported position is a real, non-blank place in the file.
                let file = dir.join(d["file"].as_str().unwrap());
                let text = std::fs::read_to_string(&file).unwrap();
                let line = d["start"]["line"].as_u64().unwrap() as usize;
                let col = d["start"]["col"].as_u64().unwrap() as usize;
                let l = text
                    .lines()
                    .nth(line - 1)
                    .unwrap_or_else(|| panic!("{}: no line {line}", file.display()));
                let c = l
                    .chars()
                    .nth(col - 1)
                    .unwrap_or_else(|| panic!("{}:{line}: no column {col}", file.display()));
                assert!(!c.is_whitespace(), "{}:{line}:{col} points at whitespace", file.display());
            }
            *by_rule.entry(rule).or_default() += 1;
        }
        let summary: Vec<String> = by_rule.iter().map(|(r, n)| format!("{r} {n}")).collect();
        let share = 100.0 * parsed as f64 / stmts.max(1) as f64;
        if share < 99.5 {
            below.push(format!("{name}: {parsed}/{stmts} understood ({share:.2}%)"));
        }
        println!(
            "{:<20} {:>6} {:>10} {:>8} {:>7.1}%  {}",
            name,
            s["files"],
            stmts,
            parsed,
            100.0 * parsed as f64 / stmts.max(1) as f64,
            summary.join(", ")
        );
    }
    println!(
        "{:<20} {:>6} {:>10} {:>8} {:>7.1}%",
        "all",
        "",
        totals.0,
        totals.1,
        100.0 * totals.1 as f64 / totals.0.max(1) as f64
    );
    assert!(below.is_empty(), "corpora below 99.5% understood: {below:?}");
}

/// Every corpus file cut at pseudo-random points (inside strings, dollar
/// quotes, comments, bodies, multibyte characters) goes through the front
/// end without a panic, and every statement's span stays inside the text.
#[test]
#[ignore = "needs ../shared/corpora; run with --ignored (the CI does)"]
fn truncated_corpus_files_never_panic_the_front_end() {
    let mut seed: u64 = 0x5eed;
    let mut cuts = 0;
    for dir in corpus_dirs() {
        for f in sql_files(&dir) {
            let text = std::fs::read_to_string(&f).unwrap();
            for _ in 0..3 {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let mut cut = (seed >> 33) as usize % (text.len() + 1);
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                let parsed = strata::sql::parse_text("cut.sql", &text[..cut]);
                for st in &parsed.statements {
                    assert!(st.bytes.end <= cut, "{}: cut at {cut}: {:?}", f.display(), st.bytes);
                    assert!(st.region.start.line as usize <= parsed.source.line_count());
                }
                cuts += 1;
            }
        }
    }
    println!("{cuts} truncated files parsed");
}

#[test]
#[ignore = "needs ../shared/corpora; run with --ignored (the CI does)"]
fn a_corpus_adopted_as_a_workspace_core_layer_checks_and_reports_one_new_file() {
    // lemmy as the core layer of a throwaway workspace: the whole history is
    // context, one new migration is reported.
    let lemmy = corpora().join("lemmy");
    let ws = tempfile::tempdir().unwrap();
    let core = ws.path().join("schema/core");
    std::fs::create_dir_all(&core).unwrap();
    for e in std::fs::read_dir(&lemmy).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "sql") {
            std::fs::copy(&p, core.join(p.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(ws.path().join("strata.toml"), "pg_version = 16\n[migrations]\nnaming = \"any\"\n").unwrap();
    let new = core.join("9999-12-31-000000_add_nickname.up.sql");
    std::fs::write(
        &new,
        "ALTER TABLE person ADD COLUMN nickname varchar(30);\nCREATE INDEX person_nickname ON person (nickname);\n",
    )
    .unwrap();
    let (code, out, err) = strata(&["check", new.to_str().unwrap(), "--format", "json", "--no-cache"], ws.path());
    assert_eq!(code, 1, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["summary"]["files"], 1);
    assert!(v["summary"]["context_files"].as_u64().unwrap() >= 300);
    let rules: Vec<&str> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["rule"].as_str().unwrap())
        .collect();
    // person exists in the history: the index must be concurrent.
    assert!(rules.contains(&"require-concurrent-index"), "{rules:?}");
    assert!(rules.contains(&"prefer-text"), "{rules:?}");
    assert!(v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["file"] == "schema/core/9999-12-31-000000_add_nickname.up.sql"));
}

/// `init --from` adopts each corpus as its tool runs it: the layout, every
/// forward file (the corpora are named so that their top-level `*.sql` files
/// sort in apply order), the down files left out.
#[test]
#[ignore = "needs ../shared/corpora (run with --ignored)"]
fn init_from_adopts_each_corpus_as_its_tool_runs_it() {
    let expected: BTreeMap<&str, &str> = [
        ("lemmy", "diesel"),
        ("hatchet", "goose"),
        ("supabase_postgres", "dbmate"),
        ("supabase_auth", "pop"),
        ("supabase_storage", "native"),
        ("temporal", "plain"),
    ]
    .into_iter()
    .collect();
    for dir in corpus_dirs() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let Some(layout) = expected.get(name.as_str()) else {
            continue;
        };
        let ws = tempfile::tempdir().unwrap();
        let (code, out, err) = strata(&["init", "--from", dir.to_str().unwrap()], ws.path());
        assert_eq!(code, 0, "{name}: {out}{err}");
        let mut forward: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql") && !n.ends_with(".down.sql"))
            .collect();
        forward.sort();
        assert!(
            out.contains(&format!("adopted {} {layout} migrations", forward.len())),
            "{name}: {out}"
        );
        let (_, ls, _) = strata(&["ls", "--format", "json"], ws.path());
        let v: serde_json::Value = serde_json::from_str(&ls).unwrap();
        let listed: Vec<String> = v["layers"][0]["migrations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().rsplit('/').next().unwrap().to_string())
            .collect();
        assert_eq!(listed, forward, "{name}: apply order");
        let downs = walkdir::WalkDir::new(&dir)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".down.sql"))
            .count();
        if downs > 0 {
            assert!(
                out.contains(&format!("{downs} down migrations (never applied forward)")),
                "{name}: {out}"
            );
        }
        let (code, _, err) = strata(&["sum", "--check"], ws.path());
        assert_eq!(code, 0, "{name}: {err}");
    }
}

/// The body of the bad migration added to each adopted corpus.
const PROBE: &str = "CREATE TABLE strata_probe (id serial PRIMARY KEY, at timestamp);\nUPDATE strata_probe SET at = now();\n";

/// `strata new core strata_probe` in `ws`, with [`PROBE`] under the tool's
/// up marker: the new file's path.
fn new_bad_migration(ws: &Path, name: &str) -> PathBuf {
    let (code, out, err) = strata(&["new", "core", "strata_probe"], ws);
    assert_eq!(code, 0, "{name}: {out}{err}");
    let path = ws.join(out.trim());
    let text = std::fs::read_to_string(&path).unwrap();
    let text = match ["-- +goose Up\n", "-- migrate:up\n"].iter().find(|m| text.starts_with(**m)) {
        Some(m) => format!("{m}{PROBE}{}", &text[m.len()..]),
        None => format!("{text}{PROBE}"),
    };
    std::fs::write(&path, text).unwrap();
    path
}

/// Adoption as a new user does it, on a copy of each corpus: `init --from`,
/// `check --write-baseline`, `check` reports nothing, a new bad migration
/// is reported alone and exactly. Prints the counts before the baseline.
#[test]
#[ignore = "needs ../shared/corpora (run with --ignored)"]
fn adopting_each_corpus_accepts_its_history_and_reports_exactly_a_new_migration() {
    println!(
        "\n{:<20} {:>8} {:>8} {:>9}  new findings",
        "corpus", "errors", "warnings", "accepted"
    );
    for dir in corpus_dirs() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let tmp = tempfile::tempdir().unwrap();
        let copy = tmp.path().join("migrations");
        common::copy_dir(&dir, &copy);
        let ws = tmp.path().join("ws");
        std::fs::create_dir_all(&ws).unwrap();
        let (code, out, err) = strata(&["init", "--from", "../migrations"], &ws);
        assert_eq!(code, 0, "{name}: {out}{err}");
        assert!(out.contains("strata check --write-baseline"), "{name}: {out}");
        let check = |extra: &[&str]| -> serde_json::Value {
            let mut args = vec!["check", "--format", "json", "--no-cache"];
            args.extend(extra);
            let (code, out, err) = strata(&args, &ws);
            assert!(code == 0 || code == 1, "{name}: exit {code}\n{err}");
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{name}: {e}: {err}"))
        };
        let before = check(&[]);
        let (code, _, err) = strata(&["check", "--write-baseline"], &ws);
        assert_eq!(code, 0, "{name}: {err}");
        let after = check(&[]);
        assert_eq!(after["diagnostics"].as_array().unwrap().len(), 0, "{name}: {after}");
        assert_eq!(
            after["summary"]["accepted"],
            before["diagnostics"].as_array().unwrap().len(),
            "{name}"
        );
        let (code, _, _) = strata(&["check"], &ws);
        assert_eq!(code, 0, "{name}: a clean check exits 0");

        let path = new_bad_migration(&ws, &name);
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let new = check(&[]);
        let mut rules: Vec<String> = new["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                assert!(
                    d["file"].as_str().unwrap().ends_with(&file),
                    "{name}: a finding outside the new file: {d}"
                );
                d["rule"].as_str().unwrap().to_string()
            })
            .collect();
        rules.sort();
        // The table is new: the whole-table UPDATE of it is not a finding.
        assert_eq!(rules, ["prefer-bigint", "prefer-identity", "prefer-timestamptz"], "{name}: {new:#}");
        assert!(new["stale_baseline"].as_array().unwrap().is_empty(), "{name}");
        println!(
            "{:<20} {:>8} {:>8} {:>9}  {}",
            name,
            before["summary"]["errors"].to_string(),
            before["summary"]["warnings"].to_string(),
            after["summary"]["accepted"].to_string(),
            rules.join(", ")
        );
    }
}

/// Statements are tokenized once: the tokens strata makes from PostgreSQL's
/// scan are exactly sqlparser's (tokens and spans) on every statement of
/// every corpus, and few statements are left to sqlparser's tokenizer.
#[test]
#[ignore = "needs ../shared/corpora; run with --ignored (the CI does)"]
fn tokens_from_postgres_scan_are_sqlparsers_tokens() {
    let (mut converted, mut left) = (0, 0);
    for dir in corpus_dirs() {
        let (mut c, mut l) = (0, 0);
        for e in walkdir::WalkDir::new(&dir) {
            let e = e.unwrap();
            if e.path().extension().is_none_or(|x| x != "sql") {
                continue;
            }
            let text = std::fs::read_to_string(e.path()).unwrap();
            let (fc, fl) = strata::sql::check_conversion(&text).unwrap_or_else(|m| panic!("{}: {m}", e.path().display()));
            c += fc;
            l += fl;
        }
        println!(
            "{}: {c} statements converted, {l} tokenized by sqlparser",
            dir.file_name().unwrap().to_string_lossy()
        );
        converted += c;
        left += l;
    }
    println!("all: {converted} converted, {left} tokenized by sqlparser");
    assert!(
        left * 10 < converted,
        "{left} of {} statements still tokenized twice",
        converted + left
    );
}

/// A history file the check does not report on is read only for what the
/// catalog replays (no function body, no data statement): on every corpus,
/// that reading replays into the same catalog as a full one, every origin
/// pointing at the same statement of its file (indices differ where a
/// function body's statements were not added).
#[test]
#[ignore = "needs ../shared/corpora; run with --ignored (the CI does)"]
fn history_read_for_replay_builds_the_catalog_a_full_read_builds() {
    use serde_json::Value;
    use std::sync::Arc;
    use strata::catalog::Catalog;
    use strata::check::{parse_source_with, replay};
    use strata::diag::SourceFile;
    use strata::sql::{ParsedFile, ReadScope};
    /// Compares two catalogs' JSON; an origin compares by the bytes of the
    /// statement it points at.
    fn same(a: &Value, b: &Value, files: &[(ParsedFile, ParsedFile)]) -> bool {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) if x.contains_key("stmt") && x.contains_key("file") => {
                let at = |v: &serde_json::Map<String, Value>, k: &str| v[k].as_u64().unwrap() as usize;
                let (f, g) = (at(x, "file"), at(y, "file"));
                let bytes = |p: &ParsedFile, i: usize| p.statements.get(i).map(|s| s.bytes.clone());
                f == g && x["layer"] == y["layer"] && bytes(&files[f].0, at(x, "stmt")) == bytes(&files[f].1, at(y, "stmt"))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w, files)))
            }
            (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w, files)),
            _ => a == b,
        }
    }
    for dir in corpus_dirs() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let paths = sql_files(&dir);
        let (mut full, mut history) = (Catalog::new(), Catalog::new());
        let mut files = Vec::new();
        for (id, path) in paths.iter().enumerate() {
            let text = std::fs::read_to_string(path).unwrap();
            let source = || Arc::new(SourceFile::new(path.display().to_string(), text.clone()));
            let a = parse_source_with(source(), ReadScope::All);
            let b = parse_source_with(source(), ReadScope::History);
            for (i, s) in a.statements.iter().enumerate() {
                replay(&mut full, s, id as u32, 0, i);
            }
            for (i, s) in b.statements.iter().enumerate() {
                replay(&mut history, s, id as u32, 0, i);
            }
            files.push((a, b));
        }
        let statements: usize = files.iter().map(|(a, _)| a.statements.len()).sum();
        let read: usize = files
            .iter()
            .map(|(_, b)| b.statements.iter().filter(|s| s.ast().is_some() || s.unparsed().is_some()).count())
            .sum();
        let value = |c: &Catalog| serde_json::to_value(c).unwrap();
        assert!(same(&value(&full), &value(&history), &files), "{name}: the catalogs differ");
        println!(
            "{name}: {} of {statements} statements not read for replay, same catalog",
            statements - read
        );
    }
}
