use std::ops::ControlFlow;

use sqlparser::ast::{AlterPolicyOperation, Expr, ObjectNamePart, Query, Statement as Ast, Visit, Visitor};

use super::helpers::{byte_region, replace_fix};
use super::policy_expr::function_name;
use super::{glob_match, string_list, Finding, Rule, RuleMeta, StatementCtx};
use crate::diag::{Pos, SourceFile};

crate::declare_rule! {
    /// ## What it does
    /// Flags a call to `current_setting()` or an `auth.*()` function (the
    /// configurable list) in a policy's USING or WITH CHECK expression that is
    /// not wrapped in a scalar subquery `(select ...)`.
    ///
    /// ## Why is this bad?
    /// PostgreSQL evaluates a bare function call in a policy once per row it
    /// checks. Wrapped in `(select ...)`, the call becomes an *initplan*:
    /// evaluated once per statement and then compared like a constant, which
    /// also lets the planner use an index on the key column. On a table of a
    /// million messages that is the difference between a million calls and
    /// one.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// CREATE POLICY messages_container ON messages FOR ALL TO orbis_app
    ///     USING (container_id = current_setting('orbis.container_id')::uuid);
    /// -- good
    /// CREATE POLICY messages_container ON messages FOR ALL TO orbis_app
    ///     USING (container_id = (select current_setting('orbis.container_id'))::uuid);
    /// ```
    ///
    /// ## How to fix
    /// Wrap the call: `(select current_setting('app.org_id'))`. The attached
    /// fix does exactly that. (The function must not depend on the row, which
    /// holds for settings and `auth.uid()`.)
    ///
    /// ## Options
    /// `functions`: patterns of function names (`*` wildcards, schema
    /// included), default `["current_setting", "auth.*"]`.
    pub struct PolicyInitplan {
        id: "policy-initplan",
        group: Correctness,
        severity: Warning,
        summary: "a per-row current_setting() / auth.*() call in a policy, not wrapped in (select ...)",
        needs_workspace: false,
    }
}

/// The configured instance (the declared type holds only metadata).
#[derive(Debug, Clone)]
pub struct PolicyInitplanRule {
    functions: Vec<String>,
}

impl Default for PolicyInitplanRule {
    fn default() -> Self {
        PolicyInitplanRule {
            functions: vec!["current_setting".into(), "auth.*".into()],
        }
    }
}

/// Calls of the configured functions outside any subquery: the name and the
/// position where the call's name starts and ends (exclusive).
struct BareCalls<'a> {
    functions: &'a [String],
    depth: usize,
    /// For each function call being visited, whether it was reported: calls
    /// inside a reported call are covered by its fix.
    calls: Vec<bool>,
    found: Vec<(String, Pos, Pos)>,
}

impl Visitor for BareCalls<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if matches!(expr, Expr::Function(_)) {
            self.calls.pop();
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        let Expr::Function(f) = expr else {
            return ControlFlow::Continue(());
        };
        let reported = self.found.len();
        if self.depth == 0 && !self.calls.contains(&true) {
            let name = function_name(f);
            let idents: Vec<_> = f
                .name
                .0
                .iter()
                .filter_map(|p| match p {
                    ObjectNamePart::Identifier(id) => Some(id.span),
                    ObjectNamePart::Function(_) => None,
                })
                .collect();
            if let (Some(first), Some(last)) = (idents.first(), idents.last()) {
                if first.start.line > 0 && self.functions.iter().any(|p| glob_match(p, &name)) {
                    self.found.push((
                        name,
                        Pos::new(first.start.line as u32, first.start.column as u32),
                        Pos::new(last.end.line as u32, last.end.column as u32),
                    ));
                }
            }
        }
        self.calls.push(self.found.len() > reported);
        ControlFlow::Continue(())
    }
}

/// The byte after the `)` that closes the argument list starting at or after
/// `from` (quotes respected).
fn call_end(text: &str, from: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = from;
    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    if bytes.get(i) != Some(&b'(') {
        return None;
    }
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None => match b {
                b'\'' | b'"' => quote = Some(b),
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i + 1);
                    }
                }
                _ => {}
            },
        }
        i += 1;
    }
    None
}

impl PolicyInitplanRule {
    fn check_expr(&self, e: &Expr, source: &SourceFile, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let mut calls = BareCalls {
            functions: &self.functions,
            depth: 0,
            calls: Vec::new(),
            found: Vec::new(),
        };
        let _ = e.visit(&mut calls);
        for (name, start, name_end) in calls.found {
            let from = source.offset(start);
            let message = format!("`{name}()` in a policy is called once per row; wrapped in (select ...) it runs once per statement");
            let f = match call_end(&source.text, source.offset(name_end)) {
                Some(to) => {
                    let call = &source.text[from..to];
                    let mut f = Finding::new(byte_region(source, from, to), message).help(format!("write `(select {call})`"));
                    f.fix = Some(replace_fix(
                        format!("wrap `{call}` in (select ...)"),
                        from,
                        to,
                        format!("(select {call})"),
                    ));
                    f
                }
                None => Finding::new(crate::diag::Region::point(start), message).help(format!("write `(select {name}(...))`")),
            };
            out.push(f.at_statement(cx.index));
        }
    }
}

impl Rule for PolicyInitplanRule {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn configure(&mut self, options: &toml::Table) -> Result<(), String> {
        if let Some(v) = string_list(options, "functions")? {
            self.functions = v.into_iter().map(|s| s.to_lowercase()).collect();
        }
        Ok(())
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let (using, with_check) = match cx.stmt.ast() {
            Some(Ast::CreatePolicy(p)) => (p.using.as_ref(), p.with_check.as_ref()),
            Some(Ast::AlterPolicy(p)) => match &p.operation {
                AlterPolicyOperation::Apply { using, with_check, .. } => (using.as_ref(), with_check.as_ref()),
                AlterPolicyOperation::Rename { .. } => return,
            },
            _ => return,
        };
        let source = &cx.file.parsed.source;
        for e in using.into_iter().chain(with_check) {
            self.check_expr(e, source, cx, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{apply_fixes, check_plain, ids, render_rule};

    const TABLE: &str = "CREATE TABLE messages (id uuid PRIMARY KEY, container_id uuid NOT NULL, author uuid);\n";

    #[test]
    fn fires_on_bare_calls_with_a_wrapping_fix() {
        let sql = format!(
            "{TABLE}CREATE POLICY messages_container ON messages FOR ALL TO orbis_app\n    USING (container_id = current_setting('orbis.container_id')::uuid)\n    WITH CHECK (container_id = nullif(current_setting('orbis.container_id', true), '')::uuid AND author = auth.uid());\n"
        );
        let d = check_plain(&sql);
        assert_eq!(ids(&d, "policy-initplan"), 3, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "policy-initplan"));
        let fixed = apply_fixes(&sql, &d, "policy-initplan");
        assert!(
            fixed.contains("USING (container_id = (select current_setting('orbis.container_id'))::uuid)"),
            "{fixed}"
        );
        assert!(
            fixed.contains("nullif((select current_setting('orbis.container_id', true)), '')::uuid AND author = (select auth.uid())"),
            "{fixed}"
        );
    }

    #[test]
    fn a_call_inside_a_reported_call_is_covered_by_its_fix() {
        let d = check_plain(&format!(
            "{TABLE}CREATE POLICY m ON messages FOR SELECT USING (container_id = current_setting(auth.jwt() ->> 'setting')::uuid);\n"
        ));
        assert_eq!(ids(&d, "policy-initplan"), 1, "{d:#?}");
    }

    #[test]
    fn quiet_when_wrapped() {
        let d = check_plain(&format!(
            "{TABLE}CREATE POLICY messages_container ON messages FOR ALL TO orbis_app\n    USING (container_id = (SELECT nullif(current_setting('orbis.container_id', true), '')::uuid))\n    WITH CHECK (author = (select auth.uid()) AND container_id IS NOT NULL);\n"
        ));
        assert_eq!(ids(&d, "policy-initplan"), 0, "{d:#?}");
    }
}
