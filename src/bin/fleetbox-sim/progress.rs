//! A progress line on stderr: rewritten in place on a terminal, a plain line every few seconds
//! otherwise (so logs and CI output stay readable). No dependency: `\r` is all a bar needs.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Progress {
    stop: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Starts showing `line(elapsed)` until `finish`. Quiet: shows nothing.
    pub fn start<F>(quiet: bool, line: F) -> Progress
    where
        F: Fn(Duration) -> String + Send + Sync + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        if quiet {
            return Progress { stop, task: None };
        }
        let tty = std::io::stderr().is_terminal();
        let every = if tty {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(5)
        };
        let flag = stop.clone();
        let start = Instant::now();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if flag.load(Ordering::Relaxed) {
                    return;
                }
                let text = line(start.elapsed());
                let mut err = std::io::stderr().lock();
                if tty {
                    let _ = write!(err, "\r\x1b[2K{text}");
                } else {
                    let _ = writeln!(err, "{text}");
                }
                let _ = err.flush();
            }
        });
        Progress {
            stop,
            task: Some(task),
        }
    }

    /// Stops the line and, unless quiet, prints `last` as the final state of this phase.
    pub async fn finish(mut self, last: &str) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
            let mut err = std::io::stderr().lock();
            if err.is_terminal() {
                let _ = write!(err, "\r\x1b[2K");
            }
            if !last.is_empty() {
                let _ = writeln!(err, "{last}");
            }
        }
    }
}

/// `[#######.......]` of a share.
pub fn bar(done: usize, total: usize) -> String {
    const WIDTH: usize = 24;
    let filled = (done * WIDTH)
        .checked_div(total)
        .unwrap_or(WIDTH)
        .min(WIDTH);
    format!("[{}{}]", "#".repeat(filled), ".".repeat(WIDTH - filled))
}
