//! The static pipeline: load and parse files (in parallel), replay the
//! catalog in apply order, run the rules on the files under review, and
//! collect diagnostics.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;
use sha2::Digest;

use crate::catalog::Catalog;
use crate::diag::{CheckReport, Diagnostic, Pos, Region, Severity, SourceFile};
use crate::error::{Error, Result};
use crate::rules::{self, Env, FileCtx, FileInfo, Finding, LayerInfo, Released, Rule, RulesConfig, StatementCtx};
use crate::sql::{ParsedFile, ReadScope};
use crate::workspace::{sum, Migration, Workspace};

pub mod shadow;

pub use crate::workspace::source::{apply_layout, load_file, load_migration, parse_source, parse_source_with};

/// Parses `items` ahead of `consume`, which gets every file in order: one
/// parsing thread per core takes the next file as soon as it is free, while
/// the caller's thread replays and checks the earlier ones, and each file's
/// syntax trees are dropped as soon as it has been consumed. At most
/// `WINDOW` files are parsed and not yet consumed.
///
/// (Batches of 16 files parsed with rayon, four in flight, held up to 96
/// files' trees and waited for each batch's largest file. Per-file work
/// with a window of 16 lowered the peak memory of a check of the corpora
/// by a fifth and its time by a tenth; a window of 8 starved the workers,
/// 32 was no faster: docs/decisions/0001.)
fn parse_ahead(items: &[(PathBuf, String, Option<Migration>)], mut consume: impl FnMut(&ParsedFile)) -> Result<()> {
    const WINDOW: usize = 16;
    crate::ahead::in_order(items, WINDOW, load_item, |parsed| {
        consume(&parsed?);
        Ok(())
    })
}

/// Loads one file of a plain check: a discovered migration with its
/// layout's transaction markers, or a file given by name.
///
/// Outside a workspace strata is not what runs the files: each is checked
/// as its tool runs it ([`as_its_tool_runs_it`]; golang-migrate and Prisma
/// send a file as one query, and a file given by name or in a folder of
/// any `*.sql` has no known runner).
fn load_item((p, d, m): &(PathBuf, String, Option<Migration>)) -> Result<ParsedFile> {
    let mut parsed = match m {
        Some(m) => load_migration(m, d.clone())?,
        None => load_file(p, d.clone())?,
    };
    as_its_tool_runs_it(&mut parsed, m.as_ref().map(|m| m.layout));
    Ok(parsed)
}

/// Marks a file of a plain check as running outside a transaction when
/// its tool (`layout`; `None`: unknown) does not wrap every file in one and
/// the file has its own `BEGIN`/`COMMIT`, or is a single statement, which
/// PostgreSQL runs as a transaction of its own (a file of several
/// statements sent as one query runs in one implicit transaction, and so do
/// the statements of a DO block).
///
/// When the tool is unknown, any known tool's mark that a file runs
/// outside a transaction counts (goose's, sqlx's and dbmate's, and
/// postgres-migrations' `-- postgres-migrations disable-transaction`).
fn as_its_tool_runs_it(parsed: &mut ParsedFile, layout: Option<crate::workspace::Layout>) {
    use crate::workspace::Layout;
    let wraps = layout.and_then(Layout::wraps_each_file);
    if wraps == Some(true) {
        parsed.runner = layout.map(Layout::name);
        return;
    }
    let text = &parsed.source.text;
    let marked = wraps.is_none()
        && (Layout::ALL.iter().any(|l| l.text_says_no_transaction(text))
            || text
                .lines()
                .take_while(|l| l.trim().is_empty() || l.trim_start().starts_with("--"))
                .any(|l| {
                    l.trim_start()
                        .strip_prefix("--")
                        .is_some_and(|c| c.trim().eq_ignore_ascii_case("postgres-migrations disable-transaction"))
                }));
    // A DO block is one statement whose statements share its transaction.
    let lone = parsed.statements.iter().filter(|s| s.runs_with_migration()).count() == 1;
    if marked || !parsed.tx_controls.is_empty() || lone {
        parsed.no_transaction = true;
    }
}

/// Which files a check reports on, as the workspace lists their paths
/// (`Migration::path`; [`review_set`] finds them). `None`: every file.
pub type ReviewSet = Option<HashSet<PathBuf>>;

fn canonical(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

/// Canonical paths of many files, each folder resolved once: a file that is
/// not a symbolic link is its folder's canonical path joined with its name
/// (one `lstat`, where `canonicalize` reads every component of the path).
#[derive(Default)]
struct Canonical(HashMap<PathBuf, PathBuf>);

impl Canonical {
    fn of(&mut self, p: &Path) -> PathBuf {
        if !std::fs::symlink_metadata(p).is_ok_and(|m| !m.file_type().is_symlink()) {
            return canonical(p);
        }
        self.in_folder(p)
    }

    /// `p` in its resolved folder, `p` itself not looked at (a link stays
    /// a link: this is the path of the link, not of what it points to).
    fn in_folder(&mut self, p: &Path) -> PathBuf {
        let (Some(parent), Some(name)) = (p.parent(), p.file_name()) else {
            return canonical(p);
        };
        let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
        let dir = self.0.entry(parent.to_path_buf()).or_insert_with(|| canonical(parent));
        dir.join(name)
    }
}

/// The rules of one check with their severity per layer.
struct Engine<'a> {
    env: Env<'a>,
    rules: Vec<Box<dyn Rule>>,
    /// severities[layer + 1][rule]; index 0 is "no layer".
    severities: Vec<Vec<Severity>>,
}

impl<'a> Engine<'a> {
    fn new(env: Env<'a>, cfg: &RulesConfig) -> Result<Self> {
        let rules = rules::configured(cfg)?;
        let in_workspace = env.config.is_some();
        let mut severities = Vec::new();
        for layer in std::iter::once(None).chain(env.layers.iter().map(Some)) {
            severities.push(
                rules
                    .iter()
                    .map(|r| {
                        let m = r.meta();
                        if m.needs_workspace && !in_workspace {
                            Severity::Off
                        } else {
                            rules::severity_in(cfg, m, layer)
                        }
                    })
                    .collect(),
            );
        }
        Ok(Engine { env, rules, severities })
    }

    fn severity(&self, layer: Option<u16>, rule: usize) -> Severity {
        self.severities[layer.map_or(0, |l| l as usize + 1)][rule]
    }

    /// Replays one file into `catalog`; when `report`, runs the rules and
    /// appends diagnostics.
    fn run_file(&self, file: &FileInfo, catalog: &mut Catalog, report: bool, out: &mut Vec<Diagnostic>) {
        let parsed = file.parsed;
        let layer = file.layer.unwrap_or(0);
        if !report {
            for (i, stmt) in parsed.statements.iter().enumerate() {
                replay(catalog, stmt, file.id, layer, i);
            }
            return;
        }
        let active: Vec<usize> = (0..self.rules.len())
            .filter(|&r| self.severity(file.layer, r) != Severity::Off)
            .collect();
        let mut findings: Vec<(usize, Finding)> = Vec::new();
        let mut buf = Vec::new();
        {
            let cx = FileCtx {
                env: &self.env,
                file,
                catalog,
            };
            for &r in &active {
                self.rules[r].check_file_start(&cx, &mut buf);
                findings.extend(buf.drain(..).map(|f| (r, f)));
            }
        }
        let in_functions: Vec<usize> = active.iter().copied().filter(|&r| self.rules[r].judges_function_bodies()).collect();
        let mut locks = Vec::with_capacity(parsed.statements.len());
        for (i, stmt) in parsed.statements.iter().enumerate() {
            // Found once, at the statement's turn (several lock rules ask
            // about every earlier statement).
            locks.push(rules::lock::strong_lock(&self.env, catalog, file, i));
            let cx = StatementCtx {
                env: &self.env,
                file,
                index: i,
                stmt,
                catalog,
                locks: &locks,
            };
            // A function body runs when the function is called: only the
            // rules about what a function may do judge it.
            let rules = if stmt.runs_with_migration() { &active } else { &in_functions };
            for &r in rules {
                self.rules[r].check_statement(&cx, &mut buf);
                // Most rules find nothing in most statements: no drain then
                // (50 rules times every statement: 1.5% of a check).
                if !buf.is_empty() {
                    findings.extend(buf.drain(..).map(|f| (r, f.in_statement(i, stmt))));
                }
            }
            replay(catalog, stmt, file.id, layer, i);
        }
        {
            let cx = FileCtx {
                env: &self.env,
                file,
                catalog,
            };
            for &r in &active {
                self.rules[r].check_file_end(&cx, &mut buf);
                findings.extend(buf.drain(..).map(|f| (r, f)));
            }
        }
        self.emit(file, findings, out);
    }

    /// Applies suppressions, attaches rule ids and severities, and reports
    /// suppressions that are malformed or suppress nothing.
    fn emit(&self, file: &FileInfo, findings: Vec<(usize, Finding)>, out: &mut Vec<Diagnostic>) {
        let parsed = file.parsed;
        let mut used = vec![false; parsed.suppressions.len()];
        for (r, f) in findings {
            let mut f = f;
            // Released migrations are never edited, whatever the rule offers.
            if f.fix.is_some() && !rules::fixes::fixable(file) {
                f.fix = None;
                f.unfixed = Some(rules::fixes::RELEASED.to_string());
            }
            out.extend(admit(parsed, self.rules[r].meta().id, self.severity(file.layer, r), f, &mut used));
        }
        let Some(unused_rule) = self.rules.iter().position(|r| r.meta().id == "unused-suppression") else {
            return;
        };
        let severity = self.severity(file.layer, unused_rule);
        if severity == Severity::Off {
            return;
        }
        for (s, was_used) in parsed.suppressions.iter().zip(used) {
            let message = if s.reason.is_none() {
                Some("this suppression has no reason and is ignored: write `-- strata-ignore <rule>: <reason>`".to_string())
            } else if let Some(unknown) = s.rules.iter().find(|r| rules::meta_of(r).is_none()) {
                Some(format!(
                    "`{unknown}` is not a strata rule{} (see `strata rules`)",
                    rules::did_you_mean(unknown)
                ))
            } else if s.rules.is_empty() {
                Some("this suppression names no rule".to_string())
            } else if !was_used
                && s.rules.iter().any(|r| {
                    self.rules
                        .iter()
                        .position(|x| x.meta().id == r)
                        .is_some_and(|i| self.severity(file.layer, i) != Severity::Off)
                })
            {
                Some(format!("this suppression of {} suppresses nothing", s.rules.join(", ")))
            } else {
                None
            };
            if let Some(message) = message {
                out.push(Diagnostic {
                    rule: "unused-suppression",
                    severity,
                    file: parsed.source.clone(),
                    region: s.region,
                    message,
                    help: Some("fix or delete the comment".to_string()),
                    fix: None,
                    unfixed: None,
                    anchor: None,
                });
            }
        }
    }
}

/// A finding of `rule` in `parsed` as the user sees it, with its
/// severity; `None` when the rule is off there or a suppression covers the
/// finding's statement (the suppression is then marked in `used`, indexed
/// like `parsed.suppressions`). The static check and `--shadow` both report
/// through here.
pub(crate) fn admit(parsed: &ParsedFile, rule: &'static str, severity: Severity, f: Finding, used: &mut [bool]) -> Option<Diagnostic> {
    if severity == Severity::Off {
        return None;
    }
    let stmt = f.statement.or_else(|| statement_at(parsed, f.region.start));
    if let Some(s) = parsed.suppressions.iter().position(|s| s.covers(rule, stmt)) {
        used[s] = true;
        return None;
    }
    Some(Diagnostic {
        rule,
        severity,
        file: parsed.source.clone(),
        region: f.region,
        message: f.message,
        help: f.help,
        fix: f.fix,
        unfixed: f.unfixed,
        anchor: stmt.and_then(|i| parsed.statements.get(i)).map(|st| st.bytes.clone()),
    })
}

impl Finding {
    /// Attaches a statement finding to its statement. Inside a body, fixes
    /// are dropped (strata does not edit bodies), and a detached statement
    /// (SQL built by an `EXECUTE`) is positioned where its string starts.
    fn in_statement(mut self, i: usize, stmt: &crate::sql::Statement) -> Self {
        self.statement.get_or_insert(i);
        if let Some(body) = stmt.body {
            if self.fix.take().is_some() || self.unfixed.is_some() {
                self.unfixed = Some("inside a function or DO body, which strata does not edit".to_string());
            }
            if body.detached {
                self.region = stmt.region;
            }
        }
        self
    }
}

pub use crate::catalog::replay_statement as replay;

/// The statement whose span starts at or before `pos` (the last such).
fn statement_at(parsed: &ParsedFile, pos: Pos) -> Option<usize> {
    let i = parsed.statements.partition_point(|s| s.region.start <= pos);
    i.checked_sub(1)
}

fn finish(mut report: CheckReport, started: Instant) -> CheckReport {
    report.stats.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    report.sort();
    report
}

fn count_reviewed(report: &mut CheckReport, parsed: &ParsedFile) {
    report.stats.files += 1;
    report.reviewed.push(parsed.source.path.clone());
    report.stats.statements += parsed.statement_count();
    report.stats.understood += parsed.understood_count();
}

/// What rules see of a check outside any workspace.
fn plain_env() -> Env<'static> {
    Env {
        config: None,
        pg_version: 15,
        layers: &[],
        transactional: true,
    }
}

/// A file outside any workspace: no layer, no release status.
fn plain_file(parsed: &ParsedFile, id: u32) -> FileInfo<'_> {
    FileInfo {
        parsed,
        id,
        layer: None,
        migration: None,
        layer_migrations: &[],
        released: Released::Unknown,
        released_head: None,
    }
}

/// Checks one text outside any workspace (an editor's buffer of a plain
/// `.sql` file), as [`check_files`] checks a file: no history, lock safety
/// and review rules only.
pub fn check_text(display: String, text: String) -> Result<CheckReport> {
    let started = Instant::now();
    let mut parsed = parse_source(Arc::new(SourceFile::new(display, text)));
    as_its_tool_runs_it(&mut parsed, None);
    let engine = Engine::new(plain_env(), &RulesConfig::default())?;
    let mut report = CheckReport::default();
    engine.run_file(&plain_file(&parsed, 0), &mut Catalog::new(), true, &mut report.diagnostics);
    count_reviewed(&mut report, &parsed);
    Ok(finish(report, started))
}

/// Checks plain files or folders outside any workspace: one migration
/// sequence in the order given (folders expand to their migrations), lock
/// safety and review rules only.
pub fn check_files(paths: &[PathBuf], base: &Path) -> Result<CheckReport> {
    let started = Instant::now();
    let mut items: Vec<(PathBuf, String, Option<Migration>)> = Vec::new();
    for p in paths {
        // One `stat` per path (a check of 7,580 files made two each).
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => {
                let found = crate::workspace::discover_all(p, None)?;
                unnamed_folder(p, &found)?;
                items.extend(found.migrations.into_iter().map(|m| {
                    let d = crate::workspace::display_path(base, &m.path);
                    (m.path.clone(), d, Some(m))
                }));
            }
            Ok(_) => items.push((p.clone(), crate::workspace::display_path(base, p), None)),
            Err(_) => return Err(Error::MissingPath { path: p.clone() }),
        }
    }
    let engine = Engine::new(plain_env(), &RulesConfig::default())?;
    let mut report = CheckReport::default();
    let mut catalog = Catalog::new();
    let mut id = 0u32;
    parse_ahead(&items, |p| {
        engine.run_file(&plain_file(p, id), &mut catalog, true, &mut report.diagnostics);
        count_reviewed(&mut report, p);
        id += 1;
    })?;
    Ok(finish(report, started))
}

/// A folder given to check whose SQL files are all left out for their
/// names: an error, not a check of nothing that passes.
fn unnamed_folder(dir: &Path, found: &crate::workspace::Discovery) -> Result<()> {
    use crate::workspace::LeftOutReason;
    let unnamed: Vec<&str> = found
        .left_out
        .iter()
        .filter(|l| matches!(l.reason, LeftOutReason::NotAMigrationName(_)))
        .map(|l| l.rel.as_str())
        .collect();
    if !found.migrations.is_empty() || unnamed.is_empty() {
        return Ok(());
    }
    let pattern = match &found.left_out.iter().find(|l| l.rel == unnamed[0]).map(|l| &l.reason) {
        Some(LeftOutReason::NotAMigrationName(p)) => p.clone(),
        _ => String::new(),
    };
    Err(Error::Usage(format!(
        "{}: no migration to check: its files look like {} migrations, which are named {pattern}, and none of its {} .sql files is (such as {}); \
         give the files themselves to check them in the order given",
        dir.display(),
        found.layout.name(),
        unnamed.len(),
        unnamed[0],
    )))
}

/// Checks a workspace: replays every composition of layers, reports the
/// files in `review` (all when `None`). No catalog cache.
pub fn check_workspace(ws: &Workspace, review: &ReviewSet) -> Result<CheckReport> {
    check_workspace_cached(ws, review, false)
}

/// Like [`check_workspace`]; with `use_cache`, the catalog replayed from the
/// history before the first file under review comes from [`crate::cache`]
/// when the history is unchanged, so that history is not even parsed.
///
/// Each composition (core; core + a vertical; core + vertical + a bespoke
/// layer) is replayed only up to its last file under review, and only when
/// it reports a file no earlier composition reported. Every file is parsed
/// at most once.
pub fn check_workspace_cached(ws: &Workspace, review: &ReviewSet, use_cache: bool) -> Result<CheckReport> {
    check_workspace_overlay(ws, review, use_cache, &Overlay::new())
}

/// Texts that stand in for files on disk during one check (an editor's
/// unsaved buffers), keyed by the migration's path as the workspace lists it.
pub type Overlay = HashMap<PathBuf, String>;

/// Like [`check_workspace_cached`], reading the files of `overlay` from it
/// instead of the disk: the language server checks what is being typed
/// against the whole history with the same engine, suppressions and cache.
pub fn check_workspace_overlay(ws: &Workspace, review: &ReviewSet, use_cache: bool, overlay: &Overlay) -> Result<CheckReport> {
    let started = Instant::now();
    // Every file once, in layer order; its id is its index here.
    let mut items = Vec::new();
    let mut file_of: HashMap<(usize, usize), usize> = HashMap::new();
    for (li, layer) in ws.layers.iter().enumerate() {
        for (mi, m) in layer.migrations.iter().enumerate() {
            file_of.insert((li, mi), items.len());
            items.push((li, mi, m.path.clone(), ws.display(&m.path)));
        }
    }
    // Files are read when needed: a history prefix whose catalog is cached
    // is hashed from the index of file stamps, not read (`cache::FileHashes`).
    let mut texts: Vec<Option<String>> = items.iter().map(|(_, _, p, _)| overlay.get(p).cloned()).collect();
    let reviewed: Vec<bool> = items
        .iter()
        .map(|(_, _, p, _)| review.as_ref().is_none_or(|set| set.contains(p)))
        .collect();

    let mut report = CheckReport::default();
    let released = check_sum(ws, &mut report)?;

    let heads: Vec<Option<usize>> = ws
        .layers
        .iter()
        .map(|l| {
            let id = l.id();
            l.migrations
                .iter()
                .rposition(|m| released.as_ref().is_some_and(|r| r.contains_key(&sum::key(&id, &m.file_name()))))
        })
        .collect();

    // Which composition reports which file, and how far each is replayed.
    struct Plan {
        label: String,
        seq: Vec<usize>,
        report: HashSet<usize>,
        first: usize,
        last: usize,
    }
    let mut claimed = vec![false; items.len()];
    let mut plans = Vec::new();
    for comp in ws.compositions() {
        let seq: Vec<usize> = comp
            .layers
            .iter()
            .flat_map(|&li| (0..ws.layers[li].migrations.len()).map(move |mi| (li, mi)))
            .map(|k| file_of[&k])
            .collect();
        let report_set: HashSet<usize> = seq.iter().copied().filter(|&f| reviewed[f] && !claimed[f]).collect();
        if report_set.is_empty() {
            continue;
        }
        for &f in &report_set {
            claimed[f] = true;
        }
        let first = seq.iter().position(|f| report_set.contains(f)).unwrap_or(0);
        let last = seq.iter().rposition(|f| report_set.contains(f)).unwrap_or(0);
        plans.push(Plan {
            label: comp.label,
            seq,
            report: report_set,
            first,
            last,
        });
    }

    // Catalogs of unchanged history prefixes, from the cache. The hashes of
    // their files come from the index of stamps where it knows the file
    // (`from_index`: checked again against the text if that prefix is
    // replayed after all), else from the file, read now and recorded.
    let mut hashes: HashMap<usize, [u8; 32]> = HashMap::new();
    let mut from_index: HashSet<usize> = HashSet::new();
    let prefixes: HashSet<usize> = plans
        .iter()
        .filter(|plan| use_cache && plan.first > 0)
        .flat_map(|plan| plan.seq[..plan.first].iter().copied())
        .collect();
    if !prefixes.is_empty() {
        let mut stamps = crate::cache::FileHashes::load(&ws.root);
        let mut unread = Vec::new();
        for &f in &prefixes {
            if texts[f].is_some() {
                continue;
            }
            match stamps.get(&items[f].2) {
                Some(h) => {
                    hashes.insert(f, h);
                    from_index.insert(f);
                }
                None => unread.push(f),
            }
        }
        let read: Vec<(usize, String, std::fs::Metadata)> = unread
            .par_iter()
            .map(|&f| crate::error::read_utf8_stamped(&items[f].2).map(|(text, meta)| (f, text, meta)))
            .collect::<Result<_>>()?;
        for (f, text, meta) in read {
            let h: [u8; 32] = sha2::Sha256::digest(text.as_bytes()).into();
            stamps.put(&items[f].2, &meta, &h);
            hashes.insert(f, h);
            texts[f] = Some(text);
        }
        // Overlay texts are hashed as they are, never recorded.
        for &f in &prefixes {
            if let (false, Some(text)) = (hashes.contains_key(&f), &texts[f]) {
                hashes.insert(f, sha2::Sha256::digest(text.as_bytes()).into());
            }
        }
        let current: HashSet<&str> = items.iter().filter_map(|(_, _, p, _)| p.to_str()).collect();
        stamps.save(|k| current.contains(k));
    }
    let cached: Vec<(Option<Catalog>, Option<String>)> = plans
        .iter()
        .map(|plan| {
            if !use_cache || plan.first == 0 {
                return (None, None);
            }
            let mut key = crate::cache::Key::new(&plan.label);
            for &f in &plan.seq[..plan.first] {
                key.file(f as u32, items[f].0 as u16, &hashes[&f]);
            }
            let (hit, k) = crate::cache::load(key);
            (hit, Some(k))
        })
        .collect();

    // Parse every file some plan replays, once, in parallel.
    // Layers other than core are parsed whole: layer-boundary needs to know
    // what each of them defines.
    let mut needed: Vec<bool> = items
        .iter()
        .map(|(li, ..)| ws.layers[*li].kind != crate::workspace::LayerKind::Core)
        .collect();
    for (plan, (hit, _)) in plans.iter().zip(&cached) {
        let start = if hit.is_some() { plan.first } else { 0 };
        for &f in &plan.seq[start..=plan.last] {
            needed[f] = true;
        }
    }
    let parsed: Vec<Option<ParsedFile>> = texts
        .into_par_iter()
        .zip(needed.par_iter())
        .zip(items.par_iter().zip(reviewed.par_iter()))
        .map(|((text, &n), ((li, mi, p, d), &reviewed))| {
            if !n {
                return Ok(None);
            }
            let text = match text {
                Some(t) => t,
                None => crate::error::read_utf8(p)?,
            };
            // History the check does not report on is only replayed.
            let scope = if reviewed { ReadScope::All } else { ReadScope::History };
            let mut p = parse_source_with(Arc::new(SourceFile::new(d.clone(), text)), scope);
            apply_layout(&mut p, &ws.layers[*li].migrations[*mi]);
            Ok(Some(p))
        })
        .collect::<Result<_>>()?;
    let layer_infos = layer_infos(ws, &parsed, &file_of);

    let env = Env {
        config: Some(&ws.config),
        pg_version: ws.config.pg_version,
        layers: &layer_infos,
        transactional: true,
    };
    let engine = Engine::new(env, &ws.rules)?;
    let have_sum = released.is_some();
    let mut touched = vec![false; items.len()];
    for (plan, (hit, key)) in plans.iter().zip(cached) {
        let start = if hit.is_some() { plan.first } else { 0 };
        for &f in &plan.seq[..plan.first] {
            touched[f] = true;
        }
        let mut catalog = hit.unwrap_or_default();
        for (pos, &f) in plan.seq.iter().enumerate().take(plan.last + 1).skip(start) {
            if pos == plan.first {
                // Stored under the key only when the texts replayed are the
                // ones the key was made of: a hash from the index of stamps,
                // and a file changed since, would store another history's
                // catalog under it (the other hashes are of these texts).
                let replayed_as_keyed = || {
                    plan.seq[..plan.first].iter().filter(|f| from_index.contains(f)).all(|f| {
                        parsed[*f]
                            .as_ref()
                            .is_some_and(|p| hashes[f] == <[u8; 32]>::from(sha2::Sha256::digest(p.source.text.as_bytes())))
                    })
                };
                if let (true, Some(k)) = (start == 0 && pos > 0, &key) {
                    if replayed_as_keyed() {
                        crate::cache::store(k, &catalog);
                    }
                }
            }
            let (li, mi, _, _) = items[f];
            let layer = &ws.layers[li];
            let m: &Migration = &layer.migrations[mi];
            let Some(p) = parsed[f].as_ref() else { continue };
            let info = FileInfo {
                parsed: p,
                id: f as u32,
                layer: Some(li as u16),
                migration: Some(m),
                layer_migrations: &layer.migrations,
                released: match released
                    .as_ref()
                    .and_then(|r| r.get(&sum::key(&layer_infos[li].id, &m.file_name())))
                {
                    // A repeatable migration is edited on purpose: it runs again.
                    _ if m.repeatable => Released::Unknown,
                    Some((hash, line)) => Released::Released { hash, sum_line: *line },
                    None if have_sum => Released::New,
                    None => Released::Unknown,
                },
                released_head: heads[li],
            };
            let report_it = plan.report.contains(&f);
            engine.run_file(&info, &mut catalog, report_it, &mut report.diagnostics);
            touched[f] = true;
            if report_it {
                count_reviewed(&mut report, p);
            }
        }
    }
    report.stats.context_files = touched.iter().filter(|t| **t).count() - report.stats.files;
    Ok(finish(report, started))
}

/// Released migrations: strata.sum key → (hash, line).
type ReleasedMap = HashMap<String, (String, usize)>;

/// Reads strata.sum (when the workspace has one), reports removed released
/// migrations and a broken hash chain, and returns the released hashes.
fn check_sum(ws: &Workspace, report: &mut CheckReport) -> Result<Option<ReleasedMap>> {
    let sum_path = ws.root.join(&ws.config.paths.sum);
    if !sum_path.is_file() {
        return Ok(None);
    }
    let text = crate::error::read_utf8(&sum_path)?;
    let shown = ws.display(&sum_path);
    let entries = sum::parse(Path::new(&shown), &text)?;
    report.reviewed.push(shown.clone());
    let source = Arc::new(SourceFile::new(shown, text));
    let on_disk: HashSet<String> = ws
        .layers
        .iter()
        .flat_map(|l| l.migrations.iter().map(move |m| sum::key(&l.id(), &m.file_name())))
        .collect();
    let sev = ws
        .rules
        .severity("migration-modified", Some(crate::diag::Group::History), Severity::Error, None, None);
    let mut sum_diag = |line: usize, message: String, help: &str| {
        if sev != Severity::Off {
            report.diagnostics.push(Diagnostic {
                rule: "migration-modified",
                severity: sev,
                file: source.clone(),
                region: Region::new(
                    Pos::new(line as u32, 1),
                    Pos::new(line as u32, source.line(line as u32).chars().count().max(1) as u32),
                ),
                message,
                help: Some(help.to_string()),
                fix: None,
                unfixed: None,
                anchor: None,
            });
        }
    };
    for e in &entries {
        if !on_disk.contains(&e.key) {
            sum_diag(
                e.line,
                format!("released migration `{}` was removed", e.key),
                "restore the file; released migrations are never deleted",
            );
        }
    }
    if let Some(e) = sum::broken_chain(&entries) {
        sum_diag(
            e.line,
            format!(
                "strata.sum hash chain breaks at `{}`: the file was edited by hand or its lines re-ordered",
                e.key
            ),
            "regenerate it with `strata sum` after restoring the released migrations",
        );
    }
    Ok(Some(entries.into_iter().map(|e| (e.key, (e.hash, e.line))).collect()))
}

/// The layers as rules see them: what each may depend on, and which tables
/// and views each one defines (each layer replayed alone, so that an object
/// of a layer outside the composition being checked can still be named).
/// Every layer may use core's objects, so core's are not collected (and a
/// long core history need not be parsed for this).
fn layer_infos(ws: &Workspace, parsed: &[Option<ParsedFile>], file_of: &HashMap<(usize, usize), usize>) -> Vec<LayerInfo> {
    use crate::workspace::LayerKind;
    let core: Vec<u16> = ws.layer(LayerKind::Core, "core").map(|i| i as u16).into_iter().collect();
    ws.layers
        .par_iter()
        .enumerate()
        .map(|(li, l)| {
            let depends_on = match l.kind {
                LayerKind::Core => Vec::new(),
                LayerKind::Vertical => core.clone(),
                LayerKind::Bespoke => {
                    let mut deps = core.clone();
                    for t in ws.tenants.iter().filter(|t| t.bespoke.as_deref() == Some(l.name.as_str())) {
                        if let Some(v) = t.vertical.as_deref().and_then(|v| ws.layer(LayerKind::Vertical, v)) {
                            if !deps.contains(&(v as u16)) {
                                deps.push(v as u16);
                            }
                        }
                    }
                    deps
                }
            };
            let mut alone = Catalog::new();
            for mi in 0..l.migrations.len() {
                let fid = file_of[&(li, mi)];
                let Some(file) = parsed[fid].as_ref().filter(|_| l.kind != LayerKind::Core) else {
                    continue;
                };
                for (i, stmt) in file.statements.iter().enumerate() {
                    replay(&mut alone, stmt, fid as u32, li as u16, i);
                }
            }
            LayerInfo {
                id: l.id(),
                kind: l.kind,
                name: l.name.clone(),
                depends_on,
                objects: alone.tables.into_keys().chain(alone.views.into_keys()).collect(),
            }
        })
        .collect()
}

/// Splits files into the migrations of the workspace's layers and the rest
/// (both canonical).
pub fn split_migrations(ws: &Workspace, paths: impl Iterator<Item = PathBuf>) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut canon = Canonical::default();
    let all: HashSet<PathBuf> = ws
        .layers
        .iter()
        .flat_map(|l| l.migrations.iter())
        .map(|m| canon.of(&m.path))
        .collect();
    paths.map(|p| canon.of(&p)).partition(|p| all.contains(p))
}

/// Resolves the paths given to `strata check` inside a workspace into a
/// review set. Folders select the migrations under them; `.sql` files that
/// belong to no layer are an error; other files are ignored.
pub fn review_set(ws: &Workspace, paths: &[PathBuf]) -> Result<ReviewSet> {
    if paths.is_empty() {
        return Ok(None);
    }
    // Each migration's folder resolved once, its name joined: no look at the
    // file itself. Only a file named on the command line that none of these
    // match is looked for again among the migrations' resolved links.
    let mut canon = Canonical::default();
    let all: Vec<(PathBuf, &Path)> = ws
        .layers
        .iter()
        .flat_map(|l| l.migrations.iter())
        .map(|m| (canon.in_folder(&m.path), m.path.as_path()))
        .collect();
    let mut links: Option<Vec<(PathBuf, &Path)>> = None;
    let mut set = HashSet::new();
    for p in paths {
        if !p.exists() {
            return Err(Error::MissingPath { path: p.clone() });
        }
        let c = canonical(p);
        if c.is_dir() {
            set.extend(all.iter().filter(|(r, _)| r.starts_with(&c)).map(|(_, m)| m.to_path_buf()));
            continue;
        }
        // The migration named (a link named by its own path is that
        // migration), and every migration that is the file it points to.
        let named = canon.in_folder(p);
        let matched: Vec<PathBuf> = all
            .iter()
            .filter(|(r, _)| *r == c || *r == named)
            .map(|(_, m)| m.to_path_buf())
            .collect();
        if !matched.is_empty() {
            set.extend(matched);
            continue;
        }
        // Migrations that are symbolic links to `p`.
        let links = links.get_or_insert_with(|| all.iter().map(|(_, m)| (canon.of(m), *m)).collect());
        let linked: Vec<PathBuf> = links.iter().filter(|(r, _)| *r == c).map(|(_, m)| m.to_path_buf()).collect();
        if !linked.is_empty() {
            set.extend(linked);
        } else if c.extension().is_some_and(|e| e == "sql") && !is_down_file(&c) {
            return Err(Error::Usage(format!(
                "{}: not a migration of any layer of the workspace at {} (layers live under {}/core, verticals/<name>, bespoke/<tenant>)",
                p.display(),
                ws.root.display(),
                ws.config.paths.schema.display()
            )));
        }
    }
    Ok(Some(set))
}

fn is_down_file(p: &Path) -> bool {
    let n = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    n.ends_with(".down.sql") || n == "down.sql"
}
