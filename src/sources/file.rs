//! The `file` source: one path or a glob, read in sorted order. Replayable: it resumes
//! at a file index and byte offset (with the line count, for messages).
//!
//! `follow: true` (tail -F): at the end of the last file it waits for more, notices
//! rotation (another file under the path) and truncation, and picks up files a glob
//! matches later (sorted after the ones known, read in turn). CSV is followed by
//! reading only up to the last complete line and reopening when the file changed, so
//! the CSV parser never sees half a row.

use super::decode::Decoding;
use super::decode::{read_csv_header, Decoder, KnownColumns};
use super::{BadRecord, Source};
use crate::error::{Error, Result};
use crate::format::DataFormat;
use crate::record::{Batch, Origin};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Take};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const READ_BUFFER: usize = 256 * 1024;

/// A `file` source's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct FileConfig {
    /// The path or glob as written (for messages).
    pub pattern: String,
    /// The same, resolved against the pipeline file's directory.
    pub path: PathBuf,
    pub decoding: Decoding,
    /// `follow: true` (tail -F).
    pub follow: bool,
    /// `parallelism:`: the threads that decode its blocks (1: the source's own).
    pub parallelism: usize,
}

impl FileConfig {
    /// Opens the files; `decode_threads` (the physical plan's) above 1 decodes blocks
    /// on that many threads.
    pub fn build(
        &self,
        id: &str,
        origin: Origin,
        columns: KnownColumns,
        decode_threads: usize,
    ) -> Result<Box<dyn Source>> {
        let files = self.expand().map_err(|e| Error::External(format!("source `{id}`: {e}")))?;
        let mut s = FileSource::open(files, self.decoding.clone(), origin, columns, id)?;
        if decode_threads > 1 {
            s.decode_in_parallel(decode_threads)?;
        }
        if self.follow {
            let resolved = self.path.to_string_lossy().to_string();
            s.follow(resolved.contains(['*', '?', '[']).then_some(resolved))?;
        }
        Ok(Box::new(s))
    }

    /// The CSV header of the first file, if the source reads CSV with a header.
    pub fn peek_csv_header(&self) -> Option<Vec<String>> {
        if self.decoding.format != DataFormat::Csv || !self.decoding.csv.header {
            return None;
        }
        let first = self.expand().ok()?.into_iter().next()?;
        read_csv_header(File::open(first).ok()?, &self.decoding)
    }

    /// The files the path or glob names, sorted; an error when there are none.
    fn expand(&self) -> std::result::Result<Vec<PathBuf>, String> {
        let resolved = &self.path;
        let text = resolved.to_string_lossy().to_string();
        if !text.contains(['*', '?', '[']) {
            if !resolved.exists() {
                return Err(format!("file not found: {}", resolved.display()));
            }
            return Ok(vec![resolved.clone()]);
        }
        let mut files: Vec<PathBuf> = glob::glob(&text)
            .map_err(|e| format!("invalid glob `{}`: {e}", self.pattern))?
            .filter_map(|p| p.ok())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(format!("no file matches `{}`", resolved.display()));
        }
        Ok(files)
    }
}

pub struct FileSource {
    paths: Vec<PathBuf>,
    /// Index of the file being read (== paths.len() when done).
    current_file: usize,
    current: Option<Decoder<Take<File>>>,
    decoding: Decoding,
    origin: Origin,
    columns: KnownColumns,
    id: String,
    /// `follow: true`: at the end of the file, wait for more (tail -F).
    follow: bool,
    /// Device and inode of the file being read, to notice rotation.
    identity: Option<(u64, u64)>,
    /// The glob to look at again for new files when following.
    pattern: Option<String>,
    /// Following CSV: the file's size when the current decoder was opened (it reads
    /// only complete lines present then; a change means reopening).
    seen_size: u64,
    /// `parallelism:` on the source: threads decoding blocks of the files (1: the
    /// decoder above, on the source's own thread).
    readers: usize,
    parallel: Option<super::parallel_decode::ParallelDecoding>,
    /// Where the files were last opened (the start, or a checkpoint's position).
    opened_at: Origin,
}

/// How often a followed file is looked at when there is nothing new.
const FOLLOW_POLL: std::time::Duration = std::time::Duration::from_millis(100);

fn identity(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl FileSource {
    pub fn open(
        paths: Vec<PathBuf>,
        decoding: Decoding,
        origin: Origin,
        columns: KnownColumns,
        id: &str,
    ) -> Result<FileSource> {
        let mut source = FileSource {
            paths,
            current_file: 0,
            current: None,
            decoding,
            origin,
            columns,
            id: id.to_string(),
            follow: false,
            identity: None,
            pattern: None,
            seen_size: 0,
            readers: 1,
            parallel: None,
            opened_at: origin,
        };
        source.open_at(Origin { file: 0, line: 0, offset: 0, ..origin })?;
        Ok(source)
    }

    /// This source's files to read in blocks from `at`.
    fn files(&self, at: Origin) -> super::parallel_decode::Files {
        super::parallel_decode::Files {
            paths: self.paths.clone(),
            decoding: self.decoding.clone(),
            at,
            columns: self.columns.clone(),
            id: self.id.clone(),
        }
    }

    fn path_error(&self, what: &str, file: usize, e: std::io::Error) -> Error {
        let path = self.paths.get(file).map(|p| p.display().to_string()).unwrap_or_default();
        Error::io(format!("source `{}`: cannot {what} {path}", self.id), e)
    }

    /// Decodes the files on `readers` threads from now on (not when following).
    pub fn decode_in_parallel(&mut self, readers: usize) -> Result<()> {
        self.readers = readers;
        self.open_at(Origin { file: 0, line: 0, offset: 0, ..self.origin })
    }

    /// Opens file `at.file` at byte offset `at.offset` (with `at.line` lines before it).
    fn open_at(&mut self, at: Origin) -> Result<()> {
        let index = at.file as usize;
        self.opened_at = Origin { source: self.origin.source, ..at };
        self.current_file = index;
        if self.readers > 1 && !self.follow {
            self.parallel =
                Some(super::parallel_decode::ParallelDecoding::start(self.files(self.opened_at), self.readers));
            self.current = None;
            return Ok(());
        }
        self.parallel = None;
        let Some(path) = self.paths.get(index) else {
            self.current = None;
            return Ok(());
        };
        let mut file = File::open(path).map_err(|e| self.path_error("open", index, e))?;
        let csv_header = self.decoding.format == DataFormat::Csv && self.decoding.csv.header;
        let header = if at.offset > 0 && csv_header {
            let first = File::open(path).map_err(|e| self.path_error("open", index, e))?;
            read_csv_header(first, &self.decoding)
        } else {
            None
        };
        let follow_csv = self.follow && self.decoding.format == DataFormat::Csv;
        let limit = if follow_csv {
            self.seen_size = file.metadata().map(|m| m.len()).map_err(|e| self.path_error("read", index, e))?;
            complete_lines_end(&mut file, at.offset, self.seen_size).map_err(|e| self.path_error("read", index, e))?
                - at.offset
        } else {
            u64::MAX
        };
        if at.offset > 0 || follow_csv {
            file.seek(SeekFrom::Start(at.offset)).map_err(|e| self.path_error("seek in", index, e))?;
        }
        let start = Origin { source: self.origin.source, ..at };
        let reader = file.take(limit);
        let mut decoder = Decoder::new(reader, READ_BUFFER, &self.decoding, start, self.columns.clone(), header);
        if self.follow {
            decoder.follow();
        }
        self.identity = identity(path);
        self.current = Some(decoder);
        Ok(())
    }

    /// Follows the file like `tail -F` from now on (unbounded); `pattern` is the glob
    /// to look at again for new files (None for a single path).
    pub fn follow(&mut self, pattern: Option<String>) -> Result<()> {
        self.follow = true;
        self.pattern = pattern;
        // Reopen, so that a CSV file is read only up to its last complete line.
        let at = Origin { file: self.current_file as u32, line: 0, offset: 0, ..self.origin };
        self.open_at(at)
    }

    /// Following a glob: files that match now and were not known, in sorted order,
    /// are read after the known ones. True when there were any.
    fn pick_up_new_files(&mut self, spec_pattern: &str) -> bool {
        let Ok(found) = glob::glob(spec_pattern) else { return false };
        let mut new: Vec<PathBuf> =
            found.filter_map(|p| p.ok()).filter(|p| p.is_file() && !self.paths.contains(p)).collect();
        new.sort();
        if new.is_empty() {
            return false;
        }
        tracing::info!(
            "source `{}`: new files: {}",
            self.id,
            new.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
        self.paths.extend(new);
        true
    }

    /// At the end of a followed file: reopens it from the start when it was rotated
    /// (another file under the path) or truncated (shorter than what was read); else
    /// waits a moment. The old file was read to its end before this is called.
    fn after_end_of_followed(&mut self) -> Result<()> {
        let index = self.current_file;
        if index + 1 < self.paths.len() {
            // A file a glob found later: the current one was read to its end.
            return self.open_at(Origin { file: index as u32 + 1, line: 0, offset: 0, ..self.origin });
        }
        let path = self.paths[index].clone();
        let position = self.current.as_ref().map_or(Origin { file: index as u32, ..self.origin }, |d| d.position());
        let read = position.offset;
        let now = identity(&path);
        let size = std::fs::metadata(&path).map(|m| m.len()).ok();
        let rotated = now.is_some() && now != self.identity;
        let truncated = !rotated && size.is_some_and(|s| s < read);
        if rotated || truncated {
            tracing::info!(
                "source `{}`: {} was {}; reading it from the start",
                self.id,
                path.display(),
                if rotated { "rotated" } else { "truncated" }
            );
            return self.open_at(Origin { file: index as u32, line: 0, offset: 0, ..self.origin });
        }
        if self.pattern.clone().is_some_and(|p| self.pick_up_new_files(&p)) {
            return Ok(());
        }
        let grown_csv = self.decoding.format == DataFormat::Csv && size.is_some_and(|s| s != self.seen_size);
        if grown_csv {
            return self.open_at(position);
        }
        std::thread::sleep(FOLLOW_POLL);
        Ok(())
    }
}

/// The offset just after the last newline of `file` before `size` (or `from`, when
/// there is none after it): the end of its complete lines.
fn complete_lines_end(file: &mut File, from: u64, size: u64) -> std::io::Result<u64> {
    let mut end = size;
    let mut chunk = vec![0u8; 64 * 1024];
    while end > from {
        let start = end.saturating_sub(chunk.len() as u64).max(from);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk[..n])?;
        if let Some(i) = chunk[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(from)
}

impl Source for FileSource {
    fn read_batch(&mut self, max: usize, out: &mut Batch, bad: &mut Vec<BadRecord>) -> Result<bool> {
        if let Some(parallel) = &mut self.parallel {
            return parallel.read(max, out, bad);
        }
        while out.len() < max {
            let Some(decoder) = &mut self.current else { return Ok(false) };
            let file = self.current_file;
            let more = decoder.read(max - out.len(), out, bad).map_err(|e| match super::decode::too_long(&e) {
                Some(long) => long.in_file(&self.id, self.paths.get(file).map_or(Path::new(""), PathBuf::as_path)),
                None => self.path_error("read", file, e),
            })?;
            if !more && self.follow {
                if out.is_empty() && bad.is_empty() {
                    self.after_end_of_followed()?;
                }
                return Ok(true);
            }
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

    fn bounded(&self) -> bool {
        !self.follow
    }

    fn split_into_blocks(&self, workers: usize) -> Option<Vec<super::parallel_decode::BlockFeed>> {
        (!self.follow).then(|| {
            super::parallel_decode::deal(self.files(self.opened_at), workers, super::parallel_decode::SPLIT_BLOCK)
        })
    }

    fn sizes(&self) -> Option<Vec<u64>> {
        if self.follow {
            return None;
        }
        Some(self.paths.iter().map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)).collect())
    }

    fn seek(&mut self, position: &Origin) -> Result<()> {
        let shorter = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len() < position.offset).unwrap_or(false);
        if (position.file as usize) < self.paths.len() {
            if self.follow && shorter(&self.paths[position.file as usize]) {
                // Rotated or truncated while stopped: the file under the path is new.
                return self.open_at(Origin { line: 0, offset: 0, ..*position });
            }
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
