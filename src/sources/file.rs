//! The `file` source: one path or a glob, read in sorted order.

use super::decode::Decoder;
use super::{BadRecord, Source};
use crate::error::{Error, Result};
use crate::record::{Batch, Origin, Schema};
use crate::spec::{Decoding, PipelineSpec};
use std::fs::File;
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
    next_file: usize,
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
            FileSource { paths, next_file: 0, current: None, decoding, origin, schema, id: id.to_string() };
        source.open_next()?;
        Ok(source)
    }

    /// Opens the next file; false when all have been read.
    fn open_next(&mut self) -> Result<bool> {
        let Some(path) = self.paths.get(self.next_file) else {
            self.current = None;
            return Ok(false);
        };
        let file = File::open(path)
            .map_err(|e| Error::io(format!("source `{}`: cannot open {}", self.id, path.display()), e))?;
        let origin = Origin { file: self.next_file as u32, line: 0, ..self.origin };
        self.current = Some(Decoder::new(file, READ_BUFFER, &self.decoding, origin, self.schema.clone()));
        self.next_file += 1;
        Ok(true)
    }
}

impl Source for FileSource {
    fn read_batch(&mut self, max: usize, out: &mut Batch, bad: &mut Vec<BadRecord>) -> Result<bool> {
        while out.len() < max {
            let Some(decoder) = &mut self.current else { return Ok(false) };
            let more = decoder.read(max - out.len(), out, bad).map_err(|e| {
                let path = self.paths.get(self.next_file - 1).map(|p| p.display().to_string()).unwrap_or_default();
                Error::io(format!("source `{}`: cannot read {path}", self.id), e)
            })?;
            if !more && !self.open_next()? {
                return Ok(!out.is_empty() || !bad.is_empty());
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
}
