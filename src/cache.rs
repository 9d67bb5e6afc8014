//! A cache of replayed catalogs, so that checking one new migration on top
//! of a long history does not parse the history again.
//!
//! The key is a SHA-256 over the tool version, the cache format and, for
//! every file of the replayed prefix, its id, layer and content hash: any
//! change to any history file (or to strata itself) is a different key.
//! The cache is best-effort: a missing, unreadable or corrupt entry means a
//! full replay, never a wrong result.
//!
//! The content hashes themselves come from [`FileHashes`] when a file's
//! `stat` is the one recorded: a warm check reads no history file.
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
/// The name prefix of the indexes of file stamps ([`FileHashes`]).
const FILES: &str = "files-v1";
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

/// Keeps the newest [`KEEP`] catalogs and the newest [`KEEP`] indexes of
/// file stamps.
fn prune(d: &std::path::Path) {
    for prefix in [FORMAT, FILES] {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        let mut entries: Vec<(std::time::SystemTime, PathBuf)> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        if entries.len() <= KEEP {
            continue;
        }
        entries.sort();
        for (_, p) in &entries[..entries.len() - KEEP] {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The content hashes of a workspace's migrations, by what `stat` says of
/// each file, so that a check whose history is cached need not read and
/// hash every history file again (as git's index does).
///
/// An entry is used only while the file's size, modification and change
/// times (nanoseconds), inode and device are those recorded; a file changed
/// in the two seconds before an entry would be recorded is not recorded
/// (a second change within the same clock tick could not be told apart).
/// A missing or corrupt index means every file is read: never a wrong hash.
pub struct FileHashes {
    path: Option<PathBuf>,
    entries: std::collections::HashMap<String, Stamped>,
    changed: bool,
    /// Files changed this recently are hashed but not recorded.
    racy: std::time::Duration,
}

#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Stamp {
    len: u64,
    mtime: i128,
    ctime: i128,
    ino: u64,
    dev: u64,
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Stamped {
    stamp: Stamp,
    hash: String,
}

/// Files changed this recently are hashed but not recorded (the clock the
/// kernel stamps files with ticks in milliseconds; two seconds leave room
/// for a skewed network file system).
const RACY: std::time::Duration = std::time::Duration::from_secs(2);

impl Stamp {
    #[cfg(unix)]
    fn of(meta: &std::fs::Metadata) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let ns = |s: i64, n: i64| s as i128 * 1_000_000_000 + n as i128;
        Some(Stamp {
            len: meta.len(),
            mtime: ns(meta.mtime(), meta.mtime_nsec()),
            ctime: ns(meta.ctime(), meta.ctime_nsec()),
            ino: meta.ino(),
            dev: meta.dev(),
        })
    }

    #[cfg(not(unix))]
    fn of(_meta: &std::fs::Metadata) -> Option<Stamp> {
        None
    }

    /// Whether the file changed less than `window` ago: too recently for
    /// its stamp to be trusted later.
    fn racy(&self, window: std::time::Duration) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        now - self.mtime.max(self.ctime) < window.as_nanos() as i128
    }
}

impl FileHashes {
    /// The index of the workspace at `root` (empty when caching is off or
    /// nothing was recorded yet).
    pub fn load(root: &std::path::Path) -> FileHashes {
        FileHashes::open(dir().map(|d| {
            // One index per workspace, however its root was named.
            let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
            let id = hex::encode(Sha256::digest(root.as_os_str().as_encoded_bytes()));
            d.join(format!("{FILES}-{}.json", &id[..32]))
        }))
    }

    /// The index kept in the file `path` (None: nothing is kept).
    pub fn open(path: Option<PathBuf>) -> FileHashes {
        let entries = path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        FileHashes {
            path,
            entries,
            changed: false,
            racy: RACY,
        }
    }

    /// The SHA-256 of `file`'s content when its stamp is the recorded one.
    pub fn get(&self, file: &std::path::Path) -> Option<[u8; 32]> {
        let key = file.to_str()?;
        let entry = self.entries.get(key)?;
        let stamp = Stamp::of(&std::fs::metadata(file).ok()?)?;
        if stamp != entry.stamp {
            return None;
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(&entry.hash, &mut out).ok()?;
        Some(out)
    }

    /// Records `hash`, of the text just read from `file` through a handle
    /// whose metadata is `meta`.
    pub fn put(&mut self, file: &std::path::Path, meta: &std::fs::Metadata, hash: &[u8; 32]) {
        let (Some(key), Some(stamp)) = (file.to_str(), Stamp::of(meta)) else {
            return;
        };
        if stamp.racy(self.racy) {
            return;
        }
        let hash = hex::encode(hash);
        if self.entries.get(key).is_some_and(|e| e.stamp == stamp && e.hash == hash) {
            return;
        }
        self.entries.insert(key.to_string(), Stamped { stamp, hash });
        self.changed = true;
    }

    /// Writes the index when it changed (best-effort, write then rename),
    /// keeping the files `current` names (the workspace's migrations: the
    /// entries of removed files go).
    pub fn save(mut self, current: impl Fn(&str) -> bool) {
        let before = self.entries.len();
        self.entries.retain(|k, _| current(k));
        let changed = self.changed || self.entries.len() != before;
        let (true, Some(path)) = (changed, self.path.take()) else { return };
        let Some(d) = path.parent() else { return };
        if std::fs::create_dir_all(d).is_err() {
            return;
        }
        let Ok(bytes) = serde_json::to_vec(&self.entries) else { return };
        let tmp = d.join(format!(".files.{}.tmp", std::process::id()));
        if std::fs::write(&tmp, bytes).is_ok() && std::fs::rename(&tmp, &path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(text: &str) -> [u8; 32] {
        Sha256::digest(text.as_bytes()).into()
    }

    fn set_mtime(p: &std::path::Path, t: std::time::SystemTime) {
        std::fs::File::options().write(true).open(p).unwrap().set_modified(t).unwrap();
    }

    #[test]
    fn file_hashes_are_trusted_only_while_the_stamp_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let index = dir.path().join("files.json");
        let old = dir.path().join("0001_old.sql");
        let fresh = dir.path().join("0002_fresh.sql");
        std::fs::write(&old, "CREATE TABLE a (id int);").unwrap();
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        set_mtime(&old, hour_ago);
        // One file last changed outside the racy window, one inside it.
        let mut h = FileHashes::open(Some(index.clone()));
        h.racy = std::time::Duration::from_millis(300);
        std::thread::sleep(std::time::Duration::from_millis(400));
        std::fs::write(&fresh, "CREATE TABLE b (id int);").unwrap();
        for p in [&old, &fresh] {
            let text = std::fs::read_to_string(p).unwrap();
            h.put(p, &std::fs::metadata(p).unwrap(), &sha(&text));
        }
        h.save(|_| true);
        let h = FileHashes::open(Some(index.clone()));
        assert_eq!(h.get(&old), Some(sha("CREATE TABLE a (id int);")));
        // Changed within the racy window: not recorded, read again.
        assert_eq!(h.get(&fresh), None);
        // An edit of the same size, with the old time put back, still
        // changes the change time: the entry is not used.
        std::fs::write(&old, "CREATE TABLE c (id int);").unwrap();
        set_mtime(&old, hour_ago);
        assert_eq!(h.get(&old), None);
        // Entries of removed files go when the index is written.
        h.save(|k| !k.ends_with("0001_old.sql"));
        let written: std::collections::HashMap<String, serde_json::Value> =
            serde_json::from_slice(&std::fs::read(&index).unwrap()).unwrap();
        assert!(written.is_empty(), "{written:?}");
        // A corrupt index is an empty one.
        std::fs::write(&index, "{not json").unwrap();
        assert_eq!(FileHashes::open(Some(index)).get(&old), None);
    }

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
