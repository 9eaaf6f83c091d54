//! Where state lives: a small key-value interface with an append-only journal, implemented for a
//! local directory and for S3.

use async_trait::async_trait;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Errors of a state backend, with the place they happened.
#[derive(Debug, thiserror::Error)]
#[error("state backend {place}: {message}")]
pub struct BackendError {
    pub place: String,
    pub message: String,
}

pub type BackendResult<T> = Result<T, BackendError>;

/// Storage for one stack's state.
#[async_trait]
pub trait Backend: Send + Sync {
    /// `file:///…/.fabric/example` or `s3://bucket/prefix/example`.
    fn describe(&self) -> String;
    async fn read(&self, name: &str) -> BackendResult<Option<Vec<u8>>>;
    /// Replaces `name` atomically and durably.
    async fn write(&self, name: &str, data: &[u8]) -> BackendResult<()>;
    /// Creates `name` only if it does not exist; `false` if it does.
    async fn create_new(&self, name: &str, data: &[u8]) -> BackendResult<bool>;
    /// Compare-and-swap: replaces `name` with `data` only if it holds exactly `expected` now;
    /// `false` (and nothing written) otherwise. Two callers that judged the same content can never
    /// both succeed.
    async fn replace_if(&self, name: &str, expected: &[u8], data: &[u8]) -> BackendResult<bool>;
    /// Removes `name` only if it holds exactly `expected` now; `false` (and nothing removed)
    /// otherwise.
    async fn remove_if(&self, name: &str, expected: &[u8]) -> BackendResult<bool>;
    async fn remove(&self, name: &str) -> BackendResult<()>;
    /// Appends journal entries, in order, durably (on disk, or acknowledged by S3, on return).
    /// Many entries at once cost one flush: concurrent steps share it (group commit).
    async fn append_journal(&self, entries: &[Vec<u8>]) -> BackendResult<()>;
    /// Every journal entry, in order.
    async fn read_journal(&self) -> BackendResult<Vec<Vec<u8>>>;
    async fn clear_journal(&self) -> BackendResult<()>;
}

/// State in a local directory: `state.json`, `journal.jsonl`, `lock.json`.
pub struct LocalBackend {
    dir: PathBuf,
    journal: std::sync::Mutex<Option<std::fs::File>>,
}

impl LocalBackend {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LocalBackend { dir: dir.into(), journal: std::sync::Mutex::new(None) }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn err(&self, name: &str, e: impl std::fmt::Display) -> BackendError {
        BackendError { place: self.dir.join(name).display().to_string(), message: e.to_string() }
    }

    fn ensure_dir(&self) -> BackendResult<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| self.err("", e))
    }

    /// Runs `f` holding an exclusive `flock` on the directory's guard file: the compare-and-swap
    /// operations of every process on this host (and of every host, on file systems with working
    /// `flock`) are serialized by it.
    fn guarded<T>(&self, f: impl FnOnce() -> BackendResult<T>) -> BackendResult<T> {
        self.ensure_dir()?;
        let guard = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(GUARD))
            .map_err(|e| self.err(GUARD, e))?;
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor we own; released when `guard` is closed.
        if unsafe { libc::flock(guard.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(self.err(GUARD, std::io::Error::last_os_error()));
        }
        let result = f();
        drop(guard);
        result
    }

    fn read_now(&self, name: &str) -> BackendResult<Option<Vec<u8>>> {
        match std::fs::read(self.dir.join(name)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err(name, e)),
        }
    }

    fn write_now(&self, name: &str, data: &[u8]) -> BackendResult<()> {
        self.ensure_dir()?;
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let mut f = std::fs::File::create(&tmp).map_err(|e| self.err(name, e))?;
        f.write_all(data).and_then(|_| f.sync_all()).map_err(|e| self.err(name, e))?;
        std::fs::rename(&tmp, self.dir.join(name)).map_err(|e| self.err(name, e))?;
        self.sync_dir();
        Ok(())
    }

    fn sync_dir(&self) {
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
    }
}

const JOURNAL: &str = "journal.jsonl";
/// The file whose `flock` serializes compare-and-swap operations.
const GUARD: &str = ".guard";

#[async_trait]
impl Backend for LocalBackend {
    fn describe(&self) -> String {
        format!("file://{}", self.dir.display())
    }

    async fn read(&self, name: &str) -> BackendResult<Option<Vec<u8>>> {
        self.read_now(name)
    }

    async fn write(&self, name: &str, data: &[u8]) -> BackendResult<()> {
        self.write_now(name, data)
    }

    async fn replace_if(&self, name: &str, expected: &[u8], data: &[u8]) -> BackendResult<bool> {
        self.guarded(|| {
            if self.read_now(name)?.as_deref() != Some(expected) {
                return Ok(false);
            }
            self.write_now(name, data)?;
            Ok(true)
        })
    }

    async fn remove_if(&self, name: &str, expected: &[u8]) -> BackendResult<bool> {
        self.guarded(|| {
            if self.read_now(name)?.as_deref() != Some(expected) {
                return Ok(false);
            }
            std::fs::remove_file(self.dir.join(name)).map_err(|e| self.err(name, e))?;
            self.sync_dir();
            Ok(true)
        })
    }

    async fn create_new(&self, name: &str, data: &[u8]) -> BackendResult<bool> {
        // Written whole under a temporary name, then linked into place: `link` fails if the name
        // exists, and a reader never sees a half-written file.
        self.ensure_dir()?;
        let tmp = self.dir.join(format!(".{name}.{}.new", std::process::id()));
        let mut f = std::fs::File::create(&tmp).map_err(|e| self.err(name, e))?;
        f.write_all(data).and_then(|_| f.sync_all()).map_err(|e| self.err(name, e))?;
        let linked = std::fs::hard_link(&tmp, self.dir.join(name));
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                self.sync_dir();
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(self.err(name, e)),
        }
    }

    async fn remove(&self, name: &str) -> BackendResult<()> {
        match std::fs::remove_file(self.dir.join(name)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.err(name, e)),
        }
    }

    async fn append_journal(&self, entries: &[Vec<u8>]) -> BackendResult<()> {
        let mut guard = self.journal.lock().expect("journal lock poisoned");
        if guard.is_none() {
            self.ensure_dir()?;
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join(JOURNAL))
                .map_err(|e| self.err(JOURNAL, e))?;
            *guard = Some(f);
            self.sync_dir();
        }
        let f = guard.as_mut().expect("opened above");
        let mut lines = Vec::with_capacity(entries.iter().map(|e| e.len() + 1).sum());
        for entry in entries {
            lines.extend_from_slice(entry);
            lines.push(b'\n');
        }
        f.write_all(&lines).and_then(|_| f.sync_data()).map_err(|e| self.err(JOURNAL, e))
    }

    async fn read_journal(&self) -> BackendResult<Vec<Vec<u8>>> {
        let Some(data) = self.read(JOURNAL).await? else { return Ok(Vec::new()) };
        // A line cut short by a crash mid-write has no newline: it is not an entry.
        let complete = match data.iter().rposition(|&b| b == b'\n') {
            Some(end) => &data[..=end],
            None => &[][..],
        };
        Ok(complete.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect())
    }

    async fn clear_journal(&self) -> BackendResult<()> {
        let mut guard = self.journal.lock().expect("journal lock poisoned");
        *guard = None;
        match std::fs::remove_file(self.dir.join(JOURNAL)) {
            Ok(()) => {
                self.sync_dir();
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.err(JOURNAL, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn journal_ignores_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        b.append_journal(&[b"{\"a\":1}".to_vec()]).await.unwrap();
        b.append_journal(&[b"{\"b\":2}".to_vec()]).await.unwrap();
        std::fs::OpenOptions::new().append(true).open(dir.path().join(JOURNAL)).unwrap().write_all(b"{\"c\":").unwrap();
        assert_eq!(b.read_journal().await.unwrap(), vec![b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()]);
        b.clear_journal().await.unwrap();
        assert!(b.read_journal().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn create_new_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("nested"));
        assert!(b.create_new("lock.json", b"1").await.unwrap());
        assert!(!b.create_new("lock.json", b"2").await.unwrap());
        assert_eq!(b.read("lock.json").await.unwrap().unwrap(), b"1");
        b.remove("lock.json").await.unwrap();
        b.remove("lock.json").await.unwrap();
        assert!(b.read("lock.json").await.unwrap().is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn compare_and_swap_lets_exactly_one_of_many_win() {
        let dir = tempfile::tempdir().unwrap();
        let b = std::sync::Arc::new(LocalBackend::new(dir.path()));
        assert!(b.create_new("lock.json", b"stale").await.unwrap());
        let mut tasks = Vec::new();
        for i in 0..16 {
            let b = b.clone();
            tasks.push(tokio::spawn(
                async move { b.replace_if("lock.json", b"stale", format!("t{i}").as_bytes()).await },
            ));
        }
        let mut winners = 0;
        for t in tasks {
            winners += t.await.unwrap().unwrap() as usize;
        }
        assert_eq!(winners, 1, "exactly one takeover of the same stale lock");
        let now = b.read("lock.json").await.unwrap().unwrap();
        assert!(!b.remove_if("lock.json", b"stale").await.unwrap(), "not the content it holds");
        assert!(b.remove_if("lock.json", &now).await.unwrap());
        assert!(!b.replace_if("lock.json", &now, b"x").await.unwrap(), "gone: nothing to replace");
    }
}
