use super::{FileCtx, Finding, Released, Rule, RuleMeta};
use crate::diag::{Pos, Region};
use crate::workspace::sum::sha256_hex;

crate::declare_rule! {
    /// ## What it does
    /// Flags a released migration (one listed in `strata.sum`) whose content
    /// no longer matches its recorded SHA-256, a released migration that was
    /// removed, and a `strata.sum` whose hash chain is broken.
    ///
    /// ## Why is this bad?
    /// Tenants that already applied the migration will never run the edited
    /// version, while new tenants will: the fleet silently diverges. The
    /// migrator refuses to run such a history; this rule catches it before
    /// merge.
    ///
    /// ## Example
    /// ```text
    /// schema/core/0003_messages.sql  sha256 in strata.sum: 9f2c…, on disk: 41aa…
    /// ```
    ///
    /// ## How to fix
    /// Revert the edit and write a new migration that makes the change. If
    /// the edit is only whitespace or a comment and every tenant is
    /// re-baselined, run `strata sum` to release the new content.
    pub struct MigrationModified {
        id: "migration-modified",
        group: History,
        severity: Error,
        summary: "a released migration whose content no longer matches strata.sum",
        needs_workspace: true,
    }
}

impl Rule for MigrationModified {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_file_start(&self, cx: &FileCtx, out: &mut Vec<Finding>) {
        let Released::Released { hash, sum_line } = cx.file.released else {
            return;
        };
        let now = sha256_hex(cx.file.parsed.source.text.as_bytes());
        if now != hash {
            out.push(
                Finding::new(
                    Region::point(Pos::new(1, 1)),
                    format!(
                        "released migration was modified: strata.sum line {sum_line} records sha256:{}…, the file now hashes to sha256:{}…",
                        &hash[..12],
                        &now[..12]
                    ),
                )
                .help("revert the edit and add a new migration; run `strata sum` only to re-release on purpose"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws_with, ids};

    #[test]
    fn fires_when_a_released_file_changes_and_quiet_otherwise() {
        let files = [("core/0001_a.sql", "SELECT 1;\n"), ("core/0002_b.sql", "SELECT 2;\n")];
        let d = check_ws_with(&files, |root| {
            // Release, then edit one file.
            crate::workspace::sum::write(root).unwrap();
            std::fs::write(root.join("schema/core/0002_b.sql"), "SELECT 3;\n").unwrap();
        });
        assert_eq!(ids(&d, "migration-modified"), 1, "{d:#?}");
        let clean = check_ws_with(&files, |root| {
            crate::workspace::sum::write(root).unwrap();
        });
        assert_eq!(ids(&clean, "migration-modified"), 0, "{clean:#?}");
    }

    #[test]
    fn fires_when_a_released_file_is_removed() {
        let files = [("core/0001_a.sql", "SELECT 1;\n"), ("core/0002_b.sql", "SELECT 2;\n")];
        let d = check_ws_with(&files, |root| {
            crate::workspace::sum::write(root).unwrap();
            std::fs::remove_file(root.join("schema/core/0002_b.sql")).unwrap();
        });
        assert_eq!(ids(&d, "migration-modified"), 1, "{d:#?}");
        assert!(d.iter().any(|x| x.file.path == "strata.sum"));
    }
}
