use super::{FileCtx, Finding, Released, Rule, RuleMeta};
use crate::diag::{Pos, Region};

crate::declare_rule! {
    /// ## What it does
    /// Flags a new migration (not yet in `strata.sum`) that sorts below its
    /// layer's released head.
    ///
    /// ## Why is this bad?
    /// Tenants that are at the head will never apply a migration numbered
    /// below it (or will apply it out of order), while new tenants apply it
    /// in sequence: the fleet diverges. This typically happens when a branch
    /// was opened before another one released the same numbers.
    ///
    /// ## Example
    /// ```text
    /// strata.sum releases core up to 0012; the branch adds core/0011_add_tags.sql
    /// ```
    ///
    /// ## How to fix
    /// Renumber the new migration above the released head (`strata new`
    /// picks the next number).
    pub struct MigrationOrder {
        id: "migration-order",
        group: History,
        severity: Error,
        summary: "a new migration numbered below a layer's released head",
        needs_workspace: true,
    }
}

impl Rule for MigrationOrder {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_file_start(&self, cx: &FileCtx, out: &mut Vec<Finding>) {
        if cx.file.released != Released::New {
            return;
        }
        let (Some(m), Some(head)) = (cx.file.migration, cx.file.released_head) else {
            return;
        };
        let layer = cx.file.layer_migrations;
        let Some(pos) = layer.iter().position(|x| x.path == m.path) else {
            return;
        };
        if pos < head {
            out.push(
                Finding::new(
                    Region::point(Pos::new(1, 1)),
                    format!(
                        "new migration `{}` sorts below the released head `{}` of its layer",
                        m.file_name(),
                        layer[head].file_name()
                    ),
                )
                .help("renumber it above the released head; `strata new <layer> <name>` picks the next number"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws_with, ids, known};

    #[test]
    fn fires_below_the_head_and_quiet_above() {
        let files = [("core/0001_a.sql", "SELECT 1;\n"), ("core/0003_c.sql", "SELECT 3;\n")];
        let d = check_ws_with(&files, |root| {
            crate::workspace::sum::write(root).unwrap();
            std::fs::write(root.join("schema/core/0002_b.sql"), "SELECT 2;\n").unwrap();
            std::fs::write(root.join("schema/core/0004_d.sql"), "SELECT 4;\n").unwrap();
        });
        assert_eq!(ids(&d, "migration-order"), 1, "{d:#?}");
        assert!(d
            .iter()
            .any(|x| x.rule == known("migration-order") && x.file.path.ends_with("0002_b.sql")));
    }
}
