//! [`FileStore`]: one file holding a whole cache, shared by processes (and by other
//! MSAL apps through msal-extensions' lock protocol).
//!
//! - **Lock**: `<path>.lockfile`, created exclusively and holding `"<pid> <argv0>"`,
//!   exactly as msal-extensions does, plus an OS lock on it. A lock file left by a
//!   process that no longer exists is recovered, not waited on.
//! - **Writes** are atomic: a temporary file in the same folder (mode 0600), fsync,
//!   rename over the cache file, fsync of the folder. A reader sees the old file or
//!   the new one, never a torn one — even if the writer is killed mid-write.
//! - **Reads** happen only when the file changed (modification time, size, inode).

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind as IoKind, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::error::{Error, ErrorKind, Result};

/// How a [`FileStore`] waits for its lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockOptions {
    /// Give up with [`ErrorKind::LockTimeout`] after this long (msal-extensions: 5 s).
    pub timeout: Duration,
    /// Wait this long between attempts (msal-extensions: 250 ms; we poll faster).
    pub retry_every: Duration,
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions { timeout: Duration::from_secs(5), retry_every: Duration::from_millis(5) }
    }
}

/// What identifies one version of the file, to skip re-reading an unchanged file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp_of(meta: &fs::Metadata) -> FileStamp {
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(meta);
    #[cfg(not(unix))]
    let inode = 0;
    FileStamp { modified: meta.modified().ok(), len: meta.len(), inode }
}

/// One cache file and its lock.
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
    lock_path: PathBuf,
    lock: LockOptions,
}

/// Held while the cache file is being changed; releases the lock when dropped.
#[derive(Debug)]
pub struct FileLock {
    path: PathBuf,
    file: File,
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Remove first, then unlock: a waiter that opens the old inode after our
        // unlink would lock a file nobody else uses, so it re-checks the path.
        let _ = fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// Whether a process with this id exists (Linux: `/proc/<pid>`).
pub(crate) fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    #[cfg(target_os = "linux")]
    {
        Path::new("/proc").join(pid.to_string()).exists()
    }
    #[cfg(not(target_os = "linux"))]
    {
        true // can't tell: never treat a lock as stale
    }
}

impl FileStore {
    /// A store for the cache file at `path` (created on first write; its folder too).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lockfile");
        FileStore { path, lock_path: lock_path.into(), lock: LockOptions::default() }
    }

    /// Sets how the lock is waited for.
    pub fn with_lock_options(mut self, lock: LockOptions) -> Self {
        self.lock = lock;
        self
    }

    /// The cache file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The lock file's path (`<path>.lockfile`).
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    /// Takes the lock, waiting up to the configured timeout.
    pub fn lock(&self) -> Result<FileLock> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| Error::io(dir, "cannot create the folder", &e))?;
        }
        let started = Instant::now();
        loop {
            match self.try_lock()? {
                Some(lock) => return Ok(lock),
                None if started.elapsed() >= self.lock.timeout => {
                    return Err(Error::new(
                        ErrorKind::LockTimeout,
                        format!(
                            "could not lock {} within {:?}: another process holds it ({})",
                            self.path.display(),
                            self.lock.timeout,
                            self.lock_owner().unwrap_or_else(|| "owner unknown".into())
                        ),
                    ));
                }
                None => std::thread::sleep(self.lock.retry_every),
            }
        }
    }

    /// One attempt: the lock, or `None` when a live process holds it.
    fn try_lock(&self) -> Result<Option<FileLock>> {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        match opts.open(&self.lock_path) {
            Ok(mut file) => {
                let argv0 = std::env::args().next().unwrap_or_default();
                let _ = write!(file, "{} {}", std::process::id(), argv0);
                // The OS lock protects against our own kind removing a live lock as stale.
                match file.try_lock() {
                    Ok(()) => Ok(Some(FileLock { path: self.lock_path.clone(), file })),
                    Err(_) => Ok(None),
                }
            }
            Err(e) if e.kind() == IoKind::AlreadyExists => {
                self.recover_stale_lock();
                Ok(None)
            }
            Err(e) => Err(Error::io(&self.lock_path, "cannot create the lock file", &e)),
        }
    }

    /// `"<pid> <argv0>"` of the lock's holder, if readable.
    fn lock_owner(&self) -> Option<String> {
        let mut s = String::new();
        File::open(&self.lock_path).ok()?.take(4096).read_to_string(&mut s).ok()?;
        Some(format!("held by pid {s}"))
    }

    /// Removes a lock file whose writer no longer exists.
    fn recover_stale_lock(&self) {
        let Ok(mut file) = File::open(&self.lock_path) else { return };
        let mut s = String::new();
        if Read::by_ref(&mut file).take(4096).read_to_string(&mut s).is_err() {
            return;
        }
        match s.split_whitespace().next().and_then(|p| p.parse::<u32>().ok()) {
            Some(pid) if process_alive(pid) => return,
            Some(_) => {}
            None => {
                // Empty: being written right now, or its writer died between creating
                // and writing it. Only the second kind gets old.
                let age = file.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
                if age.is_none_or(|a| a < Duration::from_secs(10)) {
                    return;
                }
            }
        }
        // A live holder of our kind keeps an OS lock on it; don't remove that one.
        if file.try_lock().is_err() {
            return;
        }
        log::warn!("tokencache: removing the lock file {} left by a process that has exited", self.lock_path.display());
        let _ = fs::remove_file(&self.lock_path);
        let _ = file.unlock();
    }

    /// The file's current stamp, or `None` when it does not exist.
    pub fn stamp(&self) -> Result<Option<FileStamp>> {
        match fs::metadata(&self.path) {
            Ok(m) => Ok(Some(stamp_of(&m))),
            Err(e) if e.kind() == IoKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&self.path, "cannot read the metadata of", &e)),
        }
    }

    /// The file's content and stamp if its stamp differs from `known`; `None` when it
    /// is unchanged. A missing file reads as empty.
    pub fn read_if_changed(&self, known: Option<FileStamp>) -> Result<Option<(String, Option<FileStamp>)>> {
        let before = self.stamp()?;
        if before.is_some() && before == known {
            return Ok(None);
        }
        let text = match fs::read(&self.path) {
            Ok(bytes) => String::from_utf8(bytes)
                .map_err(|_| Error::new(ErrorKind::Corrupt, format!("{} is not UTF-8 text", self.path.display())))?,
            Err(e) if e.kind() == IoKind::NotFound => String::new(),
            Err(e) => return Err(Error::io(&self.path, "cannot read", &e)),
        };
        if before.is_none() && known.is_none() && text.is_empty() {
            return Ok(None);
        }
        // Stamp of what we read: the file is replaced by rename, so re-stat is exact
        // unless a writer renamed in between, in which case we read again next time.
        Ok(Some((text, self.stamp()?)))
    }

    /// Replaces the file atomically with `text` (mode 0600); returns the new stamp.
    /// Call with the lock held.
    pub fn write(&self, _lock: &FileLock, text: &str) -> Result<FileStamp> {
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp-{}-{}", std::process::id(), unique_suffix()));
        let result = (|| -> Result<()> {
            let mut opts = OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(&tmp).map_err(|e| Error::io(&tmp, "cannot create", &e))?;
            f.write_all(text.as_bytes()).map_err(|e| Error::io(&tmp, "cannot write", &e))?;
            f.sync_all().map_err(|e| Error::io(&tmp, "cannot sync", &e))?;
            fs::rename(&tmp, &self.path).map_err(|e| Error::io(&self.path, "cannot replace", &e))?;
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result?;
        self.stamp()?
            .ok_or_else(|| Error::new(ErrorKind::Io, format!("{} vanished after writing", self.path.display())))
    }

    /// Moves an unreadable cache file aside as `<path>.corrupt-<unix time>`; returns
    /// the new path. Call with the lock held.
    pub fn move_aside(&self, _lock: &FileLock) -> Result<PathBuf> {
        let mut aside = self.path.clone().into_os_string();
        aside.push(format!(".corrupt-{}", crate::unix_now()));
        let aside = PathBuf::from(aside);
        fs::rename(&self.path, &aside).map_err(|e| Error::io(&self.path, "cannot move aside", &e))?;
        Ok(aside)
    }
}

fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let t = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos() as u64);
    (t << 16) ^ COUNTER.fetch_add(1, Ordering::Relaxed)
}
