//! The workspace: `strata.toml`, the three schema layers, the fleet
//! (`tenants.toml`), rule configuration and `strata.sum`.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use rules_config::RulesConfig;

mod advice;
mod config;
mod detect;
mod discovery;
pub mod layout;
mod pop;
pub mod rules_config;
pub mod scaffold;
pub mod source;
pub mod sum;
mod tenants;

pub use config::{Config, TenancyMode, PG_KNOWN, PG_SUPPORTED};
pub use discovery::{
    detect, detect_layout, discover, discover_all, forward_sections, section_layout, Detection, Discovery, LeftOut, LeftOutReason,
    Migration,
};
pub use layout::{DownFiles, Layout, Naming, Order, TransactionMarker};
pub use tenants::{valid_slug, Tenant};

pub const CONFIG_FILE: &str = "strata.toml";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    Core,
    Vertical,
    Bespoke,
}

impl LayerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LayerKind::Core => "core",
            LayerKind::Vertical => "vertical",
            LayerKind::Bespoke => "bespoke",
        }
    }
}

/// `core`, `verticals/<name>` or `bespoke/<name>`.
pub fn layer_id(kind: LayerKind, name: &str) -> String {
    match kind {
        LayerKind::Core => "core".to_string(),
        LayerKind::Vertical => format!("verticals/{name}"),
        LayerKind::Bespoke => format!("bespoke/{name}"),
    }
}

/// One layer of the schema: its folder and its forward migrations.
#[derive(Clone, Debug, Serialize)]
pub struct Layer {
    pub kind: LayerKind,
    /// `core`, the vertical's name, or the bespoke layer's name.
    pub name: String,
    pub dir: PathBuf,
    pub layout: Layout,
    pub migrations: Vec<Migration>,
}

impl Layer {
    /// `core`, `verticals/<name>` or `bespoke/<name>`: the id used in
    /// strata.sum, the history table and rule overrides.
    pub fn id(&self) -> String {
        layer_id(self.kind, &self.name)
    }
}

/// A sequence of layers applied together: what one tenant database gets.
#[derive(Clone, Debug)]
pub struct Composition {
    pub label: String,
    /// Indexes into [`Workspace::layers`], in apply order.
    pub layers: Vec<usize>,
}

#[derive(Debug)]
pub struct Workspace {
    pub root: PathBuf,
    pub config: Config,
    pub tenants: Vec<Tenant>,
    /// Core first, then verticals, then bespoke layers (each sorted by name).
    pub layers: Vec<Layer>,
    pub rules: RulesConfig,
}

impl Workspace {
    /// Walks up from `start` to the first folder holding `strata.toml`.
    pub fn find(start: &Path) -> Option<PathBuf> {
        let start = start.canonicalize().ok()?;
        start.ancestors().find(|d| d.join(CONFIG_FILE).is_file()).map(Path::to_path_buf)
    }

    /// Loads a workspace rooted at `root` (which holds `strata.toml`).
    pub fn load(root: &Path) -> Result<Workspace> {
        let config_path = root.join(CONFIG_FILE);
        if !config_path.is_file() {
            return Err(Error::MissingPath { path: config_path });
        }
        let config = Config::load(&config_path)?;
        let layout = Layout::from_name(&config.migrations.layout);
        let schema = root.join(&config.paths.schema);
        let mut layers = Vec::new();
        let core = root.join(config.paths.core_dir());
        // An explicitly configured core folder must exist; the default one is optional.
        if config.paths.core.is_some() && !core.is_dir() {
            return Err(Error::MissingPath { path: core });
        }
        if core.is_dir() {
            let (l, migrations) = discover(&core, layout)?;
            layers.push(Layer {
                kind: LayerKind::Core,
                name: "core".into(),
                dir: core,
                layout: l,
                migrations,
            });
        }
        for (kind, sub) in [(LayerKind::Vertical, "verticals"), (LayerKind::Bespoke, "bespoke")] {
            let dir = schema.join(sub);
            if !dir.is_dir() {
                continue;
            }
            let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map_err(|e| Error::io(&dir, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect();
            names.sort();
            for d in names {
                let (l, migrations) = discover(&d, layout)?;
                let name = d.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                layers.push(Layer {
                    kind,
                    name,
                    dir: d,
                    layout: l,
                    migrations,
                });
            }
        }
        let tenants_path = root.join(&config.paths.tenants);
        let tenants = if tenants_path.is_file() {
            let text = crate::error::read_utf8(&tenants_path)?;
            let has_vertical = |n: &str| layers.iter().any(|l| l.kind == LayerKind::Vertical && l.name == n);
            let has_bespoke = |n: &str| layers.iter().any(|l| l.kind == LayerKind::Bespoke && l.name == n);
            tenants::parse(Path::new(&display_path(root, &tenants_path)), &text, &has_vertical, &has_bespoke)?
        } else {
            Vec::new()
        };
        let rules = RulesConfig::load_dir(&root.join(&config.paths.rules), root)?;
        Ok(Workspace {
            root: root.to_path_buf(),
            config,
            tenants,
            layers,
            rules,
        })
    }

    pub fn layer(&self, kind: LayerKind, name: &str) -> Option<usize> {
        self.layers.iter().position(|l| l.kind == kind && l.name == name)
    }

    pub fn tenant(&self, slug: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.slug == slug)
    }

    /// The layers of one tenant: core, its vertical, its bespoke layer.
    pub fn tenant_layers(&self, t: &Tenant) -> Vec<usize> {
        let mut out: Vec<usize> = self.layer(LayerKind::Core, "core").into_iter().collect();
        out.extend(t.vertical.as_deref().and_then(|v| self.layer(LayerKind::Vertical, v)));
        out.extend(t.bespoke.as_deref().and_then(|b| self.layer(LayerKind::Bespoke, b)));
        out
    }

    /// Every distinct composition that covers every layer once: core alone,
    /// core + each vertical, and each bespoke layer on top of the vertical of
    /// the first tenant that uses it.
    pub fn compositions(&self) -> Vec<Composition> {
        let core: Vec<usize> = self.layer(LayerKind::Core, "core").into_iter().collect();
        let mut out = vec![Composition {
            label: "core".into(),
            layers: core.clone(),
        }];
        for (i, l) in self.layers.iter().enumerate() {
            match l.kind {
                LayerKind::Core => {}
                LayerKind::Vertical => out.push(Composition {
                    label: l.id(),
                    layers: core.iter().copied().chain([i]).collect(),
                }),
                LayerKind::Bespoke => {
                    let vertical = self
                        .tenants
                        .iter()
                        .find(|t| t.bespoke.as_deref() == Some(l.name.as_str()))
                        .and_then(|t| t.vertical.as_deref())
                        .and_then(|v| self.layer(LayerKind::Vertical, v));
                    out.push(Composition {
                        label: l.id(),
                        layers: core.iter().copied().chain(vertical).chain([i]).collect(),
                    });
                }
            }
        }
        out
    }

    /// A path as shown to users: relative to the workspace root.
    pub fn display(&self, path: &Path) -> String {
        display_path(&self.root, path)
    }
}

/// `path` relative to `base` when it is inside it, with forward slashes.
pub fn display_path(base: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(base).unwrap_or(path);
    let s = rel.to_string_lossy().replace('\\', "/");
    s.strip_prefix("./").map(str::to_string).unwrap_or(s)
}
