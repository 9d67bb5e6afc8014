use super::*;
use crate::pg::adopt::Relation;
use crate::workspace::{discover_all, Layout};

struct Folder {
    dir: tempfile::TempDir,
    layout: Layout,
}

impl Folder {
    fn new(layout: Layout, files: &[(&str, &str)]) -> Folder {
        let dir = tempfile::tempdir().unwrap();
        for (rel, text) in files {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        Folder { dir, layout }
    }

    fn map(&self, tool: Tool, rows: Vec<Recorded>) -> Result<Mapping, MappingError> {
        let found = discover_all(self.dir.path(), Some(self.layout)).unwrap();
        let base = self.dir.path().to_path_buf();
        let display = move |p: &Path| crate::workspace::display_path(&base, p);
        let files = LayerFiles {
            layer: "core",
            migrations: &found.migrations,
            left_out: &found.left_out,
            display: &display,
        };
        let history = ForeignHistory {
            tool,
            relation: Relation {
                schema: "public".into(),
                name: tool.default_table().into(),
            },
            rows,
        };
        map(&history, &files)
    }
}

fn rec(version: &str, state: RecordedState) -> Recorded {
    Recorded::new(version.into(), state)
}

fn actions(m: &Mapping) -> Vec<(Option<String>, Action)> {
    m.rows.iter().map(|r| (r.file.clone(), r.action)).collect()
}

const GOOSE: &str = "-- +goose Up\nSELECT 1;\n";

#[test]
fn goose_versions_go_migrations_and_rollbacks() {
    let f = Folder::new(
        Layout::Goose,
        &[("1_a.sql", GOOSE), ("2_b.go", "package m"), ("3_c.sql", GOOSE), ("10_d.sql", GOOSE)],
    );
    use RecordedState::*;
    let m = f
        .map(
            Tool::Goose,
            vec![rec("1", Applied), rec("2", Applied), rec("3", Applied), rec("10", RolledBack)],
        )
        .unwrap();
    assert_eq!(m.applied, vec![0, 1]);
    assert_eq!(
        actions(&m),
        vec![
            (Some("1_a.sql".into()), Action::Record),
            (Some("3_c.sql".into()), Action::Record),
            (Some("10_d.sql".into()), Action::Pending),
            (None, Action::NotSql)
        ]
    );
    // A version rolled back below an applied one is a hole.
    let err = f.map(Tool::Goose, vec![rec("1", RolledBack), rec("3", Applied)]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("1_a.sql is not applied (rolled back), but the later 3_c.sql is"),
        "{err}"
    );
    // A recorded version with no file is named.
    let err = f
        .map(Tool::Goose, vec![rec("1", Applied), rec("4", Applied)])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("records 4 as applied, but layer core has no migration file for it"),
        "{err}"
    );
}

#[test]
fn golang_migrate_keeps_the_current_version_only() {
    let f = Folder::new(
        Layout::GolangMigrate,
        &[
            ("1_a.up.sql", "SELECT 1;"),
            ("2_b.up.sql", "SELECT 2;"),
            ("10_c.up.sql", "SELECT 3;"),
        ],
    );
    let m = f.map(Tool::GolangMigrate, vec![rec("2", RecordedState::Applied)]).unwrap();
    assert_eq!(m.applied, vec![0, 1]);
    assert_eq!(m.rows[0].recorded.as_deref(), Some("(below 2)"));
    assert_eq!(m.rows[1].recorded.as_deref(), Some("2"));
    let err = f
        .map(Tool::GolangMigrate, vec![rec("10", RecordedState::Dirty)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("is dirty at version 10"), "{err}");
    assert!(f.map(Tool::GolangMigrate, vec![rec("5", RecordedState::Applied)]).is_err());
    assert!(f.map(Tool::GolangMigrate, vec![]).unwrap().applied.is_empty());
}

#[test]
fn sqlx_checksums_are_verified() {
    let f = Folder::new(Layout::Sqlx, &[("1_a.sql", "SELECT 1;\n"), ("2_b.sql", "SELECT 2;\n")]);
    let with = |v: &str, text: &[u8], state| Recorded {
        checksum: Some(Checksum::Sqlx(hex::encode(checksum::sqlx(text)))),
        description: Some("a".into()),
        ..rec(v, state)
    };
    let m = f.map(Tool::Sqlx, vec![with("1", b"SELECT 1;\n", RecordedState::Applied)]).unwrap();
    assert_eq!(m.rows[0].checksum, ChecksumCheck::Verified);
    assert_eq!(m.applied, vec![0]);
    let err = f
        .map(Tool::Sqlx, vec![with("1", b"SELECT 1; -- edited\n", RecordedState::Applied)])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("1_a.sql: public._sqlx_migrations records the SHA-384 checksum"),
        "{err}"
    );
    let err = f
        .map(Tool::Sqlx, vec![with("2", b"SELECT 2;\n", RecordedState::Failed)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("records 2 (a) as failed"), "{err}");
}

#[test]
fn flyway_segments_baselines_repeatables_and_undo() {
    let f = Folder::new(
        Layout::Flyway,
        &[
            ("V1__a.sql", "SELECT 1;"),
            ("V1.1__b.sql", "SELECT 2;"),
            ("V1.10__c.sql", "SELECT 3;"),
            ("V2__d.sql", "SELECT 4;"),
            ("R__views.sql", "SELECT 5;"),
        ],
    );
    let sql = |v: &str, text: &str| Recorded {
        checksum: Some(Checksum::Flyway(checksum::flyway(text))),
        ..rec(v, RecordedState::Applied)
    };
    let repeatable = |text: &str| Recorded {
        repeatable: true,
        description: Some("views".into()),
        ..sql("", text)
    };
    // A baseline at 1.1 covers V1 and V1.1; 1.10 was applied; V2 pending.
    let m = f
        .map(
            Tool::Flyway,
            vec![
                rec("1.1", RecordedState::Baseline),
                sql("1.10", "SELECT 3;"),
                repeatable("SELECT 5;"),
            ],
        )
        .unwrap();
    assert_eq!(m.applied, vec![0, 1, 2, 4]);
    assert_eq!(m.rows[0].checksum, ChecksumCheck::NotKept);
    assert_eq!(m.rows[4].checksum, ChecksumCheck::Verified);
    // A repeatable migration whose file changed is applied again.
    let m = f.map(Tool::Flyway, vec![sql("1", "SELECT 1;"), repeatable("SELECT 0;")]).unwrap();
    assert_eq!(m.rows[4].checksum, ChecksumCheck::Changed);
    assert_eq!(m.rows[4].action, Action::Pending);
    // Undone: pending again.
    let m = f
        .map(
            Tool::Flyway,
            vec![sql("1", "SELECT 1;"), sql("1.1", "SELECT 2;"), rec("1.1", RecordedState::Undone)],
        )
        .unwrap();
    assert_eq!(m.applied, vec![0]);
    let err = f.map(Tool::Flyway, vec![sql("1", "SELECT 1; --x")]).unwrap_err().to_string();
    assert!(err.contains("CRC-32 checksum"), "{err}");
}

#[test]
fn prisma_failed_and_rolled_back_attempts() {
    let f = Folder::new(
        Layout::Prisma,
        &[
            ("20240101000000_a/migration.sql", "SELECT 1;\n"),
            ("20240102000000_b/migration.sql", "SELECT 2;\n"),
        ],
    );
    let p = |name: &str, text: &str, state| Recorded {
        checksum: Some(Checksum::Prisma(checksum::prisma(text))),
        detail: Some("ERROR: boom".into()),
        ..rec(name, state)
    };
    let m = f
        .map(
            Tool::Prisma,
            vec![
                p("20240101000000_a", "SELECT 1;\r\n", RecordedState::Applied),
                p("20240102000000_b", "SELECT 2;\n", RecordedState::RolledBack),
            ],
        )
        .unwrap();
    assert_eq!(m.applied, vec![0]);
    assert_eq!(m.rows[1].action, Action::Pending);
    let err = f
        .map(Tool::Prisma, vec![p("20240102000000_b", "SELECT 2;\n", RecordedState::Failed)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("records 20240102000000_b as failed (ERROR: boom)"), "{err}");
    assert!(err.contains("prisma migrate resolve"), "{err}");
}

#[test]
fn pop_legacy_versions_and_diesel_dashes() {
    let f = Folder::new(Layout::Pop, &[("20210101000000123_a.up.sql", "SELECT 1;")]);
    let m = f.map(Tool::Pop, vec![rec("20210101000000", RecordedState::Applied)]).unwrap();
    assert_eq!(m.applied, vec![0]);
    let d = Folder::new(Layout::Diesel, &[("2019-02-26-002946_a/up.sql", "SELECT 1;")]);
    let m = d.map(Tool::Diesel, vec![rec("20190226002946", RecordedState::Applied)]).unwrap();
    assert_eq!(m.applied, vec![0]);
}
