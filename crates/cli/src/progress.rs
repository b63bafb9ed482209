//! Progress of the long commands (`export`, `import`, `migrate`) on standard error: a bar (a
//! spinner when the total is unknown) when standard error is a terminal; otherwise — a log
//! file, a CI job, a pipe — a plain line every [`LINE_EVERY`], so a long run shows that it is
//! alive without flooding the log. The final summary is the command's own business.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain progress line is printed when standard error is not a terminal.
pub(crate) const LINE_EVERY: Duration = Duration::from_secs(5);

/// One running count, e.g. "exported 1200 records and documents".
pub(crate) struct Progress {
    mode: Mode,
}

enum Mode {
    Bar(ProgressBar),
    Lines(Lines),
}

impl Progress {
    /// `verb` and `unit` make up the lines: "{verb} {done} of {total} {unit}".
    pub(crate) fn new(verb: &'static str, unit: &'static str, total: Option<u64>) -> Progress {
        let mode = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
            let template = if total.is_some() {
                format!("{{bar:40}} {verb} {{pos}}/{{len}} {unit} ({{eta}} left)")
            } else {
                format!("{{spinner}} {verb} {{pos}} {unit} ({{per_sec}})")
            };
            if let Ok(style) = ProgressStyle::with_template(&template) {
                bar.set_style(style);
            }
            Mode::Bar(bar)
        } else {
            Mode::Lines(Lines::new(verb, unit, total, Instant::now()))
        };
        Progress { mode }
    }

    pub(crate) fn inc(&mut self, n: u64) {
        match &mut self.mode {
            Mode::Bar(bar) => bar.inc(n),
            Mode::Lines(lines) => {
                let done = lines.done + n;
                lines.report(done, Instant::now());
            }
        }
    }

    pub(crate) fn set_position(&mut self, done: u64) {
        match &mut self.mode {
            Mode::Bar(bar) => bar.set_position(done),
            Mode::Lines(lines) => lines.report(done, Instant::now()),
        }
    }

    /// Clears the bar (the command prints its own summary).
    pub(crate) fn finish(&self) {
        if let Mode::Bar(bar) = &self.mode {
            bar.finish_and_clear();
        }
    }
}

/// The plain-line reporter, with the clock passed in so it can be tested.
struct Lines {
    verb: &'static str,
    unit: &'static str,
    total: Option<u64>,
    done: u64,
    started: Instant,
    last: Instant,
}

impl Lines {
    fn new(verb: &'static str, unit: &'static str, total: Option<u64>, now: Instant) -> Lines {
        Lines {
            verb,
            unit,
            total,
            done: 0,
            started: now,
            last: now,
        }
    }

    fn report(&mut self, done: u64, now: Instant) {
        if let Some(line) = self.advance(done, now) {
            eprintln!("{line}");
        }
    }

    /// Records the count; returns the line to print when one is due.
    fn advance(&mut self, done: u64, now: Instant) -> Option<String> {
        self.done = done;
        if now.duration_since(self.last) < LINE_EVERY {
            return None;
        }
        self.last = now;
        let secs = now.duration_since(self.started).as_secs_f64();
        let rate = (done as f64 / secs.max(0.001)).round();
        let (verb, unit) = (self.verb, self.unit);
        Some(match self.total {
            Some(total) if total > 0 => format!(
                "claimdb: {verb} {done} of {total} {unit} ({}%, {rate}/s)",
                done.saturating_mul(100) / total
            ),
            _ => format!("claimdb: {verb} {done} {unit} ({rate}/s)"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_come_every_few_seconds_with_the_count_and_rate() {
        let t0 = Instant::now();
        let mut lines = Lines::new("imported", "documents", Some(1000), t0);
        assert_eq!(lines.advance(100, t0 + Duration::from_secs(1)), None);
        assert_eq!(
            lines.advance(500, t0 + Duration::from_secs(5)).as_deref(),
            Some("claimdb: imported 500 of 1000 documents (50%, 100/s)")
        );
        // The next one only after another interval.
        assert_eq!(lines.advance(600, t0 + Duration::from_secs(9)), None);
        assert!(lines.advance(900, t0 + Duration::from_secs(10)).is_some());
        let mut lines = Lines::new("exported", "documents", None, t0);
        assert_eq!(
            lines.advance(2000, t0 + Duration::from_secs(10)).as_deref(),
            Some("claimdb: exported 2000 documents (200/s)")
        );
    }
}
