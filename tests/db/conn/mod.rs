//! Connecting the way libpq does, against real servers started here: TLS
//! with every sslmode and certificates made by the test, passwords (scram
//! with channel binding, md5, PGPASSWORD, the password file, service files),
//! several hosts, a hosted-service admin role, PgBouncer in both pool modes,
//! and a server that stalls mid-migration.
//!
//! These tests start servers of their own (TLS, passwords, TCP), not the
//! shared one of tests/common.

mod auth;
mod commands;
mod pki;
mod pooler;
mod privileges;
mod proxy;
mod servers;
mod stall;
mod tls;

use crate::common;

use strata::pg::conn::settings::Env;

/// What a session reports about itself.
#[derive(Debug)]
pub struct Session {
    pub ssl: bool,
    pub port: u16,
    pub user: String,
}

/// Connects in-process with the given environment (HOME is an empty folder
/// unless given, so the runner's own ~/.pgpass or ~/.postgresql never count).
pub fn session(spec: &str, env: &[(&str, &str)]) -> Result<Session, String> {
    let empty_home = tempfile::tempdir().unwrap();
    let home = empty_home.path().to_str().unwrap().to_string();
    let mut pairs: Vec<(&str, &str)> = vec![("HOME", home.as_str())];
    pairs.extend(env.iter().copied());
    let env = Env::from_pairs(pairs);
    common::rt().block_on(async {
        let target = strata::pg::Target::parse_in(spec, &env).map_err(|e| e.to_string())?;
        let client = strata::pg::connect(&target).await.map_err(|e| e.to_string())?;
        let row = client
            .query_one(
                "SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false),
                        current_setting('port')::int, current_user::text",
                &[],
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(Session {
            ssl: row.get(0),
            port: row.get::<_, i32>(1) as u16,
            user: row.get(2),
        })
    })
}

#[track_caller]
pub fn refused(spec: &str, env: &[(&str, &str)], expect: &[&str]) -> String {
    match session(spec, env) {
        Ok(s) => panic!("{spec}: connected ({s:?}), expected a refusal with {expect:?}"),
        Err(e) => {
            for want in expect {
                assert!(e.contains(want), "{spec}: the error lacks {want:?}:\n{e}");
            }
            e
        }
    }
}
