//! The shipped reshape example, examples/cutovers/reshape-message-body.toml,
//! run as written on Orbis tenants (schema/core: every key a uuid) reached
//! through the environment variables of tenants.toml, with the control plane
//! of strata.toml and a writer on both tenants: canary first, the soak
//! given on the command line (`--soak`, the file is not edited), contract
//! after the retention window, and then `strata drift` clean and `strata
//! migrate` with nothing to do, because contract recorded the migration that
//! carries the new shape. Also the dry run (prints SQL, changes nothing).

use crate::common;

use std::path::Path;

use common::{sql, value, Workspace};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Two plain Orbis tenants (dreamlink the canary, gaku), migrated by strata,
/// with containers and messages; the example cutover and its migration
/// copied as shipped; the control plane in strata.toml.
struct Fleet {
    ws: Workspace,
    tenants: Vec<(&'static str, &'static str, String)>,
    cp: String,
}

impl Fleet {
    fn new(name: &str) -> Fleet {
        let cp = common::database(&format!("{name}_cp"));
        let mut tenants = Vec::new();
        for (slug, var) in [("dreamlink", "DREAMLINK_DATABASE_URL"), ("gaku", "GAKU_DATABASE_URL")] {
            tenants.push((slug, var, common::database(&format!("{name}_{slug}"))));
        }
        let ws = Workspace::new(&[]);
        ws.write(
            "tenants.toml",
            "[[tenant]]\nslug = \"dreamlink\"\ndatabase = \"env:DREAMLINK_DATABASE_URL\"\nlabels = { wave = \"canary\" }\n\n\
             [[tenant]]\nslug = \"gaku\"\ndatabase = \"env:GAKU_DATABASE_URL\"\n",
        );
        ws.top_level(&format!("control_plane = \"{cp}\""));
        let f = Fleet { ws, tenants, cp };
        sql(
            f.server_admin(),
            "DO $$ BEGIN CREATE ROLE orbis_app NOLOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
        );
        f.strata(&["migrate", "--all"]).expect(0);
        for (_, _, db) in &f.tenants {
            sql(
                db,
                "INSERT INTO containers (id, kind, name) SELECT ('00000000-0000-0000-0000-0000000000' || lpad(g::text, 2, '0'))::uuid, \
                 'group', 'chat ' || g FROM generate_series(1, 5) g;
                 INSERT INTO messages (container_id, sender_name, direction, body, sent_at)
                 SELECT ('00000000-0000-0000-0000-0000000000' || lpad((1 + g % 5)::text, 2, '0'))::uuid, 'sender ' || (g % 13),
                        'inbound', CASE WHEN g % 50 = 0 THEN NULL ELSE 'message ' || g END, now() - g * interval '1 minute'
                 FROM generate_series(1, 1500) g;
                 ANALYZE messages;",
            );
        }
        f.ws.write(
            "cutovers/reshape-message-body.toml",
            &std::fs::read_to_string(repo().join("examples/cutovers/reshape-message-body.toml")).unwrap(),
        );
        f
    }

    fn server_admin(&self) -> &str {
        common::server().admin()
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut c = self.ws.command(args);
        for (_, var, db) in &self.tenants {
            c.env(var, db);
        }
        c
    }

    fn strata(&self, args: &[&str]) -> common::Run {
        common::Run::from(self.command(args).output().unwrap())
    }

    /// The carrying migration, added to the workspace as the example's README says.
    fn add_migration(&self) {
        std::fs::copy(
            repo().join("examples/cutovers/0006_messages_content.sql"),
            self.ws.file("schema/core/0006_messages_content.sql"),
        )
        .unwrap();
    }
}

const WRONG: &str = "SELECT count(*) FROM messages WHERE content IS DISTINCT FROM \
     (CASE WHEN body IS NULL THEN NULL ELSE jsonb_build_object('text', body) END)";

#[test]
fn the_reshape_example_runs_as_written_and_leaves_no_drift() {
    let f = Fleet::new("ex_reshape");
    // Without its migration in the workspace, the run refuses before touching a tenant and says what to do.
    let refused = f.strata(&["cutover", "run", "reshape-message-body", "--soak", "0s"]);
    refused.expect(1);
    assert!(
        refused
            .stdout
            .contains("migration = `schema/core/0006_messages_content.sql` is not a migration of the workspace"),
        "{}",
        refused.all()
    );
    f.strata(&["cutover", "rollback", "reshape-message-body"]).expect(0);
    f.add_migration();

    // The dry run prints the statements of every step and changes nothing.
    let dry = f.strata(&["cutover", "run", "reshape-message-body", "--dry-run"]);
    dry.expect(0);
    for needle in [
        "-- ===== dreamlink: expand",
        "ADD COLUMN IF NOT EXISTS \"content\" jsonb",
        "CREATE TRIGGER \"strata_dual_write_reshape_message_body\"",
        "ORDER BY strata_t.\"id\" OFFSET 999 LIMIT 1",
        "INSERT INTO strata.schema_history",
        "-- ===== gaku: contract",
    ] {
        assert!(dry.stdout.contains(needle), "{needle}: {}", dry.all());
    }
    for (_, _, db) in &f.tenants {
        assert_eq!(value(db, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'strata%'"), "0");
    }

    // Messages written through the old column (body) in every tenant.
    let dbs: Vec<String> = f.tenants.iter().map(|t| t.2.clone()).collect();
    let writer = common::Writer::start(
        &dbs,
        vec![
            common::Write {
                sql: "INSERT INTO messages (container_id, sender_name, direction, body, sent_at) \
                      VALUES ('00000000-0000-0000-0000-000000000001', 'writer', 'outbound', 'live ' || $1::bigint, now())",
                param: Some,
            },
            common::Write {
                sql: "UPDATE messages SET body = body || ' (edited)' WHERE id = (SELECT id FROM messages ORDER BY id OFFSET $1 LIMIT 1)",
                param: |i| Some(i * 17 % 1500),
            },
        ],
        std::time::Duration::from_millis(2),
    );
    // The soak of the file (10m) replaced on the command line; retention 7d: contract waits.
    let run = f.strata(&["cutover", "run", "reshape-message-body", "--soak", "0s", "--format", "json"]);
    run.expect(0);
    let outcomes = run.json();
    for o in outcomes.as_array().unwrap() {
        assert_eq!(o["status"], "waiting", "{}", run.all());
        assert_eq!(o["step"], "flip-writers", "{}", run.all());
    }
    // Canary first: every step of dreamlink before the first of gaku.
    let log = run.stderr.clone();
    let last_canary = log.rfind("dreamlink: flip-writers done").unwrap_or(usize::MAX);
    let first_gaku = log.find("gaku: preflight").unwrap_or(0);
    assert!(last_canary < first_gaku, "{log}");
    assert!(writer.stop() > 0);
    for (_, _, db) in &f.tenants {
        assert_eq!(value(db, WRONG), "0", "every row holds up(body)");
    }
    let soaks = common::sql(
        &f.cp,
        "SELECT DISTINCT soak_s::text FROM strata.cutover_steps WHERE step LIKE 'flip-reader:%'",
    );
    assert_eq!(
        soaks,
        [vec![Some("0".to_string())]],
        "the soak given on the command line is recorded"
    );

    // Seven days later.
    sql(
        &f.cp,
        "UPDATE strata.cutover_steps SET finished_at = now() - interval '8 days' WHERE step = 'flip-writers'",
    );
    f.strata(&["cutover", "run", "reshape-message-body"]).expect(0);
    for (slug, _, db) in &f.tenants {
        assert_eq!(
            value(db, "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns WHERE table_name = 'messages' AND column_name IN ('body', 'content', 'strata_needs_backfill')"),
            "content",
            "{slug}: contracted"
        );
        assert_eq!(
            value(
                db,
                "SELECT status FROM strata.schema_history WHERE layer = 'core' AND version = '0006'"
            ),
            "applied",
            "{slug}: the carrying migration is recorded"
        );
    }
    let drift = f.strata(&["drift"]);
    drift.expect(0);
    assert!(
        drift.stdout.contains("dreamlink: no drift") && drift.stdout.contains("gaku: no drift"),
        "{}",
        drift.all()
    );
    // Every tenant at the head of its layers: migrate has nothing left to apply.
    f.strata(&["status"]).expect(0);
}
