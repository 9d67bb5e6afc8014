//! sslmode, sslrootcert and host name checks against the TLS-only server.

use strata::pg::cluster::{ClusterOptions, TempCluster};

use crate::common;

use super::servers::{self, APP_PASSWORD};
use super::{refused, session};

fn app(extra: &str) -> String {
    servers::tls().conn("app", "postgres", &format!("password={APP_PASSWORD} {extra}"))
}

#[test]
fn every_sslmode_against_a_tls_only_server() {
    let srv = servers::tls();
    let root = srv.pki.path("root.crt");
    let other = srv.pki.path("other-ca.crt");
    let (root, other) = (root.to_str().unwrap(), other.to_str().unwrap());

    // disable: the server has no entry for a connection without TLS (in
    // PostgreSQL 13's words "SSL off", later "no encryption").
    let plain = if common::server_major() >= 14 { "no encryption" } else { "SSL off" };
    refused(&app("sslmode=disable"), &[], &["no pg_hba.conf entry", plain]);
    // allow tries without TLS first, then with it.
    assert!(session(&app("sslmode=allow"), &[]).unwrap().ssl);
    // prefer (the default) and require use TLS; without a root file nothing
    // is verified, so a host name the certificate does not name is fine.
    assert!(session(&app(""), &[]).unwrap().ssl);
    let wrong_name = servers::tls()
        .conn("app", "postgres", &format!("password={APP_PASSWORD}"))
        .replace("host=localhost", "host=db.wrong.example");
    assert!(session(&format!("{wrong_name} sslmode=require"), &[]).unwrap().ssl);
    // require with a root file verifies the chain (libpq: like verify-ca).
    refused(&format!("{} sslrootcert={other}", app("sslmode=require")), &[], &["unknown CA"]);
    // verify-ca checks the chain, not the name.
    assert!(
        session(&format!("{wrong_name} sslmode=verify-ca sslrootcert={root}"), &[])
            .unwrap()
            .ssl
    );
    refused(
        &app(&format!("sslmode=verify-ca sslrootcert={other}")),
        &[],
        &["unknown CA", "other-ca.crt"],
    );
    // verify-full checks the name too.
    assert!(session(&app(&format!("sslmode=verify-full sslrootcert={root}")), &[]).unwrap().ssl);
    refused(
        &format!("{wrong_name} sslmode=verify-full sslrootcert={root}"),
        &[],
        &["name mismatch", "db.wrong.example", "localhost"],
    );
    // verify-* needs a root file, and says how to give one.
    refused(
        &app("sslmode=verify-full"),
        &[],
        &["root certificate file", "does not exist", "sslrootcert=system"],
    );
    // The system store does not hold the test CA (or is empty: no ca-certificates).
    let e = session(&app("sslrootcert=system"), &[]).unwrap_err();
    assert!(e.contains("unknown CA") || e.contains("store is empty"), "{e}");
    // prefer falls back to a plain connection when the TLS handshake fails;
    // both refusals are reported.
    refused(
        &app(&format!("sslmode=prefer sslrootcert={other}")),
        &[],
        &["with TLS: ", "unknown CA", "without TLS: ", "no pg_hba.conf entry"],
    );
}

#[test]
fn the_environment_and_the_default_root_file_count() {
    let srv = servers::tls();
    let root = srv.pki.path("root.crt");
    let other = srv.pki.path("other-ca.crt");
    // PGSSLMODE and PGSSLROOTCERT, below an explicit value.
    let env = [("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", other.to_str().unwrap())];
    refused(&app(""), &env, &["unknown CA"]);
    assert!(session(&app(&format!("sslrootcert={}", root.display())), &env).unwrap().ssl);
    assert!(session(&app("sslmode=require sslrootcert=/nonexistent/x.crt"), &env).unwrap().ssl);
    // ~/.postgresql/root.crt is the default root file: require verifies with it.
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".postgresql")).unwrap();
    std::fs::copy(&other, home.path().join(".postgresql/root.crt")).unwrap();
    let home_env = [("HOME", home.path().to_str().unwrap())];
    refused(&app("sslmode=require"), &home_env, &["unknown CA", ".postgresql/root.crt"]);
}

#[test]
fn prefer_goes_plain_on_a_server_without_tls_and_read_write_picks_the_primary() {
    let plain = servers::plain_read_only();
    let tls = servers::tls();
    let plain_conn = format!(
        "host=127.0.0.1 port={} user=app dbname=postgres password={APP_PASSWORD}",
        plain.port()
    );
    let s = session(&plain_conn, &[]).unwrap();
    assert!(!s.ssl);
    refused(&format!("{plain_conn} sslmode=require"), &[], &["server does not support TLS"]);
    // Two hosts; the first is read-only, so read-write picks the second.
    let both = format!(
        "host=127.0.0.1,localhost hostaddr=127.0.0.1,127.0.0.1 port={},{} user=app dbname=postgres password={APP_PASSWORD}",
        plain.port(),
        tls.port()
    );
    assert_eq!(session(&both, &[]).unwrap().port, plain.port());
    assert_eq!(
        session(&format!("{both} target_session_attrs=read-write"), &[]).unwrap().port,
        tls.port()
    );
    assert_eq!(session(&both, &[("PGTARGETSESSIONATTRS", "read-write")]).unwrap().port, tls.port());
    assert_eq!(
        session(&format!("{both} target_session_attrs=read-only"), &[]).unwrap().port,
        plain.port()
    );
    // No host fits: every host says why.
    let e = refused(
        &format!(
            "host=127.0.0.1 port={} user=app dbname=postgres password={APP_PASSWORD} target_session_attrs=read-write",
            plain.port()
        ),
        &[],
        &["read-only", "target_session_attrs=read-write"],
    );
    assert!(!e.contains(APP_PASSWORD), "{e}");
}

#[test]
fn an_expired_server_certificate_is_refused_with_its_date() {
    let srv = servers::tls();
    let expired = srv.pki.expired_server(&["localhost"]);
    let cluster = TempCluster::start_with(&ClusterOptions {
        tcp: true,
        hba: Some("hostssl all all 127.0.0.1/32 trust".into()),
        files: vec![
            ("server.crt".into(), expired.cert.into_bytes()),
            ("server.key".into(), expired.key.into_bytes()),
        ],
        settings: vec!["ssl=on".into(), "ssl_cert_file=server.crt".into(), "ssl_key_file=server.key".into()],
        ..common::cluster_options()
    })
    .unwrap();
    let conn = format!(
        "host=localhost hostaddr=127.0.0.1 port={} user=postgres dbname=postgres sslmode=verify-full sslrootcert={}",
        cluster.port(),
        srv.pki.path("root.crt").display()
    );
    refused(&conn, &[], &["expired", "2001-01-01"]);
    // Without verification, the same server is reachable.
    assert!(
        session(
            &conn
                .replace("verify-full", "require")
                .replace("sslrootcert=", "sslrootcert=/nonexistent"),
            &[]
        )
        .unwrap()
        .ssl
    );
}
