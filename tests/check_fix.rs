//! `strata check --fix`, run as a user would: the binary on a workspace.

mod common;

use std::path::Path;

use common::Run;

const STRATA_TOML: &str = "pg_version = 15\n[tenancy]\nmode = \"database-per-tenant\"\napp_role = \"orbis_app\"\n";

const ORDERS: &str = "CREATE TABLE products (id bigint PRIMARY KEY);\n\
CREATE TABLE orders (id bigint PRIMARY KEY, product_id bigint);\n\
ALTER TABLE products ENABLE ROW LEVEL SECURITY;\n\
ALTER TABLE products FORCE ROW LEVEL SECURITY;\n\
CREATE POLICY products_app ON products FOR ALL TO orbis_app USING (true) WITH CHECK (true);\n\
ALTER TABLE orders ENABLE ROW LEVEL SECURITY;\n\
ALTER TABLE orders FORCE ROW LEVEL SECURITY;\n\
CREATE POLICY orders_app ON orders FOR ALL TO orbis_app USING (true) WITH CHECK (true);\n";

fn workspace(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("strata.toml"), STRATA_TOML).expect("write strata.toml");
    for (rel, text) in files {
        let p = dir.path().join("schema").join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    dir
}

fn strata(dir: &Path, args: &[&str]) -> Run {
    let mut full = args.to_vec();
    full.extend(["--color", "never"]);
    common::strata_in(dir, &full)
}

#[test]
fn fix_rewrites_files_prints_the_diff_and_reports_what_is_left() {
    let dir = workspace(&[
        ("core/0001_orders.sql", ORDERS),
        (
            "core/0002_orders_product_idx.sql",
            "CREATE INDEX orders_product_idx ON orders (product_id);\n",
        ),
        (
            "core/0003_orders_product_fk.sql",
            "ALTER TABLE orders ADD CONSTRAINT orders_product_fk FOREIGN KEY (product_id) REFERENCES products (id);\n",
        ),
    ]);
    let before = strata(dir.path(), &["check"]);
    assert_eq!(before.code, 1, "{}", before.stdout);

    let out = strata(dir.path(), &["check", "--fix"]);
    let stdout = &out.stdout;
    assert_eq!(out.code, 0, "{stdout}");
    assert!(stdout.contains("+++ b/schema/core/0002_orders_product_idx.sql"), "{stdout}");
    assert!(stdout.contains("+-- strata: no-transaction"), "{stdout}");
    assert!(stdout.contains("+++ b/schema/core/0004_validate_orders_product_fk.sql"), "{stdout}");
    assert!(stdout.contains("fixed 2 findings in 2 files, 1 new migration"), "{stdout}");
    assert!(stdout.contains("0 errors, 0 warnings"), "{stdout}");
    let core = dir.path().join("schema/core");
    let validate = std::fs::read_to_string(core.join("0004_validate_orders_product_fk.sql")).expect("new migration");
    assert!(validate.contains("VALIDATE CONSTRAINT orders_product_fk;"), "{validate}");

    // Nothing left to fix: a second run changes nothing.
    let again = strata(dir.path(), &["check", "--fix"]);
    let stdout = &again.stdout;
    assert!(stdout.contains("fixed 0 findings in 0 files"), "{stdout}");
    assert!(!core.join("0005_validate_orders_product_fk.sql").exists());
}

#[test]
fn fix_with_json_keeps_stdout_parseable_and_reports_new_files_under_review() {
    let dir = workspace(&[
        ("core/0001_orders.sql", ORDERS),
        (
            "core/0002_fk.sql",
            "ALTER TABLE orders ADD CONSTRAINT orders_product_fk FOREIGN KEY (product_id) REFERENCES products (id);\n",
        ),
    ]);
    let out = strata(dir.path(), &["check", "--fix", "--format", "json", "schema/core/0002_fk.sql"]);
    let stdout = &out.stdout;
    let json: serde_json::Value = serde_json::from_str(stdout).expect("stdout is JSON");
    assert_eq!(json["summary"]["errors"], 0, "{stdout}");
    // The VALIDATE migration the fix wrote is reviewed too.
    assert_eq!(json["summary"]["files"], 2, "{stdout}");
    let stderr = &out.stderr;
    assert!(stderr.contains("+++ b/schema/core/0003_validate_orders_product_fk.sql"), "{stderr}");
    assert_eq!(out.code, 0);
}

#[test]
fn fix_leaves_released_migrations_alone_and_says_so() {
    let dir = workspace(&[
        ("core/0001_orders.sql", ORDERS),
        ("core/0002_orders_notes.sql", "ALTER TABLE orders ADD COLUMN note varchar(40);\n"),
    ]);
    strata(dir.path(), &["sum"]).expect(0);
    let before = std::fs::read_to_string(dir.path().join("schema/core/0002_orders_notes.sql")).unwrap();
    let out = strata(dir.path(), &["check", "--fix"]);
    assert!(out.stdout.contains("fixed 0 findings in 0 files"), "{}", out.all());
    assert!(
        out.stdout
            .contains("not fixed: 1 finding in released migrations (released files are never edited; write a new migration)"),
        "{}",
        out.all()
    );
    let after = std::fs::read_to_string(dir.path().join("schema/core/0002_orders_notes.sql")).unwrap();
    assert_eq!(before, after);
}

#[test]
fn a_fixed_new_migration_loses_its_note_about_the_transaction() {
    let dir = workspace(&[("core/0001_orders.sql", ORDERS)]);
    let out = strata(dir.path(), &["new", "core", "orders_product_idx"]);
    out.expect(0);
    let path = dir.path().join(out.stdout.trim());
    let template = std::fs::read_to_string(&path).unwrap();
    assert!(template.contains("in one transaction"), "{template}");
    std::fs::write(
        &path,
        format!("{template}CREATE INDEX orders_product_idx ON orders (product_id);\n"),
    )
    .unwrap();
    strata(dir.path(), &["check", "--fix"]).expect(0);
    let fixed = std::fs::read_to_string(&path).unwrap();
    assert!(
        fixed.starts_with("-- strata: no-transaction\n-- core: orders product idx\n"),
        "{fixed}"
    );
    assert!(!fixed.contains("in one transaction"), "{fixed}");
    assert_eq!(fixed.matches("no-transaction").count(), 1, "{fixed}");
    assert!(
        fixed.ends_with("\nCREATE INDEX CONCURRENTLY IF NOT EXISTS orders_product_idx ON orders (product_id);\n"),
        "{fixed}"
    );
}
