//! `strata cutover` on a real PostgreSQL: a reshape (rename a column by
//! expand/contract) under a concurrent writer, resumed between steps,
//! verified, contracted; rollback before contract; contract refused before
//! its retention window.

use crate::common;

use common::{server_major, sql, value, Workspace};

/// A tenant database with `messages(id, body, sender)` and `rows` rows,
/// a control-plane database, and a workspace whose cutover renames body → text.
fn setup(name: &str, rows: u32, retention: &str) -> (Workspace, String, String) {
    let db = common::database(&format!("{name}_tenant"));
    let cp = common::database(&format!("{name}_cp"));
    sql(
        &db,
        &format!(
            "CREATE TABLE messages (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text, sender text NOT NULL, lid_jid text);
             INSERT INTO messages (body, sender, lid_jid) SELECT 'message ' || g, 'sender ' || (g % 17), 'lid' || g
             FROM generate_series(1, {rows}) g;
             INSERT INTO messages (body, sender) VALUES (NULL, 'nobody');
             ANALYZE messages;"
        ),
    );
    let ws = Workspace::new(&[common::tenant("acme", None, db.clone())]);
    ws.write(
        "cutovers/rename-body.toml",
        &format!(
            r#"kind = "reshape"
description = "messages.body becomes messages.text"
control_plane = "{cp}"
retention = "{retention}"

[flip]
workers = ["inbox", "digest"]
soak = "0s"

[backfill]
batch_size = 250
pause = "0s"
lock_timeout = "1s"

[[table]]
name = "messages"
rename = {{ body = "text" }}
drop = ["lid_jid"]
"#
        ),
    );
    (ws, db, cp)
}

fn steps_done(ws: &Workspace) -> Vec<String> {
    common::steps_done(&ws.strata(&["cutover", "status", "rename-body", "--format", "json"]).json())
}

#[test]
fn reshape_under_concurrent_writes_resumes_verifies_and_contracts() {
    let (ws, db, cp) = setup("reshape_live", 3000, "0s");
    // Inserts and updates through the old column.
    let writer = common::Writer::start(
        std::slice::from_ref(&db),
        vec![
            common::Write {
                sql: "INSERT INTO messages (body, sender) VALUES ('live ' || $1::bigint, 'writer')",
                param: Some,
            },
            common::Write {
                sql: "UPDATE messages SET body = body || ' (edited)' WHERE id = $1",
                param: |i| (i % 5 == 0).then_some(i * 37 % 3000 + 1),
            },
        ],
        std::time::Duration::ZERO,
    );

    // Stop after expand: a run killed there resumes from the next step.
    ws.strata(&["cutover", "run", "rename-body", "--until", "expand"]).expect(0);
    assert_eq!(steps_done(&ws), ["preflight", "expand"]);
    assert_eq!(
        value(
            &db,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'messages' AND column_name = 'text'"
        ),
        "1"
    );

    // A run killed in the middle of a step leaves it `running`: it is run again.
    ws.strata(&["cutover", "run", "rename-body", "--until", "backfill"]).expect(0);
    sql(
        &cp,
        "UPDATE strata.cutover_steps SET status = 'running', finished_at = NULL WHERE step = 'backfill'",
    );
    let run = ws.strata(&["cutover", "run", "rename-body", "--until", "verify"]);
    run.expect(0);
    assert!(!run.stderr.contains("expand …"), "expand must not run again:\n{}", run.all());
    assert!(
        run.stderr.contains("backfill …"),
        "the interrupted backfill runs again:\n{}",
        run.all()
    );
    assert_eq!(steps_done(&ws), ["preflight", "expand", "dual-write", "backfill", "verify"]);

    // Keep writing a little after verify, then stop and compare every row.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(writer.stop() > 0, "the writer wrote during the window");
    assert_eq!(value(&db, "SELECT count(*) FROM messages WHERE text IS DISTINCT FROM body"), "0");
    assert_eq!(value(&db, "SELECT count(*) FROM messages WHERE strata_needs_backfill"), "0");
    assert_eq!(value(&db, "SELECT count(*) FROM messages WHERE body IS NULL AND text IS NULL"), "1");

    // A flipped writer writes the new column: the trigger keeps the old one current.
    sql(&db, "INSERT INTO messages (text, sender) VALUES ('from the new side', 'new')");
    assert_eq!(value(&db, "SELECT body FROM messages WHERE sender = 'new'"), "from the new side");
    sql(&db, "UPDATE messages SET text = 'renamed' WHERE sender = 'new'");
    assert_eq!(value(&db, "SELECT body FROM messages WHERE sender = 'new'"), "renamed");

    // Flips (soak 0s), then contract (retention 0s).
    ws.strata(&["cutover", "run", "rename-body"]).expect(0);
    let routes = sql(&cp, "SELECT worker, reads, writes FROM strata.worker_routes ORDER BY worker");
    assert_eq!(
        routes,
        [
            vec![Some("digest".into()), Some("new".into()), Some("new".into())],
            vec![Some("inbox".into()), Some("new".into()), Some("new".into())]
        ]
    );
    let columns = value(
        &db,
        "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'messages'",
    );
    assert_eq!(columns, "id,sender,text");
    assert_eq!(value(&db, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'strata_%'"), "0");
    assert_eq!(value(&cp, "SELECT status FROM strata.cutover_runs"), "contracted");

    // Contracted: nothing to roll back to.
    let rb = ws.strata(&["cutover", "rollback", "rename-body"]);
    rb.expect(1);
    assert!(rb.stdout.contains("is contracted"), "{}", rb.all());
}

#[test]
fn rollback_before_contract_restores_the_original_and_contract_waits_for_retention() {
    let (ws, db, cp) = setup("reshape_rollback", 500, "1h");
    let before = value(
        &db,
        "SELECT md5(string_agg(row(id, body, sender, lid_jid)::text, ',' ORDER BY id)) FROM messages",
    );

    // Everything up to the flips; contract waits for its retention window.
    let run = ws.strata(&["cutover", "run", "rename-body"]);
    run.expect(0);
    assert!(run.stdout.contains("waiting"), "{}", run.all());
    assert!(run.stdout.contains("retention window (1h) is not over"), "{}", run.all());
    let refused = ws.strata(&["cutover", "run", "rename-body", "--until", "contract"]);
    refused.expect(1);
    assert!(refused.stdout.contains("contract refused"), "{}", refused.all());
    assert!(steps_done(&ws).contains(&"flip-writers".to_string()));
    assert!(!steps_done(&ws).contains(&"contract".to_string()));

    // The old column is still current after writes through the new one.
    sql(&db, "UPDATE messages SET text = text || '!' WHERE id <= 10");

    let rb = ws.strata(&["cutover", "rollback", "rename-body"]);
    rb.expect(0);
    assert!(rb.stdout.contains("rolled-back"), "{}", rb.all());
    let columns = value(
        &db,
        "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'messages'",
    );
    assert_eq!(columns, "id,body,sender,lid_jid");
    assert_eq!(value(&db, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'strata_%'"), "0");
    assert_eq!(value(&db, "SELECT count(*) FROM pg_proc WHERE proname LIKE 'dw_%'"), "0");
    sql(&db, "UPDATE messages SET body = left(body, -1) WHERE id <= 10");
    let after = value(
        &db,
        "SELECT md5(string_agg(row(id, body, sender, lid_jid)::text, ',' ORDER BY id)) FROM messages",
    );
    assert_eq!(before, after, "rows are as before the cutover");
    let routes = sql(&cp, "SELECT DISTINCT reads || '/' || writes FROM strata.worker_routes");
    assert_eq!(routes, [vec![Some("old/old".to_string())]]);
    assert_eq!(value(&cp, "SELECT status FROM strata.cutover_runs"), "rolled-back");

    // A new run after a rollback starts from the beginning.
    ws.strata(&["cutover", "run", "rename-body", "--until", "expand"]).expect(0);
    assert_eq!(value(&cp, "SELECT count(*) FROM strata.cutover_runs"), "2");
}

#[test]
fn plan_estimates_rows_from_a_reachable_tenant() {
    let (ws, _db, _cp) = setup("reshape_plan", 1000, "7d");
    let out = ws.strata(&["plan", "rename-body", "--format", "json"]);
    out.expect(0);
    let v = out.json();
    assert_eq!(v["estimates"][0]["table"], "public.messages");
    assert_eq!(v["estimates"][0]["rows"], 1001);
    assert_eq!(v["steps"].as_array().unwrap().len(), 9);
}

#[test]
fn a_step_blocked_by_a_lock_fails_after_its_retries_and_resumes_later() {
    let (ws, db, _cp) = setup("reshape_locked", 200, "0s");
    ws.strata(&["cutover", "run", "rename-body", "--until", "preflight"]).expect(0);

    // Another session holds the table: expand gives up after its lock_timeout retries.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel::<()>();
    let blocker_db = db.clone();
    let blocker = std::thread::spawn(move || {
        common::rt().block_on(async {
            let mut client = common::connect(&blocker_db).await;
            let t = client.transaction().await.unwrap();
            t.batch_execute("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE").await.unwrap();
            locked_tx.send(()).unwrap();
            tokio::task::spawn_blocking(move || rx.recv()).await.unwrap().unwrap();
            t.rollback().await.unwrap();
        })
    });
    locked_rx.recv().unwrap();
    let run = ws.strata(&["cutover", "run", "rename-body", "--until", "expand"]);
    run.expect(1);
    assert!(run.stdout.contains("lock timeout") || run.stdout.contains("55P03"), "{}", run.all());
    let status = ws.strata(&["cutover", "status", "rename-body", "--format", "json"]);
    status.expect(1);
    assert_eq!(status.json()[0]["status"], "failed");
    tx.send(()).unwrap();
    blocker.join().unwrap();

    // Once the lock is gone, the failed step runs again.
    ws.strata(&["cutover", "run", "rename-body", "--until", "verify"]).expect(0);
    assert_eq!(steps_done(&ws), ["preflight", "expand", "dual-write", "backfill", "verify"]);

    // Flips go in order: digest waits for inbox.
    let early = ws.strata(&["cutover", "flip", "rename-body", "digest"]);
    early.expect(1);
    assert!(early.stdout.contains("flip-reader:inbox is not done yet"), "{}", early.all());
    ws.strata(&["cutover", "flip", "rename-body", "inbox"]).expect(0);
    let text = ws.strata(&["cutover", "status", "rename-body"]);
    text.expect(0);
    assert!(text.stdout.contains("inbox: reads new, writes old"), "{}", text.all());
    assert!(text.stdout.contains("digest: reads old, writes old"), "{}", text.all());
}

#[test]
fn preflight_refuses_a_new_column_that_already_exists() {
    let (ws, db, _cp) = setup("reshape_taken", 10, "0s");
    sql(&db, "ALTER TABLE messages ADD COLUMN text text");
    let run = ws.strata(&["cutover", "run", "rename-body"]);
    run.expect(1);
    assert!(run.stdout.contains("the new column text already exists"), "{}", run.all());
    assert_eq!(value(&db, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'strata_%'"), "0");
}

#[test]
fn a_move_preflight_names_every_problem_then_passes() {
    let source = common::database("move_source");
    let target = common::database("move_target");
    let cp = common::database("move_cp");
    sql(
        &source,
        "CREATE TABLE users (id bigint PRIMARY KEY, name text); CREATE TABLE notes (body text)",
    );
    sql(&target, "CREATE TABLE contacts (id bigint PRIMARY KEY, display_name text)");
    let ws = Workspace::new(&[]);
    let file = |tables: &str| {
        ws.write(
            "cutovers/nova-move.toml",
            &format!(
                "kind = \"move\"\nsource = \"{source}\"\ntarget = \"{target}\"\ncontrol_plane = \"{cp}\"\nretention = \"1d\"\n{tables}"
            ),
        )
    };
    file("[[table]]\nname = \"users\"\ntarget = \"contacts\"\nrename = { name = \"display_name\" }\n[[table]]\nname = \"notes\"\n");
    let run = ws.strata(&["cutover", "run", "nova-move", "--until", "preflight"]);
    run.expect(1);
    assert!(
        run.stdout
            .contains("source table public.notes has no primary key or replica identity"),
        "{}",
        run.all()
    );
    assert!(run.stdout.contains("target table public.notes does not exist"), "{}", run.all());

    file("[[table]]\nname = \"users\"\ntarget = \"contacts\"\nrename = { name = \"display_name\" }\n");
    // No table drops a column: a source before PostgreSQL 15 (no column lists) publishes whole tables.
    ws.strata(&["cutover", "run", "nova-move", "--until", "preflight"]).expect(0);
    let status = ws.strata(&["cutover", "status", "nova-move", "--format", "json"]).json();
    assert_eq!(status[0]["steps"][0]["status"], "done");
    let detail = status[0]["steps"][0]["detail"].as_str().unwrap_or_default().to_string();
    let carries = if server_major() >= 15 {
        "carries column lists"
    } else {
        "carries whole tables"
    };
    assert!(detail.contains(carries), "{detail}");
}

#[test]
fn an_edited_plan_is_adopted_after_a_failed_preflight_and_refused_later() {
    let (ws, _db, _cp) = setup("reshape_edited", 10, "0s");
    let good = ws.read("cutovers/rename-body.toml");
    ws.write(
        "cutovers/rename-body.toml",
        &good.replace("rename = { body = \"text\" }", "rename = { bodi = \"text\" }"),
    );
    let bad = ws.strata(&["cutover", "run", "rename-body"]);
    bad.expect(1);
    assert!(bad.stdout.contains("column bodi does not exist"), "{}", bad.all());

    ws.write("cutovers/rename-body.toml", &good);
    ws.strata(&["cutover", "run", "rename-body", "--until", "expand"]).expect(0);

    ws.write("cutovers/rename-body.toml", &good.replace("batch_size = 250", "batch_size = 100"));
    let edited = ws.strata(&["cutover", "run", "rename-body"]);
    edited.expect(1);
    assert!(edited.stdout.contains("was edited after run"), "{}", edited.all());
    let rb = ws.strata(&["cutover", "rollback", "rename-body"]);
    rb.expect(1);
    assert!(rb.stdout.contains("restore the file that started it"), "{}", rb.all());
    ws.write("cutovers/rename-body.toml", &good);
    ws.strata(&["cutover", "rollback", "rename-body"]).expect(0);
}
