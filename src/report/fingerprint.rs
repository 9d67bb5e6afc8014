//! Fingerprints that follow a finding when lines move, shared by the
//! formats whose consumers compare runs (SARIF code scanning, GitLab Code
//! Quality).
//!
//! A fingerprint is a FNV-1a hash of the rule, the file and the trimmed
//! source line the finding starts on, then `:n` for the n-th finding of the
//! report with the same hash, in the manner of GitHub's own upload action.
//! Inserting lines above a finding leaves it unchanged; editing the line
//! itself gives a new one.

use std::collections::HashMap;

use super::{CheckReport, Diagnostic};

/// One fingerprint per finding of `report`, in order.
pub fn fingerprints(report: &CheckReport) -> Vec<String> {
    let mut occurrences: HashMap<u64, u32> = HashMap::new();
    report
        .diagnostics
        .iter()
        .map(|d| {
            let hash = line_hash(d);
            let n = occurrences.entry(hash).or_insert(0);
            *n += 1;
            format!("{hash:016x}:{n}")
        })
        .collect()
}

fn line_hash(d: &Diagnostic) -> u64 {
    let line = d.file.line(d.region.normalized().start.line).trim();
    fnv1a64(&[d.rule, &d.file.path, line])
}

/// FNV-1a, 64 bits, over `parts` separated by a NUL byte: stable across
/// platforms and releases, which is all a fingerprint needs.
fn fnv1a64(parts: &[&str]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for (i, part) in parts.iter().enumerate() {
        let separator: &[u8] = if i == 0 { b"" } else { b"\0" };
        for &byte in separator.iter().chain(part.as_bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::report::{fixture, Pos, Region, SourceFile};

    #[test]
    fn fnv1a64_known_values() {
        // Reference values of 64-bit FNV-1a.
        assert_eq!(fnv1a64(&[""]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(&["a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(&["foobar"]), 0x8594_4171_f739_67e8);
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(fnv1a64(&["ab", "c"]), fnv1a64(&["a", "bc"]));
    }

    #[test]
    fn same_line_twice_gets_distinct_fingerprints() {
        let mut report = fixture::report();
        let copy = report.diagnostics[0].clone();
        report.diagnostics.push(copy);
        let prints = fingerprints(&report);
        let (first, last) = (&prints[0], prints.last().unwrap());
        assert!(first.ends_with(":1") && last.ends_with(":2"));
        assert_eq!(first[..16], last[..16]);
    }

    #[test]
    fn lines_inserted_above_keep_the_fingerprint() {
        let at = |text: &str, line: u32| {
            let file = Arc::new(SourceFile::new("a.sql".into(), text.into()));
            let mut report = fixture::report();
            report.diagnostics.truncate(1);
            report.diagnostics[0].file = file;
            report.diagnostics[0].region = Region::point(Pos::new(line, 1));
            fingerprints(&report).remove(0)
        };
        let before = at("CREATE INDEX i ON t (a);\n", 1);
        assert_eq!(before, at("-- a new comment\n\nCREATE INDEX i ON t (a);\n", 3));
        assert_ne!(before, at("CREATE INDEX j ON t (a);\n", 1));
    }
}
