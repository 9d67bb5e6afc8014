//! Rule configuration: every `rules/*.toml` of a workspace.
//!
//! ```toml
//! [rules.bespoke-table]
//! severity = "error"               # off | warning | error
//! forbidden_layers = ["bespoke"]   # rule-specific options
//! [rules.bespoke-table.layers.bespoke]
//! severity = "error"               # per-layer override: core, vertical, bespoke,
//!                                  # or a layer id like verticals/agency
//! [groups]
//! governance = "off"               # a whole group: off | warning | error
//! ```
//!
//! A rule's own setting wins over its group's; a group's severity applies to
//! its rules that are on by default (opt-in rules stay off).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::diag::Group;
use crate::diag::Severity;
use crate::error::{Error, Result};

#[derive(Clone, Debug, Default)]
pub struct RuleSettings {
    pub severity: Option<Severity>,
    /// Per-layer severities, keyed by layer kind or layer id.
    pub layers: HashMap<String, Severity>,
    /// Everything else under `[rules.<id>]`.
    pub options: toml::Table,
    /// Where the settings came from, for error messages.
    pub source: String,
}

#[derive(Clone, Debug, Default)]
pub struct RulesConfig {
    pub rules: HashMap<String, RuleSettings>,
    /// `[groups]`: a severity for every rule of a group.
    pub groups: HashMap<Group, Severity>,
    /// Where each `[rules.<id>]` section starts (file, line, column), for
    /// the error about an id no rule has: the rule set is known to the rules,
    /// not to the workspace, so the check happens when rules are configured
    /// (`rules::configured`).
    pub sections: Vec<RuleSection>,
}

/// The position of one `[rules.<id>]` section.
#[derive(Clone, Debug)]
pub struct RuleSection {
    pub id: String,
    pub path: PathBuf,
    pub line: usize,
    pub col: usize,
}

fn parse_severity(v: &toml::Value) -> Option<Severity> {
    match v.as_str()? {
        "off" => Some(Severity::Off),
        "warning" | "warn" => Some(Severity::Warning),
        "error" => Some(Severity::Error),
        _ => None,
    }
}

impl RulesConfig {
    /// Reads every `*.toml` in `dir` (sorted; later files override earlier
    /// ones). A missing folder is an empty configuration.
    pub fn load_dir(dir: &Path, root: &Path) -> Result<RulesConfig> {
        let mut cfg = RulesConfig::default();
        if !dir.is_dir() {
            return Ok(cfg);
        }
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| Error::io(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for f in files {
            let text = crate::error::read_utf8(&f)?;
            let shown = super::display_path(root, &f);
            cfg.merge_text(Path::new(&shown), &text)?;
        }
        Ok(cfg)
    }

    pub fn merge_text(&mut self, path: &Path, text: &str) -> Result<()> {
        let doc: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| Error::config_at(path, text, e.span().map(|s| s.start), e.message()))?;
        let at = |needle: &str| text.find(needle);
        for (key, value) in doc {
            if key == "groups" {
                self.merge_groups(path, text, &value)?;
                continue;
            }
            if key != "rules" {
                return Err(Error::config_at(
                    path,
                    text,
                    at(&key),
                    format!("unknown top-level key `{key}` (expected [rules.<id>] tables or [groups])"),
                ));
            }
            let Some(rules) = value.as_table() else {
                return Err(Error::config_at(
                    path,
                    text,
                    at("rules"),
                    "`rules` must be a table of [rules.<id>] sections",
                ));
            };
            for (id, body) in rules {
                let here = at(&format!("rules.{id}")).or_else(|| at(id));
                if let Some(g) = Group::from_name(id) {
                    return Err(Error::config_at(
                        path,
                        text,
                        here,
                        format!(
                            "`{id}` is a group of rules, not a rule: set a group's severity under [groups], \
                             e.g. `[groups]` then `{} = \"off\"`",
                            g.as_str()
                        ),
                    ));
                }
                let (line, col) = here.map_or((1, 1), |off| crate::error::line_col(text, off));
                self.sections.push(RuleSection {
                    id: id.clone(),
                    path: path.to_path_buf(),
                    line,
                    col,
                });
                let Some(body) = body.as_table() else {
                    return Err(Error::config_at(path, text, here, format!("[rules.{id}] must be a table")));
                };
                let entry = self.rules.entry(id.clone()).or_default();
                entry.source = path.display().to_string();
                for (k, v) in body {
                    match k.as_str() {
                        "severity" => {
                            entry.severity = Some(parse_severity(v).ok_or_else(|| {
                                Error::config_at(
                                    path,
                                    text,
                                    here,
                                    format!("rules.{id}.severity must be \"off\", \"warning\" or \"error\", not {v}"),
                                )
                            })?);
                        }
                        "layers" => {
                            let Some(layers) = v.as_table() else {
                                return Err(Error::config_at(path, text, here, format!("rules.{id}.layers must be a table")));
                            };
                            for (layer, lv) in layers {
                                let sev = lv
                                    .as_table()
                                    .and_then(|t| t.get("severity"))
                                    .and_then(parse_severity)
                                    .ok_or_else(|| {
                                        Error::config_at(
                                            path,
                                            text,
                                            here,
                                            format!("rules.{id}.layers.{layer} needs severity = \"off\" | \"warning\" | \"error\""),
                                        )
                                    })?;
                                entry.layers.insert(layer.clone(), sev);
                            }
                        }
                        _ => {
                            entry.options.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// `[groups]`: `<group> = "off" | "warning" | "error"`.
    fn merge_groups(&mut self, path: &Path, text: &str, value: &toml::Value) -> Result<()> {
        let at = |needle: &str| text.find(needle);
        let Some(groups) = value.as_table() else {
            return Err(Error::config_at(
                path,
                text,
                at("groups"),
                "`groups` must be a table: [groups] then `<group> = \"off\"`",
            ));
        };
        let names = || Group::ALL.map(Group::as_str).join(", ");
        for (name, v) in groups {
            let here = at(&format!("{name} =")).or_else(|| at(name));
            let Some(group) = Group::from_name(name) else {
                // Rule ids are kebab-case and known to the rules, not here.
                let hint = if name.contains('-') {
                    format!("; if `{name}` is a rule, set it under [rules.{name}]")
                } else {
                    String::new()
                };
                return Err(Error::config_at(
                    path,
                    text,
                    here,
                    format!("unknown group `{name}` (the groups: {}){hint}", names()),
                ));
            };
            let sev = parse_severity(v).ok_or_else(|| {
                Error::config_at(
                    path,
                    text,
                    here,
                    format!("groups.{name} must be \"off\", \"warning\" or \"error\", not {v}"),
                )
            })?;
            self.groups.insert(group, sev);
        }
        Ok(())
    }

    /// The severity of `rule` in a layer (`kind` like `bespoke`, `id` like
    /// `bespoke/dreamlink`): the layer id's override, then the kind's, then
    /// the rule's severity, then its group's (for a rule on by default),
    /// then its default.
    pub fn severity(
        &self,
        rule: &str,
        group: Option<Group>,
        default: Severity,
        layer_kind: Option<&str>,
        layer_id: Option<&str>,
    ) -> Severity {
        let own = self.rules.get(rule).and_then(|s| {
            layer_id
                .and_then(|l| s.layers.get(l))
                .or_else(|| layer_kind.and_then(|k| s.layers.get(k)))
                .copied()
                .or(s.severity)
        });
        let group = || (default != Severity::Off).then(|| self.groups.get(&group?).copied()).flatten();
        own.or_else(group).unwrap_or(default)
    }

    pub fn options(&self, rule: &str) -> Option<&toml::Table> {
        self.rules.get(rule).map(|s| &s.options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rule's severity outside any layer, its group from the rule table.
    fn severity(cfg: &RulesConfig, rule: &str, default: Severity) -> Severity {
        cfg.severity(rule, crate::rules::meta_of(rule).map(|m| m.group), default, None, None)
    }

    fn load(text: &str) -> Result<RulesConfig> {
        let mut cfg = RulesConfig::default();
        cfg.merge_text(Path::new("rules/x.toml"), text)?;
        Ok(cfg)
    }

    #[test]
    fn a_group_sets_its_rules_and_a_rule_wins_over_its_group() {
        let cfg = load("[groups]\ngovernance = \"off\"\nlock-safety = \"warning\"\n[rules.rls-missing]\nseverity = \"error\"\n").unwrap();
        assert_eq!(severity(&cfg, "person-ref-not-contact", Severity::Error), Severity::Off);
        assert_eq!(severity(&cfg, "rls-missing", Severity::Error), Severity::Error);
        assert_eq!(severity(&cfg, "require-concurrent-index", Severity::Error), Severity::Warning);
        // Opt-in rules stay off; other groups keep their defaults.
        assert_eq!(severity(&cfg, "idempotent-ddl", Severity::Off), Severity::Off);
        assert_eq!(severity(&cfg, "migration-modified", Severity::Error), Severity::Error);
        assert_eq!(severity(&cfg, "prefer-text", Severity::Warning), Severity::Warning);
    }

    #[test]
    fn a_group_written_as_a_rule_or_an_unknown_group_is_a_clear_error() {
        let e = load("[rules.governance]\nseverity = \"off\"\n").unwrap_err().to_string();
        assert!(
            e.contains("`governance` is a group of rules, not a rule") && e.contains("[groups]"),
            "{e}"
        );
        assert!(e.contains("rules/x.toml:1:"), "{e}");
        let e = load("[groups]\ngovernence = \"off\"\n").unwrap_err().to_string();
        assert!(e.contains("unknown group `governence`") && e.contains("governance, history"), "{e}");
        let e = load("[groups]\nprefer-text = \"off\"\n").unwrap_err().to_string();
        assert!(e.contains("set it under [rules.prefer-text]"), "{e}");
        let e = load("[groups]\ngovernance = \"loud\"\n").unwrap_err().to_string();
        assert!(e.contains("groups.governance must be"), "{e}");
    }
}
