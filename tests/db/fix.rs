//! What `strata check --fix` writes, run on PostgreSQL.

use crate::common;

use common::*;

/// A 255-character limit survives `varchar(255)` → `text`: the fixed
/// migration applies to a table that already has rows breaking the new
/// limit of another column (NOT VALID: they are not scanned), and new rows
/// over either limit are refused.
#[test]
fn varchar_to_text_keeps_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("strata.toml"), "pg_version = 15\n").unwrap();
    let core = root.join("schema/core");
    std::fs::create_dir_all(&core).unwrap();
    let first = "CREATE TABLE orders (id bigint PRIMARY KEY, note text);\n";
    std::fs::write(core.join("0001_orders.sql"), first).unwrap();
    let second = core.join("0002_orders_code.sql");
    std::fs::write(
        &second,
        "ALTER TABLE orders ADD COLUMN code varchar(255), ALTER COLUMN note TYPE varchar(80);\n",
    )
    .unwrap();
    strata_in(root, &["check", "--fix", "--no-cache"]);
    let fixed = std::fs::read_to_string(&second).unwrap();
    assert!(!fixed.contains("varchar"), "{fixed}");
    assert_eq!(fixed.matches("NOT VALID").count(), 2, "{fixed}");

    let conn = database("fix_varchar_text");
    sql(&conn, first);
    sql(&conn, "INSERT INTO orders (id, note) VALUES (1, repeat('n', 100))");
    sql(&conn, &fixed);
    sql(
        &conn,
        "CREATE FUNCTION try_insert(i bigint, c text, n text) RETURNS text LANGUAGE plpgsql AS $$ \
         BEGIN INSERT INTO orders (id, code, note) VALUES (i, c, n); RETURN 'inserted'; \
         EXCEPTION WHEN check_violation THEN RETURN 'refused'; END $$",
    );
    let tried =
        |i: u32, code: usize, note: usize| value(&conn, &format!("SELECT try_insert({i}, repeat('c', {code}), repeat('n', {note}))"));
    assert_eq!(tried(2, 255, 80), "inserted");
    assert_eq!(tried(3, 256, 1), "refused");
    assert_eq!(tried(4, 1, 81), "refused");
    assert_eq!(
        value(
            &conn,
            "SELECT data_type FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'code'"
        ),
        "text"
    );
}
