//! libpq's files: the password file (`~/.pgpass`, `PGPASSFILE`) and the
//! connection service files (`~/.pg_service.conf`, `PGSERVICEFILE`, then
//! `PGSYSCONFDIR/pg_service.conf`).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::params::{self, Params};

/// libpq's compiled-in default socket directory on Debian and Ubuntu.
pub const DEBIAN_SOCKET_DIR: &str = "/var/run/postgresql";
/// The system service file's folder when `PGSYSCONFDIR` is not set (Debian's).
const DEFAULT_SYSCONFDIR: &str = "/etc/postgresql-common";

/// One lookup of a password in the password file.
pub struct PassLookup<'a> {
    /// The host as given (a name, an address or a socket folder); None (the
    /// default socket folder) and Debian's socket folder match `localhost`
    /// lines, as in libpq.
    pub host: Option<&'a str>,
    pub port: u16,
    pub dbname: &'a str,
    pub user: &'a str,
}

/// What reading the password file found.
#[derive(Debug, Default)]
pub struct PassFound {
    pub password: Option<String>,
    /// A warning libpq would print (the file is group- or world-readable, or
    /// not a plain file); the file was then not used.
    pub warning: Option<String>,
}

/// Looks a password up in `path`. A missing file finds nothing, silently.
pub fn password_from_file(path: &Path, want: &PassLookup) -> PassFound {
    let Ok(meta) = std::fs::metadata(path) else {
        return PassFound::default();
    };
    if !meta.is_file() {
        return PassFound {
            password: None,
            warning: Some(format!("password file \"{}\" is not a plain file", path.display())),
        };
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return PassFound {
            password: None,
            warning: Some(format!(
                "password file \"{}\" has group or world access; permissions should be u=rw (0600) or less",
                path.display()
            )),
        };
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return PassFound::default();
    };
    let host = match want.host {
        None | Some("") => "localhost",
        Some(DEBIAN_SOCKET_DIR) => "localhost",
        Some(h) => h,
    };
    let port = want.port.to_string();
    let wanted = [host, port.as_str(), want.dbname, want.user];
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields = split_pgpass(line);
        if fields.len() < 5 {
            continue;
        }
        let matches = wanted.iter().zip(&fields).all(|(want, (field, star))| *star || field == want);
        if matches {
            // As in libpq, the password ends at the next unescaped colon.
            return PassFound {
                password: Some(fields[4].0.clone()),
                warning: None,
            };
        }
    }
    PassFound::default()
}

/// Splits a password file line on unescaped `:`, undoing `\:` and `\\`.
/// Each field comes with whether it is the wildcard `*`.
fn split_pgpass(line: &str) -> Vec<(String, bool)> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut escaped_any = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                escaped_any = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ':' => {
                let star = cur == "*" && !escaped_any;
                fields.push((std::mem::take(&mut cur), star));
                escaped_any = false;
            }
            c => cur.push(c),
        }
    }
    fields.push((cur, false));
    fields
}

/// The service files to search, in order: the user's file, then the
/// system's. `user_file` is `servicefile`/`PGSERVICEFILE` when given.
pub fn service_files(user_file: Option<PathBuf>, home: Option<&Path>, sysconfdir: Option<String>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    match user_file {
        Some(f) => files.push(f),
        None => {
            if let Some(h) = home {
                files.push(h.join(".pg_service.conf"));
            }
        }
    }
    files.push(PathBuf::from(sysconfdir.unwrap_or_else(|| DEFAULT_SYSCONFDIR.into())).join("pg_service.conf"));
    files
}

/// The parameters of service `name`: from the first file that defines it.
/// `Ok(None)` when no file does.
pub fn find_service(files: &[PathBuf], name: &str) -> Result<Option<Params>, String> {
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        if let Some(p) = service_in(&text, file, name)? {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

fn service_in(text: &str, file: &Path, name: &str) -> Result<Option<Params>, String> {
    let mut current: Option<String> = None;
    let mut found: Option<Params> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = || format!("service file \"{}\", line {}", file.display(), i + 1);
        if let Some(section) = line.strip_prefix('[') {
            let section = section
                .strip_suffix(']')
                .ok_or_else(|| format!("syntax error in {}: a section header ends with ]", at()))?;
            if found.is_some() {
                // The wanted section is complete.
                break;
            }
            current = Some(section.trim().to_string());
            if section.trim() == name {
                found = Some(Params::default());
            }
            continue;
        }
        let Some(params) = found.as_mut().filter(|_| current.as_deref() == Some(name)) else {
            continue;
        };
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("syntax error in {}: expected key=value", at()))?;
        let key = key.trim();
        if key == "service" {
            return Err(format!("nested service specifications not supported in {}", at()));
        }
        params.set(key, value.trim());
        params::check_keywords(params).map_err(|e| format!("{e} in {}", at()))?;
    }
    Ok(found)
}

/// The owner-only check libpq makes on a private key file: 0600 or less when
/// the current user owns it, 0640 or less when root does.
pub fn check_key_permissions(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("could not open private key file \"{}\": {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("private key file \"{}\" is not a regular file", path.display()));
    }
    let mode = meta.permissions().mode();
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let too_open = if meta.uid() == me {
        mode & 0o077 != 0
    } else if meta.uid() == 0 {
        mode & 0o037 != 0
    } else {
        false
    };
    if too_open {
        return Err(format!(
            "private key file \"{}\" has group or world access; file must have permissions u=rw (0600) or less if owned by \
             the current user, or permissions u=rw,g=r (0640) or less if owned by root",
            path.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    fn lookup<'a>(host: Option<&'a str>, port: u16, dbname: &'a str, user: &'a str) -> PassLookup<'a> {
        PassLookup { host, port, dbname, user }
    }

    #[test]
    fn pgpass_wildcards_escapes_and_localhost() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "pgpass",
            "# comment\n\
             db.example:5432:orbis:alice:first\n\
             *:6432:*:bob:p\\:w\\\\x\n\
             localhost:*:*:carol:sock\n\
             h\\:odd:*:*:*:colon-host\n\
             *:*:*:*:any:with:colons\n",
            0o600,
        );
        let pw = |l: PassLookup| password_from_file(&p, &l).password;
        assert_eq!(pw(lookup(Some("db.example"), 5432, "orbis", "alice")).as_deref(), Some("first"));
        assert_eq!(pw(lookup(Some("x"), 6432, "y", "bob")).as_deref(), Some("p:w\\x"));
        assert_eq!(pw(lookup(None, 5432, "d", "carol")).as_deref(), Some("sock"));
        assert_eq!(pw(lookup(Some(DEBIAN_SOCKET_DIR), 5432, "d", "carol")).as_deref(), Some("sock"));
        assert_eq!(pw(lookup(Some("/tmp/other"), 5432, "d", "carol")).as_deref(), Some("any"));
        assert_eq!(pw(lookup(Some("h:odd"), 1, "d", "u")).as_deref(), Some("colon-host"));
    }

    #[test]
    fn pgpass_open_to_others_is_skipped_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "pgpass", "*:*:*:*:secret\n", 0o644);
        let found = password_from_file(&p, &lookup(Some("h"), 5432, "d", "u"));
        assert_eq!(found.password, None);
        let w = found.warning.unwrap();
        assert!(w.contains("group or world access") && !w.contains("secret"), "{w}");
        let missing = password_from_file(&dir.path().join("none"), &lookup(Some("h"), 5432, "d", "u"));
        assert!(missing.password.is_none() && missing.warning.is_none());
    }

    #[test]
    fn service_sections_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(
            dir.path(),
            "svc",
            "# services\n[other]\nhost=nope\n\n[orbis]\nhost = db.example\nport=6432\n dbname=orbis\n[after]\nhost=x\n",
            0o644,
        );
        let p = find_service(std::slice::from_ref(&f), "orbis").unwrap().unwrap();
        assert_eq!(p.get("host"), Some("db.example"));
        assert_eq!(p.get("port"), Some("6432"));
        assert_eq!(p.get("dbname"), Some("orbis"));
        assert!(find_service(std::slice::from_ref(&f), "missing").unwrap().is_none());
        let bad = write(dir.path(), "bad", "[s]\nhots=x\n", 0o644);
        let e = find_service(&[bad], "s").unwrap_err();
        assert!(e.contains("invalid connection option \"hots\"") && e.contains("line 2"), "{e}");
        let nested = write(dir.path(), "nested", "[s]\nservice=t\n", 0o644);
        assert!(find_service(&[nested], "s").unwrap_err().contains("nested"));
    }

    #[test]
    fn private_keys_must_be_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let k = write(dir.path(), "k", "key", 0o644);
        assert!(check_key_permissions(&k).unwrap_err().contains("group or world access"));
        std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(check_key_permissions(&k).is_ok());
    }
}
