//! Engine tests with the in-memory provider: every step kind, ordering, failure isolation,
//! recovery, refresh, the concurrency bound.

use super::*;
use crate::model::{Graph, Stack};
use crate::state::store::KeySource;
use crate::state::{JournalEntry, LocalBackend, Op, StateStore};
use crate::testing::{MemoryCloud, MemoryProvider, Thing};
use std::sync::Arc;

pub(super) struct Harness {
    pub(super) cloud: Arc<MemoryCloud>,
    pub(super) provider: Arc<MemoryProvider>,
    pub(super) dir: tempfile::TempDir,
    pub(super) engine: Engine,
}

pub(super) async fn harness() -> Harness {
    let cloud = MemoryCloud::new();
    let provider = Arc::new(MemoryProvider { cloud: cloud.clone() });
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(Arc::new(LocalBackend::new(dir.path())), "t", KeySource::LocalKeyFile).await.unwrap();
    let mut registry = Registry::new();
    registry.register(provider.clone());
    let engine = Engine::new(Ctx::new("t"), Arc::new(store), registry);
    Harness { cloud, provider, dir, engine }
}

impl Harness {
    pub(super) fn graph(&self, f: impl FnOnce(&mut Stack, &Arc<MemoryProvider>)) -> Arc<Graph> {
        let mut s = Stack::new("t");
        f(&mut s, &self.provider);
        Arc::new(s.finish().unwrap())
    }

    pub(super) async fn plan(&self, graph: &Graph) -> Plan {
        let (state, _) = self.engine.load_and_recover(Some(graph), false).await.unwrap();
        plan(graph, &state, &self.engine.registry).unwrap()
    }

    pub(super) async fn deploy(&self, graph: Arc<Graph>) -> (Plan, ApplyReport) {
        let (mut state, _) = self.engine.load_and_recover(Some(&graph), true).await.unwrap();
        let p = plan(&graph, &state, &self.engine.registry).unwrap();
        let report = self.engine.apply(graph, &mut state, &p).await.unwrap();
        (p, report)
    }

    pub(super) fn ops(plan: &Plan) -> Vec<(String, &'static str)> {
        plan.steps.iter().map(|s| (s.urn.name().to_string(), s.op.as_str())).collect()
    }

    pub(super) fn position(&self, call: &str) -> usize {
        self.cloud
            .calls()
            .iter()
            .position(|c| c == call)
            .unwrap_or_else(|| panic!("no call `{call}` in {:?}", self.cloud.calls()))
    }
}

/// a ← b ← c (b refers to a's id, c to b's), d alone.
pub(super) fn chain(s: &mut Stack, p: &Arc<MemoryProvider>) {
    let a = Thing::new("a").value("1").add(s, p);
    let b = Thing::new("b").value("1").parent(&a).add(s, p);
    Thing::new("c").value("1").parent(&b).add(s, p);
    Thing::new("d").value("1").add(s, p);
}

#[tokio::test]
async fn create_then_redeploy_is_all_same_with_no_calls() {
    let h = harness().await;
    let (p, report) = h.deploy(h.graph(chain)).await;
    assert_eq!(p.summary(), Summary { create: 4, ..Summary::default() });
    assert!(report.ok());
    assert_eq!(h.cloud.objects().len(), 4);
    assert!(h.position("create a") < h.position("create b"));
    assert!(h.position("create b") < h.position("create c"));
    h.cloud.clear_calls();
    let (p, _) = h.deploy(h.graph(chain)).await;
    assert_eq!(p.summary(), Summary { same: 4, ..Summary::default() });
    assert!(h.cloud.calls().is_empty(), "a no-op deploy calls nothing: {:?}", h.cloud.calls());
}

#[tokio::test]
async fn a_changed_field_updates_in_place() {
    let h = harness().await;
    h.deploy(h.graph(chain)).await;
    let ids: Vec<String> = h.cloud.objects().into_keys().collect();
    let (p, report) = h
        .deploy(h.graph(|s, pr| {
            let a = Thing::new("a").value("1").add(s, pr);
            let b = Thing::new("b").value("2").parent(&a).add(s, pr);
            Thing::new("c").value("1").parent(&b).add(s, pr);
            Thing::new("d").value("1").add(s, pr);
        }))
        .await;
    assert!(report.ok());
    let b = p.steps.iter().find(|s| s.urn.name() == "b").unwrap();
    assert_eq!(b.op, StepOp::Update);
    assert_eq!(b.changes.iter().map(|c| c.field.as_str()).collect::<Vec<_>>(), ["value"]);
    assert_eq!(p.summary(), Summary { update: 1, same: 3, ..Summary::default() });
    assert_eq!(h.cloud.objects().into_keys().collect::<Vec<_>>(), ids, "same objects, updated in place");
}

#[tokio::test]
async fn a_replace_forcing_field_creates_first_repoints_dependents_then_deletes() {
    let h = harness().await;
    h.deploy(h.graph(chain)).await;
    let old_a = h.cloud.objects().into_iter().find(|(_, (u, _))| u.name() == "a").unwrap().0;
    h.cloud.clear_calls();
    let (p, report) = h
        .deploy(h.graph(|s, pr| {
            let a = Thing::new("a").value("1").zone("b").add(s, pr);
            let b = Thing::new("b").value("1").parent(&a).add(s, pr);
            Thing::new("c").value("1").parent(&b).add(s, pr);
            Thing::new("d").value("1").add(s, pr);
        }))
        .await;
    assert!(report.ok(), "{report:?}");
    let ops = Harness::ops(&p);
    assert!(ops.contains(&("a".into(), "replace")));
    // b refers to a's id, which is known only after apply: an update, shown as such.
    let b = p.steps.iter().find(|s| s.urn.name() == "b").unwrap();
    assert_eq!(b.op, StepOp::Update);
    assert!(crate::model::contains_unknown(b.changes[0].new.as_ref().unwrap()));
    assert!(render::render_plan(&p).contains("(known after apply)"));
    // Create the new a, repoint b, and only then delete the old a.
    assert!(h.position("create a") < h.position("update b"));
    assert!(h.position("update b") < h.position("delete a"));
    assert!(!h.cloud.objects().contains_key(&old_a));
    assert_eq!(h.cloud.objects().len(), 4);
    let (p, _) = h
        .deploy(h.graph(|s, pr| {
            let a = Thing::new("a").value("1").zone("b").add(s, pr);
            let b = Thing::new("b").value("1").parent(&a).add(s, pr);
            Thing::new("c").value("1").parent(&b).add(s, pr);
            Thing::new("d").value("1").add(s, pr);
        }))
        .await;
    assert!(!p.has_changes(), "{}", render::render_plan(&p));
}

#[tokio::test]
async fn removed_resources_are_deleted_dependents_first() {
    let h = harness().await;
    h.deploy(h.graph(chain)).await;
    h.cloud.clear_calls();
    let (p, report) = h
        .deploy(h.graph(|s, pr| {
            Thing::new("d").value("1").add(s, pr);
        }))
        .await;
    assert!(report.ok());
    assert_eq!(p.summary(), Summary { delete: 3, same: 1, ..Summary::default() });
    let deletes: Vec<&str> = p.steps.iter().filter(|s| s.op == StepOp::Delete).map(|s| s.urn.name()).collect();
    assert_eq!(deletes, ["c", "b", "a"]);
    assert!(h.position("delete c") < h.position("delete b"));
    assert!(h.position("delete b") < h.position("delete a"));
    assert_eq!(h.cloud.objects().len(), 1);
}

#[tokio::test]
async fn a_failure_stops_only_its_dependents_and_is_resumed_later() {
    let h = harness().await;
    h.cloud.fail_on("b");
    let (_, report) = h.deploy(h.graph(chain)).await;
    assert!(!report.ok());
    let outcome = |name: &str| report.results.iter().find(|r| r.urn.name() == name).unwrap().outcome.clone();
    assert!(matches!(outcome("b"), Outcome::Failed(e) if e.contains("injected")));
    assert!(matches!(outcome("c"), Outcome::Skipped(_)));
    assert_eq!(outcome("a"), Outcome::Done);
    assert_eq!(outcome("d"), Outcome::Done);
    let skipped = report.skipped().next().unwrap();
    assert_eq!(skipped.blocked_by.as_ref().unwrap().name(), "b");
    h.cloud.heal();
    let (p, report) = h.deploy(h.graph(chain)).await;
    assert!(report.ok());
    assert_eq!(p.summary(), Summary { create: 2, same: 2, ..Summary::default() });
    assert_eq!(h.cloud.objects().len(), 4);
}

#[tokio::test]
async fn concurrency_is_bounded_by_parallel() {
    let mut h = harness().await;
    h.engine.parallel = 4;
    h.cloud.set_latency(std::time::Duration::from_millis(20));
    let (_, report) = h
        .deploy(h.graph(|s, p| {
            for i in 0..40 {
                Thing::new(&format!("t{i}")).add(s, p);
            }
        }))
        .await;
    assert!(report.ok());
    assert_eq!(h.cloud.peak_concurrency(), 4);
}

#[test]
fn cycles_duplicates_and_missing_references_are_rejected_together() {
    let cloud = MemoryCloud::new();
    let p = Arc::new(MemoryProvider { cloud });
    let mut s = Stack::new("t");
    let a_urn = s.urn(crate::testing::THING, "a");
    let b_urn = s.urn(crate::testing::THING, "b");
    Thing::new("a").depends_on(b_urn).add(&mut s, &p);
    Thing::new("b").depends_on(a_urn).add(&mut s, &p);
    Thing::new("c").add(&mut s, &p);
    Thing::new("c").add(&mut s, &p);
    Thing::new("d").depends_on(s.urn(crate::testing::THING, "ghost")).add(&mut s, &p);
    Thing::new("bad name!").add(&mut s, &p);
    let errors = s.finish().err().unwrap();
    let text = errors.to_string();
    assert_eq!(errors.0.len(), 4, "{text}");
    assert!(text.contains("dependency cycle"), "{text}");
    assert!(text.contains("already called `c`"), "{text}");
    assert!(text.contains("`t::test:Thing::ghost`, which is not declared"), "{text}");
    assert!(text.contains("`bad name!` is not a valid resource name"), "{text}");
}

#[tokio::test]
async fn a_create_whose_result_was_lost_is_adopted_not_duplicated() {
    let h = harness().await;
    let graph = h.graph(chain);
    // A run that created `a` in the cloud and died before journalling the result.
    let a = graph.nodes().iter().find(|n| n.urn.name() == "a").unwrap();
    let inputs = a.inputs(&crate::model::NothingKnown).unwrap();
    h.engine
        .store
        .record(&JournalEntry::Intent {
            urn: a.urn.clone(),
            op: Op::Create,
            type_name: a.type_name().into(),
            inputs: inputs.clone(),
            deps: vec![],
        })
        .await
        .unwrap();
    h.provider.create(&h.engine.ctx, &a.urn, &inputs).await.unwrap();
    // And one that died before `b`'s create reached the cloud.
    let b = graph.nodes().iter().find(|n| n.urn.name() == "b").unwrap();
    h.engine
        .store
        .record(&JournalEntry::Intent {
            urn: b.urn.clone(),
            op: Op::Create,
            type_name: b.type_name().into(),
            inputs: serde_json::json!({}),
            deps: vec![],
        })
        .await
        .unwrap();
    let (state, recovered) = h.engine.load_and_recover(Some(&graph), true).await.unwrap();
    let finding = |n: &str| recovered.iter().find(|r| r.urn.name() == n).unwrap().finding;
    assert_eq!(finding("a"), "adopted");
    assert_eq!(finding("b"), "absent");
    assert!(state.pending.is_empty());
    let (p, report) = h.deploy(graph).await;
    assert!(report.ok());
    assert_eq!(Harness::ops(&p).iter().find(|(n, _)| n == "a").unwrap().1, "same");
    assert_eq!(h.cloud.objects().len(), 4, "exactly one object per resource");
}

#[tokio::test]
async fn refresh_reports_drift_and_deploy_repairs_it() {
    let h = harness().await;
    h.deploy(h.graph(chain)).await;
    let objects = h.cloud.objects();
    let id_of = |n: &str| objects.iter().find(|(_, (u, _))| u.name() == n).unwrap().0.clone();
    h.cloud.delete_out_of_band(&id_of("d"));
    h.cloud.edit_out_of_band(&id_of("a"), "value", serde_json::json!("tampered"));
    h.cloud.clear_calls();
    let (mut state, _) = h.engine.load_and_recover(None, true).await.unwrap();
    let report = h.engine.refresh(&mut state, None, true).await.unwrap();
    assert_eq!(h.cloud.calls(), ["read_many 4"], "one batched read per type");
    assert_eq!(report.drift.len(), 2);
    let text = report.render();
    assert!(text.contains("test:Thing \"d\" was deleted outside fabric"), "{text}");
    assert!(text.contains("value: \"1\" => \"tampered\""), "{text}");
    let (p, report) = h.deploy(h.graph(chain)).await;
    assert!(report.ok());
    assert_eq!(p.summary(), Summary { create: 1, update: 1, same: 2, ..Summary::default() });
    assert_eq!(h.cloud.objects()[&id_of("a")].1["value"], "1");
}

#[tokio::test]
async fn destroy_removes_everything_in_reverse_order() {
    let h = harness().await;
    h.deploy(h.graph(chain)).await;
    h.cloud.clear_calls();
    let (mut state, _) = h.engine.load_and_recover(None, true).await.unwrap();
    let p = plan_destroy(&state, &h.engine.registry).unwrap();
    let report = h.engine.destroy(&mut state, &p).await.unwrap();
    assert!(report.ok());
    assert!(h.cloud.objects().is_empty());
    assert!(h.position("delete c") < h.position("delete b"));
    assert!(h.position("delete b") < h.position("delete a"));
    assert!(h.engine.store.load().await.unwrap().resources.is_empty());
}

#[tokio::test]
async fn secrets_are_redacted_in_plans_and_encrypted_in_state() {
    let h = harness().await;
    let graph = h.graph(|s, p| {
        Thing::new("db").secret("hunter2").add(s, p);
    });
    let (p, report) = h.deploy(graph).await;
    assert!(report.ok());
    let text = render::render_plan(&p);
    assert!(text.contains("[secret]") && !text.contains("hunter2"), "{text}");
    assert!(!serde_json::to_string(&plan_json(&p)).unwrap().contains("hunter2"));
    for entry in std::fs::read_dir(h.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let content = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(!content.contains("hunter2"), "{} holds the secret in plain text", path.display());
    }
    // The provider received the real value.
    assert_eq!(h.cloud.objects().values().next().unwrap().1["secret"]["$secret"], "hunter2");
}

#[tokio::test]
async fn preview_never_writes_state() {
    let h = harness().await;
    let graph = h.graph(chain);
    let p = h.plan(&graph).await;
    assert_eq!(p.summary().create, 4);
    let written: Vec<_> = std::fs::read_dir(h.dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(written.is_empty(), "a preview of a new stack wrote {written:?}");
}

#[tokio::test]
async fn a_replacement_that_finds_the_old_instance_never_deletes_it() {
    let h = harness().await;
    h.deploy(h.graph(|s, p| {
        Thing::new("a").add(s, p);
    }))
    .await;
    h.cloud.create_finds_by_name();
    let (p, report) = h
        .deploy(h.graph(|s, pr| {
            Thing::new("a").zone("b").add(s, pr);
        }))
        .await;
    assert_eq!(p.summary().replace, 1);
    // Never reported as replaced: nothing was.
    assert!(!report.ok());
    let failed: Vec<_> = report.failed().collect();
    assert!(
        matches!(&failed[0].outcome, crate::engine::Outcome::Failed(e) if e.contains("found the old instance again")),
        "{report:?}"
    );
    assert_eq!(h.cloud.objects().len(), 1, "the only instance survives");
    assert!(!h.cloud.calls().iter().any(|c| c == "delete a"), "{:?}", h.cloud.calls());
    assert!(h.engine.store.load().await.unwrap().retired.is_empty());
}

#[tokio::test]
async fn a_replacement_the_cloud_did_not_take_is_an_error_and_the_old_instance_stays() {
    let h = harness().await;
    h.deploy(h.graph(|s, p| {
        Thing::new("a").add(s, p);
    }))
    .await;
    h.cloud.replacements_keep_old_settings();
    let (_, report) = h
        .deploy(h.graph(|s, pr| {
            Thing::new("a").zone("b").add(s, pr);
        }))
        .await;
    let failed: Vec<_> = report.failed().collect();
    assert!(
        matches!(&failed[..], [r] if matches!(&r.outcome, crate::engine::Outcome::Failed(e) if e.contains("did not take") && e.contains("zone"))),
        "{report:?}"
    );
    assert!(!h.cloud.calls().iter().any(|c| c == "delete a"), "the old instance is not deleted: {:?}", h.cloud.calls());
    let state = h.engine.store.load().await.unwrap();
    assert_eq!(state.resources.values().next().unwrap().inputs["zone"], "a", "state still says the old zone");
}

#[tokio::test]
async fn a_delete_first_replacement_deletes_then_creates_and_the_plan_says_so() {
    let h = harness().await;
    h.deploy(h.graph(|s, p| {
        Thing::new("a").add(s, p);
    }))
    .await;
    h.cloud.replace_deletes_first();
    h.cloud.clear_calls();
    let graph = h.graph(|s, pr| {
        Thing::new("a").zone("b").add(s, pr);
    });
    let p = h.plan(&graph).await;
    assert!(p.steps[0].delete_first);
    assert!(render::render_plan(&p).contains("replace (delete first"), "{}", render::render_plan(&p));
    let (_, report) = h.deploy(graph).await;
    assert!(report.ok(), "{report:?}");
    let calls: Vec<String> = h.cloud.calls().into_iter().filter(|c| !c.starts_with("read_many")).collect();
    assert_eq!(calls, ["delete a", "create a"]);
    assert_eq!(h.cloud.objects().len(), 1);
    let state = h.engine.store.load().await.unwrap();
    assert!(state.retired.is_empty());
    assert_eq!(state.resources.values().next().unwrap().inputs["zone"], "b");
}

#[tokio::test]
async fn a_recorded_type_without_a_provider_stops_the_plan_and_says_how_to_get_one() {
    let h = harness().await;
    h.deploy(h.graph(chain)).await;
    let (state, _) = h.engine.load_and_recover(None, false).await.unwrap();
    let empty = Stack::new("t").finish().unwrap();
    // A program built without the provider's service (a cargo feature left out).
    let mut registry = Registry::new();
    registry.register_unavailable("test:", "build the program with the `test` feature");
    let err = plan(&empty, &state, &registry).unwrap_err().to_string();
    assert!(err.contains("as type `test:Thing`, which this program does not know how to delete"), "{err}");
    assert!(err.contains("fix: build the program with the `test` feature"), "{err}");
    // Without a hint, the generic way out.
    let err = plan(&empty, &state, &Registry::new()).unwrap_err().to_string();
    assert!(err.contains("fix: use a fabric version that has this resource type"), "{err}");
}
