//! Fitting the ecosystem: `init`, `init --from` on every supported layout,
//! `new`, `completions`, `man`, and docs/configuration.md against the code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod common;
use common::strata_in;

fn ok(cwd: &Path, args: &[&str]) -> String {
    let out = strata_in(cwd, args);
    assert_eq!(out.code, 0, "strata {args:?}\nstdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    out.stdout
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// Every file under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(dir).unwrap().to_string_lossy().replace('\\', "/"))
        .collect();
    out.sort();
    out
}

#[test]
fn init_creates_a_workspace_that_checks_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ok(tmp.path(), &["init", "acme"]);
    assert!(out.contains("created schema/core/0001_init.sql"), "{out}");
    let ws = tmp.path().join("acme");
    for f in [
        "strata.toml",
        "tenants.toml",
        "strata.sum",
        "rules/governance.toml",
        "schema/core/0001_init.sql",
        "schema/verticals/.gitkeep",
        "schema/bespoke/.gitkeep",
    ] {
        assert!(ws.join(f).is_file(), "{f} missing");
    }
    let check = ok(&ws, &["check", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&check).unwrap();
    assert_eq!(v["summary"]["files"], 1);
    assert_eq!(v["diagnostics"].as_array().unwrap().len(), 0, "{check}");
    // Warnings too: the first migration is an example of the discipline.
    ok(&ws, &["check", "--deny-warnings", "--no-cache"]);
    ok(&ws, &["sum", "--check"]);

    // Never over an existing workspace.
    let again = strata_in(&ws, &["init"]);
    assert_eq!(again.code, 2, "{}", again.stdout);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
}

/// A migration history in one layout: (files, expected forward order).
/// Every history's down part would drop `a` if it were applied forward,
/// which `drop-table` would report.
fn layout_fixture(layout: &str) -> (Vec<(&'static str, &'static str)>, Vec<&'static str>) {
    const UP1: &str = "CREATE TABLE a (id bigint PRIMARY KEY);\n";
    const UP2: &str = "SELECT 1;\n";
    const DOWN: &str = "DROP TABLE a;\n";
    match layout {
        // Numeric, not lexical, order; from 1 and consecutive (else `migration-name`).
        "native" => (
            vec![
                ("1_m.sql", UP1),
                ("2_m.sql", UP2),
                ("3_m.sql", UP2),
                ("4_m.sql", UP2),
                ("5_m.sql", UP2),
                ("6_m.sql", UP2),
                ("7_m.sql", UP2),
                ("8_m.sql", UP2),
                ("9_m.sql", UP2),
                ("10_m.sql", UP2),
            ],
            vec![
                "1_m.sql", "2_m.sql", "3_m.sql", "4_m.sql", "5_m.sql", "6_m.sql", "7_m.sql", "8_m.sql", "9_m.sql", "10_m.sql",
            ],
        ),
        "sqlx" => (
            vec![
                ("20240201000000_b.sql", UP2),
                ("20240101000000_a.sql", UP1),
                ("20240301000000_c.up.sql", UP2),
                ("20240301000000_c.down.sql", DOWN),
            ],
            vec!["20240101000000_a.sql", "20240201000000_b.sql", "20240301000000_c.up.sql"],
        ),
        "flyway" => (
            vec![("V1__a.sql", UP1), ("V2__b.sql", UP2), ("V10__c.sql", UP2)],
            vec!["V1__a.sql", "V2__b.sql", "V10__c.sql"],
        ),
        "golang-migrate" => (
            vec![
                ("1_a.up.sql", UP1),
                ("1_a.down.sql", DOWN),
                ("2_b.up.sql", UP2),
                ("2_b.down.sql", DOWN),
                ("10_c.up.sql", UP2),
                ("10_c.down.sql", DOWN),
            ],
            vec!["1_a.up.sql", "2_b.up.sql", "10_c.up.sql"],
        ),
        "diesel" => (
            vec![
                ("2020-02-01-000000_b/up.sql", UP2),
                ("2020-02-01-000000_b/down.sql", DOWN),
                ("2020-01-01-000000_a/up.sql", UP1),
                ("2020-01-01-000000_a/down.sql", DOWN),
                ("00000000000000_diesel_initial_setup/up.sql", UP2),
                ("00000000000000_diesel_initial_setup/down.sql", UP2),
            ],
            vec![
                "00000000000000_diesel_initial_setup/up.sql",
                "2020-01-01-000000_a/up.sql",
                "2020-02-01-000000_b/up.sql",
            ],
        ),
        "prisma" => (
            vec![
                ("20200201000000_b/migration.sql", UP2),
                ("20200101000000_a/migration.sql", UP1),
                ("migration_lock.toml", "provider = \"postgresql\"\n"),
            ],
            vec!["20200101000000_a/migration.sql", "20200201000000_b/migration.sql"],
        ),
        "dbmate" => (
            vec![
                (
                    "20240101000000_a.sql",
                    "-- migrate:up\nCREATE TABLE a (id bigint PRIMARY KEY);\n\n-- migrate:down\nDROP TABLE a;\n",
                ),
                (
                    "20240201000000_b.sql",
                    "-- migrate:up\nSELECT 1;\n\n-- migrate:down\nDROP TABLE a;\n",
                ),
            ],
            vec!["20240101000000_a.sql", "20240201000000_b.sql"],
        ),
        "goose" => (
            vec![
                (
                    "20240101000000_a.sql",
                    "-- +goose Up\nCREATE TABLE a (id bigint PRIMARY KEY);\n-- +goose Down\nDROP TABLE a;\n",
                ),
                (
                    "20240201000000_b.sql",
                    "-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n-- +goose StatementEnd\n-- +goose Down\nDROP TABLE a;\n",
                ),
            ],
            vec!["20240101000000_a.sql", "20240201000000_b.sql"],
        ),
        other => panic!("no fixture for {other}"),
    }
}

#[test]
fn init_from_adopts_every_supported_layout_in_place() {
    for layout in ["native", "sqlx", "flyway", "golang-migrate", "diesel", "prisma", "dbmate", "goose"] {
        let repo = tempfile::tempdir().unwrap();
        let (files, expected) = layout_fixture(layout);
        let migrations = repo.path().join("db/migrations");
        for (rel, text) in &files {
            write(&migrations, rel, text);
        }
        let before = tree(&migrations);

        // `.up.sql`/`.down.sql` pairs fit golang-migrate, sqlx and pop alike.
        let mut args = vec!["init", "--from", "db/migrations"];
        if layout == "golang-migrate" {
            args.extend(["--layout", layout]);
        }
        let out = ok(repo.path(), &args);
        assert!(out.contains(&format!("{} {layout} migrations", expected.len())), "{layout}: {out}");
        assert_eq!(tree(&migrations), before, "{layout}: files were renamed, copied or added");
        let config = std::fs::read_to_string(repo.path().join("strata.toml")).unwrap();
        assert!(config.contains("core = \"db/migrations\""), "{layout}: {config}");
        assert!(config.contains(&format!("layout = \"{layout}\"")), "{layout}: {config}");
        assert!(config.contains("naming = \"any\""), "{layout}: {config}");

        let ls: serde_json::Value = serde_json::from_str(&ok(repo.path(), &["ls", "--format", "json"])).unwrap();
        let layers = ls["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1, "{layout}: {ls}");
        assert_eq!(layers[0]["layer"], "core");
        assert_eq!(layers[0]["layout"], layout);
        let listed: Vec<String> = layers[0]["migrations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().trim_start_matches("db/migrations/").to_string())
            .collect();
        assert_eq!(listed, expected, "{layout}: order, or a down migration listed");

        ok(repo.path(), &["sum", "--check"]);
        // Down files and sections are not part of the forward history: no
        // `drop-table` on `a` (rls-missing and friends are expected).
        let check = strata_in(repo.path(), &["check", "--format", "json", "--no-cache"]);
        assert!(check.code == 0 || check.code == 1, "{layout}: {}{}", check.stdout, check.stderr);
        let v: serde_json::Value = serde_json::from_str(&check.stdout).unwrap();
        let rules: Vec<&str> = v["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["rule"].as_str().unwrap())
            .collect();
        assert!(!rules.contains(&"drop-table"), "{layout}: {rules:?}");
        assert!(!rules.contains(&"migration-name"), "{layout}: {rules:?}");
    }
}

#[test]
fn init_from_a_missing_or_empty_folder_is_a_usage_error() {
    let repo = tempfile::tempdir().unwrap();
    assert_eq!(strata_in(repo.path(), &["init", "--from", "nope"]).code, 2);
    std::fs::create_dir(repo.path().join("empty")).unwrap();
    let out = strata_in(repo.path(), &["init", "--from", "empty"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("no migrations found"), "{}", out.stderr);
    assert!(!repo.path().join("strata.toml").exists());
    // Nothing is created when the adoption fails.
    assert_eq!(strata_in(repo.path(), &["init", "ws", "--from", "empty"]).code, 2);
    assert!(!repo.path().join("ws").exists());
}

#[test]
fn new_numbers_migrations_per_layer() {
    let tmp = tempfile::tempdir().unwrap();
    ok(tmp.path(), &["init", "-q"]);
    let ws = tmp.path();
    assert_eq!(ok(ws, &["new", "core", "AddNotes"]).trim(), "schema/core/0002_add_notes.sql");
    assert_eq!(ok(ws, &["new", "core", "add-tags"]).trim(), "schema/core/0003_add_tags.sql");
    // A new vertical starts at 0001; its folder is created.
    assert_eq!(
        ok(ws, &["new", "verticals/agency", "deals"]).trim(),
        "schema/verticals/agency/0001_deals.sql"
    );
    assert_eq!(
        ok(ws, &["new", "bespoke/acme", "dashboard views"]).trim(),
        "schema/bespoke/acme/0001_dashboard_views.sql"
    );
    let text = std::fs::read_to_string(ws.join("schema/core/0002_add_notes.sql")).unwrap();
    assert!(text.starts_with("-- core: add notes\n"), "{text}");
    assert!(text.contains("-- -- strata: no-transaction"), "{text}");

    // Fresh files (comments only) keep the workspace clean.
    ok(ws, &["check", "--no-cache"]);

    // The width comes from strata.toml.
    let config = std::fs::read_to_string(ws.join("strata.toml")).unwrap();
    std::fs::write(ws.join("strata.toml"), config.replace("number_width = 4", "number_width = 6")).unwrap();
    assert_eq!(
        ok(ws, &["new", "verticals/crm", "pipeline"]).trim(),
        "schema/verticals/crm/000001_pipeline.sql"
    );

    for bad in [
        &["new", "core", "9lives"][..],
        &["new", "plugins/x", "a"],
        &["new", "verticals/Bad_Name", "a"],
    ] {
        let out = strata_in(ws, bad);
        assert_eq!(out.code, 2, "{bad:?}: {}", out.stdout);
    }
}

#[test]
fn completions_and_man() {
    let dir = tempfile::tempdir().unwrap();
    let bash = ok(dir.path(), &["completions", "bash"]);
    assert!(bash.contains("check") && bash.contains("strata"), "{bash}");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        assert!(!ok(dir.path(), &["completions", shell]).is_empty(), "{shell}");
    }
    let man = ok(dir.path(), &["man"]);
    assert!(man.contains(".TH strata 1"), "{}", &man[..man.len().min(400)]);
    assert!(man.contains("check"), "subcommands listed");
}

#[test]
fn verbose_describes_the_workspace_on_stderr() {
    let tmp = tempfile::tempdir().unwrap();
    ok(tmp.path(), &["init", "-q"]);
    let out = strata_in(tmp.path(), &["--verbose", "ls", "--format", "json"]);
    assert_eq!(out.code, 0);
    serde_json::from_str::<serde_json::Value>(&out.stdout).expect("stdout stays JSON");
    assert!(out.stderr.contains("layer core"), "{}", out.stderr);
    assert!(out.stderr.contains("done in"), "{}", out.stderr);
}

#[test]
fn check_finds_the_workspace_from_the_paths_given() {
    // pre-commit runs hooks at the repository root; the workspace may be a subfolder.
    let repo = tempfile::tempdir().unwrap();
    ok(repo.path(), &["init", "-q", "db"]);
    write(
        repo.path(),
        "db/schema/core/0002_flags.sql",
        "CREATE TABLE feature_flags (id bigint PRIMARY KEY);\n",
    );
    write(repo.path(), "db/schema/core/0002_flags.down.sql", "DROP TABLE feature_flags;\n");
    // What the hook of .pre-commit-hooks.yaml runs: `strata check` and the staged `.sql` files.
    let out = strata_in(
        repo.path(),
        &[
            "check",
            "--format",
            "json",
            "db/schema/core/0002_flags.sql",
            "db/schema/core/0002_flags.down.sql",
        ],
    );
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let rules: Vec<&str> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"rls-missing"), "governance rules apply: {rules:?}");
    assert_eq!(v["summary"]["files"], 1, "the down file is ignored");

    let hooks = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".pre-commit-hooks.yaml")).unwrap();
    for line in [
        "- id: strata\n",
        "entry: strata check\n",
        "files: \\.sql$\n",
        "pass_filenames: true\n",
    ] {
        assert!(hooks.contains(line), "{line:?} missing from .pre-commit-hooks.yaml");
    }
}

#[test]
fn explain_and_sum_print_json_too() {
    let tmp = tempfile::tempdir().unwrap();
    ok(tmp.path(), &["init", "-q"]);
    let explain: serde_json::Value = serde_json::from_str(&ok(tmp.path(), &["explain", "rls-missing", "--format", "json"])).unwrap();
    assert_eq!(explain["id"], "rls-missing");
    assert!(explain["doc"].as_str().unwrap().contains("## What it does"));
    let sum: serde_json::Value = serde_json::from_str(&ok(tmp.path(), &["sum", "--check", "--format", "json"])).unwrap();
    assert_eq!(sum["up_to_date"], true);
    assert_eq!(sum["written"], false);
    assert_eq!(sum["migrations"], 1);
    ok(tmp.path(), &["new", "core", "more"]);
    let stale = strata_in(tmp.path(), &["sum", "--check", "--format", "json"]);
    assert_eq!(stale.code, 1);
    let stale: serde_json::Value = serde_json::from_str(&stale.stdout).unwrap();
    assert_eq!(stale["up_to_date"], false);
}

/// The key tables of a section of docs/configuration.md: backticked key,
/// backticked TOML default (or `unset`).
fn documented_keys(doc: &str, heading: &str) -> BTreeMap<String, Option<String>> {
    let start = doc.find(heading).unwrap_or_else(|| panic!("no `{heading}` section"));
    let body = &doc[start + heading.len()..];
    let body = &body[..body.find("\n## ").unwrap_or(body.len())];
    let mut out = BTreeMap::new();
    for line in body.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[1].starts_with('`') {
            continue;
        }
        let key = cells[1].trim_matches('`').to_string();
        let default = cells[2].strip_prefix('`').and_then(|d| d.strip_suffix('`')).map(str::to_string);
        out.insert(key, default);
    }
    out
}

/// Dotted key paths of a TOML table, with their values.
fn flatten(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, toml::Value>) {
    for (k, v) in table {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(t) => flatten(&key, t, out),
            other => {
                out.insert(key, other.clone());
            }
        }
    }
}

#[test]
fn configuration_doc_matches_the_code() {
    let doc = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md")).unwrap();

    // strata.toml: the defaults, plus every optional key set (they are not
    // serialized when unset).
    let mut config = strata::workspace::Config::default();
    let defaults = toml::Table::try_from(&config).unwrap();
    config.control_plane = Some("env:X".into());
    config.paths.core = Some("db/migrations".into());
    config.paths.baseline = Some("strata-baseline.json".into());
    let mut code = BTreeMap::new();
    flatten("", &toml::Table::try_from(&config).unwrap(), &mut code);
    let mut default_values = BTreeMap::new();
    flatten("", &defaults, &mut default_values);

    let documented = documented_keys(&doc, "## strata.toml");
    let code_keys: Vec<&String> = code.keys().collect();
    let doc_keys: Vec<&String> = documented.keys().collect();
    assert_eq!(
        doc_keys, code_keys,
        "docs/configuration.md and Config disagree on the keys of strata.toml"
    );
    for (key, default) in &documented {
        match (default, default_values.get(key)) {
            (Some(d), Some(v)) => {
                let parsed: toml::Table = format!("x = {d}").parse().unwrap_or_else(|e| panic!("{key}: default `{d}`: {e}"));
                assert_eq!(&parsed["x"], v, "{key}: documented default differs from the code");
            }
            (None, None) => {}
            (d, v) => panic!("{key}: documented default {d:?}, code default {v:?}"),
        }
    }

    // tenants.toml: every field set.
    let tenant = strata::workspace::Tenant {
        slug: "a".into(),
        database: "env:A".into(),
        vertical: Some("v".into()),
        bespoke: Some("a".into()),
        labels: [("wave".to_string(), "canary".to_string())].into(),
    };
    let mut tenant_keys = BTreeMap::new();
    flatten("tenant", &toml::Table::try_from(&tenant).unwrap(), &mut tenant_keys);
    let tenant_keys: Vec<String> = tenant_keys
        .keys()
        .map(|k| {
            if k.starts_with("tenant.labels.") {
                "tenant.labels".to_string()
            } else {
                k.clone()
            }
        })
        .collect();
    let documented: Vec<String> = documented_keys(&doc, "## tenants.toml").into_keys().collect();
    assert_eq!(
        documented, tenant_keys,
        "docs/configuration.md and Tenant disagree on the keys of tenants.toml"
    );

    // rules/*.toml: the rules listed with options are those whose generated
    // documentation (docs/rules.md) has an Options section.
    let rules_doc = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/rules.md")).unwrap();
    let mut with_options: Vec<String> = rules_doc
        .split("\n### `")
        .skip(1)
        .filter(|section| section.contains("\n#### Options"))
        .map(|section| section[..section.find('`').unwrap()].to_string())
        .collect();
    with_options.sort();
    let rules_keys = documented_keys(&doc, "## rules/*.toml");
    assert!(
        rules_keys.contains_key("groups.<group>"),
        "docs/configuration.md documents [groups]"
    );
    let listed: Vec<String> = rules_keys
        .into_keys()
        .filter(|k| !k.starts_with("rules.") && !k.starts_with("groups."))
        .collect();
    assert_eq!(
        listed, with_options,
        "docs/configuration.md lists other rules with options than docs/rules.md"
    );
}

/// Every `rev:` the docs pin in a pre-commit configuration is a placeholder
/// or a tag that exists in this repository.
#[test]
fn docs_pin_only_revisions_that_exist() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let tags = std::process::Command::new("git")
        .args(["tag", "--list"])
        .current_dir(&repo)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let tags: Vec<&str> = tags.lines().collect();
    for entry in std::fs::read_dir(repo.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            let Some(rev) = line.trim().strip_prefix("rev:") else { continue };
            let rev = rev.split('#').next().unwrap().trim();
            assert!(
                (rev.starts_with('<') && rev.ends_with('>')) || tags.contains(&rev),
                "{}: `rev: {rev}` is no tag of this repository",
                path.display()
            );
        }
    }
}

#[test]
fn misspelled_rule_ids_get_a_did_you_mean() {
    let dir = tempfile::tempdir().unwrap();
    let out = strata_in(dir.path(), &["explain", "require-concurent-index"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr
            .contains("unknown rule `require-concurent-index` (did you mean `require-concurrent-index`?)"),
        "{}",
        out.stderr
    );
    ok(dir.path(), &["init", "-q"]);
    write(
        dir.path(),
        "rules/zz_typo.toml",
        "[rules.require-concurent-index]\nseverity = \"warning\"\n",
    );
    let out = strata_in(dir.path(), &["check"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("(did you mean `require-concurrent-index`?)"), "{}", out.stderr);
    assert!(out.stderr.contains("zz_typo.toml:1:"), "{}", out.stderr);
}

#[test]
fn completions_offer_rule_ids_and_man_pages_exist_for_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(dir.path(), &["completions", shell]);
        assert!(script.contains("require-concurrent-index"), "{shell} completes rule ids");
    }
    // `explain --help` stays short: the ids are for completion only.
    let help = ok(dir.path(), &["explain", "--help"]);
    assert!(!help.contains("require-concurrent-index"), "{help}");

    let pages = dir.path().join("man");
    let listed = ok(dir.path(), &["man", "--out-dir", pages.to_str().unwrap()]);
    let main = std::fs::read_to_string(pages.join("strata.1")).unwrap();
    // Every page strata(1) refers to exists.
    let mut referred = 0;
    for (i, _) in main.match_indices("strata\\-") {
        let name: String = main[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '\\' || *c == '-')
            .collect();
        if !main[i + name.len()..].starts_with("(1)") {
            continue;
        }
        let file = format!("{}.1", name.replace("\\-", "-"));
        assert!(pages.join(&file).is_file(), "{file} is referred to but not generated");
        assert!(listed.contains(&file), "{listed}");
        referred += 1;
    }
    assert!(referred > 5, "{main}");
    assert!(pages.join("strata-check.1").is_file());
}
