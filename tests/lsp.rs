//! `strata lsp` driven over stdio with real JSON-RPC framing, as an editor
//! drives it.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

mod common;
mod lsp_client;
use lsp_client::{apply, capabilities, uri, Client};

/// A workspace made by `strata init`: its first migration creates `contacts`.
struct Workspace {
    dir: tempfile::TempDir,
    cache: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Workspace {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = common::strata_in(dir.path(), &["init", "--quiet"]);
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        Workspace {
            dir,
            cache: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    fn client(&self, pull: bool) -> Client {
        start(self.dir.path(), self.cache.path(), pull)
    }
}

fn start(cwd: &Path, cache: &Path, pull: bool) -> Client {
    let mut client = Client::start(cwd, &[("STRATA_CACHE_DIR", cache)]);
    let result = client.request(
        "initialize",
        json!({
            "processId": null,
            "rootUri": uri(cwd),
            "capabilities": capabilities(pull),
            "initializationOptions": {"docsUrl": "https://docs.example/rules.md"},
        }),
    );
    let caps = &result["capabilities"];
    assert_eq!(caps["positionEncoding"], "utf-16");
    assert_eq!(caps["diagnosticProvider"]["interFileDependencies"], true);
    assert_eq!(caps["hoverProvider"], true);
    assert_eq!(caps["codeActionProvider"]["codeActionKinds"][0], "quickfix");
    assert!(caps["workspace"]["fileOperations"]["didRename"]["filters"].is_array());
    client.notify("initialized", json!({}));
    client
}

fn open(client: &mut Client, path: &Path, text: &str) -> String {
    let uri = uri(path);
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "sql", "version": 1, "text": text}}),
    );
    uri
}

fn range(sl: u64, sc: u64, el: u64, ec: u64) -> Value {
    json!({"start": {"line": sl, "character": sc}, "end": {"line": el, "character": ec}})
}

fn codes(diagnostics: &[Value]) -> Vec<&str> {
    diagnostics.iter().map(|d| d["code"].as_str().unwrap_or("")).collect()
}

fn pull(client: &mut Client, uri: &str, previous: Option<&str>) -> Value {
    let mut params = json!({"textDocument": {"uri": uri}});
    if let Some(id) = previous {
        params["previousResultId"] = json!(id);
    }
    client.request("textDocument/diagnostic", params)
}

/// The index is on `contacts`, created by an earlier migration: only the
/// history makes this a finding. Non-ASCII text before it on its line (an
/// emoji is two UTF-16 units, one character) checks the columns.
const INDEX: &str = "-- core: e-mail lookups für «Kontakte» 😀\n/* 😀é */ CREATE INDEX contacts_email_idx ON contacts (email);\n";

#[test]
fn edit_a_migration_with_the_history_as_context() {
    let ws = Workspace::new();
    let path = ws.write("schema/core/0002_contacts_email.sql", INDEX);
    let mut client = ws.client(false);
    let registration = client.wait_for("client/registerCapability", |_| true);
    let watchers = registration["params"]["registrations"][0]["registerOptions"]["watchers"].to_string();
    assert!(watchers.contains("**/*.sql") && watchers.contains("**/*.toml"), "{watchers}");

    let uri = open(&mut client, &path, INDEX);

    // Pushed: one finding, its range in UTF-16 units. `CREATE` is the 10th
    // character of line 2 but starts at unit 10 (the emoji counts twice); the
    // statement's last character, `)`, is character 60, so the range ends at
    // unit 61.
    let pushed = client.published(&uri, 1);
    assert_eq!(codes(&pushed), ["require-concurrent-index"], "{pushed:?}");
    let d = &pushed[0];
    assert_eq!(d["range"], range(1, 10, 1, 61));
    assert_eq!(d["severity"], 1);
    assert_eq!(d["source"], "strata");
    assert_eq!(
        d["codeDescription"]["href"],
        "https://docs.example/rules.md#require-concurrent-index"
    );
    assert!(d["message"].as_str().unwrap().contains("existing table `public.contacts`"));

    // Pulled: the same, then unchanged while nothing changes.
    let pulled = pull(&mut client, &uri, None);
    assert_eq!(pulled["kind"], "full");
    assert_eq!(pulled["items"].as_array().unwrap(), &pushed);
    let id = pulled["resultId"].as_str().unwrap().to_string();
    assert_eq!(pull(&mut client, &uri, Some(&id))["kind"], "unchanged");

    // Hover on the finding: the rule's documentation.
    let hover = client.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": uri}, "position": {"line": 1, "character": 30}}),
    );
    let markdown = hover["contents"]["value"].as_str().unwrap();
    assert_eq!(hover["contents"]["kind"], "markdown");
    assert!(
        markdown.contains("require-concurrent-index") && markdown.contains("#### What it does"),
        "{markdown}"
    );
    assert!(markdown.contains("https://docs.example/rules.md#require-concurrent-index"));
    let nothing = client.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": uri}, "position": {"line": 0, "character": 3}}),
    );
    assert_eq!(nothing, Value::Null);

    // Code actions: the rule's fix, and the two suppressions.
    let actions = client.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": uri}, "range": range(1, 12, 1, 12), "context": {"diagnostics": [d]}}),
    );
    let titles: Vec<&str> = actions.as_array().unwrap().iter().map(|a| a["title"].as_str().unwrap()).collect();
    assert_eq!(
        titles,
        [
            "Fix: build the index CONCURRENTLY outside a transaction",
            "Ignore `require-concurrent-index` for this statement",
            "Ignore `require-concurrent-index` in this file",
        ]
    );
    let fix = &actions[0];
    assert_eq!(fix["kind"], "quickfix");
    assert_eq!(fix["isPreferred"], true);
    let change = &fix["edit"]["documentChanges"][0];
    assert_eq!(change["textDocument"], json!({"uri": uri, "version": 1}));
    let edits = change["edits"].as_array().unwrap();
    let fixed = apply(INDEX, edits);
    assert_eq!(
        fixed,
        "-- strata: no-transaction\n-- core: e-mail lookups für «Kontakte» 😀\n/* 😀é */ CREATE INDEX CONCURRENTLY IF NOT EXISTS contacts_email_idx ON contacts (email);\n"
    );

    // The client applies the fix as incremental changes (from the end, so
    // each range still holds): the finding is gone.
    let mut changes: Vec<Value> = edits.iter().map(|e| json!({"range": e["range"], "text": e["newText"]})).collect();
    changes.sort_by_key(|c| std::cmp::Reverse((c["range"]["start"]["line"].as_u64(), c["range"]["start"]["character"].as_u64())));
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": changes}),
    );
    assert_eq!(client.published(&uri, 2), Vec::<Value>::new());
    let pulled = pull(&mut client, &uri, Some(&id));
    assert_eq!(pulled["kind"], "full");
    assert_eq!(pulled["items"], json!([]));

    let (code, stderr) = client.shutdown();
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn migrations_adopted_in_place_outside_the_workspace() {
    // `strata init --from` keeps the migrations where they are: looking
    // upwards from them finds no strata.toml, the editor's folder does.
    let repo = tempfile::tempdir().unwrap();
    let migrations = repo.path().join("db/migrations");
    std::fs::create_dir_all(&migrations).unwrap();
    let first = migrations.join("0001_people.sql");
    std::fs::write(&first, "CREATE TABLE people (id bigint PRIMARY KEY, email varchar(10));\n").unwrap();
    // Widening a varchar rewrites nothing: only the history says it was one.
    let text = "ALTER TABLE people ALTER COLUMN email TYPE varchar(20);\n";
    let path = migrations.join("0002_people_email.sql");
    std::fs::write(&path, text).unwrap();
    let ws = repo.path().join("governance");
    let from = migrations.to_str().unwrap();
    let out = common::strata_in(repo.path(), &["init", "--quiet", "governance", "--from", from]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let cache = tempfile::tempdir().unwrap();
    let mut client = start(&ws, cache.path(), false);
    let uri = open(&mut client, &path, text);
    // Checked in the workspace: no lock_timeout findings (strata's runner
    // sets it), no rewrite.
    assert_eq!(codes(&client.published(&uri, 1)), ["prefer-text"]);
    // A change in the adopted folder reloads the history: from int, the
    // same statement rewrites the table.
    std::fs::write(&first, "CREATE TABLE people (id bigint PRIMARY KEY, email int);\n").unwrap();
    watched(&mut client, &first, 2);
    next_codes(&mut client, &uri, |c| c.contains(&"column-type-change"));
    client.shutdown();
}

#[test]
fn ignore_actions_select_the_reason_and_suppress() {
    let ws = Workspace::new();
    let path = ws.write("schema/core/0002_contacts_email.sql", INDEX);
    let mut client = ws.client(false);
    let uri = open(&mut client, &path, INDEX);
    let d = client.published(&uri, 1).remove(0);
    let actions = client.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": uri}, "range": d["range"], "context": {"diagnostics": [d]}}),
    );
    let mut text = INDEX.to_string();
    for (version, (action, line)) in [(&actions[1], 1), (&actions[2], 0)].into_iter().enumerate() {
        let version = version as i64 + 2;
        let edits = action["edit"]["documentChanges"][0]["edits"].as_array().unwrap().clone();
        text = apply(&text, &edits);
        let full = json!([{"text": text}]);
        client.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": full}),
        );
        // The comment is on its own line above the statement's line (or on
        // top of the file), and the command selects the reason for typing.
        let inserted = text.lines().nth(line).unwrap();
        assert!(text
            .lines()
            .nth(line + 1)
            .unwrap()
            .contains(if line == 0 { "-- core" } else { "CREATE INDEX" }));
        assert!(inserted.starts_with("-- strata-ignore") && inserted.ends_with(": reason"), "{text}");
        let command = &action["command"];
        assert_eq!(command["command"], "strata.selectRange");
        client.request(
            "workspace/executeCommand",
            json!({"command": command["command"], "arguments": command["arguments"]}),
        );
        let shown = client.wait_for("window/showDocument", |_| true);
        let selection = &shown["params"]["selection"];
        assert_eq!(shown["params"]["uri"], uri);
        let start = lsp_client::offset(
            &text,
            selection["start"]["line"].as_u64().unwrap(),
            selection["start"]["character"].as_u64().unwrap(),
        );
        let end = lsp_client::offset(
            &text,
            selection["end"]["line"].as_u64().unwrap(),
            selection["end"]["character"].as_u64().unwrap(),
        );
        assert_eq!(&text[start..end], "reason");
        let left = client.published(&uri, version);
        if version == 2 {
            // The statement's suppression works.
            assert_eq!(left, Vec::<Value>::new());
        } else {
            // Both suppress the finding: the first one now suppresses nothing.
            assert_eq!(codes(&left), ["unused-suppression"], "{text}");
        }
    }
    client.shutdown();
}

#[test]
fn plain_sql_outside_a_workspace_and_unsaved_buffers() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let text = "-- «ça» 😀\nALTER TABLE t ADD COLUMN c int NOT NULL;\n";
    let path = dir.path().join("adhoc.sql");
    std::fs::write(&path, text).unwrap();
    let mut client = start(dir.path(), cache.path(), false);
    let uri = open(&mut client, &path, text);
    let found = client.published(&uri, 1);
    let mut got = codes(&found);
    got.sort();
    assert_eq!(got, ["add-required-column", "require-lock-timeout", "require-statement-timeout"]);
    let column = found.iter().find(|d| d["code"] == "add-required-column").unwrap();
    assert_eq!(column["range"], range(1, 25, 1, 26));

    // An editor buffer with no file behind it.
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": "untitled:Untitled-1", "languageId": "sql", "version": 3, "text": "DROP DATABASE prod;"}}),
    );
    assert_eq!(codes(&client.published("untitled:Untitled-1", 3)), ["drop-database"]);
    // Closing clears its findings.
    client.notify("textDocument/didClose", json!({"textDocument": {"uri": "untitled:Untitled-1"}}));
    let cleared = client.wait_for("textDocument/publishDiagnostics", |p| {
        p["uri"] == "untitled:Untitled-1" && p["version"].is_null()
    });
    assert_eq!(cleared["params"]["diagnostics"], json!([]));
    client.shutdown();
}

#[test]
fn pulling_clients_get_nothing_pushed() {
    let ws = Workspace::new();
    let path = ws.write("schema/core/0002_contacts_email.sql", INDEX);
    let mut client = ws.client(true);
    let uri = open(&mut client, &path, INDEX);
    let pulled = pull(&mut client, &uri, None);
    assert_eq!(codes(pulled["items"].as_array().unwrap()), ["require-concurrent-index"]);
    // Give a wrongly pushing server time to push, then look.
    std::thread::sleep(std::time::Duration::from_millis(600));
    client.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": uri}, "position": {"line": 0, "character": 0}}),
    );
    let pushed: Vec<Value> = client
        .drain()
        .into_iter()
        .filter(|m| m["method"] == "textDocument/publishDiagnostics")
        .collect();
    assert!(pushed.is_empty(), "{pushed:?}");
    client.shutdown();
}

const NOTES: &str = "CREATE TABLE notes (id bigint PRIMARY KEY, contact_id uuid, body text NOT NULL);
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
ALTER TABLE notes FORCE ROW LEVEL SECURITY;
CREATE POLICY notes_app ON notes FOR ALL TO app USING (true) WITH CHECK (true);
";
const INDEX_NOTES: &str = "CREATE INDEX notes_contact_idx ON notes (contact_id);\n";
const FK: &str = "ALTER TABLE notes ADD CONSTRAINT notes_contact_fk FOREIGN KEY (contact_id) REFERENCES contacts (id) NOT VALID;\n";

fn watched(client: &mut Client, path: &Path, kind: u8) {
    client.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": uri(path), "type": kind}]}),
    );
}

/// The next findings pushed for `uri` that `accept` takes.
fn next_codes(client: &mut Client, uri: &str, accept: impl Fn(&[&str]) -> bool) -> Vec<String> {
    let m = client.wait_for("textDocument/publishDiagnostics", |p| {
        p["uri"] == uri && accept(&codes(p["diagnostics"].as_array().unwrap()))
    });
    codes(m["params"]["diagnostics"].as_array().unwrap())
        .iter()
        .map(|c| c.to_string())
        .collect()
}

#[test]
fn reloads_when_rules_history_config_or_names_change() {
    let ws = Workspace::new();
    // Names outside the native numbering, to move a migration by renaming it.
    let config = ws.path("strata.toml");
    let good = std::fs::read_to_string(&config)
        .unwrap()
        .replace("naming = \"native\"", "naming = \"any\"");
    std::fs::write(&config, &good).unwrap();
    let notes = ws.write("schema/core/0002_notes.sql", NOTES);
    let path = ws.write("schema/core/0003_fk.sql", FK);
    // The index waits outside the layers (an index in a later migration of
    // the same change would count: fk-missing-index accepts it).
    let index = ws.write("drafts/0004_index.sql", INDEX_NOTES);
    let mut client = ws.client(false);
    let uri = open(&mut client, &path, FK);
    // No index for the foreign key in the history.
    assert_eq!(codes(&client.published(&uri, 1)), ["fk-missing-index"]);

    // rules/*.toml turns the rule off, then on again.
    let rules = ws.write("rules/zz_off.toml", "[rules.fk-missing-index]\nseverity = \"off\"\n");
    watched(&mut client, &rules, 1);
    next_codes(&mut client, &uri, |c| c.is_empty());
    std::fs::remove_file(&rules).unwrap();
    watched(&mut client, &rules, 3);
    next_codes(&mut client, &uri, |c| c == ["fk-missing-index"]);

    // An earlier migration changes on disk: its index now precedes the key.
    std::fs::write(&notes, format!("{NOTES}{INDEX_NOTES}")).unwrap();
    watched(&mut client, &notes, 2);
    next_codes(&mut client, &uri, |c| c.is_empty());
    std::fs::write(&notes, NOTES).unwrap();
    watched(&mut client, &notes, 2);
    next_codes(&mut client, &uri, |c| c == ["fk-missing-index"]);

    // A broken strata.toml is shown to the user; the file is checked on its
    // own meanwhile. Repaired, the history counts again.
    std::fs::write(&config, "pg_version = \"fifteen\"\n").unwrap();
    watched(&mut client, &config, 2);
    let shown = client.wait_for("window/showMessage", |_| true);
    let message = shown["params"]["message"].as_str().unwrap();
    assert!(message.contains("strata.toml:1:14"), "{message}");
    std::fs::write(&config, &good).unwrap();
    watched(&mut client, &config, 2);
    next_codes(&mut client, &uri, |c| c == ["fk-missing-index"]);

    // Renaming the index's file moves it into the layer, before the foreign key.
    let renamed = ws.path("schema/core/0002_z_index.sql");
    std::fs::rename(&index, &renamed).unwrap();
    client.notify(
        "workspace/didRenameFiles",
        json!({"files": [{"oldUri": lsp_client::uri(&index), "newUri": lsp_client::uri(&renamed)}]}),
    );
    next_codes(&mut client, &uri, |c| c.is_empty());
    client.shutdown();
}

#[test]
fn releasing_the_open_migration_makes_edits_a_finding() {
    let ws = Workspace::new();
    let text = "COMMENT ON TABLE contacts IS 'people';\n";
    let path = ws.write("schema/core/0002_comment.sql", text);
    let mut client = ws.client(false);
    let uri = open(&mut client, &path, text);
    assert_eq!(client.published(&uri, 1), Vec::<Value>::new());
    // `strata sum` releases it: strata.sum changes on disk.
    let out = common::strata_in(ws.dir.path(), &["sum"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    watched(&mut client, &ws.path("strata.sum"), 2);
    // Editing a released migration is a finding as you type.
    let edited = text.replace("people", "persons");
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": edited}]}),
    );
    let found = client.published(&uri, 2);
    assert!(codes(&found).contains(&"migration-modified"), "{found:?}");
    client.shutdown();
}

#[test]
fn survives_hostile_input() {
    let ws = Workspace::new();
    let mut client = ws.client(false);
    let path = ws.path("schema/core/0002_weird.sql");
    let nasty = "$$ unterminated 😀\n\u{0}\u{feff}'; DO $x$ BEGIN\n".repeat(3) + &"(".repeat(5000);
    let uri = open(&mut client, &path, &nasty);
    client.published(&uri, 1);
    // Invalid parameters, an unknown method, a position far outside the text,
    // a change past the end: errors or clamped answers, never a crash.
    let bad = client.call("textDocument/hover", json!({"nonsense": true}));
    assert_eq!(bad["error"]["code"], -32602);
    let unknown = client.call("textDocument/rename", json!({}));
    assert_eq!(unknown["error"]["code"], -32601);
    client.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": uri}, "range": range(9999, 9999, 99999, 0), "context": {"diagnostics": []}}),
    );
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"range": range(500, 3, 400, 1), "text": "é"}]}),
    );
    client.published(&uri, 2);
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": "file:///nowhere.sql", "version": 1}, "contentChanges": []}),
    );
    let still = pull(&mut client, &uri, None);
    assert_eq!(still["kind"], "full");
    let (code, stderr) = client.shutdown();
    assert_eq!(code, 0, "{stderr}");
}
