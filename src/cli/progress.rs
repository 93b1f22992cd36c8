//! The progress display of `flowctl run`: on a terminal (`--progress auto`, also
//! with `-q` under `always`), a bar of bytes read with rate and ETA for bounded file
//! input, else a spinner with the record count and event-time watermark. Pipes and
//! cron get nothing but the final summary. The only user of `indicatif`.

use crate::runtime::{Progress, ProgressFn};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum ProgressMode {
    #[default]
    Auto,
    Always,
    Never,
}

/// The display, if one should be shown; `finish` clears it before the summary.
pub struct Display {
    bar: ProgressBar,
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
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
        bar.set_style(spinner());
        Some(Display { bar })
    }

    /// The callback the runtime calls.
    pub fn callback(&self) -> ProgressFn {
        let bar = self.bar.clone();
        ProgressFn(Arc::new(move |p: &Progress| update(&bar, p)))
    }

    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}

fn spinner() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg} {elapsed}").unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn update(bar: &ProgressBar, p: &Progress) {
    let watermark = if p.watermark == i64::MIN || p.watermark == i64::MAX {
        "-".to_string()
    } else {
        let mut s = String::new();
        crate::record::write_timestamp(p.watermark, &mut s);
        s
    };
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
