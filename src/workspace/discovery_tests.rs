use super::*;
use std::fs;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn names(ms: &[Migration]) -> Vec<String> {
    ms.iter().map(|m| m.file_name()).collect()
}

#[test]
fn native_sorts_numerically() {
    let d = tempfile::tempdir().unwrap();
    for f in ["0002_b.sql", "0010_c.sql", "0001_a.sql"] {
        write(d.path(), f, "SELECT 1;");
    }
    let (layout, ms) = discover(d.path(), None).unwrap();
    assert_eq!(layout, Layout::Native);
    assert_eq!(names(&ms), vec!["0001_a.sql", "0002_b.sql", "0010_c.sql"]);
    assert_eq!(ms[2].number(), Some(10));
    assert_eq!(ms[0].name, "a");
}

#[test]
fn golang_migrate_skips_down_files() {
    let d = tempfile::tempdir().unwrap();
    for f in [
        "1_init.up.sql",
        "1_init.down.sql",
        "2_more.up.sql",
        "2_more.down.sql",
        "10_last.up.sql",
    ] {
        write(d.path(), f, "SELECT 1;");
    }
    let found = discover_all(d.path(), Some(Layout::GolangMigrate)).unwrap();
    assert_eq!(names(&found.migrations), vec!["1_init.up.sql", "2_more.up.sql", "10_last.up.sql"]);
    assert_eq!(found.left_out.len(), 2);
    assert!(found.left_out.iter().all(|l| l.reason == LeftOutReason::Down));
}

#[test]
fn diesel_and_prisma_folders() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "2019-02-26-002946_create_user/up.sql", "SELECT 1;");
    write(d.path(), "2019-02-26-002946_create_user/down.sql", "SELECT 2;");
    write(d.path(), "2018-01-01-000000_first/up.sql", "SELECT 1;");
    write(
        d.path(),
        "2019-11-15-182353_Add email notifications to crate owners/up.sql",
        "SELECT 1;",
    );
    write(
        d.path(),
        "2019-11-15-182353_Add email notifications to crate owners/metadata.toml",
        "run_in_transaction = false\n",
    );
    let found = discover_all(d.path(), None).unwrap();
    assert_eq!(found.layout, Layout::Diesel);
    assert_eq!(
        names(&found.migrations),
        vec![
            "2018-01-01-000000_first/up.sql",
            "2019-02-26-002946_create_user/up.sql",
            "2019-11-15-182353_Add email notifications to crate owners/up.sql"
        ]
    );
    assert_eq!(found.migrations[1].version, "2019-02-26-002946");
    assert!(!found.migrations[1].declared_no_transaction);
    assert!(found.migrations[2].declared_no_transaction);
    assert_eq!(found.left_out.len(), 1);

    let p = tempfile::tempdir().unwrap();
    write(p.path(), "20240101000000_init/migration.sql", "SELECT 1;");
    write(p.path(), "migration_lock.toml", "provider = \"postgresql\"");
    let found = discover_all(p.path(), None).unwrap();
    assert_eq!(found.layout, Layout::Prisma);
    assert_eq!(found.migrations.len(), 1);
    assert!(found.left_out.is_empty(), "{:?}", found.left_out);
}

#[test]
fn prisma_for_another_database_is_refused() {
    let p = tempfile::tempdir().unwrap();
    write(p.path(), "20240101000000_init/migration.sql", "SELECT 1;");
    write(p.path(), "migration_lock.toml", "# Please do not edit\nprovider = \"mysql\"\n");
    let err = discover(p.path(), None).unwrap_err().to_string();
    assert!(err.contains("migration_lock.toml:2:1"), "{err}");
    assert!(err.contains("provider `mysql`"), "{err}");
}

#[test]
fn flattened_diesel_with_a_down_folder() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "2026-01-08-132525-0000_sidebar.up.sql", "SELECT 2;");
    write(d.path(), "2025-08-01-000068_trigger.up.sql", "SELECT 1;");
    write(d.path(), "00000000000000_diesel_initial_setup.up.sql", "SELECT 0;");
    write(d.path(), "down/2025-08-01-000068_trigger.down.sql", "SELECT 1;");
    write(d.path(), "SOURCE.txt", "x");
    let found = discover_all(d.path(), None).unwrap();
    assert_eq!(found.layout, Layout::Diesel);
    assert_eq!(
        names(&found.migrations),
        vec![
            "00000000000000_diesel_initial_setup.up.sql",
            "2025-08-01-000068_trigger.up.sql",
            "2026-01-08-132525-0000_sidebar.up.sql"
        ]
    );
    assert_eq!(found.migrations[2].version, "2026-01-08-132525-0000");
    let reasons: Vec<(&str, &LeftOutReason)> = found.left_out.iter().map(|l| (l.rel.as_str(), &l.reason)).collect();
    assert_eq!(
        reasons,
        vec![
            ("SOURCE.txt", &LeftOutReason::NotSql),
            ("down/2025-08-01-000068_trigger.down.sql", &LeftOutReason::Down)
        ]
    );
}

#[test]
fn flyway_versions_repeatables_and_undo() {
    let d = tempfile::tempdir().unwrap();
    for f in [
        "V2__add.sql",
        "V10__more.sql",
        "V1__init.sql",
        "V1.2.3__patch.sql",
        "V1.10__later.sql",
        "V1_5__underscored.sql",
        "R__views.sql",
        "R__a_functions.sql",
        "U2__add.sql",
        "beforeMigrate.sql",
        "README.md",
    ] {
        write(d.path(), f, "SELECT 1;");
    }
    write(d.path(), "V10__more.sql.conf", "executeInTransaction=false\n");
    let found = discover_all(d.path(), None).unwrap();
    assert_eq!(found.layout, Layout::Flyway);
    assert_eq!(
        names(&found.migrations),
        vec![
            "V1__init.sql",
            "V1.2.3__patch.sql",
            "V1_5__underscored.sql",
            "V1.10__later.sql",
            "V2__add.sql",
            "V10__more.sql",
            "R__a_functions.sql",
            "R__views.sql"
        ]
    );
    let more = &found.migrations[5];
    assert!(more.declared_no_transaction);
    let views = &found.migrations[7];
    assert!(views.repeatable);
    assert_eq!(views.version, "R__views");
    assert_eq!(views.name, "views");
    let reasons: Vec<&LeftOutReason> = found.left_out.iter().map(|l| &l.reason).collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons.contains(&&LeftOutReason::Undo));
}

#[test]
fn pop_keeps_postgres_and_generic_files() {
    let d = tempfile::tempdir().unwrap();
    for f in [
        "20210101000001_init.up.sql",
        "20210101000001_init.down.sql",
        "20210101000002_users.up.sql",
        "20210101000002_users.postgres.up.sql",
        "20210101000002_users.mysql.up.sql",
        "20210101000002_users.sqlite3.up.sql",
        "20210101000002_users.cockroach.up.sql",
        "20210101000003_index.postgresql.autocommit.up.sql",
        "20210101000003_index.mysql.autocommit.up.sql",
        "20210101000004_only_mysql.mysql.up.sql",
        "20210101000005_fizz.up.fizz",
    ] {
        write(d.path(), f, "SELECT 1;");
    }
    let found = discover_all(d.path(), None).unwrap();
    assert_eq!(found.layout, Layout::Pop);
    assert_eq!(
        names(&found.migrations),
        vec![
            "20210101000001_init.up.sql",
            "20210101000002_users.postgres.up.sql",
            "20210101000003_index.postgresql.autocommit.up.sql"
        ]
    );
    assert!(found.migrations[2].declared_no_transaction);
    assert!(!found.migrations[1].declared_no_transaction);
    let count = |r: &dyn Fn(&LeftOutReason) -> bool| found.left_out.iter().filter(|l| r(&l.reason)).count();
    assert_eq!(count(&|r| matches!(r, LeftOutReason::OtherDialect(_))), 5);
    assert_eq!(count(&|r| matches!(r, LeftOutReason::Superseded(_))), 1);
    assert_eq!(count(&|r| *r == LeftOutReason::Down), 1);
    assert_eq!(count(&|r| *r == LeftOutReason::Fizz), 1);
}

#[test]
fn sections_and_goose_go_files() {
    let g = tempfile::tempdir().unwrap();
    write(
        g.path(),
        "20240101_a.sql",
        "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Down\nDROP TABLE a;\n",
    );
    write(g.path(), "20240102_b.go", "package migrations");
    let found = discover_all(g.path(), None).unwrap();
    assert_eq!(found.layout, Layout::Goose);
    assert_eq!(found.left_out[0].reason, LeftOutReason::GoMigration);
    let text = "-- migrate:up\nCREATE TABLE a (id int);\n\n-- migrate:down\nDROP TABLE a;\n";
    let s = forward_sections(text).unwrap();
    assert_eq!(s.len(), 1);
    assert!(text[s[0].clone()].contains("CREATE TABLE"));
    assert!(!text[s[0].clone()].contains("DROP"));
}

#[test]
fn numbers_that_are_not_zero_padded_sort_as_numbers() {
    let d = tempfile::tempdir().unwrap();
    for f in ["9_nine.sql", "10_ten.sql", "100_hundred.sql", "1_one.sql"] {
        write(d.path(), f, "SELECT 1;");
    }
    for layout in [Layout::Native, Layout::Sqlx, Layout::Goose] {
        let ms = discover(d.path(), Some(layout)).unwrap().1;
        assert_eq!(
            names(&ms),
            vec!["1_one.sql", "9_nine.sql", "10_ten.sql", "100_hundred.sql"],
            "{layout:?}"
        );
    }
    // dbmate applies files in the order of their names.
    let ms = discover(d.path(), Some(Layout::Dbmate)).unwrap().1;
    assert_eq!(names(&ms), vec!["100_hundred.sql", "10_ten.sql", "1_one.sql", "9_nine.sql"]);
}

#[test]
fn unusual_file_names_keep_their_names() {
    let d = tempfile::tempdir().unwrap();
    for f in ["0001_crème brûlée.sql", "0002_#hash tag.sql"] {
        write(d.path(), f, "SELECT 1;");
    }
    let ms = discover(d.path(), None).unwrap().1;
    assert_eq!(names(&ms), vec!["0001_crème brûlée.sql", "0002_#hash tag.sql"]);
}
