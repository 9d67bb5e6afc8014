//! What PostgreSQL really does, for the claims strata's rules make (issue 17:
//! each false alarm fixed was checked on the server, and stays checked here).

use crate::common;

use common::*;

/// Runs `query` (simple protocol, several statements) and returns the
/// server's error message, if any.
fn try_sql(conn: &str, query: &str) -> Result<(), String> {
    rt().block_on(async {
        let client = connect(conn).await;
        client
            .simple_query(query)
            .await
            .map(|_| ())
            .map_err(|e| e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_string()))
    })
}

#[test]
fn drop_then_add_of_one_column_in_one_alter_is_accepted_and_add_of_an_existing_one_is_not() {
    let db = database("precision_drop_add");
    sql(
        &db,
        "CREATE TABLE scores (id bigint PRIMARY KEY, score int); INSERT INTO scores VALUES (1, 7);",
    );
    try_sql(&db, "ALTER TABLE scores DROP COLUMN score, ADD COLUMN score bigint").unwrap();
    assert_eq!(
        value(
            &db,
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'scores'::regclass AND attname = 'score'"
        ),
        "bigint"
    );
    // Drops run before adds whatever their order in the statement.
    try_sql(&db, "ALTER TABLE scores ADD COLUMN score int, DROP COLUMN score").unwrap();
    assert_eq!(
        value(
            &db,
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'scores'::regclass AND attname = 'score'"
        ),
        "integer"
    );
    let e = try_sql(&db, "ALTER TABLE scores ADD COLUMN id int").unwrap_err();
    assert!(e.contains("already exists"), "{e}");
    let e = try_sql(&db, "ALTER TABLE scores ADD COLUMN n int, ADD COLUMN n int").unwrap_err();
    assert!(e.contains("specified more than once") || e.contains("already exists"), "{e}");
    // What strata says of the same statements.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("1.sql"),
        "CREATE TABLE scores (id bigint PRIMARY KEY, score int);\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("2.sql"),
        "ALTER TABLE scores DROP COLUMN score, ADD COLUMN score bigint;\nALTER TABLE scores ADD COLUMN score int, DROP COLUMN score;\nALTER TABLE scores ADD COLUMN id int;\n",
    )
    .unwrap();
    let run = strata_in(dir.path(), &["check", "--no-workspace", "1.sql", "2.sql", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let lines: Vec<u64> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["rule"] == "duplicate-column")
        .map(|d| d["start"]["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [3], "{}", run.stdout);
}

#[test]
fn a_partitioned_parent_cannot_be_indexed_concurrently_and_the_advised_path_works() {
    let db = database("precision_partitioned");
    sql(
        &db,
        "CREATE TABLE events (id bigint, at timestamptz NOT NULL) PARTITION BY RANGE (at);
         CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
         CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');",
    );
    let e = try_sql(&db, "CREATE INDEX CONCURRENTLY events_at ON events (at)").unwrap_err();
    assert!(e.contains("cannot create index on partitioned table"), "{e}");
    // The path require-concurrent-index advises.
    try_sql(&db, "CREATE INDEX events_at ON ONLY events (at)").unwrap();
    assert_eq!(
        value(
            &db,
            "SELECT indisvalid::text FROM pg_index WHERE indexrelid = 'events_at'::regclass"
        ),
        "false"
    );
    for p in ["events_2024", "events_2025"] {
        try_sql(&db, &format!("CREATE INDEX CONCURRENTLY {p}_events_at ON {p} (at)")).unwrap();
        try_sql(&db, &format!("ALTER INDEX events_at ATTACH PARTITION {p}_events_at")).unwrap();
    }
    assert_eq!(
        value(
            &db,
            "SELECT indisvalid::text FROM pg_index WHERE indexrelid = 'events_at'::regclass"
        ),
        "true"
    );
}

/// whole-table-write: an UPDATE without WHERE in an open migration
/// transaction makes a concurrent write to any row of the table wait.
#[test]
fn a_whole_table_update_blocks_concurrent_writes_until_it_commits() {
    let db = database("precision_whole_table");
    sql(
        &db,
        "CREATE TABLE orders (id bigint PRIMARY KEY, status text); INSERT INTO orders SELECT g, NULL FROM generate_series(1, 100) g;",
    );
    rt().block_on(async {
        let migration = connect(&db).await;
        let app = connect(&db).await;
        migration.batch_execute("BEGIN; UPDATE orders SET status = 'open';").await.unwrap();
        let e = app
            .batch_execute("SET lock_timeout = '200ms'; UPDATE orders SET status = 'paid' WHERE id = 42;")
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE), "{e:?}");
        migration.batch_execute("COMMIT").await.unwrap();
        app.batch_execute("UPDATE orders SET status = 'paid' WHERE id = 42;").await.unwrap();
    });
}
