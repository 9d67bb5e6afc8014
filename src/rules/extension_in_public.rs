use sqlparser::ast::Statement as Ast;

use super::{ident_region, string_list, Finding, Rule, RuleMeta, StatementCtx};
use crate::catalog::ident_name;

crate::declare_rule! {
    /// ## What it does
    /// Flags `CREATE EXTENSION` that installs into `public`: with
    /// `WITH SCHEMA public`, or without `WITH SCHEMA` while `public` is the
    /// current schema.
    ///
    /// ## Why is this bad?
    /// An extension's functions, types and operators land among the
    /// application's tables: they show up in schema diffs and drift reports,
    /// they collide with application names, and every role that can create in
    /// `public` can shadow them. A dedicated schema (Orbis uses `extensions`)
    /// keeps them apart and lets grants be given once.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// CREATE EXTENSION IF NOT EXISTS vector;
    /// -- good
    /// CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA extensions;
    /// ```
    ///
    /// ## How to fix
    /// Add `WITH SCHEMA extensions` (create the schema once in core) and refer
    /// to the extension's objects qualified (`extensions.vector(1536)`).
    ///
    /// ## Options
    /// `schema`: the schema suggested in the help (default `extensions`);
    /// `allow`: extensions that may stay where they are (default `plpgsql`).
    pub struct ExtensionInPublic {
        id: "extension-in-public",
        group: Correctness,
        severity: Error,
        summary: "an extension installed into the public schema",
        needs_workspace: false,
    }
}

/// The configured instance (the declared type holds only metadata).
#[derive(Debug, Clone)]
pub struct ExtensionInPublicRule {
    schema: String,
    allow: Vec<String>,
}

impl Default for ExtensionInPublicRule {
    fn default() -> Self {
        ExtensionInPublicRule {
            schema: "extensions".into(),
            allow: vec!["plpgsql".into()],
        }
    }
}

impl Rule for ExtensionInPublicRule {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn configure(&mut self, options: &toml::Table) -> Result<(), String> {
        if let Some(v) = options.get("schema") {
            self.schema = v.as_str().ok_or("`schema` must be a string")?.to_string();
        }
        if let Some(v) = string_list(options, "allow")? {
            self.allow = v.into_iter().map(|s| s.to_lowercase()).collect();
        }
        Ok(())
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some(Ast::CreateExtension(ce)) = cx.stmt.ast() else { return };
        let name = ident_name(&ce.name);
        if self.allow.contains(&name) {
            return;
        }
        let (schema, how) = match &ce.schema {
            Some(s) => (ident_name(s), "WITH SCHEMA public"),
            None => (
                cx.catalog.current_schema().to_string(),
                "no WITH SCHEMA while public is the current schema",
            ),
        };
        if schema != "public" {
            return;
        }
        out.push(
            Finding::new(
                ident_region(&ce.name).unwrap_or(cx.stmt.region),
                format!("extension `{name}` is installed into public ({how})"),
            )
            .help(format!("add `WITH SCHEMA {}`", self.schema))
            .at_statement(cx.index),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_plain, ids, render_rule};

    #[test]
    fn fires_on_extensions_in_public() {
        let d = check_plain("CREATE EXTENSION IF NOT EXISTS vector;\nCREATE EXTENSION pg_trgm WITH SCHEMA public;\n");
        assert_eq!(ids(&d, "extension-in-public"), 2, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "extension-in-public"));
    }

    #[test]
    fn quiet_in_a_dedicated_schema() {
        let d = check_plain(
            "CREATE SCHEMA IF NOT EXISTS extensions;\nCREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA extensions;\nSET search_path = extensions;\nCREATE EXTENSION pg_trgm;\nCREATE EXTENSION plpgsql;\n",
        );
        assert_eq!(ids(&d, "extension-in-public"), 0, "{d:#?}");
    }
}
