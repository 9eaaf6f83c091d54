//! Deploy history: every deploy, destroy, refresh, import and state command of a stack, kept in
//! its backend beside the state (`history.json`, and one `history-<id>.json` per entry with the
//! desired inputs and the state changes, secrets encrypted as in state).

use super::JournalEntry;
use super::store::{StateError, StateStore};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

const INDEX: &str = "history.json";

/// One recorded operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// 1, 2, 3 … per stack.
    pub id: u64,
    /// RFC 3339, UTC.
    pub time: String,
    /// Who ran it: the AWS caller identity (an ARN), else the local user.
    pub user: String,
    /// The git commit of the stack program (`-dirty` with uncommitted changes), if in a repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// `deploy`, `destroy`, `refresh`, `import`, `state rm`, …
    pub operation: String,
    /// The plan's summary, or what the command did.
    pub summary: String,
    /// `succeeded`, `failed: …`, `interrupted`.
    pub outcome: String,
    /// The policy waivers the run relied on (a deploy), one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waivers: Vec<String>,
}

/// What an entry keeps beyond its line: the desired inputs after it (for `diff`), and the state
/// changes of a state command (for `state undo`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HistoryDetail {
    #[serde(default)]
    pub inputs: BTreeMap<String, Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<JournalEntry>,
    /// What each resource depended on (deploys and rollbacks since detail format 2): with
    /// `inputs`, what `rollback` needs to apply the revision again in dependency order.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub deps: BTreeMap<String, Vec<crate::model::Urn>>,
    /// The stack outputs after the run.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, Value>,
    /// The policy waivers the run relied on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waivers: Vec<crate::model::policy::Waiver>,
    /// 2 for a detail `rollback` can return to (it has `deps`); absent (0) before.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub format: u32,
}

/// The detail format `rollback` can return to.
pub const REVISION_FORMAT: u32 = 2;

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn detail_name(id: u64) -> String {
    format!("history-{id:06}.json")
}

impl StateStore {
    /// The stack's history, oldest first.
    pub async fn history(&self) -> Result<Vec<HistoryEntry>, StateError> {
        match self.backend().read(INDEX).await? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
                place: format!("{}/{INDEX}", self.describe()),
                message: e.to_string(),
            }),
            None => Ok(Vec::new()),
        }
    }

    /// Appends `entry` (its id is assigned) with its detail; returns the id. Called under the
    /// stack's lock, so ids never collide.
    pub async fn record_history(&self, mut entry: HistoryEntry, detail: &HistoryDetail) -> Result<u64, StateError> {
        self.persist_new_key().await?;
        let mut all = self.history().await?;
        entry.id = all.last().map(|e| e.id + 1).unwrap_or(1);
        let sealed = self.seal(&serde_json::to_value(detail).expect("history serializes"));
        self.backend().write(&detail_name(entry.id), &serde_json::to_vec(&sealed).expect("JSON")).await?;
        let id = entry.id;
        all.push(entry);
        self.backend().write(INDEX, &serde_json::to_vec_pretty(&all).expect("JSON")).await?;
        Ok(id)
    }

    /// The detail of entry `id`, secrets decrypted.
    pub async fn history_detail(&self, id: u64) -> Result<Option<HistoryDetail>, StateError> {
        let name = detail_name(id);
        let Some(bytes) = self.backend().read(&name).await? else { return Ok(None) };
        let corrupt = |message: String| StateError::Corrupt { place: format!("{}/{name}", self.describe()), message };
        let sealed: Value = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        let plain = self.open_sealed(&sealed)?;
        serde_json::from_value(plain).map(Some).map_err(|e| corrupt(e.to_string()))
    }
}

/// Now, as history writes it.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// The git commit of the program in `dir` (`<sha>` or `<sha>-dirty`), if it is in a repository.
pub fn git_commit(dir: &std::path::Path) -> Option<String> {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let sha = run(&["rev-parse", "--short=12", "HEAD"]).filter(|s| !s.is_empty())?;
    let dirty = run(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{sha}-dirty") } else { sha })
}

/// The local user, when the cloud cannot say who is calling.
pub fn local_user() -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into());
    format!("{user}@{}", super::store::hostname())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::store::KeySource;
    use crate::state::{LocalBackend, Record};
    use serde_json::json;
    use std::sync::Arc;

    #[tokio::test]
    async fn entries_get_ids_in_order_and_details_keep_secrets_encrypted() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Arc::new(LocalBackend::new(dir.path()));
        let store = StateStore::open(backend, "s", KeySource::LocalKeyFile).await.unwrap();
        let entry = |op: &str| HistoryEntry {
            id: 0,
            time: now(),
            user: "me".into(),
            commit: None,
            operation: op.into(),
            summary: String::new(),
            outcome: "succeeded".into(),
            waivers: vec![],
        };
        let mut detail = HistoryDetail::default();
        detail.inputs.insert("s::t::db".into(), json!({"password": {"$secret": "hunter2"}}));
        detail.entries.push(JournalEntry::Forgotten {
            urn: crate::model::Urn::new("s", "t", "db"),
            record: Record {
                type_name: "t".into(),
                inputs: json!({}),
                outputs: json!({}),
                deps: vec![],
                options: Default::default(),
            },
        });
        assert_eq!(store.record_history(entry("deploy"), &detail).await.unwrap(), 1);
        assert_eq!(store.record_history(entry("destroy"), &HistoryDetail::default()).await.unwrap(), 2);
        let all = store.history().await.unwrap();
        assert_eq!(
            all.iter().map(|e| (e.id, e.operation.as_str())).collect::<Vec<_>>(),
            [(1, "deploy"), (2, "destroy")]
        );
        assert_eq!(store.history_detail(1).await.unwrap().unwrap(), detail);
        let raw = std::fs::read_to_string(dir.path().join("history-000001.json")).unwrap();
        assert!(!raw.contains("hunter2"), "secrets are encrypted at rest: {raw}");
        assert!(store.history_detail(9).await.unwrap().is_none());
    }
}
