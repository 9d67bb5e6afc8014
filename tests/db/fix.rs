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

/// `set-not-null`'s fix on the test server's major: on PostgreSQL 18 the
/// `SET NOT NULL` becomes a NOT VALID NOT NULL constraint (instant even with
/// NULLs present, refusing new ones) and a new migration validates it, after
/// which the column is NOT NULL; before 18 there is no fix and the file stays.
#[test]
fn set_not_null_fix_on_the_server_major() {
    let major = server_major();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("strata.toml"), format!("pg_version = {major}\n")).unwrap();
    let core = root.join("schema/core");
    std::fs::create_dir_all(&core).unwrap();
    let first = "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint);\n";
    std::fs::write(core.join("0001_orders.sql"), first).unwrap();
    let second = core.join("0002_customer_required.sql");
    let original = "ALTER TABLE orders ALTER COLUMN customer_id SET NOT NULL;\n";
    std::fs::write(&second, original).unwrap();
    let out = strata_in(root, &["check", "--fix", "--no-cache"]);
    let fixed = std::fs::read_to_string(&second).unwrap();
    let validate: Vec<String> = std::fs::read_dir(&core)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .filter(|t| t.contains("VALIDATE CONSTRAINT"))
        .collect();
    if major < 18 {
        assert_eq!(fixed, original, "{}", out.all());
        assert!(validate.is_empty());
        assert!(out.stdout.contains("CHECK (customer_id IS NOT NULL) NOT VALID"), "{}", out.all());
        return;
    }
    assert_eq!(
        fixed,
        "ALTER TABLE orders ADD CONSTRAINT orders_customer_id_not_null NOT NULL customer_id NOT VALID;\n",
        "{}",
        out.all()
    );
    assert_eq!(validate.len(), 1, "{}", out.all());

    let conn = database("fix_set_not_null");
    sql(&conn, first);
    sql(&conn, "INSERT INTO orders VALUES (1, NULL)");
    sql(&conn, &fixed);
    sql(
        &conn,
        "CREATE FUNCTION try_insert(i bigint) RETURNS text LANGUAGE plpgsql AS $$ \
         BEGIN INSERT INTO orders VALUES (i, NULL); RETURN 'inserted'; \
         EXCEPTION WHEN not_null_violation THEN RETURN 'refused'; END $$",
    );
    assert_eq!(value(&conn, "SELECT try_insert(2)"), "refused");
    sql(&conn, "UPDATE orders SET customer_id = 0 WHERE customer_id IS NULL");
    sql(&conn, &validate[0]);
    assert_eq!(
        value(
            &conn,
            "SELECT is_nullable FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'customer_id'"
        ),
        "NO"
    );
}
