//! The `file` sink: writes under a temporary name in the target directory and renames
//! to the final name on commit, so a failed or killed run never leaves a half-written
//! file where the user expects a result.

use super::encode::Encoder;
use super::{Sink, SinkError};
use crate::error::Error;
use crate::record::Record;
use crate::spec::DataFormat;
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

pub struct FileSink {
    id: String,
    path: PathBuf,
    temp: PathBuf,
    encoder: Option<Encoder<BufWriter<File>>>,
}

impl FileSink {
    pub fn create(id: &str, path: PathBuf, format: DataFormat, header: bool, delimiter: u8) -> Result<FileSink, Error> {
        let dir = path
            .parent()
            .map(PathBuf::from)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("sink `{id}`: cannot create directory {}", dir.display()), e))?;
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "out".into());
        let temp = dir.join(format!(".{name}.{}.inprogress", std::process::id()));
        let file =
            File::create(&temp).map_err(|e| Error::io(format!("sink `{id}`: cannot create {}", temp.display()), e))?;
        let out = BufWriter::with_capacity(256 * 1024, file);
        let encoder = match format {
            DataFormat::Csv => Encoder::csv(out, header, delimiter),
            _ => Encoder::jsonl(out),
        };
        Ok(FileSink { id: id.to_string(), path, temp, encoder: Some(encoder) })
    }

    fn failed(&self, what: &str, e: std::io::Error) -> SinkError {
        SinkError::Failed(Error::io(format!("sink `{}`: cannot {what} {}", self.id, self.path.display()), e))
    }
}

impl Sink for FileSink {
    fn write(&mut self, records: &[Record]) -> Result<(), SinkError> {
        match &mut self.encoder {
            Some(e) => e.write(records).map_err(|e| self.failed("write", e)),
            None => Ok(()),
        }
    }

    fn commit(&mut self) -> Result<(), SinkError> {
        let Some(mut encoder) = self.encoder.take() else { return Ok(()) };
        encoder.flush().map_err(|e| self.failed("write", e))?;
        let writer = match encoder {
            Encoder::Jsonl { out, .. } => out.into_inner().map_err(|e| e.into_error()),
            Encoder::Csv { out, .. } => (*out)
                .into_inner()
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|w| w.into_inner().map_err(|e| e.into_error())),
        };
        let file = writer.map_err(|e| self.failed("write", e))?;
        file.sync_all().map_err(|e| self.failed("sync", e))?;
        std::fs::rename(&self.temp, &self.path).map_err(|e| self.failed("rename into", e))
    }

    fn abort(&mut self) {
        self.encoder = None;
        let _ = std::fs::remove_file(&self.temp);
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        if self.encoder.is_some() {
            self.abort();
        }
    }
}
