//! The state of one stack in one backend: load (snapshot + journal), journal, save, lock.

use super::backend::{Backend, BackendError};
use super::crypto::{self, Cipher, KeyParams};
use super::{JournalEntry, STATE_VERSION, State};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

const SNAPSHOT: &str = "state.json";
const LOCK: &str = "lock.json";
const KEY_PARAMS: &str = "crypto.json";
const KEY_FILE: &str = "secret.key";

/// Errors of loading, writing or locking state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("state {place} is corrupt: {message}")]
    Corrupt { place: String, message: String },
    #[error("{0}")]
    Key(String),
    #[error(
        "stack `{stack}` is locked by {holder}\n    fix: wait for that run to finish; if it is gone (killed, machine lost), break the lock with `cargo xtask unlock {stack}`"
    )]
    Locked { stack: String, holder: Box<LockInfo> },
}

/// Who holds a stack's lock.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LockInfo {
    pub pid: u32,
    pub host: String,
    pub started_at: String,
    pub operation: String,
    pub token: String,
}

impl std::fmt::Display for LockInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} on host {} ({}, started {})", self.pid, self.host, self.operation, self.started_at)?;
        if self.host == hostname() && !process_alive(self.pid) {
            f.write_str(" — that process is no longer running")?;
        }
        Ok(())
    }
}

impl LockInfo {
    pub fn for_this_process(operation: &str) -> Self {
        LockInfo {
            pid: std::process::id(),
            host: hostname(),
            started_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            operation: operation.to_string(),
            token: crypto::random_salt(),
        }
    }
}

pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn process_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Where the key for secrets may come from.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// `FABRIC_PASSPHRASE`.
    Passphrase(String),
    /// A key file generated beside local state.
    LocalKeyFile,
    /// No passphrase and a remote backend: secrets cannot be stored.
    None,
}

impl KeySource {
    /// `FABRIC_PASSPHRASE` if set; otherwise a key file when the backend is local.
    pub fn from_env(local_backend: bool) -> Self {
        match std::env::var("FABRIC_PASSPHRASE") {
            Ok(p) if !p.is_empty() => KeySource::Passphrase(p),
            _ if local_backend => KeySource::LocalKeyFile,
            _ => KeySource::None,
        }
    }
}

/// One stack's state in one backend.
pub struct StateStore {
    backend: Arc<dyn Backend>,
    stack: String,
    cipher: Cipher,
    held_lock: std::sync::Mutex<Option<LockInfo>>,
    journal: GroupCommit,
}

/// A place in the journal: [`StateStore::durable`] waits until it is on disk.
#[must_use = "an entry is durable only once `durable` returns"]
pub struct Ticket(u64);

/// Group commit: entries queue in order; whoever finds no flush under way flushes everything
/// queued with one write and one sync, and every waiter whose entry was in it is released.
#[derive(Default)]
struct GroupCommit {
    queue: std::sync::Mutex<Queue>,
    flushed: tokio::sync::watch::Sender<(u64, Option<String>)>,
}

#[derive(Default)]
struct Queue {
    next: u64,
    pending: Vec<Vec<u8>>,
    flushing: bool,
}

impl StateStore {
    /// Opens the store and its key: creates the key parameters on first use, checks them after.
    pub async fn open(backend: Arc<dyn Backend>, stack: &str, key: KeySource) -> Result<Self, StateError> {
        let place = backend.describe();
        let params: Option<KeyParams> =
            match backend.read(KEY_PARAMS).await? {
                Some(b) => Some(serde_json::from_slice(&b).map_err(|e| StateError::Corrupt {
                    place: format!("{place}/{KEY_PARAMS}"),
                    message: e.to_string(),
                })?),
                None => None,
            };
        let cipher = match (params, &key) {
            (Some(p), KeySource::Passphrase(pass)) if p.kdf == "argon2id" => {
                let c = Cipher::from_passphrase(pass, &crypto::decode_salt(&p.salt).map_err(StateError::Key)?)
                    .map_err(StateError::Key)?;
                if !c.verify(&p.check) {
                    return Err(StateError::Key(format!(
                        "FABRIC_PASSPHRASE does not match the passphrase the state at {place} was encrypted with\n    fix: set the passphrase this stack was first deployed with"
                    )));
                }
                c
            }
            (Some(p), _) if p.kdf == "argon2id" => {
                return Err(StateError::Key(format!(
                    "the secrets in the state at {place} are encrypted with a passphrase\n    fix: set FABRIC_PASSPHRASE"
                )));
            }
            (Some(p), _) => {
                let Some(k) = backend.read(KEY_FILE).await? else {
                    return Err(StateError::Key(format!(
                        "the key file {place}/{KEY_FILE} that encrypts this state's secrets is missing\n    fix: restore it from a backup"
                    )));
                };
                let k = crypto::decode_key(&String::from_utf8_lossy(&k)).map_err(StateError::Key)?;
                let c = Cipher::from_key(k);
                if !c.verify(&p.check) {
                    return Err(StateError::Key(format!("the key file {place}/{KEY_FILE} does not match this state")));
                }
                c
            }
            (None, KeySource::Passphrase(pass)) => {
                let salt = crypto::random_salt();
                let c = Cipher::from_passphrase(pass, &crypto::decode_salt(&salt).map_err(StateError::Key)?)
                    .map_err(StateError::Key)?;
                let p = KeyParams { kdf: "argon2id".into(), salt, check: c.check_value() };
                backend.write(KEY_PARAMS, &serde_json::to_vec_pretty(&p).expect("serializable")).await?;
                c
            }
            (None, KeySource::LocalKeyFile) => {
                let key = Cipher::random_key();
                backend.write(KEY_FILE, crypto::encode_key(&key).as_bytes()).await?;
                restrict_key_file(&place);
                let c = Cipher::from_key(key);
                let p = KeyParams { kdf: "keyfile".into(), salt: String::new(), check: c.check_value() };
                backend.write(KEY_PARAMS, &serde_json::to_vec_pretty(&p).expect("serializable")).await?;
                c
            }
            (None, KeySource::None) => {
                return Err(StateError::Key(format!(
                    "state at {place} needs a key to encrypt secrets\n    fix: set FABRIC_PASSPHRASE (remote state never keeps its key beside it)"
                )));
            }
        };
        Ok(StateStore {
            backend,
            stack: stack.to_string(),
            cipher,
            held_lock: std::sync::Mutex::new(None),
            journal: GroupCommit::default(),
        })
    }

    pub fn describe(&self) -> String {
        self.backend.describe()
    }

    /// The snapshot with the journal replayed over it.
    pub async fn load(&self) -> Result<State, StateError> {
        let place = self.backend.describe();
        let mut state = match self.backend.read(SNAPSHOT).await? {
            Some(bytes) => {
                let sealed: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
                    place: format!("{place}/{SNAPSHOT}"),
                    message: e.to_string(),
                })?;
                let plain = self.cipher.open(&sealed).map_err(StateError::Key)?;
                let state: State = serde_json::from_value(plain).map_err(|e| StateError::Corrupt {
                    place: format!("{place}/{SNAPSHOT}"),
                    message: e.to_string(),
                })?;
                if state.version > STATE_VERSION {
                    return Err(StateError::Corrupt {
                        place,
                        message: format!("written by a newer fabric (state version {})", state.version),
                    });
                }
                state
            }
            None => State::new(&self.stack),
        };
        for (i, line) in self.backend.read_journal().await?.into_iter().enumerate() {
            let sealed: serde_json::Value = serde_json::from_slice(&line).map_err(|e| StateError::Corrupt {
                place: format!("{place} journal entry {}", i + 1),
                message: e.to_string(),
            })?;
            let entry: JournalEntry =
                serde_json::from_value(self.cipher.open(&sealed).map_err(StateError::Key)?).map_err(|e| {
                    StateError::Corrupt { place: format!("{place} journal entry {}", i + 1), message: e.to_string() }
                })?;
            state.apply(&entry);
        }
        Ok(state)
    }

    /// Appends an entry to the journal durably, secrets encrypted.
    pub async fn record(&self, entry: &JournalEntry) -> Result<(), StateError> {
        let ticket = self.enqueue(entry);
        self.durable(ticket).await
    }

    /// Queues an entry (secrets encrypted) behind every entry queued before it; it is durable once
    /// [`StateStore::durable`] returns. Callers that must keep the journal in the order of their
    /// own state changes enqueue under their own lock and wait outside it.
    pub fn enqueue(&self, entry: &JournalEntry) -> Ticket {
        let value = serde_json::to_value(entry).expect("journal entries serialize");
        let bytes = serde_json::to_vec(&self.cipher.seal(&value)).expect("JSON serializes");
        let mut q = self.journal.queue.lock().expect("journal queue poisoned");
        q.next += 1;
        q.pending.push(bytes);
        Ticket(q.next)
    }

    /// Waits until the entry of `ticket` (and everything before it) is durable.
    pub async fn durable(&self, ticket: Ticket) -> Result<(), StateError> {
        let mut flushed = self.journal.flushed.subscribe();
        loop {
            {
                let (done, failed) = &*flushed.borrow_and_update();
                if let Some(e) = failed {
                    return Err(StateError::Backend(BackendError {
                        place: self.backend.describe(),
                        message: e.clone(),
                    }));
                }
                if *done >= ticket.0 {
                    return Ok(());
                }
            }
            let batch = {
                let mut q = self.journal.queue.lock().expect("journal queue poisoned");
                if q.flushing || q.pending.is_empty() {
                    None
                } else {
                    q.flushing = true;
                    Some((std::mem::take(&mut q.pending), q.next))
                }
            };
            match batch {
                Some((entries, last)) => {
                    let result = self.backend.append_journal(&entries).await;
                    self.journal.queue.lock().expect("journal queue poisoned").flushing = false;
                    match result {
                        Ok(()) => self.journal.flushed.send_modify(|v| v.0 = last),
                        Err(e) => {
                            self.journal.flushed.send_modify(|v| v.1 = Some(e.message.clone()));
                            return Err(e.into());
                        }
                    }
                }
                None => {
                    if flushed.changed().await.is_err() {
                        return Err(StateError::Key("journal closed".into()));
                    }
                }
            }
        }
    }

    /// Writes `state` as the new snapshot (secrets encrypted) and clears the journal it absorbed.
    pub async fn save(&self, state: &mut State) -> Result<(), StateError> {
        state.serial += 1;
        state.version = STATE_VERSION;
        let value = serde_json::to_value(&*state).expect("state serializes");
        let sealed = self.cipher.seal(&value);
        self.backend.write(SNAPSHOT, &serde_json::to_vec_pretty(&sealed).expect("JSON serializes")).await?;
        self.backend.clear_journal().await?;
        Ok(())
    }

    /// Takes the stack's lock, or fails naming its holder.
    pub async fn lock(&self, operation: &str) -> Result<(), StateError> {
        let me = LockInfo::for_this_process(operation);
        let bytes = serde_json::to_vec_pretty(&me).expect("lock info serializes");
        if self.backend.create_new(LOCK, &bytes).await? {
            *self.held_lock.lock().expect("poisoned") = Some(me);
            return Ok(());
        }
        let holder = self.read_lock().await?.unwrap_or_else(|| LockInfo {
            pid: 0,
            host: "unknown".into(),
            started_at: "unknown".into(),
            operation: "unknown".into(),
            token: String::new(),
        });
        Err(StateError::Locked { stack: self.stack.clone(), holder: Box::new(holder) })
    }

    pub async fn read_lock(&self) -> Result<Option<LockInfo>, StateError> {
        Ok(self.backend.read(LOCK).await?.and_then(|b| serde_json::from_slice(&b).ok()))
    }

    /// Releases the lock this store took (and only that one).
    pub async fn unlock(&self) -> Result<(), StateError> {
        let mine = self.held_lock.lock().expect("poisoned").take();
        if let Some(mine) = mine
            && self.read_lock().await?.is_some_and(|l| l.token == mine.token)
        {
            self.backend.remove(LOCK).await?;
        }
        Ok(())
    }

    /// Breaks whatever lock is held; returns who held it.
    pub async fn break_lock(&self) -> Result<Option<LockInfo>, StateError> {
        let holder = self.read_lock().await?;
        self.backend.remove(LOCK).await?;
        Ok(holder)
    }
}

fn restrict_key_file(place: &str) {
    #[cfg(unix)]
    if let Some(dir) = place.strip_prefix("file://") {
        use std::os::unix::fs::PermissionsExt;
        let _ =
            std::fs::set_permissions(std::path::Path::new(dir).join(KEY_FILE), std::fs::Permissions::from_mode(0o600));
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Op, Record};
    use super::*;
    use crate::model::Urn;
    use crate::state::LocalBackend;
    use serde_json::json;

    #[tokio::test]
    async fn secrets_never_reach_disk_in_plain_text() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            StateStore::open(Arc::new(LocalBackend::new(dir.path())), "s", KeySource::LocalKeyFile).await.unwrap();
        let urn = Urn::new("s", "t", "db");
        let inputs = json!({"password": {"$secret": "hunter2"}});
        store
            .record(&JournalEntry::Intent {
                urn: urn.clone(),
                op: Op::Create,
                type_name: "t".into(),
                inputs: inputs.clone(),
                deps: vec![],
            })
            .await
            .unwrap();
        let journal = std::fs::read_to_string(dir.path().join("journal.jsonl")).unwrap();
        assert!(!journal.contains("hunter2"));
        let mut state = store.load().await.unwrap();
        assert_eq!(state.pending[&urn].inputs, inputs);
        state.resources.insert(
            urn.clone(),
            Record { type_name: "t".into(), inputs: inputs.clone(), outputs: json!({}), deps: vec![] },
        );
        store.save(&mut state).await.unwrap();
        let snapshot = std::fs::read_to_string(dir.path().join("state.json")).unwrap();
        assert!(!snapshot.contains("hunter2"));
        // A second open with the same key file reads it back.
        let again =
            StateStore::open(Arc::new(LocalBackend::new(dir.path())), "s", KeySource::LocalKeyFile).await.unwrap();
        assert_eq!(again.load().await.unwrap().resources[&urn].inputs, inputs);
    }

    #[tokio::test]
    async fn passphrase_state_refuses_a_missing_or_wrong_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let b = || Arc::new(LocalBackend::new(dir.path()));
        StateStore::open(b(), "s", KeySource::Passphrase("one".into())).await.unwrap();
        let wrong = StateStore::open(b(), "s", KeySource::Passphrase("two".into())).await.err().unwrap();
        assert!(wrong.to_string().contains("does not match"), "{wrong}");
        let missing = StateStore::open(b(), "s", KeySource::LocalKeyFile).await.err().unwrap();
        assert!(missing.to_string().contains("set FABRIC_PASSPHRASE"), "{missing}");
    }

    #[tokio::test]
    async fn a_second_lock_names_the_holder_and_can_be_broken() {
        let dir = tempfile::tempdir().unwrap();
        let a = StateStore::open(Arc::new(LocalBackend::new(dir.path())), "s", KeySource::LocalKeyFile).await.unwrap();
        let b = StateStore::open(Arc::new(LocalBackend::new(dir.path())), "s", KeySource::LocalKeyFile).await.unwrap();
        a.lock("deploy").await.unwrap();
        let err = b.lock("deploy").await.err().unwrap().to_string();
        assert!(err.contains(&format!("pid {}", std::process::id())), "{err}");
        assert!(err.contains("cargo xtask unlock s"), "{err}");
        b.unlock().await.unwrap(); // b holds nothing: a's lock stays
        assert!(b.lock("deploy").await.is_err());
        assert_eq!(b.break_lock().await.unwrap().unwrap().operation, "deploy");
        b.lock("deploy").await.unwrap();
        b.unlock().await.unwrap();
        assert!(a.read_lock().await.unwrap().is_none());
    }

    /// Counts journal flushes of a local backend.
    struct Counting(LocalBackend, std::sync::atomic::AtomicUsize);

    #[async_trait::async_trait]
    impl Backend for Counting {
        fn describe(&self) -> String {
            self.0.describe()
        }
        async fn read(&self, name: &str) -> Result<Option<Vec<u8>>, BackendError> {
            self.0.read(name).await
        }
        async fn write(&self, name: &str, data: &[u8]) -> Result<(), BackendError> {
            self.0.write(name, data).await
        }
        async fn create_new(&self, name: &str, data: &[u8]) -> Result<bool, BackendError> {
            self.0.create_new(name, data).await
        }
        async fn remove(&self, name: &str) -> Result<(), BackendError> {
            self.0.remove(name).await
        }
        async fn append_journal(&self, entries: &[Vec<u8>]) -> Result<(), BackendError> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            self.0.append_journal(entries).await
        }
        async fn read_journal(&self) -> Result<Vec<Vec<u8>>, BackendError> {
            self.0.read_journal().await
        }
        async fn clear_journal(&self) -> Result<(), BackendError> {
            self.0.clear_journal().await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_entries_share_flushes_and_keep_their_order() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Arc::new(Counting(LocalBackend::new(dir.path()), Default::default()));
        let store = Arc::new(StateStore::open(backend.clone(), "s", KeySource::LocalKeyFile).await.unwrap());
        let order = Arc::new(tokio::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..200 {
            let (store, order) = (store.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let urn = Urn::new("s", "t", &format!("r{i}"));
                let entry = JournalEntry::Resolved { urn: urn.clone() };
                let ticket = {
                    let mut o = order.lock().await;
                    o.push(urn);
                    store.enqueue(&entry)
                };
                store.durable(ticket).await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let flushes = backend.1.load(std::sync::atomic::Ordering::SeqCst);
        assert!(flushes < 100, "200 entries took {flushes} flushes");
        let journal = backend.0.read_journal().await.unwrap();
        assert_eq!(journal.len(), 200);
        let in_journal: Vec<String> = journal
            .iter()
            .map(|l| serde_json::from_slice::<serde_json::Value>(l).unwrap()["urn"].as_str().unwrap().to_string())
            .collect();
        let queued: Vec<String> = order.lock().await.iter().map(|u| u.to_string()).collect();
        assert_eq!(in_journal, queued, "the journal keeps the order entries were queued in");
    }
}
