//! Phased cutovers (`strata plan`, `strata cutover`): a change described in
//! `cutovers/<name>.toml` ([`plan`]) becomes an ordered list of steps
//! ([`steps`]), each with its gate and rollback, that the executor
//! ([`executor`]) runs resumably through one dispatch ([`dispatch`]),
//! recording every step in the control plane ([`state`]) so that a run
//! killed or interrupted at any point continues where it stopped. The
//! tenants of a reshape are claimed through the control plane ([`claim`])
//! so that several strata processes share one cutover.
//!
//! The kinds: `reshape` (expand/contract inside tenant databases,
//! [`reshape`]) and `move` (logical replication between two databases,
//! [`relocate`]), whose file may add the Orbis identity consolidation
//! ([`identity`]). Both walk their tables by key ranges ([`keyset`]) and
//! report as they go ([`progress`]).

pub mod claim;
pub mod dispatch;
pub mod estimate;
pub mod executor;
pub mod identity;
pub mod keyset;
pub mod plan;
pub mod privileges;
pub mod progress;
pub mod relocate;
pub mod render;
pub mod reshape;
pub mod rollback;
pub mod state;
pub mod status;
pub mod steps;

pub use plan::{Cutover, Kind};

/// Errors of running a cutover.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Pg(#[from] crate::pg::Error),
    #[error(transparent)]
    Config(#[from] crate::Error),
    /// A gate did not pass: the run stops before the next step.
    #[error("{tenant}: step {step}: gate not passed: {message}")]
    Gate { tenant: String, step: String, message: String },
    /// Another strata process holds this (cutover, tenant): it is left to that process.
    #[error("{0}")]
    Busy(String),
    /// The operator asked for something the run's state forbids.
    #[error("{0}")]
    Refused(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One statement a step executes, as `cutover run --dry-run` prints it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Sql {
    /// Where it runs: `source`, `target`, a tenant's slug, `control plane`.
    pub database: String,
    /// What it is for.
    pub what: String,
    pub sql: String,
}

impl Sql {
    pub fn new(database: impl Into<String>, what: impl Into<String>, sql: impl Into<String>) -> Sql {
        Sql {
            database: database.into(),
            what: what.into(),
            sql: sql.into(),
        }
    }
}
