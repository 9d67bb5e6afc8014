//! Latency of `strata lsp` after an edit, with lemmy's history (342
//! migrations) as context: the time from sending `didChange` over stdio to
//! receiving the `publishDiagnostics` for that version, against baselines
//! measured in the same run:
//!
//! 1. a full check of the whole history (every file replayed and reported);
//! 2. the same file checked from disk by the library with a warm replay
//!    cache (what `strata check FILE` does, without the process start).
//!
//! The workspace is made by `strata init --from` pointing at the corpus in
//! place (nothing is copied); the document is lemmy's last migration, edited
//! in memory only.
//!
//! Run: `cargo bench --bench lsp` (needs ../shared/corpora/lemmy; set
//! STRATA_CORPORA to point elsewhere, STRATA_BENCH_EDITS for the number of
//! edits, default 40).

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::json;

#[path = "../tests/lsp_client/mod.rs"]
mod lsp_client;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    strata::alloc::tune();
    let lemmy = support::corpora_dir().join("lemmy");
    if !lemmy.is_dir() {
        eprintln!("benchmark needs the lemmy corpus at {} (or STRATA_CORPORA)", lemmy.display());
        std::process::exit(2);
    }
    let edits: usize = std::env::var("STRATA_BENCH_EDITS").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
    let ws = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    let init = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["init", "--quiet"])
        .arg(ws.path())
        .arg("--from")
        .arg(&lemmy)
        .status()
        .expect("run strata init");
    assert!(init.success(), "strata init --from {} failed", lemmy.display());
    // SAFETY: single-threaded here; nothing else reads the environment yet.
    unsafe { std::env::set_var("STRATA_CACHE_DIR", cache.path()) };

    let workspace = strata::workspace::Workspace::load(ws.path()).expect("load the workspace");
    let core = &workspace.layers[0];
    let last = core.migrations.last().expect("lemmy has migrations").path.clone();
    let history = core.migrations.len() - 1;
    let text = std::fs::read_to_string(&last).expect("read the last migration");

    // Baseline 1: the whole history checked.
    let mut full = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        strata::check::check_workspace(&workspace, &None).expect("check");
        full = full.min(t.elapsed());
    }
    // Baseline 2: the last file from disk, warm cache.
    let review = strata::check::review_set(&workspace, std::slice::from_ref(&last)).expect("review");
    strata::check::check_workspace_cached(&workspace, &review, true).expect("check");
    let mut from_disk = Duration::MAX;
    for _ in 0..10 {
        let t = Instant::now();
        strata::check::check_workspace_cached(&workspace, &review, true).expect("check");
        from_disk = from_disk.min(t.elapsed());
    }

    // The language server, over stdio.
    let mut client = lsp_client::Client::start(ws.path(), &[("STRATA_CACHE_DIR", cache.path())]);
    client.request(
        "initialize",
        json!({"processId": null, "rootUri": lsp_client::uri(ws.path()), "capabilities": lsp_client::capabilities(false)}),
    );
    client.notify("initialized", json!({}));
    let uri = lsp_client::uri(&last);
    let t = Instant::now();
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "sql", "version": 1, "text": text}}),
    );
    client.published(&uri, 1);
    let open = t.elapsed();

    let mut latencies = Vec::with_capacity(edits);
    let mut findings = 0;
    for i in 0..edits {
        let version = i as i64 + 2;
        // Typing at the end of the file: a statement grows by one character.
        // Appending at the end of the file (a position past the end is the end).
        let insert = if i % 2 == 0 { "-- x\n" } else { "SELECT 1;\n" };
        let end = json!({"line": 1_000_000, "character": 0});
        let t = Instant::now();
        client.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": [
                {"range": {"start": end, "end": end}, "text": insert}
            ]}),
        );
        findings = client.published(&uri, version).len();
        latencies.push(t.elapsed());
    }
    let (code, _) = client.shutdown();
    assert_eq!(code, 0, "strata lsp did not shut down cleanly");
    latencies.sort();
    let median = percentile(&latencies, 0.5);
    println!(
        "\n== strata lsp, lemmy: {history} history files as context, {edits} edits of the last migration (target < 50 ms)\n   \
         edit → diagnostics: median {:.1} ms, p90 {:.1} ms, max {:.1} ms ({findings} findings)\n   \
         first open (cold cache, whole history replayed): {:.1} ms\n   \
         baselines: full check of the history {:.1} ms (edit/full = {:.3}); same file from disk, warm cache {:.1} ms (edit/disk = {:.2})",
        support::ms(median),
        support::ms(percentile(&latencies, 0.9)),
        support::ms(*latencies.last().expect("edits")),
        support::ms(open),
        support::ms(full),
        median.as_secs_f64() / full.as_secs_f64(),
        support::ms(from_disk),
        median.as_secs_f64() / from_disk.as_secs_f64(),
    );
}
