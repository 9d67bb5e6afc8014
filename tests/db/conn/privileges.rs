//! A hosted-service admin role (LOGIN CREATEDB CREATEROLE, not SUPERUSER,
//! not REPLICATION) runs every command over TLS with a scram password, and
//! no password from any source appears in any output. A move's preflight
//! names the privileges it lacks with the SQL that grants them.

use super::commands::{all_succeeded, Scenario};
use super::servers;
use crate::common;

const HOSTED_PASSWORD: &str = "H0sted-Adm1n-pw-61z";

#[test]
fn a_hosted_admin_role_runs_every_command_and_no_password_is_ever_printed() {
    let srv = servers::tls();
    common::sql(
        &srv.admin("postgres"),
        &format!(
            "DO $$ BEGIN CREATE ROLE hosted_admin LOGIN CREATEDB CREATEROLE NOSUPERUSER NOREPLICATION PASSWORD '{HOSTED_PASSWORD}';
             EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        ),
    );
    let root = srv.pki.path("root.crt");
    let conn = |db: &str| {
        format!(
            "postgresql://hosted_admin:{HOSTED_PASSWORD}@localhost:{}/{db}?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={}",
            srv.port(),
            root.display()
        )
    };
    let admin_sql = |q: &str| {
        common::sql(&srv.admin("postgres"), q);
    };
    let scenario = Scenario {
        name: "hosted",
        conn: &conn,
        admin_sql: &admin_sql,
        role: "hosted_admin",
        env: vec![("PGPASSWORD".into(), HOSTED_PASSWORD.into())],
    };
    let (ws, mut runs) = scenario.run_every_command();
    all_succeeded(&runs);
    let reshaped = scenario.reshape(&ws, "reshape", None);
    all_succeeded(&reshaped);
    assert_eq!(reshaped[1].1.json()[0]["status"], "contracted", "{}", reshaped[1].1.all());
    runs.extend(reshaped);
    // A backfill must see every row of a table whose RLS is forced (the
    // owner too): the preflight names BYPASSRLS and the SQL that grants it.
    let refused = scenario.reshape(&ws, "reshape-rls", Some("preflight"));
    assert_eq!(refused[0].1.code, 1, "{}", refused[0].1.all());
    let detail = refused[0].1.json()[0]["detail"].as_str().unwrap_or_default().to_string();
    assert!(detail.contains("ALTER ROLE \"hosted_admin\" BYPASSRLS"), "{detail}");
    runs.extend(refused);
    // A move between two databases of this server: REPLICATION on the
    // source, and on the target membership in pg_create_subscription
    // (PostgreSQL 16 and later) or a superuser (before 16).
    let move_env = [
        ("SRC", conn("hosted_a")),
        ("DST", conn("hosted_cp")),
        ("CONTROL", conn("hosted_cp")),
    ];
    ws.write(
        "cutovers/relocate.toml",
        "kind = \"move\"\nsource = \"env:SRC\"\ntarget = \"env:DST\"\ncontrol_plane = \"env:CONTROL\"\nretention = \"1d\"\n\
         [[table]]\nname = \"notes\"\n",
    );
    let moved = scenario.strata(&ws, &["cutover", "run", "relocate", "--until", "preflight"], &move_env);
    assert_eq!(moved.1.code, 1, "{}", moved.1.all());
    for want in [
        "lacks REPLICATION",
        "ALTER ROLE \"hosted_admin\" REPLICATION",
        if common::server_major() >= 16 {
            "is not a member of pg_create_subscription"
        } else {
            "allows CREATE SUBSCRIPTION to superusers only"
        },
    ] {
        assert!(moved.1.stdout.contains(want), "{want}: {}", moved.1.all());
    }
    runs.push(moved);
    // verify-isolation's live probe needs to seed rows under forced RLS and
    // to switch to the app role: each missing privilege is named with its SQL.
    let iso_env = [("TENANT_A", conn("hosted_a"))];
    let iso = |runs: &mut Vec<super::commands::Ran>| {
        let r = scenario.strata(&ws, &["verify-isolation", "--all", "--format", "json"], &iso_env);
        runs.push((
            r.0.clone(),
            crate::common::Run {
                code: r.1.code,
                stdout: r.1.stdout.clone(),
                stderr: r.1.stderr.clone(),
            },
        ));
        r.1
    };
    let seeding = iso(&mut runs);
    assert!(seeding.stdout.contains("needs BYPASSRLS: ALTER ROLE"), "{}", seeding.all());
    common::sql(
        &srv.admin("postgres"),
        "ALTER ROLE hosted_admin BYPASSRLS; REVOKE orbis_app FROM hosted_admin",
    );
    let switching = iso(&mut runs);
    assert_eq!(switching.code, 2, "{}", switching.all());
    assert!(switching.all().contains("must be a member of it: GRANT"), "{}", switching.all());
    common::sql(&srv.admin("postgres"), "GRANT orbis_app TO hosted_admin");
    let proven = iso(&mut runs);
    assert_eq!(proven.code, 0, "{}", proven.all());
    // (Tables whose CHECKs the seeder cannot satisfy are still skipped.)
    assert!(!proven.stdout.contains("needs BYPASSRLS"), "{}", proven.all());
    assert!(proven.stdout.contains("\"probe-role\""), "{}", proven.all());
    // Failures print no password either: a wrong password, a password in
    // `tenant create --database`, a connection string that does not parse.
    let wrong = conn("hosted_a").replace(HOSTED_PASSWORD, &format!("{HOSTED_PASSWORD}x"));
    ws.write(
        "tenants.toml",
        "[[tenant]]\nslug = \"alpha\"\nvertical = \"crm\"\ndatabase = \"env:TENANT_A\"\n\n[[tenant]]\nslug = \"broken\"\n\
         database = \"env:BROKEN\"\n",
    );
    let bad_env = [
        ("TENANT_A", wrong),
        ("BROKEN", format!("host=localhost password={HOSTED_PASSWORD} sslmode=sometimes")),
    ];
    for args in [
        &["migrate", "--all", "--format", "json"][..],
        &["status"],
        &["-v", "verify-isolation", "--all"],
        &["drift", "--tenant", "alpha"],
    ] {
        let r = scenario.strata(&ws, args, &bad_env);
        assert_ne!(r.1.code, 0, "{}", r.1.all());
        runs.push(r);
    }
    let refused = scenario.strata(&ws, &["tenant", "create", "gamma", "--database", &conn("hosted_g")], &[]);
    assert_eq!(refused.1.code, 2, "{}", refused.1.all());
    runs.push(refused);
    for (label, run) in &runs {
        assert!(
            !run.all().contains(HOSTED_PASSWORD),
            "strata {label} printed the password:\n{}",
            run.all()
        );
    }
    // Nothing strata wrote to the databases holds it either.
    let dump = common::value(
        &srv.admin("hosted_a"),
        "SELECT string_agg(t::text, ' ') FROM strata.schema_history t",
    );
    assert!(!dump.is_empty() && !dump.contains(HOSTED_PASSWORD));
}
