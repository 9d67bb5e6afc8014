//! From an open document to strata's diagnostics, through the same engine as
//! `strata check`.
//!
//! A document that is a migration of a workspace is checked with the whole
//! history as context: the history before it comes from the replay cache,
//! so a check after an edit parses and replays that one file. Every open
//! document of the workspace stands in for its file on disk, so unsaved
//! edits of an earlier migration count. A `.sql` file that is no migration
//! of any layer (or that lies outside any workspace) is checked on its own,
//! with the rules that need no workspace; down migrations are not checked,
//! as `strata check` does not check them.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::check;
use crate::diag::Diagnostic;
use crate::workspace::Workspace;

/// A loaded workspace and where its migrations live.
struct Loaded {
    ws: Workspace,
    /// Canonical path → the path as the workspace lists it.
    migrations: HashMap<PathBuf, PathBuf>,
    /// The root, then the schema folder and every layer folder (canonical):
    /// a change below any of them may change the workspace. A core folder
    /// adopted in place (`strata init --from`) may lie outside the root.
    dirs: Vec<PathBuf>,
}

impl Loaded {
    fn load(root: &Path) -> crate::Result<Loaded> {
        let ws = Workspace::load(root)?;
        let migrations = ws
            .layers
            .iter()
            .flat_map(|l| l.migrations.iter())
            .map(|m| (canonical(&m.path), m.path.clone()))
            .collect();
        let mut dirs = vec![
            canonical(root),
            canonical(&root.join(&ws.config.paths.schema)),
            canonical(&root.join(ws.config.paths.core_dir())),
        ];
        dirs.extend(ws.layers.iter().map(|l| canonical(&l.dir)));
        Ok(Loaded { ws, migrations, dirs })
    }
}

fn canonical(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

/// What a document is to strata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// A migration of the workspace at `root`.
    Migration { root: PathBuf },
    /// A down migration: not checked.
    Down,
    /// Checked on its own: outside any workspace, or no migration of it.
    Plain,
}

/// One document to check: its path on disk (`None` for an unsaved buffer
/// with no file) and its text.
pub struct Doc<'a> {
    pub path: Option<&'a Path>,
    pub text: &'a str,
}

/// The result of checking one document.
pub struct Linted {
    pub role: Role,
    /// Findings in the document, positions in `text` as checked.
    pub diagnostics: Vec<Diagnostic>,
    /// Why the workspace could not be used, when the document was checked on
    /// its own instead (a broken strata.toml, an unreadable history file).
    pub degraded: Option<String>,
}

/// The workspaces of the open documents, loaded on first use and dropped
/// when one of their files changes.
#[derive(Default)]
pub struct Workspaces {
    loaded: HashMap<PathBuf, Result<Loaded, String>>,
    /// Workspaces of the editor's folders: their migrations may live outside
    /// them, where looking upwards from a file finds no strata.toml.
    known: Vec<PathBuf>,
}

impl Workspaces {
    fn get(&mut self, root: &Path) -> &Result<Loaded, String> {
        self.loaded
            .entry(root.to_path_buf())
            .or_insert_with(|| Loaded::load(root).map_err(|e| e.to_string()))
    }

    /// Remembers the workspace that `dir` (an editor folder) is in, if any.
    pub fn add_folder(&mut self, dir: &Path) {
        if let Some(root) = Workspace::find(dir).filter(|r| !self.known.contains(r)) {
            self.known.push(root);
        }
    }

    /// Forgets every workspace that `path` may belong to or configure, so the
    /// next check loads it again.
    pub fn invalidate(&mut self, path: &Path) {
        let path = canonical(path);
        // A new strata.toml may also start a workspace inside a loaded one.
        self.loaded.retain(|root, loaded| {
            let dirs = match loaded {
                Ok(l) => l.dirs.as_slice(),
                Err(_) => std::slice::from_ref(root),
            };
            !dirs.iter().any(|d| path.starts_with(d) || d.starts_with(&path))
        });
    }

    pub fn clear(&mut self) {
        self.loaded.clear();
    }

    /// The workspace root of a file, if any.
    pub fn root_of(path: &Path) -> Option<PathBuf> {
        let dir = path.parent()?;
        // A file being created may have no folder on disk yet: look upwards.
        let existing = dir.ancestors().find(|d| d.is_dir())?;
        Workspace::find(existing)
    }

    /// What `path` is; `reload` loads the workspace again when the file is
    /// not one of its migrations (it may have been created since).
    pub fn role(&mut self, path: &Path, reload: bool) -> Role {
        if is_down_file(path) {
            return Role::Down;
        }
        let c = canonical(path);
        let mut roots = self.known.clone();
        roots.extend(Self::root_of(path).filter(|r| !self.known.contains(r)));
        for root in roots {
            let found = |w: &mut Self| matches!(w.get(&root), Ok(l) if l.migrations.contains_key(&c));
            if found(self) {
                return Role::Migration { root };
            }
            // Only a file in one of its folders can be a migration it lacks.
            let inside = matches!(self.loaded.get(&root), Some(Ok(l)) if l.dirs[1..].iter().any(|d| c.starts_with(d)));
            if reload && inside && self.loaded.remove(&root).is_some() && found(self) {
                return Role::Migration { root };
            }
        }
        Role::Plain
    }

    /// Checks `doc`; `open` are every open document (the one checked among
    /// them or not), whose texts replace their files on disk.
    pub fn lint(&mut self, doc: &Doc, open: &[Doc]) -> Linted {
        let role = doc.path.map_or(Role::Plain, |p| self.role(p, false));
        match &role {
            Role::Down => Linted {
                role,
                diagnostics: Vec::new(),
                degraded: None,
            },
            Role::Migration { root } => match self.lint_migration(root, doc, open) {
                Ok(diagnostics) => Linted {
                    role,
                    diagnostics,
                    degraded: None,
                },
                Err(why) => {
                    let mut linted = lint_plain(doc);
                    linted.degraded = Some(why);
                    linted
                }
            },
            Role::Plain => {
                let mut linted = lint_plain(doc);
                if let Some(Err(why)) = doc.path.and_then(Self::root_of).map(|root| self.get(&root)) {
                    linted.degraded = Some(why.clone());
                }
                linted
            }
        }
    }

    fn lint_migration(&mut self, root: &Path, doc: &Doc, open: &[Doc]) -> Result<Vec<Diagnostic>, String> {
        let loaded = match self.get(root) {
            Ok(l) => l,
            Err(why) => return Err(why.clone()),
        };
        let path = doc.path.map(canonical).ok_or("no file")?;
        let listed = loaded.migrations.get(&path).ok_or("not a migration")?;
        let mut overlay = check::Overlay::new();
        for other in open.iter().chain(std::iter::once(doc)) {
            if let Some(listed) = other.path.and_then(|p| loaded.migrations.get(&canonical(p))) {
                overlay.insert(listed.clone(), other.text.to_string());
            }
        }
        let review = Some(HashSet::from([listed.clone()]));
        let report = check::check_workspace_overlay(&loaded.ws, &review, true, &overlay).map_err(|e| e.to_string())?;
        let shown = loaded.ws.display(listed);
        Ok(report.diagnostics.into_iter().filter(|d| d.file.path == shown).collect())
    }
}

fn lint_plain(doc: &Doc) -> Linted {
    let display = doc
        .path
        .map(|p| {
            p.file_name()
                .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "untitled.sql".to_string());
    match check::check_text(display, doc.text.to_string()) {
        Ok(report) => Linted {
            role: Role::Plain,
            diagnostics: report.diagnostics,
            degraded: None,
        },
        Err(e) => Linted {
            role: Role::Plain,
            diagnostics: Vec::new(),
            degraded: Some(e.to_string()),
        },
    }
}

/// Down migrations, which `strata check` does not check either.
fn is_down_file(p: &Path) -> bool {
    let name = p.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    name.ends_with(".down.sql") || name == "down.sql"
}
