//! The data directory's lock: one process at a time writes an SQLite data directory, which the
//! records cache and the writer's counters rely on. [`DirLock`] holds it; dropping it releases
//! it, and so does the end of the process.
//!
//! The lock file (0600) also says how the last holder stopped: its pid while it runs (written and
//! synced before anything else), [`CLEAN_MARK`] after a clean close
//! ([`DirLock::release_clean`]). Anything but the mark means the previous run stopped
//! uncleanly (or predates the mark): `open` then checks the database first.
//!
//! Why a POSIX record lock (`fcntl(F_SETLK)`) and not `flock`: a `flock` belongs to the open
//! file description, and a child process that any other thread forks duplicates the descriptor
//! until it calls `exec`. So a store closed and reopened at once failed with "in use by another
//! claimdb process" whenever another thread of the same process was starting a program at that
//! moment (the test harness does so all the time; measured: a third of immediate reopens
//! failed while one thread spawned `/bin/true` in a loop). A record lock belongs to the process
//! and is never inherited across `fork`. Its two catches are handled here: it does not exclude
//! other opens within the same process (a registry of the lock files this process holds does),
//! and closing *any* descriptor of the file in the process releases it (so the file is opened
//! only after the registry says this process does not hold it, and nothing else opens it).

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::sync::Mutex;

use crate::StoreError;

/// The name of the lock file in the data directory; it names the holder's pid.
pub const LOCK_FILE: &str = "claimdb.lock";

/// What the lock file holds after a clean close.
const CLEAN_MARK: &str = "clean";

/// The lock files this process holds.
static HELD: Mutex<Vec<FileId>> = Mutex::new(Vec::new());

/// The held lock of one data directory.
#[derive(Debug)]
pub(crate) struct DirLock {
    /// `Option` only so that `drop` can close it while the registry is locked.
    file: Option<File>,
    id: FileId,
    /// Whether the previous holder closed cleanly.
    pub(crate) was_clean: bool,
}

impl DirLock {
    /// Takes the lock of `dir` (which exists), or fails with `Unavailable` naming the holder.
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock, StoreError> {
        let path = dir.join(LOCK_FILE);
        let mut held = HELD.lock().map_err(|_| {
            StoreError::Internal("the data directory lock registry is poisoned".into())
        })?;
        // Held by this process already: refuse *without opening the file*, since closing a
        // descriptor of it would release the holder's lock.
        if let Ok(id) = file_id(&path)
            && held.contains(&id)
        {
            return Err(in_use(dir, std::process::id().to_string().as_str()));
        }
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).map_err(|e| {
            StoreError::Unavailable(format!("cannot open the lock file {}: {e}", path.display()))
        })?;
        let id = file_id(&path)
            .map_err(|e| StoreError::Unavailable(format!("cannot stat {}: {e}", path.display())))?;
        match try_lock(&file) {
            Ok(true) => {}
            Ok(false) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(in_use(dir, holder.trim()));
            }
            Err(e) => {
                return Err(StoreError::Unavailable(format!(
                    "cannot lock {}: {e}",
                    path.display()
                )));
            }
        }
        let mut previous = String::new();
        let _ = file.read_to_string(&mut previous);
        let was_clean = previous.trim() == CLEAN_MARK;
        // Durable before anything is written: a crash from here on must not look like a clean
        // stop.
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .and_then(|()| file.sync_data())
            .map_err(|e| {
                StoreError::Unavailable(format!(
                    "cannot write the lock file {}: {e}",
                    path.display()
                ))
            })?;
        held.push(id);
        Ok(DirLock {
            file: Some(file),
            id,
            was_clean,
        })
    }

    /// Records a clean close in the lock file, then releases the lock (best effort: without
    /// the mark, the next start checks the database once more than needed).
    pub(crate) fn release_clean(mut self) {
        if let Some(file) = self.file.as_mut() {
            let _ = file
                .set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| writeln!(file, "{CLEAN_MARK}"))
                .and_then(|()| file.sync_data());
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Close first, then forget the entry, both under the registry's lock: an open of the
        // same directory by another thread meanwhile is refused rather than racing the close.
        let mut held = HELD.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        drop(self.file.take());
        held.retain(|id| id != &self.id);
    }
}

fn in_use(dir: &Path, holder: &str) -> StoreError {
    let by = if holder.is_empty() {
        String::new()
    } else {
        format!(" (pid {holder})")
    };
    StoreError::Unavailable(format!(
        "the data directory {} is in use by another claimdb process{by}; stop it first \
         (`claimdb export` works while it runs)",
        dir.display()
    ))
}

/// Takes an exclusive record lock on the whole file without waiting: `Ok(false)` when another
/// process holds one.
#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<bool> {
    use rustix::fs::{FlockOperation, fcntl_lock};
    match fcntl_lock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::ACCESS => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Elsewhere, the platform's whole-file lock (not inherited by child processes on Windows).
#[cfg(not(unix))]
fn try_lock(file: &File) -> std::io::Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Identifies a lock file however its directory was named: device and inode.
#[cfg(unix)]
type FileId = (u64, u64);

#[cfg(unix)]
fn file_id(path: &Path) -> std::io::Result<FileId> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(path)?;
    Ok((meta.dev(), meta.ino()))
}

/// Without inode numbers, the canonical path.
#[cfg(not(unix))]
type FileId = std::path::PathBuf;

#[cfg(not(unix))]
fn file_id(path: &Path) -> std::io::Result<FileId> {
    std::fs::canonicalize(path)
}
