//! Throughput and latency of `strata check`, reported as ratios against
//! baselines measured in the same run:
//!
//! 1. throughput over every shared corpus, repeated to at least 20 MB, at
//!    four input sizes (linearity), against a tokenizer-only baseline and,
//!    when installed, squawk on the same files;
//! 2. one new file checked with a lemmy-sized history as context;
//! 3. rendering 40,000 findings as text.
//!
//! Run: `cargo bench --bench check` (needs ../shared/corpora; set
//! STRATA_CORPORA to point elsewhere, STRATA_BENCH_MB for the largest size).

#[path = "support/mod.rs"]
mod support;

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::Tokenizer;

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1_000_000.0
}

fn main() {
    strata::alloc::tune();
    let dir = support::corpora_dir();
    if !dir.is_dir() {
        eprintln!("benchmark needs the shared corpora at {} (or STRATA_CORPORA)", dir.display());
        std::process::exit(2);
    }
    let files = support::corpus_files(&dir);
    let texts: Vec<(String, String)> = files
        .iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(p).expect("utf8 corpus"),
            )
        })
        .collect();
    let one_copy: usize = texts.iter().map(|(_, t)| t.len()).sum();
    let target_mb: f64 = std::env::var("STRATA_BENCH_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(20.0);
    let max_copies = ((target_mb * 1_000_000.0) / one_copy as f64).ceil() as usize;
    println!(
        "corpora: {} files, {:.2} MB per copy; largest input {} copies",
        texts.len(),
        mb(one_copy),
        max_copies
    );

    let tmp = tempfile::tempdir().expect("tempdir");
    let mut all_paths = Vec::new();
    for copy in 0..max_copies {
        for (name, text) in &texts {
            let p = tmp.path().join(format!("c{copy:03}_{name}"));
            std::fs::write(&p, text).expect("write");
            all_paths.push(p);
        }
    }
    let per_copy = texts.len();
    let sizes: Vec<usize> = [max_copies / 8, max_copies / 4, max_copies / 2, max_copies]
        .into_iter()
        .map(|c| c.max(1))
        .collect();

    println!("\n== throughput (plain check, all rules, {} threads)", rayon::current_num_threads());
    println!(
        "{:>8} {:>10} {:>10} {:>12} {:>14} {:>12}",
        "MB", "check ms", "MB/s", "stmts/s", "ms per MB", "vs tokenize"
    );
    let mut largest = None;
    for &copies in &sizes {
        let paths = &all_paths[..copies * per_copy];
        let bytes = one_copy * copies;
        let (t_check, report) = support::best_of(3, || strata::check::check_files(paths, tmp.path()).expect("check"));
        // Baseline: sqlparser's tokenizer alone over the same text, one thread.
        let (t_tok, _) = support::best_of(3, || {
            let mut n = 0usize;
            for p in paths {
                let text = std::fs::read_to_string(p).expect("read");
                n += Tokenizer::new(&PostgreSqlDialect {}, &text)
                    .tokenize_with_location()
                    .map(|t| t.len())
                    .unwrap_or(0);
            }
            n
        });
        let secs = t_check.as_secs_f64();
        println!(
            "{:>8.1} {:>10.1} {:>10.1} {:>12.0} {:>14.2} {:>11.2}x",
            mb(bytes),
            secs * 1000.0,
            mb(bytes) / secs,
            report.stats.statements as f64 / secs,
            secs * 1000.0 / mb(bytes),
            secs / t_tok.as_secs_f64()
        );
        largest = Some((paths.to_vec(), bytes, t_check));
    }

    if let Some((paths, bytes, t_strata)) = largest {
        let squawk = std::env::var("SQUAWK").unwrap_or_else(|_| "squawk".into());
        let probe = std::process::Command::new(&squawk).arg("--version").output();
        match probe {
            Ok(out) if out.status.success() => {
                let (t_sq, _) = support::best_of(2, || {
                    std::process::Command::new(&squawk)
                        .args(&paths)
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .status()
                        .expect("run squawk")
                });
                let (t_cli, _) = support::best_of(2, || {
                    std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
                        .arg("check")
                        .arg("--no-workspace")
                        .args(&paths)
                        .stdout(std::process::Stdio::null())
                        .status()
                        .expect("run strata")
                });
                println!(
                    "\n== vs squawk ({}) on {:.1} MB: squawk {:.0} ms ({:.1} MB/s), strata binary {:.0} ms ({:.1} MB/s), library {:.0} ms; squawk/strata = {:.2}x",
                    String::from_utf8_lossy(&out.stdout).trim(),
                    mb(bytes),
                    t_sq.as_secs_f64() * 1000.0,
                    mb(bytes) / t_sq.as_secs_f64(),
                    t_cli.as_secs_f64() * 1000.0,
                    mb(bytes) / t_cli.as_secs_f64(),
                    t_strata.as_secs_f64() * 1000.0,
                    t_sq.as_secs_f64() / t_cli.as_secs_f64()
                );
            }
            _ => println!("\n== squawk not installed (cargo install squawk, or SQUAWK=path): no comparison"),
        }
    }

    // One new file with the lemmy history as context.
    let lemmy = dir.join("lemmy");
    if lemmy.is_dir() {
        let ws = tempfile::tempdir().expect("tempdir");
        let core = ws.path().join("schema/core");
        std::fs::create_dir_all(&core).expect("mkdir");
        let mut history = 0usize;
        for p in support::corpus_files(&dir).into_iter().filter(|p| p.starts_with(&lemmy)) {
            let text = std::fs::read(&p).expect("read");
            history += text.len();
            std::fs::write(core.join(p.file_name().unwrap()), text).expect("write");
        }
        let new = core.join("9999-12-31-000000_new_file.up.sql");
        std::fs::write(
            &new,
            "ALTER TABLE person ADD COLUMN nickname text;\nCREATE INDEX person_nickname ON person (nickname);\n",
        )
        .expect("write");
        std::fs::write(ws.path().join("strata.toml"), "pg_version = 16\n[migrations]\nnaming = \"any\"\n").expect("write");
        let cache = tempfile::tempdir().expect("tempdir");
        // SAFETY: the benchmark is single-threaded here; nothing else reads the environment.
        unsafe { std::env::set_var("STRATA_CACHE_DIR", cache.path()) };
        let one = |use_cache: bool| {
            let w = strata::workspace::Workspace::load(ws.path()).expect("load");
            let review = strata::check::review_set(&w, std::slice::from_ref(&new)).expect("review");
            strata::check::check_workspace_cached(&w, &review, use_cache).expect("check")
        };
        let (t_cold, report) = support::best_of(10, || one(false));
        let (t, _) = support::best_of(10, || one(true));
        let (t_full, _) = support::best_of(3, || {
            let w = strata::workspace::Workspace::load(ws.path()).expect("load");
            strata::check::check_workspace(&w, &None).expect("check")
        });
        println!(
            "\n== one new file, {} history files ({:.2} MB) as context (target < 50 ms):\n   warm history cache {:.1} ms; no cache {:.1} ms; full check of the whole history {:.1} ms; warm/full = {:.3}, cold/full = {:.2}; {} findings",
            report.stats.context_files,
            mb(history),
            t.as_secs_f64() * 1000.0,
            t_cold.as_secs_f64() * 1000.0,
            t_full.as_secs_f64() * 1000.0,
            t.as_secs_f64() / t_full.as_secs_f64(),
            t_cold.as_secs_f64() / t_full.as_secs_f64(),
            report.diagnostics.len()
        );
    }

    // 40,000 findings rendered as text.
    let big = tmp.path().join("big.sql");
    let mut sql = String::new();
    for i in 0..40_000 {
        sql.push_str(&format!("CREATE TABLEX t{i} (id int);\n"));
    }
    std::fs::write(&big, &sql).expect("write");
    let report = strata::check::check_files(std::slice::from_ref(&big), tmp.path()).expect("check");
    let opts = strata::report::RenderOptions::default();
    let (t_render, out) = support::best_of(3, || {
        let mut out = Vec::with_capacity(16 << 20);
        strata::report::text::render(&report, &opts, &mut out).expect("render");
        out
    });
    let (t_json, _) = support::best_of(3, || {
        let mut out = Vec::with_capacity(16 << 20);
        strata::report::json::render(&report, &mut out).expect("render");
        out
    });
    let (t_half, _) = support::best_of(3, || {
        let half = strata::report::CheckReport {
            diagnostics: report.diagnostics[..20_000].to_vec(),
            stats: report.stats.clone(),
            ..Default::default()
        };
        let mut out = Vec::with_capacity(8 << 20);
        strata::report::text::render(&half, &opts, &mut out).expect("render");
    });
    println!(
        "\n== text output of {} findings: {:.1} ms (target < 1000 ms), {:.1} MB of text; 20,000 findings {:.1} ms (ratio 40k/20k = {:.2}, linear = 2.0); json {:.1} ms",
        report.diagnostics.len(),
        t_render.as_secs_f64() * 1000.0,
        mb(out.len()),
        t_half.as_secs_f64() * 1000.0,
        t_render.as_secs_f64() / t_half.as_secs_f64(),
        t_json.as_secs_f64() * 1000.0
    );
}
