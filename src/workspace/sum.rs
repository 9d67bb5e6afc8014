//! `strata.sum`: a hash chain over the released migrations of every layer.
//!
//! ```text
//! # strata.sum v1 — written by `strata sum`; do not edit by hand.
//! core/0001_init.sql sha256:<hash of the file> chain:<hash>
//! ```
//!
//! Each line's chain is SHA-256(previous chain ‖ path ‖ file hash), so
//! editing, removing or re-ordering a released migration changes every line
//! after it, and two branches that both release a migration conflict on the
//! last line: the conflict is obvious in review.
//!
//! A key is the layer id and the file's path in the layer, as it is: spaces,
//! `#` and any Unicode included (the two hashes are the line's last two
//! fields). A key that would not survive a line of text (line breaks,
//! other control characters, a quote or backslash, blanks at its ends) is
//! written as a JSON string.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

use super::Workspace;

pub const HEADER: &str = "# strata.sum v1 — written by `strata sum`; do not edit by hand.";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SumEntry {
    /// `<layer id>/<file name>`, e.g. `verticals/agency/0001_deals.sql`.
    pub key: String,
    pub hash: String,
    pub chain: String,
    /// 1-based line in strata.sum (0 when computed).
    pub line: usize,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn chain(prev: &str, key: &str, hash: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\0");
    h.update(key.as_bytes());
    h.update(b"\0");
    h.update(hash.as_bytes());
    hex::encode(h.finalize())
}

/// The key of a migration in strata.sum.
pub fn key(layer_id: &str, file_name: &str) -> String {
    format!("{layer_id}/{file_name}")
}

/// Hashes every migration of every layer, in layer and apply order.
pub fn compute(ws: &Workspace) -> Result<Vec<SumEntry>> {
    let mut out = Vec::new();
    let mut prev = String::new();
    for layer in &ws.layers {
        for m in &layer.migrations {
            let bytes = std::fs::read(&m.path).map_err(|e| Error::io(&m.path, e))?;
            let key = key(&layer.id(), &m.file_name());
            let hash = sha256_hex(&bytes);
            prev = chain(&prev, &key, &hash);
            out.push(SumEntry {
                key,
                hash,
                chain: prev.clone(),
                line: 0,
            });
        }
    }
    Ok(out)
}

/// Writes strata.sum for the workspace at `root`; returns how many
/// migrations it lists.
pub fn write(root: &Path) -> Result<usize> {
    let ws = Workspace::load(root)?;
    let entries = compute(&ws)?;
    let path = ws.root.join(&ws.config.paths.sum);
    std::fs::write(&path, render(&entries)).map_err(|e| Error::io(&path, e))?;
    Ok(entries.len())
}

pub fn render(entries: &[SumEntry]) -> String {
    let mut s = String::from(HEADER);
    s.push('\n');
    for e in entries {
        s.push_str(&format!("{} sha256:{} chain:{}\n", render_key(&e.key), e.hash, &e.chain[..16]));
    }
    s
}

/// A key as written: as it is, or quoted when a line could not carry it.
fn render_key(key: &str) -> String {
    let plain = !key.is_empty()
        && !key.starts_with(['"', '#'])
        && key.trim() == key
        && !key.chars().any(|c| c.is_control() || c == '\\' || (c == '"'));
    if plain {
        key.to_string()
    } else {
        serde_json::Value::String(key.to_string()).to_string()
    }
}

/// Parses strata.sum. A line that is not `key sha256:<64 hex> chain:<hex>`
/// is an error naming its line (merge-conflict markers included).
pub fn parse(path: &Path, text: &str) -> Result<Vec<SumEntry>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let bad = |msg: &str| Error::Config {
            path: path.to_path_buf(),
            line: i + 1,
            col: 1,
            message: msg.to_string(),
        };
        if l.starts_with("<<<<<<<") || l.starts_with("=======") || l.starts_with(">>>>>>>") {
            return Err(bad(
                "merge conflict in strata.sum: resolve the migrations, then run `strata sum` again",
            ));
        }
        let expected = || bad("expected `<layer>/<file> sha256:<hash> chain:<hash>`");
        // The hashes are the last two fields: the key before them may hold blanks.
        let (rest, ch) = l.rsplit_once(char::is_whitespace).ok_or_else(expected)?;
        let (key, hash) = rest.trim_end().rsplit_once(char::is_whitespace).ok_or_else(expected)?;
        let key = key.trim_end();
        let (Some(hash), Some(ch)) = (hash.strip_prefix("sha256:"), ch.strip_prefix("chain:")) else {
            return Err(expected());
        };
        let key = if key.starts_with('"') {
            match serde_json::from_str::<String>(key) {
                Ok(k) => k,
                Err(e) => return Err(bad(&format!("the quoted file name is not a valid JSON string: {e}"))),
            }
        } else {
            key.to_string()
        };
        if key.is_empty() {
            return Err(expected());
        }
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("the sha256 hash must be 64 hexadecimal digits"));
        }
        out.push(SumEntry {
            key,
            hash: hash.to_string(),
            chain: ch.to_string(),
            line: i + 1,
        });
    }
    Ok(out)
}

/// The first line whose chain does not follow from the lines before it:
/// strata.sum was edited by hand or re-ordered.
pub fn broken_chain(entries: &[SumEntry]) -> Option<&SumEntry> {
    let mut prev = String::new();
    for e in entries {
        prev = chain(&prev, &e.key, &e.hash);
        if !prev.starts_with(&e.chain) || e.chain.is_empty() {
            return Some(e);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<SumEntry> {
        entries_of(&["core/0001_a.sql", "core/0002_b.sql"])
    }

    fn entries_of(keys: &[&str]) -> Vec<SumEntry> {
        let mut prev = String::new();
        keys.iter()
            .map(|k| {
                let hash = sha256_hex(k.as_bytes());
                prev = chain(&prev, k, &hash);
                SumEntry {
                    key: k.to_string(),
                    hash,
                    chain: prev.clone(),
                    line: 0,
                }
            })
            .collect()
    }

    #[test]
    fn round_trip_and_chain() {
        let text = render(&entries());
        let parsed = parse(Path::new("strata.sum"), &text).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[1].line, 3);
        assert!(broken_chain(&parsed).is_none());
        // Swapping two lines breaks the chain at the first moved line.
        let swapped: Vec<SumEntry> = vec![parsed[1].clone(), parsed[0].clone()];
        assert_eq!(broken_chain(&swapped).unwrap().key, "core/0002_b.sql");
    }

    #[test]
    fn any_file_name_round_trips() {
        let keys = [
            "core/2019-11-15-182353_Add email notifications to crate owners/up.sql",
            "core/0002_#hash.sql",
            "core/0003_crème brûlée ☕.sql",
            "core/0004_tab\there.sql",
            "core/0005_new\nline.sql",
            "core/0006_\"quoted\" \\ back.sql",
            "core/ends with space .sql ",
            "core/double  space.sql",
        ];
        let text = render(&entries_of(&keys));
        assert_eq!(text.lines().count(), keys.len() + 1, "{text}");
        let parsed = parse(Path::new("strata.sum"), &text).unwrap();
        let back: Vec<&str> = parsed.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(back, keys);
        assert!(broken_chain(&parsed).is_none());
        assert!(text.contains("\ncore/2019-11-15-182353_Add email notifications to crate owners/up.sql sha256:"));
    }

    #[test]
    fn conflict_markers_are_errors() {
        let err = parse(Path::new("strata.sum"), "<<<<<<< HEAD\n").unwrap_err().to_string();
        assert!(err.contains("strata.sum:1:1: merge conflict"), "{err}");
    }
}
