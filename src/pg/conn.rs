//! Connection targets: `postgres://` URLs, libpq `key=value` strings and
//! `env:VAR` (the string is read from the environment at run time, which is
//! how tenants.toml names real credentials).
//!
//! A [`Target`] never shows its password: Display and Debug print the user,
//! host(s), port and database only, so targets can go into logs and errors.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;

use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls};

use super::{describe, Error, Result};

/// The application_name of every strata session (the lock-holder message
/// and pg_stat_activity show it).
pub const APPLICATION_NAME: &str = "strata";

/// A database to connect to, parsed and with its password hidden.
#[derive(Clone)]
pub struct Target {
    /// `env:VAR` when the string came from the environment (shown as is).
    origin: Option<String>,
    config: Config,
}

impl Target {
    /// Parses a URL, a key=value string or `env:VAR`.
    pub fn parse(spec: &str) -> Result<Target> {
        let spec = spec.trim();
        let (origin, text) = match spec.strip_prefix("env:") {
            Some(var) => {
                let value = std::env::var(var).map_err(|_| Error::EnvMissing {
                    var: var.to_string(),
                    spec: spec.to_string(),
                })?;
                (Some(spec.to_string()), value)
            }
            None => (None, spec.to_string()),
        };
        let mut config = Config::from_str(&text).map_err(|e| Error::BadTarget {
            shown: origin.clone().unwrap_or_else(|| scrub(&text)),
            message: e.to_string(),
        })?;
        if config.get_hosts().is_empty() {
            // libpq's default: PGHOST, else the local socket directory.
            config.host(std::env::var("PGHOST").as_deref().unwrap_or("/var/run/postgresql"));
        }
        if config.get_user().is_none() {
            let user = std::env::var("PGUSER")
                .or_else(|_| std::env::var("USER"))
                .unwrap_or_else(|_| "postgres".into());
            config.user(user);
        }
        Ok(Target { origin, config })
    }

    pub fn from_config(config: Config) -> Target {
        Target { origin: None, config }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn dbname(&self) -> &str {
        self.config.get_dbname().or(self.config.get_user()).unwrap_or("postgres")
    }

    /// The same server and credentials, another database.
    pub fn with_dbname(&self, dbname: &str) -> Target {
        let mut config = self.config.clone();
        config.dbname(dbname);
        Target { origin: None, config }
    }

    /// The server's address without the database (to group tenants by server).
    pub fn server_key(&self) -> String {
        format!("{}@{}", self.config.get_user().unwrap_or(""), self.hosts())
    }

    fn hosts(&self) -> String {
        let ports = self.config.get_ports();
        self.config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
                match h {
                    Host::Tcp(name) => format!("{name}:{port}"),
                    Host::Unix(path) => format!("{}:{port}", path.display()),
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let user = self.config.get_user().unwrap_or("");
        let shown = format!("{user}@{}/{}", self.hosts(), self.dbname());
        match &self.origin {
            Some(o) => write!(f, "{o} ({shown})"),
            None => f.write_str(&shown),
        }
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({self})")
    }
}

/// A connection string with any password replaced by `***` (for messages
/// about strings that did not even parse).
pub fn scrub(text: &str) -> String {
    static KV: OnceLock<regex::Regex> = OnceLock::new();
    static URL: OnceLock<regex::Regex> = OnceLock::new();
    let kv = KV.get_or_init(|| regex::Regex::new(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)").expect("valid regex"));
    let url = URL.get_or_init(|| regex::Regex::new(r"(://[^/@:]*):[^@/]*@").expect("valid regex"));
    let s = kv.replace_all(text, "${1}***");
    url.replace_all(&s, "${1}:***@").into_owned()
}

/// Connects (application_name `strata`, a 10 s connect timeout) and drives
/// the connection on the current tokio runtime.
pub async fn connect(target: &Target) -> Result<Client> {
    let mut config = target.config.clone();
    if config.get_application_name().is_none() {
        config.application_name(APPLICATION_NAME);
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    let (client, connection) = config.connect(NoTls).await.map_err(|e| Error::Connect {
        target: target.to_string(),
        message: describe(&e),
    })?;
    tokio::spawn(async move {
        // Errors surface on the client's next call.
        let _ = connection.await;
    });
    Ok(client)
}

/// Runs a query and wraps a failure with the target and what was being done.
pub fn sql_error(target: &Target, context: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> Error + '_ {
    let context = context.into();
    move |e| Error::Sql {
        target: target.to_string(),
        context,
        message: describe(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_password_is_never_shown() {
        let t = Target::parse("postgres://alice:s3cret@db.example:6432/orbis_gaku").unwrap();
        let shown = format!("{t} {t:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert_eq!(t.to_string(), "alice@db.example:6432/orbis_gaku");
    }

    #[test]
    fn key_value_unix_socket() {
        let t = Target::parse("host=/tmp/pg port=5433 user=postgres dbname=test_a password=hunter2").unwrap();
        assert_eq!(t.to_string(), "postgres@/tmp/pg:5433/test_a");
        assert_eq!(t.with_dbname("postgres").to_string(), "postgres@/tmp/pg:5433/postgres");
    }

    #[test]
    fn env_var_form() {
        std::env::set_var("STRATA_CONN_TEST_URL", "postgres://bob:pw@h/db");
        let t = Target::parse("env:STRATA_CONN_TEST_URL").unwrap();
        assert_eq!(t.to_string(), "env:STRATA_CONN_TEST_URL (bob@h:5432/db)");
        let err = Target::parse("env:STRATA_CONN_TEST_UNSET_VAR").unwrap_err().to_string();
        assert!(err.contains("STRATA_CONN_TEST_UNSET_VAR is not set"), "{err}");
    }

    #[test]
    fn scrub_hides_passwords() {
        assert_eq!(scrub("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(scrub("host=h password='a b' user=u"), "host=h password=*** user=u");
    }
}
