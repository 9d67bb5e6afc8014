//! The servers of the connection tests, started once per test binary:
//! a TLS-only cluster (`hostssl` lines only, certificates from [`Pki`]) with
//! scram, md5 and certificate users, and a plain TCP cluster without TLS
//! whose sessions are read-only (a stand-in for a standby).

use std::sync::OnceLock;

use strata::pg::cluster::{ClusterOptions, TempCluster};

use super::pki::Pki;
use crate::common;

pub const APP_PASSWORD: &str = "Sc-r4m!pw-7781";
pub const MD5_PASSWORD: &str = "md5-pw-Q93z";
pub const ADMIN_PASSWORD: &str = "adm1n-pw-X55";

pub struct Tls {
    pub cluster: &'static TempCluster,
    pub pki: Pki,
}

impl Tls {
    pub fn port(&self) -> u16 {
        self.cluster.port()
    }

    /// A key=value string to database `db` of this server over TCP, for
    /// host name `localhost` (the server certificate's name), with `extra`.
    pub fn conn(&self, user: &str, db: &str, extra: &str) -> String {
        format!(
            "host=localhost hostaddr=127.0.0.1 port={} user={user} dbname={db} {extra}",
            self.port()
        )
    }

    /// The superuser over the unix socket (trust): for setting things up.
    pub fn admin(&self, db: &str) -> String {
        self.cluster.conn_string(db)
    }
}

fn start(setup: ClusterOptions, init_sql: &str) -> &'static TempCluster {
    let cluster = TempCluster::start_with(&setup)
        .unwrap_or_else(|e| panic!("cannot start a throwaway PostgreSQL: {e}"))
        .leak_until_exit();
    // (A read-only cluster's own set-up writes.)
    let admin = format!("{} options='-c default_transaction_read_only=off'", cluster.conn_string("postgres"));
    common::sql(&admin, init_sql);
    cluster
}

/// The TLS-only server.
pub fn tls() -> &'static Tls {
    static TLS: OnceLock<Tls> = OnceLock::new();
    TLS.get_or_init(|| {
        let pki = Pki::new();
        let server = pki.server(&["localhost"]);
        let setup = ClusterOptions {
            tcp: true,
            hba: Some(
                "hostssl all cert_user 127.0.0.1/32 cert\n\
                 hostssl all md5_user 127.0.0.1/32 md5\n\
                 hostssl all all 127.0.0.1/32 scram-sha-256"
                    .into(),
            ),
            files: vec![
                ("server.crt".into(), server.cert.into_bytes()),
                ("server.key".into(), server.key.into_bytes()),
                ("root.crt".into(), pki.ca_pem.clone().into_bytes()),
            ],
            settings: vec![
                "ssl=on".into(),
                "ssl_cert_file=server.crt".into(),
                "ssl_key_file=server.key".into(),
                "ssl_ca_file=root.crt".into(),
                // The default from PostgreSQL 14 on (13 stored md5 hashes,
                // which scram-sha-256 lines of pg_hba.conf refuse).
                "password_encryption=scram-sha-256".into(),
            ],
            ..common::cluster_options()
        };
        let cluster = start(
            setup,
            &format!(
                "SET password_encryption = 'scram-sha-256';
                 CREATE ROLE app LOGIN CREATEDB PASSWORD '{APP_PASSWORD}';
                 ALTER ROLE postgres PASSWORD '{ADMIN_PASSWORD}';
                 SET password_encryption = 'md5';
                 CREATE ROLE md5_user LOGIN PASSWORD '{MD5_PASSWORD}';
                 CREATE ROLE cert_user LOGIN;"
            ),
        );
        Tls { cluster, pki }
    })
}

/// The plain TCP server (ssl off, every session read-only).
pub fn plain_read_only() -> &'static TempCluster {
    static PLAIN: OnceLock<&'static TempCluster> = OnceLock::new();
    PLAIN.get_or_init(|| {
        let setup = ClusterOptions {
            tcp: true,
            hba: Some("host all all 127.0.0.1/32 scram-sha-256".into()),
            settings: vec!["ssl=off".into(), "default_transaction_read_only=on".into()],
            ..common::cluster_options()
        };
        start(
            setup,
            &format!(
                "SET password_encryption = 'scram-sha-256';
                 CREATE ROLE app LOGIN PASSWORD '{APP_PASSWORD}';"
            ),
        )
    })
}
