use sqlparser::ast::Statement as Ast;

use super::helpers::{name_region, names_table};
use super::{glob_match, string_list, Finding, Rule, RuleMeta, StatementCtx};
use crate::catalog::{ident_name, QName};

crate::declare_rule! {
    /// ## What it does
    /// Flags a CREATE TABLE in a layer that may not create tables (bespoke
    /// layers, by default), and, in any layer, a new table whose name or shape
    /// makes it ad-hoc state: `*_state`, `*_cache`, `*_flags`, `*_dedup`,
    /// `*_queue`, `*_events`, `*_log(s)`, or a key/value table, outside the
    /// three canonical homes.
    ///
    /// ## Why is this bad?
    /// Every tenant database has the same core schema plus at most one
    /// vertical. A bespoke table is state that exists for one tenant only:
    /// no migration, backfill, export or cutover written for the product
    /// knows it, and it silently forks the tenant off the fleet. Ad-hoc state
    /// tables are the same drift inside the product: each feature grows its
    /// own log, cache and flag table, none of them scoped, retained or
    /// audited the same way. State has exactly three homes: something that
    /// happened goes to `orbis_state.events` (with a `kind`), a workflow in
    /// flight to `workflow_state`, flags, caches and dedup keys to `orbis_kv`.
    ///
    /// ## Example
    /// ```sql
    /// -- bad (in schema/bespoke/dreamlink/)
    /// CREATE TABLE dreamlink_reminders (id uuid PRIMARY KEY, due_at timestamptz);
    /// -- bad (anywhere)
    /// CREATE TABLE outbound_dedup (key text PRIMARY KEY, seen_at timestamptz);
    /// -- good
    /// INSERT INTO orbis_kv (namespace, key, value, expires_at)
    /// VALUES ('outbound.dedup', $1, 'true', now() + interval '1 day');
    /// ```
    ///
    /// ## How to fix
    /// Store the state in its canonical home. A bespoke layer adds views,
    /// indexes, comments and functions over core and vertical tables; a table
    /// every tenant needs belongs in core or the vertical.
    ///
    /// ## Options
    /// `forbidden_layers`: layer kinds (`bespoke`, `vertical`, `core`) or layer
    /// ids (`bespoke/dreamlink`) that may not create tables, default
    /// `["bespoke"]`; `patterns`: `{ pattern = "*_log", home = "events" }`
    /// entries (home is `events`, `state` or `kv`) replacing the built-in
    /// list; `events_home`, `state_home`, `kv_home`: the canonical tables
    /// (default `orbis_state.events`, `workflow_state`, `orbis_kv`).
    pub struct BespokeTable {
        id: "bespoke-table",
        group: Governance,
        severity: Error,
        summary: "a table in a layer that may not create tables, or an ad-hoc state/cache/log table outside the canonical homes",
        needs_workspace: true,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Home {
    Events,
    State,
    Kv,
}

/// The configured instance (the declared type holds only metadata).
#[derive(Debug, Clone)]
pub struct BespokeTableRule {
    forbidden_layers: Vec<String>,
    patterns: Vec<(String, Home)>,
    events_home: String,
    state_home: String,
    kv_home: String,
}

impl Default for BespokeTableRule {
    fn default() -> Self {
        use Home::*;
        let patterns = [
            ("*_events", Events),
            ("*_log", Events),
            ("*_logs", Events),
            ("*_state", State),
            ("*_queue", State),
            ("*_cache", Kv),
            ("*_flags", Kv),
            ("*_dedup", Kv),
        ];
        BespokeTableRule {
            forbidden_layers: vec!["bespoke".into()],
            patterns: patterns.into_iter().map(|(p, h)| (p.to_string(), h)).collect(),
            events_home: "orbis_state.events".into(),
            state_home: "workflow_state".into(),
            kv_home: "orbis_kv".into(),
        }
    }
}

const KEY_COLUMNS: &[&str] = &["key", "k", "cache_key", "dedup_key", "flag", "flag_name", "setting"];
const VALUE_COLUMNS: &[&str] = &["value", "v", "val", "data", "payload"];

impl BespokeTableRule {
    fn home(&self, h: Home) -> &str {
        match h {
            Home::Events => &self.events_home,
            Home::State => &self.state_home,
            Home::Kv => &self.kv_home,
        }
    }

    fn is_home(&self, q: &QName) -> bool {
        [&self.events_home, &self.state_home, &self.kv_home]
            .iter()
            .any(|h| names_table(h, q))
    }
}

fn parse_home(s: &str) -> Result<Home, String> {
    match s {
        "events" => Ok(Home::Events),
        "state" => Ok(Home::State),
        "kv" => Ok(Home::Kv),
        _ => Err(format!("unknown home `{s}` (expected events, state or kv)")),
    }
}

impl Rule for BespokeTableRule {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn configure(&mut self, options: &toml::Table) -> Result<(), String> {
        if let Some(v) = string_list(options, "forbidden_layers")? {
            self.forbidden_layers = v;
        }
        for (key, slot) in [
            ("events_home", &mut self.events_home),
            ("state_home", &mut self.state_home),
            ("kv_home", &mut self.kv_home),
        ] {
            if let Some(v) = options.get(key) {
                *slot = v.as_str().ok_or_else(|| format!("`{key}` must be a string"))?.to_string();
            }
        }
        if let Some(v) = options.get("patterns") {
            let list = v.as_array().ok_or("`patterns` must be a list of { pattern, home } tables")?;
            self.patterns = list
                .iter()
                .map(|item| {
                    let t = item
                        .as_table()
                        .ok_or("`patterns` entries are { pattern = \"*_log\", home = \"events\" } tables")?;
                    let pattern = t
                        .get("pattern")
                        .and_then(|p| p.as_str())
                        .ok_or("each entry of `patterns` needs `pattern`")?;
                    let home = t
                        .get("home")
                        .and_then(|p| p.as_str())
                        .ok_or("each entry of `patterns` needs `home`")?;
                    Ok((pattern.to_lowercase(), parse_home(home)?))
                })
                .collect::<Result<_, String>>()?;
        }
        Ok(())
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some(Ast::CreateTable(ct)) = cx.stmt.ast() else { return };
        if ct.temporary {
            return;
        }
        let q = cx.catalog.resolve(&ct.name);
        let region = name_region(&ct.name).unwrap_or(cx.stmt.region);
        if let Some(layer) = cx.env.layer(cx.file.layer) {
            let forbidden = self.forbidden_layers.iter().any(|l| *l == layer.id || l == layer.kind.as_str());
            if forbidden {
                out.push(
                    Finding::new(
                        region,
                        format!("layer `{}` may not create tables: `{q}` would exist for this tenant only", layer.id),
                    )
                    .help(format!(
                        "keep the state in {} / {} / {}, or add the table to core or the vertical for every tenant",
                        self.events_home, self.state_home, self.kv_home
                    ))
                    .at_statement(cx.index),
                );
                return;
            }
        }
        if self.is_home(&q) {
            return;
        }
        let by_name = self.patterns.iter().find(|(p, _)| glob_match(p, &q.name));
        let columns: Vec<String> = ct.columns.iter().map(|c| ident_name(&c.name)).collect();
        let kv_shape = columns.len() <= 6
            && columns.iter().any(|c| KEY_COLUMNS.contains(&c.as_str()))
            && columns.iter().any(|c| VALUE_COLUMNS.contains(&c.as_str()));
        let (why, home) = match (by_name, kv_shape) {
            (Some((p, h)), _) => (format!("its name matches `{p}`"), *h),
            (None, true) => ("it is a key/value table".to_string(), Home::Kv),
            (None, false) => return,
        };
        out.push(
            Finding::new(
                region,
                format!("`{q}` is ad-hoc state ({why}): it belongs in `{}`", self.home(home)),
            )
            .help(match home {
                Home::Events => format!("record it in {} with a `kind`", self.events_home),
                Home::State => format!("keep in-flight state in {} (one row per workflow and subject)", self.state_home),
                Home::Kv => format!("keep flags, caches and dedup keys in {} under a namespace", self.kv_home),
            })
            .at_statement(cx.index),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, ids, render_rule};

    const CORE: &str = "CREATE TABLE contacts (id uuid PRIMARY KEY);\n";

    #[test]
    fn fires_on_bespoke_tables_and_ad_hoc_state() {
        let d = check_ws(&[
            ("core/0001_contacts.sql", CORE),
            ("core/0002_sync.sql", "CREATE TABLE calendar_sync_state (contact_id uuid PRIMARY KEY, cursor text);\nCREATE TABLE feature_toggles (key text PRIMARY KEY, value boolean NOT NULL);\n"),
            ("bespoke/dreamlink/0001_reminders.sql", "CREATE TABLE dreamlink_reminders (id uuid PRIMARY KEY, due_at timestamptz);\n"),
        ]);
        assert_eq!(ids(&d, "bespoke-table"), 3, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "bespoke-table"));
    }

    #[test]
    fn fires_on_a_bespoke_table_made_like_another() {
        let d = check_ws(&[
            ("core/0001_contacts.sql", CORE),
            (
                "bespoke/dreamlink/0001_copy.sql",
                "CREATE TABLE dreamlink_contacts (LIKE contacts INCLUDING ALL);
CREATE TABLE dreamlink_more (LIKE contacts INCLUDING DEFAULTS INCLUDING INDEXES, note text);
",
            ),
        ]);
        assert_eq!(ids(&d, "bespoke-table"), 2, "{d:#?}");
    }

    #[test]
    fn quiet_on_canonical_homes_and_bespoke_views() {
        let d = check_ws(&[
            ("core/0001_contacts.sql", CORE),
            (
                "core/0002_state.sql",
                "CREATE SCHEMA orbis_state;\nCREATE TABLE orbis_state.events (id bigint PRIMARY KEY, kind text NOT NULL);\nCREATE TABLE workflow_state (workflow text, subject_key text, state jsonb, PRIMARY KEY (workflow, subject_key));\nCREATE TABLE orbis_kv (namespace text, key text, value jsonb, PRIMARY KEY (namespace, key));\n",
            ),
            ("bespoke/dreamlink/0001_views.sql", "CREATE VIEW dreamlink_people WITH (security_invoker = true) AS SELECT id FROM contacts;\n"),
        ]);
        assert_eq!(ids(&d, "bespoke-table"), 0, "{d:#?}");
    }
}
