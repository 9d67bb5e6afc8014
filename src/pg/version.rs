//! The version a server reports, and the majors strata is tested on.

use serde::Serialize;
use tokio_postgres::Client;

use super::conn::sql_error;
use super::{Result, Target};

/// The PostgreSQL majors strata's test matrix runs on (`.ci/run`).
pub const TESTED_MAJORS: std::ops::RangeInclusive<u32> = 13..=18;

/// A server's version: `server_version_num` (180004) and its short text ("18.4").
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServerVersion {
    pub num: u32,
    pub text: String,
}

impl ServerVersion {
    pub fn major(&self) -> u32 {
        self.num / 10000
    }
}

impl std::fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PostgreSQL {}", self.text)
    }
}

/// Reads the version of the server `client` is connected to.
pub async fn server_version(client: &Client, target: &Target) -> Result<ServerVersion> {
    let row = client
        .query_one(
            "SELECT current_setting('server_version_num')::int4, current_setting('server_version')",
            &[],
        )
        .await
        .map_err(sql_error(target, "cannot read the server version"))?;
    let num: i32 = row.try_get(0).map_err(sql_error(target, "cannot read the server version"))?;
    let text: String = row.try_get(1).map_err(sql_error(target, "cannot read the server version"))?;
    Ok(ServerVersion {
        num: u32::try_from(num).unwrap_or(0),
        // "16.4 (Debian 16.4-1.pgdg120+1)" → "16.4"
        text: text.split_whitespace().next().unwrap_or_default().to_string(),
    })
}
