//! Rule configuration: every `rules/*.toml` of a workspace.
//!
//! ```toml
//! [rules.bespoke-table]
//! severity = "error"               # off | warning | error
//! forbidden_layers = ["bespoke"]   # rule-specific options
//! [rules.bespoke-table.layers.bespoke]
//! severity = "error"               # per-layer override: core, vertical, bespoke,
//!                                  # or a layer id like verticals/agency
//! ```

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::report::Severity;

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
            let shown = crate::workspace::display_path(root, &f);
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
            if key != "rules" {
                return Err(Error::config_at(
                    path,
                    text,
                    at(&key),
                    format!("unknown top-level key `{key}` (expected [rules.<id>] tables)"),
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
                if crate::rules::meta_of(id).is_none() {
                    return Err(Error::config_at(
                        path,
                        text,
                        here,
                        format!("unknown rule `{id}`{} (see `strata rules`)", crate::rules::did_you_mean(id)),
                    ));
                }
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

    /// The severity of `rule` in a layer (`kind` like `bespoke`, `id` like
    /// `bespoke/dreamlink`): the layer id's override, then the kind's, then
    /// the rule's severity, then its default.
    pub fn severity(&self, rule: &str, default: Severity, layer_kind: Option<&str>, layer_id: Option<&str>) -> Severity {
        let Some(s) = self.rules.get(rule) else { return default };
        layer_id
            .and_then(|l| s.layers.get(l))
            .or_else(|| layer_kind.and_then(|k| s.layers.get(k)))
            .copied()
            .or(s.severity)
            .unwrap_or(default)
    }

    pub fn options(&self, rule: &str) -> Option<&toml::Table> {
        self.rules.get(rule).map(|s| &s.options)
    }
}
