//! Live progress of an apply: a spinner line per step in flight on a terminal (indicatif), plain
//! lines otherwise (CI logs, pipes).

use crate::engine::Observer;
use crate::engine::render::op_verb;
use crate::model::Urn;
use crate::state::Op;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

fn doing(op: Op) -> &'static str {
    match op {
        Op::Create => "creating",
        Op::Update => "updating",
        Op::Import => "importing",
        Op::Replace => "creating replacement",
        Op::Delete => "deleting",
        Op::DeleteRetired => "deleting old instance",
    }
}

fn symbol(op: Op) -> &'static str {
    match op {
        Op::Create | Op::Replace => "+",
        Op::Update => "~",
        Op::Import => "=",
        Op::Delete | Op::DeleteRetired => "-",
    }
}

/// Progress on stderr.
pub struct Progress {
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<(Urn, Op), ProgressBar>>,
}

impl Progress {
    /// Spinners on a terminal, plain lines otherwise.
    pub fn new() -> Self {
        let multi =
            std::io::stderr().is_terminal().then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Progress { multi, bars: Mutex::new(HashMap::new()) }
    }

    fn line(&self, text: String) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(text);
            }
            None => {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{text}");
            }
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

impl Observer for Progress {
    fn started(&self, urn: &Urn, op: Op) {
        match &self.multi {
            Some(m) => {
                let bar = m.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("  {spinner} {msg} {elapsed:.dim}").expect("valid template"),
                );
                bar.set_message(format!("{} {}", doing(op), urn.display_short()));
                bar.enable_steady_tick(Duration::from_millis(120));
                self.bars.lock().expect("poisoned").insert((urn.clone(), op), bar);
            }
            None => self.line(format!("  … {} {}", doing(op), urn.display_short())),
        }
    }

    fn finished(&self, urn: &Urn, op: Op, error: Option<&str>, elapsed: Duration) {
        if let Some(bar) = self.bars.lock().expect("poisoned").remove(&(urn.clone(), op)) {
            bar.finish_and_clear();
        }
        let secs = elapsed.as_secs_f64();
        match error {
            None => self.line(format!("  {} {} {} ({secs:.1}s)", symbol(op), op_verb(op), urn.display_short())),
            Some(e) => self.line(format!("  x failed {} {} ({secs:.1}s): {e}", doing(op), urn.display_short())),
        }
    }

    fn interrupted(&self, urn: &Urn, op: Op) {
        self.line(format!("  - not {} {}: interrupted", doing(op), urn.display_short()));
    }

    fn skipped(&self, urn: &Urn, op: Op, blocked_by: &Urn) {
        self.line(format!("  - not {} {}: {} failed", doing(op), urn.display_short(), blocked_by.display_short()));
    }
}
