//! Refresh: read what is in the cloud (one batched read per resource type) and report drift.

use super::EngineError;
use super::plan::{FieldChange, diff};
use super::provider::{Ctx, Observed, Provider, RecordedItem};
use crate::model::Urn;
use crate::state::{Record, State};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One resource that differs from what state recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct Drift {
    pub urn: Urn,
    /// `None`: deleted outside fabric.
    pub observed: Option<Observed>,
    /// The fields that differ (empty when deleted).
    pub changes: Vec<FieldChange>,
}

/// What a refresh found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RefreshReport {
    pub read: usize,
    pub drift: Vec<Drift>,
}

impl RefreshReport {
    pub fn render(&self) -> String {
        if self.drift.is_empty() {
            return format!("refresh: read {} resources, no drift\n", self.read);
        }
        let mut out = format!("refresh: read {} resources, {} drifted:\n", self.read, self.drift.len());
        for d in &self.drift {
            match &d.observed {
                None => out.push_str(&format!("  ! {} was deleted outside fabric\n", d.urn.display_short())),
                Some(_) => {
                    out.push_str(&format!("  ~ {} changed outside fabric:\n", d.urn.display_short()));
                    for c in &d.changes {
                        for line in super::render::leaf_lines(&c.field, c.old.as_ref(), c.new.as_ref()) {
                            out.push_str(&format!("      {line}\n"));
                        }
                    }
                    for note in d.observed.iter().flat_map(|o| &o.notes) {
                        out.push_str(&format!("      ! {note}\n"));
                    }
                }
            }
        }
        out
    }
}

pub(super) async fn refresh(
    ctx: &Ctx,
    provider_of: impl Fn(&str) -> Option<Arc<dyn Provider>>,
    state: &State,
) -> Result<RefreshReport, EngineError> {
    let mut by_type: BTreeMap<&str, Vec<(&Urn, &Record)>> = BTreeMap::new();
    for (urn, rec) in &state.resources {
        by_type.entry(rec.type_name.as_str()).or_default().push((urn, rec));
    }
    let reads = by_type.into_iter().map(|(type_name, items)| {
        let provider = provider_of(type_name);
        async move {
            let provider =
                provider.ok_or_else(|| EngineError::Provider(format!("no provider for type `{type_name}`")))?;
            let batch: Vec<RecordedItem> = items
                .iter()
                .map(|(u, r)| RecordedItem { urn: (*u).clone(), inputs: r.inputs.clone(), outputs: r.outputs.clone() })
                .collect();
            let observed = provider
                .read_recorded(ctx, &batch)
                .await
                .map_err(|e| EngineError::Provider(format!("reading {type_name}: {e}")))?;
            Ok::<_, EngineError>(items.into_iter().zip(observed).collect::<Vec<_>>())
        }
    });
    let mut report = RefreshReport::default();
    for batch in futures::future::try_join_all(reads).await? {
        for ((urn, rec), observed) in batch {
            report.read += 1;
            match observed {
                None => report.drift.push(Drift { urn: urn.clone(), observed: None, changes: Vec::new() }),
                Some(o) => {
                    let o = Observed { inputs: o.over(&rec.inputs), outputs: o.outputs, notes: o.notes };
                    let changes = diff(&rec.inputs, &o.inputs, &[]);
                    if !changes.is_empty() || o.outputs != rec.outputs {
                        report.drift.push(Drift { urn: urn.clone(), observed: Some(o), changes });
                    }
                }
            }
        }
    }
    Ok(report)
}

/// Updates `state` in memory to what a refresh read (for `deploy --refresh` previews).
pub(super) fn apply_in_memory(state: &mut State, report: &RefreshReport) {
    for d in &report.drift {
        match &d.observed {
            None => {
                state.resources.remove(&d.urn);
            }
            Some(o) => {
                if let Some(r) = state.resources.get_mut(&d.urn) {
                    r.inputs = o.inputs.clone();
                    r.outputs = o.outputs.clone();
                }
            }
        }
    }
}
