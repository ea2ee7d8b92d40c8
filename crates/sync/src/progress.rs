//! A run's progress, for a person watching a terminal: each side read (with how many objects
//! it holds), planning, and the writes done out of those planned. The engine notes each step
//! with [`note`]; whoever runs it decides whether anything is shown, by running it inside
//! [`showing`] with a sink. Outside one (a test, `serve`, or `scimitar sync` whose
//! stderr is not a terminal) a note does nothing, so scripts and `--json` see exactly what they
//! saw before. [`Line`] renders the steps as one line redrawn in place (`\r`), which is all a
//! terminal needs; no progress-bar crate is worth its weight for that.
//!
//! The sink is task-local, not global: two runs in one process never see each other's steps.
//! The targets of a job are run side by side in the same task, so their writes add up into one
//! count.

use std::future::Future;
use std::sync::Arc;

/// One step of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// Reading a side: `source`, `target`, or `target NAME`.
    Reading(&'a str),
    /// A side read whole, with the objects it holds.
    Read { side: &'a str, objects: usize },
    /// Planning a target's changes.
    Planning(&'a str),
    /// A plan about to be applied holds this many items to write.
    WritesPlanned(usize),
    /// One item written (or failed: done either way).
    Wrote,
}

/// Where the steps go.
pub type Sink = Arc<dyn Fn(Step<'_>) + Send + Sync>;

tokio::task_local! {
    static SINK: Sink;
}

/// Runs `work` with its steps going to `sink`.
pub async fn showing<F: Future>(sink: Sink, work: F) -> F::Output {
    SINK.scope(sink, work).await
}

/// Notes a step: shown when the run is inside [`showing`], and nothing otherwise.
pub fn note(step: Step<'_>) {
    let _ = SINK.try_with(|sink| sink(step));
}

/// The terminal's line: what the run is doing, redrawn in place.
#[derive(Debug, Default)]
pub struct Line {
    planned: usize,
    written: usize,
}

/// Erases the terminal's line and returns to its start.
pub const CLEAR: &str = "\r\x1b[2K";

impl Line {
    /// The text that redraws the line for `step` (starting with [`CLEAR`]); `None` when the
    /// line need not change (between the hundredths of a long run of writes, so that 100,000
    /// writes are not 100,000 redraws).
    pub fn render(&mut self, step: Step<'_>) -> Option<String> {
        let text = match step {
            Step::Reading(side) => format!("sync: reading the {side}..."),
            Step::Read { side, objects } => format!("sync: read the {side}: {objects} objects"),
            Step::Planning(target) => format!("sync: planning the {target}..."),
            Step::WritesPlanned(items) => {
                self.planned += items;
                format!("sync: writing {}/{}", self.written, self.planned)
            }
            Step::Wrote => {
                self.written += 1;
                let step = (self.planned / 100).max(1);
                if !self.written.is_multiple_of(step) && self.written < self.planned {
                    return None;
                }
                format!("sync: writing {}/{}", self.written, self.planned)
            }
        };
        Some(format!("{CLEAR}{text}"))
    }
}

/// A sink that draws the line on stderr, for a terminal.
pub fn to_stderr() -> Sink {
    let line = std::sync::Mutex::new(Line::default());
    Arc::new(move |step: Step<'_>| {
        use std::io::Write;
        // A poisoned lock only means an earlier redraw panicked; the line is still usable.
        let mut line = line
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(text) = line.render(step) {
            let mut stderr = std::io::stderr().lock();
            let _ = stderr.write_all(text.as_bytes());
            let _ = stderr.flush();
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn each_step_redraws_the_line_and_writes_count_up_to_those_planned() {
        let mut line = Line::default();
        let drawn = |text: Option<String>| text.unwrap().strip_prefix(CLEAR).unwrap().to_string();
        assert_eq!(
            drawn(line.render(Step::Reading("source"))),
            "sync: reading the source..."
        );
        assert_eq!(
            drawn(line.render(Step::Read {
                side: "target prod",
                objects: 12
            })),
            "sync: read the target prod: 12 objects"
        );
        assert_eq!(
            drawn(line.render(Step::Planning("target"))),
            "sync: planning the target..."
        );
        assert_eq!(
            drawn(line.render(Step::WritesPlanned(2))),
            "sync: writing 0/2"
        );
        // Two targets' writes add up.
        assert_eq!(
            drawn(line.render(Step::WritesPlanned(1))),
            "sync: writing 0/3"
        );
        assert_eq!(drawn(line.render(Step::Wrote)), "sync: writing 1/3");
        assert_eq!(drawn(line.render(Step::Wrote)), "sync: writing 2/3");
        assert_eq!(drawn(line.render(Step::Wrote)), "sync: writing 3/3");
    }

    #[test]
    fn a_long_run_of_writes_is_redrawn_each_hundredth_and_at_its_end() {
        let mut line = Line::default();
        line.render(Step::WritesPlanned(1_000));
        let redraws = (0..1_000)
            .filter_map(|_| line.render(Step::Wrote))
            .collect::<Vec<_>>();
        assert_eq!(redraws.len(), 100);
        assert!(redraws[0].ends_with("writing 10/1000"), "{}", redraws[0]);
        assert!(redraws[99].ends_with("writing 1000/1000"));
    }

    #[tokio::test]
    async fn steps_reach_the_sink_inside_showing_and_nowhere_outside() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let into = seen.clone();
        let sink: Sink =
            Arc::new(move |step: Step<'_>| into.lock().unwrap().push(format!("{step:?}")));
        note(Step::Reading("source"));
        showing(sink, async {
            note(Step::Planning("target"));
        })
        .await;
        note(Step::Wrote);
        assert_eq!(*seen.lock().unwrap(), ["Planning(\"target\")"]);
    }
}
