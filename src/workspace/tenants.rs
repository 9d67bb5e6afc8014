//! `tenants.toml`: the fleet.
//!
//! ```toml
//! [[tenant]]
//! slug = "dreamlink"                 # [a-z0-9-]+
//! database = "env:DREAMLINK_URL"     # libpq URL, key=value string, or env:VAR
//! vertical = "agency"                # optional
//! bespoke = "dreamlink"              # optional
//! labels = { wave = "canary" }       # optional
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    pub slug: String,
    pub database: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vertical: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bespoke: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantsFile {
    #[serde(default)]
    tenant: Vec<toml::Spanned<Tenant>>,
}

pub fn valid_slug(slug: &str) -> bool {
    !slug.is_empty() && slug.len() <= 63 && slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Parses tenants.toml and checks slugs (valid, unique) and that every
/// vertical and bespoke layer named exists (`has_vertical`, `has_bespoke`).
pub fn parse(path: &Path, text: &str, has_vertical: &dyn Fn(&str) -> bool, has_bespoke: &dyn Fn(&str) -> bool) -> Result<Vec<Tenant>> {
    let file: TenantsFile = toml::from_str(text).map_err(|e| Error::config_at(path, text, e.span().map(|s| s.start), e.message()))?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for spanned in file.tenant {
        let at = Some(spanned.span().start);
        let t = spanned.into_inner();
        let fail = |msg: String| Error::config_at(path, text, at, msg);
        if !valid_slug(&t.slug) {
            return Err(fail(format!(
                "tenant slug `{}` is invalid: use [a-z0-9-]+ (at most 63 characters)",
                t.slug
            )));
        }
        if !seen.insert(t.slug.clone()) {
            return Err(fail(format!("tenant `{}` is listed twice", t.slug)));
        }
        if t.database.trim().is_empty() {
            return Err(fail(format!("tenant `{}` has an empty database", t.slug)));
        }
        if let Some(v) = &t.vertical {
            if !has_vertical(v) {
                return Err(fail(format!(
                    "tenant `{}`: vertical `{v}` does not exist under schema/verticals",
                    t.slug
                )));
            }
        }
        if let Some(b) = &t.bespoke {
            if !has_bespoke(b) {
                return Err(fail(format!(
                    "tenant `{}`: bespoke layer `{b}` does not exist under schema/bespoke",
                    t.slug
                )));
            }
        }
        out.push(t);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yes(_: &str) -> bool {
        true
    }

    #[test]
    fn parses_the_documented_form() {
        let text = "[[tenant]]\nslug = \"dreamlink\"\ndatabase = \"env:DL\"\nvertical = \"agency\"\nbespoke = \"dreamlink\"\nlabels = { wave = \"canary\" }\n\n[[tenant]]\nslug = \"plain\"\ndatabase = \"host=/tmp dbname=plain\"\n";
        let t = parse(Path::new("tenants.toml"), text, &yes, &yes).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].labels["wave"], "canary");
        assert_eq!(t[1].vertical, None);
    }

    #[test]
    fn bad_slug_names_its_line() {
        let text = "[[tenant]]\nslug = \"ok\"\ndatabase = \"x\"\n\n[[tenant]]\nslug = \"Bad_Slug\"\ndatabase = \"x\"\n";
        let err = parse(Path::new("tenants.toml"), text, &yes, &yes).unwrap_err().to_string();
        assert!(err.starts_with("tenants.toml:5:1:") || err.starts_with("tenants.toml:6:"), "{err}");
        assert!(err.contains("Bad_Slug"));
    }

    #[test]
    fn unknown_vertical() {
        let text = "[[tenant]]\nslug = \"a\"\ndatabase = \"x\"\nvertical = \"nope\"\n";
        let err = parse(Path::new("tenants.toml"), text, &|_| false, &yes).unwrap_err().to_string();
        assert!(err.contains("vertical `nope`"), "{err}");
    }
}
