//! The day-2 verbs: `import`, `state …`, `history`, `diff`, and the history every mutating verb
//! writes.

use super::{Cli, confirm, fail};
use crate::aws::AwsCtx;
use crate::engine::render::{leaf_lines, render_plan};
use crate::engine::{Engine, PlanInputs, Selection, Session, StepOp, plan_with};
use crate::model::{Graph, Urn, contains_unknown};
use crate::state::history::{HistoryDetail, HistoryEntry, git_commit, local_user, now};
use crate::state::{JournalEntry, Record, State, StateStore};
use clap::Subcommand;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Subcommand, Debug)]
pub(super) enum StateCmd {
    /// Every resource in state: URN, cloud id, options.
    List,
    /// One resource's record (secrets masked unless --show-secrets).
    Show {
        urn: String,
        #[arg(long)]
        show_secrets: bool,
    },
    /// Forget a resource without deleting it (it stays in the cloud).
    Rm { urn: String },
    /// Give a resource's record another URN (a name in this stack, or a URN of --to-stack).
    Mv {
        from: String,
        to: String,
        /// Move it into another stack's state (same backend).
        #[arg(long)]
        to_stack: Option<String>,
    },
    /// Lift a resource's `protect` (recorded in state), so that it can be deleted or replaced.
    Unprotect { urn: String },
    /// Reverse a state command (`rm`, `mv`, `unprotect`, an import) by its history id.
    Undo { id: u64 },
    /// Say that a pending operation recovery could not settle did not happen (a create that made
    /// nothing): it leaves the journal, and the next deploy plans it again.
    Settle { urn: String },
}

/// Where the state of any stack of this backend lives (for `state mv --to-stack`, stack
/// references): a local directory's siblings, or the same bucket and prefix.
#[derive(Clone)]
pub enum StateLocator {
    Local(std::path::PathBuf),
    S3 { client: aws_sdk_s3::Client, bucket: String, prefix: String },
}

impl StateLocator {
    pub fn backend(&self, stack: &str) -> Arc<dyn crate::state::Backend> {
        match self {
            StateLocator::Local(parent) => Arc::new(crate::state::LocalBackend::new(parent.join(stack))),
            StateLocator::S3 { client, bucket, prefix } => {
                Arc::new(crate::state::s3::S3Backend::new(client.clone(), bucket, prefix, stack))
            }
        }
    }

    pub fn is_local(&self) -> bool {
        matches!(self, StateLocator::Local(_))
    }
}

/// Who runs this: the AWS caller identity, else (no credentials, no network within 5 s) the
/// local user.
pub(super) async fn who(engine: &Engine) -> String {
    if let Ok(aws) = engine.ctx.aws()
        && let Ok(Ok(me)) =
            tokio::time::timeout(std::time::Duration::from_secs(5), aws.sts.get_caller_identity().send()).await
        && let Some(arn) = me.arn()
    {
        return arn.to_string();
    }
    local_user()
}

/// Appends one line to the stack's history; a history that cannot be written is a warning, never
/// a reason to lose what was done.
pub(super) async fn record_history(
    engine: &Engine,
    operation: &str,
    summary: String,
    outcome: String,
    detail: HistoryDetail,
) -> Option<u64> {
    let entry = HistoryEntry {
        id: 0,
        time: now(),
        user: who(engine).await,
        commit: std::env::current_dir().ok().and_then(|d| git_commit(&d)),
        operation: operation.to_string(),
        summary,
        outcome,
        waivers: detail.waivers.iter().map(|w| w.describe()).collect(),
    };
    match engine.store.record_history(entry, &detail).await {
        Ok(id) => Some(id),
        Err(e) => {
            eprintln!("warning: the history of this {operation} could not be written: {e}");
            None
        }
    }
}

/// The desired inputs of every resource of the program, resolved against `state` (what `diff`
/// compares between two deploys).
pub(super) fn desired_inputs(graph: &Graph, state: &State) -> BTreeMap<String, Value> {
    graph
        .nodes()
        .iter()
        .filter_map(|n| {
            let inputs = n.inputs(state).ok()?;
            let recorded = state.resources.get(&n.urn);
            Some((n.urn.to_string(), crate::engine::plan::effective_inputs(inputs, recorded, &n.options)))
        })
        .collect()
}

/// `Plan: 1 to create, …` as one line.
pub(super) fn summary_line(plan: &crate::engine::Plan) -> String {
    let s = plan.summary();
    let mut parts = Vec::new();
    for (n, what) in
        [(s.import, "import"), (s.create, "create"), (s.update, "update"), (s.replace, "replace"), (s.delete, "delete")]
    {
        if n > 0 {
            parts.push(format!("{n} to {what}"));
        }
    }
    let mut line = if parts.is_empty() { "no changes".to_string() } else { parts.join(", ") };
    line.push_str(&format!(", {} unchanged", s.same));
    if plan.partial.is_some() {
        line.push_str(" (partial run)");
    }
    line
}

/// Resolves a URN the user wrote against the resources of `state` (and the program, if given).
fn resolve_one(text: &str, graph: Option<&Graph>, state: &State) -> Result<Urn, String> {
    Selection::resolve(&[text.to_string()], &[], graph, state)
        .map(|s| s.expect("one target").targets.remove(0))
        .map_err(|e| e.replace("`--target ", "`"))
}

/// `state …`: each change journalled, under the lock, recorded in history with what undoes it.
pub(super) async fn state_command(
    cli: &Cli,
    session: &mut Session<'_>,
    graph: &Graph,
    locator: &StateLocator,
    cmd: &StateCmd,
) -> crate::Result<i32> {
    let stack = graph.stack().to_string();
    let (engine, state) = (session.engine(), session.state_mut());
    match cmd {
        StateCmd::List => {
            let rows: Vec<Value> = state
                .resources
                .iter()
                .map(|(urn, r)| {
                    serde_json::json!({
                        "urn": urn, "type": r.type_name, "id": cloud_id(&r.outputs),
                        "protect": r.options.protect, "retain_on_delete": r.options.retain_on_delete,
                    })
                })
                .collect();
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&rows).expect("JSON"));
            } else {
                for (urn, r) in &state.resources {
                    let mut flags = Vec::new();
                    if r.options.protect {
                        flags.push("protected");
                    }
                    if r.options.retain_on_delete {
                        flags.push("retained on delete");
                    }
                    let id = cloud_id(&r.outputs).unwrap_or_default();
                    let flags = if flags.is_empty() { String::new() } else { format!("  [{}]", flags.join(", ")) };
                    println!("{urn}  {id}{flags}");
                }
                eprintln!("{} resources in stack `{stack}`", state.resources.len());
            }
            Ok(0)
        }
        StateCmd::Show { urn, show_secrets } => {
            let urn = match resolve_one(urn, None, state) {
                Ok(u) => u,
                Err(e) => return Ok(fail(2, e)),
            };
            let rec = serde_json::to_value(&state.resources[&urn]).expect("records serialize");
            let shown = if *show_secrets { rec } else { crate::model::secret::redact(&rec) };
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({"urn": urn, "record": shown})).expect("JSON")
            );
            Ok(0)
        }
        StateCmd::Rm { urn } => {
            let urn = match resolve_one(urn, None, state) {
                Ok(u) => u,
                Err(e) => return Ok(fail(2, e)),
            };
            let record = state.resources[&urn].clone();
            let dependents: Vec<String> =
                state.resources.iter().filter(|(_, r)| r.deps.contains(&urn)).map(|(u, _)| u.display_short()).collect();
            eprintln!("forget {} (it stays in the cloud; fabric no longer manages it)", urn.display_short());
            if !dependents.is_empty() {
                eprintln!("  note: {} refer to it; the next deploy plans it as a create", dependents.join(", "));
            }
            if !confirm(cli, "Remove it from state?").map_err(crate::Error::Other)? {
                eprintln!("Nothing was changed.");
                return Ok(1);
            }
            let entries = vec![JournalEntry::Forgotten { urn: urn.clone(), record }];
            commit_state_change(engine, state, "state rm", format!("forgot {urn}"), entries).await
        }
        StateCmd::Settle { urn: text } => {
            let matches: Vec<Urn> = state
                .pending
                .keys()
                .filter(|u| u.as_str() == text || u.name() == text || u.display_short() == *text)
                .cloned()
                .collect();
            let urn = match matches.as_slice() {
                [one] => one.clone(),
                [] => {
                    let pending: Vec<String> = state.pending.keys().map(|u| u.to_string()).collect();
                    return Ok(fail(
                        2,
                        format!(
                            "no pending operation of `{text}` in stack `{stack}`{}",
                            if pending.is_empty() {
                                " (nothing is pending)".to_string()
                            } else {
                                format!("; pending: {}", pending.join(", "))
                            }
                        ),
                    ));
                }
                many => {
                    let names: Vec<String> = many.iter().map(|u| u.to_string()).collect();
                    return Ok(fail(
                        2,
                        format!("`{text}` names several pending operations: give the URN ({})", names.join(", ")),
                    ));
                }
            };
            let op = state.pending[&urn].op;
            eprintln!(
                "settle the pending {} of {} as not having happened (if it did, import what it made instead)",
                op.verb(),
                urn.display_short()
            );
            if !confirm(cli, "Settle it?").map_err(crate::Error::Other)? {
                eprintln!("Nothing was changed.");
                return Ok(1);
            }
            let entry = JournalEntry::Resolved { urn: urn.clone() };
            engine.store.record(&entry).await?;
            state.apply(&entry);
            engine.store.save(state).await?;
            let summary = format!("settled the pending {} of {urn}", op.verb());
            record_entries(engine, "state settle", summary.clone(), vec![entry]).await;
            eprintln!("{summary}");
            Ok(0)
        }
        StateCmd::Unprotect { urn } => {
            let urn = match resolve_one(urn, None, state) {
                Ok(u) => u,
                Err(e) => return Ok(fail(2, e)),
            };
            let rec = &state.resources[&urn];
            if !rec.options.protect {
                eprintln!("{} is not protected", urn.display_short());
                return Ok(0);
            }
            // Recorded as forget + record of the unprotected record, so that `undo` can put it back.
            let mut lifted = rec.clone();
            lifted.options.protect = false;
            let entries = vec![
                JournalEntry::Forgotten { urn: urn.clone(), record: rec.clone() },
                JournalEntry::Recorded { urn: urn.clone(), record: lifted },
            ];
            eprintln!(
                "note: while the program still says `protect`, the next deploy records it again; remove it there too"
            );
            commit_state_change(engine, state, "state unprotect", format!("lifted protect of {urn}"), entries).await
        }
        StateCmd::Mv { from, to, to_stack } => {
            let from = match resolve_one(from, None, state) {
                Ok(u) => u,
                Err(e) => return Ok(fail(2, e)),
            };
            let dest_stack = to_stack.clone().unwrap_or_else(|| stack.clone());
            let to = match Urn::parse(to) {
                Some(u) => u,
                None if crate::model::stack::valid_resource_name(to) => Urn::new(&dest_stack, from.type_name(), to),
                None => return Ok(fail(2, format!("`{to}` is neither a URN nor a resource name"))),
            };
            if to.stack() != dest_stack {
                return Ok(fail(
                    2,
                    format!(
                        "`{to}` is a URN of stack `{}`, and the record goes to stack `{dest_stack}`\n    fix: write a URN of `{dest_stack}`, or just the new name",
                        to.stack()
                    ),
                ));
            }
            if to.type_name() != from.type_name() {
                return Ok(fail(
                    2,
                    format!(
                        "`{from}` is a {}, and `{to}` names a {}: a record keeps its type\n    fix: keep the type part of the URN",
                        from.type_name(),
                        to.type_name()
                    ),
                ));
            }
            let record = state.resources[&from].clone();
            if dest_stack == stack {
                if state.resources.contains_key(&to) {
                    return Ok(fail(
                        2,
                        format!(
                            "`{to}` is already in the state of stack `{stack}`; nothing was changed\n    fix: move it elsewhere first (or `state rm` it), or choose another name"
                        ),
                    ));
                }
                let entries = vec![JournalEntry::Renamed { from: from.clone(), to: to.clone() }];
                return commit_state_change(engine, state, "state mv", format!("moved {from} to {to}"), entries).await;
            }
            // Into another stack: its own lock, journal and history.
            let key = crate::state::store::KeySource::from_env(locator.is_local());
            let dest = Arc::new(StateStore::open(locator.backend(&dest_stack), &dest_stack, key).await?);
            dest.lock("state mv").await?;
            let dest_engine = Engine::new(engine.ctx.clone(), dest.clone(), engine.registry.clone());
            let result = async {
                let mut dest_state = dest.load().await?;
                if dest_state.resources.contains_key(&to) {
                    return Ok(fail(
                        2,
                        format!(
                            "`{to}` is already in the state of stack `{dest_stack}`; nothing was changed\n    fix: choose another name"
                        ),
                    ));
                }
                let moved = Record {
                    deps: record.deps.iter().filter(|d| dest_state.resources.contains_key(*d)).cloned().collect(),
                    ..record.clone()
                };
                let entry = JournalEntry::Recorded { urn: to.clone(), record: moved };
                dest.record(&entry).await?;
                dest_state.apply(&entry);
                dest.save(&mut dest_state).await?;
                let received = format!("received {to} from stack `{stack}`");
                let id = record_entries(&dest_engine, "state mv", received, vec![entry]).await;
                let entries = vec![JournalEntry::Forgotten { urn: from.clone(), record: record.clone() }];
                let summary = format!("moved {from} to stack `{dest_stack}` as {to}");
                let code = commit_state_change(engine, state, "state mv", summary, entries).await?;
                if let Some(id) = id {
                    eprintln!("  in stack `{dest_stack}`: history {id} (`state undo {id}` there forgets it again)");
                }
                Ok::<i32, crate::Error>(code)
            }
            .await;
            dest.unlock().await?;
            result
        }
        StateCmd::Undo { id } => {
            let Some(detail) = engine.store.history_detail(*id).await? else {
                return Ok(fail(2, format!("stack `{stack}` has no history entry {id} (`history` lists them)")));
            };
            if detail.entries.is_empty() {
                return Ok(fail(
                    2,
                    format!(
                        "history entry {id} changed the cloud (or nothing), not only state: only another deploy undoes it\n    fix: `diff` shows what it changed; change the program and deploy"
                    ),
                ));
            }
            let mut undo = Vec::new();
            let mut check = state.clone();
            for entry in detail.entries.iter().rev() {
                let Some(reverse) = entry.reverse() else {
                    return Ok(fail(2, format!("history entry {id} holds a change that cannot be undone here")));
                };
                if let Some(problem) = cannot_apply(&check, &reverse) {
                    return Ok(fail(2, format!("cannot undo history entry {id}: {problem}; nothing was changed")));
                }
                check.apply(&reverse);
                undo.push(reverse);
            }
            commit_state_change(engine, state, "state undo", format!("undid history entry {id}"), undo).await
        }
    }
}

/// Why `entry` cannot be applied to `state` as a state command (it would overwrite or find nothing).
fn cannot_apply(state: &State, entry: &JournalEntry) -> Option<String> {
    match entry {
        JournalEntry::Recorded { urn, .. } if state.resources.contains_key(urn) => {
            Some(format!("`{urn}` is in state again"))
        }
        JournalEntry::Forgotten { urn, .. } if !state.resources.contains_key(urn) => {
            Some(format!("`{urn}` is no longer in state"))
        }
        JournalEntry::Renamed { from, to }
            if !state.resources.contains_key(from) || state.resources.contains_key(to) =>
        {
            Some(format!("`{from}` is not in state, or `{to}` is"))
        }
        _ => None,
    }
}

async fn record_entries(engine: &Engine, op: &str, summary: String, entries: Vec<JournalEntry>) -> Option<u64> {
    let detail = HistoryDetail { entries, ..Default::default() };
    record_history(engine, op, summary, "succeeded".into(), detail).await
}

/// Journals `entries`, saves, and records them in history (so that `state undo` can reverse them).
async fn commit_state_change(
    engine: &Engine,
    state: &mut State,
    op: &str,
    summary: String,
    entries: Vec<JournalEntry>,
) -> crate::Result<i32> {
    for e in &entries {
        engine.store.record(e).await?;
        state.apply(e);
    }
    engine.store.save(state).await?;
    let id = record_entries(engine, op, summary.clone(), entries).await;
    match id {
        Some(id) => eprintln!("{summary} (history {id}; `state undo {id}` reverses it)"),
        None => eprintln!("{summary}"),
    }
    Ok(0)
}

/// The cloud id a record's outputs show (`id`, `name`, `arn`…), for listings.
fn cloud_id(outputs: &Value) -> Option<String> {
    ["id", "name", "arn", "bucket", "identifier"]
        .iter()
        .find_map(|k| outputs.get(*k).and_then(Value::as_str))
        .map(String::from)
}

/// `import <urn> <id>`: the live resource recorded in state as the program's `urn`, unchanged;
/// `import --discover`: what could be imported.
pub(super) async fn import_command(
    cli: &Cli,
    session: &mut Session<'_>,
    graph: &Graph,
    target: Option<&str>,
    id: Option<&str>,
    discover: bool,
) -> crate::Result<i32> {
    let stack = graph.stack().to_string();
    let (engine, state) = (session.engine(), session.state_mut());
    if discover {
        return discover_command(engine, graph, state).await;
    }
    let (Some(target), Some(id)) = (target, id) else {
        return Ok(fail(2, "`import` needs a URN and a cloud id: `import <urn> <id>`, or `import --discover`"));
    };
    let urn = match resolve_one(target, Some(graph), state) {
        Ok(u) => u,
        Err(e) => return Ok(fail(2, e)),
    };
    let Some(node) = graph.get(&urn) else {
        return Ok(fail(
            2,
            format!(
                "`{urn}` is not in the program\n    fix: declare it first: an import adopts a resource the program declares"
            ),
        ));
    };
    if state.resources.contains_key(&urn) {
        return Ok(fail(2, format!("`{urn}` is already in state; nothing to import")));
    }
    if let crate::engine::Import::Never(why) = node.provider.import_rule() {
        return Ok(fail(
            2,
            format!(
                "{} cannot be imported: {why}\n    fix: let fabric create it (deploy), or remove the existing one",
                node.type_name()
            ),
        ));
    }
    let import_ids: std::collections::HashMap<Urn, String> = [(urn.clone(), id.to_string())].into();
    let mut imports = engine.read_imports_with(graph, state, &import_ids).await?;
    imports.retain(|u, _| *u == urn);
    let selection = Selection { targets: vec![urn.clone()], excludes: vec![] };
    let inputs = PlanInputs { imports, selection: None, import_ids };
    let mut plan = plan_with(graph, state, &engine.registry, &inputs).map_err(crate::engine::EngineError::from)?;
    plan.steps.retain(|s| s.urn == urn);
    plan.partial = Some(selection.describe(1, graph.nodes().len()));
    let step = plan.steps.first().filter(|s| s.op == StepOp::Import).cloned();
    let Some(step) = step else {
        return Ok(fail(1, format!("`{urn}` was not planned as an import")));
    };
    eprint!("{}", render_plan(&plan));
    let observed = step.imported.clone().expect("an import step carries what was read");
    if contains_unknown(&observed.inputs) {
        let deps: Vec<String> =
            node.deps.iter().filter(|d| !state.resources.contains_key(*d)).map(|d| format!("'{d}'")).collect();
        return Ok(fail(
            2,
            format!(
                "`{urn}` refers to resources not in state yet ({}), so it cannot be recorded\n    fix: import (or deploy) those first",
                deps.join(", ")
            ),
        ));
    }
    if !confirm(cli, "Record it in state?").map_err(crate::Error::Other)? {
        eprintln!("Nothing was changed.");
        return Ok(1);
    }
    let record = Record {
        type_name: node.type_name().to_string(),
        inputs: observed.inputs.clone(),
        outputs: observed.outputs.clone(),
        deps: node.deps.clone(),
        options: node.options.recorded(),
    };
    let entries = vec![JournalEntry::Recorded { urn: urn.clone(), record }];
    for e in &entries {
        engine.store.record(e).await?;
        state.apply(e);
    }
    engine.store.save(state).await?;
    let detail = HistoryDetail { entries, ..Default::default() };
    let hid = record_history(engine, "import", format!("imported {id} as {urn}"), "succeeded".into(), detail).await;
    eprintln!(
        "imported `{id}` as {} into stack `{stack}`{}",
        urn.display_short(),
        hid.map(|h| format!(" (history {h}; `state undo {h}` forgets it again)")).unwrap_or_default()
    );
    if step.changes.is_empty() {
        eprintln!("It matches the program: the next deploy leaves it as it is.");
    } else {
        let fields: Vec<&str> = step.changes.iter().map(|c| c.field.as_str()).collect();
        eprintln!("The next deploy updates it where it differs from the program: {}.", fields.join(", "));
    }
    Ok(0)
}

/// Lists the live resources that the program's resources not yet in state could adopt.
async fn discover_command(engine: &Engine, graph: &Graph, state: &State) -> crate::Result<i32> {
    let mut found = 0;
    let mut asked = 0;
    for node in graph.nodes().iter().filter(|n| !state.resources.contains_key(&n.urn)) {
        if !node.provider.importable() {
            continue;
        }
        asked += 1;
        let Ok(inputs) = node.inputs(state) else { continue };
        match node.provider.discover(&engine.ctx, &node.urn, &inputs).await {
            Ok(ids) => {
                for id in ids {
                    found += 1;
                    println!("cargo xtask import {} '{}' {id}", graph.stack(), node.urn);
                    println!(
                        "    # or in code: s.set_options(&urn, Options::new().import(\"{id}\")) for {}",
                        node.urn.display_short()
                    );
                }
            }
            Err(e) => eprintln!("warning: {}: could not look: {e}", node.urn.display_short()),
        }
    }
    eprintln!(
        "{found} live resource{} found for the {asked} importable resources of the program not in state",
        if found == 1 { "" } else { "s" }
    );
    Ok(0)
}

/// `history`: newest first.
pub(super) async fn history_command(cli: &Cli, engine: &Engine) -> crate::Result<i32> {
    let mut all = engine.store.history().await?;
    all.reverse();
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&all).expect("JSON"));
        return Ok(0);
    }
    if all.is_empty() {
        eprintln!("no history yet");
    }
    for e in &all {
        println!(
            "{:>4}  {}  {:<16} {:<10} {}  by {}\n      {}",
            e.id,
            e.time,
            e.operation,
            e.outcome,
            e.commit.as_deref().map(|c| format!("commit {c}")).unwrap_or_else(|| "no commit".into()),
            e.user,
            e.summary
        );
        for w in &e.waivers {
            println!("      waived: {w}");
        }
    }
    Ok(0)
}

/// `diff <a> <b>`: what changed in the desired inputs between two recorded runs.
pub(super) async fn diff_command(cli: &Cli, engine: &Engine, a: u64, b: u64) -> crate::Result<i32> {
    let load = |id: u64| async move { engine.store.history_detail(id).await.map(|d| d.ok_or(id)) };
    let (da, db) = match (load(a).await?, load(b).await?) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(id), _) | (_, Err(id)) => return Ok(fail(2, format!("no history entry {id} (`history` lists them)"))),
    };
    let mut urns: Vec<&String> = da.inputs.keys().chain(db.inputs.keys()).collect();
    urns.sort();
    urns.dedup();
    let mut changes = Vec::new();
    for urn in urns {
        let (old, new) = (da.inputs.get(urn), db.inputs.get(urn));
        if old == new {
            continue;
        }
        let kind = match (old, new) {
            (None, Some(_)) => "added",
            (Some(_), None) => "removed",
            _ => "changed",
        };
        let lines = match (old, new) {
            (Some(o), Some(n)) => crate::engine::plan::diff(o, n, &[])
                .iter()
                .flat_map(|c| leaf_lines(&c.field, c.old.as_ref(), c.new.as_ref()))
                .collect(),
            _ => Vec::new(),
        };
        changes.push((urn.clone(), kind, lines));
    }
    if cli.json {
        let doc: Vec<Value> =
            changes.iter().map(|(u, k, l)| serde_json::json!({"urn": u, "change": k, "fields": l})).collect();
        println!("{}", serde_json::to_string_pretty(&doc).expect("JSON"));
        return Ok(0);
    }
    println!("Desired inputs from history {a} to {b}:");
    if changes.is_empty() {
        println!("  no differences");
    }
    for (urn, kind, lines) in &changes {
        let sym = match *kind {
            "added" => "+",
            "removed" => "-",
            _ => "~",
        };
        println!("  {sym} {urn}  {kind}");
        for l in lines {
            println!("        {l}");
        }
    }
    Ok(0)
}
