//! A cache of replayed catalogs, so that checking one new migration on top
//! of a long history does not parse the history again.
//!
//! The key is a SHA-256 over the tool version, the cache format and, for
//! every file of the replayed prefix, its id, layer and content hash: any
//! change to any history file (or to strata itself) is a different key.
//! The cache is best-effort: a missing, unreadable or corrupt entry means a
//! full replay, never a wrong result.
//!
//! A long-running process (the language server) also keeps the last few
//! entries it loaded or stored in memory, so re-checking after every
//! keystroke neither reads nor decodes the file.
//!
//! Location: `$STRATA_CACHE_DIR`, else `$XDG_CACHE_HOME/strata`, else
//! `~/.cache/strata`. `STRATA_CACHE_DIR=off` (or `strata check --no-cache`)
//! disables it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::catalog::Catalog;

const FORMAT: &str = "catalog-v3";
/// Entries kept; older ones are removed when a new one is written.
const KEEP: usize = 64;

pub fn dir() -> Option<PathBuf> {
    match std::env::var_os("STRATA_CACHE_DIR") {
        Some(v) if v == "off" || v.is_empty() => None,
        Some(v) => Some(PathBuf::from(v)),
        None => std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|d| d.join("strata")),
    }
}

/// Builds a cache key from the parts that determine a replayed catalog.
pub struct Key(Sha256);

impl Key {
    pub fn new(label: &str) -> Key {
        let mut h = Sha256::new();
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        h.update(FORMAT.as_bytes());
        h.update(label.as_bytes());
        Key(h)
    }

    pub fn file(&mut self, id: u32, layer: u16, content_hash: &[u8]) {
        self.0.update(id.to_le_bytes());
        self.0.update(layer.to_le_bytes());
        self.0.update(content_hash);
    }

    fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

fn path(dir: &std::path::Path, key: &str) -> PathBuf {
    dir.join(format!("{FORMAT}-{key}.json"))
}

/// Entries kept in memory, most recently used last.
const KEEP_IN_MEMORY: usize = 8;

static MEMORY: Mutex<Vec<(String, Arc<Catalog>)>> = Mutex::new(Vec::new());

fn remember(key: &str, catalog: Arc<Catalog>) {
    let Ok(mut memory) = MEMORY.lock() else { return };
    memory.retain(|(k, _)| k != key);
    if memory.len() >= KEEP_IN_MEMORY {
        memory.remove(0);
    }
    memory.push((key.to_string(), catalog));
}

fn recall(key: &str) -> Option<Arc<Catalog>> {
    let memory = MEMORY.lock().ok()?;
    memory.iter().find(|(k, _)| k == key).map(|(_, c)| c.clone())
}

pub fn load(key: Key) -> (Option<Catalog>, String) {
    let key = key.finish();
    let Some(d) = dir() else { return (None, key) };
    if let Some(catalog) = recall(&key) {
        return (Some(Catalog::clone(&catalog)), key);
    }
    let found: Option<Catalog> = std::fs::read(path(&d, &key))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    if let Some(catalog) = &found {
        remember(&key, Arc::new(catalog.clone()));
    }
    (found, key)
}

pub fn store(key: &str, catalog: &Catalog) {
    let Some(d) = dir() else { return };
    remember(key, Arc::new(catalog.clone()));
    if std::fs::create_dir_all(&d).is_err() {
        return;
    }
    let Ok(bytes) = serde_json::to_vec(catalog) else { return };
    // Write then rename, so a concurrent reader never sees half a file.
    let tmp = d.join(format!(".{key}.{}.tmp", std::process::id()));
    if std::fs::write(&tmp, bytes).is_ok() && std::fs::rename(&tmp, path(&d, key)).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    prune(&d);
}

fn prune(d: &std::path::Path) {
    let Ok(rd) = std::fs::read_dir(d) else { return };
    let mut entries: Vec<(std::time::SystemTime, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(FORMAT))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if entries.len() <= KEEP {
        return;
    }
    entries.sort();
    for (_, p) in &entries[..entries.len() - KEEP] {
        let _ = std::fs::remove_file(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_round_trips_through_json() {
        let f = crate::sql::parse_text(
            "t.sql",
            "CREATE TABLE t (id int PRIMARY KEY, org uuid NOT NULL);\nALTER TABLE t ENABLE ROW LEVEL SECURITY;\nCREATE POLICY p ON t USING (org = (select current_setting('app.org')::uuid));",
        );
        let mut cat = Catalog::new();
        for (i, s) in f.statements.iter().enumerate() {
            cat.apply(
                s.ast().unwrap(),
                crate::catalog::Origin {
                    file: 0,
                    layer: 0,
                    stmt: i as u32,
                },
            );
        }
        let json = serde_json::to_vec(&cat).unwrap();
        let back: Catalog = serde_json::from_slice(&json).unwrap();
        assert_eq!(serde_json::to_vec(&back).unwrap(), json);
        assert_eq!(back.tables.len(), 1);
    }
}
