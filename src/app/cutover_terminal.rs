//! How a running cutover's events look: indicatif bars on a terminal (rows
//! done of total with rate and ETA, a soak's countdown with the gate's
//! figures), plain lines otherwise (a CI log gets a progress line every few
//! seconds, with the same figures), all on stderr so that `--format json`
//! keeps stdout clean.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cutover::plan::format_duration;
use crate::cutover::progress::Event;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Bars,
    Lines,
    /// `--quiet`: warnings and failures only.
    Quiet,
}

/// How often a line is printed for the same step's progress, without bars.
const LINE_EVERY: Duration = Duration::from_secs(2);
const SOAK_LINE_EVERY: Duration = Duration::from_secs(10);

/// First and last sample of a step's rows, for its rate.
struct Sample {
    started: Instant,
    first_done: u64,
    printed: Option<Instant>,
}

pub struct Renderer {
    mode: Mode,
    multi: MultiProgress,
    bars: Mutex<HashMap<(String, String), ProgressBar>>,
    samples: Mutex<HashMap<(String, String), Sample>>,
}

fn rate_and_eta(sample: &Sample, done: u64, total: Option<u64>) -> String {
    let secs = sample.started.elapsed().as_secs_f64();
    let rate = if secs > 0.5 {
        done.saturating_sub(sample.first_done) as f64 / secs
    } else {
        0.0
    };
    let eta = match total {
        Some(t) if rate > 0.0 && t > done => format!(
            ", ETA {}",
            format_duration(Duration::from_secs(((t - done) as f64 / rate).ceil() as u64))
        ),
        _ => String::new(),
    };
    if rate > 0.0 {
        format!(", {rate:.0} rows/s{eta}")
    } else {
        String::new()
    }
}

/// A duration as a countdown (`4m05s`, `12s`).
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec:02}s"),
        (h, m, sec) => format!("{h}h{m:02}m{sec:02}s"),
    }
}

impl Renderer {
    pub fn new(quiet: bool) -> Renderer {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        };
        let multi = MultiProgress::with_draw_target(match mode {
            Mode::Bars => ProgressDrawTarget::stderr(),
            _ => ProgressDrawTarget::hidden(),
        });
        Renderer {
            mode,
            multi,
            bars: Mutex::new(HashMap::new()),
            samples: Mutex::new(HashMap::new()),
        }
    }

    fn line(&self, text: String) {
        match self.mode {
            Mode::Bars => {
                let _ = self.multi.println(text);
            }
            _ => eprintln!("{text}"),
        }
    }

    fn bar(&self, key: &str, step: &str, style: &str) -> ProgressBar {
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        bars.entry((key.to_string(), step.to_string()))
            .or_insert_with(|| {
                let bar = self.multi.add(ProgressBar::new(0));
                bar.set_style(
                    ProgressStyle::with_template(style)
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                bar.set_prefix(format!("{key}: {step}"));
                bar
            })
            .clone()
    }

    fn end_bar(&self, key: &str, step: &str) {
        let bar = self
            .bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(key.to_string(), step.to_string()));
        if let Some(bar) = bar {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(key.to_string(), step.to_string()));
    }

    /// Whether a progress line for (key, step) is due now, and the step's sample.
    fn due(&self, key: &str, step: &str, done: u64, every: Duration) -> bool {
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let s = samples.entry((key.to_string(), step.to_string())).or_insert_with(|| Sample {
            started: Instant::now(),
            first_done: done,
            printed: None,
        });
        let due = s.printed.is_none_or(|t| t.elapsed() >= every);
        if due {
            s.printed = Some(Instant::now());
        }
        due
    }

    pub fn event(&self, e: Event) {
        match e {
            Event::Started { key, step } => {
                if self.mode != Mode::Quiet {
                    self.line(format!("{key}: {step} …"));
                }
            }
            Event::Finished { key, step, detail } => {
                self.end_bar(&key, &step);
                if self.mode != Mode::Quiet {
                    self.line(format!("{key}: {step} done: {detail}"));
                }
            }
            Event::Failed { key, step, error } => {
                self.end_bar(&key, &step);
                self.line(format!("{key}: {step}: {error}"));
            }
            Event::Info { key, text } => {
                if self.mode != Mode::Quiet {
                    self.line(format!("{key}: {text}"));
                }
            }
            Event::Warning { key, text } => self.line(format!("{key}: warning: {text}")),
            Event::Rows {
                key,
                step,
                table,
                done,
                total,
            } => match self.mode {
                Mode::Bars => {
                    let bar = self.bar(
                        &key,
                        &step,
                        "{prefix} [{bar:30}] {human_pos}/{human_len} rows  {per_sec}  ETA {eta}  {wide_msg}",
                    );
                    bar.set_length(total.unwrap_or(done).max(done));
                    bar.set_position(done);
                    bar.set_message(table);
                }
                Mode::Lines => {
                    if self.due(&key, &step, done, LINE_EVERY) {
                        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
                        let rate = samples
                            .get(&(key.clone(), step.clone()))
                            .map_or_else(String::new, |s| rate_and_eta(s, done, total));
                        drop(samples);
                        let of = match total {
                            Some(t) if t > 0 => format!("{done}/{t} rows ({:.0}%)", 100.0 * done as f64 / t as f64),
                            _ => format!("{done} rows"),
                        };
                        eprintln!("{key}: {step}: {table}: {of}{rate}");
                    }
                }
                Mode::Quiet => {}
            },
            Event::Soak {
                key,
                step,
                left,
                total,
                figures,
            } => match self.mode {
                Mode::Bars => {
                    let bar = self.bar(&key, &step, "{prefix} soak [{bar:30}] {wide_msg}");
                    bar.set_length(total.as_secs().max(1));
                    bar.set_position(total.saturating_sub(left).as_secs());
                    bar.set_message(format!("{} left of {}; {figures}", clock(left), format_duration(total)));
                }
                Mode::Lines => {
                    if self.due(&key, &step, 0, SOAK_LINE_EVERY) {
                        eprintln!(
                            "{key}: {step}: soak {} left of {}{}",
                            clock(left),
                            format_duration(total),
                            if figures.is_empty() {
                                String::new()
                            } else {
                                format!("; {figures}")
                            }
                        );
                    }
                }
                Mode::Quiet => {}
            },
        }
    }

    pub fn finish(&self) {
        let bars: Vec<ProgressBar> = self
            .bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, b)| b)
            .collect();
        for b in bars {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countdown_and_rate() {
        assert_eq!(clock(Duration::from_secs(245)), "4m05s");
        assert_eq!(clock(Duration::from_secs(12)), "12s");
        assert_eq!(clock(Duration::from_secs(3725)), "1h02m05s");
        let s = Sample {
            started: Instant::now() - Duration::from_secs(10),
            first_done: 0,
            printed: None,
        };
        let r = rate_and_eta(&s, 1000, Some(3000));
        assert!(r.starts_with(", 100 rows/s, ETA 2"), "{r}");
    }
}
