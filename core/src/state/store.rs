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
    /// Part of a stack's state is there and part is missing: never read as an empty stack.
    #[error(transparent)]
    Incomplete(Box<Incomplete>),
    /// This run's lock was broken and taken by another run.
    #[error(
        "stack `{stack}`: this run no longer holds the lock ({now}), so it stopped writing state\n    fix: let that run finish, then run again: what this run did is in the journal and is recovered then"
    )]
    LockLost { stack: String, now: String },
    #[error(
        "stack `{stack}` is locked by {holder}\n    fix: wait for that run to finish; if it is gone (killed, machine lost), break the lock with `cargo xtask unlock {stack}`"
    )]
    Locked { stack: String, holder: Box<LockInfo> },
}

/// What is missing of a stack's state, what was found instead, and how to fix it.
#[derive(Debug, thiserror::Error)]
#[error("the state of stack `{stack}` at {place} is incomplete: {missing} is missing, but {found}\n    fix: {fix}")]
pub struct Incomplete {
    pub stack: String,
    pub place: String,
    pub missing: String,
    pub found: String,
    pub fix: String,
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

/// Whether process `pid` exists (a lock's holder on this host). `EPERM` (it exists, but belongs to
/// another user) means alive.
pub fn process_alive(pid: u32) -> bool {
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
    /// Replaced once, when another run wrote the key of a new stack first (see [`StateStore::load`]).
    cipher: std::sync::RwLock<Arc<Cipher>>,
    key: KeySource,
    /// A new key not yet written: written just before the first write of state, so that a run
    /// that writes nothing (a preview) leaves nothing behind.
    new_key: tokio::sync::Mutex<Option<NewKey>>,
    held_lock: std::sync::Mutex<Option<(LockInfo, Vec<u8>)>>,
    journal: GroupCommit,
}

/// What a store writes on first use so that its key can be found again.
struct NewKey {
    params: KeyParams,
    /// The key file's content (a generated key for local state without a passphrase).
    key_file: Option<String>,
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
        let mut new_key = None;
        if params.is_none() {
            // No key parameters: a new stack, unless anything else of a stack is already here. A
            // key is never made over state that may hold secrets, nor over a key file.
            let mut found = Vec::new();
            if backend.read(KEY_FILE).await?.is_some() {
                found.push(format!("the key file {KEY_FILE}"));
            }
            if let Some(snapshot) = backend.read(SNAPSHOT).await?
                && String::from_utf8_lossy(&snapshot).contains(crypto::ENCRYPTED_KEY)
            {
                found.push(format!("{SNAPSHOT}, which holds encrypted secrets"));
            }
            if !backend.read_journal().await?.is_empty() {
                found.push("a journal of unfinished operations".to_string());
            }
            if !found.is_empty() {
                return Err(StateError::Incomplete(Box::new(Incomplete {
                    stack: stack.to_string(),
                    place,
                    missing: format!("{KEY_PARAMS} (how this state's secrets are encrypted)"),
                    found: format!("found {}", found.join(", ")),
                    fix: format!(
                        "restore {KEY_PARAMS} from a backup of this directory or bucket; fabric never makes a new key over secrets it could then not read"
                    ),
                })));
            }
        }
        let cipher = match (params, &key) {
            (Some(p), key) => existing_cipher(backend.as_ref(), &place, &p, key).await?,
            (None, KeySource::Passphrase(pass)) => {
                let salt = crypto::random_salt();
                let c = Cipher::from_passphrase(pass, &crypto::decode_salt(&salt).map_err(StateError::Key)?)
                    .map_err(StateError::Key)?;
                let params = KeyParams { kdf: "argon2id".into(), salt, check: c.check_value() };
                new_key = Some(NewKey { params, key_file: None });
                c
            }
            (None, KeySource::LocalKeyFile) => {
                let key = Cipher::random_key();
                let c = Cipher::from_key(key);
                let params = KeyParams { kdf: "keyfile".into(), salt: String::new(), check: c.check_value() };
                new_key = Some(NewKey { params, key_file: Some(crypto::encode_key(&key)) });
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
            cipher: std::sync::RwLock::new(Arc::new(cipher)),
            key,
            new_key: tokio::sync::Mutex::new(new_key),
            held_lock: std::sync::Mutex::new(None),
            journal: GroupCommit::default(),
        })
    }

    /// Writes a new stack's key (parameters, and the key file of local state) before the first
    /// write of anything it encrypts. The key file is created, never overwritten.
    pub(super) async fn persist_new_key(&self) -> Result<(), StateError> {
        let mut pending = self.new_key.lock().await;
        let Some(new) = pending.as_ref() else { return Ok(()) };
        let place = self.backend.describe();
        // An empty snapshot first (it holds nothing to decrypt), then the key: no crash leaves a
        // key or a journal without a snapshot, which would read as lost state.
        if self.backend.read(SNAPSHOT).await?.is_none() {
            let empty = serde_json::to_value(State::new(&self.stack)).expect("state serializes");
            self.backend.write(SNAPSHOT, &serde_json::to_vec_pretty(&empty).expect("JSON serializes")).await?;
        }
        if let Some(key_file) = &new.key_file {
            if !self.backend.create_new(KEY_FILE, key_file.as_bytes()).await? {
                return Err(StateError::Incomplete(Box::new(Incomplete {
                    stack: self.stack.clone(),
                    place,
                    missing: KEY_PARAMS.to_string(),
                    found: format!("the key file {KEY_FILE} appeared while this run was starting"),
                    fix: format!("restore {KEY_PARAMS} from a backup; fabric never writes over a key file"),
                })));
            }
            restrict_key_file(&place);
        }
        if !self.backend.create_new(KEY_PARAMS, &serde_json::to_vec_pretty(&new.params).expect("serializable")).await? {
            return Err(StateError::Key(format!(
                "another run created the key of the state at {place} while this one was starting\n    fix: run again"
            )));
        }
        *pending = None;
        Ok(())
    }

    /// Fails when this store took the stack's lock and another run has since taken it.
    pub async fn check_lock(&self) -> Result<(), StateError> {
        let mine = self.held_lock.lock().expect("poisoned").clone();
        let Some((mine, _)) = mine else { return Ok(()) };
        match self.read_lock().await? {
            Some(now) if now.token == mine.token => Ok(()),
            Some(now) => Err(StateError::LockLost { stack: self.stack.clone(), now: format!("held by {now}") }),
            None => Err(StateError::LockLost { stack: self.stack.clone(), now: "it was broken".into() }),
        }
    }

    pub fn describe(&self) -> String {
        self.backend.describe()
    }

    pub(super) fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// `value` with its secrets encrypted by this state's key.
    pub(super) fn seal(&self, value: &serde_json::Value) -> serde_json::Value {
        self.cipher().seal(value)
    }

    /// `value` with its secrets decrypted.
    pub(super) fn open_sealed(&self, value: &serde_json::Value) -> Result<serde_json::Value, StateError> {
        self.cipher().open(value).map_err(StateError::Key)
    }

    fn cipher(&self) -> Arc<Cipher> {
        self.cipher.read().expect("cipher lock poisoned").clone()
    }

    /// A store opened on a new stack whose key another run has written since: take that key.
    async fn adopt_written_key(&self) -> Result<(), StateError> {
        let mut pending = self.new_key.lock().await;
        if pending.is_none() {
            return Ok(());
        }
        let place = self.backend.describe();
        let Some(bytes) = self.backend.read(KEY_PARAMS).await? else { return Ok(()) };
        let params: KeyParams = serde_json::from_slice(&bytes)
            .map_err(|e| StateError::Corrupt { place: format!("{place}/{KEY_PARAMS}"), message: e.to_string() })?;
        let cipher = existing_cipher(self.backend.as_ref(), &place, &params, &self.key).await?;
        *self.cipher.write().expect("cipher lock poisoned") = Arc::new(cipher);
        *pending = None;
        Ok(())
    }

    /// The snapshot with the journal replayed over it.
    pub async fn load(&self) -> Result<State, StateError> {
        self.adopt_written_key().await?;
        let place = self.backend.describe();
        let mut state = match self.backend.read(SNAPSHOT).await? {
            Some(bytes) => {
                // Parsed straight into the state (secrets lie only in its JSON values), then each
                // encrypted secret opened where it lies: no intermediate copy of the whole tree.
                let mut state: State = serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
                    place: format!("{place}/{SNAPSHOT}"),
                    message: e.to_string(),
                })?;
                let mut values: Vec<&mut serde_json::Value> = state.values_mut().collect();
                open_all(&self.cipher(), &mut values).map_err(StateError::Key)?;
                if state.version > STATE_VERSION {
                    return Err(StateError::Corrupt {
                        place,
                        message: format!("written by a newer fabric (state version {})", state.version),
                    });
                }
                state
            }
            None => {
                let journal_len = self.backend.read_journal().await?.len();
                let mut found = Vec::new();
                if self.new_key.lock().await.is_none() {
                    found.push(format!("its key ({KEY_PARAMS}) is there"));
                }
                if journal_len > 0 {
                    found.push(format!("its journal holds {journal_len} entries"));
                }
                let mine = self.held_lock.lock().expect("poisoned").as_ref().map(|(l, _)| l.token.clone());
                if let Some(lock) = self.read_lock().await?
                    && Some(&lock.token) != mine.as_ref()
                {
                    found.push(format!("it is locked by {lock}"));
                }
                if !found.is_empty() {
                    return Err(StateError::Incomplete(Box::new(Incomplete {
                        stack: self.stack.clone(),
                        place,
                        missing: SNAPSHOT.to_string(),
                        found: found.join(", and "),
                        fix: format!(
                            "restore {SNAPSHOT} from a backup (on S3 with versioning: its previous version); if this stack was never deployed, remove what was found"
                        ),
                    })));
                }
                State::new(&self.stack)
            }
        };
        for (i, line) in self.backend.read_journal().await?.into_iter().enumerate() {
            let mut sealed: serde_json::Value = serde_json::from_slice(&line).map_err(|e| StateError::Corrupt {
                place: format!("{place} journal entry {}", i + 1),
                message: e.to_string(),
            })?;
            self.cipher().open_in_place(&mut sealed).map_err(StateError::Key)?;
            let entry: JournalEntry = serde_json::from_value(sealed).map_err(|e| StateError::Corrupt {
                place: format!("{place} journal entry {}", i + 1),
                message: e.to_string(),
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
        let bytes = serde_json::to_vec(&self.cipher().seal(&value)).expect("JSON serializes");
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
                    let result = match self.persist_new_key().await {
                        Ok(()) => self.backend.append_journal(&entries).await,
                        Err(e) => Err(BackendError { place: self.backend.describe(), message: e.to_string() }),
                    };
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
        self.check_lock().await?;
        self.persist_new_key().await?;
        state.serial += 1;
        state.version = STATE_VERSION;
        let value = serde_json::to_value(&*state).expect("state serializes");
        let sealed = self.cipher().seal(&value);
        self.backend.write(SNAPSHOT, &serde_json::to_vec_pretty(&sealed).expect("JSON serializes")).await?;
        self.backend.clear_journal().await?;
        Ok(())
    }

    /// Takes the stack's lock, or fails naming its holder.
    pub async fn lock(&self, operation: &str) -> Result<(), StateError> {
        let me = LockInfo::for_this_process(operation);
        let bytes = serde_json::to_vec_pretty(&me).expect("lock info serializes");
        if self.backend.create_new(LOCK, &bytes).await? {
            *self.held_lock.lock().expect("poisoned") = Some((me, bytes));
            return Ok(());
        }
        let (holder, _) = self.read_lock_raw().await?.unwrap_or_else(|| (unknown_holder(), Vec::new()));
        Err(StateError::Locked { stack: self.stack.clone(), holder: Box::new(holder) })
    }

    /// Takes the lock; a lock whose holder `is_stale` judges gone is taken over by
    /// compare-and-swap on that very lock, so two runs that judged it stale cannot both win.
    /// Returns the holder taken over from, if any.
    pub async fn lock_or_take_over(
        &self,
        operation: &str,
        is_stale: impl Fn(&LockInfo) -> bool,
    ) -> Result<Option<LockInfo>, StateError> {
        match self.lock(operation).await {
            Ok(()) => return Ok(None),
            Err(StateError::Locked { .. }) => {}
            Err(e) => return Err(e),
        }
        let Some((holder, raw)) = self.read_lock_raw().await? else {
            // Released in between: try once more, plainly.
            return self.lock(operation).await.map(|()| None);
        };
        if !is_stale(&holder) {
            return Err(StateError::Locked { stack: self.stack.clone(), holder: Box::new(holder) });
        }
        let me = LockInfo::for_this_process(operation);
        let bytes = serde_json::to_vec_pretty(&me).expect("lock info serializes");
        if self.backend.replace_if(LOCK, &raw, &bytes).await? {
            *self.held_lock.lock().expect("poisoned") = Some((me, bytes));
            return Ok(Some(holder));
        }
        // Another run took it over first.
        let now = self.read_lock().await?.unwrap_or_else(unknown_holder);
        Err(StateError::Locked { stack: self.stack.clone(), holder: Box::new(now) })
    }

    pub async fn read_lock(&self) -> Result<Option<LockInfo>, StateError> {
        Ok(self.read_lock_raw().await?.map(|(l, _)| l))
    }

    async fn read_lock_raw(&self) -> Result<Option<(LockInfo, Vec<u8>)>, StateError> {
        let Some(raw) = self.backend.read(LOCK).await? else { return Ok(None) };
        let info = serde_json::from_slice(&raw).unwrap_or_else(|_| unknown_holder());
        Ok(Some((info, raw)))
    }

    /// Releases the lock this store took (and only that one: compare-and-swap on its content).
    pub async fn unlock(&self) -> Result<(), StateError> {
        let mine = self.held_lock.lock().expect("poisoned").take();
        if let Some((_, raw)) = mine {
            self.backend.remove_if(LOCK, &raw).await?;
        }
        Ok(())
    }

    /// Breaks whatever lock is held; returns who held it.
    pub async fn break_lock(&self) -> Result<Option<LockInfo>, StateError> {
        let Some((holder, raw)) = self.read_lock_raw().await? else { return Ok(None) };
        self.backend.remove_if(LOCK, &raw).await?;
        Ok(Some(holder))
    }
}

fn unknown_holder() -> LockInfo {
    LockInfo {
        pid: 0,
        host: "unknown".into(),
        started_at: "unknown".into(),
        operation: "unknown".into(),
        token: String::new(),
    }
}

/// The cipher of state whose key parameters are `p`, from `key`.
async fn existing_cipher(
    backend: &dyn Backend,
    place: &str,
    p: &KeyParams,
    key: &KeySource,
) -> Result<Cipher, StateError> {
    match key {
        KeySource::Passphrase(pass) if p.kdf == "argon2id" => {
            let c = Cipher::from_passphrase(pass, &crypto::decode_salt(&p.salt).map_err(StateError::Key)?)
                .map_err(StateError::Key)?;
            if !c.verify(&p.check) {
                return Err(StateError::Key(format!(
                    "FABRIC_PASSPHRASE does not match the passphrase the state at {place} was encrypted with\n    fix: set the passphrase this stack was first deployed with"
                )));
            }
            Ok(c)
        }
        _ if p.kdf == "argon2id" => Err(StateError::Key(format!(
            "the secrets in the state at {place} are encrypted with a passphrase\n    fix: set FABRIC_PASSPHRASE"
        ))),
        _ => {
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
            Ok(c)
        }
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

/// Below this many values, one thread opens them all (a thread costs more than it saves).
const PARALLEL_OPEN_FROM: usize = 2_000;

/// Opens each encrypted secret of `values` where it lies, on every core when there are many: the
/// decryption of a 10,000-resource state is a third of its load (`cargo xtask bench e2e`).
fn open_all(cipher: &Cipher, values: &mut [&mut serde_json::Value]) -> Result<(), String> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    if threads < 2 || values.len() < PARALLEL_OPEN_FROM {
        return values.iter_mut().try_for_each(|v| cipher.open_in_place(v));
    }
    let chunk = values.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = values
            .chunks_mut(chunk)
            .map(|part| scope.spawn(move || part.iter_mut().try_for_each(|v| cipher.open_in_place(v))))
            .collect();
        parts.into_iter().try_for_each(|part| part.join().expect("a decryption thread panicked"))
    })
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
            Record {
                type_name: "t".into(),
                inputs: inputs.clone(),
                outputs: json!({}),
                deps: vec![],
                options: Default::default(),
            },
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
    async fn a_state_of_many_secrets_is_opened_whole_and_a_damaged_one_is_refused() {
        // Enough values that they are opened on several threads (`open_all`).
        let dir = tempfile::tempdir().unwrap();
        let open = || async {
            StateStore::open(Arc::new(LocalBackend::new(dir.path())), "s", KeySource::LocalKeyFile).await.unwrap()
        };
        let store = open().await;
        let mut state = store.load().await.unwrap();
        let n = PARALLEL_OPEN_FROM * 2;
        for i in 0..n {
            state.resources.insert(
                Urn::new("s", "t", &format!("db{i}")),
                Record {
                    type_name: "t".into(),
                    inputs: json!({"password": {"$secret": format!("pw-{i}")}}),
                    outputs: json!({"url": {"$secret": format!("url-{i}")}}),
                    deps: vec![],
                    options: Default::default(),
                },
            );
        }
        store.save(&mut state).await.unwrap();
        let loaded = open().await.load().await.unwrap();
        assert_eq!(loaded.resources.len(), n);
        for i in 0..n {
            let r = &loaded.resources[&Urn::new("s", "t", &format!("db{i}"))];
            assert_eq!(r.inputs, json!({"password": {"$secret": format!("pw-{i}")}}));
            assert_eq!(r.outputs, json!({"url": {"$secret": format!("url-{i}")}}));
        }
        // One sealed value near the end damaged: the load fails, whichever thread opens it.
        let path = dir.path().join("state.json");
        let mut snapshot: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let last = snapshot["resources"].as_object_mut().unwrap().values_mut().last().unwrap();
        let sealed = last["inputs"]["password"][crypto::ENCRYPTED_KEY].as_str().unwrap().to_string();
        let damaged =
            format!("{}{}", &sealed[..sealed.len() - 4], if sealed.ends_with("AAAA") { "BBBB" } else { "AAAA" });
        last["inputs"]["password"][crypto::ENCRYPTED_KEY] = json!(damaged);
        std::fs::write(&path, serde_json::to_vec(&snapshot).unwrap()).unwrap();
        let err = open().await.load().await.expect_err("a damaged secret is refused");
        assert!(matches!(err, StateError::Key(_)), "{err}");
    }

    #[tokio::test]
    async fn passphrase_state_refuses_a_missing_or_wrong_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let b = || Arc::new(LocalBackend::new(dir.path()));
        let first = StateStore::open(b(), "s", KeySource::Passphrase("one".into())).await.unwrap();
        first.save(&mut first.load().await.unwrap()).await.unwrap();
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

    async fn deployed(dir: &std::path::Path) {
        let store = StateStore::open(Arc::new(LocalBackend::new(dir)), "s", KeySource::LocalKeyFile).await.unwrap();
        let mut state = store.load().await.unwrap();
        state.resources.insert(
            Urn::new("s", "t", "db"),
            Record {
                type_name: "t".into(),
                inputs: json!({"password": {"$secret": "hunter2"}}),
                outputs: json!({}),
                deps: vec![],
                options: Default::default(),
            },
        );
        store.save(&mut state).await.unwrap();
    }

    #[tokio::test]
    async fn a_missing_snapshot_is_an_error_not_an_empty_stack() {
        let dir = tempfile::tempdir().unwrap();
        deployed(dir.path()).await;
        std::fs::remove_file(dir.path().join(SNAPSHOT)).unwrap();
        let store =
            StateStore::open(Arc::new(LocalBackend::new(dir.path())), "s", KeySource::LocalKeyFile).await.unwrap();
        let err = store.load().await.unwrap_err().to_string();
        assert!(err.contains("state.json is missing") && err.contains("crypto.json) is there"), "{err}");
        assert!(err.contains("restore state.json"), "{err}");
    }

    #[tokio::test]
    async fn a_lost_key_is_never_regenerated_over_secrets() {
        let dir = tempfile::tempdir().unwrap();
        deployed(dir.path()).await;
        let key_before = std::fs::read(dir.path().join(KEY_FILE)).unwrap();
        std::fs::remove_file(dir.path().join(KEY_PARAMS)).unwrap();
        let err = StateStore::open(Arc::new(LocalBackend::new(dir.path())), "s", KeySource::LocalKeyFile)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("crypto.json") && err.contains("key file secret.key"), "{err}");
        assert!(err.contains("encrypted secrets"), "{err}");
        assert_eq!(std::fs::read(dir.path().join(KEY_FILE)).unwrap(), key_before, "the key file is untouched");
    }

    #[tokio::test]
    async fn a_new_stack_writes_nothing_until_it_writes_state() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            StateStore::open(Arc::new(LocalBackend::new(dir.path())), "s", KeySource::LocalKeyFile).await.unwrap();
        assert!(store.load().await.unwrap().resources.is_empty());
        assert!(!dir.path().join(KEY_PARAMS).exists() && !dir.path().join(KEY_FILE).exists());
        // A second run on the still-new stack is a new stack too.
        let again =
            StateStore::open(Arc::new(LocalBackend::new(dir.path())), "s", KeySource::LocalKeyFile).await.unwrap();
        assert!(again.load().await.is_ok());
        deployed(dir.path()).await;
        for f in [SNAPSHOT, KEY_PARAMS, KEY_FILE] {
            assert!(dir.path().join(f).exists(), "{f}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stale_lock_is_taken_over_by_exactly_one_run() {
        let dir = tempfile::tempdir().unwrap();
        let open = || async {
            Arc::new(
                StateStore::open(Arc::new(LocalBackend::new(dir.path())), "s", KeySource::LocalKeyFile).await.unwrap(),
            )
        };
        let dead = open().await;
        dead.lock("deploy").await.unwrap();
        let dead_token = dead.read_lock().await.unwrap().unwrap().token;
        let mut runs = Vec::new();
        for _ in 0..8 {
            let store = open().await;
            let dead_token = dead_token.clone();
            // Each run judges the dead run's lock stale, and only that one.
            runs.push(tokio::spawn(async move {
                store.lock_or_take_over("deploy", |h| h.token == dead_token).await.is_ok()
            }));
        }
        let mut won = 0;
        for r in runs {
            won += r.await.unwrap() as usize;
        }
        assert_eq!(won, 1, "two runs must never both hold the lock");
        // A live holder is never taken over.
        let live = open().await;
        let err = live.lock_or_take_over("deploy", |_| false).await.unwrap_err();
        assert!(matches!(err, StateError::Locked { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_run_whose_lock_was_taken_stops_writing() {
        let dir = tempfile::tempdir().unwrap();
        deployed(dir.path()).await;
        let open = || async {
            StateStore::open(Arc::new(LocalBackend::new(dir.path())), "s", KeySource::LocalKeyFile).await.unwrap()
        };
        let slow = open().await;
        slow.lock("deploy").await.unwrap();
        let mut state = slow.load().await.unwrap();
        let other = open().await;
        assert!(other.lock_or_take_over("deploy", |_| true).await.unwrap().is_some());
        let err = slow.save(&mut state).await.unwrap_err().to_string();
        assert!(err.contains("no longer holds the lock"), "{err}");
        // Its unlock leaves the new holder's lock alone.
        slow.unlock().await.unwrap();
        assert!(other.check_lock().await.is_ok());
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
        async fn replace_if(&self, name: &str, expected: &[u8], data: &[u8]) -> Result<bool, BackendError> {
            self.0.replace_if(name, expected, data).await
        }
        async fn remove_if(&self, name: &str, expected: &[u8]) -> Result<bool, BackendError> {
            self.0.remove_if(name, expected).await
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
