//! A reshape walks any unique btree key: uuid (random order, as every Orbis
//! table), text, bigint and a composite key, each under a writer that
//! inserts and updates while the backfill runs; afterwards every row holds
//! `up` of its old value and verification finds nothing to report. Keys
//! that cannot be walked are refused by preflight, with why.

use crate::common;

use common::{sql, value, Workspace};

/// A tenant whose `notes` table has the key `key_sql` (the column
/// definitions and the constraint) filled by `fill` (an INSERT), a control
/// plane, and a reshape `content` (jsonb) replacing `body` over `key`.
fn setup(name: &str, columns: &str, fill: &str, key: &str) -> (Workspace, String, String) {
    let db = common::database(&format!("{name}_tenant"));
    let cp = common::database(&format!("{name}_cp"));
    sql(&db, &format!("CREATE TABLE notes ({columns}, body text); {fill}; ANALYZE notes;"));
    let ws = Workspace::new(&[common::tenant("acme", None, db.clone())]);
    ws.write(
        "cutovers/keys.toml",
        &format!(
            r#"kind = "reshape"
control_plane = "{cp}"
retention = "0s"

[flip]
workers = ["api"]
soak = "0s"

[backfill]
batch_size = 97
lock_timeout = "1s"

[[table]]
name = "notes"
key = {key}

[[table.column]]
name = "content"
type = "jsonb"
up = "CASE WHEN body IS NULL THEN NULL ELSE jsonb_build_object('text', body) END"
down = "content->>'text'"
replaces = "body"
"#
        ),
    );
    (ws, db, cp)
}

/// Runs the reshape to contract under the writer and checks every row.
fn reshape_under_a_writer(name: &str, columns: &str, fill: &str, key: &str, insert: &'static str) {
    let (ws, db, cp) = setup(name, columns, fill, key);
    // Inserts (`insert`, with `$1` a counter) and updates of existing rows through the old column.
    let writer = common::Writer::start(
        std::slice::from_ref(&db),
        vec![
            common::Write { sql: insert, param: Some },
            common::Write {
                sql: "UPDATE notes SET body = body || '+' WHERE ctid = (SELECT ctid FROM notes OFFSET $1 LIMIT 1)",
                param: |i| Some(i * 31 % 2000),
            },
        ],
        std::time::Duration::from_millis(1),
    );
    let run = ws.strata(&["cutover", "run", "keys", "--until", "verify"]);
    run.expect(0);
    assert!(run.stderr.contains("verify done: "), "{}", run.all());
    assert!(run.stderr.contains(", 0 differing;"), "{}", run.all());
    assert!(writer.stop() > 0, "the writer wrote during the backfill");
    let backfill = value(&cp, "SELECT detail FROM strata.cutover_steps WHERE step = 'backfill'");
    assert!(backfill.contains("(computed in the batch)"), "{backfill}");
    // Every row, those the writer wrote during the backfill included, holds `up` of its old value.
    assert_eq!(
        value(
            &db,
            "SELECT count(*) FROM notes WHERE strata_needs_backfill OR content IS DISTINCT FROM \
             (CASE WHEN body IS NULL THEN NULL ELSE jsonb_build_object('text', body) END)"
        ),
        "0"
    );
    let rows = value(&db, "SELECT count(*) FROM notes");
    ws.strata(&["cutover", "run", "keys"]).expect(0);
    assert_eq!(value(&db, "SELECT count(*) FROM notes"), rows);
    assert_eq!(
        value(&db, "SELECT count(*) FROM notes WHERE content IS NULL"),
        "1",
        "the NULL body stays NULL"
    );
    assert_eq!(
        value(&db, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'notes' AND column_name IN ('body', 'strata_needs_backfill')"),
        "0",
        "contracted"
    );
}

#[test]
fn a_uuid_key_in_random_order() {
    reshape_under_a_writer(
        "keys_uuid",
        "id uuid PRIMARY KEY DEFAULT gen_random_uuid()",
        "INSERT INTO notes (body) SELECT 'note ' || g FROM generate_series(1, 2000) g; INSERT INTO notes (body) VALUES (NULL)",
        "\"id\"",
        "INSERT INTO notes (body) VALUES ('live ' || $1::bigint)",
    );
}

#[test]
fn a_text_key() {
    reshape_under_a_writer(
        "keys_text",
        "code text PRIMARY KEY",
        "INSERT INTO notes (code, body) SELECT md5(g::text), 'note ' || g FROM generate_series(1, 2000) g; \
         INSERT INTO notes (code, body) VALUES ('Zürich ü', NULL)",
        "\"code\"",
        "INSERT INTO notes (code, body) VALUES ('live-' || $1::bigint, 'live ' || $1::bigint)",
    );
}

#[test]
fn a_bigint_key() {
    reshape_under_a_writer(
        "keys_bigint",
        "id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "INSERT INTO notes (body) SELECT 'note ' || g FROM generate_series(1, 2000) g; INSERT INTO notes (body) VALUES (NULL)",
        "\"id\"",
        "INSERT INTO notes (body) VALUES ('live ' || $1::bigint)",
    );
}

#[test]
fn a_composite_key() {
    reshape_under_a_writer(
        "keys_composite",
        "org_id uuid NOT NULL, n integer NOT NULL, PRIMARY KEY (org_id, n)",
        "INSERT INTO notes (org_id, n, body) SELECT ('00000000-0000-0000-0000-00000000000' || (g % 7))::uuid, g, 'note ' || g \
         FROM generate_series(1, 2000) g; INSERT INTO notes (org_id, n, body) VALUES ('00000000-0000-0000-0000-000000000001', 0, NULL)",
        "[\"org_id\", \"n\"]",
        "INSERT INTO notes (org_id, n, body) VALUES (('00000000-0000-0000-0000-00000000000' || ($1::bigint % 7))::uuid, (100000 + $1::bigint)::int, 'live')",
    );
}

#[test]
fn preflight_says_why_a_key_cannot_be_walked() {
    let cases = [
        (
            "keys_nullable",
            "code text UNIQUE",
            "\"code\"",
            "key column code is nullable: rows whose key is NULL would be skipped by every batch",
        ),
        (
            "keys_no_index",
            "id uuid PRIMARY KEY, code text NOT NULL",
            "\"code\"",
            "key (code) is not a unique btree index of the table, so batches cannot walk it (its unique keys: notes_pkey (primary key) (id))",
        ),
        (
            "keys_reordered",
            "a int NOT NULL, b int NOT NULL, PRIMARY KEY (a, b)",
            "[\"b\", \"a\"]",
            "the unique index notes_pkey has these columns in another order: write key = [\"a\", \"b\"]",
        ),
        (
            "keys_opclass",
            "code text NOT NULL",
            "\"code\"",
            "the unique index notes_code_pattern on (code) uses a non-default operator class",
        ),
        ("keys_missing", "id uuid PRIMARY KEY", "\"nope\"", "key column nope does not exist"),
    ];
    for (name, columns, key, expected) in cases {
        let (ws, db, _) = setup(name, columns, "SELECT 1", key);
        if name == "keys_opclass" {
            sql(&db, "CREATE UNIQUE INDEX notes_code_pattern ON notes (code text_pattern_ops)");
        }
        let run = ws.strata(&["cutover", "run", "keys"]);
        run.expect(1);
        assert!(run.stdout.contains(expected), "{name}: {}", run.all());
        assert_eq!(
            value(
                &db,
                "SELECT count(*) FROM information_schema.columns WHERE table_name = 'notes' AND column_name = 'content'"
            ),
            "0",
            "{name}: nothing changed"
        );
    }
}
