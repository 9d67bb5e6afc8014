//! Resolving a connection string into settings with libpq's precedence: a
//! value in the string, else in its service (`service=` or `PGSERVICE`),
//! else the environment variable, else the default.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::files;
use super::params::{Params, KEYWORDS};

/// strata's default `connect_timeout` (libpq waits forever): a server that
/// does not answer fails the connection, it never hangs a run.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// strata's TCP keepalive defaults (libpq leaves the operating system's two
/// hours): a peer that vanished is noticed in about a minute.
const DEFAULT_KEEPALIVES_IDLE: Duration = Duration::from_secs(30);
const DEFAULT_KEEPALIVES_INTERVAL: Duration = Duration::from_secs(10);
const DEFAULT_KEEPALIVES_COUNT: u32 = 3;
/// strata's default `tcp_user_timeout`: data the server has not acknowledged
/// for this long ends the connection.
const DEFAULT_TCP_USER_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the process environment is read from (tests pass their own).
#[derive(Clone, Debug, Default)]
pub struct Env {
    /// None: the process environment.
    vars: Option<BTreeMap<String, String>>,
}

impl Env {
    pub fn process() -> Env {
        Env { vars: None }
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Env {
        Env {
            vars: Some(pairs.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
        }
    }

    pub fn var(&self, name: &str) -> Option<String> {
        match &self.vars {
            None => std::env::var(name).ok(),
            Some(v) => v.get(name).cloned(),
        }
    }

    /// `HOME`, else the home folder of the effective OS user.
    pub fn home(&self) -> Option<PathBuf> {
        match self.var("HOME").filter(|h| !h.is_empty()) {
            Some(h) => Some(PathBuf::from(h)),
            None if self.vars.is_none() => os_user().map(|(_, home)| home),
            None => None,
        }
    }
}

/// Name and home folder of the effective OS user.
fn os_user() -> Option<(String, PathBuf)> {
    // SAFETY: getpwuid_r writes into our buffer; we read the fields it set
    // before the buffer goes out of scope.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(libc::geteuid(), &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result);
        if rc != 0 || result.is_null() {
            return None;
        }
        let name = std::ffi::CStr::from_ptr(pwd.pw_name).to_string_lossy().into_owned();
        let home = std::ffi::CStr::from_ptr(pwd.pw_dir).to_string_lossy().into_owned();
        Some((name, PathBuf::from(home)))
    }
}

/// libpq's `sslmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    pub fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

/// The trusted roots for verifying the server's certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file: `sslrootcert`, else `~/.postgresql/root.crt`. When it
    /// exists, every sslmode that uses TLS verifies the chain (libpq's rule).
    File(PathBuf),
    /// `sslrootcert=system`: the operating system's store.
    System,
}

/// libpq's `target_session_attrs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionAttrs {
    Any,
    ReadWrite,
    ReadOnly,
    Primary,
    Standby,
    PreferStandby,
}

impl SessionAttrs {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionAttrs::Any => "any",
            SessionAttrs::ReadWrite => "read-write",
            SessionAttrs::ReadOnly => "read-only",
            SessionAttrs::Primary => "primary",
            SessionAttrs::Standby => "standby",
            SessionAttrs::PreferStandby => "prefer-standby",
        }
    }
}

/// libpq's `channel_binding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelBinding {
    Disable,
    Prefer,
    Require,
}

/// One server to try: a host name, address or socket folder, and a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSpec {
    /// The host name or socket folder; None when only `hostaddr` is given.
    pub host: Option<String>,
    pub hostaddr: Option<IpAddr>,
    pub port: u16,
    /// No host was given: the default socket folder.
    pub defaulted: bool,
}

impl HostSpec {
    /// A unix-domain socket folder (TLS is never used over those, as in libpq).
    pub fn is_unix(&self) -> bool {
        self.hostaddr.is_none() && self.host.as_deref().is_some_and(|h| h.starts_with('/') || h.starts_with('@'))
    }

    /// The name TLS verifies: the host, else the address.
    pub fn tls_name(&self) -> String {
        match (&self.host, &self.hostaddr) {
            (Some(h), _) => h.clone(),
            (None, Some(a)) => a.to_string(),
            (None, None) => String::new(),
        }
    }
}

impl fmt::Display for HostSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.host, &self.hostaddr) {
            (Some(h), Some(a)) => write!(f, "{h} ({a}):{}", self.port),
            (Some(h), None) => write!(f, "{h}:{}", self.port),
            (None, Some(a)) => write!(f, "{a}:{}", self.port),
            (None, None) => write!(f, "?:{}", self.port),
        }
    }
}

/// A password: never shown by Debug.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// TLS settings of one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    pub mode: SslMode,
    pub root: RootCert,
    /// Whether `sslrootcert` was given (an explicit file that is missing is
    /// then named in errors).
    pub root_explicit: bool,
    /// Client certificate and key (sent when the certificate file exists).
    pub cert: PathBuf,
    pub key: PathBuf,
    pub cert_explicit: bool,
    /// `sslcertmode=disable`: never send a client certificate.
    pub no_client_cert: bool,
    /// `sslnegotiation=direct` (PostgreSQL 17+): TLS without the SSLRequest.
    pub direct: bool,
    pub sni: bool,
    pub tls13_only: bool,
    pub tls12_only: bool,
    pub channel_binding: ChannelBinding,
}

/// Everything strata needs to connect, resolved.
#[derive(Clone, Debug)]
pub struct Settings {
    pub hosts: Vec<HostSpec>,
    pub user: String,
    /// From the string, the service or PGPASSWORD; else the password file
    /// is searched per host when connecting.
    pub password: Option<Password>,
    /// The connection string itself carried a password.
    pub password_in_string: bool,
    pub passfile: PathBuf,
    pub dbname: String,
    pub application_name: String,
    pub options: Option<String>,
    /// None: wait forever (`connect_timeout=0`).
    pub connect_timeout: Option<Duration>,
    pub session_attrs: SessionAttrs,
    pub load_balance: bool,
    pub keepalives: bool,
    pub keepalives_idle: Duration,
    pub keepalives_interval: Duration,
    pub keepalives_count: u32,
    pub tcp_user_timeout: Option<Duration>,
    pub tls: TlsSettings,
    /// `sslmode` was given (in the string, the service or PGSSLMODE).
    pub sslmode_explicit: bool,
}

/// Resolves parsed parameters: service file, environment, defaults.
pub fn resolve(mut params: Params, env: &Env, fallback_application_name: &str) -> Result<Settings, String> {
    let password_in_string = params.contains("password");
    let home = env.home();
    let service = params.get("service").map(str::to_string).or_else(|| env.var("PGSERVICE"));
    if let Some(name) = service.filter(|s| !s.is_empty()) {
        let user_file = params
            .get("servicefile")
            .map(PathBuf::from)
            .or_else(|| env.var("PGSERVICEFILE").map(PathBuf::from));
        let files = files::service_files(user_file, home.as_deref(), env.var("PGSYSCONFDIR"));
        let found = files::find_service(&files, &name)?.ok_or_else(|| {
            format!(
                "definition of service \"{name}\" not found (searched {})",
                files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
            )
        })?;
        for (k, v) in found.iter() {
            if !params.contains(k) {
                params.set(k, v);
            }
        }
    }
    for (key, var, _) in KEYWORDS {
        if let Some(var) = var {
            if !params.contains(key) {
                if let Some(v) = env.var(var) {
                    params.set(key, v);
                }
            }
        }
    }
    let get = |k: &str| params.get(k).filter(|v| !v.is_empty());

    let user = match get("user") {
        Some(u) => u.to_string(),
        None => match &env.vars {
            None => os_user().map(|(n, _)| n).unwrap_or_else(|| "postgres".into()),
            Some(_) => env.var("USER").unwrap_or_else(|| "postgres".into()),
        },
    };
    let dbname = get("dbname").unwrap_or(&user).to_string();
    let hosts = hosts(get("host"), get("hostaddr"), get("port"))?;
    let on_off = |k: &str, default: bool| -> Result<bool, String> {
        match get(k) {
            None => Ok(default),
            Some("1") => Ok(true),
            Some("0") => Ok(false),
            Some(v) => Err(format!("invalid {k} value: \"{v}\"")),
        }
    };
    let seconds = |k: &str| -> Result<Option<i64>, String> {
        get(k)
            .map(|v| {
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| format!("invalid integer value \"{v}\" for connection option \"{k}\""))
            })
            .transpose()
    };
    let connect_timeout = match seconds("connect_timeout")? {
        None => Some(DEFAULT_CONNECT_TIMEOUT),
        Some(s) if s <= 0 => None,
        // libpq's minimum.
        Some(s) => Some(Duration::from_secs(s.max(2) as u64)),
    };
    let positive = |k: &str, default: Duration| -> Result<Duration, String> {
        Ok(seconds(k)?.filter(|s| *s > 0).map_or(default, |s| Duration::from_secs(s as u64)))
    };
    let keepalives_count = match seconds("keepalives_count")? {
        Some(n) if n > 0 => n as u32,
        _ => DEFAULT_KEEPALIVES_COUNT,
    };
    let tcp_user_timeout = match seconds("tcp_user_timeout")? {
        None => Some(DEFAULT_TCP_USER_TIMEOUT),
        Some(ms) if ms <= 0 => None,
        Some(ms) => Some(Duration::from_millis(ms as u64)),
    };
    let session_attrs = match get("target_session_attrs").unwrap_or("any") {
        "any" => SessionAttrs::Any,
        "read-write" => SessionAttrs::ReadWrite,
        "read-only" => SessionAttrs::ReadOnly,
        "primary" => SessionAttrs::Primary,
        "standby" => SessionAttrs::Standby,
        "prefer-standby" => SessionAttrs::PreferStandby,
        v => return Err(format!("invalid target_session_attrs value: \"{v}\"")),
    };
    let load_balance = match get("load_balance_hosts").unwrap_or("disable") {
        "disable" => false,
        "random" => true,
        v => return Err(format!("invalid load_balance_hosts value: \"{v}\"")),
    };
    match get("client_encoding") {
        None | Some("UTF8" | "utf8" | "UTF-8" | "utf-8" | "auto") => {}
        Some(v) => return Err(format!("client_encoding \"{v}\" is not supported: strata speaks UTF8")),
    }
    match get("gssencmode") {
        None | Some("disable" | "prefer" | "allow") => {}
        Some("require") => return Err("gssencmode=require is not supported by strata (it does not use GSSAPI)".into()),
        Some(v) => return Err(format!("invalid gssencmode value: \"{v}\"")),
    }
    let application_name = get("application_name")
        .or(get("fallback_application_name"))
        .unwrap_or(fallback_application_name)
        .to_string();
    let passfile = match get("passfile") {
        Some(p) => PathBuf::from(p),
        None => home.as_deref().unwrap_or(Path::new("")).join(".pgpass"),
    };
    let tls = tls_settings(&get, home.as_deref())?;
    Ok(Settings {
        hosts,
        user,
        // An empty password is none: the password file is searched (libpq).
        password: get("password").map(|p| Password(p.to_string())),
        password_in_string,
        passfile,
        dbname,
        application_name,
        options: get("options").map(str::to_string),
        connect_timeout,
        session_attrs,
        load_balance,
        keepalives: on_off("keepalives", true)?,
        keepalives_idle: positive("keepalives_idle", DEFAULT_KEEPALIVES_IDLE)?,
        keepalives_interval: positive("keepalives_interval", DEFAULT_KEEPALIVES_INTERVAL)?,
        keepalives_count,
        tcp_user_timeout,
        sslmode_explicit: get("sslmode").is_some(),
        tls,
    })
}

fn tls_settings<'a>(get: &dyn Fn(&str) -> Option<&'a str>, home: Option<&Path>) -> Result<TlsSettings, String> {
    let dot = home.unwrap_or(Path::new("")).join(".postgresql");
    let root_explicit = get("sslrootcert").is_some();
    let root = match get("sslrootcert") {
        Some("system") => RootCert::System,
        Some(p) => RootCert::File(PathBuf::from(p)),
        None => RootCert::File(dot.join("root.crt")),
    };
    let mode = match get("sslmode") {
        Some(v) => SslMode::parse(v).ok_or_else(|| format!("invalid sslmode value: \"{v}\""))?,
        // libpq: the system store implies host name checks.
        None if root == RootCert::System => SslMode::VerifyFull,
        None => SslMode::Prefer,
    };
    if root == RootCert::System && mode != SslMode::VerifyFull {
        return Err(format!(
            "weak sslmode \"{}\" may not be used with sslrootcert=system (use \"verify-full\")",
            mode.as_str()
        ));
    }
    let direct = match get("sslnegotiation").unwrap_or("postgres") {
        "postgres" => false,
        "direct" => true,
        v => return Err(format!("invalid sslnegotiation value: \"{v}\"")),
    };
    if direct && mode < SslMode::Require {
        return Err(format!(
            "weak sslmode \"{}\" may not be used with sslnegotiation=direct (use \"require\", \"verify-ca\", or \"verify-full\")",
            mode.as_str()
        ));
    }
    let no_client_cert = match get("sslcertmode").unwrap_or("allow") {
        "disable" => true,
        "allow" => false,
        "require" => return Err("sslcertmode=require is not supported by strata".into()),
        v => return Err(format!("invalid sslcertmode value: \"{v}\"")),
    };
    let version = |k: &str| -> Result<Option<u8>, String> {
        match get(k) {
            None => Ok(None),
            Some("TLSv1" | "TLSv1.1") if k == "ssl_min_protocol_version" => Ok(Some(2)),
            Some("TLSv1.2") => Ok(Some(2)),
            Some("TLSv1.3") => Ok(Some(3)),
            Some(v) => Err(format!("invalid {k} value: \"{v}\" (strata speaks TLSv1.2 and TLSv1.3)")),
        }
    };
    let (min, max) = (version("ssl_min_protocol_version")?, version("ssl_max_protocol_version")?);
    if let (Some(a), Some(b)) = (min, max) {
        if a > b {
            return Err("invalid SSL protocol version range".into());
        }
    }
    let channel_binding = match get("channel_binding").unwrap_or("prefer") {
        "disable" => ChannelBinding::Disable,
        "prefer" => ChannelBinding::Prefer,
        "require" => ChannelBinding::Require,
        v => return Err(format!("invalid channel_binding value: \"{v}\"")),
    };
    Ok(TlsSettings {
        mode,
        root,
        root_explicit,
        cert: get("sslcert").map_or_else(|| dot.join("postgresql.crt"), PathBuf::from),
        key: get("sslkey").map_or_else(|| dot.join("postgresql.key"), PathBuf::from),
        cert_explicit: get("sslcert").is_some(),
        no_client_cert,
        direct,
        sni: get("sslsni") != Some("0"),
        tls13_only: min == Some(3),
        tls12_only: max == Some(2),
        channel_binding,
    })
}

/// The default socket folder: Debian's when it exists, else upstream's /tmp.
fn default_socket_dir() -> String {
    if Path::new(files::DEBIAN_SOCKET_DIR).is_dir() {
        files::DEBIAN_SOCKET_DIR.into()
    } else {
        "/tmp".into()
    }
}

fn hosts(host: Option<&str>, hostaddr: Option<&str>, port: Option<&str>) -> Result<Vec<HostSpec>, String> {
    let names: Vec<&str> = host.map(|h| h.split(',').map(str::trim).collect()).unwrap_or_default();
    let addrs: Vec<Option<IpAddr>> = hostaddr
        .map(|h| {
            h.split(',')
                .map(|a| {
                    let a = a.trim();
                    if a.is_empty() {
                        Ok(None)
                    } else {
                        a.parse::<IpAddr>()
                            .map(Some)
                            .map_err(|_| format!("could not parse network address \"{a}\""))
                    }
                })
                .collect::<Result<_, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    if !names.is_empty() && !addrs.is_empty() && names.len() != addrs.len() {
        return Err(format!(
            "could not match {} host names to {} hostaddr values",
            names.len(),
            addrs.len()
        ));
    }
    let count = names.len().max(addrs.len()).max(1);
    let ports: Vec<u16> = match port {
        None => vec![5432],
        Some(p) => p
            .split(',')
            .map(|p| {
                let p = p.trim();
                if p.is_empty() {
                    Ok(5432)
                } else {
                    p.parse::<u16>()
                        .ok()
                        .filter(|p| *p > 0)
                        .ok_or_else(|| format!("invalid port number: \"{p}\""))
                }
            })
            .collect::<Result<_, _>>()?,
    };
    if ports.len() != 1 && ports.len() != count {
        return Err(format!("could not match {} port numbers to {count} hosts", ports.len()));
    }
    Ok((0..count)
        .map(|i| {
            let addr = addrs.get(i).copied().flatten();
            let name = names.get(i).filter(|n| !n.is_empty()).map(|n| n.to_string());
            let defaulted = name.is_none() && addr.is_none();
            HostSpec {
                host: if defaulted { Some(default_socket_dir()) } else { name },
                hostaddr: addr,
                port: if ports.len() == 1 { ports[0] } else { ports[i] },
                defaulted,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::params::parse;
    use super::*;

    fn resolve_in(text: &str, env: &[(&str, &str)]) -> Result<Settings, String> {
        resolve(parse(text)?, &Env::from_pairs(env.iter().copied()), "strata")
    }

    #[test]
    fn explicit_beats_environment_beats_defaults() {
        let env = [
            ("PGHOST", "envhost"),
            ("PGPORT", "6000"),
            ("PGUSER", "envuser"),
            ("PGPASSWORD", "envpw"),
            ("PGDATABASE", "envdb"),
            ("PGSSLMODE", "require"),
            ("PGAPPNAME", "envapp"),
            ("PGCONNECT_TIMEOUT", "3"),
            ("PGTARGETSESSIONATTRS", "read-write"),
            ("HOME", "/home/x"),
        ];
        let s = resolve_in("host=h port=7000 user=u dbname=d sslmode=disable", &env).unwrap();
        assert_eq!(s.hosts[0].host.as_deref(), Some("h"));
        assert_eq!(s.hosts[0].port, 7000);
        assert_eq!((s.user.as_str(), s.dbname.as_str()), ("u", "d"));
        assert_eq!(s.tls.mode, SslMode::Disable);
        assert_eq!(s.password, Some(Password("envpw".into())));
        assert!(!s.password_in_string);
        assert_eq!(s.application_name, "envapp");
        assert_eq!(s.connect_timeout, Some(Duration::from_secs(3)));
        assert_eq!(s.session_attrs, SessionAttrs::ReadWrite);
        let s = resolve_in("", &env).unwrap();
        assert_eq!(s.hosts[0].host.as_deref(), Some("envhost"));
        assert_eq!((s.hosts[0].port, s.user.as_str(), s.dbname.as_str()), (6000, "envuser", "envdb"));
        assert_eq!(s.tls.mode, SslMode::Require);
        assert_eq!(s.passfile, PathBuf::from("/home/x/.pgpass"));
        assert_eq!(s.tls.root, RootCert::File("/home/x/.postgresql/root.crt".into()));
        let s = resolve_in("", &[("USER", "me")]).unwrap();
        assert!(s.hosts[0].defaulted && s.hosts[0].is_unix());
        assert_eq!((s.user.as_str(), s.dbname.as_str(), s.hosts[0].port), ("me", "me", 5432));
        assert_eq!(s.tls.mode, SslMode::Prefer);
        assert_eq!(s.connect_timeout, Some(DEFAULT_CONNECT_TIMEOUT));
        assert_eq!(s.application_name, "strata");
    }

    #[test]
    fn service_file_sits_between_string_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("services");
        std::fs::write(&file, "[orbis]\nhost=svchost\nport=6432\nuser=svcuser\nsslmode=verify-full\n").unwrap();
        let f = file.to_str().unwrap();
        let env = [("PGSERVICEFILE", f), ("PGUSER", "envuser"), ("PGDATABASE", "envdb"), ("HOME", "/h")];
        let s = resolve_in("service=orbis port=7000", &env).unwrap();
        assert_eq!(s.hosts[0].host.as_deref(), Some("svchost"));
        assert_eq!(s.hosts[0].port, 7000);
        assert_eq!((s.user.as_str(), s.dbname.as_str()), ("svcuser", "envdb"));
        assert_eq!(s.tls.mode, SslMode::VerifyFull);
        let s = resolve_in("dbname=x", &[("PGSERVICE", "orbis"), ("PGSERVICEFILE", f)]).unwrap();
        assert_eq!(s.hosts[0].host.as_deref(), Some("svchost"));
        let e = resolve_in("service=nope", &[("PGSERVICEFILE", f), ("PGSYSCONFDIR", "/nonexistent")]).unwrap_err();
        assert!(e.contains("definition of service \"nope\" not found"), "{e}");
    }

    #[test]
    fn several_hosts_ports_and_addresses() {
        let s = resolve_in("host=a,b,/tmp/s port=1,2,3 target_session_attrs=read-write", &[]).unwrap();
        let shown: Vec<String> = s.hosts.iter().map(|h| h.to_string()).collect();
        assert_eq!(shown, vec!["a:1", "b:2", "/tmp/s:3"]);
        assert!(s.hosts[2].is_unix() && !s.hosts[0].is_unix());
        let s = resolve_in("hostaddr=127.0.0.1 port=5", &[]).unwrap();
        assert_eq!(s.hosts[0].tls_name(), "127.0.0.1");
        assert!(!s.hosts[0].is_unix());
        assert!(resolve_in("host=a,b port=1,2,3", &[]).unwrap_err().contains("port numbers"));
        assert!(resolve_in("host=a,b hostaddr=1.2.3.4", &[]).unwrap_err().contains("hostaddr"));
        assert!(resolve_in("hostaddr=nope", &[]).unwrap_err().contains("network address"));
    }

    #[test]
    fn tls_rules_of_libpq() {
        let s = resolve_in("sslrootcert=system", &[]).unwrap();
        assert_eq!((s.tls.mode, &s.tls.root), (SslMode::VerifyFull, &RootCert::System));
        let e = resolve_in("sslrootcert=system sslmode=require", &[]).unwrap_err();
        assert!(e.contains("weak sslmode \"require\""), "{e}");
        let e = resolve_in("sslmode=prefer sslnegotiation=direct", &[]).unwrap_err();
        assert!(e.contains("sslnegotiation=direct"), "{e}");
        assert!(resolve_in("sslmode=verify", &[]).unwrap_err().contains("invalid sslmode"));
        let s = resolve_in("sslmode=verify-ca sslrootcert=/ca.pem sslcert=/c sslkey=/k", &[("HOME", "/h")]).unwrap();
        assert_eq!(s.tls.root, RootCert::File("/ca.pem".into()));
        assert!(s.tls.root_explicit && s.tls.cert_explicit);
        assert_eq!((s.tls.cert.as_path(), s.tls.key.as_path()), (Path::new("/c"), Path::new("/k")));
        let s = resolve_in("ssl_min_protocol_version=TLSv1.3 connect_timeout=1 tcp_user_timeout=0", &[]).unwrap();
        assert!(s.tls.tls13_only);
        assert_eq!(s.connect_timeout, Some(Duration::from_secs(2)));
        assert_eq!(s.tcp_user_timeout, None);
        assert_eq!(resolve_in("connect_timeout=0", &[]).unwrap().connect_timeout, None);
    }

    #[test]
    fn passwords_are_never_in_debug_output() {
        let s = resolve_in("password=hunter2 host=h", &[]).unwrap();
        assert!(s.password_in_string);
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
