//! docs/getting-started.md, step by step, against a real server: from an
//! empty folder to a migrated tenant.

use crate::common;

use common::*;

const NOTES: &str = "
CREATE TABLE notes (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX notes_contact_id_idx ON notes (contact_id);

COMMENT ON TABLE notes IS 'Free-text notes about a contact.';

ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
ALTER TABLE notes FORCE ROW LEVEL SECURITY;

CREATE POLICY notes_app ON notes FOR ALL TO app USING (true) WITH CHECK (true);
";

#[test]
fn from_an_empty_folder_to_a_migrated_tenant() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path();
    strata_in(ws, &["init"]).expect(0);
    let notes = strata_in(ws, &["new", "core", "add_notes"]);
    notes.expect(0);
    let path = ws.join(notes.stdout.trim());
    let header = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{header}{NOTES}")).unwrap();
    strata_in(ws, &["check", "--deny-warnings"]).expect(0);
    strata_in(ws, &["sum"]).expect(0);

    let srv = server();
    sql(srv.admin(), "DROP DATABASE IF EXISTS test_getting_started WITH (FORCE)");
    let conn = srv.conn("test_getting_started");
    strata_in(ws, &["tenant", "create", "acme", "--database", &conn, "--label", "wave=canary"]).expect(0);
    assert_eq!(history(&conn).len(), 2);
    assert!(has_table(&conn, "notes"));

    let tags = strata_in(ws, &["new", "core", "add_tags"]);
    tags.expect(0);
    let path = ws.join(tags.stdout.trim());
    let header = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("{header}ALTER TABLE notes ADD COLUMN tags text[] NOT NULL DEFAULT '{{}}';\n"),
    )
    .unwrap();
    strata_in(ws, &["check"]).expect(0);
    let pending = strata_in(ws, &["status", "--format", "json"]);
    pending.expect(1);
    assert_eq!(pending.json()["tenants"][0]["pending"], 1);
    strata_in(ws, &["migrate", "--tenant", "acme"]).expect(0);
    let status = strata_in(ws, &["status", "--format", "json"]);
    status.expect(0);
    assert_eq!(status.json()["at_head"], true);
    assert_eq!(history(&conn).len(), 3);
}
