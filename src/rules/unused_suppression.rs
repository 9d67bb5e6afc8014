use super::{Rule, RuleMeta};

crate::declare_rule! {
    /// ## What it does
    /// Reports a `strata-ignore` comment that suppresses nothing, names an
    /// unknown rule, or gives no reason.
    ///
    /// ## Why is this bad?
    /// Suppressions are governance decisions. One without a reason cannot be
    /// reviewed; one that suppresses nothing hides the next real finding on
    /// that statement; one that names a misspelt rule suppresses nothing and
    /// gives false confidence.
    ///
    /// ## Example
    /// ```sql
    /// -- strata-ignore rls-missing
    /// CREATE TABLE notes (id uuid PRIMARY KEY);   -- no reason given
    /// -- strata-ignore lid-colum: legacy import   -- unknown rule
    /// SELECT 1;
    /// ```
    ///
    /// ## How to fix
    /// Write `-- strata-ignore <rule>: <reason>` on the line before the
    /// statement, with a real rule id and a reason; delete suppressions that
    /// no longer suppress anything.
    pub struct UnusedSuppression {
        id: "unused-suppression",
        group: Review,
        severity: Warning,
        summary: "a strata-ignore comment that suppresses nothing, names an unknown rule, or has no reason",
        needs_workspace: false,
    }
}

/// Reported by the dispatcher, which knows which suppressions were used.
impl Rule for UnusedSuppression {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }
}
