//! The `file` source: one path or a glob, read in sorted order. Replayable: it resumes
//! at a file index and byte offset (with the line count, for messages).

use super::decode::{read_csv_header, Decoder};
use super::{BadRecord, Source};
use crate::error::{Error, Result};
use crate::record::{Batch, Origin, Schema};
use crate::spec::{DataFormat, Decoding, PipelineSpec};
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

const READ_BUFFER: usize = 256 * 1024;

/// The files a path or glob names, sorted; an error when there are none.
pub fn expand(spec: &PipelineSpec, pattern: &str) -> std::result::Result<Vec<PathBuf>, String> {
    let resolved = spec.resolve(pattern);
    let text = resolved.to_string_lossy().to_string();
    if !text.contains(['*', '?', '[']) {
        if !resolved.exists() {
            return Err(format!("file not found: {}", resolved.display()));
        }
        return Ok(vec![resolved]);
    }
    let mut files: Vec<PathBuf> = glob::glob(&text)
        .map_err(|e| format!("invalid glob `{pattern}`: {e}"))?
        .filter_map(|p| p.ok())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no file matches `{}`", resolved.display()));
    }
    Ok(files)
}

pub struct FileSource {
    paths: Vec<PathBuf>,
    /// Index of the file being read (== paths.len() when done).
    current_file: usize,
    current: Option<Decoder<File>>,
    decoding: Decoding,
    origin: Origin,
    schema: Option<Arc<Schema>>,
    id: String,
}

impl FileSource {
    pub fn open(
        paths: Vec<PathBuf>,
        decoding: Decoding,
        origin: Origin,
        schema: Option<Arc<Schema>>,
        id: &str,
    ) -> Result<FileSource> {
        let mut source =
            FileSource { paths, current_file: 0, current: None, decoding, origin, schema, id: id.to_string() };
        source.open_at(Origin { file: 0, line: 0, offset: 0, ..origin })?;
        Ok(source)
    }

    fn path_error(&self, what: &str, file: usize, e: std::io::Error) -> Error {
        let path = self.paths.get(file).map(|p| p.display().to_string()).unwrap_or_default();
        Error::io(format!("source `{}`: cannot {what} {path}", self.id), e)
    }

    /// Opens file `at.file` at byte offset `at.offset` (with `at.line` lines before it).
    fn open_at(&mut self, at: Origin) -> Result<()> {
        let index = at.file as usize;
        self.current_file = index;
        let Some(path) = self.paths.get(index) else {
            self.current = None;
            return Ok(());
        };
        let mut file = File::open(path).map_err(|e| self.path_error("open", index, e))?;
        let csv_header = self.decoding.format.value == DataFormat::Csv && self.decoding.csv.header;
        let header = if at.offset > 0 && csv_header {
            let first = File::open(path).map_err(|e| self.path_error("open", index, e))?;
            read_csv_header(first, &self.decoding)
        } else {
            None
        };
        if at.offset > 0 {
            file.seek(SeekFrom::Start(at.offset)).map_err(|e| self.path_error("seek in", index, e))?;
        }
        let start = Origin { source: self.origin.source, ..at };
        self.current = Some(Decoder::new(file, READ_BUFFER, &self.decoding, start, self.schema.clone(), header));
        Ok(())
    }
}

impl Source for FileSource {
    fn read_batch(&mut self, max: usize, out: &mut Batch, bad: &mut Vec<BadRecord>) -> Result<bool> {
        while out.len() < max {
            let Some(decoder) = &mut self.current else { return Ok(false) };
            let file = self.current_file;
            let more = decoder.read(max - out.len(), out, bad).map_err(|e| self.path_error("read", file, e))?;
            if !more {
                self.open_at(Origin { file: file as u32 + 1, line: 0, offset: 0, ..self.origin })?;
                if self.current.is_none() {
                    return Ok(!out.is_empty() || !bad.is_empty());
                }
            }
            if !bad.is_empty() {
                break;
            }
        }
        Ok(true)
    }

    fn files(&self) -> Vec<Arc<str>> {
        self.paths.iter().map(|p| Arc::from(p.display().to_string())).collect()
    }

    fn replayable(&self) -> bool {
        true
    }

    fn sizes(&self) -> Option<Vec<u64>> {
        Some(self.paths.iter().map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)).collect())
    }

    fn seek(&mut self, position: &Origin) -> Result<()> {
        if (position.file as usize) < self.paths.len() {
            self.open_at(*position)
        } else {
            Err(Error::External(format!(
                "source `{}`: the checkpoint names file #{} but the path matches only {} files now",
                self.id,
                position.file + 1,
                self.paths.len()
            )))
        }
    }
}
