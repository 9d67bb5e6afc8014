//! The cutover file, `cutovers/<name>.toml`: what moves or changes shape,
//! where, how fast, behind which gates. Parsed with serde
//! (`deny_unknown_fields`), then validated; every error names the file,
//! line and column, like the rest of strata's configuration.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// `move` (data between databases) or `reshape` (expand/contract inside
/// every tenant database).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Move,
    Reshape,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Move => "move",
            Kind::Reshape => "reshape",
        }
    }
}

/// The file as written.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CutoverFile {
    pub kind: Kind,
    #[serde(default)]
    pub description: String,
    /// The control-plane database holding the run state (default: the workspace's `control_plane`).
    pub control_plane: Option<String>,
    /// `move`: the database the data leaves (connection string or `env:VAR`).
    pub source: Option<String>,
    /// `move`: the database the data arrives in.
    pub target: Option<String>,
    /// `move`: the schema on the target holding the mapping's trigger functions.
    pub staging_schema: Option<String>,
    /// `reshape`: the tenants (slugs of tenants.toml; default: all).
    #[serde(default)]
    pub tenants: Vec<String>,
    /// `reshape`: successive waves (`canary`, `tier=gold`, `*`), as `strata migrate --wave`.
    #[serde(default)]
    pub waves: Vec<String>,
    /// `reshape`: stop starting tenants after this many failures (at least
    /// 1; default 1: the first failure halts), as `strata migrate --max-failures`.
    #[serde(default = "one")]
    pub max_failures: usize,
    /// How long the old objects are kept after the writers flipped, before contract may run.
    pub retention: String,
    #[serde(default)]
    pub flip: Flip,
    #[serde(default)]
    pub gates: Gates,
    #[serde(default)]
    pub backfill: Backfill,
    #[serde(rename = "table")]
    pub tables: Vec<TableMapping>,
    /// `move`: the Orbis identity consolidation (legacy users → contacts), run
    /// after the initial copy and again when the writers flip.
    pub identity: Option<super::identity::IdentitySpec>,
    /// `reshape`: the migration (a path in the workspace, e.g.
    /// `schema/core/0006_messages_content.sql`) that carries the new shape for
    /// tenants created later; contract records it as applied, so `strata
    /// drift` and `strata migrate` agree with the reshaped tenants.
    pub migration: Option<String>,
}

/// The workers whose routes flip, in order, and the soak after each.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flip {
    #[serde(default)]
    pub workers: Vec<String>,
    /// Wait after each reader flip before the next step (default 10m).
    pub soak: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gates {
    /// Rows that may differ between old and new at verification (default 0).
    #[serde(default)]
    pub max_row_difference: u64,
    /// `move`: the replication lag above which a flip is refused (default 30s).
    pub max_replication_lag: Option<String>,
    /// `move`: the WAL the source's slot may hold back before a gate refuses
    /// (default 8GB; a warning from half of it).
    pub max_retained_wal: Option<String>,
    /// `move`: how long the source must receive no change to the moved
    /// tables, once the subscription is disabled, before the dual-write
    /// window closes (default 1s).
    pub quiet_period: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backfill {
    /// Rows per batch (one short transaction each; default 5000).
    pub batch_size: Option<u32>,
    /// Pause between batches (default 0s: batches back to back).
    pub pause: Option<String>,
    /// `lock_timeout` of every DDL statement and batch (default 2s).
    pub lock_timeout: Option<String>,
}

/// One table: where it goes and how its columns change.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableMapping {
    /// `schema.table` or `table` (public).
    pub name: String,
    /// `move`: the table on the target (default: the same name).
    pub target: Option<String>,
    /// The unique key the backfill and verification walk, in its index's
    /// order: a column or a list of columns (default `id`).
    pub key: Option<KeySpec>,
    /// Old column → new column.
    #[serde(default)]
    pub rename: std::collections::BTreeMap<String, String>,
    /// Columns computed by an expression.
    #[serde(default, rename = "column")]
    pub columns: Vec<ColumnMapping>,
    /// Columns not carried over (`move`) or dropped at contract (`reshape`).
    #[serde(default)]
    pub drop: Vec<String>,
}

/// `key = "id"` or `key = ["tenant_id", "id"]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged, expecting = "a column name or a list of column names")]
pub enum KeySpec {
    One(String),
    Columns(Vec<String>),
}

impl KeySpec {
    fn columns(&self) -> Vec<String> {
        match self {
            KeySpec::One(c) => vec![c.clone()],
            KeySpec::Columns(cs) => cs.clone(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnMapping {
    /// The new column.
    pub name: String,
    /// Its SQL type (default, for a column that replaces another: the old column's type).
    #[serde(rename = "type")]
    pub sql_type: Option<String>,
    /// The new value, an SQL expression over the old row's columns.
    pub up: String,
    /// The old value, an SQL expression over the new row's columns (needed with `replaces`).
    pub down: Option<String>,
    /// The old column this one replaces (dropped at contract).
    pub replaces: Option<String>,
}

/// A validated cutover: the file plus its resolved settings.
#[derive(Clone, Debug, Serialize)]
pub struct Cutover {
    /// The file stem: `cutovers/rename-body.toml` is `rename-body`.
    pub name: String,
    #[serde(skip)]
    pub path: PathBuf,
    /// SHA-256 of the file: a run refuses a plan edited under it.
    pub checksum: String,
    pub file: CutoverFile,
    #[serde(skip)]
    pub settings: Settings,
    pub tables: Vec<Table>,
}

/// Durations and sizes with their defaults applied.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub retention: Duration,
    pub soak: Duration,
    pub max_replication_lag: Duration,
    /// Bytes of WAL the source's slot may retain before a gate refuses.
    pub max_retained_wal: u64,
    /// No change to the moved tables for this long closes the window.
    pub quiet_period: Duration,
    pub batch_size: u32,
    pub pause: Duration,
    /// As written (`2s`), for `SET lock_timeout`.
    pub lock_timeout: String,
}

/// A table mapping resolved into column changes.
#[derive(Clone, Debug, Serialize)]
pub struct Table {
    pub schema: String,
    pub name: String,
    pub target_schema: String,
    pub target_name: String,
    /// The key columns, in the order of their unique index.
    pub key: Vec<String>,
    pub changes: Vec<ColumnChange>,
    pub drop: Vec<String>,
}

impl Table {
    /// `"schema"."name"` of the source (reshape: the only) table.
    pub fn qualified(&self) -> String {
        format!("{}.{}", crate::pg::quote_ident(&self.schema), crate::pg::quote_ident(&self.name))
    }

    pub fn display(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// The key as written in messages: `id` or `(tenant_id, id)`.
    pub fn key_display(&self) -> String {
        match self.key.as_slice() {
            [one] => one.clone(),
            cols => format!("({})", cols.join(", ")),
        }
    }
}

/// A new column, how it is computed from the old row (`up`), and, when it
/// replaces an old column, how the old one is computed back (`down`).
#[derive(Clone, Debug, Serialize)]
pub struct ColumnChange {
    pub new: String,
    pub sql_type: Option<String>,
    pub up: String,
    pub down: Option<String>,
    pub replaces: Option<String>,
}

/// Reads and validates `path`.
pub fn load(path: &Path) -> crate::Result<Cutover> {
    let text = crate::error::read_utf8(path)?;
    parse(path, &text)
}

fn one() -> usize {
    1
}

pub fn parse(path: &Path, text: &str) -> crate::Result<Cutover> {
    let file: CutoverFile = toml::from_str(text).map_err(|e| Error::config_at(path, text, e.span().map(|s| s.start), e.message()))?;
    let err = |needle: &str, message: String| Error::config_at(path, text, text.find(needle), message);
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("cutover").to_string();
    if !valid_name(&name) {
        return Err(err(
            "",
            format!("the cutover's name `{name}` (its file name) must be [a-z0-9-]+, at most 40 characters"),
        ));
    }
    let duration = |key: &str, value: Option<&str>, default: Duration| -> crate::Result<Duration> {
        match value {
            None => Ok(default),
            Some(v) => parse_duration(v).ok_or_else(|| err(key, format!("{key} = `{v}` is not a duration (e.g. 500ms, 30s, 10m, 2h, 7d)"))),
        }
    };
    let retention = duration("retention", Some(&file.retention), Duration::ZERO)?;
    let soak = duration("soak", file.flip.soak.as_deref(), Duration::from_secs(600))?;
    let max_replication_lag = duration(
        "max_replication_lag",
        file.gates.max_replication_lag.as_deref(),
        Duration::from_secs(30),
    )?;
    let quiet_period = duration("quiet_period", file.gates.quiet_period.as_deref(), Duration::from_secs(1))?;
    let max_retained_wal = match file.gates.max_retained_wal.as_deref() {
        None => DEFAULT_MAX_RETAINED_WAL,
        Some(v) => parse_size(v).filter(|n| *n > 0).ok_or_else(|| {
            err(
                "max_retained_wal",
                format!("max_retained_wal = `{v}` is not a size (e.g. 512MB, 8GB, 1TB)"),
            )
        })?,
    };
    let pause = duration("pause", file.backfill.pause.as_deref(), Duration::ZERO)?;
    let lock_timeout = file.backfill.lock_timeout.clone().unwrap_or_else(|| "2s".into());
    duration("lock_timeout", Some(&lock_timeout), Duration::ZERO)?;
    if file.max_failures == 0 {
        return Err(err(
            "max_failures",
            "max_failures = 0 would start no tenant: it is the number of failures after which no new tenant starts \
             (1, the default, stops at the first failure)"
                .into(),
        ));
    }
    let batch_size = file.backfill.batch_size.unwrap_or(5000);
    if batch_size == 0 {
        return Err(err("batch_size", "batch_size must be at least 1".into()));
    }
    match file.kind {
        Kind::Move => {
            for (key, v) in [("source", &file.source), ("target", &file.target)] {
                if v.as_deref().is_none_or(|s| s.trim().is_empty()) {
                    return Err(err("kind", format!("a `move` needs `{key}` (a connection string or env:VAR)")));
                }
            }
            if !file.tenants.is_empty() || !file.waves.is_empty() {
                return Err(err(
                    "tenants",
                    "`tenants` and `waves` are for `reshape`; a `move` has one source and one target".into(),
                ));
            }
            if file.migration.is_some() {
                return Err(err(
                    "migration",
                    "`migration` is for `reshape` (the migration carrying the new shape of every tenant)".into(),
                ));
            }
        }
        Kind::Reshape => {
            for key in ["source", "target", "staging_schema", "identity", "max_retained_wal", "quiet_period"] {
                let set = match key {
                    "source" => file.source.is_some(),
                    "target" => file.target.is_some(),
                    "identity" => file.identity.is_some(),
                    "max_retained_wal" => file.gates.max_retained_wal.is_some(),
                    "quiet_period" => file.gates.quiet_period.is_some(),
                    _ => file.staging_schema.is_some(),
                };
                if set {
                    return Err(err(
                        &format!("{key} ="),
                        format!("`{key}` is for `move`; a `reshape` runs in each tenant's database (`tenants`, `waves`)"),
                    ));
                }
            }
            for w in &file.waves {
                crate::fleet::WaveSelector::parse(w).map_err(|e| err("waves", e.to_string()))?;
            }
            if let Some(m) = &file.migration {
                if !m.ends_with(".sql") || m.trim().is_empty() || Path::new(m).is_absolute() {
                    return Err(err(
                        "migration",
                        format!("migration = `{m}`: expected the path of a .sql file in the workspace (e.g. schema/core/0006_name.sql)"),
                    ));
                }
            }
        }
    }
    let mut workers = std::collections::BTreeSet::new();
    for w in &file.flip.workers {
        if w.trim().is_empty() || !workers.insert(w.as_str()) {
            return Err(err("workers", format!("flip.workers: `{w}` is empty or listed twice")));
        }
    }
    if file.tables.is_empty() {
        return Err(err("kind", "a cutover needs at least one [[table]]".into()));
    }
    let mut tables = Vec::new();
    for t in &file.tables {
        tables.push(resolve_table(t, file.kind, &|needle, m| err(needle, m))?);
    }
    for (i, t) in tables.iter().enumerate() {
        if tables[..i].iter().any(|o| o.schema == t.schema && o.name == t.name) {
            return Err(err(&t.name, format!("table {} is listed twice", t.display())));
        }
    }
    use sha2::Digest;
    let checksum = hex::encode(sha2::Sha256::digest(text.as_bytes()));
    Ok(Cutover {
        name,
        path: path.to_path_buf(),
        checksum,
        settings: Settings {
            retention,
            soak,
            max_replication_lag,
            max_retained_wal,
            quiet_period,
            batch_size,
            pause,
            lock_timeout,
        },
        file,
        tables,
    })
}

fn resolve_table(t: &TableMapping, kind: Kind, err: &dyn Fn(&str, String) -> Error) -> crate::Result<Table> {
    let split = |q: &str| -> crate::Result<(String, String)> {
        let (s, n) = q.split_once('.').unwrap_or(("public", q));
        for part in [s, n] {
            if !valid_ident(part) {
                return Err(err(q, format!("`{q}`: expected table or schema.table (letters, digits, _)")));
            }
        }
        Ok((s.to_string(), n.to_string()))
    };
    let (schema, name) = split(&t.name)?;
    let (target_schema, target_name) = match &t.target {
        Some(target) if kind == Kind::Reshape => return Err(err(target, format!("table {}: `target` is for `move`", t.name))),
        Some(target) => split(target)?,
        None => (schema.clone(), name.clone()),
    };
    let key = t.key.as_ref().map_or_else(|| vec!["id".to_string()], KeySpec::columns);
    if key.is_empty() {
        return Err(err("key", format!("table {}: `key` lists no column", t.name)));
    }
    for (i, k) in key.iter().enumerate() {
        if !valid_ident(k) || key[..i].contains(k) {
            return Err(err(
                k,
                format!("table {}: key column `{k}` is not a column name or is listed twice", t.name),
            ));
        }
    }
    let mut changes: Vec<ColumnChange> = t
        .rename
        .iter()
        .map(|(old, new)| ColumnChange {
            new: new.clone(),
            sql_type: None,
            up: crate::pg::quote_ident(old),
            down: Some(crate::pg::quote_ident(new)),
            replaces: Some(old.clone()),
        })
        .collect();
    for c in &t.columns {
        if c.up.trim().is_empty() {
            return Err(err(&c.name, format!("table {}: column {}: `up` is empty", t.name, c.name)));
        }
        if kind == Kind::Reshape && c.replaces.is_some() && c.down.as_deref().is_none_or(|d| d.trim().is_empty()) {
            return Err(err(
                &c.name,
                format!(
                    "table {}: column {} replaces {} and needs `down` (the old value from the new row) so that \
                     writers not yet flipped keep seeing correct data",
                    t.name,
                    c.name,
                    c.replaces.as_deref().unwrap_or_default()
                ),
            ));
        }
        if c.replaces.is_none() && c.sql_type.is_none() {
            return Err(err(
                &c.name,
                format!("table {}: column {} needs `type` (it replaces no column)", t.name, c.name),
            ));
        }
        changes.push(ColumnChange {
            new: c.name.clone(),
            sql_type: c.sql_type.clone(),
            up: c.up.clone(),
            down: c.down.clone(),
            replaces: c.replaces.clone(),
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    for c in &changes {
        for col in std::iter::once(&c.new).chain(c.replaces.iter()) {
            if !valid_ident(col) {
                return Err(err(
                    col,
                    format!("table {}: `{col}` is not a column name (letters, digits, _)", t.name),
                ));
            }
        }
        if !seen.insert(c.new.clone()) {
            return Err(err(&c.new, format!("table {}: new column {} is defined twice", t.name, c.new)));
        }
        if let Some(k) = c.replaces.as_ref().filter(|r| key.contains(r)) {
            return Err(err(
                k,
                format!("table {}: the key column {k} cannot be replaced (it keeps its name)", t.name),
            ));
        }
    }
    for d in &t.drop {
        if !valid_ident(d) || key.contains(d) {
            return Err(err(d, format!("table {}: cannot drop `{d}`", t.name)));
        }
    }
    if kind == Kind::Reshape && changes.is_empty() && t.drop.is_empty() {
        return Err(err(
            &t.name,
            format!("table {}: nothing to reshape (no rename, column or drop)", t.name),
        ));
    }
    Ok(Table {
        schema,
        name,
        target_schema,
        target_name,
        key,
        changes,
        drop: t.drop.clone(),
    })
}

fn valid_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 63
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 40 && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The WAL a source slot may retain when the file does not say: enough for
/// hours of a busy source, small enough for most disks to survive.
pub const DEFAULT_MAX_RETAINED_WAL: u64 = 8 << 30;

/// `512MB`, `8GB`, `1TB`, `64kB`, `1024` (bytes); units of 1024, as PostgreSQL's.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "kb" | "k" => 10,
        "mb" | "m" => 20,
        "gb" | "g" => 30,
        "tb" | "t" => 40,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

/// Bytes as PostgreSQL's `pg_size_pretty` would show them (`1536 kB`, `8 GB`).
pub fn format_size(bytes: u64) -> String {
    let units = ["bytes", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0} {}", units[unit])
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

/// `500ms`, `30s`, `10m`, `2h`, `7d`, or `0`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let secs = match unit.trim() {
        "ms" => return Some(Duration::from_millis(n)),
        "s" => n,
        "m" | "min" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

/// A duration as the cutover file would write it.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    if ms % 1000 != 0 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    for (unit, n) in [("d", 86400), ("h", 3600), ("m", 60)] {
        if s % n == 0 {
            return format!("{}{unit}", s / n);
        }
    }
    format!("{s}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESHAPE: &str = r#"
kind = "reshape"
description = "messages.body becomes messages.text"
retention = "7d"
waves = ["canary", "*"]
max_failures = 1

[flip]
workers = ["inbox", "digest"]
soak = "5m"

[backfill]
batch_size = 500
pause = "10ms"

[[table]]
name = "messages"
rename = { body = "text" }
drop = ["lid_jid"]
"#;

    fn parse_str(text: &str) -> crate::Result<Cutover> {
        parse(Path::new("cutovers/rename-body.toml"), text)
    }

    #[test]
    fn reshape_resolves_renames_and_defaults() {
        let c = parse_str(RESHAPE).unwrap();
        assert_eq!(c.name, "rename-body");
        assert_eq!(c.settings.retention, Duration::from_secs(7 * 86400));
        assert_eq!(c.settings.soak, Duration::from_secs(300));
        assert_eq!(c.settings.batch_size, 500);
        assert_eq!(c.settings.lock_timeout, "2s");
        let t = &c.tables[0];
        assert_eq!((t.schema.as_str(), t.name.as_str()), ("public", "messages"));
        assert_eq!(t.key, ["id"]);
        assert_eq!(t.changes[0].new, "text");
        assert_eq!(t.changes[0].up, "\"body\"");
        assert_eq!(t.changes[0].replaces.as_deref(), Some("body"));
        assert_eq!(t.drop, ["lid_jid"]);
    }

    #[test]
    fn unknown_key_is_reported_with_its_position() {
        let text = RESHAPE.replace("batch_size = 500", "batch_sise = 500");
        let e = parse_str(&text).unwrap_err().to_string();
        assert!(e.starts_with("cutovers/rename-body.toml:13:1: unknown field `batch_sise`"), "{e}");
    }

    #[test]
    fn max_failures_is_a_count_of_at_least_one_and_defaults_to_one() {
        let e = parse_str(&RESHAPE.replace("max_failures = 1", "max_failures = 0"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cutovers/rename-body.toml:6:1: max_failures = 0 would start no tenant"),
            "{e}"
        );
        assert_eq!(parse_str(&RESHAPE.replace("max_failures = 1\n", "")).unwrap().file.max_failures, 1);
        assert_eq!(
            parse_str(&RESHAPE.replace("max_failures = 1", "max_failures = 3"))
                .unwrap()
                .file
                .max_failures,
            3
        );
    }

    #[test]
    fn bad_duration_names_the_key() {
        let e = parse_str(&RESHAPE.replace("\"5m\"", "\"five minutes\"")).unwrap_err().to_string();
        assert!(
            e.contains("cutovers/rename-body.toml:10:1: soak = `five minutes` is not a duration"),
            "{e}"
        );
    }

    #[test]
    fn move_needs_source_and_target() {
        let e = parse_str("kind = \"move\"\nretention = \"1d\"\ntarget = \"env:T\"\n[[table]]\nname = \"users\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("a `move` needs `source`"), "{e}");
    }

    #[test]
    fn reshape_refuses_source() {
        let e = parse_str(&format!("source = \"env:S\"\n{RESHAPE}")).unwrap_err().to_string();
        assert!(e.contains("`source` is for `move`"), "{e}");
    }

    #[test]
    fn replacing_column_needs_down() {
        let text = "kind = \"reshape\"\nretention = \"1d\"\n[[table]]\nname = \"trips\"\n[[table.column]]\nname = \"starts_at\"\n\
                    type = \"timestamptz\"\nup = \"starts_on::timestamptz\"\nreplaces = \"starts_on\"\n";
        let e = parse_str(text).unwrap_err().to_string();
        assert!(e.contains("column starts_at replaces starts_on and needs `down`"), "{e}");
    }

    #[test]
    fn a_key_is_a_column_or_a_list() {
        let c = parse_str(&RESHAPE.replace("name = \"messages\"", "name = \"messages\"\nkey = [\"org_id\", \"id\"]")).unwrap();
        assert_eq!(c.tables[0].key, ["org_id", "id"]);
        assert_eq!(c.tables[0].key_display(), "(org_id, id)");
        let e = parse_str(&RESHAPE.replace("name = \"messages\"", "name = \"messages\"\nkey = 7"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("a column name or a list of column names"), "{e}");
        let e = parse_str(&RESHAPE.replace("name = \"messages\"", "name = \"messages\"\nkey = [\"id\", \"id\"]"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("key column `id` is not a column name or is listed twice"), "{e}");
    }

    /// The error of the reshape fixture with `line` under `[gates]`.
    fn reshape_gate_error(line: &str) -> String {
        parse_str(&RESHAPE.replace("[flip]", &format!("[gates]\n{line}\n[flip]")))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("8GB"), Some(8 << 30));
        assert_eq!(parse_size("512 MB"), Some(512 << 20));
        assert_eq!(parse_size("64kB"), Some(64 << 10));
        assert_eq!(parse_size("eight"), None);
        assert_eq!(format_size(8 << 30), "8 GB");
        assert_eq!(format_size(1536 << 10), "1.5 MB");
        assert_eq!(format_size(100), "100 bytes");
        let c = parse_str(RESHAPE).unwrap();
        assert_eq!(c.settings.max_retained_wal, DEFAULT_MAX_RETAINED_WAL);
        let e = reshape_gate_error("max_retained_wal = \"1GB\"");
        assert!(e.contains("`max_retained_wal` is for `move`"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(604800)));
        assert_eq!(parse_duration("ten"), None);
        assert_eq!(format_duration(Duration::from_secs(604800)), "7d");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(parse_str(RESHAPE).unwrap().settings.quiet_period, Duration::from_secs(1));
        let e = reshape_gate_error("quiet_period = \"5s\"");
        assert!(e.contains("`quiet_period` is for `move`"), "{e}");
        let e = reshape_gate_error("quiet_period = \"soon\"");
        assert!(e.contains("quiet_period = `soon` is not a duration"), "{e}");
    }
}
