//! State in S3 (against the emulator): conditional-put lock, journal, snapshot, encrypted secrets,
//! and a whole deploy with its state there.

use fabric::state::backend::Backend;
use fabric::state::s3::S3Backend;
use fabric::state::store::{KeySource, StateError};
use fabric::state::{JournalEntry, Op, StateStore};
use fabric_tests::{Fixture, example_graph};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_state_locks_journals_and_encrypts() {
    let fx = Fixture::start().await;
    fx.bucket("team-state").await;
    let backend = || Arc::new(S3Backend::new(fx.aws.s3.clone(), "team-state", "fabric", "example")) as Arc<dyn Backend>;

    // Remote state never keeps its key beside it.
    let err = StateStore::open(backend(), "example", KeySource::None).await.err().unwrap();
    assert!(err.to_string().contains("set FABRIC_PASSPHRASE"), "{err}");

    let pass = || KeySource::Passphrase("correct horse battery staple".into());
    let a = StateStore::open(backend(), "example", pass()).await.unwrap();
    let b = StateStore::open(backend(), "example", pass()).await.unwrap();
    a.lock("deploy").await.unwrap();
    match b.lock("deploy").await {
        Err(StateError::Locked { holder, .. }) => assert_eq!(holder.pid, std::process::id()),
        other => panic!("second lock: {other:?}"),
    }
    a.unlock().await.unwrap();
    b.lock("deploy").await.unwrap();
    b.unlock().await.unwrap();

    // Journal entries are separate objects, replayed in order, secrets encrypted.
    let urn = fabric::model::Urn::new("example", "test:Thing", "db");
    let secret = serde_json::json!({"password": {"$secret": "hunter2"}});
    a.record(&JournalEntry::Intent {
        urn: urn.clone(),
        op: Op::Create,
        type_name: "test:Thing".into(),
        inputs: secret.clone(),
        deps: vec![],
    })
    .await
    .unwrap();
    let listed =
        fx.aws.s3.list_objects_v2().bucket("team-state").prefix("fabric/example/journal/").send().await.unwrap();
    assert_eq!(listed.contents().len(), 1);
    let key = listed.contents()[0].key().unwrap().to_string();
    let body =
        fx.aws.s3.get_object().bucket("team-state").key(&key).send().await.unwrap().body.collect().await.unwrap();
    assert!(!String::from_utf8_lossy(&body.into_bytes()).contains("hunter2"));
    let mut state = b.load().await.unwrap();
    assert_eq!(state.pending[&urn].inputs, secret);
    b.save(&mut state).await.unwrap();
    let listed =
        fx.aws.s3.list_objects_v2().bucket("team-state").prefix("fabric/example/journal/").send().await.unwrap();
    assert!(listed.contents().is_empty(), "the snapshot absorbed the journal");
    assert_eq!(a.load().await.unwrap().pending[&urn].inputs, secret);

    // A wrong passphrase is refused.
    let wrong = StateStore::open(backend(), "example", KeySource::Passphrase("nope".into())).await.err().unwrap();
    assert!(wrong.to_string().contains("does not match"), "{wrong}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_with_state_in_s3() {
    let fx = Fixture::start().await;
    fx.bucket("ci-state").await;
    let store = StateStore::open(
        Arc::new(S3Backend::new(fx.aws.s3.clone(), "ci-state", "", "example")),
        "example",
        KeySource::Passphrase("pw".into()),
    )
    .await
    .unwrap();
    let engine = fabric::engine::Engine::new(
        fabric::providers::context("example", Some(fx.aws.clone())),
        Arc::new(store),
        fabric::providers::registry(),
    );
    let cfg = example::Config::default();
    let (plan, report) = fx.deploy(&engine, example_graph(&cfg)).await;
    assert!(report.ok());
    assert_eq!(plan.summary().create, 14);
    let plan = fx.preview(&engine, &example_graph(&cfg)).await;
    assert!(!plan.has_changes());
    let state = fx.aws.s3.get_object().bucket("ci-state").key("example/state.json").send().await.unwrap();
    let text = String::from_utf8(state.body.collect().await.unwrap().into_bytes().to_vec()).unwrap();
    assert!(text.contains("aws:ec2:Vpc"));
}

/// A run that lost its lock cannot overwrite the new holder's state: the lock check stops it, and
/// under it every write is conditional on what that run last saw (`If-Match`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_lost_its_lock_cannot_overwrite_the_state() {
    let fx = Fixture::start().await;
    fx.bucket("team-state").await;
    let backend = || Arc::new(S3Backend::new(fx.aws.s3.clone(), "team-state", "fabric", "example"));
    let pass = || KeySource::Passphrase("correct horse battery staple".into());
    let first = StateStore::open(backend(), "example", pass()).await.unwrap();
    first.save(&mut first.load().await.unwrap()).await.unwrap();

    let slow = StateStore::open(backend(), "example", pass()).await.unwrap();
    slow.lock("deploy").await.unwrap();
    let mut slow_state = slow.load().await.unwrap();
    // Another run judges the lock stale and takes it over, by compare-and-swap.
    let other = StateStore::open(backend(), "example", pass()).await.unwrap();
    let held = slow.read_lock().await.unwrap().unwrap();
    assert!(other.lock_or_take_over("deploy", |h| h.token == held.token).await.unwrap().is_some());
    other.save(&mut other.load().await.unwrap()).await.unwrap();
    let err = slow.save(&mut slow_state).await.unwrap_err().to_string();
    assert!(err.contains("no longer holds the lock"), "{err}");

    // Beneath the lock check: the snapshot write itself is conditional on the ETag this backend read.
    let a = backend();
    let b = backend();
    a.read("state.json").await.unwrap().unwrap();
    b.read("state.json").await.unwrap().unwrap();
    b.write("state.json", b"{\"from\": \"b\"}").await.unwrap();
    let err = a.write("state.json", b"{\"from\": \"a\"}").await.unwrap_err().to_string();
    assert!(err.contains("changed by another run since this run read it"), "{err}");
    assert_eq!(a.read("state.json").await.unwrap().unwrap(), b"{\"from\": \"b\"}");
    // Having read it again, it may write.
    a.write("state.json", b"{\"from\": \"a\"}").await.unwrap();
}

/// A bucket of that name that carries no tag of this resource is never configured, tagged or
/// deleted: the create fails, saying how to adopt it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_that_is_not_ours_is_never_taken_over() {
    let fx = Fixture::start().await;
    fx.bucket("someone-elses-bucket").await;
    let mut s = fabric::model::Stack::new("buckets");
    fabric::aws::s3::Bucket::builder().name("data").bucket("someone-elses-bucket").build().add(&mut s).unwrap();
    let engine = fx.engine("buckets").await;
    let (_, report) = fx.deploy(&engine, Arc::new(s.finish().unwrap())).await;
    let fabric::engine::Outcome::Failed(m) = &report.results[0].outcome else { panic!("{report:?}") };
    assert!(m.contains("S3 bucket someone-elses-bucket already exists and is not this stack's"), "{m}");
    assert!(m.contains("fabric:urn=buckets::aws:s3:Bucket::data"), "{m}");
    // A bucket made without tags has no tag set: S3 answers NoSuchTagSet, and nothing else.
    let tags = fx.aws.s3.get_bucket_tagging().bucket("someone-elses-bucket").send().await;
    match tags {
        Err(e) => {
            let code = aws_sdk_s3::error::ProvideErrorMetadata::code(&e).map(String::from);
            assert_eq!(code.as_deref(), Some("NoSuchTagSet"), "{e:?}");
        }
        Ok(t) => panic!("tags were put on someone else's bucket: {:?}", t.tag_set()),
    }
    assert!(engine.store.load().await.unwrap().resources.is_empty());
}
