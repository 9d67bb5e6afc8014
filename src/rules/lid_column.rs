use sqlparser::ast::{AlterTableOperation, ColumnDef, Statement};

use super::{glob_match, ident_region, Finding, Rule, RuleMeta, StatementCtx};
use crate::catalog::ident_name;

crate::declare_rule! {
    /// ## What it does
    /// Flags a column that stores a WhatsApp LID or another banned
    /// identifier: `lid`, `lid_jid`, `wa_lid`, `*_lid`, ... (configurable).
    ///
    /// ## Why is this bad?
    /// A LID is an opaque, per-account alias that WhatsApp may rotate; it is
    /// not a person's identity. Orbis routes by phone number (E.164) held in
    /// `contacts.phone`, and never stores LIDs: once a LID column exists,
    /// code starts joining on it and people get split or merged wrongly.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// ALTER TABLE contacts ADD COLUMN lid_jid text;
    /// -- good: resolve the LID to a phone number at the edge, store the phone
    /// ALTER TABLE contacts ADD COLUMN phone text;
    /// ```
    ///
    /// ## How to fix
    /// Drop the column from the migration. Resolve identifiers to a contact
    /// (by phone) before writing, and store `contact_id`.
    ///
    /// ## Options
    /// `patterns`: a list of `{ pattern = "*_lid", message = "..." }` tables
    /// (or plain strings); `*` matches any run of characters.
    pub struct LidColumn {
        id: "lid-column",
        group: Governance,
        severity: Error,
        summary: "a column that stores a WhatsApp LID or another banned identifier",
        needs_workspace: true,
    }
}

#[derive(Debug, Clone)]
pub struct Pattern {
    pattern: String,
    message: Option<String>,
}

/// The configured instance (the declared type holds only metadata).
#[derive(Debug, Clone)]
pub struct LidColumnRule {
    patterns: Vec<Pattern>,
}

impl Default for LidColumnRule {
    fn default() -> Self {
        let p = |s: &str| Pattern {
            pattern: s.to_string(),
            message: None,
        };
        LidColumnRule {
            patterns: ["lid", "lid_jid", "wa_lid", "*_lid", "*_lid_jid", "whatsapp_lid*"]
                .into_iter()
                .map(p)
                .collect(),
        }
    }
}

impl LidColumnRule {
    /// The banned pattern a column name matches, if any.
    pub fn banned_pattern(&self, name: &str) -> Option<&str> {
        let name = name.to_lowercase();
        self.patterns
            .iter()
            .find(|p| glob_match(&p.pattern, &name))
            .map(|p| p.pattern.as_str())
    }

    fn check_column(&self, col: &ColumnDef, table: &str, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let name = ident_name(&col.name);
        if let Some(p) = self.patterns.iter().find(|p| glob_match(&p.pattern, &name)) {
            let region = ident_region(&col.name).unwrap_or(cx.stmt.region);
            let msg = p.message.clone().unwrap_or_else(|| {
                "WhatsApp LIDs are never stored as identity; phone (E.164) in contacts is the routing identifier".to_string()
            });
            out.push(
                Finding::new(
                    region,
                    format!(
                        "column `{table}.{name}` matches the banned identifier pattern `{}`: {msg}",
                        p.pattern
                    ),
                )
                .help("remove the column; resolve the sender to a contact by phone and store contact_id")
                .at_statement(cx.index),
            );
        }
    }
}

impl Rule for LidColumnRule {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn configure(&mut self, options: &toml::Table) -> Result<(), String> {
        let Some(v) = options.get("patterns") else { return Ok(()) };
        let arr = v.as_array().ok_or("`patterns` must be a list")?;
        self.patterns = arr
            .iter()
            .map(|item| match item {
                toml::Value::String(s) => Ok(Pattern {
                    pattern: s.to_lowercase(),
                    message: None,
                }),
                toml::Value::Table(t) => Ok(Pattern {
                    pattern: t
                        .get("pattern")
                        .and_then(|p| p.as_str())
                        .ok_or("each entry of `patterns` needs `pattern = \"...\"`")?
                        .to_lowercase(),
                    message: t.get("message").and_then(|m| m.as_str()).map(str::to_string),
                }),
                _ => Err("`patterns` entries are strings or { pattern, message } tables"),
            })
            .collect::<Result<_, _>>()?;
        Ok(())
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        match cx.stmt.ast() {
            Some(Statement::CreateTable(ct)) => {
                let table = cx.catalog.resolve(&ct.name).to_string();
                for col in &ct.columns {
                    self.check_column(col, &table, cx, out);
                }
            }
            Some(Statement::AlterTable(at)) => {
                let table = cx.catalog.resolve(&at.name).to_string();
                for op in &at.operations {
                    match op {
                        AlterTableOperation::AddColumn { column_def, .. } => self.check_column(column_def, &table, cx, out),
                        AlterTableOperation::RenameColumn { new_column_name, .. } => {
                            let col = ColumnDef {
                                name: new_column_name.clone(),
                                data_type: sqlparser::ast::DataType::Text,
                                options: Vec::new(),
                            };
                            self.check_column(&col, &table, cx, out);
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, finding, ids};

    #[test]
    fn fires_on_lid_columns() {
        let d = check_ws(&[(
            "core/0001_contacts.sql",
            "CREATE TABLE contacts (id uuid PRIMARY KEY, phone text, wa_lid text);\nALTER TABLE contacts ADD COLUMN lid_jid text;",
        )]);
        assert_eq!(ids(&d, "lid-column"), 2, "{d:#?}");
        let first = finding(&d, "lid-column");
        assert_eq!((first.region.start.line, first.region.start.col), (1, 57));
    }

    #[test]
    fn quiet_on_valid_and_phone() {
        let d = check_ws(&[(
            "core/0001_contacts.sql",
            "CREATE TABLE contacts (id uuid PRIMARY KEY, phone text, valid boolean, solid text);",
        )]);
        assert_eq!(ids(&d, "lid-column"), 0, "{d:#?}");
    }
}
