//! Day-2 operations on the engine with the in-memory provider: every resource option, imports,
//! targeted runs.

use super::tests::{Harness, chain, harness};
use super::*;
use crate::model::{Options, Stack, Timeouts};
use crate::testing::MemoryProvider;
use crate::testing::Thing;
use serde_json::json;
use std::time::Duration;

impl Harness {
    async fn state(&self) -> State {
        self.engine.load_and_recover(None, false).await.unwrap().0
    }

    async fn plan_result(&self, graph: &Graph) -> Result<Plan, PlanError> {
        let state = self.state().await;
        let imports = self.engine.read_imports(graph, &state).await.unwrap();
        plan_with(graph, &state, &self.engine.registry, &PlanInputs { imports, ..Default::default() })
    }

    async fn deploy_with(&self, graph: Arc<Graph>) -> (Plan, ApplyReport) {
        let mut state = self.state().await;
        let p = self.plan_result(&graph).await.unwrap();
        let report = self.engine.apply(graph, &mut state, &p).await.unwrap();
        (p, report)
    }
}

#[tokio::test]
async fn protect_refuses_destroy_removal_and_replacement_until_lifted() {
    let h = harness().await;
    let protected = |zone: &'static str| {
        move |s: &mut Stack, p: &Arc<MemoryProvider>| {
            s.with(Options::new().protect(), |s| Thing::new("db").zone(zone).add(s, p));
            Thing::new("cache").add(s, p);
        }
    };
    h.deploy_with(h.graph(protected("a"))).await;
    let state = h.state().await;
    assert!(state.resources.values().any(|r| r.options.protect), "protect is recorded in state");

    let destroy = plan_destroy(&state, &h.engine.registry).unwrap_err().to_string();
    assert!(destroy.contains("test:Thing \"db\" would be deleted (option `protect`)"), "{destroy}");
    assert!(destroy.contains("remove `protect` from its options and deploy"), "{destroy}");
    assert!(!destroy.contains("cache"), "only the protected one is named: {destroy}");

    let without_db = h.graph(|s, p| {
        Thing::new("cache").add(s, p);
    });
    let removed = h.plan_result(&without_db).await;
    assert!(matches!(removed, Err(PlanError::Protected(_))), "removing it from the program is refused");
    let replaced = h.plan_result(&h.graph(protected("b"))).await.unwrap_err().to_string();
    assert!(replaced.contains("\"db\" would be replaced"), "{replaced}");
    assert!(h.cloud.calls().iter().all(|c| !c.starts_with("delete")), "nothing was deleted");

    // Lifted in the program: the plan says so, the deploy records it, then destroy works.
    let (p, _) = h
        .deploy_with(h.graph(|s, p| {
            Thing::new("db").add(s, p);
            Thing::new("cache").add(s, p);
        }))
        .await;
    let text = render::render_plan(&p);
    assert!(text.contains("option protect: lifted (recorded in state)"), "{text}");
    let state = h.state().await;
    assert!(state.resources.values().all(|r| !r.options.protect));
    assert_eq!(plan_destroy(&state, &h.engine.registry).unwrap().summary().delete, 2);
}

#[tokio::test]
async fn retain_on_delete_leaves_the_resource_in_the_cloud() {
    let h = harness().await;
    h.deploy_with(h.graph(|s, p| {
        s.with(Options::new().retain_on_delete(), |s| Thing::new("bucket").add(s, p));
    }))
    .await;
    h.cloud.clear_calls();
    let (p, report) = h.deploy_with(h.graph(|_, _| {})).await;
    assert!(report.ok());
    assert!(p.steps[0].retain);
    assert!(render::render_plan(&p).contains("forget (retain_on_delete: it stays in the cloud and leaves state)"));
    assert_eq!(h.cloud.objects().len(), 1, "still in the cloud");
    assert!(h.cloud.calls().is_empty(), "{:?}", h.cloud.calls());
    assert!(h.state().await.resources.is_empty(), "dropped from state");
}

#[tokio::test]
async fn ignore_changes_keeps_the_recorded_value_and_says_so() {
    let h = harness().await;
    h.deploy_with(h.graph(|s, p| {
        Thing::new("a").value("1").add(s, p);
    }))
    .await;
    h.cloud.clear_calls();
    let (p, _) = h
        .deploy_with(h.graph(|s, p| {
            s.with(Options::new().ignore_changes(["value"]), |s| Thing::new("a").value("2").add(s, p));
        }))
        .await;
    assert_eq!(p.steps[0].op, StepOp::Same);
    let text = render::render_plan(&p);
    assert!(
        text.contains("option ignore_changes: `value` differs in the program (\"2\"); the recorded value is kept"),
        "{text}"
    );
    assert!(h.cloud.calls().is_empty());
    // Other fields still apply, and the ignored one still is not sent.
    let (p, _) = h
        .deploy_with(h.graph(|s, p| {
            s.with(Options::new().ignore_changes(["value"]), |s| Thing::new("a").value("2").zone("a").add(s, p));
        }))
        .await;
    assert!(!p.has_changes());
    assert_eq!(h.cloud.objects().values().next().unwrap().1["value"], "1");

    // A field the type does not have is refused before anything runs.
    let mut s = Stack::new("t");
    s.with(Options::new().ignore_changes(["colour"]), |s| Thing::new("a").add(s, &h.provider));
    let err = s.finish().err().unwrap().to_string();
    assert!(
        err.contains("ignore_changes")
            && err.contains("no input field `colour`")
            && err.contains("parents, value, zone"),
        "{err}"
    );
}

#[tokio::test]
async fn delete_before_replace_and_depends_on_change_the_order() {
    let h = harness().await;
    let program = |zone: &'static str| {
        move |s: &mut Stack, p: &Arc<MemoryProvider>| {
            let first = Thing::new("first").add(s, p);
            s.with(Options::new().delete_before_replace().depends_on(&first.urn), |s| {
                Thing::new("named").zone(zone).add(s, p)
            });
        }
    };
    h.deploy_with(h.graph(program("a"))).await;
    assert!(h.position("create first") < h.position("create named"), "depends_on orders the creates");
    h.cloud.clear_calls();
    let (p, report) = h.deploy_with(h.graph(program("b"))).await;
    assert!(report.ok());
    let step = p.steps.iter().find(|s| s.urn.name() == "named").unwrap();
    assert!(step.delete_first);
    assert!(
        render::render_plan(&p)
            .contains("option delete_before_replace: the old instance is deleted before the new one is made")
    );
    assert!(h.position("delete named") < h.position("create named"));
}

#[tokio::test]
async fn an_alias_renames_without_replacing() {
    let h = harness().await;
    h.deploy_with(h.graph(chain)).await;
    h.cloud.clear_calls();
    let renamed = |s: &mut Stack, p: &Arc<MemoryProvider>| {
        let a = s.with(Options::new().alias("a"), |s| Thing::new("alpha").value("1").add(s, p));
        let b = Thing::new("b").value("1").parent(&a).add(s, p);
        Thing::new("c").value("1").parent(&b).add(s, p);
        Thing::new("d").value("1").add(s, p);
    };
    let (p, report) = h.deploy_with(h.graph(renamed)).await;
    assert!(report.ok());
    let alpha = p.steps.iter().find(|s| s.urn.name() == "alpha").unwrap();
    assert_eq!((alpha.op, alpha.renamed_from.as_ref().map(|u| u.name())), (StepOp::Same, Some("a")));
    assert!(
        render::render_plan(&p)
            .contains("rename (renamed from \"a\" by an alias: its record moves, nothing is replaced)")
    );
    assert_eq!(p.summary().delete, 0);
    assert!(h.cloud.calls().is_empty(), "{:?}", h.cloud.calls());
    let state = h.state().await;
    assert!(state.resources.keys().any(|u| u.name() == "alpha") && !state.resources.keys().any(|u| u.name() == "a"));
    assert!(state.resources.values().any(|r| r.deps.iter().any(|d| d.name() == "alpha")), "dependents follow");
    let (p, _) = h.deploy_with(h.graph(renamed)).await;
    assert!(!p.has_changes());
}

#[tokio::test]
async fn custom_timeouts_limit_the_waits_and_are_shown() {
    let h = harness().await;
    let g = h.graph(|s, p| {
        s.with(Options::new().timeouts(Timeouts::new().create(Duration::from_secs(5400))), |s| {
            Thing::new("db").add(s, p)
        });
    });
    let text = render::render_plan(&h.plan(&g).await);
    assert!(text.contains("option custom_timeouts: create waits up to 1h 30m"), "{text}");
    // The limit reaches every wait of the step.
    let inside = provider::with_wait_limit(Some(Duration::from_secs(7)), async {
        provider::wait_limit(Duration::from_secs(600))
    })
    .await;
    assert_eq!(
        (inside, provider::wait_limit(Duration::from_secs(600))),
        (Duration::from_secs(7), Duration::from_secs(600))
    );
}

#[tokio::test]
async fn an_import_records_what_is_there_and_updates_only_the_differences() {
    let h = harness().await;
    h.cloud.insert_foreign("legacy-1", json!({"value": "1", "zone": "a", "parents": []}));
    let program = |value: &'static str| {
        move |s: &mut Stack, p: &Arc<MemoryProvider>| {
            s.with(Options::new().import("legacy-1"), |s| Thing::new("adopted").value(value).add(s, p));
        }
    };
    // Matching: recorded, nothing sent.
    let (p, report) = h.deploy_with(h.graph(program("1"))).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!((p.steps[0].op, p.summary().import), (StepOp::Import, 1));
    assert!(
        render::render_plan(&p)
            .contains("=   test:Thing \"adopted\"  import `legacy-1` (recorded as it is: it matches the program)")
    );
    assert_eq!(h.cloud.calls(), ["import adopted"]);
    let state = h.state().await;
    assert_eq!(state.resources.values().next().unwrap().outputs["id"], "legacy-1");
    assert_eq!(h.cloud.objects().len(), 1, "nothing created");
    let (p, _) = h.deploy_with(h.graph(program("1"))).await;
    assert!(!p.has_changes(), "once imported, the option is inert");
}

#[tokio::test]
async fn an_import_that_differs_is_updated_and_one_that_would_replace_is_refused() {
    let h = harness().await;
    h.cloud.insert_foreign("legacy-1", json!({"value": "old", "zone": "a", "parents": []}));
    h.cloud.insert_foreign("legacy-2", json!({"value": "x", "zone": "z", "parents": []}));
    let (p, report) = h
        .deploy_with(h.graph(|s, p| {
            s.with(Options::new().import("legacy-1"), |s| Thing::new("adopted").value("new").add(s, p));
        }))
        .await;
    assert!(report.ok());
    let text = render::render_plan(&p);
    assert!(text.contains("import `legacy-1`, then update where it differs from the program"), "{text}");
    assert!(text.contains("value: \"old\" => \"new\""), "{text}");
    assert_eq!(h.cloud.objects()["legacy-1"].1["value"], "new");
    assert!(h.cloud.calls().contains(&"update adopted".to_string()));

    let refused = h
        .plan_result(&h.graph(|s, p| {
            s.with(Options::new().import("legacy-2"), |s| Thing::new("other").value("x").zone("a").add(s, p));
        }))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused
            .contains("importing `legacy-2` would replace it: `zone` is \"z\" in the cloud and \"a\" in the program"),
        "{refused}"
    );
    let missing = h
        .plan_result(&h.graph(|s, p| {
            s.with(Options::new().import("nope"), |s| Thing::new("other").add(s, p));
        }))
        .await
        .unwrap_err()
        .to_string();
    assert!(missing.contains("there is no test:Thing `nope` to import"), "{missing}");

    // `import` adopts one resource: a scope that declares two is refused.
    let mut s = Stack::new("t");
    s.with(Options::new().import("legacy-2"), |s| {
        Thing::new("x").add(s, &h.provider);
        Thing::new("y").add(s, &h.provider);
    });
    let err = s.finish().err().unwrap().to_string();
    assert!(err.contains("adopts one resource, and this scope declared 2"), "{err}");
}

#[tokio::test]
async fn targets_bring_what_they_need_and_exclusions_what_needs_them() {
    let h = harness().await;
    let g = h.graph(chain);
    let state = h.state().await;
    let select = |t: &[&str], x: &[&str]| {
        let t: Vec<String> = t.iter().map(|s| s.to_string()).collect();
        let x: Vec<String> = x.iter().map(|s| s.to_string()).collect();
        Selection::resolve(&t, &x, Some(&g), &state)
    };
    let names = |p: &Plan| p.steps.iter().map(|s| s.urn.name().to_string()).collect::<Vec<_>>();
    let plan_of = |sel: Option<Selection>| {
        plan_with(&g, &state, &h.engine.registry, &PlanInputs { selection: sel, ..Default::default() }).unwrap()
    };
    let p = plan_of(select(&["c"], &[]).unwrap());
    assert_eq!(names(&p), ["a", "b", "c"]);
    let text = render::render_plan(&p);
    assert!(text.contains("partial run (--target 't::test:Thing::c'): 3 of 4 resources are considered; the other 1 are left as they are"), "{text}");
    assert_eq!(names(&plan_of(select(&[], &["b"]).unwrap())), ["a", "d"]);
    assert_eq!(names(&plan_of(select(&["test:Thing::d"], &[]).unwrap())), ["d"]);

    let err = select(&["nothing-here"], &[]).unwrap_err();
    assert!(err.contains("`--target nothing-here` names no resource of stack `t`"), "{err}");

    // Deployed partially: only the selection is created.
    let mut state = h.state().await;
    let p = plan_of(select(&["b"], &[]).unwrap());
    h.engine.apply(g.clone(), &mut state, &p).await.unwrap();
    assert_eq!(h.cloud.objects().len(), 2);
    // Destroy of a target takes what depends on it along (first).
    let state = h.state().await;
    let sel = Selection::resolve(&["a".into()], &[], None, &state).unwrap();
    let p = plan_destroy_with(&state, &h.engine.registry, sel.as_ref()).unwrap();
    assert_eq!(names(&p), ["b", "a"]);
    let sel = Selection::resolve(&[], &["a".into()], None, &state).unwrap();
    assert_eq!(names(&plan_destroy_with(&state, &h.engine.registry, sel.as_ref()).unwrap()), ["b"]);
    let sel = Selection::resolve(&[], &["b".into()], None, &state).unwrap();
    assert!(
        plan_destroy_with(&state, &h.engine.registry, sel.as_ref()).unwrap().steps.is_empty(),
        "b stays, and it needs a"
    );
}
