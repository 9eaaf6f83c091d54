//! Failure paths of the journal: a definite failure settles its step at once; a lost answer stays
//! pending for recovery; a pending step recovery cannot settle is reported and blocks nothing else.

use super::tests::{Harness, chain, harness};
use super::*;
use crate::model::NothingKnown;
use crate::state::{JournalEntry, Op};
use crate::testing::Thing;

#[tokio::test]
async fn a_refused_create_update_and_delete_each_settle_at_once() {
    // Create: refused (a name someone else holds, a validation error, access denied, a quota).
    let h = harness().await;
    h.cloud.refuse_on("b");
    let (_, report) = h.deploy(h.graph(chain)).await;
    assert_eq!(report.failed().count(), 1);
    assert!(h.engine.store.load().await.unwrap().pending.is_empty(), "settled when it failed");
    let (state, recovered) = h.engine.load_and_recover(None, true).await.unwrap();
    assert!(state.pending.is_empty(), "nothing to settle: {:?}", state.pending);
    assert!(recovered.is_empty());

    // Update: refused; the record keeps what was there.
    h.cloud.heal();
    let (_, report) = h.deploy(h.graph(chain)).await;
    assert!(report.ok());
    h.cloud.refuse_on("d");
    let changed = |s: &mut crate::model::Stack, p: &std::sync::Arc<crate::testing::MemoryProvider>| {
        chain(s, p);
        Thing::new("e").value("2").add(s, p);
    };
    let graph = h.graph(|s, p| {
        let a = Thing::new("a").value("1").add(s, p);
        let b = Thing::new("b").value("1").parent(&a).add(s, p);
        Thing::new("c").value("1").parent(&b).add(s, p);
        Thing::new("d").value("2").add(s, p);
    });
    let (_, report) = h.deploy(graph).await;
    assert_eq!(report.failed().count(), 1);
    let (state, _) = h.engine.load_and_recover(None, true).await.unwrap();
    assert!(state.pending.is_empty());
    let d = state.resources.iter().find(|(u, _)| u.name() == "d").unwrap().1;
    assert_eq!(d.inputs["value"], "1", "the refused update changed nothing");

    // Delete: refused (deletion protection); the resource stays in state, nothing pending.
    let graph = h.graph(changed);
    h.cloud.heal();
    h.deploy(graph).await;
    h.cloud.refuse_on("e");
    let (_, report) = h.deploy(h.graph(chain)).await;
    assert_eq!(report.failed().count(), 1, "{report:?}");
    let (state, recovered) = h.engine.load_and_recover(None, true).await.unwrap();
    assert!(state.pending.is_empty() && recovered.is_empty());
    assert!(state.resources.keys().any(|u| u.name() == "e"), "still recorded: it is still there");
}

#[tokio::test]
async fn a_lost_answer_stays_pending_and_recovery_looks_it_up() {
    let h = harness().await;
    h.cloud.fail_on("b");
    let (_, report) = h.deploy(h.graph(chain)).await;
    assert_eq!(report.failed().count(), 1);
    let state = h.engine.store.load().await.unwrap();
    let pending = state.pending.iter().find(|(u, _)| u.name() == "b").expect("b pending").1;
    assert!(pending.failed);
    let (state, recovered) = h.engine.load_and_recover(None, true).await.unwrap();
    assert_eq!(recovered.iter().map(|r| r.finding).collect::<Vec<_>>(), ["absent"]);
    assert!(state.pending.is_empty());
}

/// Records the intent of a create of `name` (a run that died with it in flight).
async fn pending_create(h: &Harness, graph: &Graph, name: &str) {
    let node = graph.nodes().iter().find(|n| n.urn.name() == name).unwrap();
    let entry = JournalEntry::Intent {
        urn: node.urn.clone(),
        op: Op::Create,
        type_name: node.type_name().into(),
        inputs: node.inputs(&NothingKnown).unwrap(),
        deps: vec![],
    };
    h.engine.store.record(&entry).await.unwrap();
}

#[tokio::test]
async fn a_pending_create_recovery_cannot_settle_is_reported_and_blocks_nothing_else() {
    let h = harness().await;
    let graph = h.graph(chain);
    let (_, report) = h.deploy(graph.clone()).await;
    assert!(report.ok());
    let with_e = h.graph(|s, p| {
        chain(s, p);
        Thing::new("e").value("5").add(s, p);
    });
    pending_create(&h, &with_e, "e").await;
    h.cloud.fail_finds();

    // Recovery says so, keeps it pending, and goes on.
    let (state, recovered) = h.engine.load_and_recover(Some(&with_e), true).await.unwrap();
    assert_eq!(recovered.len(), 1);
    assert!(recovered[0].unsettled(), "{recovered:?}");
    let line = recovered[0].describe();
    assert!(line.contains("could not settle an interrupted create of test:Thing \"e\""), "{line}");
    assert!(
        line.contains("state <stack> settle t::test:Thing::e") && line.contains("import <stack> t::test:Thing::e"),
        "{line}"
    );
    assert!(state.pending.keys().any(|u| u.name() == "e"));

    // A deploy refuses that one step, by name, and does the rest.
    let with_f = h.graph(|s, p| {
        chain(s, p);
        Thing::new("e").value("5").add(s, p);
        Thing::new("f").value("6").add(s, p);
    });
    let (_, report) = h.deploy(with_f).await;
    let failed: Vec<_> = report.failed().collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].urn.name(), "e");
    assert!(
        matches!(&failed[0].outcome, Outcome::Failed(m) if m.contains("cargo xtask state <stack> settle t::test:Thing::e")),
        "{failed:?}"
    );
    assert!(h.cloud.objects().values().any(|(u, _)| u.name() == "f"), "the rest was created");
    assert!(!h.cloud.calls().iter().any(|c| c == "create e"), "never tried again");

    // A destroy removes everything the stack owns; the unsettled step stays pending.
    let (mut state, _) = h.engine.load_and_recover(None, true).await.unwrap();
    let plan = plan_destroy(&state, &h.engine.registry).unwrap();
    let report = h.engine.destroy(&mut state, &plan).await.unwrap();
    assert!(report.ok(), "{report:?}");
    assert!(h.cloud.objects().is_empty());
    assert!(state.pending.keys().any(|u| u.name() == "e"));
}

#[tokio::test]
async fn a_name_held_by_another_settles_a_pending_create_as_absent() {
    let h = harness().await;
    let graph = h.graph(|s, p| {
        Thing::new("db").value("acme-dev-db").add(s, p);
    });
    pending_create(&h, &graph, "db").await;
    // The provider's lookup refuses (the name is someone else's), and the names check says whose.
    h.cloud.insert_foreign("foreign-db", serde_json::json!({"value": "acme-dev-db"}));
    h.cloud.fail_finds();
    let (state, recovered) = h.engine.load_and_recover(Some(&graph), true).await.unwrap();
    assert_eq!(recovered[0].finding, "absent", "{recovered:?}");
    assert!(recovered[0].detail.as_deref().unwrap().contains("foreign-db belongs to elsewhere"), "{recovered:?}");
    assert!(state.pending.is_empty());
    assert_eq!(h.cloud.objects().len(), 1, "the foreign one is untouched");
}

#[tokio::test]
async fn names_held_by_others_are_problems_before_any_write() {
    let h = harness().await;
    h.cloud.insert_foreign("foreign-1", serde_json::json!({"value": "taken"}));
    let graph = h.graph(|s, p| {
        Thing::new("a").value("taken").add(s, p);
        Thing::new("b").value("free").add(s, p);
    });
    let p = h.plan(&graph).await;
    let report = names::check(&h.engine.ctx, &graph, &p, &NothingKnown).await;
    assert_eq!(report.problems.len(), 1, "{report:?}");
    let shown = report.problems[0].to_string();
    assert!(
        shown.contains("test:Thing \"a\" field `value`: the name `taken` is taken: foreign-1 belongs to elsewhere"),
        "{shown}"
    );
    assert_eq!(report.checked, ["test:Thing (2 names)"]);
    assert!(h.cloud.calls().is_empty(), "reads only: {:?}", h.cloud.calls());
}

/// Deletes run last: a resource that leaves the program is not deleted while a create of the
/// same run has failed (the way back, `deploy --atomic` or `rollback`, still has it).
#[tokio::test]
async fn a_failed_create_stops_the_runs_deletes_even_unrelated_ones() {
    let h = harness().await;
    let (_, report) = h
        .deploy(h.graph(|s, p| {
            Thing::new("old").value("1").add(s, p);
        }))
        .await;
    assert!(report.ok());
    h.cloud.refuse_on("new");
    let (_, report) = h
        .deploy(h.graph(|s, p| {
            Thing::new("new").value("1").add(s, p);
        }))
        .await;
    assert_eq!(report.failed().count(), 1, "{report:?}");
    assert_eq!(report.skipped().count(), 1, "the delete of `old` did not start: {report:?}");
    let state = h.engine.store.load().await.unwrap();
    assert!(state.resources.keys().any(|u| u.name() == "old"), "`old` is still there and recorded");
}
