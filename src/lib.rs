//! strata: schema governance for multi-tenant PostgreSQL.
//!
//! The library holds everything; `src/main.rs` only parses arguments and maps
//! the result to an exit code. The static pipeline is
//! files → statements ([`sql`]) → catalog replay ([`catalog`]) → rules
//! ([`rules`]) → diagnostics → a renderer ([`report`]).

pub mod accepted;
mod ahead;
pub mod alloc;
pub mod app;
pub mod cache;
pub mod catalog;
pub mod check;
pub mod cli;
pub mod cutover;
pub mod diag;
pub mod error;
pub mod fix;
pub mod fleet;
pub mod lsp;
pub mod pg;
pub mod report;
pub mod rules;
pub mod sql;
pub mod workspace;

pub use error::{Error, Result};
