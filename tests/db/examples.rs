//! The example workspaces under examples/: each passes `strata check` with no finding,
//! migrates onto a real server (up to the parts needing an extension missing here),
//! passes `strata verify-isolation`, and rejects migrations that break its own discipline.

use crate::common;

use std::path::Path;

use common::*;

/// A copy of `examples/<name>` whose fleet is the given databases.
fn example(name: &str, tenants: &[(&str, &str)]) -> Workspace {
    let dir = tempfile::Builder::new().prefix("strata-example-").tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    copy_dir(&repo.join("examples").join(name), dir.path());
    let ws = Workspace { dir };
    let mut text = String::new();
    for (slug, conn) in tenants {
        text.push_str(&format!("[[tenant]]\nslug = \"{slug}\"\ndatabase = \"{conn}\"\n\n"));
    }
    ws.write("tenants.toml", &text);
    ws
}

/// The example as shipped checks clean: exit 0, not one finding.
fn check_clean(name: &str) {
    let ws = example(name, &[]);
    let run = ws.strata(&["check", "--format", "json"]);
    run.expect(0);
    let json = run.json();
    assert_eq!(json["diagnostics"].as_array().unwrap().len(), 0, "{}", run.all());
    // The shipped strata.sum matches the shipped migrations.
    ws.strata(&["check", "--deny-warnings"]).expect(0);
}

/// Every file of tests/fixtures/bad-<name>/ (named `<rule-id>.sql`), added as the next core
/// migration, is rejected by `strata check` with that rule id.
fn bad_migrations_rejected(name: &str, next: &str) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("bad-{name}"));
    let mut files: Vec<_> = std::fs::read_dir(&fixtures).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 3, "at least three bad migrations for {name}");
    for file in files {
        let rule = file.file_stem().unwrap().to_str().unwrap().to_string();
        let ws = example(name, &[]);
        let rel = format!("schema/core/{next}_bad.sql");
        ws.write(&rel, &std::fs::read_to_string(&file).unwrap());
        let path = ws.file(&rel);
        let run = ws.strata(&["check", path.to_str().unwrap(), "--format", "json"]);
        run.expect(1);
        let json = run.json();
        let rules: Vec<&str> = json["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["rule"].as_str().unwrap())
            .collect();
        assert!(
            rules.contains(&rule.as_str()),
            "{name}: {} should be rejected with {rule}, got {rules:?}",
            file.display()
        );
    }
}

/// Number of rows of `strata.schema_history` in a database.
fn applied(conn: &str) -> usize {
    history(conn).len()
}

/// `verify-isolation --all` passes and really probed `tables` (not skipped them).
fn verify_clean(ws: &Workspace, tables: &[&str]) {
    let run = ws.strata(&["verify-isolation", "--all", "--format", "json"]);
    run.expect(0);
    let json = run.json();
    let findings = json["tenants"][0]["findings"].as_array().unwrap();
    for f in findings {
        assert_ne!(f["outcome"], "leak", "{}", run.all());
    }
    for table in tables {
        for check in ["select", "update", "delete", "insert"] {
            assert!(
                findings
                    .iter()
                    .any(|f| f["object"] == *table && f["check"] == check && f["outcome"] != "skipped"),
                "{table}/{check} was not probed: {}",
                run.all()
            );
        }
    }
}

#[test]
fn orbitcrm_checks_clean() {
    check_clean("orbitcrm");
}

#[test]
fn orbitcrm_rejects_bad_migrations() {
    bad_migrations_rejected("orbitcrm", "0007");
}

#[test]
fn orbitcrm_migrates_up_to_pgvector_and_is_isolated() {
    let conn = database("example_orbitcrm");
    let ws = example("orbitcrm", &[("orbitcrm", &conn)]);
    let run = ws.strata(&["migrate", "--all"]);
    let vector_available = value(&conn, "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'") == "1";
    if vector_available {
        run.expect(0);
        assert_eq!(applied(&conn), 6);
    } else {
        // pgvector is not installed: strata's preflight stops the tenant before any
        // statement runs and names the extension.
        run.expect(1);
        let all = run.all();
        assert!(
            all.contains("extension vector is not available on this server: install pgvector"),
            "{all}"
        );
        assert!(!has_table(&conn, "organizations"), "nothing is applied: {all}");
        // Everything but the ai part (its own migration) applies and is isolated.
        std::fs::remove_file(ws.file("schema/core/0006_document_chunks_vector.sql")).unwrap();
        ws.strata(&["migrate", "--all"]).expect(0);
        assert_eq!(applied(&conn), 5);
        assert!(has_table(&conn, "documents"));
        assert!(!has_table(&conn, "document_chunks"));
    }
    verify_clean(
        &ws,
        &[
            "profiles",
            "contacts",
            "projects",
            "invoices",
            "tasks",
            "bookings",
            "ai_conversations",
            "ai_messages",
            "usage_logs",
            "documents",
        ],
    );
}

#[test]
fn corbi_checks_clean() {
    check_clean("corbi");
}

#[test]
fn corbi_rejects_bad_migrations() {
    bad_migrations_rejected("corbi", "0006");
}

#[test]
fn corbi_migrates_and_is_isolated() {
    let conn = database("example_corbi");
    let ws = example("corbi", &[("corbi", &conn)]);
    ws.strata(&["migrate", "--all"]).expect(0);
    assert_eq!(applied(&conn), 5);
    verify_clean(
        &ws,
        &[
            "memberships",
            "contacts",
            "message_templates",
            "outbound_messages",
            "inbound_messages",
            "suppressions",
            "bookings",
        ],
    );

    // The seed's cascades: outbound messages go with their contact, inbound ones stay.
    sql(
        &conn,
        "INSERT INTO organizations (id, name) VALUES ('00000000-0000-0000-0000-0000000000a1', 'Acme');
         INSERT INTO contacts (id, organization_id, full_name)
             VALUES ('00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-0000000000a1', 'Ana');
         INSERT INTO outbound_messages (organization_id, contact_id, channel, body)
             VALUES ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000c1', 'whatsapp', 'hi');
         INSERT INTO inbound_messages (organization_id, contact_id, channel, payload)
             VALUES ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000c1', 'whatsapp', '{}');
         DELETE FROM contacts;",
    );
    assert_eq!(value(&conn, "SELECT count(*) FROM outbound_messages"), "0");
    assert_eq!(value(&conn, "SELECT count(*) FROM inbound_messages WHERE contact_id IS NULL"), "1");
}

#[test]
fn org_in_a_box_checks_clean() {
    check_clean("org-in-a-box");
}

#[test]
fn org_in_a_box_rejects_bad_migrations() {
    bad_migrations_rejected("org-in-a-box", "0005");
}

#[test]
fn org_in_a_box_migrates_up_to_pgvector_and_is_isolated() {
    let conn = database("example_oiab");
    let ws = example("org-in-a-box", &[("oiab", &conn)]);
    let run = ws.strata(&["migrate", "--all"]);
    let vector_available = value(&conn, "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'") == "1";
    if vector_available {
        run.expect(0);
        assert_eq!(applied(&conn), 4);
    } else {
        run.expect(1);
        let all = run.all();
        assert!(
            all.contains("extension vector is not available on this server: install pgvector"),
            "{all}"
        );
        assert!(!has_table(&conn, "tenants"), "nothing is applied: {all}");
        // Everything but memory and trajectories (their own migration) applies and is isolated.
        std::fs::remove_file(ws.file("schema/core/0004_memory_vectors.sql")).unwrap();
        ws.strata(&["migrate", "--all"]).expect(0);
        assert_eq!(applied(&conn), 3);
        assert!(!has_table(&conn, "memories"));
    }
    verify_clean(
        &ws,
        &[
            "users",
            "roles",
            "user_roles",
            "entra_sessions",
            "personas",
            "providers",
            "jobs",
            "orchestrator_plans",
            "orchestrator_subtasks",
            "skills",
            "usage_events",
            "sessions_index",
            "agent_templates",
        ],
    );

    // audit_log is append-only for the application; usage_events is idempotent on request_id;
    // jobs dedupe on dedupe_key only while it is set.
    sql(
        &conn,
        "INSERT INTO tenants (id, name, slug) VALUES ('00000000-0000-0000-0000-0000000000a1', 'Contoso', 'contoso');
         INSERT INTO jobs (tenant_id, kind, dedupe_key) VALUES ('00000000-0000-0000-0000-0000000000a1', 'embed-memories', 'k1');
         INSERT INTO jobs (tenant_id, kind) VALUES ('00000000-0000-0000-0000-0000000000a1', 'agent-turn'), ('00000000-0000-0000-0000-0000000000a1', 'agent-turn');
         INSERT INTO jobs (tenant_id, kind, dedupe_key) VALUES ('00000000-0000-0000-0000-0000000000a1', 'embed-memories', 'k1')
             ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING;
         INSERT INTO usage_events (tenant_id, request_id, model) VALUES ('00000000-0000-0000-0000-0000000000a1', 'r1', 'm')
             ON CONFLICT (request_id) DO NOTHING;
         INSERT INTO usage_events (tenant_id, request_id, model) VALUES ('00000000-0000-0000-0000-0000000000a1', 'r1', 'm')
             ON CONFLICT (request_id) DO NOTHING;",
    );
    assert_eq!(value(&conn, "SELECT count(*) FROM jobs"), "3");
    assert_eq!(value(&conn, "SELECT count(*) FROM usage_events"), "1");
    let grants = value(
        &conn,
        "SELECT string_agg(privilege_type, ',' ORDER BY privilege_type) FROM information_schema.role_table_grants
         WHERE table_name = 'audit_log' AND grantee = 'oiab_app'",
    );
    assert_eq!(grants, "INSERT,SELECT");

    // The migrator's idempotency: every file of the schema runs a second time without error.
    for file in ["0001_extensions.sql", "0002_tenants_and_users.sql", "0003_runtime.sql"] {
        sql(&conn, &ws.read(&format!("schema/core/{file}")));
    }
}

#[test]
fn devsphere_checks_clean() {
    check_clean("devsphere");
}

#[test]
fn devsphere_rejects_bad_migrations() {
    bad_migrations_rejected("devsphere", "013");
}

#[test]
fn devsphere_migrates_and_is_isolated() {
    let conn = database("example_devsphere");
    let ws = example("devsphere", &[("devsphere", &conn)]);
    ws.strata(&["migrate", "--all"]).expect(0);
    assert_eq!(applied(&conn), 12);
    verify_clean(
        &ws,
        &[
            "users",
            "leads",
            "clients",
            "opportunities",
            "projects",
            "project_tasks",
            "timesheets",
            "time_entries",
            "deliverables",
            "client_invoices",
            "expenses",
            "agents",
            "approvals",
            "notifications",
            "activity_logs",
            "api_keys",
            "api_request_logs",
            "webhook_endpoints",
            "webhook_deliveries",
        ],
    );
}

/// Runs SQL as the application role with the given organization and user in the session.
fn as_app(conn: &str, role: &str, org: &str, user: &str, query: &str) -> Result<(), String> {
    let query =
        format!("SET ROLE {role}; SELECT set_config('app.org_id', '{org}', false), set_config('app.user_id', '{user}', false); {query}");
    rt().block_on(async {
        let client = connect(conn).await;
        client.batch_execute(&query).await.map_err(|e| {
            e.as_db_error()
                .map_or_else(|| e.to_string(), |d| format!("{}: {}", d.code().code(), d.message()))
        })
    })
}

const ORG: &str = "00000000-0000-0000-0000-0000000000a1";

#[test]
fn devsphere_policies_follow_the_role_helper() {
    let conn = database("example_devsphere_roles");
    let ws = example("devsphere", &[("devsphere", &conn)]);
    ws.strata(&["migrate", "--all"]).expect(0);
    let admin = "00000000-0000-0000-0000-00000000000a";
    let client = "00000000-0000-0000-0000-00000000000c";
    let gone = "00000000-0000-0000-0000-00000000000d";
    sql(
        &conn,
        &format!(
            "INSERT INTO organizations (id, name, slug) VALUES ('{ORG}', 'Acme', 'acme');
             INSERT INTO users (id, org_id, email, role) VALUES ('{admin}', '{ORG}', 'a@x', 'admin'), ('{client}', '{ORG}', 'c@x', 'client');
             INSERT INTO users (id, org_id, email, role, is_active, deleted_at) VALUES ('{gone}', '{ORG}', 'd@x', 'admin', false, now());"
        ),
    );
    let insert = format!("INSERT INTO api_keys (org_id, name, key_prefix, key_hash) VALUES ('{ORG}', 'k', 'ds_', md5(random()::text))");
    as_app(&conn, "devsphere_app", ORG, admin, &insert).unwrap();
    // A client user reads but never writes; a soft-deleted admin has lost its role.
    as_app(&conn, "devsphere_app", ORG, client, "SELECT count(*) FROM api_keys").unwrap();
    for user in [client, gone] {
        let err = as_app(&conn, "devsphere_app", ORG, user, &insert).unwrap_err();
        assert!(err.starts_with("42501"), "{err}");
    }
    assert_eq!(value(&conn, "SELECT count(*) FROM api_keys"), "1");
}

#[test]
fn corbi_viewers_cannot_write() {
    let conn = database("example_corbi_roles");
    let ws = example("corbi", &[("corbi", &conn)]);
    ws.strata(&["migrate", "--all"]).expect(0);
    let staff = "00000000-0000-0000-0000-00000000000b";
    let viewer = "00000000-0000-0000-0000-00000000000e";
    sql(
        &conn,
        &format!(
            "INSERT INTO organizations (id, name) VALUES ('{ORG}', 'Acme');
             INSERT INTO users (id, email) VALUES ('{staff}', 's@x'), ('{viewer}', 'v@x');
             INSERT INTO memberships (organization_id, user_id, role) VALUES ('{ORG}', '{staff}', 'staff'), ('{ORG}', '{viewer}', 'viewer');"
        ),
    );
    let insert = format!("INSERT INTO contacts (organization_id, full_name) VALUES ('{ORG}', 'Ana')");
    as_app(&conn, "corbi_app", ORG, staff, &insert).unwrap();
    as_app(&conn, "corbi_app", ORG, viewer, "SELECT count(*) FROM contacts").unwrap();
    let err = as_app(&conn, "corbi_app", ORG, viewer, &insert).unwrap_err();
    assert!(err.starts_with("42501"), "{err}");
    // The suppression list is unique per (organization, channel, identifier).
    let suppress = format!("INSERT INTO suppressions (organization_id, channel, identifier) VALUES ('{ORG}', 'whatsapp', '+41790000000')");
    as_app(&conn, "corbi_app", ORG, staff, &suppress).unwrap();
    let err = as_app(&conn, "corbi_app", ORG, staff, &suppress).unwrap_err();
    assert!(err.starts_with("23505"), "{err}");
}

/// The single value of a query run as the application role.
fn as_app_value(conn: &str, role: &str, org: &str, user: &str, query: &str) -> String {
    let query =
        format!("SET ROLE {role}; SELECT set_config('app.org_id', '{org}', false), set_config('app.user_id', '{user}', false); {query}");
    sql(conn, &query)
        .last()
        .and_then(|r| r.first().cloned().flatten())
        .unwrap_or_default()
}

#[test]
fn orbitcrm_owners_see_all_members_their_own_and_shared() {
    let conn = database("example_orbitcrm_roles");
    let ws = example("orbitcrm", &[("orbitcrm", &conn)]);
    std::fs::remove_file(ws.file("schema/core/0006_document_chunks_vector.sql")).unwrap();
    ws.strata(&["migrate", "--all"]).expect(0);
    let owner = "00000000-0000-0000-0000-00000000000a";
    let member = "00000000-0000-0000-0000-00000000000b";
    sql(
        &conn,
        &format!(
            "INSERT INTO organizations (id, name, slug) VALUES ('{ORG}', 'Acme', 'acme');
             INSERT INTO profiles (id, org_id, role) VALUES ('{owner}', '{ORG}', 'owner'), ('{member}', '{ORG}', 'member');
             INSERT INTO ai_conversations (org_id, user_id, model) VALUES ('{ORG}', '{owner}', 'm'), ('{ORG}', '{member}', 'm');
             INSERT INTO documents (org_id, name, file_path, visibility) VALUES ('{ORG}', 'a', 'a', 'internal'), ('{ORG}', 'b', 'b', 'shared');"
        ),
    );
    let count = |user: &str, table: &str| as_app_value(&conn, "orbitcrm_app", ORG, user, &format!("SELECT count(*) FROM {table}"));
    assert_eq!(count(owner, "ai_conversations"), "2");
    assert_eq!(count(member, "ai_conversations"), "1");
    assert_eq!(count(owner, "documents"), "2");
    assert_eq!(count(member, "documents"), "1");
    // Organization-wide CRM data is shared by owners and members.
    assert_eq!(count(member, "profiles"), "2");
}
