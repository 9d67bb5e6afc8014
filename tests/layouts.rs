//! Real repository layouts (tests/fixtures/layouts): `init --from` adopts
//! each in its tool's apply order, with its tool's transaction markers, and
//! says what it left out; file names with spaces, `#` and Unicode survive
//! strata.sum, every output format and `check --since`.

use std::path::Path;

mod common;
use common::{copy_dir as copy_tree, strata_in as strata, Run as Out};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/layouts").join(name)
}

#[track_caller]
fn ok(cwd: &Path, args: &[&str]) -> Out {
    let out = strata(cwd, args);
    assert_eq!(out.code, 0, "strata {args:?}\nstdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    out
}

/// A repository holding a copy of the fixture in `db/migrations`, adopted.
fn adopted(name: &str, extra: &[&str]) -> (tempfile::TempDir, Out) {
    let repo = tempfile::tempdir().unwrap();
    copy_tree(&fixture(name), &repo.path().join("db/migrations"));
    let mut args = vec!["init", "--from", "db/migrations"];
    args.extend(extra);
    let out = ok(repo.path(), &args);
    (repo, out)
}

/// The core layer's migrations as `ls --format json` lists them, relative to the folder.
fn listed(repo: &Path) -> Vec<String> {
    let ls: serde_json::Value = serde_json::from_str(&ok(repo, &["ls", "--format", "json"]).stdout).unwrap();
    ls["layers"][0]["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().trim_start_matches("db/migrations/").to_string())
        .collect()
}

/// The rule ids `check --format json` reports.
fn rules(repo: &Path) -> Vec<String> {
    let out = strata(repo, &["check", "--format", "json", "--no-cache"]);
    assert!(out.code == 0 || out.code == 1, "{}{}", out.stdout, out.stderr);
    common::diagnostic_fields(&out.stdout, "rule")
}

/// Every layout: its apply order, its own no-transaction marker (the
/// CONCURRENTLY index of each fixture is not flagged), down/undo/other
/// dialect files left out, strata.sum up to date.
#[test]
fn every_layout_is_adopted_in_its_tools_order_with_its_markers() {
    let cases: &[(&str, &[&str], &str, &[&str])] = &[
        (
            "diesel",
            &[],
            "diesel",
            &[
                "00000000000000_diesel_initial_setup/up.sql",
                "2019-11-15-182353_Add email notifications to crate owners/up.sql",
                "2020-01-01-000000_index concurrently/up.sql",
                "2020-02-01-000000_crème brûlée #1/up.sql",
            ],
        ),
        (
            "pop",
            &[],
            "pop",
            &[
                "20210101000001_items.up.sql",
                "20210101000002_index.postgres.autocommit.up.sql",
                "20210101000003_note.postgresql.up.sql",
            ],
        ),
        (
            "flyway",
            &[],
            "flyway",
            &[
                "V1__create_items.sql",
                "V1.1__index.sql",
                "V1.2__note.sql",
                "V1.10__note_comment.sql",
                "V2__tags.sql",
                "V10__labels.sql",
                "R__item_names.sql",
            ],
        ),
        ("sqlx", &[], "sqlx", &["1_create_items.sql", "2_index.sql", "10_note.sql"]),
        ("goose", &[], "goose", &["1_create_items.sql", "2_index.sql", "10_note.sql"]),
        (
            "dbmate",
            &[],
            "dbmate",
            &[
                "20240101000000_create_items.sql",
                "20240102000000_index.sql",
                "20240103000000_note.sql",
            ],
        ),
        (
            "golang-migrate",
            &["--layout", "golang-migrate"],
            "golang-migrate",
            &["1_create_items.up.sql", "2_index.up.sql", "10_note.up.sql"],
        ),
        (
            "prisma",
            &[],
            "prisma",
            &["20240101000000_create_items/migration.sql", "20240102000000_note/migration.sql"],
        ),
        (
            "native-names",
            &[],
            "native",
            &["0001_crème brûlée.sql", "0002_#hash tag.sql", "0003_with  two spaces.sql"],
        ),
    ];
    for (name, extra, layout, order) in cases {
        let (repo, out) = adopted(name, extra);
        assert!(
            out.stdout.contains(&format!("adopted {} {layout} migrations", order.len())),
            "{name}: {}",
            out.stdout
        );
        let config = std::fs::read_to_string(repo.path().join("strata.toml")).unwrap();
        assert!(config.contains(&format!("layout = \"{layout}\"")), "{name}: {config}");
        assert_eq!(listed(repo.path()), *order, "{name}: apply order");
        ok(repo.path(), &["sum", "--check"]);
        let found = rules(repo.path());
        for absent in ["concurrent-in-transaction", "drop-table", "syntax-error", "migration-modified"] {
            assert!(!found.iter().any(|r| r == absent), "{name}: {absent} in {found:?}");
        }
    }
}

#[test]
fn editing_a_flyway_repeatable_migration_is_not_a_modified_release() {
    let (repo, _) = adopted("flyway", &[]);
    std::fs::write(
        repo.path().join("db/migrations/R__item_names.sql"),
        "CREATE OR REPLACE VIEW item_names AS SELECT id, name, note FROM items;\n",
    )
    .unwrap();
    assert!(!rules(repo.path()).iter().any(|r| r == "migration-modified"));
    std::fs::write(
        repo.path().join("db/migrations/V2__tags.sql"),
        "ALTER TABLE items ADD COLUMN tags jsonb;\n",
    )
    .unwrap();
    assert!(rules(repo.path()).iter().any(|r| r == "migration-modified"));
}

#[test]
fn without_its_marker_the_concurrent_index_is_flagged() {
    let (repo, _) = adopted("sqlx", &[]);
    let file = repo.path().join("db/migrations/2_index.sql");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("-- no-transaction\n", "")).unwrap();
    assert!(rules(repo.path()).iter().any(|r| r == "concurrent-in-transaction"));
}

#[test]
fn init_from_says_what_it_left_out_and_why() {
    let (_, out) = adopted("pop", &[]);
    let text = out.stdout;
    assert!(text.contains("adopted 3 pop migrations"), "{text}");
    for line in [
        "left out 9 files:",
        "3 down migrations (never applied forward)",
        "2 mysql migrations (another database): 20210101000001_items.mysql.up.sql, 20210101000002_index.mysql.autocommit.up.sql",
        "2 generic migrations replaced by their PostgreSQL file: 20210101000002_index.up.sql, 20210101000003_note.up.sql",
        "1 sqlite3 migrations (another database)",
        "1 cockroach migrations (another database)",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
    let (_, out) = adopted("flyway", &[]);
    assert!(
        out.stdout
            .contains("1 Flyway undo migrations (never applied forward): U2__tags.sql"),
        "{}",
        out.stdout
    );
    let (_, out) = adopted("diesel", &[]);
    assert!(out.stdout.contains("left out 4 files:"), "{}", out.stdout);
}

#[test]
fn ambiguous_folders_ask_for_a_layout() {
    let repo = tempfile::tempdir().unwrap();
    copy_tree(&fixture("golang-migrate"), &repo.path().join("db/migrations"));
    let out = strata(repo.path(), &["init", "--from", "db/migrations"]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("fit more than one tool: golang-migrate, sqlx, pop; say which with --layout golang-migrate|sqlx|pop"),
        "{}",
        out.stderr
    );
    assert!(!repo.path().join("strata.toml").exists(), "nothing is written");
    for layout in ["sqlx", "pop"] {
        let repo = tempfile::tempdir().unwrap();
        copy_tree(&fixture("golang-migrate"), &repo.path().join("db/migrations"));
        let out = ok(repo.path(), &["init", "--from", "db/migrations", "--layout", layout]);
        assert!(out.stdout.contains(&format!("adopted 3 {layout} migrations")), "{}", out.stdout);
    }
    let bad = strata(repo.path(), &["init", "--from", "db/migrations", "--layout", "liquibase"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("--layout `liquibase`: expected one of native, sqlx"),
        "{}",
        bad.stderr
    );
}

#[test]
fn prisma_for_another_database_is_refused_clearly() {
    let repo = tempfile::tempdir().unwrap();
    copy_tree(&fixture("prisma-mysql"), &repo.path().join("prisma/migrations"));
    let out = strata(repo.path(), &["init", "--from", "prisma/migrations"]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("migration_lock.toml:2:1: these Prisma migrations are written for provider `mysql`"),
        "{}",
        out.stderr
    );
    assert!(!repo.path().join("strata.toml").exists());
}

/// File names with spaces, `#` and Unicode in every output format.
#[test]
fn unusual_file_names_survive_every_format() {
    let (repo, _) = adopted("diesel", &[]);
    let ws = repo.path();
    // A finding in the file with spaces, `#` and Unicode in its folder name.
    let file = ws.join("db/migrations/2020-02-01-000000_crème brûlée #1/up.sql");
    std::fs::write(&file, "CREATE TABLE notes (id int);\n").unwrap();
    let shown = "db/migrations/2020-02-01-000000_crème brûlée #1/up.sql";

    let json: serde_json::Value = serde_json::from_str(&strata(ws, &["check", "--format", "json", "--no-cache"]).stdout).unwrap();
    let files: Vec<&str> = json["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["file"].as_str().unwrap())
        .collect();
    assert!(files.contains(&shown), "{files:?}");

    let sarif: serde_json::Value = serde_json::from_str(&strata(ws, &["check", "--format", "sarif", "--no-cache"]).stdout).unwrap();
    let uris: Vec<&str> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].as_str().unwrap())
        .collect();
    let encoded = "db/migrations/2020-02-01-000000_cr%C3%A8me%20br%C3%BBl%C3%A9e%20%231/up.sql";
    assert!(uris.contains(&encoded), "{uris:?}");

    let github = strata(ws, &["check", "--format", "github", "--no-cache"]).stdout;
    assert!(github.contains(&format!("file={shown},line=1")), "{github}");

    let junit = strata(ws, &["check", "--format", "junit", "--no-cache"]).stdout;
    assert!(junit.contains(&format!("name=\"{shown}\"")), "{junit}");

    let text = strata(ws, &["check", "--no-cache", "--color", "never"]).stdout;
    assert!(text.contains(&format!("{shown}:1:1")), "{text}");

    // strata.sum records the changed file; check reads it back.
    let sum = std::fs::read_to_string(ws.join("strata.sum")).unwrap();
    assert!(sum.contains("core/2020-02-01-000000_crème brûlée #1/up.sql sha256:"), "{sum}");
    assert!(rules(ws).iter().any(|r| r == "migration-modified"));
    ok(ws, &["sum"]);
    assert!(!rules(ws).iter().any(|r| r == "migration-modified"));

    // One file, named with its spaces, on the command line.
    let one = strata(ws, &["check", "--format", "json", "--no-cache", shown]);
    let v: serde_json::Value = serde_json::from_str(&one.stdout).unwrap();
    assert_eq!(v["summary"]["files"], 1, "{}", one.stderr);
}

#[test]
fn check_since_reads_unusual_names_from_git() {
    let (repo, _) = adopted("native-names", &[]);
    let ws = repo.path();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(ws)
            .output()
            .expect("run git (install it with `apt-get install git`)");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "base"]);
    std::fs::write(ws.join("db/migrations/0004_été #2 ☕.sql"), "CREATE TABLE notes (id int);\n").unwrap();
    let out = strata(ws, &["check", "--since", "HEAD", "--format", "json", "--no-cache"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", out.stdout, out.stderr));
    // A new migration not yet added to git is part of the change.
    assert_eq!(v["summary"]["files"], 1, "untracked migrations count: {}", out.stdout);
    assert_eq!(v["diagnostics"][0]["file"], "db/migrations/0004_été #2 ☕.sql", "{}", out.stdout);
    git(&["add", "-A"]);
    let out = strata(ws, &["check", "--staged", "--format", "json", "--no-cache"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["summary"]["files"], 1, "{}{}", out.stdout, out.stderr);
    let files: Vec<&str> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["file"].as_str().unwrap())
        .collect();
    assert!(files.iter().all(|f| *f == "db/migrations/0004_été #2 ☕.sql"), "{files:?}");
}
