//! Reading RLS policy expressions: whether a policy pins a key column to the
//! session's tenant (or container) context, and whether it is always true.
//! Shared by the policy rules and `container-scope`.

use std::collections::HashMap;
use std::ops::ControlFlow;

use sqlparser::ast::{
    visit_expressions, AlterPolicyOperation, BinaryOperator, CastKind, DataType, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArguments, ObjectNamePart, Statement as Ast, UnaryOperator, Value, Visit,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use super::{ident_region, string_list, Env, FileCtx};
use crate::catalog::{ident_name, Policy, PolicyCommand, QName, Table};
use crate::diag::Region;
use crate::workspace::TenancyMode;

/// How the first argument of a context call must look.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ArgMatch {
    Any,
    /// The setting name exactly (`'app.org_id'`).
    Exact(String),
    /// A setting name that is the key or ends with `.<key>` (`orbis.container_id`).
    KeySuffix(String),
}

/// A function call that yields the session's tenant or container.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ContextCall {
    /// Lower-case, dotted: `current_setting`, `auth.uid`.
    name: String,
    arg: ArgMatch,
}

/// The expressions a workspace accepts as "the current tenant" (or container).
#[derive(Clone, Debug, Default)]
pub struct Context {
    calls: Vec<ContextCall>,
    /// Configured expressions without any function call, compared as
    /// normalized text.
    texts: Vec<String>,
    /// The expressions as configured, for messages.
    pub shown: Vec<String>,
}

pub fn function_name(f: &Function) -> String {
    f.name
        .0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(id) => ident_name(id),
            ObjectNamePart::Function(f) => f.to_string().to_lowercase(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn first_string_arg(f: &Function) -> Option<String> {
    let FunctionArguments::List(list) = &f.args else { return None };
    match list.args.first()? {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v))) => match &v.value {
            Value::SingleQuotedString(s) => Some(s.to_lowercase()),
            _ => None,
        },
        _ => None,
    }
}

fn normalized(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect()
}

/// Parses one SQL expression as PostgreSQL would.
pub fn parse_expr(sql: &str) -> Result<Expr, String> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| format!("`{sql}` is not an SQL expression: {e}"))
}

impl Context {
    /// The context given by configured expressions (`current_setting('app.org_id')::uuid`).
    pub fn from_exprs(exprs: &[String]) -> Result<Context, String> {
        let mut cx = Context::default();
        for sql in exprs {
            let e = parse_expr(sql)?;
            let mut calls = Vec::new();
            let _ = visit_expressions(&e, |x| {
                if let Expr::Function(f) = x {
                    calls.push(ContextCall {
                        name: function_name(f),
                        arg: first_string_arg(f).map_or(ArgMatch::Any, ArgMatch::Exact),
                    });
                }
                ControlFlow::<()>::Continue(())
            });
            if calls.is_empty() {
                cx.texts.push(normalized(&e.to_string()));
            }
            cx.calls.extend(calls);
            cx.shown.push(sql.clone());
        }
        Ok(cx)
    }

    /// `current_setting('<anything>.<key>')`: how a database-per-tenant
    /// workspace names the current container unless configured otherwise.
    pub fn setting_named(key: &str) -> Context {
        Context {
            calls: vec![ContextCall {
                name: "current_setting".into(),
                arg: ArgMatch::KeySuffix(key.to_lowercase()),
            }],
            texts: Vec::new(),
            shown: vec![format!("current_setting('<prefix>.{key}')")],
        }
    }

    fn is_call(&self, f: &Function) -> bool {
        let name = function_name(f);
        self.calls.iter().any(|c| {
            c.name == name
                && match &c.arg {
                    ArgMatch::Any => true,
                    ArgMatch::Exact(a) => first_string_arg(f).as_deref() == Some(a.as_str()),
                    ArgMatch::KeySuffix(k) => first_string_arg(f).is_some_and(|a| a == *k || a.ends_with(&format!(".{k}"))),
                }
        })
    }

    /// Whether `node` (an expression or a subquery) mentions the context.
    pub fn mentioned_in<V: Visit>(&self, node: &V) -> bool {
        let found = visit_expressions(node, |x| match x {
            Expr::Function(f) if self.is_call(f) => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        })
        .is_break();
        found || {
            let mut text = String::new();
            let _ = visit_expressions(node, |x| {
                if text.is_empty() {
                    text = normalized(&x.to_string());
                }
                ControlFlow::<()>::Continue(())
            });
            self.texts.iter().any(|t| text.contains(t.as_str()))
        }
    }

    /// Whether `e` only admits rows whose `key` column is the context:
    /// `key = <context>` (either side), `key IN (<context>, ...)`,
    /// `key IN (SELECT ... <context> ...)` or `key = ANY(<context>)`, under
    /// AND (one side suffices) and OR (both sides must).
    pub fn constrains(&self, e: &Expr, key: &str) -> bool {
        match e {
            Expr::Nested(x) => self.constrains(x, key),
            Expr::BinaryOp { left, op, right } => match op {
                BinaryOperator::And => self.constrains(left, key) || self.constrains(right, key),
                BinaryOperator::Or => self.constrains(left, key) && self.constrains(right, key),
                BinaryOperator::Eq => {
                    (is_column(left, key) && self.mentioned_in(right.as_ref()))
                        || (is_column(right, key) && self.mentioned_in(left.as_ref()))
                }
                _ => false,
            },
            Expr::InList {
                expr,
                list,
                negated: false,
            } => is_column(expr, key) && !list.is_empty() && list.iter().all(|x| self.mentioned_in(x)),
            Expr::InSubquery {
                expr,
                subquery,
                negated: false,
            } => is_column(expr, key) && self.mentioned_in(subquery.as_ref()),
            Expr::AnyOp {
                left,
                compare_op: BinaryOperator::Eq,
                right,
                ..
            } => is_column(left, key) && self.mentioned_in(right.as_ref()),
            _ => false,
        }
    }
}

/// `key`, `t.key` or `key::type`.
fn is_column(e: &Expr, key: &str) -> bool {
    match e {
        Expr::Identifier(id) => ident_name(id) == key,
        Expr::CompoundIdentifier(ids) => ids.last().is_some_and(|id| ident_name(id) == key),
        Expr::Nested(x) => is_column(x, key),
        Expr::Cast { expr, .. } => is_column(expr, key),
        _ => false,
    }
}

/// Whether an expression is true for every row: `true`, `(1 = 1)`,
/// `'t'::boolean`, `NOT false`, and AND/OR of such.
pub fn is_always_true(e: &Expr) -> bool {
    match e {
        Expr::Value(v) => matches!(v.value, Value::Boolean(true)),
        Expr::Nested(x) => is_always_true(x),
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr,
        } => is_always_false(expr),
        Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::Or => is_always_true(left) || is_always_true(right),
            BinaryOperator::And => is_always_true(left) && is_always_true(right),
            BinaryOperator::Eq | BinaryOperator::GtEq | BinaryOperator::LtEq => is_literal(left) && left.to_string() == right.to_string(),
            _ => false,
        },
        Expr::Cast {
            kind: CastKind::DoubleColon | CastKind::Cast,
            expr,
            data_type: DataType::Boolean | DataType::Bool,
            ..
        } => match expr.as_ref() {
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) => matches!(s.to_lowercase().as_str(), "t" | "true" | "on" | "yes" | "y" | "1"),
                Value::Boolean(b) => *b,
                _ => false,
            },
            _ => false,
        },
        _ => false,
    }
}

fn is_always_false(e: &Expr) -> bool {
    match e {
        Expr::Value(v) => matches!(v.value, Value::Boolean(false)),
        Expr::Nested(x) => is_always_false(x),
        _ => false,
    }
}

fn is_literal(e: &Expr) -> bool {
    match e {
        Expr::Value(v) => !matches!(v.value, Value::Null),
        Expr::Nested(x) => is_literal(x),
        _ => false,
    }
}

/// The expressions a policy admits rows with: USING for reads, WITH CHECK
/// (or USING when absent, as PostgreSQL does for UPDATE and ALL) for writes.
/// `None` stands for a missing expression, which admits every row.
pub fn policy_clauses(p: &Policy) -> Vec<(&'static str, Option<&Expr>)> {
    let using = ("USING", p.using.as_ref());
    let check = ("WITH CHECK", p.with_check.as_ref().or(p.using.as_ref()));
    match p.command {
        PolicyCommand::Select | PolicyCommand::Delete => vec![using],
        PolicyCommand::Insert => vec![("WITH CHECK", p.with_check.as_ref())],
        PolicyCommand::Update | PolicyCommand::All => vec![using, check],
    }
}

/// Where a file creates or alters policies: (table, policy name) → the name's
/// region and the statement index of the last such statement.
pub type PolicySites = HashMap<(QName, String), (Region, usize)>;

/// Where this file creates or alters each policy: the policies a file is
/// answerable for.
pub fn policy_sites(cx: &FileCtx) -> PolicySites {
    let mut sites = HashMap::new();
    for (i, s) in cx.file.parsed.statements.iter().enumerate() {
        let (table, name) = match s.ast() {
            Some(Ast::CreatePolicy(p)) => (&p.table_name, &p.name),
            Some(Ast::AlterPolicy(p)) => match &p.operation {
                AlterPolicyOperation::Rename { new_name } => (&p.table_name, new_name),
                AlterPolicyOperation::Apply { .. } => (&p.table_name, &p.name),
            },
            _ => continue,
        };
        let region = ident_region(name).unwrap_or(s.region);
        sites.insert((cx.catalog.resolve(table), ident_name(name)), (region, i));
    }
    // A policy this file created without a CREATE POLICY statement of its own: only the
    // live catalog of `check --shadow` knows them (a DO block, a function); the site is
    // the statement that made it appear.
    for t in cx.catalog.tables.values() {
        for p in t.policies.iter().filter(|p| p.origin.file == cx.file.id) {
            let stmt = p.origin.stmt as usize;
            if let Some(s) = cx.file.parsed.statements.get(stmt) {
                sites.entry((t.name.clone(), p.name.clone())).or_insert((s.region, stmt));
            }
        }
    }
    sites
}

/// The site of policy `p` of table `t` in this file, if the file touches it.
pub fn policy_site(sites: &PolicySites, t: &Table, p: &Policy) -> Option<(Region, usize)> {
    sites.get(&(t.name.clone(), p.name.clone())).copied()
}

pub fn command_word(c: PolicyCommand) -> &'static str {
    match c {
        PolicyCommand::All => "ALL",
        PolicyCommand::Select => "SELECT",
        PolicyCommand::Insert => "INSERT",
        PolicyCommand::Update => "UPDATE",
        PolicyCommand::Delete => "DELETE",
    }
}

/// The scoping key of the workspace and what counts as its context: in
/// shared mode the tenant key and `tenancy.tenant_context` (plus the rule's
/// `tenant_contexts`); in database-per-tenant mode the container key and the
/// rule's `container_contexts` (by default `current_setting('*.<key>')`).
pub struct Scope {
    pub key: String,
    pub context: Context,
    pub mode: TenancyMode,
}

/// The options shared by the rules that need a [`Scope`].
#[derive(Clone, Debug, Default)]
pub struct ScopeOptions {
    pub tenant_contexts: Vec<String>,
    pub container_contexts: Vec<String>,
}

impl ScopeOptions {
    pub fn configure(&mut self, options: &toml::Table) -> Result<(), String> {
        if let Some(v) = string_list(options, "tenant_contexts")? {
            Context::from_exprs(&v)?;
            self.tenant_contexts = v;
        }
        if let Some(v) = string_list(options, "container_contexts")? {
            Context::from_exprs(&v)?;
            self.container_contexts = v;
        }
        Ok(())
    }

    /// The tenant scope in shared mode.
    pub fn tenant(&self, env: &Env) -> Option<Scope> {
        let cfg = env.config?;
        let mut exprs = vec![cfg.tenancy.tenant_context.clone()];
        exprs.extend(self.tenant_contexts.iter().cloned());
        Some(Scope {
            key: cfg.tenancy.tenant_key.to_lowercase(),
            context: Context::from_exprs(&exprs).unwrap_or_default(),
            mode: TenancyMode::Shared,
        })
    }

    /// The container scope (group-chat walled gardens).
    pub fn container(&self, env: &Env) -> Option<Scope> {
        let cfg = env.config?;
        let key = cfg.tenancy.container_key.to_lowercase();
        let context = if self.container_contexts.is_empty() {
            Context::setting_named(&key)
        } else {
            Context::from_exprs(&self.container_contexts).unwrap_or_default()
        };
        Some(Scope {
            key,
            context,
            mode: TenancyMode::DatabasePerTenant,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(sql: &str) -> Expr {
        parse_expr(sql).unwrap()
    }

    #[test]
    fn tenant_context_matching() {
        let cx = Context::from_exprs(&["current_setting('app.org_id')::uuid".to_string()]).unwrap();
        assert!(cx.constrains(&e("org_id = current_setting('app.org_id')::uuid"), "org_id"));
        assert!(cx.constrains(
            &e("(SELECT nullif(current_setting('app.org_id', true), '')::uuid) = t.org_id"),
            "org_id"
        ));
        assert!(cx.constrains(&e("is_public AND org_id = (select current_setting('app.org_id')::uuid)"), "org_id"));
        assert!(cx.constrains(
            &e("org_id IN (SELECT m.org_id FROM m WHERE m.org = current_setting('app.org_id'))"),
            "org_id"
        ));
        assert!(!cx.constrains(&e("is_public OR org_id = current_setting('app.org_id')::uuid"), "org_id"));
        assert!(!cx.constrains(&e("org_id = current_setting('app.user_id')::uuid"), "org_id"));
        assert!(!cx.constrains(&e("owner_id = current_setting('app.org_id')::uuid"), "org_id"));
        assert!(!cx.constrains(&e("true"), "org_id"));
    }

    #[test]
    fn container_setting_by_suffix() {
        let cx = Context::setting_named("container_id");
        assert!(cx.constrains(
            &e("container_id = (SELECT nullif(current_setting('orbis.container_id', true), '')::uuid)"),
            "container_id"
        ));
        assert!(!cx.constrains(&e("container_id = current_setting('orbis.tenant')::uuid"), "container_id"));
    }

    #[test]
    fn always_true() {
        for t in ["true", "(true)", "1 = 1", "(1=1)", "'t'::boolean", "NOT false", "true OR x = 1"] {
            assert!(is_always_true(&e(t)), "{t}");
        }
        for f in ["x = x", "false", "org_id = current_setting('a')::uuid", "true AND x"] {
            assert!(!is_always_true(&e(f)), "{f}");
        }
    }
}
