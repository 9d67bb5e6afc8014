use super::{FileCtx, Finding, Rule, RuleMeta};
use crate::diag::{Pos, Region};
use crate::workspace::Layout;

crate::declare_rule! {
    /// ## What it does
    /// Flags a migration file whose name is outside the workspace's naming
    /// convention (`migrations.naming` in strata.toml: `native` means
    /// `NNNN_name.sql` with `migrations.number_width` digits and a lower-case
    /// snake_case name), and a duplicate or skipped number within a layer.
    ///
    /// ## Why is this bad?
    /// The number is the apply order. Two branches that both add `0007_...`
    /// produce two migrations with one number, and the order in which
    /// tenants get them depends on who merged first. A gap usually means a
    /// migration was deleted or renamed after release.
    ///
    /// ## Example
    /// ```text
    /// schema/core/0007_add_notes.sql
    /// schema/core/0007_add_tags.sql     <- duplicate number
    /// schema/core/0009_add_index.sql    <- 0008 is missing
    /// schema/core/AddThing.sql          <- outside the convention
    /// ```
    ///
    /// ## How to fix
    /// Renumber the new migration to the next free number of its layer
    /// (`strata new <layer> <name>` picks it) before it is released.
    pub struct MigrationName {
        id: "migration-name",
        group: History,
        severity: Error,
        summary: "a file name outside the naming convention, or a duplicate or skipped number in a layer",
        needs_workspace: true,
    }
}

fn native_ok(file: &str, width: usize) -> bool {
    let Some(stem) = file.strip_suffix(".sql") else { return false };
    let Some((num, name)) = stem.split_once('_') else { return false };
    num.len() == width
        && num.bytes().all(|b| b.is_ascii_digit())
        && !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl Rule for MigrationName {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_file_start(&self, cx: &FileCtx, out: &mut Vec<Finding>) {
        let (Some(cfg), Some(m)) = (cx.env.config, cx.file.migration) else {
            return;
        };
        let at = Region::point(Pos::new(1, 1));
        let file = m.file_name();
        let naming = cfg.migrations.naming.as_str();
        let ok = match naming {
            "any" => true,
            "native" => m.layout != Layout::Native || native_ok(&file, cfg.migrations.number_width),
            re => regex::Regex::new(re).map(|r| r.is_match(&file)).unwrap_or(true),
        };
        let native_layout = m.layout == Layout::Native || (naming == "native" && m.layout == Layout::Plain);
        if !ok || (naming == "native" && m.layout == Layout::Plain && !native_ok(&file, cfg.migrations.number_width)) {
            out.push(
                Finding::new(
                    at,
                    format!("migration file name `{file}` is outside the naming convention `{naming}`"),
                )
                .help(format!(
                    "name it `{:0w$}_<snake_case_name>.sql`; `strata new <layer> <name>` picks the next number",
                    1,
                    w = cfg.migrations.number_width
                )),
            );
            return;
        }
        let layer = cx.file.layer_migrations;
        let Some(pos) = layer.iter().position(|x| x.path == m.path) else {
            return;
        };
        // Versions are compared as the layout's tool compares them (diesel's
        // `2019-02-26-002946` is one version, not the number 2019; Flyway's
        // `1.0` is `1`); repeatable migrations have none.
        let same = |x: &crate::workspace::Migration| {
            !x.repeatable && !m.repeatable && m.layout.cmp_versions(&x.version, &m.version) == std::cmp::Ordering::Equal
        };
        if let Some(other) = layer.iter().find(|x| x.path != m.path && same(x)) {
            out.push(
                Finding::new(
                    at,
                    format!(
                        "migration number {} is used twice in this layer (also `{}`)",
                        m.version,
                        other.file_name()
                    ),
                )
                .help("renumber the newer migration to the next free number of the layer"),
            );
        } else if let (true, true, Some(num)) = (native_layout, pos > 0, m.number()) {
            if let Some(prev) = layer[pos - 1].number() {
                if num > prev + 1 {
                    out.push(
                        Finding::new(
                            at,
                            format!(
                                "migration number {} skips {} (the previous migration is {})",
                                m.version,
                                prev + 1,
                                layer[pos - 1].version
                            ),
                        )
                        .help("number migrations consecutively; a gap usually means a released migration was deleted or renamed"),
                    );
                }
            }
        } else if native_layout && pos == 0 && m.number().is_some_and(|n| n != 1 && n != 0) {
            out.push(
                Finding::new(at, format!("the first migration of the layer is numbered {}, not 1", m.version))
                    .help("start each layer at 0001"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, ids};

    #[test]
    fn fires_on_duplicates_gaps_and_bad_names() {
        let ok = "SELECT 1;\n";
        let d = check_ws(&[
            ("core/0001_a.sql", ok),
            ("core/0002_b.sql", ok),
            ("core/0002_c.sql", ok),
            ("core/0004_d.sql", ok),
            ("verticals/agency/0001_Bad-Name.sql", ok),
        ]);
        assert_eq!(ids(&d, "migration-name"), 4, "{d:#?}");
    }

    #[test]
    fn diesel_versions_are_versions_not_the_number_of_their_year() {
        use crate::rules::testing::{check_ws_with, STRATA_TOML};
        let ok = "SELECT 1;\n";
        let diesel = |root: &std::path::Path| {
            std::fs::write(
                root.join("strata.toml"),
                format!("{STRATA_TOML}[migrations]\nlayout = \"diesel\"\nnaming = \"any\"\n"),
            )
            .unwrap();
        };
        let d = check_ws_with(
            &[
                ("core/2019-02-26-002946_create_user.up.sql", ok),
                ("core/2019-02-27-170003_create_community.up.sql", ok),
                ("core/2020-01-01-000000_x/up.sql", ok),
            ],
            diesel,
        );
        assert_eq!(ids(&d, "migration-name"), 0, "{d:#?}");
        // One version twice is a duplicate, as diesel sees it.
        let d = check_ws_with(
            &[("core/2019-02-26-002946_a.up.sql", ok), ("core/2019-02-26-002946_b.up.sql", ok)],
            diesel,
        );
        assert_eq!(ids(&d, "migration-name"), 2, "{d:#?}");
        assert!(
            d.iter()
                .any(|x| x.message.contains("migration number 2019-02-26-002946 is used twice")),
            "{d:#?}"
        );
    }

    #[test]
    fn quiet_on_consecutive_native_names() {
        let ok = "SELECT 1;\n";
        let d = check_ws(&[
            ("core/0001_a.sql", ok),
            ("core/0002_b.sql", ok),
            ("verticals/agency/0001_deals.sql", ok),
        ]);
        assert_eq!(ids(&d, "migration-name"), 0, "{d:#?}");
    }
}
