//! The rule table and dispatch.
mod meta;
pub use meta::{Group, RuleMeta};
