//! Phased cutovers (`strata plan`, `strata cutover`): a change described in
//! `cutovers/<name>.toml` ([`plan`]) becomes an ordered list of steps
//! ([`steps`]), each with its gate and rollback, that the executor
//! ([`executor`]) runs resumably, recording every step in the control plane
//! ([`state`]) so that a run killed at any point continues where it stopped.
//! The tenants of a reshape are claimed through the control plane
//! ([`claim`]) so that several strata processes share one cutover.
//!
//! Implemented: the file format, the printed plan, the `reshape` executor
//! (expand/contract inside tenant databases, [`reshape`]), the `move`
//! executor (logical replication between two databases, [`relocate`]) and
//! the Orbis identity consolidation ([`identity`]), a step of a move whose
//! file has an `[identity]` section.

pub mod claim;
pub mod commands;
pub mod executor;
pub mod identity;
pub mod plan;
pub mod privileges;
pub mod relocate;
pub mod render;
pub mod reshape;
pub mod state;
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
