//! libpq connection strings: `postgres://` / `postgresql://` URIs and
//! `key=value` strings, parsed into keyword/value pairs with libpq's rules
//! (percent-decoding in URIs, single quotes and backslash escapes in
//! key=value strings, `ssl=true` as `sslmode=require`), and checked against
//! libpq's keyword list so a misspelled keyword is an error, as in libpq.

use std::collections::BTreeMap;

/// Keyword/value pairs of one connection string; a later value wins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params {
    values: BTreeMap<String, String>,
}

impl Params {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.values.insert(key.to_string(), value.into());
    }

    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.values.remove(key)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// How strata treats a libpq keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// Implemented.
    Yes,
    /// Accepted and without effect (strata never uses what it configures).
    NoEffect,
    /// A libpq keyword strata does not implement: an error, never ignored.
    No,
}

/// libpq's keywords with their environment variable and strata's support.
pub const KEYWORDS: &[(&str, Option<&str>, Support)] = &[
    ("host", Some("PGHOST"), Support::Yes),
    ("hostaddr", Some("PGHOSTADDR"), Support::Yes),
    ("port", Some("PGPORT"), Support::Yes),
    ("dbname", Some("PGDATABASE"), Support::Yes),
    ("user", Some("PGUSER"), Support::Yes),
    ("password", Some("PGPASSWORD"), Support::Yes),
    ("passfile", Some("PGPASSFILE"), Support::Yes),
    ("service", Some("PGSERVICE"), Support::Yes),
    ("servicefile", Some("PGSERVICEFILE"), Support::Yes),
    ("connect_timeout", Some("PGCONNECT_TIMEOUT"), Support::Yes),
    ("application_name", Some("PGAPPNAME"), Support::Yes),
    ("fallback_application_name", None, Support::Yes),
    ("options", Some("PGOPTIONS"), Support::Yes),
    ("client_encoding", Some("PGCLIENTENCODING"), Support::Yes),
    ("target_session_attrs", Some("PGTARGETSESSIONATTRS"), Support::Yes),
    ("load_balance_hosts", Some("PGLOADBALANCEHOSTS"), Support::Yes),
    ("keepalives", None, Support::Yes),
    ("keepalives_idle", None, Support::Yes),
    ("keepalives_interval", None, Support::Yes),
    ("keepalives_count", None, Support::Yes),
    ("tcp_user_timeout", None, Support::Yes),
    ("sslmode", Some("PGSSLMODE"), Support::Yes),
    ("sslrootcert", Some("PGSSLROOTCERT"), Support::Yes),
    ("sslcert", Some("PGSSLCERT"), Support::Yes),
    ("sslkey", Some("PGSSLKEY"), Support::Yes),
    ("sslnegotiation", Some("PGSSLNEGOTIATION"), Support::Yes),
    ("sslsni", Some("PGSSLSNI"), Support::Yes),
    ("ssl_min_protocol_version", Some("PGSSLMINPROTOCOLVERSION"), Support::Yes),
    ("ssl_max_protocol_version", Some("PGSSLMAXPROTOCOLVERSION"), Support::Yes),
    ("channel_binding", Some("PGCHANNELBINDING"), Support::Yes),
    ("sslcertmode", Some("PGSSLCERTMODE"), Support::Yes),
    ("gssencmode", Some("PGGSSENCMODE"), Support::Yes),
    ("sslcompression", Some("PGSSLCOMPRESSION"), Support::NoEffect),
    ("sslpassword", None, Support::No),
    ("sslcrl", Some("PGSSLCRL"), Support::No),
    ("sslcrldir", Some("PGSSLCRLDIR"), Support::No),
    ("sslkeylogfile", None, Support::No),
    ("requirepeer", Some("PGREQUIREPEER"), Support::No),
    ("require_auth", Some("PGREQUIREAUTH"), Support::No),
    ("krbsrvname", Some("PGKRBSRVNAME"), Support::No),
    ("gsslib", Some("PGGSSLIB"), Support::No),
    ("gssdelegation", Some("PGGSSDELEGATION"), Support::No),
    ("replication", None, Support::No),
    ("min_protocol_version", Some("PGMINPROTOCOLVERSION"), Support::No),
    ("max_protocol_version", Some("PGMAXPROTOCOLVERSION"), Support::No),
];

pub fn support(key: &str) -> Option<Support> {
    KEYWORDS.iter().find(|(k, _, _)| *k == key).map(|(_, _, s)| *s)
}

/// Parses a URI (`postgres://...` or `postgresql://...`) or a key=value
/// string. Errors never contain the string itself (it may hold a password).
pub fn parse(text: &str) -> Result<Params, String> {
    let text = text.trim();
    let params = if let Some(rest) = text.strip_prefix("postgresql://").or_else(|| text.strip_prefix("postgres://")) {
        parse_uri(rest)?
    } else if text.contains("://") {
        return Err("a connection URI starts with postgresql:// or postgres://".into());
    } else {
        parse_key_value(text)?
    };
    check_keywords(&params)?;
    Ok(params)
}

/// Every keyword is one libpq knows; the ones strata cannot honour are named.
pub fn check_keywords(params: &Params) -> Result<(), String> {
    for (key, _) in params.iter() {
        match support(key) {
            None => return Err(format!("invalid connection option \"{key}\"")),
            Some(Support::No) => {
                return Err(format!(
                    "connection option \"{key}\" is not supported by strata (see docs/connections.md)"
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn parse_key_value(text: &str) -> Result<Params, String> {
    let mut params = Params::default();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= chars.len() {
            return Ok(params);
        }
        let start = i;
        while i < chars.len() && chars[i] != '=' && !chars[i].is_whitespace() {
            i += 1;
        }
        let key: String = chars[start..i].iter().collect();
        skip_ws(&mut i);
        if i >= chars.len() || chars[i] != '=' {
            return Err(format!("missing \"=\" after \"{key}\" in connection info string"));
        }
        i += 1;
        skip_ws(&mut i);
        let mut value = String::new();
        if i < chars.len() && chars[i] == '\'' {
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("unterminated quoted string in connection info string".into()),
                    Some('\\') if i + 1 < chars.len() => {
                        value.push(chars[i + 1]);
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&c) => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < chars.len() && !chars[i].is_whitespace() {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                value.push(chars[i]);
                i += 1;
            }
        }
        params.set(&key, value);
    }
}

fn percent_decode(s: &str, what: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("invalid percent-encoded token in the {what} of the URI"))?;
            if hex == 0 {
                return Err(format!("forbidden value %00 in the {what} of the URI"));
            }
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("the {what} of the URI is not UTF-8 once decoded"))
}

fn parse_uri(rest: &str) -> Result<Params, String> {
    let mut params = Params::default();
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.find('/') {
        Some(i) => (&before_query[..i], Some(&before_query[i + 1..])),
        None => (before_query, None),
    };
    // The user info ends at the last '@' (a password may not contain a raw '@',
    // but being lenient here costs nothing).
    let hostspec = match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let (user, password) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            if !user.is_empty() {
                params.set("user", percent_decode(user, "user name")?);
            }
            if let Some(p) = password {
                params.set("password", percent_decode(p, "password")?);
            }
            &authority[at + 1..]
        }
        None => authority,
    };
    if !hostspec.is_empty() {
        let mut hosts = Vec::new();
        let mut ports = Vec::new();
        for part in hostspec.split(',') {
            let (host, port) = if let Some(v6) = part.strip_prefix('[') {
                let end = v6.find(']').ok_or("missing \"]\" in an IPv6 host address of the URI")?;
                let after = &v6[end + 1..];
                let port = match after.strip_prefix(':') {
                    Some(p) => p,
                    None if after.is_empty() => "",
                    None => return Err("unexpected character after an IPv6 host address in the URI".into()),
                };
                (v6[..end].to_string(), port.to_string())
            } else {
                match part.rsplit_once(':') {
                    Some((h, p)) => (percent_decode(h, "host")?, p.to_string()),
                    None => (percent_decode(part, "host")?, String::new()),
                }
            };
            hosts.push(host);
            ports.push(port);
        }
        if hosts.iter().any(|h| !h.is_empty()) {
            params.set("host", hosts.join(","));
        }
        if ports.iter().any(|p| !p.is_empty()) {
            params.set("port", ports.join(","));
        }
    }
    if let Some(db) = path.filter(|p| !p.is_empty()) {
        params.set("dbname", percent_decode(db, "database name")?);
    }
    if let Some(q) = query {
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| format!("missing \"=\" in URI query parameter \"{}\"", pair.split(':').next().unwrap_or("")))?;
            let key = percent_decode(k, "query")?;
            let value = percent_decode(v, "query")?;
            // JDBC's spelling, which libpq accepts too.
            if key == "ssl" {
                if value == "true" {
                    params.set("sslmode", "require");
                    continue;
                }
                return Err(format!("invalid value \"{value}\" for URI query parameter \"ssl\""));
            }
            params.set(&key, value);
        }
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Params {
        parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn uri_with_every_part() {
        let params =
            p("postgresql://al%40ice:p%3Aw@db1.example:6432,[::1]:6433/orbis%2Fx?sslmode=verify-full&ssl=true&application_name=a%20b");
        assert_eq!(params.get("user"), Some("al@ice"));
        assert_eq!(params.get("password"), Some("p:w"));
        assert_eq!(params.get("host"), Some("db1.example,::1"));
        assert_eq!(params.get("port"), Some("6432,6433"));
        assert_eq!(params.get("dbname"), Some("orbis/x"));
        assert_eq!(params.get("sslmode"), Some("require"));
        assert_eq!(params.get("application_name"), Some("a b"));
    }

    #[test]
    fn uri_unix_socket_hosts() {
        let params = p("postgres://%2Fvar%2Frun%2Fpostgresql/db");
        assert_eq!(params.get("host"), Some("/var/run/postgresql"));
        let params = p("postgres:///db?host=/tmp/sock&port=5433");
        assert_eq!(params.get("host"), Some("/tmp/sock"));
        assert_eq!(params.get("port"), Some("5433"));
        assert_eq!(p("postgresql://"), Params::default());
    }

    #[test]
    fn key_value_quoting_and_escapes() {
        let params = p(r"host = /tmp  password='it\'s a \\ secret' user=o\'brien dbname=''");
        assert_eq!(params.get("host"), Some("/tmp"));
        assert_eq!(params.get("password"), Some(r"it's a \ secret"));
        assert_eq!(params.get("user"), Some("o'brien"));
        assert_eq!(params.get("dbname"), Some(""));
    }

    #[test]
    fn errors_name_the_keyword_never_the_value() {
        let e = parse("host=h passwd=hunter2").unwrap_err();
        assert_eq!(e, "invalid connection option \"passwd\"");
        let e = parse("host=h sslcrl=/x").unwrap_err();
        assert!(e.contains("not supported by strata"), "{e}");
        let e = parse("host=h password='hunter2").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        let e = parse("host").unwrap_err();
        assert!(e.contains("missing \"=\""), "{e}");
        let e = parse("mysql://u:hunter2@h/db").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        let e = parse("postgres://h/db?sslmode").unwrap_err();
        assert!(e.contains("missing \"=\""), "{e}");
    }
}
