//! Progress of a fleet run: indicatif bars on a terminal, one plain line per
//! event when stdout is a pipe or a file (CI logs), nothing for JSON output.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{TenantReport, TenantStatus};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Bars,
    Lines,
    Silent,
}

pub struct Reporter {
    mode: Mode,
    multi: MultiProgress,
    overall: Option<ProgressBar>,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Reporter {
    pub fn new(mode: Mode, tenants: usize) -> Reporter {
        let multi = MultiProgress::with_draw_target(match mode {
            Mode::Bars => ProgressDrawTarget::stdout(),
            _ => ProgressDrawTarget::hidden(),
        });
        let overall = (mode == Mode::Bars).then(|| {
            let bar = multi.add(ProgressBar::new(tenants as u64));
            bar.set_style(
                ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} tenants  {elapsed}  {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_prefix("fleet");
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Reporter {
            mode,
            multi,
            overall,
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn line(&self, text: String) {
        match self.mode {
            Mode::Lines => print_line(&text),
            Mode::Bars => {
                let _ = self.multi.println(text);
            }
            Mode::Silent => {}
        }
    }

    fn bar(&self, tenant: &str) -> Option<ProgressBar> {
        self.bars.lock().ok()?.get(tenant).cloned()
    }

    pub fn tenant_started(&self, tenant: &str) {
        match self.mode {
            Mode::Bars => {
                let bar = self.multi.add(ProgressBar::new(1));
                bar.set_style(
                    ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                bar.set_prefix(tenant.to_string());
                bar.set_message("preflight");
                if let Ok(mut bars) = self.bars.lock() {
                    bars.insert(tenant.to_string(), bar);
                }
            }
            Mode::Lines => print_line(&format!("[{tenant}] started")),
            Mode::Silent => {}
        }
    }

    pub fn planned(&self, tenant: &str, pending: usize, skipped: usize) {
        if let Some(bar) = self.bar(tenant) {
            bar.set_length(pending as u64);
            bar.set_message(format!("{skipped} already applied"));
        } else if self.mode == Mode::Lines {
            print_line(&format!("[{tenant}] {pending} pending, {skipped} already applied"));
        }
    }

    pub fn applying(&self, tenant: &str, file: &str) {
        if let Some(bar) = self.bar(tenant) {
            bar.set_message(file.to_string());
        } else if self.mode == Mode::Lines {
            print_line(&format!("[{tenant}] applying {file}"));
        }
    }

    pub fn applied(&self, tenant: &str, file: &str, ms: u64) {
        if let Some(bar) = self.bar(tenant) {
            bar.inc(1);
        } else if self.mode == Mode::Lines {
            print_line(&format!("[{tenant}] applied {file} ({ms} ms)"));
        }
    }

    pub fn retrying(&self, tenant: &str, file: &str, attempt: u32, wait: Duration) {
        self.line(format!(
            "[{tenant}] {file}: lock timeout, retry {attempt} in {} ms",
            wait.as_millis()
        ));
    }

    pub fn tenant_finished(&self, report: &TenantReport) {
        let detail = match report.status {
            TenantStatus::Failed | TenantStatus::PreflightFailed => {
                format!(": {}", report.error.as_deref().unwrap_or("").lines().next().unwrap_or(""))
            }
            _ => format!(" ({} applied, {} skipped)", report.applied.len(), report.skipped),
        };
        self.finished(&report.tenant, report.status.as_str(), &detail);
    }

    /// A tenant is done: its bar goes, the overall bar moves, one line says
    /// how it ended (`detail` starts with its own separator).
    pub fn finished(&self, tenant: &str, status: &str, detail: &str) {
        if let Some(bar) = self.bars.lock().ok().and_then(|mut b| b.remove(tenant)) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        if let Some(o) = &self.overall {
            o.inc(1);
        }
        self.line(format!("[{tenant}] {status}{detail}"));
    }

    /// A step of a tenant's run, shown on its bar or as a line.
    pub fn step(&self, tenant: &str, message: &str) {
        if let Some(bar) = self.bar(tenant) {
            bar.set_message(message.to_string());
        } else if self.mode == Mode::Lines {
            print_line(&format!("[{tenant}] {message}"));
        }
    }

    pub fn finish(&self) {
        if let Some(o) = &self.overall {
            o.finish_and_clear();
        }
        let _ = self.multi.clear();
    }
}

/// A progress line on stdout. Progress is best effort: a closed stdout
/// (`strata migrate | head`) must not stop a migration.
fn print_line(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}
