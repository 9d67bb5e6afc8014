//! `strata baseline`: take over databases that were migrated before strata
//! managed them, by recording their migrations as applied without running
//! them.
//!
//! Per tenant: read strata's history; decide what is applied — every
//! migration up to `--to LAYER@VERSION`, or what another tool's history
//! says (`--from TOOL`, mapped and checked by [`crate::pg::adopt`]); refuse
//! when strata's own history disagrees; compare the live schema with the
//! replay of what will then be recorded (the drift gate; `--force` skips it
//! after review); then write the rows in one transaction. Other tools'
//! history tables are never written, and drift leaves them out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::pool;
use super::progress::Reporter;
use super::status::DriftChecker;
use crate::pg::adopt::mapping::{self, LayerFiles, MappingRow};
use crate::pg::adopt::{self, ForeignHistory, Tool};
use crate::pg::apply::{self, Loaded};
use crate::pg::baseline::{self as record, Baseline};
use crate::pg::{self, history, Result, Target};
use crate::workspace::scaffold::LayerName;
use crate::workspace::{discover_all, Tenant, Workspace};

/// What the baseline takes as applied.
#[derive(Clone, Debug)]
pub enum Source {
    /// Each layer up to a version (the layers below it in a tenant's
    /// composition whole).
    To(Vec<(LayerName, String)>),
    /// What another tool's history table says, for one layer.
    From {
        tool: Tool,
        table: Option<String>,
        layer: LayerName,
    },
}

impl Source {
    /// Parses `--to LAYER@VERSION` values.
    pub fn to(specs: &[String]) -> std::result::Result<Source, crate::Error> {
        let mut out = Vec::new();
        for s in specs {
            let (layer, version) = s
                .rsplit_once('@')
                .filter(|(l, v)| !l.is_empty() && !v.is_empty())
                .ok_or_else(|| crate::Error::Usage(format!("--to `{s}`: expected LAYER@VERSION, e.g. core@0012 or verticals/crm@0003")))?;
            let layer = LayerName::parse(layer)?;
            if out.iter().any(|(l, _): &(LayerName, String)| *l == layer) {
                return Err(crate::Error::Usage(format!("--to names layer {} twice", layer.id())));
            }
            out.push((layer, version.to_string()));
        }
        Ok(Source::To(out))
    }

    /// Checks the layers and versions named against the workspace, before
    /// any database is touched.
    pub fn check(&self, ws: &Workspace) -> std::result::Result<(), crate::Error> {
        let layer_of = |l: &LayerName| {
            ws.layer(l.kind, &l.name)
                .ok_or_else(|| crate::Error::Usage(format!("the workspace has no layer {}", l.id())))
        };
        match self {
            Source::From { layer, .. } => layer_of(layer).map(|_| ()),
            Source::To(specs) => {
                for (l, version) in specs {
                    let ms = &ws.layers[layer_of(l)?].migrations;
                    if !ms.iter().any(|m| names_version(&m.version, &m.rel, version)) {
                        let range = match (ms.first(), ms.last()) {
                            (Some(a), Some(b)) => format!("{} to {}", a.version, b.version),
                            _ => "none".into(),
                        };
                        return Err(crate::Error::Usage(format!(
                            "--to {}@{version}: layer {} has no migration {version} (its versions: {range})",
                            l.id(),
                            l.id()
                        )));
                    }
                }
                Ok(())
            }
        }
    }

    fn note(&self, force: bool, relation: Option<&str>) -> String {
        let gate = if force { "recorded with --force" } else { "drift-gated" };
        match self {
            Source::To(specs) => {
                let to: Vec<String> = specs.iter().map(|(l, v)| format!("{}@{v}", l.id())).collect();
                format!("baseline --to {} ({gate})", to.join(" "))
            }
            Source::From { tool, .. } => {
                format!("baseline from {} ({}; {gate})", tool.name(), relation.unwrap_or("?"))
            }
        }
    }
}

/// Settings of one baseline run.
#[derive(Clone)]
pub struct Options {
    pub source: Source,
    pub force: bool,
    pub dry_run: bool,
    pub lock_wait: Duration,
    pub concurrency: usize,
    pub max_failures: Option<usize>,
}

/// How one tenant's baseline ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Rows were written.
    Recorded,
    /// Everything was already recorded.
    UpToDate,
    /// Dry run: the rows that would be written are listed.
    WouldRecord,
    /// The histories forbid it (dirty, failed, changed, missing, out of order).
    Refused,
    /// The live schema differs from the replay: nothing was written.
    Drifted,
    /// The database could not be read or written.
    Failed,
    /// Not started: --max-failures was reached.
    NotStarted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Recorded => "recorded",
            Status::UpToDate => "up-to-date",
            Status::WouldRecord => "would-record",
            Status::Refused => "refused",
            Status::Drifted => "drifted",
            Status::Failed => "failed",
            Status::NotStarted => "not-started",
        }
    }

    pub fn is_failure(self) -> bool {
        matches!(self, Status::Refused | Status::Drifted | Status::Failed)
    }
}

/// One tenant's baseline.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub tenant: String,
    /// The database, password never included.
    pub database: String,
    pub status: Status,
    /// The other tool's table read (`--from`).
    pub from: Option<String>,
    /// `--from`: every file and recorded version, and what strata does with it.
    pub mapping: Vec<MappingRow>,
    /// The files recorded (or, with --dry-run, to be recorded).
    pub recorded: Vec<String>,
    /// Migrations left for `strata migrate`.
    pub pending: usize,
    /// Whether the drift gate ran (not with --force) and found the schema clean.
    pub drift_checked: bool,
    /// The diff from the replay to the live schema, when it drifted.
    pub diff: Option<String>,
    pub error: Option<String>,
    pub elapsed_ms: u64,
}

impl Report {
    pub fn new(t: &Tenant) -> Report {
        Report {
            tenant: t.slug.clone(),
            database: String::new(),
            status: Status::NotStarted,
            from: None,
            mapping: Vec::new(),
            recorded: Vec::new(),
            pending: 0,
            drift_checked: false,
            diff: None,
            error: None,
            elapsed_ms: 0,
        }
    }
}

/// Whether `wanted` (from `--to LAYER@VERSION`) names the migration with
/// this version and path: its version, its number, its file name or folder.
fn names_version(version: &str, path: &str, wanted: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    version == wanted
        || (digits(version) && digits(wanted) && crate::workspace::layout::cmp_numeric(version, wanted).is_eq())
        || path == wanted
        || path.ends_with(&format!("/{wanted}"))
        || path.starts_with(&format!("{wanted}/"))
        || path.contains(&format!("/{wanted}/"))
}

/// The files of the tenant's composition to take as applied for `--to`.
fn wanted_to(
    ws: &Workspace,
    t: &Tenant,
    migrations: &[Arc<Loaded>],
    specs: &[(LayerName, String)],
) -> std::result::Result<Vec<bool>, String> {
    let layers: Vec<String> = ws.tenant_layers(t).iter().map(|&i| ws.layers[i].id()).collect();
    let mut limit: Vec<Option<usize>> = vec![None; layers.len()];
    for (layer, version) in specs {
        let li = layers
            .iter()
            .position(|l| *l == layer.id())
            .ok_or_else(|| format!("tenant {} has no layer {} (its layers: {})", t.slug, layer.id(), layers.join(", ")))?;
        let of_layer: Vec<usize> = (0..migrations.len()).filter(|&i| migrations[i].layer == layers[li]).collect();
        let hit = of_layer
            .iter()
            .copied()
            .find(|&i| names_version(&migrations[i].version, &migrations[i].display, version));
        let Some(hit) = hit else {
            let range = match (of_layer.first(), of_layer.last()) {
                (Some(&a), Some(&b)) => format!("{} to {}", migrations[a].version, migrations[b].version),
                _ => "none".into(),
            };
            return Err(format!("layer {} has no migration {version} (its versions: {range})", layer.id()));
        };
        limit[li] = Some(hit);
    }
    // Layers below the highest one named are taken whole.
    let top = limit.iter().rposition(Option::is_some).unwrap_or(0);
    Ok(migrations
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let li = layers.iter().position(|l| *l == m.layer).unwrap_or(usize::MAX);
            match limit.get(li).copied().flatten() {
                Some(last) => i <= last,
                None => li < top,
            }
        })
        .collect())
}

/// Reads and maps the other tool's history onto the layer (`--from`).
async fn wanted_from(
    ws: &Workspace,
    t: &Tenant,
    client: &tokio_postgres::Client,
    target: &Target,
    migrations: &[Arc<Loaded>],
    (tool, table, layer): (Tool, Option<&str>, &LayerName),
) -> Result<(Vec<bool>, ForeignHistory, Vec<MappingRow>)> {
    let li = ws
        .layer(layer.kind, &layer.name)
        .filter(|li| ws.tenant_layers(t).contains(li))
        .ok_or_else(|| crate::Error::Usage(format!("tenant {} has no layer {}", t.slug, layer.id())))?;
    let l = &ws.layers[li];
    let relation = adopt::resolve(client, target, tool, table).await?;
    let foreign = adopt::read(client, target, tool, &relation).await?;
    let left_out = discover_all(&l.dir, Some(l.layout))?.left_out;
    let display = |p: &std::path::Path| ws.display(p);
    let files = LayerFiles {
        layer: &l.id(),
        migrations: &l.migrations,
        left_out: &left_out,
        display: &display,
    };
    let mapped = mapping::map(&foreign, &files).map_err(adopt::Refusal::from)?;
    let first = migrations.iter().position(|m| m.layer == l.id()).unwrap_or(0);
    let mut wanted = vec![false; migrations.len()];
    for i in mapped.applied {
        if let Some(w) = wanted.get_mut(first + i) {
            *w = true;
        }
    }
    Ok((wanted, foreign, mapped.rows))
}

/// What every tenant of a baseline run shares.
pub struct Run<'a> {
    pub ws: &'a Workspace,
    pub opts: &'a Options,
    pub checker: &'a DriftChecker,
    pub reporter: &'a Reporter,
}

/// Baselines one tenant (never fails: problems are in the report).
pub async fn run_tenant(run: &Run<'_>, t: &Tenant, migrations: &[Arc<Loaded>]) -> Report {
    let started = Instant::now();
    run.reporter.tenant_started(&t.slug);
    let mut report = Report::new(t);
    let outcome = baseline(run, t, migrations, &mut report).await;
    match outcome {
        Ok(status) => report.status = status,
        Err(e) => {
            report.status = match e {
                pg::Error::Refused(_)
                | pg::Error::ChangedMigration { .. }
                | pg::Error::MissingMigration { .. }
                | pg::Error::UnfinishedMigration(_)
                | pg::Error::OutOfOrder { .. } => Status::Refused,
                _ => Status::Failed,
            };
            report.error = Some(e.to_string());
        }
    }
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    let detail = match report.status {
        s if s.is_failure() => format!(": {}", report.error.as_deref().unwrap_or("drift").lines().next().unwrap_or("")),
        _ => format!(" ({} recorded, {} pending)", report.recorded.len(), report.pending),
    };
    run.reporter.finished(&t.slug, report.status.as_str(), &detail);
    report
}

async fn baseline(run: &Run<'_>, t: &Tenant, migrations: &[Arc<Loaded>], report: &mut Report) -> Result<Status> {
    let Run {
        ws,
        opts,
        checker,
        reporter,
    } = *run;
    let target = Target::parse(&t.database)?;
    report.database = target.to_string();
    let client = pg::connect(&target).await?;
    let history = history::read(&client, &target).await?;
    let (wanted, foreign) = match &opts.source {
        Source::To(specs) => (wanted_to(ws, t, migrations, specs).map_err(crate::Error::Usage)?, None),
        Source::From { tool, table, layer } => {
            reporter.step(&t.slug, &format!("reading {}'s history", tool.name()));
            let (w, f, rows) = wanted_from(ws, t, &client, &target, migrations, (*tool, table.as_deref(), layer)).await?;
            report.from = Some(f.relation.shown());
            report.mapping = rows;
            (w, Some(f))
        }
    };
    let rows = record::rows_to_record(&history, migrations, &wanted)?;
    let mut applied = apply::applied_flags(&history, migrations);
    for &i in &rows {
        applied[i] = true;
    }
    report.recorded = rows.iter().map(|&i| migrations[i].display.clone()).collect();
    report.pending = applied.iter().filter(|a| !**a).count();
    if rows.is_empty() {
        return Ok(Status::UpToDate);
    }
    if !opts.force {
        reporter.step(&t.slug, "comparing the live schema with the replay");
        let mut leave_out = history::adopted_relations(&client, &target).await?;
        leave_out.extend(foreign.as_ref().map(|f| f.relation.sql()));
        let drift = checker.compare(t, &client, &target, migrations, &applied, &leave_out).await?;
        report.drift_checked = true;
        if drift.drifted {
            report.diff = Some(drift.diff);
            report.error = Some(format!(
                "the live schema differs from the {} migrations it would have once recorded; nothing was recorded \
                 (review the diff, then fix the schema or pass --force)",
                drift.replayed
            ));
            return Ok(Status::Drifted);
        }
    }
    if opts.dry_run {
        return Ok(Status::WouldRecord);
    }
    let note = opts
        .source
        .note(opts.force, foreign.as_ref().map(|f| f.relation.shown()).as_deref());
    let b = Baseline {
        migrations,
        rows: &rows,
        note: &note,
        history: &history,
        foreign: foreign.as_ref(),
    };
    record::record(&client, &target, &b, opts.lock_wait).await?;
    Ok(Status::Recorded)
}

/// Baselining one tenant, as pool work.
struct Work {
    ws: Arc<Workspace>,
    opts: Options,
    checker: Arc<DriftChecker>,
    reporter: Arc<Reporter>,
}

impl pool::Work<(Tenant, Arc<Vec<Arc<Loaded>>>), Report> for Work {
    async fn run(&self, (t, migrations): (Tenant, Arc<Vec<Arc<Loaded>>>)) -> Report {
        let run = Run {
            ws: &self.ws,
            opts: &self.opts,
            checker: &self.checker,
            reporter: &self.reporter,
        };
        run_tenant(&run, &t, &migrations).await
    }

    fn is_failure(&self, r: &Report) -> bool {
        r.status.is_failure()
    }

    fn panicked(&self, (t, _): &(Tenant, Arc<Vec<Arc<Loaded>>>), message: String) -> Report {
        let mut r = Report::new(t);
        r.status = Status::Failed;
        r.error = Some(message);
        self.reporter.finished(&t.slug, r.status.as_str(), "");
        r
    }
}

/// Baselines the tenants, `opts.concurrency` at a time; one report each,
/// in the order given.
pub async fn run(
    ws: Arc<Workspace>,
    tenants: Vec<(Tenant, Arc<Vec<Arc<Loaded>>>)>,
    opts: Options,
    checker: Arc<DriftChecker>,
    reporter: Arc<Reporter>,
) -> Vec<Report> {
    let (concurrency, max_failures) = (opts.concurrency, opts.max_failures);
    let work = Arc::new(Work {
        ws,
        opts,
        checker,
        reporter,
    });
    let failures = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let finished = pool::run(tenants, concurrency, max_failures, failures, work).await;
    let mut reports = finished.done;
    for (i, (t, _)) in finished.not_started {
        let mut r = Report::new(&t);
        r.error = Some(format!("--max-failures {} reached", max_failures.unwrap_or(0)));
        reports.push((i, r));
    }
    reports.sort_by_key(|(i, _)| *i);
    reports.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_specs() {
        let Source::To(specs) = Source::to(&["core@0003".into(), "verticals/crm@2".into()]).unwrap() else {
            panic!()
        };
        assert_eq!(specs[1].0.id(), "verticals/crm");
        assert_eq!(specs[1].1, "2");
        assert!(Source::to(&["core".into()]).is_err());
        assert!(Source::to(&["core@1".into(), "core@2".into()]).is_err());
        assert!(Source::to(&["plugins/x@1".into()]).is_err());
    }

    #[test]
    fn versions_are_named_by_version_number_file_or_folder() {
        assert!(names_version("0003", "0003_a b.sql", "0003"));
        assert!(names_version("0003", "0003_a b.sql", "3"));
        assert!(names_version("0003", "schema/core/0003_a b.sql", "0003_a b.sql"));
        assert!(names_version(
            "2019-01-01-000000",
            "2019-01-01-000000_x/up.sql",
            "2019-01-01-000000_x"
        ));
        assert!(names_version("1.10", "V1.10__x.sql", "1.10"));
        assert!(!names_version("1.10", "V1.10__x.sql", "1.1"));
        assert!(!names_version("0003", "0003_a.sql", "0004"));
    }
}
