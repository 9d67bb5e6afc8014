//! Finding PostgreSQL server binaries (initdb and postgres) for throwaway
//! clusters: any major ([`find_bindir`]), or one major
//! ([`find_bindir_for`]: drift replays a tenant on a scratch cluster of the
//! tenant's own major).
//!
//! The places looked at, in order: `STRATA_PG_BINDIR`, `pg_config --bindir`,
//! `/usr/lib/postgresql/<major>/bin` (Debian's layout), the cache that
//! `scripts/pg-binaries` fills (`$STRATA_PG_CACHE`,
//! `/var/cache/strata/postgresql`, `~/.cache/strata/postgresql`: one
//! `<name>/bin` per entry) and `PATH`. A folder's major is what its
//! `postgres --version` prints.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{Error, Result};

pub(crate) const INSTALL_HINT: &str = "install them with `apt-get install -y postgresql` (or point STRATA_PG_BINDIR at their folder)";

/// Whether a folder holds the server binaries a cluster needs.
pub(crate) fn has_server(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("postgres").is_file()
}

/// The major and full version a folder's `postgres --version` prints
/// (`postgres (PostgreSQL) 16.4 (Debian 16.4-1)` → 16, "16.4").
pub fn major_of(dir: &Path) -> Option<(u32, String)> {
    let out = Command::new(dir.join("postgres"))
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    parse_version(&String::from_utf8_lossy(&out.stdout))
}

fn parse_version(text: &str) -> Option<(u32, String)> {
    let version = text.split("(PostgreSQL)").nth(1)?.split_whitespace().next()?.to_string();
    let major = version.split(['.', 'b', 'r', 'd']).next()?.parse().ok()?;
    Some((major, version))
}

/// The cache folders of `scripts/pg-binaries`, most specific first.
pub fn cache_roots() -> Vec<PathBuf> {
    let mut roots = Vec::new();
    if let Some(dir) = std::env::var_os("STRATA_PG_CACHE").filter(|d| !d.is_empty()) {
        roots.push(PathBuf::from(dir));
    }
    roots.push(PathBuf::from("/var/cache/strata/postgresql"));
    let cache_home = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    if let Some(home) = cache_home {
        roots.push(home.join("strata/postgresql"));
    }
    roots
}

/// Numbered subfolders `<root>/<n><suffix>`, highest number first.
fn numbered(root: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n: u32 = e.file_name().to_str()?.parse().ok()?;
            Some((n, e.path().join(suffix)))
        })
        .collect();
    found.sort();
    found.into_iter().rev().map(|(_, p)| p).collect()
}

/// Every folder that may hold server binaries, in the order of the module doc
/// (`STRATA_PG_BINDIR` excluded: callers treat it first and strictly).
fn candidates() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").stderr(Stdio::null()).output() {
        if out.status.success() {
            dirs.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        }
    }
    dirs.extend(numbered(Path::new("/usr/lib/postgresql"), "bin"));
    for root in cache_roots() {
        dirs.extend(numbered(&root, "bin"));
        // Named entries (`vector`: a server with pgvector).
        let mut named: Vec<PathBuf> = std::fs::read_dir(&root)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.parse::<u32>().is_err() && !n.starts_with('.'))
            })
            .map(|e| e.path().join("bin"))
            .collect();
        named.sort();
        dirs.extend(named);
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.retain(|d| has_server(d));
    dirs.dedup();
    dirs
}

fn env_bindir() -> Option<PathBuf> {
    std::env::var_os("STRATA_PG_BINDIR").filter(|d| !d.is_empty()).map(PathBuf::from)
}

/// The folder holding initdb and postgres: `STRATA_PG_BINDIR`, else
/// `pg_config --bindir`, else the newest `/usr/lib/postgresql/<v>/bin`,
/// else the newest major of the cache, else `PATH`.
pub fn find_bindir() -> Result<PathBuf> {
    if let Some(dir) = env_bindir() {
        if has_server(&dir) {
            return Ok(dir);
        }
        return Err(Error::Cluster(format!(
            "STRATA_PG_BINDIR={} holds no initdb and postgres binaries: {INSTALL_HINT}",
            dir.display()
        )));
    }
    candidates()
        .into_iter()
        .next()
        .ok_or_else(|| Error::Cluster(format!("PostgreSQL server binaries (initdb, postgres) not found: {INSTALL_HINT}")))
}

/// The folder of server binaries of PostgreSQL `major` (see the module doc
/// for where it looks). `STRATA_PG_BINDIR` is used only when it is of that
/// major.
pub fn find_bindir_for(major: u32) -> Result<PathBuf> {
    let env = env_bindir().filter(|d| has_server(d));
    let mut seen: Vec<String> = Vec::new();
    for dir in env.into_iter().chain(candidates()) {
        match major_of(&dir) {
            Some((m, _)) if m == major => return Ok(dir),
            Some((m, _)) => seen.push(format!("{} ({m})", dir.display())),
            None => seen.push(format!("{} (does not run)", dir.display())),
        }
    }
    let found = if seen.is_empty() {
        "none found".to_string()
    } else {
        format!("found only {}", seen.join(", "))
    };
    let cache = cache_roots().iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ");
    Err(Error::Cluster(format!(
        "no PostgreSQL {major} server binaries (initdb, postgres) in STRATA_PG_BINDIR, pg_config, \
         /usr/lib/postgresql/{major}/bin, the cache ({cache}) or PATH ({found}): install them \
         (`apt-get install -y postgresql-{major}` from apt.postgresql.org, or `scripts/pg-binaries {major}` \
         of strata's repository) or point STRATA_PG_BINDIR at their folder"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_as_servers_print_them() {
        assert_eq!(parse_version("postgres (PostgreSQL) 18.4\n"), Some((18, "18.4".into())));
        assert_eq!(
            parse_version("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n"),
            Some((15, "15.18".into()))
        );
        assert_eq!(parse_version("postgres (PostgreSQL) 19beta1\n"), Some((19, "19beta1".into())));
        assert_eq!(parse_version("postgres (PostgreSQL) 9.6.24\n"), Some((9, "9.6.24".into())));
        assert_eq!(parse_version("something else"), None);
    }

    #[test]
    fn missing_binaries_say_how_to_install_them() {
        let empty = tempfile::tempdir().unwrap();
        // Only this module reads these variables in the unit tests.
        std::env::set_var("STRATA_PG_BINDIR", empty.path());
        let err = find_bindir().unwrap_err().to_string();
        std::env::remove_var("STRATA_PG_BINDIR");
        assert!(err.contains("apt-get install -y postgresql"), "{err}");
        // No server of a major that does not exist: the message says where it looked.
        let err = find_bindir_for(99).unwrap_err().to_string();
        assert!(err.contains("no PostgreSQL 99 server binaries"), "{err}");
        assert!(err.contains("/usr/lib/postgresql/99/bin"), "{err}");
        assert!(err.contains("apt-get install -y postgresql-99"), "{err}");
    }
}
