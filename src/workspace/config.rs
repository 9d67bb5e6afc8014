//! `strata.toml`: workspace settings. Unknown keys are errors (a typo in a
//! governance setting must not be silently ignored).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TenancyMode {
    /// One database per tenant (Orbis): no tenant key; RLS guards containers.
    #[default]
    DatabasePerTenant,
    /// One database; every tenant row carries the tenant key and RLS isolates.
    Shared,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tenancy {
    pub mode: TenancyMode,
    /// Shared mode: the tenant key column (e.g. `org_id`).
    pub tenant_key: String,
    /// Shared mode: the tenant root table the key references.
    pub tenant_table: String,
    /// The SQL expression that yields the current tenant in policies.
    pub tenant_context: String,
    /// The application role policies are written for (never BYPASSRLS).
    pub app_role: String,
    /// Roles that must not get `USING (true)` policies besides PUBLIC.
    pub untrusted_roles: Vec<String>,
    /// Database-per-tenant mode: the group-chat walled-garden table and key.
    pub container_table: String,
    pub container_key: String,
    /// Tables that are not tenant data (the tenant root itself, lookups).
    pub global_tables: Vec<String>,
}

impl Default for Tenancy {
    fn default() -> Self {
        Tenancy {
            mode: TenancyMode::DatabasePerTenant,
            tenant_key: "tenant_id".into(),
            tenant_table: "tenants".into(),
            tenant_context: "current_setting('app.tenant_id')::uuid".into(),
            app_role: "app".into(),
            untrusted_roles: vec!["anon".into()],
            container_table: "containers".into(),
            container_key: "container_id".into(),
            global_tables: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Migrations {
    /// `auto` detects the layout per folder; or one of the layouts.
    pub layout: String,
    /// Naming convention for `migration-name`: `native` (`NNNN_name.sql`),
    /// `any` (whatever the layout accepts) or a regular expression.
    pub naming: String,
    /// Digits of the number in native names.
    pub number_width: usize,
}

impl Default for Migrations {
    fn default() -> Self {
        Migrations {
            layout: "auto".into(),
            naming: "native".into(),
            number_width: 4,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Paths {
    /// The folder holding `core/`, `verticals/` and `bespoke/`.
    pub schema: PathBuf,
    /// The core layer's folder when it is not `<schema>/core`: an existing
    /// migration folder adopted in place (`strata init --from DIR`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub core: Option<PathBuf>,
    pub rules: PathBuf,
    pub tenants: PathBuf,
    pub sum: PathBuf,
    pub cutovers: PathBuf,
    /// The findings baseline (`strata check --write-baseline`): findings
    /// accepted, which `strata check` no longer reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<PathBuf>,
}

impl Paths {
    /// The core layer's folder, relative to the workspace root.
    pub fn core_dir(&self) -> PathBuf {
        self.core.clone().unwrap_or_else(|| self.schema.join("core"))
    }
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            schema: "schema".into(),
            core: None,
            rules: "rules".into(),
            tenants: "tenants.toml".into(),
            sum: "strata.sum".into(),
            cutovers: "cutovers".into(),
            baseline: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Runner {
    /// `lock_timeout` set for every migration strata runs.
    pub lock_timeout: String,
    /// `statement_timeout` set for every migration strata runs.
    pub statement_timeout: String,
    /// Retries of a migration that failed on a lock timeout (55P03).
    pub lock_retries: u32,
}

impl Default for Runner {
    fn default() -> Self {
        Runner {
            lock_timeout: "5s".into(),
            statement_timeout: "10min".into(),
            lock_retries: 5,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// A name for reports.
    pub name: String,
    /// The PostgreSQL major version the fleet runs (changes what is dangerous).
    pub pg_version: u32,
    /// `env:VAR` or a connection string of the control-plane database.
    pub control_plane: Option<String>,
    pub tenancy: Tenancy,
    pub migrations: Migrations,
    pub paths: Paths,
    pub runner: Runner,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            name: "strata".into(),
            pg_version: 15,
            control_plane: None,
            tenancy: Tenancy::default(),
            migrations: Migrations::default(),
            paths: Paths::default(),
            runner: Runner::default(),
        }
    }
}

/// The PostgreSQL majors whose release notes strata's rules know: the
/// advice of a rule changes at 11, 12, 14, 15 and 18.
pub const PG_KNOWN: std::ops::RangeInclusive<u32> = 10..=18;

/// The majors strata is tested on (the ones PostgreSQL still supported when
/// 18 came out). Older known majors work, with a warning.
pub const PG_SUPPORTED: std::ops::RangeInclusive<u32> = 13..=18;

/// Where the value of the top-level `pg_version` key starts, for errors.
fn pg_version_offset(text: &str) -> Option<usize> {
    #[derive(Deserialize)]
    struct Spans {
        pg_version: Option<toml::Spanned<toml::Value>>,
    }
    toml::from_str::<Spans>(text).ok()?.pg_version.map(|v| v.span().start)
}

impl Config {
    /// The warning a configuration earns that strata runs but does not
    /// stand behind: a `pg_version` older than the tested majors.
    pub fn warning(&self, path: &Path, text: &str) -> Option<String> {
        if PG_SUPPORTED.contains(&self.pg_version) {
            return None;
        }
        let (line, col) = pg_version_offset(text).map_or((1, 1), |o| crate::error::line_col(text, o));
        Some(format!(
            "{}:{line}:{col}: pg_version {} is a PostgreSQL major past its end of life: strata judges migrations by its release notes, but is tested on {} to {} only",
            path.display(),
            self.pg_version,
            PG_SUPPORTED.start(),
            PG_SUPPORTED.end()
        ))
    }

    pub fn load(path: &Path) -> Result<Config> {
        let text = crate::error::read_utf8(path)?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config> {
        let config: Config = toml::from_str(text).map_err(|e| Error::config_at(path, text, e.span().map(|s| s.start), e.message()))?;
        if !PG_KNOWN.contains(&config.pg_version) {
            return Err(Error::config_at(
                path,
                text,
                pg_version_offset(text),
                format!(
                    "pg_version {} is not a PostgreSQL major version strata knows ({} to {}; strata is tested on {} to {})",
                    config.pg_version,
                    PG_KNOWN.start(),
                    PG_KNOWN.end(),
                    PG_SUPPORTED.start(),
                    PG_SUPPORTED.end()
                ),
            ));
        }
        if config.migrations.naming != "native" && config.migrations.naming != "any" {
            if let Err(e) = regex::Regex::new(&config.migrations.naming) {
                return Err(Error::config_at(
                    path,
                    text,
                    text.find("naming"),
                    format!("migrations.naming is not a valid regular expression: {e}"),
                ));
            }
        }
        if config.migrations.layout != "auto" && crate::workspace::Layout::from_name(&config.migrations.layout).is_none() {
            return Err(Error::config_at(
                path,
                text,
                text.find("layout"),
                format!(
                    "unknown migrations.layout `{}` (expected auto, {})",
                    config.migrations.layout,
                    crate::workspace::Layout::NAMES.join(", ")
                ),
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_shared_mode() {
        let c = Config::parse(
            Path::new("strata.toml"),
            "pg_version = 16\n[tenancy]\nmode = \"shared\"\ntenant_key = \"org_id\"\n",
        )
        .unwrap();
        assert_eq!(c.pg_version, 16);
        assert_eq!(c.tenancy.mode, TenancyMode::Shared);
        assert_eq!(c.tenancy.tenant_key, "org_id");
        assert_eq!(c.paths.schema, PathBuf::from("schema"));
    }

    #[test]
    fn pg_version_must_be_a_known_major() {
        for (text, at) in [
            ("pg_version = 8\n", "strata.toml:1:14:"),
            ("name = \"x\"\n# pg_version = 15\npg_version   =   99\n", "strata.toml:3:18:"),
            ("pg_version = 19\n", "strata.toml:1:14:"),
            ("pg_version = 9\n", "strata.toml:1:14:"),
        ] {
            let msg = Config::parse(Path::new("strata.toml"), text).unwrap_err().to_string();
            assert!(msg.starts_with(at), "{msg}");
            assert!(msg.contains("not a PostgreSQL major version strata knows (10 to 18"), "{msg}");
        }
        for v in PG_KNOWN {
            let text = format!("pg_version = {v}\n");
            let c = Config::parse(Path::new("strata.toml"), &text).unwrap();
            assert_eq!(c.pg_version, v);
            let warning = c.warning(Path::new("strata.toml"), &text);
            assert_eq!(warning.is_some(), v < 13, "{v}: {warning:?}");
        }
        let text = "name = \"x\"\npg_version = 11\n";
        let c = Config::parse(Path::new("strata.toml"), text).unwrap();
        let w = c.warning(Path::new("strata.toml"), text).unwrap();
        assert!(
            w.starts_with("strata.toml:2:14: pg_version 11 is a PostgreSQL major past its end of life"),
            "{w}"
        );
        assert!(Config::default().warning(Path::new("strata.toml"), "").is_none());
    }

    #[test]
    fn unknown_keys_name_line_and_column() {
        let err = Config::parse(Path::new("strata.toml"), "pg_version = 15\n[tenancy]\nmdoe = \"shared\"\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("strata.toml:3:1:"), "{msg}");
        assert!(msg.contains("mdoe"), "{msg}");
    }
}
