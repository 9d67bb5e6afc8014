//! The reshape backfill through the library on a real PostgreSQL: batches
//! compute the new columns themselves while the dual-write trigger keeps
//! handling every other write, and the backfill falls back to the trigger
//! when an `up` reads a column the trigger assigns or when the installed
//! trigger predates the batch condition.

use crate::common;

use std::path::Path;

use common::{rt, sql, value};
use strata::cutover::plan::{self, Cutover};
use strata::cutover::reshape::{BatchStats, TenantDb};

fn database(name: &str, rows: u32) -> String {
    let db = common::database(name);
    sql(
        &db,
        &format!(
            "CREATE TABLE messages (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text);
             INSERT INTO messages (body) SELECT 'message ' || g FROM generate_series(1, {rows}) g;
             INSERT INTO messages (body) VALUES (NULL);
             ANALYZE messages;"
        ),
    );
    db
}

fn cutover(columns: &str) -> Cutover {
    let text = format!(
        "kind = \"reshape\"\nretention = \"0s\"\n[backfill]\nbatch_size = 64\npause = \"0s\"\n\
         [[table]]\nname = \"messages\"\nrename = {{ body = \"text\" }}\n{columns}"
    );
    plan::parse(Path::new("reshape-test.toml"), &text).unwrap()
}

/// expand, dual-write and backfill; returns the backfill's report and batches.
fn run(db: &str, c: &Cutover, between: &str) -> (String, Vec<BatchStats>) {
    rt().block_on(async {
        let t = TenantDb::connect(db, c).await.unwrap();
        t.preflight().await.unwrap();
        t.expand().await.unwrap();
        t.dual_write().await.unwrap();
        if !between.is_empty() {
            t.client.batch_execute(between).await.unwrap();
        }
        let mut batches = Vec::new();
        let report = t.backfill_observed(&mut |b: &BatchStats| batches.push(b.clone())).await.unwrap();
        let v = t.verify().await.unwrap();
        assert_eq!((v.rows, v.differing_rows), (1001, 0), "{v}");
        (report, batches)
    })
}

#[test]
fn batches_compute_the_new_columns_and_writers_still_go_through_the_trigger() {
    let db = database("backfill_batches", 1000);
    let c = cutover("[[table.column]]\nname = \"body_length\"\ntype = \"integer\"\nup = \"length(body)\"\n");
    let (report, batches) = run(&db, &c, "");
    assert!(
        report.contains("1001 rows in 16 batches (computed in the batch)"),
        "{report} {:?}",
        batches.iter().map(|b| b.rows).collect::<Vec<_>>()
    );
    assert_eq!(batches.len(), 16);
    assert!(batches
        .iter()
        .all(|b| b.table == "public.messages" && b.attempts == 1 && b.rows <= 64));
    assert_eq!(batches.iter().map(|b| b.rows).sum::<u64>(), 1001);
    assert_eq!(
        value(&db, "SELECT text || ' ' || body_length FROM messages WHERE id = 7"),
        "message 7 9"
    );
    assert_eq!(
        value(&db, "SELECT count(*) FROM messages WHERE text IS NULL AND body_length IS NULL"),
        "1"
    );

    // Outside a batch the trigger handles old and new writers.
    sql(&db, "UPDATE messages SET body = 'changed' WHERE id = 7");
    assert_eq!(
        value(&db, "SELECT text || ' ' || body_length FROM messages WHERE id = 7"),
        "changed 7"
    );
    sql(&db, "UPDATE messages SET text = 'flipped' WHERE id = 8");
    assert_eq!(
        value(&db, "SELECT body || ' ' || body_length FROM messages WHERE id = 8"),
        "flipped 7"
    );
    // So does a write made by another trigger while a batch-like transaction is open.
    sql(
        &db,
        "CREATE FUNCTION touch_next() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.id = 9 THEN UPDATE messages SET body = 'nested' WHERE id = 10; END IF; RETURN NEW; END $$;
         CREATE TRIGGER touch_next AFTER UPDATE ON messages FOR EACH ROW EXECUTE FUNCTION touch_next();",
    );
    sql(
        &db,
        "BEGIN; SET LOCAL strata.backfill = 'public.messages'; UPDATE messages SET body = body WHERE id = 9; COMMIT;",
    );
    assert_eq!(
        value(&db, "SELECT text || ' ' || body_length FROM messages WHERE id = 10"),
        "nested 6"
    );
}

#[test]
fn an_up_reading_an_assigned_column_goes_through_the_trigger() {
    let db = database("backfill_through_trigger", 1000);
    let c = cutover(
        "[[table.column]]\nname = \"body_length\"\ntype = \"integer\"\nup = \"length(body)\"\n\
         [[table.column]]\nname = \"double_length\"\ntype = \"integer\"\nup = \"body_length * 2\"\n",
    );
    let (report, _) = run(&db, &c, "");
    assert!(report.contains("1001 rows in 16 batches (through the trigger)"), "{report}");
    assert_eq!(value(&db, "SELECT double_length FROM messages WHERE id = 7"), "18");
}

#[test]
fn a_trigger_without_the_batch_condition_goes_through_the_trigger() {
    let db = database("backfill_old_trigger", 1000);
    let c = cutover("");
    let trigger = strata::cutover::reshape::trigger_name(&c);
    let function = strata::cutover::reshape::function_name(&c, &c.tables[0]);
    // A trigger as an older strata installed it: no WHEN.
    let (report, _) = run(
        &db,
        &c,
        &format!(
            "DROP TRIGGER \"{trigger}\" ON messages;
             CREATE TRIGGER \"{trigger}\" BEFORE INSERT OR UPDATE ON messages FOR EACH ROW EXECUTE FUNCTION {function}();"
        ),
    );
    assert!(report.contains("1001 rows in 16 batches (through the trigger)"), "{report}");
}
