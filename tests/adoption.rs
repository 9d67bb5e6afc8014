//! Adopting strata in someone else's project: the findings baseline, rule
//! groups, and advice and new files in the project's own migration tool.

use std::path::Path;

mod common;
use common::{strata_in as strata, Run};

#[track_caller]
fn ok(cwd: &Path, args: &[&str]) -> Run {
    let out = strata(cwd, args);
    assert_eq!(out.code, 0, "strata {args:?}\nstdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    out
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// `check --format json`: (summary, diagnostics).
fn check_json(root: &Path, extra: &[&str]) -> (serde_json::Value, Vec<serde_json::Value>) {
    let mut args = vec!["check", "--format", "json", "--no-cache"];
    args.extend(extra);
    let out = strata(root, &args);
    assert!(out.code == 0 || out.code == 1, "{}{}", out.stdout, out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    (v.clone(), v["diagnostics"].as_array().unwrap().clone())
}

/// A goose project with a history full of findings, adopted.
fn goose_project() -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    write(
        repo.path(),
        "db/migrations/20240101000000_items.sql",
        "-- +goose Up\nCREATE TABLE items (id serial PRIMARY KEY, name varchar(20), at timestamp);\n-- +goose Down\nDROP TABLE items;\n",
    );
    write(
        repo.path(),
        "db/migrations/20240102000000_index.sql",
        "-- +goose Up\nCREATE INDEX items_name ON items (name);\nCREATE INDEX items_at ON items (at);\n-- +goose Down\nDROP INDEX items_name;\n",
    );
    ok(repo.path(), &["init", "--from", "db/migrations"]);
    repo
}

#[test]
fn write_baseline_then_only_new_findings_and_stale_entries_are_reported() {
    let repo = goose_project();
    let root = repo.path();
    let (before, found) = check_json(root, &[]);
    assert!(found.len() >= 4, "{found:?}");
    let total = found.len();

    let out = ok(root, &["check", "--write-baseline"]);
    assert!(out.stderr.contains(&format!("{total} findings accepted")), "{}", out.stderr);
    let toml = std::fs::read_to_string(root.join("strata.toml")).unwrap();
    assert!(toml.contains("baseline = \"strata-baseline.json\""), "{toml}");
    assert!(root.join("strata-baseline.json").is_file());

    // Nothing new: 0 findings, exit 0, the accepted count in every summary.
    let (v, found) = check_json(root, &[]);
    assert!(found.is_empty(), "{found:?}");
    assert_eq!(v["summary"]["accepted"], total);
    let text = ok(root, &["check"]);
    assert!(
        text.stdout.contains(&format!("{total} findings accepted by the findings baseline")),
        "{}",
        text.stdout
    );
    assert_eq!(before["summary"]["files"], v["summary"]["files"]);

    // Edits elsewhere in a file (lines added above) keep its findings accepted;
    // a new statement in it and a new migration are reported, alone.
    write(
        root,
        "db/migrations/20240102000000_index.sql",
        "-- +goose Up\n-- the name is searched\n\nCREATE INDEX items_name ON items (name);\nCREATE INDEX items_id ON items (id);\n-- +goose Down\nDROP INDEX items_name;\n",
    );
    write(
        root,
        "db/migrations/20240103000000_more.sql",
        "-- +goose Up\nALTER TABLE items ADD COLUMN note varchar(10);\n",
    );
    let (v, found) = check_json(root, &[]);
    let new: Vec<(&str, &str)> = found
        .iter()
        .map(|d| (d["rule"].as_str().unwrap(), d["file"].as_str().unwrap()))
        .collect();
    assert_eq!(
        new,
        [
            // A released migration was edited: that is a finding of its own.
            ("migration-modified", "db/migrations/20240102000000_index.sql"),
            ("require-concurrent-index", "db/migrations/20240102000000_index.sql"),
            ("prefer-text", "db/migrations/20240103000000_more.sql")
        ],
        "{found:#?}"
    );
    // items_at was dropped: its entry no longer matches.
    let stale = v["stale_baseline"].as_array().unwrap();
    assert_eq!(stale.len(), 1, "{stale:?}");
    assert_eq!(stale[0]["rule"], "require-concurrent-index");
    assert_eq!(stale[0]["file"], "db/migrations/20240102000000_index.sql");
    let text = strata(root, &["check"]);
    assert!(
        text.stdout.contains("1 entry of the findings baseline no longer match"),
        "{}",
        text.stdout
    );

    // --no-baseline shows everything; rewriting the baseline drops the stale entry.
    let (_, all) = check_json(root, &["--no-baseline"]);
    assert!(all.len() > found.len());
    ok(root, &["check", "--write-baseline"]);
    let (v, found) = check_json(root, &[]);
    assert!(found.is_empty() && v["stale_baseline"].as_array().unwrap().is_empty(), "{v}");
}

#[test]
fn write_baseline_of_some_files_keeps_the_other_files_entries() {
    let repo = goose_project();
    let root = repo.path();
    ok(root, &["check", "--write-baseline"]);
    let full = std::fs::read_to_string(root.join("strata-baseline.json")).unwrap();
    ok(root, &["check", "--write-baseline", "db/migrations/20240102000000_index.sql"]);
    assert_eq!(std::fs::read_to_string(root.join("strata-baseline.json")).unwrap(), full);
    let (_, found) = check_json(root, &["db/migrations/20240101000000_items.sql"]);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn a_broken_baseline_is_a_configuration_error() {
    let repo = goose_project();
    let root = repo.path();
    ok(root, &["check", "--write-baseline"]);
    std::fs::write(root.join("strata-baseline.json"), "{\"version\": 1, \"findings\": [}").unwrap();
    let out = strata(root, &["check"]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("strata-baseline.json:1:"), "{}", out.stderr);
    let out = strata(root, &["check", "--no-workspace", "--write-baseline", "db/migrations"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--write-baseline needs a workspace"), "{}", out.stderr);
}

#[test]
fn init_from_offers_the_baseline_in_its_closing_message() {
    let repo = tempfile::tempdir().unwrap();
    write(repo.path(), "db/migrations/20240101000000_a.sql", "-- +goose Up\nSELECT 1;\n");
    let out = ok(repo.path(), &["init", "--from", "db/migrations"]);
    assert!(out.stdout.contains("strata check --write-baseline"), "{}", out.stdout);
}

#[test]
fn init_from_turns_governance_off_without_the_orbis_tables_and_strata_init_keeps_it() {
    // A project with a person table of its own: no governance findings.
    let repo = tempfile::tempdir().unwrap();
    write(
        repo.path(),
        "db/migrations/20240101000000_users.sql",
        "-- +goose Up\nCREATE TABLE users (id bigint PRIMARY KEY, name text);\nCREATE TABLE posts (id bigint PRIMARY KEY, owner_id bigint REFERENCES users (id));\nCREATE INDEX posts_owner ON posts (owner_id);\n",
    );
    let out = ok(repo.path(), &["init", "--from", "db/migrations"]);
    assert!(out.stdout.contains("governance rules are off"), "{}", out.stdout);
    let rules = std::fs::read_to_string(repo.path().join("rules/governance.toml")).unwrap();
    assert!(rules.contains("[groups]\ngovernance = \"off\""), "{rules}");
    assert!(
        rules.contains("To turn it on") && rules.contains("person_table") && rules.contains("kv_home"),
        "{rules}"
    );
    let (_, found) = check_json(repo.path(), &[]);
    assert!(found.is_empty(), "{found:#?}");
    // Turned back on, the discipline fires.
    std::fs::write(repo.path().join("rules/governance.toml"), rules.replace("governance = \"off\"", "")).unwrap();
    let (_, found) = check_json(repo.path(), &[]);
    let rules: Vec<&str> = found.iter().map(|d| d["rule"].as_str().unwrap()).collect();
    assert!(
        rules.contains(&"parallel-person-table") && rules.contains(&"rls-missing"),
        "{rules:?}"
    );

    // An Orbis history keeps governance on.
    let orbis = tempfile::tempdir().unwrap();
    write(
        orbis.path(),
        "db/migrations/20240101000000_init.sql",
        "-- +goose Up\nCREATE TABLE contacts (id uuid PRIMARY KEY);\nCREATE TABLE orbis_kv (namespace text, key text, PRIMARY KEY (namespace, key));\n",
    );
    let out = ok(orbis.path(), &["init", "--from", "db/migrations"]);
    assert!(!out.stdout.contains("governance rules are off"), "{}", out.stdout);
    let rules = std::fs::read_to_string(orbis.path().join("rules/governance.toml")).unwrap();
    assert!(!rules.contains("[groups]"), "{rules}");

    // A fresh `strata init` keeps it on, and a [rules.governance] mistake says [groups].
    let fresh = tempfile::tempdir().unwrap();
    ok(fresh.path(), &["init"]);
    let rules = std::fs::read_to_string(fresh.path().join("rules/governance.toml")).unwrap();
    assert!(!rules.contains("governance = \"off\""), "{rules}");
    write(fresh.path(), "rules/zz.toml", "[rules.governance]\nseverity = \"off\"\n");
    let out = strata(fresh.path(), &["check"]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("rules/zz.toml:1:") && out.stderr.contains("[groups]"),
        "{}",
        out.stderr
    );
}

/// A project of `layout` with one released table, adopted, and a new
/// migration `new_rel` holding `new_text`.
fn project(layout: &str, first: (&str, &str), new: (&str, &str)) -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    write(repo.path(), &format!("db/migrations/{}", first.0), first.1);
    ok(repo.path(), &["init", "--from", "db/migrations", "--layout", layout]);
    write(repo.path(), &format!("db/migrations/{}", new.0), new.1);
    repo
}

#[test]
fn messages_help_and_fixes_speak_each_tools_transaction_marker() {
    const ITEMS: &str = "CREATE TABLE items (id bigint PRIMARY KEY, name text);\n";
    const INDEX: &str = "CREATE INDEX CONCURRENTLY items_name ON items (name);\n";
    // (layout, first file, new file, text of the new file, the message's words, the help's words, the fixed file)
    type File = (String, String);
    type Case<'a> = (&'a str, File, File, &'a str, &'a str, Option<String>);
    let cases: Vec<Case> = vec![
        (
            "goose",
            ("1_items.sql".into(), format!("-- +goose Up\n{ITEMS}")),
            ("2_index.sql".into(), format!("-- +goose Up\n{INDEX}")),
            "goose runs this migration file in one",
            "with the line `-- +goose NO TRANSACTION`",
            Some(format!("-- +goose NO TRANSACTION\n-- +goose Up\n{INDEX}")),
        ),
        (
            "dbmate",
            (
                "20240101000000_items.sql".into(),
                format!("-- migrate:up\n{ITEMS}-- migrate:down\n"),
            ),
            (
                "20240102000000_index.sql".into(),
                format!("-- migrate:up\n{INDEX}-- migrate:down\nDROP INDEX items_name;\n"),
            ),
            "dbmate runs this migration file in one",
            "whose up marker reads `-- migrate:up transaction:false`",
            Some(format!(
                "-- migrate:up transaction:false\n{INDEX}-- migrate:down\nDROP INDEX items_name;\n"
            )),
        ),
        (
            "sqlx",
            ("1_items.sql".into(), ITEMS.into()),
            ("2_index.sql".into(), INDEX.into()),
            "sqlx runs this migration file in one",
            "whose first line is `-- no-transaction`",
            Some(format!("-- no-transaction\n{INDEX}")),
        ),
        (
            "diesel",
            ("2024-01-01-000000_items/up.sql".into(), ITEMS.into()),
            ("2024-01-02-000000_index/up.sql".into(), INDEX.into()),
            "diesel runs this migration file in one",
            "a migration folder of its own with a `metadata.toml` that says `run_in_transaction = false`",
            None,
        ),
        (
            "golang-migrate",
            ("1_items.up.sql".into(), ITEMS.into()),
            ("2_index.up.sql".into(), INDEX.into()),
            "golang-migrate sends this file as one query",
            "golang-migrate has no marker for running a file outside a transaction",
            Some(format!("-- strata: no-transaction\n{INDEX}")),
        ),
    ];
    for (layout, first, new, message, help, fixed) in cases {
        let repo = project(layout, (&first.0, &first.1), (&new.0, &new.1));
        let root = repo.path();
        let (_, found) = check_json(root, &[]);
        let d = found
            .iter()
            .find(|d| d["rule"] == "concurrent-in-transaction")
            .unwrap_or_else(|| panic!("{layout}: {found:#?}"));
        assert!(d["message"].as_str().unwrap().contains(message), "{layout}: {d}");
        assert!(d["help"].as_str().unwrap().contains(help), "{layout}: {d}");
        assert!(
            !d["help"].as_str().unwrap().contains("strata: no-transaction") || layout == "golang-migrate",
            "{layout}: {d}"
        );
        let out = strata(root, &["check", "--fix"]);
        assert!(out.code == 0 || out.code == 1, "{layout}: {}{}", out.stdout, out.stderr);
        let text = std::fs::read_to_string(root.join("db/migrations").join(&new.0)).unwrap();
        match fixed {
            Some(f) => {
                assert_eq!(text, f, "{layout}");
                // The tool's marker is what strata reads too: nothing left to report.
                let (_, found) = check_json(root, &[]);
                assert!(
                    found.iter().all(|d| d["rule"] != "concurrent-in-transaction"),
                    "{layout}: {found:#?}"
                );
            }
            None => assert_eq!(text, new.1, "{layout}: no fix where the marker lives outside the file"),
        }
    }
}

#[test]
fn strata_new_follows_each_histories_naming_and_down_placement_without_strata_boilerplate() {
    // (layout, existing files, the new files' names as patterns: `*` is the version)
    type Files<'a> = &'a [(&'a str, &'a str)];
    let cases: &[(&str, Files, &[&str])] = &[
        (
            "diesel",
            &[
                ("2019-02-26-002946_create_user.up.sql", "CREATE TABLE u (id bigint PRIMARY KEY);\n"),
                ("down/2019-02-26-002946_create_user.down.sql", "DROP TABLE u;\n"),
            ],
            &["*_add_x.up.sql", "down/*_add_x.down.sql"],
        ),
        (
            "diesel",
            &[("2019-02-26-002946_create_user/up.sql", "SELECT 1;\n")],
            &["*_add_x/up.sql", "*_add_x/down.sql"],
        ),
        ("goose", &[("20240101000000_a.sql", "-- +goose Up\nSELECT 1;\n")], &["*_add_x.sql"]),
        (
            "dbmate",
            &[("20240101000000_a.sql", "-- migrate:up\nSELECT 1;\n")],
            &["*_add_x.sql"],
        ),
        ("sqlx", &[("20240101000000_a.sql", "SELECT 1;\n")], &["*_add_x.sql"]),
        (
            "sqlx",
            &[("1_a.up.sql", "SELECT 1;\n"), ("1_a.down.sql", "SELECT 1;\n")],
            &["*_add_x.up.sql", "*_add_x.down.sql"],
        ),
        (
            "golang-migrate",
            &[("1_a.up.sql", "SELECT 1;\n"), ("1_a.down.sql", "SELECT 1;\n")],
            &["*_add_x.up.sql", "*_add_x.down.sql"],
        ),
    ];
    for (layout, existing, expected) in cases {
        let repo = tempfile::tempdir().unwrap();
        for (rel, text) in *existing {
            write(repo.path(), &format!("db/migrations/{rel}"), text);
        }
        ok(repo.path(), &["init", "--from", "db/migrations", "--layout", layout]);
        let before: std::collections::BTreeSet<String> = files(&repo.path().join("db/migrations"));
        let out = ok(repo.path(), &["new", "core", "add_x"]);
        let after = files(&repo.path().join("db/migrations"));
        let created: Vec<&String> = after.difference(&before).collect();
        assert_eq!(created.len(), expected.len(), "{layout}: {created:?}");
        for pattern in *expected {
            let (head, tail) = pattern.split_once('*').unwrap();
            let (c, version) = created
                .iter()
                .find_map(|c| Some((c, c.strip_prefix(head)?.strip_suffix(tail)?)))
                .unwrap_or_else(|| panic!("{layout}: none of {created:?} is {pattern}"));
            let diesel = version.len() == 17 && version.as_bytes()[4] == b'-' && version.as_bytes()[10] == b'-';
            let digits = version.bytes().all(|b| b.is_ascii_digit());
            assert!(if *layout == "diesel" { diesel } else { digits }, "{layout}: version {version}");
            let text = std::fs::read_to_string(repo.path().join("db/migrations").join(c)).unwrap();
            assert!(!text.contains("strata"), "{layout}: {c} has strata boilerplate:\n{text}");
        }
        let up = created.iter().find(|c| !c.contains("down")).unwrap();
        assert!(out.stdout.contains(up.as_str()), "{layout}: {}", out.stdout);
        if *layout == "golang-migrate" {
            assert!(up.starts_with("2_"), "{created:?}");
        }
        // The new migration is part of the history, in its place.
        let ls = ok(repo.path(), &["ls", "--format", "json"]);
        assert!(ls.stdout.contains("add_x"), "{layout}: {}", ls.stdout);
    }
}

fn files(dir: &Path) -> std::collections::BTreeSet<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(dir).unwrap().to_string_lossy().replace('\\', "/"))
        .collect()
}
