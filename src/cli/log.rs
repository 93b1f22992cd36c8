//! Logging: `tracing` events on stderr, as `flowctl: ...` lines (warnings and errors
//! marked) by default or as JSON objects with `--log-format json` for services.
//! `-q` shows errors only, `-v` adds debug events (checkpoints written, sources
//! opened), `-vv` traces. flowctl's own lines (the run summary, errors, invalid
//! specs) follow the same format through [`line`], so that with JSON every line on
//! stderr is one JSON object.

use std::fmt;
use std::sync::OnceLock;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::registry::LookupSpan;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The plain text form: `flowctl: message`, `flowctl: warning: message`.
struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let level = match *event.metadata().level() {
            Level::ERROR => "error: ",
            Level::WARN => "warning: ",
            Level::DEBUG => "debug: ",
            Level::TRACE => "trace: ",
            Level::INFO => "",
        };
        write!(writer, "flowctl: {level}")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// The format chosen by [`init`] (text until then).
static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Whether lines on stderr are JSON objects.
pub fn json() -> bool {
    FORMAT.get() == Some(&LogFormat::Json)
}

/// Writes one of flowctl's own lines on stderr: `text` (a `flowctl: ...` line) as it
/// is, or with `--log-format json` a JSON object shaped like the log events:
/// `timestamp`, `level`, `fields` (`message`: the text without its `flowctl: ` and
/// level prefixes, and `fields`), `target` (`flowctl`).
pub fn line(level: Level, text: &str, fields: serde_json::Value) {
    use crate::cli::output::errln;
    if !json() {
        errln!("{text}");
        return;
    }
    let message = text.strip_prefix("flowctl: ").unwrap_or(text);
    let message = ["error: ", "warning: "].iter().find_map(|p| message.strip_prefix(p)).unwrap_or(message);
    let mut all = serde_json::Map::new();
    all.insert("message".into(), message.into());
    if let serde_json::Value::Object(extra) = fields {
        all.extend(extra);
    }
    let event = serde_json::json!({
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "level": level.as_str(),
        "fields": all,
        "target": "flowctl",
    });
    errln!("{event}");
}

/// Installs the logger for this process.
pub fn init(format: LogFormat, quiet: bool, verbose: u8) {
    let _ = FORMAT.set(format);
    let level = match (quiet, verbose) {
        (true, _) => Level::ERROR,
        (false, 0) => Level::INFO,
        (false, 1) => Level::DEBUG,
        _ => Level::TRACE,
    };
    // A closed stderr is not worth a panic (internal errors are reported with eprintln!).
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .log_internal_errors(false);
    let _ = match format {
        LogFormat::Text => builder.event_format(Plain).try_init(),
        LogFormat::Json => builder.json().with_current_span(false).try_init(),
    };
}
