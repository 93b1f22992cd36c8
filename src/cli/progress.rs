//! The progress display of `flowctl run`: on a terminal (`--progress auto`, also
//! with `-q` under `always`), a bar of bytes read with rate and ETA for bounded file
//! input, else a spinner with the record count and event-time watermark. Pipes and
//! cron get nothing but the final summary; `--progress always` into a pipe or a log
//! file prints a plain progress line every 2 s instead of drawing. The only
//! user of `indicatif`.

use super::output::errln;
use crate::runtime::{Progress, ProgressFn};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often `--progress always` prints a line when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum ProgressMode {
    #[default]
    Auto,
    Always,
    Never,
}

/// The display, if one should be shown; `finish` clears it before the summary.
pub enum Display {
    Bar(ProgressBar),
    /// Not a terminal: a line now and then.
    Lines(Arc<Mutex<Instant>>),
}

impl Display {
    pub fn new(mode: ProgressMode, quiet: bool) -> Option<Display> {
        let show = match mode {
            ProgressMode::Always => true,
            ProgressMode::Never => false,
            ProgressMode::Auto => !quiet && std::io::stderr().is_terminal(),
        };
        if !show {
            return None;
        }
        if !std::io::stderr().is_terminal() {
            return Some(Display::Lines(Arc::new(Mutex::new(Instant::now()))));
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
        bar.set_style(spinner());
        Some(Display::Bar(bar))
    }

    /// The callback the runtime calls.
    pub fn callback(&self) -> ProgressFn {
        match self {
            Display::Bar(bar) => {
                let bar = bar.clone();
                ProgressFn(Arc::new(move |p: &Progress| update(&bar, p)))
            }
            Display::Lines(last) => {
                let last = last.clone();
                ProgressFn(Arc::new(move |p: &Progress| {
                    let Ok(mut last) = last.lock() else { return };
                    if last.elapsed() >= LINE_EVERY {
                        *last = Instant::now();
                        errln!("flowctl: progress: {}", line(p));
                    }
                }))
            }
        }
    }

    pub fn finish(self) {
        if let Display::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// The progress as one plain line: records, bytes of the total, watermark.
fn line(p: &Progress) -> String {
    let bytes = match p.bytes_total {
        Some(total) if total > 0 => {
            format!(", {} of {} bytes ({:.0}%)", p.bytes_done, total, 100.0 * p.bytes_done as f64 / total as f64)
        }
        _ => String::new(),
    };
    format!("{} records{bytes}, watermark {}", p.records_in, watermark_text(p.watermark))
}

fn watermark_text(watermark: i64) -> String {
    if watermark == i64::MIN || watermark == i64::MAX {
        "-".to_string()
    } else {
        let mut s = String::new();
        crate::record::write_timestamp(watermark, &mut s);
        s
    }
}

fn spinner() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg} {elapsed}").unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn update(bar: &ProgressBar, p: &Progress) {
    let watermark = watermark_text(p.watermark);
    match p.bytes_total {
        Some(total) if total > 0 => {
            if bar.length() != Some(total) {
                bar.set_length(total);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{bar:25} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
            }
            bar.set_position(p.bytes_done.min(total));
            bar.set_message(format!("{} records", p.records_in));
        }
        _ => {
            bar.set_message(format!("{} records, watermark {watermark}", p.records_in));
            bar.tick();
        }
    }
}
