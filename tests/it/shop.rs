//! The shop stack (every AWS component together) against the emulator: deploys, then plans all
//! `same` with no API call; refresh finds no drift; the database's deletion protection stops a
//! destroy with a message saying how to lift it.

use fabric::engine::Outcome;
use fabric_tests::Fixture;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shop_deploys_and_stays_put() {
    let fx = Fixture::start().await;
    let engine = fx.engine("shop").await;
    let graph = Arc::new(fabric::testing::synthesize("shop", shop::program).unwrap());
    let (plan, report) = fx.deploy(&engine, graph.clone()).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(plan.summary().create, graph.nodes().len());

    fx.aws.calls.clear();
    let (plan, _) = fx.deploy(&engine, graph.clone()).await;
    assert!(!plan.has_changes(), "{}", fabric::engine::render::render_plan(&plan));
    assert!(fx.aws.calls.calls().is_empty(), "{:?}", fx.aws.calls.calls());
    let (mut st, _) = engine.load_and_recover(None, true).await.unwrap();
    let drift = engine.refresh(&mut st, None, false).await.unwrap();
    assert!(drift.drift.is_empty(), "{}", drift.render());

    let (_, report) = fabric::engine::Session::destroy_all(&engine).await.unwrap();
    let failed: Vec<_> = report.failed().collect();
    assert_eq!(failed.len(), 1, "{report:?}");
    let Outcome::Failed(m) = &failed[0].outcome else { unreachable!() };
    assert!(m.contains("has deletion protection: set `.deletion_protection(false)`"), "{m}");
    // Everything that does not depend on the database is gone.
    let lbs = fx.aws.elbv2.describe_load_balancers().send().await.unwrap();
    assert!(lbs.load_balancers().is_empty());
}
