//! What the benchmarks share: the shared corpora and timing helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The allocator the binary ships with, so that the benchmarks measure
/// what runs (each bench calls `strata::alloc::tune()` first).
#[global_allocator]
static GLOBAL: strata::alloc::Allocator = strata::alloc::ALLOCATOR;

/// The shared corpora: STRATA_CORPORA, or ../shared/corpora.
pub fn corpora_dir() -> PathBuf {
    std::env::var_os("STRATA_CORPORA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora"))
}

/// Every forward migration file of every corpus, in order (top-level
/// *.sql; lemmy's down files live in down/ and are not included).
pub fn corpus_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut corpora: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|_| panic!("the benchmark needs the shared corpora at {}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    corpora.sort();
    for c in corpora {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&c)
            .expect("corpus")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .collect();
        files.sort();
        out.extend(files);
    }
    out
}

/// The fastest of `runs` runs of `f`, with the last run's result.
pub fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed());
        last = Some(v);
    }
    (best, last.expect("at least one run"))
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
