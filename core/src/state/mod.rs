//! State: what fabric has created, as a snapshot plus a journal of operations since.
//!
//! Before a step starts its intent is appended to the journal (and made durable); after it, its
//! result. Loading replays the journal over the snapshot, so a run killed at any moment leaves a
//! state that says exactly which operations may have happened without being recorded
//! ([`State::pending`]); the next run resolves those against the cloud before it plans.

pub mod backend;
pub mod crypto;
pub mod history;
pub mod store;

use crate::model::{RecordedOptions, Urn};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub use backend::{Backend, LocalBackend};
pub use store::{LockInfo, StateStore};

/// One resource as fabric created it: its inputs at the time, the outputs the cloud returned, and
/// what it depended on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    #[serde(rename = "type")]
    pub type_name: String,
    pub inputs: Value,
    pub outputs: Value,
    #[serde(default)]
    pub deps: Vec<Urn>,
    /// The options that hold even when the resource leaves the program (protect, retain).
    #[serde(default, skip_serializing_if = "RecordedOptions::is_default")]
    pub options: RecordedOptions,
}

/// The kind of a step, as journalled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Create,
    Update,
    /// The create half of a replacement: the new instance; the old one is retired.
    Replace,
    Delete,
    /// The delete half of a replacement: the retired instance goes.
    DeleteRetired,
    /// Adopting an existing resource (recorded, then updated where the program differs).
    Import,
}

impl Op {
    /// The operation in words (`create`, `delete of the old instance`).
    pub fn verb(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Update => "update",
            Op::Replace => "replacement",
            Op::Delete => "delete",
            Op::DeleteRetired => "delete of the old instance",
            Op::Import => "import",
        }
    }
}

/// An operation whose intent was journalled but whose success was not.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub op: Op,
    #[serde(rename = "type")]
    pub type_name: String,
    /// The inputs the operation was started with (creates and updates).
    pub inputs: Value,
    #[serde(default)]
    pub deps: Vec<Urn>,
    /// The operation ended with an error (it may still have changed the cloud).
    #[serde(default)]
    pub failed: bool,
}

/// An old instance of a replaced resource, still to be deleted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Retired {
    pub urn: Urn,
    pub record: Record,
}

/// The state of one stack.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub stack: String,
    /// Bumped on every saved snapshot.
    pub serial: u64,
    pub resources: BTreeMap<Urn, Record>,
    #[serde(default)]
    pub retired: Vec<Retired>,
    #[serde(default)]
    pub pending: BTreeMap<Urn, Pending>,
    #[serde(default)]
    pub outputs: BTreeMap<String, Value>,
}

/// One journal line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum JournalEntry {
    Intent {
        urn: Urn,
        op: Op,
        #[serde(rename = "type")]
        type_name: String,
        inputs: Value,
        #[serde(default)]
        deps: Vec<Urn>,
    },
    Done {
        urn: Urn,
        op: Op,
        /// The new record (create, update, replace), or the deleted one (delete, delete_retired).
        record: Option<Record>,
    },
    Failed {
        urn: Urn,
        op: Op,
        error: String,
        /// The answer proved that nothing happened (every write the step sent was refused, or it
        /// sent none): the operation is settled, not pending.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        definite: bool,
    },
    /// A pending operation was found, against the cloud, not to have happened.
    Resolved {
        urn: Urn,
    },
    Outputs {
        outputs: BTreeMap<String, Value>,
    },
    /// A resource's record now lives under another URN (an alias in the program, `state mv`);
    /// references to it in other records follow.
    Renamed {
        from: Urn,
        to: Urn,
    },
    /// A resource's recorded options changed (protect, retain on delete).
    Options {
        urn: Urn,
        options: RecordedOptions,
    },
    /// A resource left state without being deleted (`state rm`, `retain_on_delete`, the source of
    /// a `state mv` to another stack). The record is kept here so that it can be put back.
    Forgotten {
        urn: Urn,
        record: Record,
    },
    /// A resource entered state without being created (an import, the target of a `state mv`
    /// from another stack, an undone `state rm`).
    Recorded {
        urn: Urn,
        record: Record,
    },
}

pub const STATE_VERSION: u32 = 1;

impl State {
    /// Every JSON value the state holds — each record's inputs and outputs (retired ones too), the
    /// inputs of pending operations, the stack's outputs: the only places a secret can be.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Value> {
        let records = self.resources.values_mut().chain(self.retired.iter_mut().map(|r| &mut r.record));
        records
            .flat_map(|r| [&mut r.inputs, &mut r.outputs])
            .chain(self.pending.values_mut().map(|p| &mut p.inputs))
            .chain(self.outputs.values_mut())
    }

    pub fn new(stack: &str) -> Self {
        State { version: STATE_VERSION, stack: stack.to_string(), ..State::default() }
    }

    /// Applies one journal entry.
    pub fn apply(&mut self, entry: &JournalEntry) {
        match entry {
            JournalEntry::Intent { urn, op, type_name, inputs, deps } => {
                self.pending.insert(
                    urn.clone(),
                    Pending {
                        op: *op,
                        type_name: type_name.clone(),
                        inputs: inputs.clone(),
                        deps: deps.clone(),
                        failed: false,
                    },
                );
            }
            JournalEntry::Done { urn, op, record } => {
                self.pending.remove(urn);
                match (op, record) {
                    (Op::Create | Op::Update | Op::Import, Some(r)) => {
                        self.resources.insert(urn.clone(), r.clone());
                    }
                    (Op::Replace, Some(r)) => {
                        // A "new" instance with the old one's outputs is the old one (a provider
                        // found it by name): it is kept, never retired.
                        if let Some(old) = self.resources.insert(urn.clone(), r.clone())
                            && old.outputs != r.outputs
                        {
                            self.retired.push(Retired { urn: urn.clone(), record: old });
                        }
                    }
                    (Op::Delete, _) => {
                        self.resources.remove(urn);
                    }
                    (Op::DeleteRetired, Some(r)) => {
                        if let Some(i) = self.retired.iter().position(|x| &x.urn == urn && &x.record == r) {
                            self.retired.remove(i);
                        }
                    }
                    _ => {}
                }
            }
            JournalEntry::Failed { urn, definite: true, .. } => {
                self.pending.remove(urn);
            }
            JournalEntry::Failed { urn, definite: false, .. } => {
                if let Some(p) = self.pending.get_mut(urn) {
                    p.failed = true;
                }
            }
            JournalEntry::Resolved { urn } => {
                self.pending.remove(urn);
            }
            JournalEntry::Outputs { outputs } => self.outputs = outputs.clone(),
            JournalEntry::Renamed { from, to } => {
                if let Some(record) = self.resources.remove(from) {
                    self.resources.insert(to.clone(), record);
                }
                for r in self.resources.values_mut() {
                    r.deps.iter_mut().filter(|d| *d == from).for_each(|d| *d = to.clone());
                }
                for r in self.retired.iter_mut().filter(|r| &r.urn == from) {
                    r.urn = to.clone();
                }
            }
            JournalEntry::Options { urn, options } => {
                if let Some(r) = self.resources.get_mut(urn) {
                    r.options = *options;
                }
            }
            JournalEntry::Forgotten { urn, .. } => {
                self.resources.remove(urn);
            }
            JournalEntry::Recorded { urn, record } => {
                self.resources.insert(urn.clone(), record.clone());
            }
        }
    }
}

impl JournalEntry {
    /// The entry that undoes this one, for the state commands (`state undo`): `None` for entries
    /// that changed the cloud, which only another deploy can undo.
    pub fn reverse(&self) -> Option<JournalEntry> {
        match self {
            JournalEntry::Renamed { from, to } => Some(JournalEntry::Renamed { from: to.clone(), to: from.clone() }),
            JournalEntry::Forgotten { urn, record } => {
                Some(JournalEntry::Recorded { urn: urn.clone(), record: record.clone() })
            }
            JournalEntry::Recorded { urn, record } => {
                Some(JournalEntry::Forgotten { urn: urn.clone(), record: record.clone() })
            }
            _ => None,
        }
    }
}

impl crate::model::Lookup for State {
    fn output(&self, urn: &Urn, field: &str) -> Option<Value> {
        self.resources.get(urn)?.outputs.get(field).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(id: &str) -> Record {
        Record {
            type_name: "t".into(),
            inputs: json!({}),
            outputs: json!({"id": id}),
            deps: vec![],
            options: Default::default(),
        }
    }

    #[test]
    fn replay_tracks_pending_and_results() {
        let u = Urn::new("s", "t", "a");
        let mut s = State::new("s");
        s.apply(&JournalEntry::Intent {
            urn: u.clone(),
            op: Op::Create,
            type_name: "t".into(),
            inputs: json!({}),
            deps: vec![],
        });
        assert!(s.pending.contains_key(&u));
        s.apply(&JournalEntry::Failed { urn: u.clone(), op: Op::Create, error: "boom".into(), definite: false });
        assert!(s.pending[&u].failed, "a failed create stays pending: it may have created something");
        let definite = JournalEntry::Failed { urn: u.clone(), op: Op::Create, error: "refused".into(), definite: true };
        let line = serde_json::to_string(&definite).unwrap();
        assert!(line.contains("\"definite\":true"), "{line}");
        let mut settled = s.clone();
        settled.apply(&serde_json::from_str(&line).unwrap());
        assert!(settled.pending.is_empty(), "a definite failure settles the step: nothing happened");
        let lost: JournalEntry =
            serde_json::from_str(r#"{"event":"failed","urn":"s::t::a","op":"create","error":"x"}"#).unwrap();
        assert!(matches!(lost, JournalEntry::Failed { definite: false, .. }), "journals written before stay pending");
        s.apply(&JournalEntry::Done { urn: u.clone(), op: Op::Create, record: Some(rec("1")) });
        assert!(s.pending.is_empty());
        s.apply(&JournalEntry::Done { urn: u.clone(), op: Op::Replace, record: Some(rec("2")) });
        assert_eq!(s.resources[&u].outputs["id"], "2");
        assert_eq!(s.retired.len(), 1);
        s.apply(&JournalEntry::Done { urn: u.clone(), op: Op::DeleteRetired, record: Some(rec("1")) });
        assert!(s.retired.is_empty());
        s.apply(&JournalEntry::Done { urn: u.clone(), op: Op::Delete, record: None });
        assert!(s.resources.is_empty());
    }
}
