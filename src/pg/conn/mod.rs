//! Connection targets and connecting, the way libpq does.
//!
//! A target is a `postgres://` URI, a libpq `key=value` string, or `env:VAR`
//! (the string is read from the environment at run time, which is how
//! tenants.toml names real credentials). Unset parameters come from the
//! service file, then libpq's environment variables, then the defaults
//! ([`settings`]); passwords from the string, the service, `PGPASSWORD`, or
//! the password file per host ([`files`]). TLS follows libpq's `sslmode`
//! rules ([`tls`]); several hosts are tried in order, honouring
//! `target_session_attrs`.
//!
//! A [`Target`] never shows its password: Display and Debug print the user,
//! host(s), port and database only, so targets can go into logs and errors.

pub mod files;
pub mod params;
pub mod settings;
pub mod stream;
pub mod tls;

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, Connection, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use self::settings::{ChannelBinding, Env, HostSpec, RootCert, SessionAttrs, Settings, SslMode};
use self::stream::{Observed, RawSocket, Watch, Watched, WatchedTls};
use super::{describe, Error, Result};

/// The application_name of every strata session unless the target names
/// one (the lock-holder message and pg_stat_activity show it).
pub const APPLICATION_NAME: &str = "strata";

/// What strata knows of the connections made through a target (and its
/// clones): the reason the latest one was lost, and the process ids the
/// live ones announced.
#[derive(Default)]
struct Links {
    lost: Mutex<Option<String>>,
    live: Mutex<Vec<Weak<Observed>>>,
}

/// A database to connect to, resolved and with its password hidden.
#[derive(Clone)]
pub struct Target {
    /// `env:VAR` when the string came from the environment (shown as is).
    origin: Option<String>,
    settings: Arc<Settings>,
    /// See [`Target::with_answer_timeout`].
    answer_timeout: Option<Duration>,
    links: Arc<Links>,
    tls: Arc<OnceLock<std::result::Result<Arc<ClientConfig>, String>>>,
}

impl Target {
    /// Parses a URI, a key=value string or `env:VAR`, completed from the
    /// process environment and libpq's files.
    pub fn parse(spec: &str) -> Result<Target> {
        Target::parse_in(spec, &Env::process())
    }

    /// [`Target::parse`] with a given environment.
    pub fn parse_in(spec: &str, env: &Env) -> Result<Target> {
        let spec = spec.trim();
        let (origin, text) = match spec.strip_prefix("env:") {
            Some(var) => {
                let value = env.var(var).ok_or_else(|| Error::EnvMissing {
                    var: var.to_string(),
                    spec: spec.to_string(),
                })?;
                (Some(spec.to_string()), value)
            }
            None => (None, spec.to_string()),
        };
        let bad = |message: String| Error::BadTarget {
            shown: origin.clone().unwrap_or_else(|| scrub(&text)),
            message,
        };
        let params = params::parse(&text).map_err(bad)?;
        let settings = settings::resolve(params, env, APPLICATION_NAME).map_err(bad)?;
        Ok(Target {
            origin,
            settings: Arc::new(settings),
            answer_timeout: None,
            links: Arc::default(),
            tls: Arc::default(),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn dbname(&self) -> &str {
        &self.settings.dbname
    }

    pub fn user(&self) -> &str {
        &self.settings.user
    }

    /// Whether the connection string itself holds a password (one from
    /// PGPASSWORD or the password file does not count).
    pub fn password_in_string(&self) -> bool {
        self.settings.password_in_string
    }

    /// The same server and credentials, another database.
    pub fn with_dbname(&self, dbname: &str) -> Target {
        let mut settings = (*self.settings).clone();
        settings.dbname = dbname.to_string();
        Target {
            origin: None,
            settings: Arc::new(settings),
            answer_timeout: self.answer_timeout,
            links: Arc::default(),
            tls: self.tls.clone(),
        }
    }

    /// Connections made through the result fail when the server owes an
    /// answer and sends nothing for `limit` (a stalled server or proxy),
    /// instead of waiting for ever. Set it above the longest statement the
    /// connection may run (its statement_timeout).
    pub fn with_answer_timeout(&self, limit: Duration) -> Target {
        let mut t = self.clone();
        t.answer_timeout = Some(limit);
        t
    }

    /// The server's address without the database (to group tenants by server).
    pub fn server_key(&self) -> String {
        format!("{}@{}", self.settings.user, self.hosts())
    }

    fn hosts(&self) -> String {
        self.settings.hosts.iter().map(HostSpec::to_string).collect::<Vec<_>>().join(",")
    }

    /// Why the latest connection through this target (or a clone) was lost,
    /// if the server or the network ended it.
    pub fn lost_reason(&self) -> Option<String> {
        self.links.lost.lock().ok().and_then(|l| l.clone())
    }

    /// The process ids announced by the live connections of this target
    /// (and its clones). A server announces its backend's pid; a pooler
    /// announces a number of its own.
    pub fn announced_pids(&self) -> Vec<i32> {
        let Ok(mut live) = self.links.live.lock() else { return Vec::new() };
        live.retain(|w| w.strong_count() > 0);
        live.iter().filter_map(|w| w.upgrade()?.key_pid()).collect()
    }

    /// A driver error with, for a closed connection, why it was lost, and
    /// for a prepared statement that vanished, the pooler that lost it.
    pub fn describe(&self, err: &tokio_postgres::Error) -> String {
        let message = describe(err);
        if super::sqlstate(err) == Some("26000") && message.contains("prepared statement \"s") {
            return format!(
                "{message} (a connection pooler that does not keep sessions runs each transaction on any server \
                 connection and loses the session's prepared statements and locks: PgBouncer pool_mode = transaction or \
                 statement; connect strata to PostgreSQL directly or through pool_mode = session)"
            );
        }
        match self.lost_reason() {
            Some(reason) if err.is_closed() => format!("{message} ({reason})"),
            _ => message,
        }
    }

    fn tls_config(&self) -> std::result::Result<Arc<ClientConfig>, String> {
        self.tls.get_or_init(|| tls::client_config(&self.settings.tls)).clone()
    }

    /// The password for one host: from the string, service or PGPASSWORD,
    /// else the password file (skipped with libpq's warning when others
    /// can read it).
    fn password_for(&self, host: &HostSpec) -> Option<String> {
        let s = &self.settings;
        if let Some(p) = &s.password {
            return Some(p.0.clone());
        }
        let lookup_host = if host.defaulted {
            None
        } else {
            host.host.clone().or_else(|| host.hostaddr.map(|a| a.to_string()))
        };
        let found = files::password_from_file(
            &s.passfile,
            &files::PassLookup {
                host: lookup_host.as_deref(),
                port: host.port,
                dbname: &s.dbname,
                user: &s.user,
            },
        );
        if let Some(w) = found.warning {
            warn_once(&w);
        }
        found.password
    }

    /// A libpq connection string for the server to use (`CREATE
    /// SUBSCRIPTION`): hosts, port, user, password (resolved here, so one
    /// from PGPASSWORD or the password file works), database and sslmode.
    /// File paths (`sslrootcert`, `sslcert`) are not passed: the server
    /// would read them on its own machine. It holds the password: never print it.
    pub fn conninfo(&self) -> String {
        let s = &self.settings;
        let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
        let mut parts = Vec::new();
        let hosts: Vec<String> = s.hosts.iter().map(|h| h.host.clone().unwrap_or_default()).collect();
        if hosts.iter().any(|h| !h.is_empty()) {
            parts.push(format!("host={}", quote(&hosts.join(","))));
        }
        if s.hosts.iter().any(|h| h.hostaddr.is_some()) {
            let addrs: Vec<String> = s
                .hosts
                .iter()
                .map(|h| h.hostaddr.map(|a| a.to_string()).unwrap_or_default())
                .collect();
            parts.push(format!("hostaddr={}", quote(&addrs.join(","))));
        }
        let ports: Vec<String> = s.hosts.iter().map(|h| h.port.to_string()).collect();
        parts.push(format!("port={}", quote(&ports.join(","))));
        parts.push(format!("user={}", quote(&s.user)));
        if let Some(p) = s.hosts.first().and_then(|h| self.password_for(h)) {
            parts.push(format!("password={}", quote(&p)));
        }
        parts.push(format!("dbname={}", quote(&s.dbname)));
        if s.sslmode_explicit || s.tls.root == RootCert::System {
            parts.push(format!("sslmode={}", quote(s.tls.mode.as_str())));
        }
        if s.tls.root == RootCert::System {
            parts.push("sslrootcert='system'".into());
        }
        if s.session_attrs != SessionAttrs::Any {
            parts.push(format!("target_session_attrs={}", quote(s.session_attrs.as_str())));
        }
        parts.join(" ")
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = format!("{}@{}/{}", self.settings.user, self.hosts(), self.dbname());
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

/// Prints a warning once per process, on stderr, as libpq prints its own
/// (a group-readable password file is skipped, not an error).
fn warn_once(message: &str) {
    static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
    if let Ok(mut seen) = SEEN.lock() {
        if !seen.iter().any(|s| s == message) {
            seen.push(message.to_string());
            eprintln!("warning: {message}; the file is ignored");
        }
    }
}

/// A connection string with any password replaced by `***` (for messages
/// about strings that did not even parse).
pub fn scrub(text: &str) -> String {
    static KV: OnceLock<regex::Regex> = OnceLock::new();
    static URL: OnceLock<regex::Regex> = OnceLock::new();
    let kv = KV.get_or_init(|| regex::Regex::new(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'?|\S+)").expect("valid regex"));
    let url = URL.get_or_init(|| regex::Regex::new(r"(://[^/@:]*):[^@/]*@").expect("valid regex"));
    let s = kv.replace_all(text, "${1}***");
    url.replace_all(&s, "${1}:***@").into_owned()
}

/// Where one attempt connects.
enum Addr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// One failed attempt: its message, and whether libpq's sslmode fallback
/// applies (`prefer`: the TLS attempt got as far as the handshake; `allow`:
/// the server refused the plain connection).
struct Failure {
    message: String,
    fallback: bool,
}

/// Connects: each host in order (shuffled with `load_balance_hosts=random`),
/// each address of a host name, with sslmode's fallbacks, until one matches
/// `target_session_attrs`. The connection is driven on the current tokio
/// runtime; the reason it ends, if it fails, is kept for the target's errors.
pub async fn connect(target: &Target) -> Result<Client> {
    let s = &target.settings;
    let mut order: Vec<usize> = (0..s.hosts.len()).collect();
    if s.load_balance {
        let mut seed = std::collections::hash_map::RandomState::new().build_hasher().finish();
        for i in (1..order.len()).rev() {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            order.swap(i, (seed >> 33) as usize % (i + 1));
        }
    }
    // prefer-standby: a standby if any, else any server.
    let passes = match s.session_attrs {
        SessionAttrs::PreferStandby => vec![SessionAttrs::Standby, SessionAttrs::Any],
        other => vec![other],
    };
    let mut failures = Vec::new();
    for attrs in passes {
        for &i in &order {
            let host = &s.hosts[i];
            match connect_host(target, host, attrs).await {
                Ok(client) => return Ok(client),
                Err(e) if s.hosts.len() > 1 => failures.push(format!("{host}: {e}")),
                Err(e) => failures.push(e),
            }
        }
    }
    Err(Error::Connect {
        target: target.to_string(),
        message: failures.join("; "),
    })
}

async fn connect_host(target: &Target, host: &HostSpec, attrs: SessionAttrs) -> std::result::Result<Client, String> {
    let s = &target.settings;
    let addrs = if host.is_unix() {
        vec![Addr::Unix(
            PathBuf::from(host.host.clone().unwrap_or_default()).join(format!(".s.PGSQL.{}", host.port)),
        )]
    } else if let Some(ip) = host.hostaddr {
        vec![Addr::Tcp(SocketAddr::new(ip, host.port))]
    } else {
        let name = host.host.clone().unwrap_or_default();
        let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), host.port))
            .await
            .map_err(|e| format!("could not translate host name \"{name}\" to an address: {e}"))?
            .collect();
        found.into_iter().map(Addr::Tcp).collect()
    };
    // libpq's order of attempts: None is a plain connection.
    let tls_modes: Vec<Option<tokio_postgres::config::SslMode>> = if host.is_unix() {
        vec![None]
    } else {
        use tokio_postgres::config::SslMode as Pg;
        match s.tls.mode {
            SslMode::Disable => vec![None],
            SslMode::Allow => vec![None, Some(Pg::Require)],
            SslMode::Prefer => vec![Some(Pg::Prefer), None],
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => vec![Some(Pg::Require)],
        }
    };
    let password = target.password_for(host);
    let mut last = String::from("no address to connect to");
    for addr in &addrs {
        let mut tried: Vec<String> = Vec::new();
        for (n, mode) in tls_modes.iter().enumerate() {
            let attempt = attempt(target, host, addr, *mode, password.as_deref(), attrs);
            let result = match s.connect_timeout {
                Some(limit) => tokio::time::timeout(limit, attempt).await.unwrap_or_else(|_| {
                    Err(Failure {
                        message: format!("timed out after {} (connect_timeout)", stream::humanize(limit)),
                        fallback: false,
                    })
                }),
                None => attempt.await,
            };
            match result {
                Ok(client) => return Ok(client),
                Err(f) => {
                    let label = if tls_modes.len() > 1 {
                        if mode.is_some() {
                            "with TLS: "
                        } else {
                            "without TLS: "
                        }
                    } else {
                        ""
                    };
                    tried.push(format!("{label}{}", f.message));
                    // The fallback of allow / prefer needs the server to
                    // have answered the first way.
                    if !f.fallback || n + 1 == tls_modes.len() {
                        break;
                    }
                }
            }
        }
        last = tried.join("; ");
        if let Some(hint) = password_hint(&last, password.is_some(), target) {
            last.push_str(&hint);
        }
    }
    Err(last)
}

fn password_hint(message: &str, had_password: bool, target: &Target) -> Option<String> {
    (message.contains("password missing") && !had_password).then(|| {
        format!(
            " (the server asks for a password: give it in the connection string, in PGPASSWORD, or in {} as \
             hostname:port:database:username:password)",
            target.settings.passfile.display()
        )
    })
}

async fn attempt(
    target: &Target,
    host: &HostSpec,
    addr: &Addr,
    tls_mode: Option<tokio_postgres::config::SslMode>,
    password: Option<&str>,
    attrs: SessionAttrs,
) -> std::result::Result<Client, Failure> {
    let s = &target.settings;
    let unreached = |message: String| Failure { message, fallback: false };
    let tls_config = match tls_mode {
        Some(_) => Some(target.tls_config().map_err(unreached)?),
        None => None,
    };
    let socket = open_socket(addr, s).await.map_err(unreached)?;
    let mut config = tokio_postgres::Config::new();
    config.user(&s.user).dbname(&s.dbname).application_name(&s.application_name);
    if let Some(o) = &s.options {
        config.options(o);
    }
    if let Some(p) = password {
        config.password(p);
    }
    config.channel_binding(match s.tls.channel_binding {
        ChannelBinding::Disable => tokio_postgres::config::ChannelBinding::Disable,
        ChannelBinding::Prefer => tokio_postgres::config::ChannelBinding::Prefer,
        ChannelBinding::Require => tokio_postgres::config::ChannelBinding::Require,
    });
    if s.tls.direct {
        config.ssl_negotiation(tokio_postgres::config::SslNegotiation::Direct);
    }
    let observed = Arc::new(Observed::default());
    let watch = Watch {
        answer_timeout: target.answer_timeout,
        observed: observed.clone(),
    };
    let tls_used = Arc::new(AtomicBool::new(false));
    let connected = match (tls_mode, tls_config) {
        (Some(mode), Some(cfg)) => {
            config.ssl_mode(mode);
            let mut maker = MakeRustlsConnect::new((*cfg).clone());
            let inner = <MakeRustlsConnect as MakeTlsConnect<Watched<RawSocket>>>::make_tls_connect(&mut maker, &host.tls_name())
                .map_err(|e| unreached(e.to_string()))?;
            // A server that answers the SSLRequest with "N" (prefer) goes on
            // in clear text: the socket's own watch takes over then.
            let raw = Watched::new(socket, None).expecting_ssl_answer(watch.clone(), s.tls.direct);
            let tls = Flagged {
                inner: WatchedTls { inner, watch },
                used: tls_used.clone(),
            };
            config.connect_raw(raw, tls).await.map(|(c, conn)| {
                drive(conn, target);
                c
            })
        }
        _ => {
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
            config.connect_raw(Watched::new(socket, Some(watch)), NoTls).await.map(|(c, conn)| {
                drive(conn, target);
                c
            })
        }
    };
    let client = match connected {
        Ok(client) => client,
        Err(e) => {
            let message = tls::explain(&e, &s.tls, &host.tls_name()).unwrap_or_else(|| describe(&e));
            let fallback = match tls_mode {
                Some(_) => tls_used.load(Ordering::SeqCst),
                None => e.as_db_error().is_some(),
            };
            return Err(Failure { message, fallback });
        }
    };
    if let Ok(mut live) = target.links.live.lock() {
        live.retain(|w| w.strong_count() > 0);
        live.push(Arc::downgrade(&observed));
    }
    check_session_attrs(&client, attrs)
        .await
        .map_err(|message| Failure { message, fallback: false })?;
    Ok(client)
}

/// Whether the server is what `target_session_attrs` asks for.
async fn check_session_attrs(client: &Client, attrs: SessionAttrs) -> std::result::Result<(), String> {
    let query = match attrs {
        SessionAttrs::Any => return Ok(()),
        SessionAttrs::ReadWrite | SessionAttrs::ReadOnly => "SHOW transaction_read_only",
        SessionAttrs::Primary | SessionAttrs::Standby | SessionAttrs::PreferStandby => {
            "SELECT CASE WHEN pg_is_in_recovery() THEN 'on' ELSE 'off' END"
        }
    };
    let rows = client.simple_query(query).await.map_err(|e| describe(&e))?;
    let on = rows.iter().any(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0) == Some("on"),
        _ => false,
    });
    let ok = match attrs {
        SessionAttrs::ReadWrite => !on,
        SessionAttrs::ReadOnly => on,
        SessionAttrs::Primary => !on,
        _ => on,
    };
    if ok {
        return Ok(());
    }
    Err(match attrs {
        SessionAttrs::ReadWrite => "the session is read-only (target_session_attrs=read-write)".into(),
        SessionAttrs::ReadOnly => "the session is not read-only (target_session_attrs=read-only)".into(),
        SessionAttrs::Primary => "the server is in hot standby mode (target_session_attrs=primary)".into(),
        _ => "the server is not in hot standby mode (target_session_attrs=standby)".into(),
    })
}

async fn open_socket(addr: &Addr, s: &Settings) -> std::result::Result<RawSocket, String> {
    match addr {
        Addr::Unix(path) => tokio::net::UnixStream::connect(path)
            .await
            .map(RawSocket::Unix)
            .map_err(|e| format!("cannot connect to the socket {}: {e}", path.display())),
        Addr::Tcp(sa) => {
            let tcp = tokio::net::TcpStream::connect(sa)
                .await
                .map_err(|e| format!("cannot connect to {}: {e}", show_addr(sa)))?;
            let _ = tcp.set_nodelay(true);
            let sock = socket2::SockRef::from(&tcp);
            if s.keepalives {
                let ka = socket2::TcpKeepalive::new()
                    .with_time(s.keepalives_idle)
                    .with_interval(s.keepalives_interval)
                    .with_retries(s.keepalives_count);
                sock.set_tcp_keepalive(&ka).map_err(|e| format!("cannot set TCP keepalives: {e}"))?;
            }
            if let Some(t) = s.tcp_user_timeout {
                sock.set_tcp_user_timeout(Some(t))
                    .map_err(|e| format!("cannot set tcp_user_timeout: {e}"))?;
            }
            Ok(RawSocket::Tcp(tcp))
        }
    }
}

fn show_addr(sa: &SocketAddr) -> String {
    match sa.ip() {
        IpAddr::V6(ip) => format!("[{ip}]:{}", sa.port()),
        IpAddr::V4(ip) => format!("{ip}:{}", sa.port()),
    }
}

/// Drives a connection on the runtime and keeps why it failed, if it did,
/// before the client's pending calls learn it is closed.
fn drive<S, T>(connection: Connection<S, T>, target: &Target)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let links = target.links.clone();
    tokio::spawn(async move {
        let mut connection = Box::pin(connection);
        let result = std::future::poll_fn(|cx| std::future::Future::poll(connection.as_mut(), cx)).await;
        if let Err(e) = result {
            if let Ok(mut lost) = links.lost.lock() {
                *lost = Some(format!("the connection was lost: {}", describe(&e)));
            }
        }
        // Only now do the client's pending calls see the connection closed.
        drop(connection);
    });
}

/// A TLS connector that records that the TLS handshake was started (for
/// `prefer`'s fallback to a plain connection).
struct Flagged<C> {
    inner: C,
    used: Arc<AtomicBool>,
}

impl<S, C: TlsConnect<S>> TlsConnect<S> for Flagged<C> {
    type Stream = C::Stream;
    type Error = C::Error;
    type Future = C::Future;

    fn connect(self, stream: S) -> Self::Future {
        self.used.store(true, Ordering::SeqCst);
        self.inner.connect(stream)
    }
}

/// Runs a query and wraps a failure with the target and what was being done.
pub fn sql_error(target: &Target, context: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> Error + '_ {
    let context = context.into();
    move |e| Error::Sql {
        target: target.to_string(),
        context,
        message: target.describe(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(spec: &str) -> Target {
        Target::parse_in(spec, &Env::from_pairs([("HOME", "/nonexistent"), ("USER", "me")])).unwrap()
    }

    #[test]
    fn url_password_is_never_shown() {
        let t = parse("postgres://alice:s3cret@db.example:6432/orbis_gaku");
        let shown = format!("{t} {t:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert_eq!(t.to_string(), "alice@db.example:6432/orbis_gaku");
        assert!(t.password_in_string());
    }

    #[test]
    fn key_value_unix_socket() {
        let t = parse("host=/tmp/pg port=5433 user=postgres dbname=test_a password=hunter2");
        assert_eq!(t.to_string(), "postgres@/tmp/pg:5433/test_a");
        assert_eq!(t.with_dbname("postgres").to_string(), "postgres@/tmp/pg:5433/postgres");
    }

    #[test]
    fn env_var_form() {
        let env = Env::from_pairs([("STRATA_CONN_TEST_URL", "postgres://bob:pw@h/db")]);
        let t = Target::parse_in("env:STRATA_CONN_TEST_URL", &env).unwrap();
        assert_eq!(t.to_string(), "env:STRATA_CONN_TEST_URL (bob@h:5432/db)");
        let err = Target::parse_in("env:STRATA_CONN_TEST_UNSET_VAR", &env).unwrap_err().to_string();
        assert!(err.contains("STRATA_CONN_TEST_UNSET_VAR is not set"), "{err}");
    }

    #[test]
    fn bad_strings_never_show_their_password() {
        let err = Target::parse_in("host=h password=hunter2 sslmode=sometimes", &Env::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid sslmode value") && !err.contains("hunter2"), "{err}");
    }

    #[test]
    fn scrub_hides_passwords() {
        assert_eq!(scrub("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(scrub("host=h password='a b' user=u"), "host=h password=*** user=u");
        assert_eq!(scrub("host=h password='unterminated"), "host=h password=***");
    }

    #[test]
    fn conninfo_quotes_values() {
        let t = parse("host=/tmp/sock port=5433 user=o'brien password='p w\\'d\\\\' dbname=nova");
        assert_eq!(
            t.conninfo(),
            "host='/tmp/sock' port='5433' user='o\\'brien' password='p w\\'d\\\\' dbname='nova'"
        );
        let t = parse("host=a,b port=1,2 user=u dbname=d sslmode=verify-full target_session_attrs=read-write");
        assert_eq!(
            t.conninfo(),
            "host='a,b' port='1,2' user='u' dbname='d' sslmode='verify-full' target_session_attrs='read-write'"
        );
    }
}
