//! The `strata` binary: parse arguments, run, map the result to an exit code.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc, tuned (see `strata::alloc`).
#[global_allocator]
static GLOBAL: strata::alloc::Allocator = strata::alloc::ALLOCATOR;

fn main() -> ExitCode {
    strata::alloc::tune();
    let cli = strata::cli::Cli::parse();
    match strata::app::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            if strata::app::is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(strata::app::EXIT_ERROR)
        }
    }
}
