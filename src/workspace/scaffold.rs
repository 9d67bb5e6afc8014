//! Creating workspaces and migrations: `strata init`, `strata init --from`
//! and `strata new`.
//!
//! Nothing here overwrites a file: a workspace is created only where there is
//! no `strata.toml`, files that exist are kept, and a new migration is created
//! with `create_new`. Adopting an existing history (`--from`) renames and
//! copies nothing: `strata.toml` points the core layer at the folder.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

use super::{detect, discover, discover_all, display_path, valid_slug, Config, LayerKind, Layout, LeftOut, Migration, Naming, CONFIG_FILE};

const CONFIG_TEMPLATE: &str = include_str!("templates/strata.toml");
const GOVERNANCE_TEMPLATE: &str = include_str!("templates/governance.toml");
const TENANTS_TEMPLATE: &str = include_str!("templates/tenants.toml");
const FIRST_MIGRATION: &str = include_str!("templates/0001_init.sql");

/// What `init` did, for the command to print.
#[derive(Debug, Default)]
pub struct InitReport {
    /// Files written, relative to the workspace root.
    pub created: Vec<String>,
    /// Files that already existed and were kept as they were.
    pub kept: Vec<String>,
    /// `--from`: what was adopted.
    pub adopted: Option<Adopted>,
}

/// The migration folder `init --from` adopted.
#[derive(Debug)]
pub struct Adopted {
    pub layout: Layout,
    /// Why this layout (`--layout`, or what detection saw).
    pub evidence: String,
    pub migrations: usize,
    /// Files and folders that are not forward migrations, and why.
    pub left_out: Vec<LeftOut>,
    /// Whether the history creates the Orbis canonical tables (the person
    /// table `contacts` and a state home); when it does not, the governance
    /// group is written off in rules/governance.toml.
    pub orbis: bool,
}

/// Creates a new workspace in `root` (created when missing). With `from`, the
/// existing migration folder becomes the core layer instead of a fresh
/// `schema/core` with a first migration, in `layout` (detected when `None`;
/// a folder that fits several tools needs it). strata.sum is left to the
/// caller (it needs the loaded workspace).
pub fn init(root: &Path, from: Option<&Path>, layout: Option<Layout>) -> Result<InitReport> {
    let config_path = root.join(CONFIG_FILE);
    if config_path.exists() {
        return Err(Error::Usage(format!(
            "{} already exists: this folder is a workspace (strata init never overwrites it)",
            config_path.display()
        )));
    }
    let mut report = InitReport::default();
    // Validate what is adopted before anything is created.
    if let Some(dir) = from {
        if !dir.is_dir() {
            return Err(Error::MissingPath { path: dir.to_path_buf() });
        }
        let (layout, evidence) = match layout {
            Some(l) => (l, "--layout".to_string()),
            None => {
                let d = detect(dir)?;
                if !d.also.is_empty() {
                    let all: Vec<&str> = std::iter::once(d.layout).chain(d.also.iter().copied()).map(Layout::name).collect();
                    return Err(Error::Usage(format!(
                        "{}: the files ({}) fit more than one tool: {}; say which with --layout {}",
                        dir.display(),
                        d.evidence,
                        all.join(", "),
                        all.join("|")
                    )));
                }
                (d.layout, d.evidence)
            }
        };
        let found = discover_all(dir, Some(layout))?;
        if found.migrations.is_empty() {
            return Err(Error::Usage(format!(
                "{}: no migrations found as {} (the layouts strata reads: {})",
                dir.display(),
                layout.name(),
                Layout::NAMES.join(", ")
            )));
        }
        report.adopted = Some(Adopted {
            layout,
            evidence,
            migrations: found.migrations.len(),
            orbis: creates_canonical_tables(&found.migrations),
            left_out: found.left_out,
        });
    }
    std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
    let name = root
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "strata".into());
    let name = name.replace(['"', '\\'], "");
    let config = match (from, &report.adopted) {
        (Some(dir), Some(a)) => render_config(&name, a.layout.name(), "any", Some(&core_path(root, dir))),
        _ => render_config(&name, "native", "native", None),
    };
    // The rendered configuration must load: a template bug would otherwise
    // surface only on the user's next command.
    Config::parse(&config_path, &config)?;
    let governance = match &report.adopted {
        Some(a) if !a.orbis => format!("{GOVERNANCE_OFF}\n{GOVERNANCE_TEMPLATE}"),
        _ => GOVERNANCE_TEMPLATE.to_string(),
    };
    let mut files: Vec<(PathBuf, &str)> = vec![
        (config_path.clone(), config.as_str()),
        (root.join("rules/governance.toml"), governance.as_str()),
        (root.join("tenants.toml"), TENANTS_TEMPLATE),
        (root.join("schema/verticals/.gitkeep"), ""),
        (root.join("schema/bespoke/.gitkeep"), ""),
    ];
    if from.is_none() {
        let core = root.join("schema/core");
        let has_migrations = core.is_dir() && discover(&core, None).is_ok_and(|(_, ms)| !ms.is_empty());
        if !has_migrations {
            files.push((core.join("0001_init.sql"), FIRST_MIGRATION));
        }
    }
    for (path, text) in files {
        let shown = display_path(root, &path);
        if path.exists() {
            report.kept.push(shown);
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
        report.created.push(shown);
    }
    Ok(report)
}

/// The head of rules/governance.toml for a project without the Orbis
/// canonical tables.
const GOVERNANCE_OFF: &str = "\
# This history creates none of the Orbis canonical tables (the person table
# `contacts`, the state homes `orbis_kv`, `workflow_state`, `orbis_state.events`),
# so the Orbis schema discipline, the governance group (row level security and
# tenant-scoped policies on every tenant table, `contacts` as the one person
# table, state in its canonical homes, layer boundaries), is off.
# To turn it on, delete `governance = \"off\"` below (or set it to \"warning\"),
# then configure:
#   - strata.toml [tenancy]: mode, app_role, and tenant_key / tenant_table
#     (shared) or container_table / container_key (database-per-tenant);
#   - the person table: [rules.parallel-person-table] person_table and
#     [rules.person-ref-not-contact] person_table, patterns;
#   - the canonical homes: [rules.bespoke-table] events_home, state_home, kv_home.
# The history group (file names, order, strata.sum) stays on.
[groups]
governance = \"off\"
";

/// Whether the migrations create the person table `contacts` and one of
/// the canonical state homes (`orbis_kv`, `workflow_state`,
/// `orbis_state.events`): an Orbis schema.
fn creates_canonical_tables(migrations: &[Migration]) -> bool {
    // `name` is a pattern for the (optionally schema-qualified) table name.
    let table = |name: &str| {
        regex::Regex::new(&format!(
            r#"(?i)\bcreate\s+(?:unlogged\s+)?table\s+(?:if\s+not\s+exists\s+)?{name}\s*\("#
        ))
        .expect("a valid pattern")
    };
    let any_schema = |t: &str| format!(r#"(?:"?\w+"?\.)?"?{t}"?"#);
    let contacts = table(&any_schema("contacts"));
    let homes = [
        table(&any_schema("orbis_kv")),
        table(&any_schema("workflow_state")),
        table(r#""?orbis_state"?\."?events"?"#),
    ];
    let (mut person, mut home) = (false, false);
    for m in migrations {
        let Ok(text) = std::fs::read_to_string(&m.path) else { continue };
        person |= contacts.is_match(&text);
        home |= homes.iter().any(|r| r.is_match(&text));
        if person && home {
            return true;
        }
    }
    false
}

/// The core folder as written in strata.toml: relative to the workspace root
/// (with `..` when it lies beside it), so that the workspace can move.
fn core_path(root: &Path, dir: &Path) -> String {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let common = root.components().zip(dir.components()).take_while(|(a, b)| a == b).count();
    let mut rel = PathBuf::new();
    for _ in root.components().skip(common) {
        rel.push("..");
    }
    rel.extend(dir.components().skip(common));
    let shown = if rel.as_os_str().is_empty() {
        ".".to_string()
    } else {
        rel.to_string_lossy().replace('\\', "/")
    };
    shown.replace('"', "\\\"")
}

fn render_config(name: &str, layout: &str, naming: &str, core: Option<&str>) -> String {
    let core = match core {
        Some(p) => format!("# The core layer: an existing migration folder, adopted in place.\ncore = \"{p}\"\n"),
        None => String::new(),
    };
    CONFIG_TEMPLATE
        .replace("{name}", name)
        .replace("{layout}", layout)
        .replace("{naming}", naming)
        .replace("{core}\n", &core)
}

/// A layer named on the command line: `core`, `verticals/<v>`, `bespoke/<t>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerName {
    pub kind: LayerKind,
    pub name: String,
}

impl LayerName {
    pub fn parse(s: &str) -> Result<LayerName> {
        let s = s.trim_end_matches('/');
        let (kind, name) = match s.split_once('/') {
            None if s == "core" => (LayerKind::Core, "core"),
            Some(("verticals" | "vertical", v)) => (LayerKind::Vertical, v),
            Some(("bespoke", b)) => (LayerKind::Bespoke, b),
            _ => {
                return Err(Error::Usage(format!(
                    "unknown layer `{s}`: expected core, verticals/<vertical> or bespoke/<tenant>"
                )))
            }
        };
        if !valid_slug(name) {
            return Err(Error::Usage(format!(
                "layer name `{name}` is invalid: use [a-z0-9-]+ (at most 63 characters)"
            )));
        }
        Ok(LayerName {
            kind,
            name: name.to_string(),
        })
    }

    /// `core`, `verticals/<name>` or `bespoke/<name>`, as [`super::Layer::id`].
    pub fn id(&self) -> String {
        super::layer_id(self.kind, &self.name)
    }
}

/// `AddNotes`, `add-notes`, `add notes` → `add_notes`. Errors when nothing
/// usable is left or the name does not start with a letter.
pub fn snake_case(name: &str) -> Result<String> {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in name.trim().chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
            prev_lower = true;
        } else if c == '_' || c == '-' || c == ' ' || c == '.' {
            if !out.ends_with('_') && !out.is_empty() {
                out.push('_');
            }
            prev_lower = false;
        } else {
            return Err(Error::Usage(format!(
                "migration name `{name}`: `{c}` is not allowed (use letters, digits, _ and -)"
            )));
        }
    }
    let out = out.trim_end_matches('_').to_string();
    if !out.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(Error::Usage(format!("migration name `{name}` must start with a letter")));
    }
    if out.len() > 60 {
        return Err(Error::Usage(format!("migration name `{name}` is too long (at most 60 characters)")));
    }
    Ok(out)
}

/// The folder of a layer, whether or not it exists yet.
pub fn layer_dir(root: &Path, config: &Config, layer: &LayerName) -> PathBuf {
    match layer.kind {
        LayerKind::Core => root.join(config.paths.core_dir()),
        LayerKind::Vertical => root.join(&config.paths.schema).join("verticals").join(&layer.name),
        LayerKind::Bespoke => root.join(&config.paths.schema).join("bespoke").join(&layer.name),
    }
}

/// The files of a new migration: the forward file first (the one to edit),
/// then a down file where the layout has one.
#[derive(Debug)]
pub struct NewMigration {
    pub files: Vec<(PathBuf, String)>,
}

/// Plans the next migration of a layer. `existing` are the layer's current
/// migrations; `fallback` the layout to use when the configuration says
/// `auto` and the folder is empty.
pub fn plan_new(
    dir: &Path,
    config: &Config,
    existing: &[Migration],
    fallback: Layout,
    layer_id: &str,
    name: &str,
    now: std::time::SystemTime,
) -> Result<NewMigration> {
    let layout = Layout::from_name(&config.migrations.layout)
        .or_else(|| existing.first().map(|m| m.layout))
        .unwrap_or(fallback);
    let max = existing.iter().filter_map(Migration::number).max();
    let longest = existing.iter().map(|m| m.version.len()).max().unwrap_or(0);
    let stamp = utc_stamp(now);
    // Timestamped histories (sqlx, goose, dbmate, prisma) go on with a
    // timestamp; numbered ones with the next number.
    let version = if longest >= 14 {
        let next = max.map_or(0, |m| m + 1);
        stamp.digits.parse::<u64>().unwrap_or(0).max(next).to_string()
    } else {
        let width = if layout == Layout::Native || existing.is_empty() {
            config.migrations.number_width
        } else {
            longest
        };
        format!("{:0width$}", max.map_or(1, |m| m + 1))
    };
    let header = header(layer_id, name, layout);
    let down = down_header(name, layout);
    // The history's own shape wins over the layout's default: a diesel
    // history flattened to `<version>_<name>.up.sql` files (down files in
    // `down/`) goes on flattened, a reversible sqlx history with pairs.
    let last = existing.last().map(|m| m.rel.as_str()).unwrap_or("");
    let pair = |version: &str| {
        let up = dir.join(format!("{version}_{name}.up.sql"));
        let down_name = format!("{version}_{name}.down.sql");
        let down_path = if keeps_downs_in_folder(dir) {
            dir.join("down").join(down_name)
        } else {
            dir.join(down_name)
        };
        vec![(up, header.clone()), (down_path, down.clone())]
    };
    let files = match layout.naming() {
        Naming::DieselFolder if last.ends_with(".up.sql") && !last.contains('/') => pair(&stamp.diesel),
        Naming::Timestamp | Naming::Numbered if last.ends_with(".up.sql") && !last.contains('/') => pair(&version),
        Naming::FlywayVersioned => vec![(dir.join(format!("V{}__{name}.sql", version.trim_start_matches('0'))), header)],
        Naming::NumberedUpDown | Naming::TimestampUpDown => pair(&version),
        Naming::DieselFolder => {
            let folder = dir.join(format!("{}_{name}", stamp.diesel));
            vec![(folder.join("up.sql"), header), (folder.join("down.sql"), down)]
        }
        Naming::PrismaFolder => vec![(dir.join(format!("{}_{name}", stamp.digits)).join("migration.sql"), header)],
        Naming::Any => {
            // A plain history applies in name order: the new file must sort
            // after the last one (`v1.19_1_x.sql` goes on as `v1.19_2_<name>.sql`).
            let stamped = format!("{version}_{name}.sql");
            let file = match existing.last() {
                Some(m) if stamped.as_str() <= m.rel.as_str() => next_plain_name(&m.rel, name).unwrap_or(stamped),
                _ => stamped,
            };
            vec![(dir.join(file), header)]
        }
        Naming::Numbered | Naming::Timestamp => vec![(dir.join(format!("{version}_{name}.sql")), header)],
    };
    Ok(NewMigration { files })
}

/// Writes the planned files; fails (without writing anything more) when one exists.
pub fn write_new(new: &NewMigration) -> Result<()> {
    for (path, text) in &new.files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        f.write_all(text.as_bytes()).map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

/// The name after `last` in a plain history: its version part (the `_`
/// separated words before the first that starts with a letter) with its
/// last number incremented, then `name`. `None` when it has no number.
fn next_plain_name(last: &str, name: &str) -> Option<String> {
    let stem = last.rsplit('/').next()?.strip_suffix(".sql")?;
    let words: Vec<&str> = stem.split('_').collect();
    let n = 1 + words
        .iter()
        .skip(1)
        .take_while(|w| !w.starts_with(|c: char| c.is_ascii_alphabetic()))
        .count();
    let version = words[..n].join("_");
    let end = version.rfind(|c: char| c.is_ascii_digit())? + 1;
    let start = version[..end].rfind(|c: char| !c.is_ascii_digit()).map_or(0, |i| i + 1);
    let next = version[start..end].parse::<u64>().ok()? + 1;
    let width = end - start;
    let bumped = format!("{}{next:0width$}{}", &version[..start], &version[end..]);
    Some(format!("{bumped}_{name}.sql"))
}

/// Whether the history keeps its down files in a `down/` folder (as the
/// flattened diesel histories do).
fn keeps_downs_in_folder(dir: &Path) -> bool {
    std::fs::read_dir(dir.join("down"))
        .is_ok_and(|mut rd| rd.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".down.sql"))))
}

/// The new file's text. strata's own layout gets the header that explains
/// strata's runner; another tool's file gets only its title and the tool's
/// own markers (strata's runner is not that tool's).
fn header(layer_id: &str, name: &str, layout: Layout) -> String {
    let title = name.replace('_', " ");
    if layout != Layout::Native {
        return match layout {
            Layout::Goose => format!("-- +goose Up\n-- {title}\n\n-- +goose Down\n"),
            Layout::Dbmate => format!("-- migrate:up\n-- {title}\n\n-- migrate:down\n"),
            _ => format!("-- {title}\n\n"),
        };
    }
    format!(
        "-- {layer_id}: {title}\n\
         --\n\
         -- strata {TRANSACTION_NOTE}, together with its history row.\n\
         -- Statements that cannot run in a transaction (CREATE INDEX CONCURRENTLY, ...)\n\
         -- need the header below as the file's first line, without the leading \"-- \"\n\
         -- (the file is then recorded in the history only after it succeeded):\n\
         -- -- strata: no-transaction\n\n"
    )
}

/// The words of a new migration's template that say it runs in one
/// transaction: `--fix` removes that note when it makes the file run
/// outside one ([`crate::rules::fixes`]).
pub const TRANSACTION_NOTE: &str = "applies this file in one transaction";

fn down_header(name: &str, layout: Layout) -> String {
    if layout == Layout::Native {
        format!("-- Reverts {name}. strata never applies down migrations.\n")
    } else {
        format!("-- reverts {}\n", name.replace('_', " "))
    }
}

struct Stamp {
    /// `YYYYMMDDHHMMSS`
    digits: String,
    /// `YYYY-MM-DD-HHMMSS` (diesel)
    diesel: String,
}

fn utc_stamp(now: std::time::SystemTime) -> Stamp {
    let secs = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    Stamp {
        digits: format!("{y:04}{m:02}{d:02}{hh:02}{mm:02}{ss:02}"),
        diesel: format!("{y:04}-{m:02}-{d:02}-{hh:02}{mm:02}{ss:02}"),
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_normalizes_and_validates() {
        assert_eq!(snake_case("AddNotes").unwrap(), "add_notes");
        assert_eq!(snake_case("add-notes").unwrap(), "add_notes");
        assert_eq!(snake_case(" add  notes ").unwrap(), "add_notes");
        assert_eq!(snake_case("add_notes_v2").unwrap(), "add_notes_v2");
        assert!(snake_case("2fast").is_err());
        assert!(snake_case("drop;table").is_err());
        assert!(snake_case("___").is_err());
    }

    #[test]
    fn layer_names() {
        assert_eq!(LayerName::parse("core").unwrap().kind, LayerKind::Core);
        let v = LayerName::parse("verticals/agency").unwrap();
        assert_eq!((v.kind, v.name.as_str()), (LayerKind::Vertical, "agency"));
        assert_eq!(LayerName::parse("bespoke/dreamlink/").unwrap().kind, LayerKind::Bespoke);
        assert!(LayerName::parse("verticals/Bad_Name").is_err());
        assert!(LayerName::parse("plugins/x").is_err());
    }

    #[test]
    fn a_plain_history_goes_on_after_its_last_name() {
        assert_eq!(next_plain_name("v1.19_1_current_chasm.sql", "x").as_deref(), Some("v1.19_2_x.sql"));
        assert_eq!(next_plain_name("009_init.sql", "x").as_deref(), Some("010_x.sql"));
        assert_eq!(next_plain_name("v1.09.sql", "x").as_deref(), Some("v1.10_x.sql"));
        assert_eq!(next_plain_name("schema.sql", "x"), None);
    }

    #[test]
    fn utc_stamps() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_709_251_199); // 2024-02-29 23:59:59
        let s = utc_stamp(t);
        assert_eq!(s.digits, "20240229235959");
        assert_eq!(s.diesel, "2024-02-29-235959");
    }

    fn migration(file: &str, version: &str, layout: Layout) -> Migration {
        Migration {
            path: PathBuf::from("m").join(file),
            rel: file.into(),
            version: version.into(),
            name: "x".into(),
            layout,
            repeatable: false,
            declared_no_transaction: false,
        }
    }

    fn planned(layout: &str, existing: &[Migration]) -> Vec<String> {
        let mut config = Config::default();
        config.migrations.layout = layout.into();
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_709_251_199);
        let new = plan_new(Path::new("m"), &config, existing, Layout::Native, "core", "add_notes", now).unwrap();
        new.files.iter().map(|(p, _)| p.to_string_lossy().replace('\\', "/")).collect()
    }

    #[test]
    fn next_names_follow_the_layout() {
        assert_eq!(planned("auto", &[]), ["m/0001_add_notes.sql"]);
        let native = [
            migration("0001_a.sql", "0001", Layout::Native),
            migration("0002_b.sql", "0002", Layout::Native),
        ];
        assert_eq!(planned("native", &native), ["m/0003_add_notes.sql"]);
        let flyway = [
            migration("V9__a.sql", "9", Layout::Flyway),
            migration("V10__b.sql", "10", Layout::Flyway),
        ];
        assert_eq!(planned("flyway", &flyway), ["m/V11__add_notes.sql"]);
        let gm = [migration("000007_a.up.sql", "000007", Layout::GolangMigrate)];
        assert_eq!(planned("auto", &gm), ["m/000008_add_notes.up.sql", "m/000008_add_notes.down.sql"]);
        let sqlx = [migration("20240101000000_a.sql", "20240101000000", Layout::Sqlx)];
        assert_eq!(planned("auto", &sqlx), ["m/20240229235959_add_notes.sql"]);
        let diesel = [migration("2020-01-01-000000_a/up.sql", "2020-01-01-000000", Layout::Diesel)];
        assert_eq!(
            planned("diesel", &diesel),
            ["m/2024-02-29-235959_add_notes/up.sql", "m/2024-02-29-235959_add_notes/down.sql"]
        );
        assert_eq!(planned("prisma", &[]), ["m/20240229235959_add_notes/migration.sql"]);
    }

    #[test]
    fn goose_and_dbmate_files_get_their_sections() {
        assert!(header("core", "a", Layout::Goose).starts_with("-- +goose Up\n"));
        assert!(header("core", "a", Layout::Dbmate).contains("\n-- migrate:down\n"));
    }

    #[test]
    fn the_hint_is_not_a_header() {
        let h = header("core", "add_notes", Layout::Native);
        assert!(h.contains("strata: no-transaction"));
        assert!(!crate::sql::suppress::has_no_transaction_header(&h));
    }

    #[test]
    fn core_paths_are_relative_to_the_root() {
        let d = tempfile::tempdir().unwrap();
        for sub in ["ws", "ws/db/migrations", "legacy/migrations"] {
            std::fs::create_dir_all(d.path().join(sub)).unwrap();
        }
        let root = d.path().join("ws");
        assert_eq!(core_path(&root, &root.join("db/migrations")), "db/migrations");
        assert_eq!(core_path(&root, &d.path().join("legacy/migrations")), "../legacy/migrations");
        assert_eq!(core_path(&root, &root), ".");
    }

    #[test]
    fn the_init_template_loads() {
        let text = render_config("x", "native", "native", None);
        Config::parse(Path::new("strata.toml"), &text).unwrap();
        let text = render_config("x", "golang-migrate", "any", Some("db/migrations"));
        let c = Config::parse(Path::new("strata.toml"), &text).unwrap();
        assert_eq!(c.paths.core_dir(), PathBuf::from("db/migrations"));
    }
}
