//! gobuffalo/pop and ory/popx migration folders: one folder for every
//! database, `<version>_<name>[.<dialect>][.autocommit].(up|down).(sql|fizz)`.
//!
//! As popx does for a PostgreSQL connection: files without a dialect apply
//! to every database, PostgreSQL files (`postgres`, `postgresql`, `pg`,
//! `pgx`) to PostgreSQL only, and a PostgreSQL file replaces the generic file
//! of the same version. `.autocommit` files run outside a transaction. Other
//! dialects, down files and fizz files are left out.

use std::path::Path;

use super::discovery::{file_name, LeftOut, LeftOutReason, Migration};
use super::Layout;
use crate::error::Result;

/// One pop file name, parsed (popx's `^(\d+)_([^.]+)(\.[a-z0-9]+)?(\.autocommit)?\.(up|down)\.(sql|fizz)$`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PopName<'a> {
    pub version: &'a str,
    pub name: &'a str,
    /// The canonical dialect, `None` for every database.
    pub dialect: Option<String>,
    pub autocommit: bool,
    pub up: bool,
    pub fizz: bool,
}

/// pop's canonical name of a dialect (`CanonicalDialect` and its synonyms).
fn canonical(dialect: &str) -> String {
    match dialect {
        "postgres" | "postgresql" | "pg" | "pgx" => "postgres",
        "cockroach" | "cockroachdb" | "crdb" => "cockroach",
        "mysql" | "mariadb" => "mysql",
        "sqlite" | "sqlite3" => "sqlite3",
        other => other,
    }
    .to_string()
}

pub(crate) fn parse(file: &str) -> Option<PopName<'_>> {
    let (rest, fizz) = if let Some(r) = file.strip_suffix(".sql") {
        (r, false)
    } else {
        (file.strip_suffix(".fizz")?, true)
    };
    let (rest, up) = if let Some(r) = rest.strip_suffix(".up") {
        (r, true)
    } else {
        (rest.strip_suffix(".down")?, false)
    };
    let (rest, autocommit) = match rest.strip_suffix(".autocommit") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let (version, after) = rest.split_once('_')?;
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (name, dialect) = match after.split_once('.') {
        None => (after, None),
        Some((name, d)) if !d.is_empty() && d.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) => (name, Some(d)),
        Some(_) => return None,
    };
    if name.is_empty() {
        return None;
    }
    Some(PopName {
        version,
        name,
        dialect: dialect.map(canonical),
        autocommit,
        up,
        fizz,
    })
}

/// What one file of a pop folder is.
pub(crate) enum Outcome {
    Migration(Box<Migration>),
    LeftOut(LeftOut),
}

pub(crate) fn file(dir: &Path, path: &Path, file: &str) -> Result<Outcome> {
    let rel = super::display_path(dir, path);
    let leave = |reason| Ok(Outcome::LeftOut(LeftOut { rel: rel.clone(), reason }));
    let Some(p) = parse(file) else {
        return if file.ends_with(".sql") {
            leave(LeftOutReason::NotAMigrationName("<version>_<name>[.<dialect>].up.sql".into()))
        } else {
            leave(LeftOutReason::NotSql)
        };
    };
    if !p.up {
        return leave(LeftOutReason::Down);
    }
    match p.dialect.as_deref() {
        None | Some("postgres") => {}
        Some(other) => return leave(LeftOutReason::OtherDialect(other.to_string())),
    }
    if p.fizz {
        return leave(LeftOutReason::Fizz);
    }
    Ok(Outcome::Migration(Box::new(Migration {
        path: path.to_path_buf(),
        rel: rel.clone(),
        version: p.version.to_string(),
        name: p.name.to_string(),
        layout: Layout::Pop,
        repeatable: false,
        declared_no_transaction: p.autocommit,
    })))
}

/// Drops the generic migration of a version that has a PostgreSQL file.
pub(crate) fn prefer_postgres(migrations: &mut Vec<Migration>, left_out: &mut Vec<LeftOut>) {
    let specific: Vec<(String, String)> = migrations
        .iter()
        .filter(|m| parse(&file_name(&m.path)).is_some_and(|p| p.dialect.is_some()))
        .map(|m| (m.version.clone(), m.rel.clone()))
        .collect();
    migrations.retain(|m| {
        let generic = parse(&file_name(&m.path)).is_some_and(|p| p.dialect.is_none());
        match specific.iter().find(|(v, _)| *v == m.version) {
            Some((_, by)) if generic => {
                left_out.push(LeftOut {
                    rel: m.rel.clone(),
                    reason: LeftOutReason::Superseded(by.clone()),
                });
                false
            }
            _ => true,
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let p = parse("20210101000000_users.postgresql.autocommit.up.sql").unwrap();
        assert_eq!(
            p,
            PopName {
                version: "20210101000000",
                name: "users",
                dialect: Some("postgres".into()),
                autocommit: true,
                up: true,
                fizz: false
            }
        );
        assert_eq!(parse("1_a.up.sql").unwrap().dialect, None);
        assert_eq!(parse("1_a.sqlite.down.sql").unwrap().dialect.as_deref(), Some("sqlite3"));
        assert_eq!(parse("1_a.cockroach.up.sql").unwrap().dialect.as_deref(), Some("cockroach"));
        assert!(parse("1_a.up.fizz").unwrap().fizz);
        assert!(parse("a_b.up.sql").is_none());
        assert!(parse("1_b.sql").is_none());
        assert!(parse("1_.up.sql").is_none());
    }
}
