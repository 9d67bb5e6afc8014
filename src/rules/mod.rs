//! The rule table and dispatch.
//!
//! One rule per file. A rule is a type implementing [`Rule`]; its
//! documentation is the doc comment given to [`declare_rule!`], which
//! becomes both the Rust doc and the text `strata explain` prints.
//! Rules never print: they push [`Finding`]s, and the dispatcher attaches
//! the rule id and the configured severity.

use std::collections::HashSet;

use crate::catalog::{Catalog, QName};
use crate::diag::{Fix, Region, Severity};
use crate::sql::{ParsedFile, Statement};
use crate::workspace::{Config, LayerKind, Migration};

pub mod ddl_in_function;
pub mod lid_column;
pub mod migration_modified;
pub mod migration_name;
pub mod migration_order;
pub mod opaque_sql;
pub mod rls_missing;
pub mod syntax_error;
pub mod unparsed_statement;
pub mod unused_suppression;

// Lock safety and correctness of change.
pub mod add_primary_key;
pub mod add_required_column;
pub mod column_type_change;
pub mod concurrent_in_transaction;
pub mod constraint_not_valid;
pub mod domain_constraint;
pub mod drop_column;
pub mod drop_database;
pub mod drop_not_null;
pub mod drop_schema;
pub mod drop_table;
pub mod enum_value_ordering;
pub mod exclusion_constraint;
pub(crate) mod fixes;
pub(crate) mod lock;
pub mod lock_taken;
pub mod prefer_repack;
pub mod rename_column;
pub mod rename_table;
pub mod require_concurrent_detach;
pub mod require_concurrent_index;
pub mod require_concurrent_index_drop;
pub mod require_concurrent_reindex;
pub mod require_lock_timeout;
pub mod require_statement_timeout;
pub mod set_not_null;
pub(crate) mod shape;
pub mod table_rewrite;
pub(crate) mod tokens;
pub mod transaction_nesting;
pub mod truncate_cascade;
pub mod uncommitted_transaction;
pub mod unique_constraint;
pub mod volatile_default;
pub mod whole_table_write;
pub mod work_after_access_exclusive;
// Governance and correctness rules (layers, RLS and policies,
// people, state homes; types, keys and policy performance).
pub mod ban_char;
pub mod bespoke_table;
pub mod container_scope;
pub mod duplicate_column;
pub mod extension_in_public;
pub mod fk_missing_index;
pub mod idempotent_ddl;
pub mod identifier_too_long;
pub mod layer_boundary;
pub mod multiple_permissive_policies;
pub mod no_primary_key;
pub mod parallel_person_table;
pub mod person_ref_not_contact;
pub mod policy_always_true;
pub mod policy_initplan;
pub mod policy_missing;
pub mod policy_not_tenant_scoped;
pub mod prefer_bigint;
pub mod prefer_identity;
pub mod prefer_jsonb;
pub mod prefer_text;
pub mod prefer_timestamptz;
pub mod require_table_schema;
pub mod rls_disabled;
pub mod rls_not_forced;
pub mod security_definer_search_path;
pub mod tenant_key_missing;
pub mod view_security_invoker;

pub mod docs;
pub(crate) mod helpers;
mod policy_expr;

#[cfg(test)]
pub(crate) mod testing;

pub use crate::diag::{Group, RuleMeta};
pub use crate::workspace::rules_config::{RuleSection, RuleSettings, RulesConfig};
pub use policy_expr::parse_expr as parse_policy_expr;

/// Declares a rule type with its metadata; the doc comment is the rule's
/// documentation (headings: What it does, Why is this bad?, Example, How to fix).
#[macro_export]
macro_rules! declare_rule {
    (
        $(#[doc = $doc:literal])+
        pub struct $name:ident {
            id: $id:literal,
            group: $group:ident,
            severity: $sev:ident,
            summary: $summary:literal,
            needs_workspace: $nw:literal $(,)?
        }
    ) => {
        $(#[doc = $doc])+
        #[derive(Debug, Default, Clone)]
        pub struct $name;
        /// The rule's metadata (its documentation is the doc comment above).
        pub const META: $crate::rules::RuleMeta = $crate::rules::RuleMeta {
            id: $id,
            group: $crate::rules::Group::$group,
            default_severity: $crate::diag::Severity::$sev,
            summary: $summary,
            doc: concat!($($doc, "\n"),+),
            needs_workspace: $nw,
        };
    };
}

/// A layer as rules see it.
#[derive(Clone, Debug)]
pub struct LayerInfo {
    pub id: String,
    pub kind: LayerKind,
    pub name: String,
    /// The layers this layer may depend on (indexes in [`Env::layers`]):
    /// none for core, core for a vertical, core and the verticals of its
    /// tenants for a bespoke layer.
    pub depends_on: Vec<u16>,
    /// The tables and views the layer's own migrations leave behind, so that
    /// a reference to an object of a layer outside the current composition
    /// (another vertical, another tenant's bespoke layer) can be named.
    pub objects: HashSet<QName>,
}

/// What is known about the file being checked.
pub struct FileInfo<'a> {
    pub parsed: &'a ParsedFile,
    /// The file's id in [`crate::catalog::Origin::file`].
    pub id: u32,
    /// The layer index in [`Env::layers`], when checked inside a workspace.
    pub layer: Option<u16>,
    /// The migration and its position in the layer.
    pub migration: Option<&'a Migration>,
    /// Every migration of the file's layer, in apply order.
    pub layer_migrations: &'a [Migration],
    /// strata.sum state of this file.
    pub released: Released<'a>,
    /// Index in `layer_migrations` of the last released migration.
    pub released_head: Option<usize>,
}

/// What strata.sum says of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Released<'a> {
    /// Not in strata.sum: a new migration.
    New,
    /// In strata.sum with this hash.
    Released { hash: &'a str, sum_line: usize },
    /// No strata.sum, or checked outside a workspace.
    Unknown,
}

/// Settings shared by every rule of one check.
pub struct Env<'a> {
    /// None when files are checked without a workspace.
    pub config: Option<&'a Config>,
    pub pg_version: u32,
    pub layers: &'a [LayerInfo],
    /// Whether files run by strata are wrapped in a transaction unless they
    /// say otherwise (true inside a workspace and for plain files alike).
    pub transactional: bool,
}

impl Env<'_> {
    pub fn layer(&self, i: Option<u16>) -> Option<&LayerInfo> {
        i.and_then(|i| self.layers.get(i as usize))
    }
}

/// The state a statement rule sees: the catalog before the statement.
pub struct StatementCtx<'a> {
    pub env: &'a Env<'a>,
    pub file: &'a FileInfo<'a>,
    pub index: usize,
    pub stmt: &'a Statement,
    pub catalog: &'a Catalog,
    /// The write-blocking lock each statement of the file up to this one
    /// took ([`lock::strong_lock`]), found once at its turn, on the catalog
    /// before it. Empty where the caller does not keep them: [`Self::lock_of`]
    /// then finds them on the current catalog.
    pub locks: &'a [Option<lock::TakenLock>],
}

impl StatementCtx<'_> {
    /// The write-blocking lock statement `j` of the file takes.
    pub fn lock_of(&self, j: usize) -> Option<std::borrow::Cow<'_, lock::TakenLock>> {
        match self.locks.get(j) {
            Some(lock) => lock.as_ref().map(std::borrow::Cow::Borrowed),
            None => lock::strong_lock(self.env, self.catalog, self.file, j).map(std::borrow::Cow::Owned),
        }
    }
}

/// The state a file rule sees: the catalog before (`start`) or after
/// (`end`) the file, depending on the hook.
pub struct FileCtx<'a> {
    pub env: &'a Env<'a>,
    pub file: &'a FileInfo<'a>,
    pub catalog: &'a Catalog,
}

/// A finding before the dispatcher adds the rule id and severity.
#[derive(Clone, Debug)]
pub struct Finding {
    pub region: Region,
    pub message: String,
    pub help: Option<String>,
    pub fix: Option<Fix>,
    /// Why a rule that fixes such findings left this one without a fix
    /// (`strata check --fix` says so).
    pub unfixed: Option<String>,
    /// The statement the finding is about (for `strata-ignore`).
    pub statement: Option<usize>,
}

/// What a rule attaches to a finding: a fix, the reason it has none, or
/// nothing (a rule without mechanical fixes).
pub enum Fixing {
    Fix(Fix),
    Unfixed(String),
    Nothing,
}

impl From<Option<Fix>> for Fixing {
    fn from(fix: Option<Fix>) -> Self {
        fix.map_or(Fixing::Nothing, Fixing::Fix)
    }
}

impl From<Fix> for Fixing {
    fn from(fix: Fix) -> Self {
        Fixing::Fix(fix)
    }
}

impl From<Result<Fix, String>> for Fixing {
    fn from(fix: Result<Fix, String>) -> Self {
        fix.map_or_else(Fixing::Unfixed, Fixing::Fix)
    }
}

impl Finding {
    pub fn new(region: Region, message: impl Into<String>) -> Self {
        Finding {
            region,
            message: message.into(),
            help: None,
            fix: None,
            unfixed: None,
            statement: None,
        }
    }
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    pub fn at_statement(mut self, i: usize) -> Self {
        self.statement = Some(i);
        self
    }
    pub fn with_fix(mut self, fix: impl Into<Fixing>) -> Self {
        (self.fix, self.unfixed) = match fix.into() {
            Fixing::Fix(f) => (Some(f), None),
            Fixing::Unfixed(why) => (None, Some(why)),
            Fixing::Nothing => (None, None),
        };
        self
    }
}

pub trait Rule: Send + Sync {
    fn meta(&self) -> &'static RuleMeta;
    /// Reads `[rules.<id>]` options; an error names the bad option.
    fn configure(&mut self, _options: &toml::Table) -> Result<(), String> {
        Ok(())
    }
    /// Called once per file before its statements.
    fn check_file_start(&self, _cx: &FileCtx, _out: &mut Vec<Finding>) {}
    /// Called for every statement, with the catalog before it.
    fn check_statement(&self, _cx: &StatementCtx, _out: &mut Vec<Finding>) {}
    /// Called once per file with the catalog after its last statement.
    fn check_file_end(&self, _cx: &FileCtx, _out: &mut Vec<Finding>) {}
    /// Whether the rule judges the statements of function bodies (what a
    /// function does when called), not only those that run with the
    /// migration.
    fn judges_function_bodies(&self) -> bool {
        false
    }
}

macro_rules! rule_table {
    ($($module:ident::$ty:ident),+ $(,)?) => {
        /// Every rule's metadata, in id order of declaration.
        pub static ALL: &[&RuleMeta] = &[$(&$module::META),+];

        /// Fresh instances of every rule with default options.
        pub fn instances() -> Vec<Box<dyn Rule>> {
            vec![$(Box::new($module::$ty::default())),+]
        }
    };
}

rule_table! {
    lid_column::LidColumnRule,
    rls_missing::RlsMissing,
    rls_not_forced::RlsNotForced,
    rls_disabled::RlsDisabled,
    policy_missing::PolicyMissing,
    policy_not_tenant_scoped::PolicyNotTenantScopedRule,
    policy_always_true::PolicyAlwaysTrue,
    tenant_key_missing::TenantKeyMissing,
    container_scope::ContainerScopeRule,
    bespoke_table::BespokeTableRule,
    parallel_person_table::ParallelPersonTableRule,
    person_ref_not_contact::PersonRefNotContactRule,
    layer_boundary::LayerBoundary,
    idempotent_ddl::IdempotentDdl,
    prefer_bigint::PreferBigintRule,
    prefer_identity::PreferIdentity,
    prefer_text::PreferText,
    ban_char::BanChar,
    prefer_timestamptz::PreferTimestamptz,
    prefer_jsonb::PreferJsonb,
    identifier_too_long::IdentifierTooLong,
    duplicate_column::DuplicateColumn,
    require_table_schema::RequireTableSchema,
    fk_missing_index::FkMissingIndex,
    no_primary_key::NoPrimaryKey,
    security_definer_search_path::SecurityDefinerSearchPath,
    view_security_invoker::ViewSecurityInvoker,
    extension_in_public::ExtensionInPublicRule,
    multiple_permissive_policies::MultiplePermissivePolicies,
    policy_initplan::PolicyInitplanRule,
    migration_name::MigrationName,
    migration_modified::MigrationModified,
    migration_order::MigrationOrder,
    unparsed_statement::UnparsedStatement,
    syntax_error::SyntaxError,
    ddl_in_function::DdlInFunction,
    opaque_sql::OpaqueSql,
    unused_suppression::UnusedSuppression,
    // Lock safety and correctness of change.
    require_concurrent_index::RequireConcurrentIndex,
    require_concurrent_index_drop::RequireConcurrentIndexDrop,
    require_concurrent_reindex::RequireConcurrentReindex,
    require_concurrent_detach::RequireConcurrentDetach,
    concurrent_in_transaction::ConcurrentInTransaction,
    constraint_not_valid::ConstraintNotValid,
    set_not_null::SetNotNull,
    add_required_column::AddRequiredColumn,
    add_primary_key::AddPrimaryKey,
    unique_constraint::UniqueConstraint,
    exclusion_constraint::ExclusionConstraint,
    column_type_change::ColumnTypeChange,
    volatile_default::VolatileDefaultRule,
    rename_column::RenameColumn,
    rename_table::RenameTable,
    drop_column::DropColumn,
    drop_table::DropTableRule,
    drop_schema::DropSchema,
    drop_database::DropDatabase,
    drop_not_null::DropNotNull,
    truncate_cascade::TruncateCascade,
    whole_table_write::WholeTableWrite,
    require_lock_timeout::RequireLockTimeout,
    require_statement_timeout::RequireStatementTimeout,
    work_after_access_exclusive::WorkAfterAccessExclusive,
    // Observed by `strata check --shadow` (src/pg/shadow.rs).
    lock_taken::LockTaken,
    table_rewrite::TableRewrite,
    transaction_nesting::TransactionNesting,
    uncommitted_transaction::UncommittedTransaction,
    enum_value_ordering::EnumValueOrdering,
    domain_constraint::DomainConstraint,
    prefer_repack::PreferRepack,
}

pub fn meta_of(id: &str) -> Option<&'static RuleMeta> {
    ALL.iter().copied().find(|m| m.id == id)
}

/// ` (did you mean `x`?)` for an unknown rule id: the closest ids by edit
/// distance (a typo or two), else the ids that contain it; empty when none
/// is close.
pub fn did_you_mean(id: &str) -> String {
    let id = id.trim().to_ascii_lowercase().replace('_', "-");
    let mut close: Vec<(usize, &str)> = ALL
        .iter()
        .map(|m| (strsim::damerau_levenshtein(&id, m.id), m.id))
        .filter(|(d, rule)| *d <= (rule.len() / 5).max(2))
        .collect();
    close.sort();
    let names: Vec<&str> = match close.first() {
        Some(&(best, _)) => close.iter().take_while(|(d, _)| *d == best).map(|(_, r)| *r).collect(),
        None if id.len() >= 4 => ALL.iter().map(|m| m.id).filter(|r| r.contains(id.as_str())).take(5).collect(),
        None => Vec::new(),
    };
    match names.as_slice() {
        [] => String::new(),
        [one] => format!(" (did you mean `{one}`?)"),
        many => format!(
            " (did you mean one of {}?)",
            many.iter().map(|r| format!("`{r}`")).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Instances configured from a workspace's rules/*.toml.
pub fn configured(cfg: &RulesConfig) -> crate::Result<Vec<Box<dyn Rule>>> {
    if let Some(s) = cfg.sections.iter().find(|s| meta_of(&s.id).is_none()) {
        return Err(crate::Error::Config {
            path: s.path.clone(),
            line: s.line,
            col: s.col,
            message: format!("unknown rule `{}`{} (see `strata rules`)", s.id, did_you_mean(&s.id)),
        });
    }
    let mut rules = instances();
    for r in &mut rules {
        if let Some(settings) = cfg.rules.get(r.meta().id) {
            r.configure(&settings.options).map_err(|message| crate::Error::Config {
                path: settings.source.clone().into(),
                line: 1,
                col: 1,
                message: format!("[rules.{}]: {message}", r.meta().id),
            })?;
        }
    }
    Ok(rules)
}

/// Region of an identifier when sqlparser recorded its span.
pub fn ident_region(id: &sqlparser::ast::Ident) -> Option<Region> {
    let s = id.span;
    (s.start.line > 0).then(|| {
        Region::new(
            crate::diag::Pos::new(s.start.line as u32, s.start.column as u32),
            crate::diag::Pos::new(
                s.end.line as u32,
                (s.end.column as u32).saturating_sub(1).max(s.start.column as u32),
            ),
        )
    })
}

/// A string option that is a list of strings.
pub fn string_list(options: &toml::Table, key: &str) -> Result<Option<Vec<String>>, String> {
    match options.get(key) {
        None => Ok(None),
        Some(toml::Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("`{key}` must be a list of strings"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(format!("`{key}` must be a list of strings")),
    }
}

/// Matches a name against a pattern with `*` wildcards (`*_lid`, `lid`).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let mut rest = name;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else { return false };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(at) = rest.find(part) else { return false };
            rest = &rest[at + part.len()..];
        }
    }
    true
}

/// The severity a rule gets in a layer, after configuration.
pub fn severity_in(cfg: &RulesConfig, meta: &RuleMeta, layer: Option<&LayerInfo>) -> Severity {
    cfg.severity(
        meta.id,
        Some(meta.group),
        meta.default_severity,
        layer.map(|l| l.kind.as_str()),
        layer.map(|l| l.id.as_str()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misspelled_ids_get_the_closest() {
        assert_eq!(
            did_you_mean("require-concurent-index"),
            " (did you mean `require-concurrent-index`?)"
        );
        assert_eq!(did_you_mean("RLS_MISING"), " (did you mean `rls-missing`?)");
        assert!(
            did_you_mean("concurrent").contains("`require-concurrent-index`"),
            "{}",
            did_you_mean("concurrent")
        );
        assert_eq!(did_you_mean("governance-xyzzy-frobnicate"), "");
        assert_eq!(did_you_mean("ab"), "");
    }

    #[test]
    fn ids_are_unique_kebab_case_and_documented() {
        let mut seen = std::collections::HashSet::new();
        for m in ALL {
            assert!(seen.insert(m.id), "duplicate rule id {}", m.id);
            assert!(m.id.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'), "{}", m.id);
            for h in ["## What it does", "## Why is this bad?", "## Example", "## How to fix"] {
                assert!(m.doc.contains(h), "{} lacks {h}", m.id);
            }
        }
    }

    #[test]
    fn glob() {
        assert!(glob_match("*_lid", "wa_lid"));
        assert!(glob_match("lid", "lid"));
        assert!(!glob_match("lid", "lids"));
        assert!(!glob_match("*_lid", "valid"));
        assert!(glob_match("*lid*", "solid_x"));
    }
}
