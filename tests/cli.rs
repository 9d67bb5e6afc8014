//! CLI behaviour, tested by running the binary.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{copy_dir, strata_in};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures").join(name)
}

/// Replaces run-dependent numbers (timings, version) for snapshots.
fn redact(s: &str) -> String {
    let s = regex::Regex::new(r"in [0-9.]+ ms").unwrap().replace_all(s, "in [elapsed] ms");
    let s = regex::Regex::new(r#""elapsed_ms": [0-9.e+-]+"#)
        .unwrap()
        .replace_all(&s, r#""elapsed_ms": "[elapsed]""#);
    let s = regex::Regex::new(r#"time="[0-9.]+""#)
        .unwrap()
        .replace_all(&s, r#"time="[elapsed]""#);
    s.replace(env!("CARGO_PKG_VERSION"), "[version]")
}

/// A copy of the bundled workspace in a temp dir.
fn bundled_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["strata.toml", "tenants.toml", "strata.sum"] {
        if repo().join(f).exists() {
            std::fs::copy(repo().join(f), dir.path().join(f)).unwrap();
        }
    }
    copy_dir(&repo().join("schema"), &dir.path().join("schema"));
    copy_dir(&repo().join("rules"), &dir.path().join("rules"));
    dir
}

#[test]
fn bundled_workspace_checks_clean_with_a_one_line_summary() {
    let out = strata_in(&repo(), &["check"]);
    assert_eq!(out.code, 0, "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    let re = regex::Regex::new(r"^checked \d+ files, \d+ statements \(\d+ understood\), 0 errors, 0 warnings in [0-9.]+ ms$").unwrap();
    assert!(re.is_match(lines[0]), "{}", lines[0]);
}

#[test]
fn bundled_strata_sum_is_up_to_date() {
    let out = strata_in(&repo(), &["sum", "--check"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
}

#[test]
fn every_output_format_on_a_fixture_with_several_findings() {
    for format in ["text", "json", "sarif", "github", "junit"] {
        let out = strata_in(&fixture("findings"), &["check", "--format", format]);
        assert_eq!(out.code, 1, "{format}: {}{}", out.stdout, out.stderr);
        insta::assert_snapshot!(format!("format_{format}"), redact(&out.stdout));
    }
}

#[test]
fn sarif_has_every_field_code_scanning_requires() {
    let out = strata_in(&fixture("findings"), &["check", "--format", "sarif"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("valid JSON");
    assert_eq!(v["version"], "2.1.0");
    assert!(v["$schema"].as_str().unwrap().contains("sarif"));
    let run = &v["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "strata");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert!(rules.iter().all(|r| r["id"].is_string()
        && r["shortDescription"]["text"].is_string()
        && r["fullDescription"]["text"].is_string()
        && r["help"]["text"].is_string()));
    let results = run["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for r in results {
        assert!(r["ruleId"].is_string() && r["message"]["text"].is_string() && r["level"].is_string());
        let loc = &r["locations"][0]["physicalLocation"];
        assert!(loc["artifactLocation"]["uri"].is_string());
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
        assert!(loc["region"]["startColumn"].as_u64().unwrap() >= 1);
        let id = r["ruleId"].as_str().unwrap();
        let idx = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[idx]["id"], id);
    }
}

#[test]
fn a_syntax_error_between_valid_statements_keeps_checking_the_rest() {
    let out = strata_in(&fixture("findings"), &["check", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let diags = v["diagnostics"].as_array().unwrap();
    // PostgreSQL's own message and the position of the bad word.
    let rejected: Vec<_> = diags.iter().filter(|d| d["rule"] == "syntax-error").collect();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["file"], "schema/core/0002_notes.sql");
    assert_eq!(rejected[0]["severity"], "error");
    assert_eq!(rejected[0]["start"]["line"], 6);
    assert_eq!(rejected[0]["start"]["col"], 8);
    assert_eq!(
        rejected[0]["message"],
        "PostgreSQL rejects this statement: syntax error at or near \"TABLEX\""
    );
    // The table created before the broken statement was replayed and checked.
    assert!(diags
        .iter()
        .any(|d| d["rule"] == "rls-missing" && d["file"] == "schema/core/0002_notes.sql"));
}

#[test]
fn plain_files_without_a_workspace_get_no_governance_rules() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.sql"),
        "CREATE TABLE t (id bigint PRIMARY KEY, wa_lid text);\nCREATE RULE r AS ON INSERT TO t DO INSTEAD NOTHING;\n",
    )
    .unwrap();
    let out = strata_in(dir.path(), &["check", "a.sql", "--format", "json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let rules: Vec<&str> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, vec!["unparsed-statement"]);
    // --deny-warnings turns the warning into a failure.
    assert_eq!(strata_in(dir.path(), &["check", "a.sql", "--deny-warnings"]).code, 1);
}

#[test]
fn exit_2_for_a_missing_path() {
    let dir = tempfile::tempdir().unwrap();
    let out = strata_in(dir.path(), &["check", "nope.sql"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("nope.sql") && out.stderr.contains("no such file"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_folder_of_which_no_file_is_a_migration_is_an_error_not_a_clean_check() {
    // dbmate's markers, but no file named as dbmate names migrations.
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("db");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("schema.sql"), "-- migrate:up\nCREATE TABLE t (id int);\n").unwrap();
    let out = strata_in(dir.path(), &["check", "--no-workspace", "db"]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("db: no migration to check") && out.stderr.contains("schema.sql"),
        "{}",
        out.stderr
    );
    // Named, the same file is checked.
    let out = strata_in(dir.path(), &["check", "--no-workspace", "db/schema.sql"]);
    assert!(out.stdout.contains("checked 1 file"), "{}{}", out.stdout, out.stderr);
    // A folder of `.up.sql` files named by a runner of their own is read in
    // lexical order.
    let other = dir.path().join("auth");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("V0001.Init.up.sql"), "CREATE TABLE a (id bigint PRIMARY KEY);\n").unwrap();
    std::fs::write(other.join("V0001.Init.down.sql"), "DROP TABLE a;\n").unwrap();
    std::fs::write(other.join("V0002.More.up.sql"), "CREATE TABLE b (id bigint PRIMARY KEY);\n").unwrap();
    let out = strata_in(dir.path(), &["check", "--no-workspace", "auth"]);
    assert!(out.stdout.contains("checked 2 files"), "{}{}", out.stdout, out.stderr);
}

#[test]
fn exit_2_for_an_unreadable_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked.sql");
    std::fs::write(&path, "SELECT 1;").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    // root reads any file whatever its mode; /proc/self/mem exists but
    // cannot be read sequentially by anyone.
    let target = if std::fs::read(&path).is_ok() {
        PathBuf::from("/proc/self/mem")
    } else {
        path
    };
    let out = strata_in(dir.path(), &["check", target.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(target.to_str().unwrap()) && out.stderr.contains("cannot read"),
        "{}",
        out.stderr
    );
}

#[test]
fn exit_2_for_a_file_that_is_not_utf8() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("latin1.sql"), b"SELECT 1;\nSELECT 'caf\xe9';\n").unwrap();
    let out = strata_in(dir.path(), &["check", "latin1.sql"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("latin1.sql:2:12: file is not valid UTF-8"), "{}", out.stderr);
}

#[test]
fn exit_2_for_an_invalid_strata_toml() {
    let ws = bundled_copy();
    std::fs::write(ws.path().join("strata.toml"), "pg_version = 15\n[tenancy]\nmdoe = \"shared\"\n").unwrap();
    let out = strata_in(ws.path(), &["check"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("strata.toml:3:1:") && out.stderr.contains("mdoe"),
        "{}",
        out.stderr
    );
}

/// A `pg_version` strata does not know is an error at the value; one it
/// knows but does not test (10 to 12) is a warning, and the check runs.
#[test]
fn pg_version_is_a_known_major() {
    let ws = bundled_copy();
    let config = std::fs::read_to_string(ws.path().join("strata.toml")).unwrap();
    let with = |v: &str| {
        let text = config
            .lines()
            .map(|l| {
                if l.starts_with("pg_version") {
                    format!("pg_version = {v}")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(text.contains(&format!("pg_version = {v}")), "{config}");
        std::fs::write(ws.path().join("strata.toml"), text + "\n").unwrap();
        let line = config.lines().position(|l| l.starts_with("pg_version")).unwrap() + 1;
        (strata_in(ws.path(), &["check"]), line)
    };
    let (out, line) = with("99");
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains(&format!(
            "strata.toml:{line}:14: pg_version 99 is not a PostgreSQL major version strata knows (10 to 18"
        )),
        "{}",
        out.stderr
    );
    let (out, line) = with("12");
    assert_ne!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "strata.toml:{line}:14: pg_version 12 is a PostgreSQL major past its end of life"
        )),
        "{}",
        out.stderr
    );
    let (out, _) = with("18");
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
}

#[test]
fn exit_2_for_an_invalid_tenants_toml() {
    let ws = bundled_copy();
    std::fs::write(
        ws.path().join("tenants.toml"),
        "[[tenant]]\nslug = \"Not Valid\"\ndatabase = \"env:X\"\n",
    )
    .unwrap();
    let out = strata_in(ws.path(), &["check"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("tenants.toml:1:1:") && out.stderr.contains("Not Valid"),
        "{}",
        out.stderr
    );
    std::fs::write(ws.path().join("tenants.toml"), "[[tenant]\nslug = 1\n").unwrap();
    let out = strata_in(ws.path(), &["check"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("tenants.toml:1:"), "{}", out.stderr);
}

#[test]
fn rules_and_explain() {
    let out = strata_in(&repo(), &["rules", "--format", "json"]);
    assert_eq!(out.code, 0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let ids: Vec<&str> = v.as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    for id in [
        "unparsed-statement",
        "opaque-sql",
        "migration-name",
        "lid-column",
        "rls-missing",
        "migration-modified",
        "migration-order",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
        let e = strata_in(&repo(), &["explain", id]);
        assert_eq!(e.code, 0);
        for h in ["## What it does", "## Why is this bad?", "## Example", "## How to fix"] {
            assert!(e.stdout.contains(h), "{id}: {h}");
        }
    }
    let bad = strata_in(&repo(), &["explain", "no-such-rule"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("unknown rule"));
}

#[test]
fn ls_prints_a_tenants_composed_sequence_in_layer_order() {
    let out = strata_in(&repo(), &["ls", "--tenant", "dreamlink"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let layers: Vec<&str> = out.stdout.lines().skip(1).map(|l| l.split_whitespace().next().unwrap()).collect();
    let first_vertical = layers.iter().position(|l| l.starts_with("verticals/")).unwrap();
    let first_bespoke = layers.iter().position(|l| l.starts_with("bespoke/")).unwrap();
    assert!(layers[..first_vertical].iter().all(|l| *l == "core"));
    assert!(layers[first_vertical..first_bespoke].iter().all(|l| *l == "verticals/agency"));
    assert!(layers[first_bespoke..].iter().all(|l| *l == "bespoke/dreamlink"));
    assert_eq!(strata_in(&repo(), &["ls", "--tenant", "nobody"]).code, 2);
}

#[test]
fn sum_detects_edits_removals_and_reordering() {
    let ws = bundled_copy();
    assert_eq!(strata_in(ws.path(), &["sum"]).code, 0);
    assert_eq!(strata_in(ws.path(), &["sum", "--check"]).code, 0);
    assert_eq!(strata_in(ws.path(), &["check"]).code, 0);
    let f = ws.path().join("schema/core/0002_contacts.sql");
    let text = std::fs::read_to_string(&f).unwrap();
    std::fs::write(&f, format!("{text}\n-- edited after release\n")).unwrap();
    assert_eq!(strata_in(ws.path(), &["sum", "--check"]).code, 1);
    let out = strata_in(ws.path(), &["check", "--format", "json"]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("\"migration-modified\""), "{}", out.stdout);
    std::fs::write(&f, text).unwrap();
    // Re-ordering two lines of strata.sum breaks the chain.
    let sum_path = ws.path().join("strata.sum");
    let sum = std::fs::read_to_string(&sum_path).unwrap();
    let mut lines: Vec<&str> = sum.lines().collect();
    lines.swap(1, 2);
    std::fs::write(&sum_path, lines.join("\n") + "\n").unwrap();
    let out = strata_in(ws.path(), &["check"]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("hash chain breaks"), "{}", out.stdout);
}

fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .args(["-c", "user.email=t@example.com", "-c", "user.name=t"])
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?}");
}

/// The bundled workspace in a git repository with one commit of it.
fn committed_copy() -> tempfile::TempDir {
    let ws = bundled_copy();
    git(ws.path(), &["init", "-q", "-b", "main"]);
    git(ws.path(), &["add", "-A"]);
    git(ws.path(), &["commit", "-q", "-m", "base"]);
    ws
}

#[test]
fn staged_and_since_report_only_changed_migrations() {
    let ws = committed_copy();
    std::fs::write(
        ws.path().join("schema/core/0006_scratch.sql"),
        "CREATE TABLE scratch (id uuid PRIMARY KEY, wa_lid text);\n",
    )
    .unwrap();
    git(ws.path(), &["add", "schema/core/0006_scratch.sql"]);
    let out = strata_in(ws.path(), &["check", "--staged", "--format", "json"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["summary"]["files"], 1);
    assert!(v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["file"] == "schema/core/0006_scratch.sql"));
    git(ws.path(), &["commit", "-q", "-m", "new"]);
    let out = strata_in(ws.path(), &["check", "--since", "HEAD~1", "--format", "json"]);
    assert_eq!(out.code, 1);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["summary"]["files"], 1);
    let none = strata_in(ws.path(), &["check", "--since", "HEAD"]);
    assert_eq!(none.code, 0);
    assert!(none.stdout.starts_with("checked 0 files"), "{}", none.stdout);
}

#[test]
fn staged_skips_sql_outside_the_layers_and_paths_narrow_it() {
    let ws = committed_copy();
    std::fs::create_dir_all(ws.path().join("fixtures")).unwrap();
    std::fs::write(ws.path().join("fixtures/seed.sql"), "INSERT INTO contacts DEFAULT VALUES;\n").unwrap();
    std::fs::write(
        ws.path().join("schema/core/0006_scratch.sql"),
        "CREATE TABLE scratch (id uuid PRIMARY KEY, wa_lid text);\n",
    )
    .unwrap();
    git(ws.path(), &["add", "fixtures/seed.sql", "schema/core/0006_scratch.sql"]);

    let out = strata_in(ws.path(), &["check", "--staged", "--format", "json", "--verbose"]);
    assert_eq!(out.code, 1, "{}", out.all());
    let v = out.json();
    assert_eq!(v["summary"]["files"], 1, "{}", out.all());
    assert!(
        out.stderr.contains("fixtures/seed.sql: not a migration of any layer"),
        "{}",
        out.stderr
    );
    // Without --verbose the skipped file is not mentioned.
    let quiet = strata_in(ws.path(), &["check", "--staged"]);
    assert_eq!(quiet.code, 1, "{}", quiet.all());
    assert!(!quiet.all().contains("seed.sql"), "{}", quiet.all());

    // PATHS narrow the staged files: a folder without staged migrations
    // leaves nothing to report on.
    let narrowed = strata_in(ws.path(), &["check", "--staged", "schema/verticals", "--format", "json"]);
    assert_eq!(narrowed.code, 0, "{}", narrowed.all());
    assert_eq!(narrowed.json()["summary"]["files"], 0);
    let narrowed = strata_in(ws.path(), &["check", "--staged", "schema/core", "--format", "json"]);
    assert_eq!(narrowed.json()["summary"]["files"], 1, "{}", narrowed.all());
}

#[test]
fn since_includes_new_migrations_not_yet_added() {
    let ws = committed_copy();
    std::fs::write(
        ws.path().join("schema/core/0006_scratch.sql"),
        "CREATE TABLE scratch (id uuid PRIMARY KEY, wa_lid text);\n",
    )
    .unwrap();
    let out = strata_in(ws.path(), &["check", "--since", "HEAD", "--format", "json"]);
    assert_eq!(out.code, 1, "{}", out.all());
    let v = out.json();
    assert_eq!(v["summary"]["files"], 1, "{}", out.all());
    assert_eq!(v["diagnostics"][0]["file"], "schema/core/0006_scratch.sql");
    // --staged is what the commit will hold: the untracked file is not in it.
    let staged = strata_in(ws.path(), &["check", "--staged", "--format", "json"]);
    assert_eq!(staged.json()["summary"]["files"], 0, "{}", staged.all());
}

#[test]
fn ls_text_lists_each_layers_history_in_apply_order() {
    let ws = bundled_copy();
    let out = strata_in(ws.path(), &["ls"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let core = out.stdout.find("core (native): 5 migrations in apply order\n").expect(&out.stdout);
    let listed: Vec<&str> = out.stdout[core..].lines().skip(1).take(5).map(|l| l.trim()).collect();
    let mut files: Vec<String> = std::fs::read_dir(ws.path().join("schema/core"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let expected: Vec<String> = files
        .iter()
        .enumerate()
        .map(|(i, f)| format!("{}  schema/core/{f}", i + 1))
        .collect();
    assert_eq!(listed, expected);
    assert!(
        out.stdout.contains("\nbespoke/dreamlink (native): 1 migrations in apply order\n"),
        "{}",
        out.stdout
    );
}

/// A reader that stops early (`| head`) closes stdout: strata stops quietly
/// with exit 0 whatever it was writing.
#[test]
fn a_closed_stdout_ends_quietly() {
    use std::io::Read;
    let ws = bundled_copy();
    // Enough migrations that every output fills the pipe before the reader stops.
    for i in 6..1500 {
        std::fs::write(
            ws.path().join(format!("schema/core/{i:04}_t{i}.sql")),
            format!("CREATE TABLE t{i} (id serial PRIMARY KEY, name varchar(20));\n"),
        )
        .unwrap();
    }
    for args in [
        &["ls", "--format", "json"][..],
        &["ls"],
        &["check", "--format", "json", "--no-cache"],
        &["check", "--no-cache"],
        &["completions", "zsh"],
    ] {
        let mut child = common::strata_command()
            .args(args)
            .current_dir(ws.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 16];
        stdout.read_exact(&mut first).unwrap();
        drop(stdout);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("Broken pipe") && !stderr.contains("panicked"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn color_follows_the_flag_and_no_color() {
    let with = common::strata_command()
        .args(["check", "--color", "always"])
        .current_dir(fixture("findings"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&with.stdout).contains('\u{1b}'));
    let without = strata_in(&fixture("findings"), &["check"]);
    assert!(!without.stdout.contains('\u{1b}'));
}

#[test]
fn max_failures_zero_is_refused_for_migrate_and_baseline() {
    // "Stop after N failures": N = 0 would start no tenant, so it is refused before any work.
    let ws = bundled_copy();
    for args in [
        &["migrate", "--all", "--max-failures", "0"][..],
        &["baseline", "--all", "--from", "goose", "--max-failures", "0"][..],
    ] {
        let run = strata_in(ws.path(), args);
        run.expect(2);
        assert!(run.stderr.contains("0 would start no tenant"), "{}", run.all());
    }
}

#[test]
fn a_history_file_edited_behind_the_cache_is_read_again() {
    let ws = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let core = ws.path().join("schema/core");
    std::fs::create_dir_all(&core).unwrap();
    std::fs::write(ws.path().join("strata.toml"), "pg_version = 16\n[migrations]\nnaming = \"any\"\n").unwrap();
    let first = core.join("0001_notes.sql");
    std::fs::write(&first, "CREATE TABLE notes (id int, body text);\n").unwrap();
    // Recorded in the index only once older than the racy window.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let set_old = |p: &Path| std::fs::File::options().write(true).open(p).unwrap().set_modified(old).unwrap();
    set_old(&first);
    std::fs::write(
        core.join("0002_body.sql"),
        "ALTER TABLE notes ALTER COLUMN body TYPE varchar(10);\n",
    )
    .unwrap();
    let check = |extra: &[&str]| {
        let mut c = common::strata_command();
        c.args(["check", "schema/core/0002_body.sql", "--format", "json"])
            .args(extra)
            .env("STRATA_CACHE_DIR", cache.path())
            .current_dir(ws.path());
        let out = c.output().unwrap();
        common::diagnostic_fields(&String::from_utf8_lossy(&out.stdout), "message")
    };
    // A file is recorded in the index of stamps only once its last change
    // is two seconds old (a change within the same clock tick would not
    // show in its stamp).
    std::thread::sleep(std::time::Duration::from_millis(2200));
    // The history says what the column was.
    let knows_the_old_type = |messages: &[String]| messages.iter().any(|m| m.contains("from `text`"));
    let before = check(&[]);
    assert!(knows_the_old_type(&before), "{before:?}");
    assert_eq!(check(&[]), before, "warm, from the cache");
    let indexes = || {
        std::fs::read_dir(cache.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("files-"))
            .count()
    };
    assert_eq!(indexes(), 1, "one index of file stamps for the workspace");
    // 0001 no longer creates `notes` (same size, the old time put back).
    std::fs::write(&first, "CREATE TABLE motes (id int, body text);\n").unwrap();
    set_old(&first);
    let after = check(&[]);
    assert_eq!(after, check(&["--no-cache"]), "the edit is seen");
    assert!(!knows_the_old_type(&after), "{after:?}");
}

#[test]
fn a_migration_that_is_a_link_is_reviewed_when_named_with_the_file_it_points_to() {
    let ws = tempfile::tempdir().unwrap();
    let schema = ws.path().join("schema");
    for d in ["core", "verticals/v1", "verticals/v2"] {
        std::fs::create_dir_all(schema.join(d)).unwrap();
    }
    std::fs::write(ws.path().join("strata.toml"), "pg_version = 16\n[migrations]\nnaming = \"any\"\n").unwrap();
    std::fs::write(schema.join("core/0001_core.sql"), "CREATE TABLE core_t (id int PRIMARY KEY);\n").unwrap();
    std::fs::write(
        schema.join("verticals/v1/0001_x.sql"),
        "ALTER TABLE core_t ADD COLUMN n varchar(10);\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("../v1/0001_x.sql", schema.join("verticals/v2/0001_x.sql")).unwrap();
    let reviewed = |args: &[&str]| {
        let mut all = vec!["check", "--no-cache", "--format", "json"];
        all.extend_from_slice(args);
        let out = strata_in(ws.path(), &all);
        let mut files = common::diagnostic_fields(&out.stdout, "file");
        files.dedup();
        files
    };
    let both = vec![
        "schema/verticals/v1/0001_x.sql".to_string(),
        "schema/verticals/v2/0001_x.sql".to_string(),
    ];
    // The link by its own path: the link, and the file it points to.
    assert_eq!(reviewed(&["schema/verticals/v2/0001_x.sql"]), both);
    // Named twice, absolute and relative: the same two.
    let absolute = schema.join("verticals/v2/0001_x.sql");
    assert_eq!(reviewed(&[absolute.to_str().unwrap(), "schema/verticals/v2/0001_x.sql"]), both);
    // The file itself, and its folder: that file.
    assert_eq!(reviewed(&["schema/verticals/v1/0001_x.sql"]), both[..1]);
    assert_eq!(reviewed(&["schema/verticals/v1"]), both[..1]);
    // The folder holding the link: the link.
    assert_eq!(reviewed(&["schema/verticals/v2"]), both[1..]);
}
