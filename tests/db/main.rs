//! The database integration tests: one test binary, one PostgreSQL server.
//!
//! Every module below was a test binary of its own, each starting its own
//! throwaway cluster (an initdb, a server start and a link each). Here they
//! share the one server of `tests/common` (or `STRATA_TEST_PG`), and each
//! test still gets its own databases and its own copy of the workspace.
//!
//! Adding a database test file: put it in this folder (`tests/db/NAME.rs`),
//! add `mod NAME;` below, and start it with `use crate::common;` (then
//! `use common::*;` or the names it needs, as the others do). Its databases
//! share one server with every other module, so:
//! - name them uniquely: `common::database` panics when two files ask for the
//!   same name, and a database created by hand (`srv.conn("test_x")`) must
//!   not be one another file uses;
//! - never assert on cluster-wide state (roles, `pg_stat_activity`,
//!   replication slots) without narrowing it to your own objects;
//! - a test that creates a subscription, a replication slot or a
//!   publication holds `common::replication_serial()` for its whole length:
//!   the replication tests run one at a time (a subscription holds one of the
//!   few logical replication workers, and their cleanup drops every idle
//!   table-sync slot of the cluster).
//!
//! `cargo test --test db` runs them all; `cargo test --test db migrate::`
//! one module.

#[path = "../common/mod.rs"]
mod common;

mod adopt;
mod baseline;
mod baseline_refusals;
mod conn;
mod cutover;
mod cutover_examples;
mod cutover_fleet;
mod cutover_keys;
mod cutover_move;
mod drift;
mod drift_kinds;
mod examples;
mod fix;
mod fleet_majors;
mod getting_started;
mod identity;
mod isolation;
mod migrate;
mod nova_leon_move;
mod precision;
mod reshape_backfill;
mod shadow;
mod tenant;
