//! The command line: the only place that knows clap and terminals. Each subcommand
//! calls the library stages and maps outcomes to the exit codes of the contract.

use crate::diag::Diagnostics;
use crate::error::Error;
use crate::spec::{self, SourceFile};
use crate::validate::{self, Options, ValidPipeline};
use crate::{plan, runtime, sources};

mod checkpoints;
mod log;
mod output;
mod progress;
use clap::{Parser, Subcommand, ValueEnum};
use output::{err, errln, out, outln};
use std::path::{Path, PathBuf};

/// flowctl runs stream and batch pipelines described in YAML files: sources, steps
/// (filter, map, set, drop, flat_map, key_by, window, reduce) and sinks.
///
/// Start with `flowctl validate pipeline.yaml`, then `flowctl run pipeline.yaml`.
#[derive(Debug, Parser)]
#[command(name = "flowctl", version, about, long_about, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

const EXIT_CODES: &str =
    "Exit codes: 0 done, 1 runtime failure (bad data, I/O), 2 invalid pipeline or usage, 3 internal error.";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a pipeline, then run it until its input ends.
    ///
    /// Prints the run summary on stderr at the end; data goes to stdout only through a
    /// `stdout` sink.
    Run {
        /// The pipeline file.
        pipeline: PathBuf,
        /// Print nothing but errors (no run summary).
        #[arg(short, long)]
        quiet: bool,
        /// More detail on stderr: -v debug (checkpoints written), -vv trace.
        #[arg(short, long, action = clap::ArgAction::Count)]
        verbose: u8,
        /// `text` (`flowctl: ...` lines) or `json` (one object per event, for services).
        #[arg(long, value_enum, default_value_t = log::LogFormat::Text)]
        log_format: log::LogFormat,
        /// Serve Prometheus metrics at http://HOST:PORT/metrics during the run.
        #[arg(long, value_name = "HOST:PORT")]
        metrics_addr: Option<String>,
        /// Fail clearly when resident memory goes above SIZE (512MiB, 2GiB; overrides `memory_limit:`).
        #[arg(long, value_name = "SIZE", value_parser = crate::spec::duration::parse_size)]
        memory_limit: Option<u64>,
        /// The run's parallelism: keyed instances, split workers or block threads
        /// (overrides the pipeline's `parallelism:`, not a keyed step's; default: the
        /// number of cores; at most 256; `flowctl plan -p N` shows how it is used).
        #[arg(long, short = 'p', value_name = "N", value_parser = clap::value_parser!(u64).range(1..=spec::fields::MAX_PARALLELISM))]
        parallelism: Option<u64>,
        /// A progress bar on stderr: `auto` (only on a terminal), `always`, `never`.
        #[arg(long, value_enum, default_value_t = progress::ProgressMode::Auto)]
        progress: progress::ProgressMode,
        /// Records per batch (output is the same at any batch size).
        #[arg(long, default_value_t = 1024, hide = true)]
        batch_size: usize,
        /// Batches each channel between threads holds (output is the same at any capacity).
        #[arg(long, default_value_t = runtime::RunOptions::default().channel_capacity, hide = true)]
        channel_capacity: usize,
        /// Ignore existing checkpoints and start over (they are moved aside, not deleted).
        #[arg(long)]
        fresh: bool,
        /// Resume even when edited steps cannot take their saved state (they start empty).
        #[arg(long)]
        allow_state_loss: bool,
        /// Override a spec value, e.g. `--set sources.clicks.path=today.csv` (repeatable;
        /// list items by index: `steps.0.filter=...`).
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<spec::overrides::Override>,
    },
    /// Check pipeline files and report every error at once, with line and column.
    ///
    /// Opens no inputs. Exit 0 when all files are valid, 2 otherwise.
    Validate {
        /// One or more pipeline files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// `text` (rustc-like, with source excerpts) or `json` (one array on stdout).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Print how a pipeline runs: its operators, where each runs (threads), the edges
    /// between them (forward, partition by key), and whether a checkpoint's state can
    /// be restored.
    Plan {
        /// The pipeline file.
        pipeline: PathBuf,
        /// Override a spec value (as for `run`).
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<spec::overrides::Override>,
        /// The run's parallelism to plan for (as `run --parallelism`, at most 256;
        /// default: the pipeline's `parallelism:`, else the number of cores).
        #[arg(long, short = 'p', value_name = "N", value_parser = clap::value_parser!(u64).range(1..=spec::fields::MAX_PARALLELISM))]
        parallelism: Option<u64>,
        /// `text`, `json` (for tools and tests), `dot` (Graphviz) or `mermaid`.
        #[arg(long, value_enum, default_value_t = PlanFormatArg::Text)]
        format: PlanFormatArg,
    },
    /// Run the `tests:` cases of a pipeline file: given input records per source,
    /// expected records per sink or step id. Exit 0 when all pass, 1 otherwise.
    Test {
        /// The pipeline file.
        pipeline: PathBuf,
    },
    /// Print a shell completion script: `flowctl completions bash > /etc/bash_completion.d/flowctl`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the JSON Schema of the pipeline format (for editor completion).
    Schema,
    /// List, inspect and verify the checkpoints in a checkpoint directory.
    Checkpoints {
        #[command(subcommand)]
        action: checkpoints::Action,
    },
    /// Translate a pipeline for another engine (docs/flink.md).
    Export {
        #[command(subcommand)]
        target: ExportTarget,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExportTarget {
    /// A Flink SQL script (tables, views, one statement set) that runs the pipeline on
    /// Flink; what has no faithful Flink SQL equivalent is refused with its line and
    /// column (exit 2).
    FlinkSql {
        /// The pipeline file.
        pipeline: PathBuf,
        /// Write the script to FILE instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Override a spec value (as for `run`).
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<spec::overrides::Override>,
        /// Export what has a near Flink equivalent (allowed lateness, late sinks,
        /// `on_error`, first/last, trim, CSV bool columns) with an `-- APPROXIMATE`
        /// comment at each, instead of refusing it.
        #[arg(long)]
        allow_approximate: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormatArg {
    Text,
    Json,
    Dot,
    Mermaid,
}

impl PlanFormatArg {
    fn format(self) -> plan::PlanFormat {
        match self {
            PlanFormatArg::Text => plan::PlanFormat::Text,
            PlanFormatArg::Json => plan::PlanFormat::Json,
            PlanFormatArg::Dot => plan::PlanFormat::Dot,
            PlanFormatArg::Mermaid => plan::PlanFormat::Mermaid,
        }
    }
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Run {
            pipeline,
            quiet,
            batch_size,
            channel_capacity,
            fresh,
            allow_state_loss,
            set,
            verbose,
            log_format,
            progress,
            metrics_addr,
            memory_limit,
            parallelism,
        } => {
            log::init(log_format, quiet, verbose);
            let resume = runtime::checkpointing::ResumeOptions { fresh, allow_state_loss };
            let display = progress::Display::new(progress, quiet);
            let options = runtime::RunOptions {
                batch_size: batch_size.max(1),
                channel_capacity: channel_capacity.max(1),
                resume,
                progress: display.as_ref().map(progress::Display::callback),
                metrics_addr,
                memory_limit,
                parallelism: parallelism.map(|p| p as usize),
            };
            run_pipeline(&pipeline, quiet, options, &set, display)
        }
        Command::Test { pipeline } => test_pipeline(&pipeline),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "flowctl", &mut script);
            out!("{}", String::from_utf8_lossy(&script));
            0
        }
        Command::Checkpoints { action } => checkpoints::run(action),
        Command::Export { target: ExportTarget::FlinkSql { pipeline, output, set, allow_approximate } } => {
            export_flink_sql(&pipeline, output.as_deref(), &set, allow_approximate)
        }
        Command::Validate { files, format } => validate_files(&files, format),
        Command::Plan { pipeline, set, parallelism, format } => {
            let options = plan::PlanOptions::on_this_machine(parallelism.map(|p| p as usize));
            match load_plan(&pipeline, true, &set, &options) {
                Ok(plan) => {
                    out!("{}", plan::render(&plan, format.format()));
                    if format == PlanFormatArg::Text {
                        if let Some(text) = runtime::checkpointing::describe_restore(&plan.logical) {
                            out!("{text}");
                        }
                    }
                    0
                }
                Err(code) => code,
            }
        }
        Command::Schema => {
            match serde_json::to_string_pretty(&spec::schema::json_schema()) {
                Ok(text) => outln!("{text}"),
                Err(e) => return report(&Error::Internal(e.to_string())),
            }
            0
        }
    }
}

fn report(e: &Error) -> i32 {
    log::line(tracing::Level::ERROR, &format!("flowctl: error: {e}"), serde_json::json!({"exit_code": e.exit_code()}));
    e.exit_code()
}

fn no_peek(_: &sources::SourceConfig) -> Option<Vec<String>> {
    None
}

fn read(path: &Path) -> Result<SourceFile, i32> {
    SourceFile::read(path).map_err(|e| report(&Error::Usage(format!("cannot read {}: {e}", path.display()))))
}

/// Reads and validates a pipeline, printing diagnostics; Err is the exit code.
fn load_valid(path: &Path, peek_inputs: bool, overrides: &[spec::overrides::Override]) -> Result<ValidPipeline, i32> {
    let file = read(path)?;
    let peek: &dyn Fn(&sources::SourceConfig) -> Option<Vec<String>> =
        if peek_inputs { &sources::SourceConfig::peek_fields } else { &no_peek };
    let options = Options { env: &spec::process_env, peek_fields: peek, overrides };
    validate::validate_file(&file, &options).map_err(|diags| print_diagnostics(&file, &diags))
}

/// Reads, validates and plans a pipeline for a run with `options`, printing
/// diagnostics; Err is the exit code.
fn load_plan(
    path: &Path,
    peek_inputs: bool,
    overrides: &[spec::overrides::Override],
    options: &plan::PlanOptions,
) -> Result<plan::PhysicalPlan, i32> {
    let valid = load_valid(path, peek_inputs, overrides)?;
    plan::physical::plan(plan::plan(valid), options).map_err(|diags| print_later_diagnostics(path, &diags))
}

/// Prints the diagnostics of a stage after validation (the file is read again for
/// the excerpts); returns the exit code.
fn print_later_diagnostics(path: &Path, diags: &Diagnostics) -> i32 {
    match read(path) {
        Ok(file) => print_diagnostics(&file, diags),
        Err(code) => code,
    }
}

/// `flowctl export flink-sql`: the script on stdout or in `output`.
fn export_flink_sql(
    path: &Path,
    output: Option<&Path>,
    overrides: &[spec::overrides::Override],
    allow_approximate: bool,
) -> i32 {
    let valid = match load_valid(path, true, overrides) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let script = match crate::export::flink_sql(&valid, allow_approximate) {
        Ok(s) => s,
        Err(diags) => return print_later_diagnostics(path, &diags),
    };
    match output {
        None => {
            out!("{script}");
            0
        }
        Some(file) => match std::fs::write(file, script) {
            Ok(()) => 0,
            Err(e) => report(&Error::External(format!("cannot write {}: {e}", file.display()))),
        },
    }
}

fn print_diagnostics(file: &SourceFile, diags: &Diagnostics) -> i32 {
    let n = diags.len();
    let count = format!("flowctl: {} has {n} error{}", file.display(), if n == 1 { "" } else { "s" });
    if log::json() {
        // One object per diagnostic: its message with `file`, `line`, `column`, `hint`.
        for d in diags.to_json(&file.display()) {
            let message = d["message"].as_str().unwrap_or_default().to_string();
            log::line(tracing::Level::ERROR, &message, d);
        }
        log::line(tracing::Level::ERROR, &count, serde_json::json!({"errors": n, "exit_code": 2}));
        return 2;
    }
    err!("{}", diags.render(&file.display(), &file.text));
    errln!("{count}");
    2
}

fn validate_files(files: &[PathBuf], format: Format) -> i32 {
    let mut code = 0;
    let mut all_json = Vec::new();
    for path in files {
        let file = match SourceFile::read(path) {
            Ok(f) => f,
            Err(e) => {
                let mut d = Diagnostics::default();
                d.error(spec::node::Span::new(1, 1, 1), format!("cannot read the file: {e}"), None);
                code = 2;
                match format {
                    Format::Json => all_json.extend(d.to_json(&path.display().to_string())),
                    Format::Text => errln!("{}: error: cannot read the file: {e}", path.display()),
                }
                continue;
            }
        };
        let options = Options { env: &spec::process_env, peek_fields: &no_peek, overrides: &[] };
        // What `run` would refuse, `validate` refuses too.
        let planned = validate::validate_file(&file, &options).and_then(|valid| {
            plan::physical::plan(plan::plan(valid), &plan::PlanOptions::on_this_machine(None)).map(drop)
        });
        match planned {
            Ok(_) => {
                if format == Format::Text {
                    outln!("{}: ok", file.display());
                }
            }
            Err(diags) => {
                code = 2;
                match format {
                    Format::Json => all_json.extend(diags.to_json(&file.display())),
                    Format::Text => {
                        print_diagnostics(&file, &diags);
                    }
                }
            }
        }
    }
    if format == Format::Json {
        outln!("{}", serde_json::Value::Array(all_json));
    }
    code
}

fn run_pipeline(
    path: &Path,
    quiet: bool,
    options: runtime::RunOptions,
    overrides: &[spec::overrides::Override],
    display: Option<progress::Display>,
) -> i32 {
    let plan = match load_plan(path, true, overrides, &plan::PlanOptions::on_this_machine(options.parallelism)) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    let outcome = runtime::run(&plan, &options);
    if let Some(d) = display {
        d.finish();
    }
    match outcome {
        Ok(summary) => {
            use tracing::Level;
            if !quiet {
                let secs = summary.elapsed.as_secs_f64();
                let fields = serde_json::json!({
                    "records_in": summary.records_in,
                    "records_out": summary.records_out,
                    "late": summary.late,
                    "skipped": summary.skipped,
                    "failed": summary.failed,
                    "elapsed_seconds": secs,
                    "records_per_second": if secs > 0.0 { summary.records_in as f64 / secs } else { 0.0 },
                });
                log::line(Level::INFO, &summary.line(), fields);
                if let Some(line) = summary.windows_line() {
                    let fields = serde_json::json!({
                        "peak_open_windows": summary.peak_open_windows,
                        "late_dropped": summary.late - summary.late_to_sink,
                        "late_to_sink": summary.late_to_sink,
                    });
                    log::line(Level::INFO, &line, fields);
                }
                if let Some((written, epoch, bytes, longest)) = summary.checkpoints {
                    let text = format!(
                        "flowctl: checkpoints: {written} written, last epoch {epoch}, {bytes} bytes, longest pause {} ms",
                        longest.as_millis()
                    );
                    let fields = serde_json::json!({
                        "checkpoints_written": written,
                        "last_epoch": epoch,
                        "checkpoint_bytes": bytes,
                        "longest_pause_ms": longest.as_millis() as u64,
                    });
                    log::line(Level::INFO, &text, fields);
                }
            }
            match summary.interrupted {
                Some(code) => {
                    let signal = if code == 130 { "SIGINT" } else { "SIGTERM" };
                    let fields = serde_json::json!({"signal": signal, "exit_code": code});
                    log::line(Level::INFO, &format!("flowctl: stopped by {signal}"), fields);
                    code
                }
                None => 0,
            }
        }
        Err(e) => report(&e),
    }
}

fn test_pipeline(path: &Path) -> i32 {
    let given = plan::PlanOptions { parallelism: Some(1), cores: 1, io: plan::Io::Given };
    let valid = match load_plan(path, false, &[], &given) {
        Ok(plan) => plan.logical.pipeline,
        Err(code) => return code,
    };
    if valid.spec.tests.is_empty() {
        errln!("flowctl: {} has no `tests:` cases", path.display());
        return 1;
    }
    match crate::testing::run_cases(&valid) {
        Ok(results) => {
            let failed = results.iter().filter(|r| !r.failures.is_empty()).count();
            for r in &results {
                if r.failures.is_empty() {
                    outln!("ok: {}", r.name);
                } else {
                    outln!("FAILED: {}", r.name);
                    for f in &r.failures {
                        outln!("  {f}");
                    }
                }
            }
            outln!("{} passed, {failed} failed", results.len() - failed);
            i32::from(failed > 0)
        }
        Err(e) => report(&e),
    }
}
