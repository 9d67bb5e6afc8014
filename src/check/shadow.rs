//! `strata check --shadow`, judged: what the shadow run
//! ([`crate::pg::shadow`]) observed becomes findings of the rules that own
//! them (`lock-taken`, `table-rewrite`), and the static engine's own rules
//! run on the live catalog; severities and suppressions apply through the
//! same path as the static check's ([`super::suppress`]).
//!
//! # Governance on the live catalog
//! Before and after every statement the set of user objects (relations,
//! columns, constraints, policies, functions, enum types, schemas,
//! extensions; [`crate::pg::live_catalog::object_keys`]) is read; what appeared
//! was created by that statement, even inside a DO block or a function it
//! called. After each file the whole schema is read into a
//! [`crate::catalog::Catalog`] ([`crate::pg::live_catalog::read_catalog`]) whose
//! objects carry the file and statement that created them, and the static
//! engine's own rule implementations run on it:
//! - rules that judge the catalog at the end of a file
//!   ([`LIVE_FILE_RULES`]) run their `check_file_end` on the live catalog,
//!   exactly as the static pass runs them on the replayed one;
//! - rules that read the CREATE statement itself ([`LIVE_STATEMENT_RULES`])
//!   get a synthesized statement: for every table, column, function and
//!   extension a reviewed statement created, strata writes the canonical
//!   DDL for the live object (`CREATE TABLE` with its columns, `ALTER TABLE
//!   ... ADD COLUMN`, `CREATE FUNCTION ... SECURITY DEFINER SET search_path`,
//!   `CREATE EXTENSION ... WITH SCHEMA`), parses it and hands it to the
//!   rule's `check_statement`. Writing a statement is simpler and safer than
//!   a second implementation of each rule: the rule cannot tell a
//!   synthesized statement from a written one. The finding is then moved to
//!   the real statement that created the object: the object's name in it
//!   when that statement is the plain DDL, else the whole statement (a DO
//!   block, a `SELECT make_tables()`).
//!
//! The policy-expression rules policy-always-true, policy-not-tenant-scoped
//! and multiple-permissive-policies are end-of-file rules too: a policy
//! created by dynamic SQL is reported at the statement that made it appear,
//! judged on the expression text the server keeps. policy-initplan (a
//! performance rule about how the expression is written) stays static. Suppressions (`-- strata-ignore`) and per-layer severities apply as
//! in the static check; the caller drops a finding the static pass already
//! made on the same line.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use sqlparser::ast::Statement as Ast;

use crate::catalog::{Catalog, QName};
use crate::diag::{Diagnostic, Region};
use crate::pg::apply::{self, Settings};
use crate::pg::cluster::TempCluster;
use crate::pg::shadow::{run, Observation, Reviewed, ShadowServer};
use crate::pg::{quote_ident, Result, Target};
use crate::rules::helpers::{column_ident, name_region};
use crate::rules::{ident_region, Env, FileCtx, FileInfo, Finding, LayerInfo, Released, Rule, StatementCtx};
use crate::sql::ParsedFile;
use crate::workspace::{LayerKind, Workspace};

/// Rules whose `check_file_end` runs on the live catalog after each file.
pub const LIVE_FILE_RULES: &[&str] = &[
    "rls-missing",
    "rls-not-forced",
    "policy-missing",
    "tenant-key-missing",
    "container-scope",
    "person-ref-not-contact",
    "view-security-invoker",
    "no-primary-key",
    "fk-missing-index",
    "policy-always-true",
    "policy-not-tenant-scoped",
    "multiple-permissive-policies",
];

/// Rules whose `check_statement` runs on DDL synthesized from the live
/// objects a reviewed statement created.
pub const LIVE_STATEMENT_RULES: &[&str] = &[
    "lid-column",
    "bespoke-table",
    "parallel-person-table",
    "person-ref-not-contact",
    "security-definer-search-path",
    "extension-in-public",
];

/// What `--shadow` adds to a check.
pub struct ShadowReport {
    pub diagnostics: Vec<Diagnostic>,
    /// Suppressions (file shown, region of the comment) that silenced a
    /// shadow finding: the static pass reports them as suppressing nothing.
    pub used_suppressions: Vec<(String, Region)>,
    /// Things the user should know about the run (tables left empty).
    pub notes: Vec<String>,
}

/// Runs the shadow check of the reviewed files (canonical paths) of a
/// workspace: `lock-taken` and `table-rewrite` as observed, and the
/// [`LIVE_FILE_RULES`] and [`LIVE_STATEMENT_RULES`] on the live catalog.
pub fn check(ws: &Workspace, review: &HashSet<PathBuf>, server: &ShadowServer) -> Result<ShadowReport> {
    let mut chain = Vec::new();
    let mut reviewed = HashSet::new();
    // Shown path → (layer, migration).
    let mut place = HashMap::new();
    for (i, l) in ws.layers.iter().enumerate() {
        for (mi, m) in l.migrations.iter().enumerate() {
            if review.contains(&m.path) {
                reviewed.insert(ws.display(&m.path));
                if !chain.contains(&i) {
                    chain.push(i);
                }
            }
            place.insert(ws.display(&m.path), (i, mi));
        }
    }
    if reviewed.is_empty() {
        return Ok(ShadowReport {
            diagnostics: Vec::new(),
            used_suppressions: Vec::new(),
            notes: Vec::new(),
        });
    }
    // Core, then every layer a reviewed layer stands on (a bespoke layer's
    // vertical), then the reviewed layers: in apply order.
    let mut layers: Vec<usize> = (0..ws.layers.len()).filter(|&i| ws.layers[i].kind == LayerKind::Core).collect();
    for comp in ws.compositions() {
        if comp.layers.last().is_some_and(|l| chain.contains(l)) {
            layers.extend(comp.layers);
        }
    }
    layers.sort_by_key(|&i| (ws.layers[i].kind, i));
    layers.dedup();
    let loaded = apply::load_layers(ws, &layers)?;
    let first = loaded.iter().position(|m| reviewed.contains(&m.display)).unwrap_or(loaded.len());
    let before = &loaded[..first];
    let mut files: Vec<ParsedFile> = Vec::new();
    let mut places = Vec::new();
    let mut runs = Vec::new();
    for m in loaded[first..].iter().filter(|m| reviewed.contains(&m.display)) {
        let (li, mi) = place[&m.display];
        let parsed = crate::workspace::source::load_migration(&ws.layers[li].migrations[mi], m.display.clone())?;
        // In order, so that statements sharing a line map one to one.
        let mut next = 0;
        let stmt_index = m
            .statements
            .iter()
            .map(|s| {
                let i = (next..parsed.statements.len())
                    .find(|&i| parsed.statements[i].body.is_none() && parsed.statements[i].region.start.line >= s.line)
                    .unwrap_or(parsed.statements.len().saturating_sub(1));
                next = i + 1;
                i
            })
            .collect();
        runs.push(Reviewed {
            loaded: m.clone(),
            layer: li as u16,
            stmt_index,
        });
        files.push(parsed);
        places.push((li, mi));
    }
    // Bad rule options fail before a server is started.
    let rules = crate::rules::configured(&ws.rules)?;
    let settings = Settings::from_config(&ws.config);
    let app_role = Some(ws.config.tenancy.app_role.clone()).filter(|r| !r.is_empty());
    let rt = crate::pg::runtime()?;
    let go = |target: Target| {
        let (runs, settings, app_role) = (&runs, &settings, &app_role);
        async move {
            let client = crate::pg::connect(&target).await?;
            let observer = crate::pg::connect(&target).await?;
            if let Some(role) = app_role {
                apply::ensure_role(&client, &target, role).await?;
            }
            run(&client, &observer, &target, before, runs, settings).await
        }
    };
    let output = match server {
        ShadowServer::Auto => {
            // Dropped (server stopped, folder removed) on every path out.
            let cluster = TempCluster::start()?;
            rt.block_on(go(cluster.target("postgres")))
        }
        ShadowServer::Server(admin) => rt.block_on(crate::pg::scratch::with_scratch_database(admin, "shadow", go)),
    }?;

    let layer_infos: Vec<LayerInfo> = ws
        .layers
        .iter()
        .map(|l| LayerInfo {
            id: l.id(),
            kind: l.kind,
            name: l.name.clone(),
            depends_on: Vec::new(),
            objects: HashSet::new(),
        })
        .collect();
    let env = Env {
        config: Some(&ws.config),
        pg_version: ws.config.pg_version,
        layers: &layer_infos,
        transactional: true,
    };
    let mut found: Vec<(usize, &'static crate::rules::RuleMeta, Finding)> = Vec::new();
    for o in &output.observed {
        let region = files[o.file].statements.get(o.stmt).map(|s| s.region).unwrap_or_default();
        let (meta, finding) = match &o.what {
            Observation::Lock { table, mode } => (
                &crate::rules::lock_taken::META,
                crate::rules::lock_taken::observed(region, table, mode),
            ),
            Observation::Rewrite { table } => (
                &crate::rules::table_rewrite::META,
                crate::rules::table_rewrite::observed(region, table),
            ),
        };
        found.push((o.file, meta, finding.at_statement(o.stmt)));
    }
    for (fi, (parsed, catalog)) in files.iter().zip(&output.catalogs).enumerate() {
        let (li, mi) = places[fi];
        let info = FileInfo {
            parsed,
            id: fi as u32,
            layer: Some(li as u16),
            migration: Some(&ws.layers[li].migrations[mi]),
            layer_migrations: &ws.layers[li].migrations,
            released: Released::Unknown,
            released_head: None,
        };
        for (meta, f) in live_findings(&rules, &env, &info, catalog) {
            found.push((fi, meta, f));
        }
    }
    let mut diagnostics: Vec<Diagnostic> = Vec::new();
    let mut used: Vec<Vec<bool>> = files.iter().map(|p| vec![false; p.suppressions.len()]).collect();
    for (fi, meta, mut f) in found {
        let parsed = &files[fi];
        let duplicate = diagnostics.iter().any(|d| {
            d.rule == meta.id && d.file.path == parsed.source.path && d.region.start.line == f.region.start.line && d.message == f.message
        });
        if duplicate {
            continue;
        }
        // A live finding offers no fix: the statement that made it may be a
        // DO block or a function call.
        f.fix = None;
        let severity = crate::rules::severity_in(&ws.rules, meta, layer_infos.get(places[fi].0));
        diagnostics.extend(super::admit(parsed, meta.id, severity, f, &mut used[fi]));
    }
    let used_suppressions = files
        .iter()
        .zip(&used)
        .flat_map(|(p, u)| {
            p.suppressions
                .iter()
                .zip(u)
                .filter(|(_, &was)| was)
                .map(|(s, _)| (p.source.path.clone(), s.region))
        })
        .collect();
    let notes = output
        .unseeded
        .into_iter()
        .map(|(table, why)| format!("could not seed `{table}` ({why}): its locks and rewrites are observed on an empty table"))
        .collect();
    Ok(ShadowReport {
        diagnostics,
        used_suppressions,
        notes,
    })
}

/// The governance findings of one reviewed file on the live catalog after
/// it (see the module doc).
fn live_findings(
    rules: &[Box<dyn Rule>],
    env: &Env,
    info: &FileInfo,
    catalog: &Catalog,
) -> Vec<(&'static crate::rules::RuleMeta, Finding)> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let cx = FileCtx { env, file: info, catalog };
    for r in rules.iter().filter(|r| LIVE_FILE_RULES.contains(&r.meta().id)) {
        r.check_file_end(&cx, &mut buf);
        out.extend(buf.drain(..).map(|f| (r.meta(), f)));
    }
    for synth in synthesize(catalog, info.id) {
        let Some(stmt) = synth.parsed.statements.first() else { continue };
        let cx = StatementCtx {
            env,
            file: info,
            index: synth.stmt,
            stmt,
            catalog,
            locks: &[],
        };
        for r in rules.iter().filter(|r| LIVE_STATEMENT_RULES.contains(&r.meta().id)) {
            r.check_statement(&cx, &mut buf);
            for mut f in buf.drain(..) {
                let line = f.region.start.line.max(1) as usize;
                let subject = &synth.subjects[(line - 1).min(synth.subjects.len() - 1)];
                f.region = site(info.parsed, synth.stmt, subject);
                f.statement = Some(synth.stmt);
                f.fix = None;
                out.push((r.meta(), f));
            }
        }
    }
    out
}

/// What a line of a synthesized statement defines.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Subject {
    Table,
    Column(String),
    Function,
    Extension,
}

/// A statement written from live objects, standing for statement `stmt` of
/// the reviewed file. `subjects[i]` is what line `i + 1` of it defines.
struct Synth {
    stmt: usize,
    parsed: ParsedFile,
    subjects: Vec<Subject>,
}

fn qualified(q: &QName) -> String {
    format!("{}.{}", quote_ident(&q.schema), quote_ident(&q.name))
}

/// Parses one synthesized statement; when sqlparser cannot read a column
/// type the server printed, `plain` (the same statement with `text` types)
/// is used instead.
fn synth(stmt: usize, text: String, plain: impl FnOnce() -> String, subjects: Vec<Subject>) -> Synth {
    let parsed = crate::sql::parse_text("<shadow>", &text);
    let parsed = if parsed.statements.iter().all(|s| s.ast().is_some()) {
        parsed
    } else {
        crate::sql::parse_text("<shadow>", &plain())
    };
    Synth { stmt, parsed, subjects }
}

/// DDL for the tables, columns, functions and extensions file `file`
/// created, one statement per object (see the module doc).
fn synthesize(catalog: &Catalog, file: u32) -> Vec<Synth> {
    let mut out = Vec::new();
    let mut tables: Vec<_> = catalog.tables.values().collect();
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    for t in tables.iter().filter(|t| !t.temporary) {
        if t.origin.file == file {
            let write = |plain: bool| {
                let mut s = format!("CREATE TABLE {} (\n", qualified(&t.name));
                let cols: Vec<String> = t
                    .columns
                    .iter()
                    .map(|c| {
                        let ty = if plain { "text" } else { c.data_type.as_str() };
                        format!("    {} {ty}{}", quote_ident(&c.name), if c.not_null { " NOT NULL" } else { "" })
                    })
                    .collect();
                s.push_str(&cols.join(",\n"));
                s.push_str("\n);\n");
                s
            };
            let mut subjects = vec![Subject::Table];
            subjects.extend(t.columns.iter().map(|c| Subject::Column(c.name.clone())));
            subjects.push(Subject::Table);
            out.push(synth(t.origin.stmt as usize, write(false), || write(true), subjects));
        }
        for c in t.columns.iter().filter(|c| c.origin.file == file && c.origin != t.origin) {
            let write = |ty: &str| format!("ALTER TABLE {} ADD COLUMN {} {ty};\n", qualified(&t.name), quote_ident(&c.name));
            out.push(synth(
                c.origin.stmt as usize,
                write(&c.data_type),
                || write("text"),
                vec![Subject::Column(c.name.clone())],
            ));
        }
    }
    let mut functions: Vec<_> = catalog.functions.values().filter(|f| f.origin.file == file).collect();
    functions.sort_by(|a, b| a.name.cmp(&b.name));
    for f in functions {
        let text = format!(
            "CREATE FUNCTION {}() RETURNS void LANGUAGE sql{}{} AS 'SELECT 1';\n",
            qualified(&f.name),
            if f.security_definer { " SECURITY DEFINER" } else { "" },
            if f.sets_search_path { " SET search_path = pg_catalog" } else { "" }
        );
        let again = text.clone();
        out.push(synth(f.origin.stmt as usize, text, || again, vec![Subject::Function]));
    }
    let mut extensions: Vec<_> = catalog.extensions.values().filter(|e| e.origin.file == file).collect();
    extensions.sort_by(|a, b| a.name.cmp(&b.name));
    for e in extensions {
        let schema = e.schema.as_deref().unwrap_or("public");
        let text = format!("CREATE EXTENSION {} WITH SCHEMA {};\n", quote_ident(&e.name), quote_ident(schema));
        let again = text.clone();
        out.push(synth(e.origin.stmt as usize, text, || again, vec![Subject::Extension]));
    }
    out
}

/// Where a finding about `subject` goes in the reviewed file: its name in
/// statement `stmt` when that statement is the plain DDL defining it, else
/// the whole statement.
fn site(parsed: &ParsedFile, stmt: usize, subject: &Subject) -> Region {
    let Some(s) = parsed.statements.get(stmt) else {
        return Region::default();
    };
    let precise = match (s.ast(), subject) {
        (Some(a), Subject::Column(c)) => column_ident(a, c).and_then(ident_region),
        (Some(Ast::CreateTable(ct)), Subject::Table) => name_region(&ct.name),
        (Some(Ast::CreateFunction(cf)), Subject::Function) => name_region(&cf.name),
        (Some(Ast::CreateExtension(ce)), Subject::Extension) => ident_region(&ce.name),
        _ => None,
    };
    precise.unwrap_or(s.region)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Origin;

    fn origin(file: u32, stmt: u32) -> Origin {
        Origin { file, layer: 0, stmt }
    }

    fn column(name: &str, data_type: &str, stmt: u32) -> crate::catalog::Column {
        crate::catalog::Column {
            name: name.into(),
            data_type: data_type.into(),
            not_null: false,
            default: None,
            identity: false,
            generated: None,
            origin: origin(0, stmt),
        }
    }

    fn catalog() -> Catalog {
        let mut cat = Catalog::new();
        let table = |name: &str, file: u32, columns| crate::catalog::Table {
            name: QName::new("public", name),
            columns,
            constraints: Vec::new(),
            rls_enabled: false,
            partitioned: false,
            rls_forced: false,
            policies: Vec::new(),
            comment: None,
            temporary: false,
            triggers: Vec::new(),
            grants: Vec::new(),
            origin: origin(file, 1),
        };
        // Made by statement 1 of file 0; its last column by statement 3.
        let notes = table(
            "notes",
            0,
            vec![
                column("id", "uuid", 1),
                column("odd", "no such ((type", 1),
                column("wa_lid", "text", 3),
            ],
        );
        // Made by another file.
        let mut id = column("id", "uuid", 1);
        id.origin = origin(7, 1);
        let other = table("other", 7, vec![id]);
        for t in [notes, other] {
            cat.tables.insert(t.name.clone(), t);
        }
        let f = crate::catalog::Function {
            name: QName::new("public", "whoami"),
            volatile: true,
            security_definer: true,
            sets_search_path: false,
            origin: origin(0, 2),
        };
        cat.functions.insert(f.name.clone(), f);
        cat
    }

    #[test]
    fn synthesized_ddl_parses_and_says_what_each_line_defines() {
        let synths = synthesize(&catalog(), 0);
        let shown: Vec<(usize, String)> = synths
            .iter()
            .map(|s| (s.stmt, s.parsed.source.text.lines().next().unwrap_or_default().to_string()))
            .collect();
        assert_eq!(
            shown,
            vec![
                (1, "CREATE TABLE \"public\".\"notes\" (".to_string()),
                (3, "ALTER TABLE \"public\".\"notes\" ADD COLUMN \"wa_lid\" text;".to_string()),
                (
                    2,
                    "CREATE FUNCTION \"public\".\"whoami\"() RETURNS void LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';".to_string()
                ),
            ],
        );
        // Every statement parses: the unreadable type fell back to text.
        for s in &synths {
            assert!(
                s.parsed.statement_count() == 1 && s.parsed.statements[0].ast().is_some(),
                "{}",
                s.parsed.source.text
            );
        }
        assert!(
            synths[0].parsed.source.text.contains("\"odd\" text"),
            "{}",
            synths[0].parsed.source.text
        );
        assert_eq!(
            synths[0].subjects,
            vec![
                Subject::Table,
                Subject::Column("id".into()),
                Subject::Column("odd".into()),
                Subject::Column("wa_lid".into()),
                Subject::Table
            ]
        );
        assert!(matches!(
            synths[2].parsed.statements[0].ast(),
            Some(Ast::CreateFunction(cf)) if matches!(cf.security, Some(sqlparser::ast::FunctionSecurity::Definer))
        ));
    }

    #[test]
    fn findings_move_to_the_name_in_plain_ddl_else_to_the_statement() {
        let file = crate::sql::parse_text(
            "t.sql",
            "DO $$ BEGIN EXECUTE 'CREATE TABLE notes (id uuid)'; END $$;\nCREATE TABLE\n  tags (\n    id uuid,\n    wa_lid text\n);\n",
        );
        let whole = site(&file, 0, &Subject::Table);
        assert_eq!((whole.start.line, whole.start.col), (1, 1));
        // Statement 1 is the CREATE TABLE inside the DO block's EXECUTE.
        let tags = file.top_level().nth(1).map(|(i, _)| i).unwrap();
        let name = site(&file, tags, &Subject::Table);
        assert_eq!((name.start.line, name.start.col), (3, 3));
        let col = site(&file, tags, &Subject::Column("wa_lid".into()));
        assert_eq!((col.start.line, col.start.col), (5, 5));
        // A column the statement does not name: the whole statement.
        let other = site(&file, tags, &Subject::Column("nope".into()));
        assert_eq!((other.start.line, other.start.col), (2, 1));
    }
}
