//! The `file` sink: writes under a temporary name in the target directory and renames
//! to the final name on commit, so a failed or killed run never leaves a half-written
//! file where the user expects a result.
//!
//! With checkpoints the sink is exactly-once: the in-progress file has a fixed name
//! (`.<name>.inprogress`), each checkpoint records its length after a flush and
//! fsync, and a resumed run truncates it back to that length, dropping whatever was
//! written after the checkpoint. A run that resumes after a completed one starts from
//! a copy of the final file, so readers always see a complete file.

use super::encode::Encoder;
use super::{Sink, SinkError};
use crate::error::Error;
use crate::format::DataFormat;
use crate::record::Record;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom};

use std::path::{Path, PathBuf};

/// What a checkpoint records of a file sink.
#[derive(serde::Serialize, serde::Deserialize)]
struct Committed {
    length: u64,
}

pub struct FileSink {
    id: String,
    path: PathBuf,
    temp: PathBuf,
    /// Checkpointed: keep the in-progress file when the run stops early.
    durable: bool,
    encoder: Option<Encoder<BufWriter<File>>>,
}

/// A `file` sink's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct FileConfig {
    /// Resolved against the pipeline file's directory.
    pub path: PathBuf,
    pub format: DataFormat,
    /// CSV: write a header line; and its delimiter.
    pub header: bool,
    pub delimiter: u8,
}

impl FileConfig {
    /// Opens the sink; `resume` is its state in the checkpoint being resumed.
    pub fn build(&self, id: &str, checkpointed: bool, resume: Option<&serde_json::Value>) -> Result<FileSink, Error> {
        let start = match (checkpointed, resume) {
            (false, _) => Start::Plain,
            (true, Some(state)) if !state.is_null() => Start::Resume(state),
            (true, _) => Start::Fresh,
        };
        FileSink::create(id, self.path.clone(), self.format, self.header, self.delimiter, start)
    }
}

/// How the sink starts.
pub enum Start<'a> {
    /// A run without checkpoints: a new temporary file named after this process.
    Plain,
    /// A checkpointed run from scratch.
    Fresh,
    /// A checkpointed run resuming from this sink's checkpoint state.
    Resume(&'a serde_json::Value),
}

impl FileSink {
    pub fn create(
        id: &str,
        path: PathBuf,
        format: DataFormat,
        header: bool,
        delimiter: u8,
        start: Start,
    ) -> Result<FileSink, Error> {
        let dir = path
            .parent()
            .map(PathBuf::from)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        let fail = |what: String, e: std::io::Error| Error::io(format!("sink `{id}`: cannot {what}"), e);
        // The output is renamed into place: over a device or a pipe (`/dev/null`, a
        // FIFO) that would replace it with a regular file.
        if let Ok(meta) = std::fs::metadata(&path) {
            if !meta.is_file() {
                return Err(Error::Usage(format!(
                    "sink `{id}`: {} is not a regular file (a file sink writes a new file and renames it into place)\n  = help: use a `blackhole` sink to discard records, or `stdout` to write into a pipe",
                    path.display()
                )));
            }
        }
        std::fs::create_dir_all(&dir).map_err(|e| fail(format!("create directory {}", dir.display()), e))?;
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "out".into());
        remove_stale_temporaries(id, &dir, &name);
        let (temp, length) = match start {
            Start::Plain => (dir.join(format!(".{name}.{}.inprogress", std::process::id())), 0),
            Start::Fresh => (dir.join(format!(".{name}.inprogress")), 0),
            Start::Resume(state) => {
                let committed: Committed = serde_json::from_value(state.clone())
                    .map_err(|e| Error::Internal(format!("sink `{id}`: unreadable checkpoint state: {e}")))?;
                (dir.join(format!(".{name}.inprogress")), committed.length)
            }
        };
        let file = if length == 0 {
            File::create(&temp).map_err(|e| fail(format!("create {}", temp.display()), e))?
        } else {
            resume_file(id, &temp, &path, length)?
        };
        let out = BufWriter::with_capacity(256 * 1024, file);
        // A resumed file already has its header.
        let header = header && length == 0;
        let encoder = match format {
            DataFormat::Csv => Encoder::csv(out, header, delimiter),
            _ => Encoder::jsonl(out),
        };
        let durable = !matches!(start, Start::Plain);
        Ok(FileSink { id: id.to_string(), path, temp, durable, encoder: Some(encoder) })
    }

    fn failed(&self, what: &str, e: std::io::Error) -> SinkError {
        SinkError::Failed(Error::io(format!("sink `{}`: cannot {what} {}", self.id, self.path.display()), e))
    }

    /// Flushes everything to the file and fsyncs it; returns its length.
    fn sync(&mut self) -> Result<u64, SinkError> {
        let Some(encoder) = &mut self.encoder else { return Ok(0) };
        encoder.flush().map_err(|e| SinkError::Failed(Error::io(format!("sink `{}`: cannot write", self.id), e)))?;
        let file = encoder.inner().get_ref();
        file.sync_data().map_err(|e| SinkError::Failed(Error::io(format!("sink `{}`: cannot sync", self.id), e)))?;
        // Only ever appended to (after truncation on resume): the length is the position.
        let meta =
            file.metadata().map_err(|e| SinkError::Failed(Error::io(format!("sink `{}`: cannot stat", self.id), e)))?;
        Ok(meta.len())
    }
}

/// Removes what runs without checkpoints that were killed (`kill -9`, a power cut)
/// left next to the target: `.<name>.<pid>.inprogress` files whose process is no
/// longer alive. Only names of exactly that form are touched, and only where it can
/// be told that the process is gone (Linux `/proc`; a zombie counts as gone); a live
/// process's file and the checkpointed `.<name>.inprogress` stay.
fn remove_stale_temporaries(id: &str, dir: &Path, name: &str) {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|rest| rest.strip_suffix(".inprogress"))
            .filter(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let alive = pid.parse().map_or(true, crate::checkpoint::store::process_alive);
        if pid == std::process::id().to_string() || alive {
            continue;
        }
        let stale = entry.path();
        match std::fs::remove_file(&stale) {
            Ok(()) => tracing::info!(
                "sink `{id}`: removed {}, left by process {pid}, which is no longer running",
                stale.display()
            ),
            Err(e) => tracing::warn!("sink `{id}`: cannot remove {} (left by process {pid}): {e}", stale.display()),
        }
    }
}

/// Reopens the in-progress file at the committed length: the same file after a
/// crash, or a copy of the final file after a completed run.
fn resume_file(id: &str, temp: &Path, path: &Path, length: u64) -> Result<File, Error> {
    let fail = |what: String, e: std::io::Error| Error::io(format!("sink `{id}`: cannot {what}"), e);
    if !temp.exists() {
        if path.exists() {
            std::fs::copy(path, temp).map_err(|e| fail(format!("copy {} to resume it", path.display()), e))?;
        } else {
            return Err(Error::External(format!(
                "sink `{id}`: cannot resume: neither {} nor {} exists (the checkpoint recorded {length} bytes)",
                temp.display(),
                path.display()
            )));
        }
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(temp)
        .map_err(|e| fail(format!("open {}", temp.display()), e))?;
    let actual = file.metadata().map_err(|e| fail(format!("inspect {}", temp.display()), e))?.len();
    if actual < length {
        return Err(Error::External(format!(
            "sink `{id}`: {} has {actual} bytes but the checkpoint committed {length}: the file was changed",
            temp.display()
        )));
    }
    // Drop what was written after the checkpoint: it will be written again.
    file.set_len(length).map_err(|e| fail(format!("truncate {}", temp.display()), e))?;
    file.seek(SeekFrom::Start(length)).map_err(|e| fail(format!("seek in {}", temp.display()), e))?;
    Ok(file)
}

impl Sink for FileSink {
    fn write(&mut self, records: &[Record]) -> Result<(), SinkError> {
        match &mut self.encoder {
            Some(e) => e.write(records).map_err(|e| self.failed("write", e)),
            None => Ok(()),
        }
    }

    fn line_encoder(&self) -> Option<super::encode::LineEncoder> {
        self.encoder.as_ref().map(Encoder::line_encoder)
    }

    fn write_lines(&mut self, lines: &str) -> Result<(), SinkError> {
        match &mut self.encoder {
            Some(e) => e.write_lines(lines).map_err(|e| self.failed("write", e)),
            None => Ok(()),
        }
    }

    fn pre_commit(&mut self, _epoch: u64) -> Result<serde_json::Value, SinkError> {
        let length = self.sync()?;
        serde_json::to_value(Committed { length }).map_err(|e| SinkError::Failed(Error::Internal(e.to_string())))
    }

    fn commit(&mut self) -> Result<(), SinkError> {
        self.sync()?;
        self.encoder = None;
        std::fs::rename(&self.temp, &self.path).map_err(|e| self.failed("rename into", e))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    fn abort(&mut self) {
        self.encoder = None;
        // A checkpointed run keeps its in-progress file: the next run resumes it.
        if !self.durable {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        if self.encoder.is_some() {
            self.abort();
        }
    }
}
