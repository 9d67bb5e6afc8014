//! `strata tenant create`: provision a tenant against the proven schema
//! (seed 000, phase 5): create its database when missing, apply its composed
//! layers, and register it in tenants.toml.
//!
//! The database is created before registration, and registration happens
//! only after every migration applied; a failed run can simply be repeated
//! (the existing database is reused and its history resumes).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::progress::Reporter;
use super::{run_tenant, RunOptions, TenantReport};
use crate::pg::apply::{self, Loaded};
use crate::pg::conn::sql_error;
use crate::pg::{self, quote_ident, Result, Target};
use crate::workspace::{valid_slug, LayerKind, Tenant, Workspace};

/// What to create.
#[derive(Clone, Debug)]
pub struct Request {
    pub slug: String,
    pub vertical: Option<String>,
    pub bespoke: Option<String>,
    pub database: String,
    pub labels: BTreeMap<String, String>,
}

/// Checks the request against the workspace (before touching any server).
pub fn validate(ws: &Workspace, req: &Request) -> Result<Tenant, crate::Error> {
    let usage = |m: String| crate::Error::Usage(m);
    if !valid_slug(&req.slug) {
        return Err(usage(format!(
            "tenant slug `{}` is invalid: use [a-z0-9-]+ (at most 63 characters)",
            req.slug
        )));
    }
    if ws.tenant(&req.slug).is_some() {
        return Err(usage(format!("tenant `{}` is already in tenants.toml", req.slug)));
    }
    if let Some(v) = &req.vertical {
        if ws.layer(LayerKind::Vertical, v).is_none() {
            return Err(usage(format!("vertical `{v}` does not exist under schema/verticals")));
        }
    }
    if let Some(b) = &req.bespoke {
        if ws.layer(LayerKind::Bespoke, b).is_none() {
            return Err(usage(format!("bespoke layer `{b}` does not exist under schema/bespoke")));
        }
    }
    if !req.database.trim().starts_with("env:") {
        let target = Target::parse(&req.database).map_err(|e| usage(e.to_string()))?;
        if target.password_in_string() {
            return Err(usage(
                "the database URL carries a password, which would be written to tenants.toml: \
                 put the URL in an environment variable and pass --database env:VAR"
                    .into(),
            ));
        }
    }
    Ok(Tenant {
        slug: req.slug.clone(),
        database: req.database.trim().to_string(),
        vertical: req.vertical.clone(),
        bespoke: req.bespoke.clone(),
        labels: req.labels.clone(),
    })
}

/// Creates the database when missing (through the server's `postgres`
/// maintenance database), after checking extensions and the app role there.
/// Returns whether it was created.
pub async fn ensure_database(target: &Target, migrations: &[Arc<Loaded>], app_role: Option<&str>) -> Result<bool> {
    let maintenance = target.with_dbname("postgres");
    let admin = pg::connect(&maintenance).await?;
    apply::preflight(&admin, &maintenance, migrations, app_role, true).await?;
    let name = target.dbname().to_string();
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .map_err(sql_error(&maintenance, "cannot list databases"))?
        .is_some();
    if exists {
        return Ok(false);
    }
    admin
        .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&name)))
        .await
        .map_err(sql_error(&maintenance, format!("cannot create database {name}")))?;
    Ok(true)
}

/// Creates and migrates the tenant's database. The report says how the
/// migration went; `Err` means the database could not be prepared.
pub async fn create(t: &Tenant, migrations: &[Arc<Loaded>], opts: &RunOptions, reporter: &Reporter) -> Result<(bool, TenantReport)> {
    let target = Target::parse(&t.database)?;
    let created = ensure_database(&target, migrations, opts.app_role.as_deref()).await?;
    Ok((created, run_tenant(t, migrations, opts, reporter).await))
}

/// Appends a `[[tenant]]` block to tenants.toml, keeping everything already
/// there (comments included). The result is parsed again; on any problem the
/// file is restored.
pub fn register(ws: &Workspace, t: &Tenant) -> Result<(), crate::Error> {
    let path = ws.root.join(&ws.config.paths.tenants);
    let before = if path.is_file() {
        crate::error::read_utf8(&path)?
    } else {
        String::new()
    };
    let mut text = before.clone();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(&block(t));
    write(&path, &text)?;
    if let Err(e) = Workspace::load(&ws.root) {
        write(&path, &before)?;
        return Err(e);
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), crate::Error> {
    std::fs::write(path, text).map_err(|e| crate::Error::io(path, e))
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The `[[tenant]]` block of a tenant.
pub fn block(t: &Tenant) -> String {
    let mut s = format!(
        "[[tenant]]\nslug = {}\ndatabase = {}\n",
        toml_string(&t.slug),
        toml_string(&t.database)
    );
    if let Some(v) = &t.vertical {
        s.push_str(&format!("vertical = {}\n", toml_string(v)));
    }
    if let Some(b) = &t.bespoke {
        s.push_str(&format!("bespoke = {}\n", toml_string(b)));
    }
    if !t.labels.is_empty() {
        let labels: Vec<String> = t
            .labels
            .iter()
            .map(|(k, v)| format!("{} = {}", toml_key(k), toml_string(v)))
            .collect();
        s.push_str(&format!("labels = {{ {} }}\n", labels.join(", ")));
    }
    s
}

fn toml_key(k: &str) -> String {
    if !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        k.to_string()
    } else {
        toml_string(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_round_trips() {
        let t = Tenant {
            slug: "gaku".into(),
            database: "host=/tmp/x dbname=gaku".into(),
            vertical: Some("agency".into()),
            bespoke: None,
            labels: BTreeMap::from([("wave".to_string(), "early".to_string())]),
        };
        let b = block(&t);
        assert_eq!(
            b,
            "[[tenant]]\nslug = \"gaku\"\ndatabase = \"host=/tmp/x dbname=gaku\"\nvertical = \"agency\"\nlabels = { wave = \"early\" }\n"
        );
        let parsed: toml::Value = toml::from_str(&b).unwrap();
        assert_eq!(parsed["tenant"][0]["labels"]["wave"].as_str(), Some("early"));
    }
}
