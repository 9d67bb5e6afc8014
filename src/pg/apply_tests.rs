use super::*;

fn loaded(layer: &str, version: &str, checksum: &str) -> Arc<Loaded> {
    Arc::new(Loaded {
        layer: layer.into(),
        version: version.into(),
        name: "n".into(),
        display: format!("schema/{layer}/{version}_n.sql"),
        checksum: checksum.into(),
        no_transaction: false,
        repeatable: false,
        statements: Vec::new(),
        extensions: Vec::new(),
        transaction_control: None,
    })
}

fn applied(layer: &str, version: &str, checksum: &str, status: Status) -> Applied {
    Applied {
        layer: layer.into(),
        version: version.into(),
        name: "n".into(),
        checksum: checksum.into(),
        status,
        applied_at: "2026-01-01T00:00:00Z".into(),
        applied_by: "strata".into(),
        tool_version: TOOL_VERSION.into(),
        execution_ms: Some(1),
        error: None,
        origin: history::Origin::Migrate,
        note: None,
    }
}

#[test]
fn pending_after_applied() {
    let ms = vec![
        loaded("core", "0001", "a"),
        loaded("core", "0002", "b"),
        loaded("verticals/crm", "0001", "c"),
    ];
    let (pending, skipped) = plan(&[applied("core", "0001", "a", Status::Applied)], &ms, false, &mut Vec::new()).unwrap();
    assert_eq!(pending, vec![1, 2]);
    assert_eq!(skipped, 1);
}

#[test]
fn changed_file_names_both_checksums() {
    let ms = vec![loaded("core", "0001", "new")];
    let err = plan(&[applied("core", "0001", "old", Status::Applied)], &ms, false, &mut Vec::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("schema/core/0001_n.sql") && err.contains("old") && err.contains("new"),
        "{err}"
    );
    let mut warnings = Vec::new();
    assert!(plan(&[applied("core", "0001", "old", Status::Applied)], &ms, true, &mut warnings).is_ok());
    assert_eq!(warnings.len(), 1);
}

#[test]
fn vanished_file_and_unfinished_marker_refuse() {
    let ms = vec![loaded("core", "0001", "a")];
    let err = plan(&[applied("core", "0009", "z", Status::Applied)], &ms, false, &mut Vec::new()).unwrap_err();
    assert!(matches!(err, Error::MissingMigration { .. }));
    let err = plan(&[applied("core", "0001", "a", Status::Started)], &ms, false, &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("half-applied"), "{err}");
}

#[test]
fn repeatables_run_again_when_their_file_changes() {
    let mut views = loaded("core", "R__views", "v2");
    Arc::get_mut(&mut views).unwrap().repeatable = true;
    let ms = vec![loaded("core", "1", "a"), loaded("core", "2", "b"), views];
    let history = [
        applied("core", "1", "a", Status::Applied),
        applied("core", "R__views", "v1", Status::Applied),
    ];
    // Changed: pending again, not an error; a pending versioned migration
    // below an applied repeatable is not out of order.
    let (pending, _) = plan(&history, &ms, false, &mut Vec::new()).unwrap();
    assert_eq!(pending, vec![1, 2]);
    assert_eq!(applied_flags(&history, &ms), vec![true, false, false]);
    let history = [
        applied("core", "1", "a", Status::Applied),
        applied("core", "2", "b", Status::Applied),
        applied("core", "R__views", "v2", Status::Applied),
    ];
    let (pending, skipped) = plan(&history, &ms, false, &mut Vec::new()).unwrap();
    assert!(pending.is_empty());
    assert_eq!(skipped, 3);
}

#[test]
fn gap_below_the_head_is_out_of_order() {
    let ms = vec![loaded("core", "0001", "a"), loaded("core", "0002", "b")];
    let err = plan(&[applied("core", "0002", "b", Status::Applied)], &ms, false, &mut Vec::new()).unwrap_err();
    assert!(matches!(err, Error::OutOfOrder { .. }), "{err}");
}

fn load_text(text: &str) -> Loaded {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("0001_x.sql");
    std::fs::write(&p, text).unwrap();
    let (_, ms) = crate::workspace::discover(dir.path(), Some(crate::workspace::Layout::Native)).unwrap();
    Loaded::load(&ms[0], "0001_x.sql".into(), "core".into()).unwrap()
}

#[test]
fn statements_extensions_and_wrapping_transactions() {
    let m =
        load_text("BEGIN;\nCREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA extensions;\n\\set x 1\nCREATE TABLE t (id int);\nCOMMIT;\n");
    assert_eq!(m.extensions, vec!["vector"]);
    let sql: Vec<&str> = m.statements.iter().map(|s| s.sql.as_str()).collect();
    assert_eq!(
        sql,
        vec![
            "CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA extensions",
            "CREATE TABLE t (id int)"
        ]
    );
    assert_eq!(m.statements[1].line, 4);
    assert_eq!(m.transaction_control, None);
    let m = load_text("CREATE TABLE a (id int);\nCOMMIT;\nCREATE TABLE b (id int);\n");
    assert_eq!(m.transaction_control, Some(2));
}

#[test]
fn goose_down_sections_are_never_sent() {
    let m = load_text("-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Down\nDROP TABLE a;\n");
    let sql: Vec<&str> = m.statements.iter().map(|s| s.sql.as_str()).collect();
    assert_eq!(sql, vec!["CREATE TABLE a (id int)"]);
}
