//! What a running cutover tells the operator, and how it is told to stop.
//!
//! The executor reports [`Event`]s (steps starting and ending, rows done of
//! a copy or a backfill, a soak's countdown with the gate's figures,
//! warnings); the command layer draws them as bars on a terminal or prints
//! lines. Long steps also write their figures into the control plane
//! ([`StepCtx::save`]), so `cutover status` shows them from anywhere.
//!
//! [`Stop`] carries SIGINT/SIGTERM into the executor: the step in progress
//! is abandoned (its transaction rolls back with its connection), recorded
//! `interrupted`, and the next run resumes it, as after a crash.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::plan::Cutover;
use super::state::{ControlPlane, Progress};
use super::steps::Step;
use super::{Error, Result};

/// Something the operator may want to see while a cutover runs.
#[derive(Clone, Debug)]
pub enum Event {
    /// A step starts (in `key`: a tenant's slug or `move`).
    Started { key: String, step: String },
    /// A step finished, with its detail.
    Finished { key: String, step: String, detail: String },
    /// A step failed or its gate refused.
    Failed { key: String, step: String, error: String },
    /// A line of information (the identity report, what a dry run would execute).
    Info { key: String, text: String },
    /// Something to act on before it becomes a failure.
    Warning { key: String, text: String },
    /// Rows of a long step: `done` of `total` (an estimate) in `table`.
    Rows {
        key: String,
        step: String,
        table: String,
        done: u64,
        total: Option<u64>,
    },
    /// A soak: `left` of `total`, and the gate's figures measured now.
    Soak {
        key: String,
        step: String,
        left: Duration,
        total: Duration,
        figures: String,
    },
}

/// Where events go.
pub type Events<'a> = &'a (dyn Fn(Event) + Sync);

/// The soak of the flips this command runs, when the operator overrides the file.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum SoakChoice {
    /// `[flip] soak` of the cutover file.
    #[default]
    AsPlanned,
    /// `--soak DURATION`.
    For(Duration),
    /// `--skip-soak --reason TEXT`: no wait; the reason is recorded.
    Skip { reason: String },
}

/// A stop request (SIGINT, SIGTERM), shared by every worker of a command.
#[derive(Clone)]
pub struct Stop {
    rx: Option<tokio::sync::watch::Receiver<Option<&'static str>>>,
}

impl Stop {
    /// A stop that never comes (library callers, tests).
    pub fn never() -> Stop {
        Stop { rx: None }
    }

    /// A stop that comes when the sender sends the signal's name.
    pub fn channel() -> (tokio::sync::watch::Sender<Option<&'static str>>, Stop) {
        let (tx, rx) = tokio::sync::watch::channel(None);
        (tx, Stop { rx: Some(rx) })
    }

    /// The signal, once one came.
    pub fn requested(&self) -> Option<&'static str> {
        self.rx.as_ref().and_then(|rx| *rx.borrow())
    }

    /// Resolves with the signal's name when a stop is requested.
    pub async fn wait(&self) -> &'static str {
        let Some(rx) = &self.rx else {
            return std::future::pending().await;
        };
        let mut rx = rx.clone();
        loop {
            if let Some(sig) = *rx.borrow_and_update() {
                return sig;
            }
            if rx.changed().await.is_err() {
                // The sender is gone: no stop will come.
                return std::future::pending().await;
            }
        }
    }
}

/// How one command runs a cutover.
#[derive(Clone)]
pub struct RunOptions {
    /// The last step to run (`None`: to the end).
    pub until: Option<String>,
    /// Tenants at once in this process.
    pub concurrency: usize,
    pub soak: SoakChoice,
    pub stop: Stop,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            until: None,
            concurrency: 1,
            soak: SoakChoice::AsPlanned,
            stop: Stop::never(),
        }
    }
}

/// How often a running step writes its figures to the control plane.
const SAVE_EVERY: Duration = Duration::from_secs(2);

/// One step being executed: where to report, what to record.
pub struct StepCtx<'a> {
    pub cutover: &'a Cutover,
    pub cp: &'a ControlPlane,
    pub run_id: i64,
    /// The run key: a tenant's slug, or `move`.
    pub key: &'a str,
    pub step: &'a Step,
    pub events: Events<'a>,
    pub options: &'a RunOptions,
    saved: Mutex<Option<Instant>>,
}

impl<'a> StepCtx<'a> {
    pub fn new(
        cutover: &'a Cutover,
        cp: &'a ControlPlane,
        run_id: i64,
        key: &'a str,
        step: &'a Step,
        events: Events<'a>,
        options: &'a RunOptions,
    ) -> Self {
        StepCtx {
            cutover,
            cp,
            run_id,
            key,
            step,
            events,
            options,
            saved: Mutex::new(None),
        }
    }

    pub fn cutover_name(&self) -> &'a str {
        &self.cutover.name
    }

    /// The workers of `[flip]`, in order.
    pub fn workers(&self) -> &'a [String] {
        &self.cutover.file.flip.workers
    }

    /// The soak the file plans after each reader flip.
    pub fn soak_planned(&self) -> Duration {
        self.cutover.settings.soak
    }

    pub fn info(&self, text: impl Into<String>) {
        (self.events)(Event::Info {
            key: self.key.to_string(),
            text: text.into(),
        });
    }

    pub fn warn(&self, text: impl Into<String>) {
        (self.events)(Event::Warning {
            key: self.key.to_string(),
            text: text.into(),
        });
    }

    /// The error of a gate that did not pass.
    pub fn gate(&self, message: impl Into<String>) -> Error {
        Error::Gate {
            tenant: self.key.to_string(),
            step: self.step.id.clone(),
            message: message.into(),
        }
    }

    /// Reports rows done of a table and records them (at most every few seconds).
    pub async fn rows(&self, table: &str, done: u64, total: Option<u64>) -> Result<()> {
        (self.events)(Event::Rows {
            key: self.key.to_string(),
            step: self.step.id.clone(),
            table: table.to_string(),
            done,
            total,
        });
        let p = Progress {
            rows_done: Some(done),
            rows_total: total,
            note: Some(table.to_string()),
            ..Progress::default()
        };
        self.save(&p, false).await
    }

    /// Writes the step's figures into the control plane; unless `force`,
    /// only when the last write is a few seconds old.
    pub async fn save(&self, p: &Progress, force: bool) -> Result<()> {
        {
            let mut saved = self.saved.lock().unwrap_or_else(|e| e.into_inner());
            if !force && saved.is_some_and(|t| t.elapsed() < SAVE_EVERY) {
                return Ok(());
            }
            *saved = Some(Instant::now());
        }
        self.cp.step_progress(self.run_id, &self.step.id, p).await
    }
}
