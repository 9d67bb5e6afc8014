//! Every command that touches a database, run as one role against one
//! server: tenant create, migrate, status, drift with a scratch server,
//! verify-isolation, check --shadow, and a reshape cutover (plan, run,
//! status). Used by the least-privilege, pooler and no-password tests.

use crate::common::{Run, Workspace};

pub struct Scenario<'a> {
    /// A name for the databases (`<name>_a`, `<name>_cp`).
    pub name: &'a str,
    /// The connection string of database `db` as the role under test.
    pub conn: &'a dyn Fn(&str) -> String,
    /// Runs SQL on the maintenance database as a superuser (set-up only).
    pub admin_sql: &'a dyn Fn(&str),
    /// The role under test (owns the control-plane database).
    pub role: &'a str,
    /// Environment of every strata run.
    pub env: Vec<(String, String)>,
}

/// A command's label and how it ended.
pub type Ran = (String, Run);

impl Scenario<'_> {
    pub fn strata(&self, ws: &Workspace, args: &[&str], extra_env: &[(&str, String)]) -> Ran {
        let mut cmd = ws.command(args);
        cmd.env("NO_COLOR", "1");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        (args.join(" "), Run::from(cmd.output().unwrap()))
    }

    /// Runs every command; returns each run (the caller checks them).
    pub fn run_every_command(&self) -> (Workspace, Vec<Ran>) {
        let (a, cp) = (format!("{}_a", self.name), format!("{}_cp", self.name));
        for db in [&a, &cp] {
            (self.admin_sql)(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"));
        }
        (self.admin_sql)(&format!("CREATE DATABASE \"{cp}\" OWNER \"{}\"", self.role));
        let ws = Workspace::new(&[]);
        ws.runner("5s", 2);
        let env = [
            ("TENANT_A", (self.conn)(&a)),
            ("SCRATCH", (self.conn)("postgres")),
            ("CONTROL", (self.conn)(&cp)),
        ];
        let mut runs = Vec::new();
        let mut run = |args: &[&str]| {
            let r = self.strata(&ws, args, &env);
            runs.push(r);
        };
        run(&[
            "tenant",
            "create",
            "alpha",
            "--vertical",
            "crm",
            "--database",
            "env:TENANT_A",
            "--format",
            "json",
        ]);
        run(&["migrate", "--all", "--format", "json"]);
        run(&["-v", "migrate", "--all"]);
        run(&["status", "--format", "json"]);
        run(&["status"]);
        run(&["drift", "--tenant", "alpha", "--scratch", "env:SCRATCH", "--format", "json"]);
        // Taking over: the history is already recorded, so nothing is written,
        // but the drift gate replays on a scratch database of the role's own.
        run(&[
            "baseline",
            "--all",
            "--to",
            "core@0005",
            "--scratch",
            "env:SCRATCH",
            "--format",
            "json",
        ]);
        run(&["verify-isolation", "--all", "--format", "json"]);
        run(&["verify-isolation", "--all"]);
        ws.write(
            "schema/core/0006_contact_nickname.sql",
            "CREATE FUNCTION contact_count() RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT count(*) FROM contacts $$;\n",
        );
        let file = ws.file("schema/core/0006_contact_nickname.sql");
        run(&["check", "--shadow", "env:SCRATCH", file.to_str().unwrap(), "--format", "json"]);
        std::fs::remove_file(ws.file("schema/core/0006_contact_nickname.sql")).unwrap();
        // A table of the role's own (a bigint key) for the reshape.
        crate::common::sql(
            &(self.conn)(&a),
            "CREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text);
             INSERT INTO notes (body) SELECT 'note ' || g FROM generate_series(1, 300) g;",
        );
        ws.write("cutovers/reshape.toml", &reshape_plan("public.notes"));
        ws.write("cutovers/reshape-rls.toml", &reshape_plan("public.messages"));
        run(&["plan", "reshape", "--format", "json"]);
        (ws, runs)
    }

    /// Runs a reshape cutover of the workspace (`--until` a step, or to
    /// its end), then its status.
    pub fn reshape(&self, ws: &Workspace, file: &str, until: Option<&str>) -> Vec<Ran> {
        let env = [
            ("CONTROL", (self.conn)(&format!("{}_cp", self.name))),
            ("TENANT_A", (self.conn)(&format!("{}_a", self.name))),
        ];
        let mut run = vec!["cutover", "run", file, "--format", "json"];
        if let Some(step) = until {
            run.extend(["--until", step]);
        }
        vec![
            self.strata(ws, &run, &env),
            self.strata(ws, &["cutover", "status", file, "--format", "json"], &env),
        ]
    }
}

/// A reshape of `table.body` (text) into `content` (jsonb).
fn reshape_plan(table: &str) -> String {
    format!(
        r#"kind = "reshape"
description = "body (text) becomes content (jsonb)"
control_plane = "env:CONTROL"
retention = "0s"

[flip]
workers = ["inbox"]
soak = "0s"

[backfill]
batch_size = 100
pause = "0s"
lock_timeout = "2s"

[[table]]
name = "{table}"
key = "id"

[[table.column]]
name = "content"
type = "jsonb"
up = "CASE WHEN body IS NULL THEN NULL ELSE jsonb_build_object('text', body) END"
down = "content->>'text'"
replaces = "body"
"#
    )
}

/// Panics with every failed run's output.
#[track_caller]
pub fn all_succeeded(runs: &[Ran]) {
    let failed: Vec<String> = runs
        .iter()
        .filter(|(_, r)| r.code != 0)
        .map(|(label, r)| format!("strata {label} exited {}:\n{}", r.code, r.all()))
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}
