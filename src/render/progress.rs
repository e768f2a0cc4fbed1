//! A progress bar on stderr for long reads, shown only on a terminal: the
//! readers report progress through [`crate::ingest::Progress`], this draws it.

use std::io::IsTerminal;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::ingest::Progress;

/// Draws reading progress with indicatif.
struct Bar(ProgressBar);

impl Progress for Bar {
    fn start(&self, total_bytes: Option<u64>) {
        let style = match total_bytes {
            Some(t) => {
                self.0.set_length(t);
                ProgressStyle::with_template(
                    "{spinner} reading {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left) {wide_bar}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
            }
            None => ProgressStyle::with_template("{spinner} reading {bytes} ({bytes_per_sec})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        };
        self.0.set_style(style);
        self.0.enable_steady_tick(std::time::Duration::from_millis(200));
    }

    fn advance_to(&self, bytes: u64) {
        self.0.set_position(bytes);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// A progress bar for reads when `wanted` and stderr is a terminal.
pub(crate) fn bar(wanted: bool) -> Option<Arc<dyn Progress>> {
    if !wanted || !std::io::stderr().is_terminal() {
        return None;
    }
    Some(Arc::new(Bar(ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()))))
}
