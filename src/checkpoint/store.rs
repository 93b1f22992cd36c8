//! The checkpoint directory of a pipeline, and its only writer. Each checkpoint is
//! written to a temporary name, fsynced, renamed to `epoch-<N>.checkpoint` and the
//! directory fsynced, so a crash leaves either the whole file or none; the newest
//! `keep` are kept. A `LOCK` file holding the owner's pid keeps a second run out; a
//! lock whose process is gone is taken over.

use super::format::{decode, encode};
use super::Checkpoint;
use crate::error::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct Store {
    dir: PathBuf,
    keep: usize,
}

/// A checkpoint read back, with the file it came from.
pub type Found = (Checkpoint, PathBuf);

/// A checkpoint file found in a directory.
#[derive(Clone, Debug)]
pub struct Entry {
    pub epoch: u64,
    pub path: PathBuf,
    pub size: u64,
}

/// Holds the directory's lock until dropped.
pub struct Lock {
    path: PathBuf,
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Whether a process runs (a zombie, killed but not yet reaped, does not).
pub(crate) fn process_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|state| !matches!(state, "Z" | "X")),
        Err(_) => false,
    }
}

impl Store {
    pub fn new(dir: PathBuf, keep: usize) -> Store {
        Store { dir, keep: keep.max(1) }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn io(&self, what: &str, e: std::io::Error) -> Error {
        Error::io(format!("checkpoint directory {}: cannot {what}", self.dir.display()), e)
    }

    /// Takes the directory's lock (creating the directory).
    pub fn lock(&self) -> Result<Lock> {
        fs::create_dir_all(&self.dir).map_err(|e| self.io("create it", e))?;
        let path = self.dir.join("LOCK");
        for _ in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    f.write_all(format!("{}\n", std::process::id()).as_bytes())
                        .map_err(|e| self.io("write LOCK", e))?;
                    return Ok(Lock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = fs::read_to_string(&path).ok().and_then(|s| s.trim().parse::<u32>().ok());
                    match owner {
                        Some(pid) if pid != std::process::id() && process_alive(pid) => {
                            return Err(Error::Usage(format!(
                                "checkpoint directory {} is in use by another flowctl run (pid {pid})",
                                self.dir.display()
                            )));
                        }
                        // The owner is gone: a stale lock from a killed run.
                        _ => fs::remove_file(&path).map_err(|e| self.io("remove a stale LOCK", e))?,
                    }
                }
                Err(e) => return Err(self.io("create LOCK", e)),
            }
        }
        Err(Error::External(format!("checkpoint directory {}: cannot take the lock", self.dir.display())))
    }

    /// Checkpoint files, oldest first.
    pub fn list(&self) -> Result<Vec<Entry>> {
        list(&self.dir)
    }

    /// Writes a checkpoint atomically and prunes old ones; returns its path and size.
    pub fn write(&self, checkpoint: &Checkpoint) -> Result<(PathBuf, u64)> {
        let bytes = encode(checkpoint).map_err(Error::Internal)?;
        let name = format!("epoch-{:010}.checkpoint", checkpoint.epoch);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let path = self.dir.join(&name);
        let mut f = File::create(&tmp).map_err(|e| self.io("create a checkpoint", e))?;
        f.write_all(&bytes).map_err(|e| self.io("write a checkpoint", e))?;
        f.sync_all().map_err(|e| self.io("sync a checkpoint", e))?;
        drop(f);
        fs::rename(&tmp, &path).map_err(|e| self.io("rename a checkpoint", e))?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        let entries = self.list()?;
        if entries.len() > self.keep {
            for old in &entries[..entries.len() - self.keep] {
                let _ = fs::remove_file(&old.path);
            }
        }
        Ok((path, bytes.len() as u64))
    }

    /// The newest checkpoint that reads back intact and holds the epoch its name
    /// says. Unusable ones are reported in the returned warnings and skipped.
    pub fn latest(&self) -> Result<(Option<Found>, Vec<String>)> {
        let mut warnings = Vec::new();
        for entry in self.list()?.into_iter().rev() {
            let read = fs::read(&entry.path).map_err(|e| e.to_string()).and_then(|b| decode(&b)).and_then(|c| {
                if c.epoch == entry.epoch {
                    Ok(c)
                } else {
                    Err(format!("its name says epoch {} but it holds epoch {}", entry.epoch, c.epoch))
                }
            });
            match read {
                Ok(c) => return Ok((Some((c, entry.path)), warnings)),
                Err(e) => warnings
                    .push(format!("checkpoint {} is unusable ({e}); trying the one before it", entry.path.display())),
            }
        }
        Ok((None, warnings))
    }

    /// Moves every checkpoint into `old-<time>/` (for `run --fresh`); returns where.
    pub fn move_aside(&self) -> Result<Option<PathBuf>> {
        let entries = self.list()?;
        if entries.is_empty() {
            return Ok(None);
        }
        let aside = self.dir.join(format!("old-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ")));
        fs::create_dir_all(&aside).map_err(|e| self.io("create a folder for old checkpoints", e))?;
        for e in entries {
            if let Some(name) = e.path.file_name() {
                fs::rename(&e.path, aside.join(name)).map_err(|err| self.io("move an old checkpoint", err))?;
            }
        }
        Ok(Some(aside))
    }
}

/// Checkpoint files in `dir`, oldest first.
pub fn list(dir: &Path) -> Result<Vec<Entry>> {
    let read = match fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("cannot read checkpoint directory {}", dir.display()), e)),
    };
    let mut entries: Vec<Entry> = read
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let epoch = name.strip_prefix("epoch-")?.strip_suffix(".checkpoint")?.parse().ok()?;
            Some(Entry { epoch, size: e.metadata().map(|m| m.len()).unwrap_or(0), path: e.path() })
        })
        .collect();
    entries.sort_by_key(|e| e.epoch);
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(epoch: u64) -> Checkpoint {
        Checkpoint {
            pipeline: "p".into(),
            lineage: "l".into(),
            epoch,
            created_ms: 0,
            completed: false,
            watermark: 0,
            sources: vec![],
            steps: vec![],
            sinks: vec![],
        }
    }

    #[test]
    fn keeps_the_newest_and_falls_back_past_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().to_path_buf(), 2);
        let _lock = store.lock().unwrap();
        for epoch in 1..=3 {
            store.write(&checkpoint(epoch)).unwrap();
        }
        let epochs: Vec<u64> = store.list().unwrap().iter().map(|e| e.epoch).collect();
        assert_eq!(epochs, [2, 3]);
        let newest = store.list().unwrap()[1].path.clone();
        let mut bytes = fs::read(&newest).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 0x20;
        fs::write(&newest, bytes).unwrap();
        let (found, warnings) = store.latest().unwrap();
        assert_eq!(found.unwrap().0.epoch, 2);
        assert!(warnings[0].contains("checksum mismatch"), "{warnings:?}");
    }

    #[test]
    fn a_live_lock_refuses_and_a_stale_one_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().to_path_buf(), 3);
        // pid 1 is always alive: another run holds the lock.
        fs::write(dir.path().join("LOCK"), "1\n").unwrap();
        assert!(store.lock().is_err());
        // A pid that cannot exist: the lock is stale.
        fs::write(dir.path().join("LOCK"), "4294967\n").unwrap();
        let lock = store.lock().unwrap();
        drop(lock);
        assert!(!dir.path().join("LOCK").exists());
    }
}
