//! Day-2 operations against the emulator: targeted runs, state commands (with their refusals and
//! undo), import of a live subnet, history and diff through the example stack's command line;
//! protect and import through the engine.

use fabric::aws::ec2::Vpc;
use fabric::engine::{PlanError, PlanInputs, plan_destroy, plan_with};
use fabric::model::{Options, Stack};
use fabric_tests::Fixture;
use serde_json::Value;
use std::sync::Arc;

fn run(fx: &Fixture, state: &std::path::Path, args: &[&str]) -> std::process::Output {
    fabric_tests::stack_cli(crate::stack_command("example"), fx, state, "example", args)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stderr)
}

fn refused(out: &std::process::Output) -> String {
    assert_eq!(out.status.code(), Some(2), "stdout: {}\nstderr: {}", text(&out.stdout), text(&out.stderr));
    text(&out.stderr)
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_state_commands_import_history_and_diff_through_the_command_line() {
    let fx = Fixture::start().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("example");
    ok(&run(&fx, &state, &["deploy", "--yes"]));

    // state list: every resource, with its cloud id.
    let listed = json(&run(&fx, &state, &["state", "list", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 14);
    let subnet = listed.as_array().unwrap().iter().find(|r| r["urn"] == "example::aws:ec2:Subnet::public-a").unwrap();
    let subnet_id = subnet["id"].as_str().unwrap().to_string();
    assert!(subnet_id.starts_with("subnet-"), "{subnet}");

    // Targeted preview: said to be partial; a name two resources share, or none has, is refused.
    let out = run(&fx, &state, &["preview", "--json", "--target", "aws:ec2:Vpc::main"]);
    let plan = json(&out);
    assert_eq!(plan["steps"].as_array().unwrap().len(), 1, "{plan}");
    assert!(plan["partial"].as_str().unwrap().contains("1 of 14 resources are considered"), "{plan}");
    let err = refused(&run(&fx, &state, &["preview", "--target", "main"]));
    assert!(err.contains("`--target main` names 2 resources"), "{err}");
    let err = refused(&run(&fx, &state, &["deploy", "--yes", "--target", "no-such-thing"]));
    assert!(err.contains("`--target no-such-thing` names no resource of stack `example`"), "{err}");

    // state mv onto a URN in state is refused; state rm forgets without deleting.
    let err = refused(&run(&fx, &state, &["state", "mv", "aws:ec2:Subnet::public-a", "public-b", "--yes"]));
    assert!(err.contains("`example::aws:ec2:Subnet::public-b` is already in the state of stack `example`"), "{err}");
    let said = ok(&run(&fx, &state, &["state", "rm", "aws:ec2:Subnet::public-a", "--yes"]));
    assert!(
        said.contains("forgot example::aws:ec2:Subnet::public-a (history 2; `state undo 2` reverses it)"),
        "{said}"
    );
    let plan = json(&run(&fx, &state, &["preview", "--json"]));
    assert_eq!(plan["summary"]["create"], 1, "{plan}");
    assert!(fx.tagged("example").await.iter().any(|(_, id)| *id == subnet_id), "still in the cloud");

    // Discover finds it by its Name tag, with the line to paste.
    let out = run(&fx, &state, &["import", "--discover"]);
    let found = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        found.contains(&format!("cargo xtask import example 'example::aws:ec2:Subnet::public-a' {subnet_id}")),
        "{found}"
    );
    assert!(found.contains(&format!("Options::new().import(\"{subnet_id}\")")), "{found}");
    assert!(
        text(&out.stderr).contains("1 live resource found for the 1 importable resources of the program not in state"),
        "{}",
        text(&out.stderr)
    );

    // Import the live subnet back as the program's public-a: recorded as it is, nothing to change.
    let said = ok(&run(&fx, &state, &["import", "aws:ec2:Subnet::public-a", &subnet_id, "--yes"]));
    assert!(said.contains(&format!("import `{subnet_id}` (recorded as it is: it matches the program)")), "{said}");
    assert!(said.contains("It matches the program: the next deploy leaves it as it is."), "{said}");
    let plan = json(&run(&fx, &state, &["preview", "--json"]));
    assert_eq!(plan["summary"]["same"], 14, "{plan}");

    // Undo: the rm cannot be undone while the import holds the URN; undoing the import first can.
    let err = refused(&run(&fx, &state, &["state", "undo", "2", "--yes"]));
    assert!(
        err.contains("cannot undo history entry 2: `example::aws:ec2:Subnet::public-a` is in state again"),
        "{err}"
    );
    ok(&run(&fx, &state, &["state", "undo", "3", "--yes"]));
    ok(&run(&fx, &state, &["state", "undo", "2", "--yes"]));
    assert_eq!(json(&run(&fx, &state, &["preview", "--json"]))["summary"]["same"], 14);

    // Into another stack's state (beside this one), and back with undo.
    let said =
        ok(&run(&fx, &state, &["state", "mv", "aws:ec2:SecurityGroup::app", "app", "--to-stack", "other", "--yes"]));
    assert!(
        said.contains(
            "moved example::aws:ec2:SecurityGroup::app to stack `other` as other::aws:ec2:SecurityGroup::app (history 6"
        ),
        "{said}"
    );
    let other = std::fs::read_to_string(dir.path().join("other").join("state.json")).unwrap();
    assert!(other.contains("other::aws:ec2:SecurityGroup::app"), "{other}");
    assert_eq!(json(&run(&fx, &state, &["preview", "--json"]))["summary"]["create"], 1);
    ok(&run(&fx, &state, &["state", "undo", "6", "--yes"]));
    assert_eq!(json(&run(&fx, &state, &["preview", "--json"]))["summary"]["same"], 14);

    // A targeted destroy takes what depends on the target along, and nothing else.
    let out = run(&fx, &state, &["destroy", "--yes", "--target", "aws:ec2:SecurityGroup::lb"]);
    let said = ok(&out);
    assert!(said.contains("partial run (--target 'example::aws:ec2:SecurityGroup::lb')"), "{said}");
    let left = json(&run(&fx, &state, &["state", "list", "--json"]));
    let left: Vec<&str> = left.as_array().unwrap().iter().map(|r| r["urn"].as_str().unwrap()).collect();
    assert!(!left.iter().any(|u| u.contains("SecurityGroup::lb")), "{left:?}");
    assert!(left.iter().any(|u| u.contains("Vpc::main")) && left.len() < 14, "{left:?}");

    // History: newest first, with user, commit, summary and outcome; diff of the two runs.
    let history = json(&run(&fx, &state, &["history", "--json"]));
    let ops: Vec<&str> = history.as_array().unwrap().iter().map(|e| e["operation"].as_str().unwrap()).collect();
    assert_eq!(ops, ["destroy", "state undo", "state mv", "state undo", "state undo", "import", "state rm", "deploy"]);
    let deploy = &history[7];
    assert_eq!((deploy["id"].as_u64(), deploy["outcome"].as_str()), (Some(1), Some("succeeded")));
    assert!(deploy["summary"].as_str().unwrap().starts_with("14 to create"), "{deploy}");
    assert!(!deploy["user"].as_str().unwrap().is_empty() && deploy["commit"].is_string(), "{deploy}");
    let destroy_id = history[0]["id"].as_u64().unwrap().to_string();
    let out = run(&fx, &state, &["diff", "1", &destroy_id]);
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(shown.contains("- example::aws:ec2:SecurityGroup::lb  removed"), "{shown}");
    assert!(!shown.contains("Vpc::main"), "unchanged resources are not shown: {shown}");
    let err = refused(&run(&fx, &state, &["diff", "1", "99"]));
    assert!(err.contains("no history entry 99"), "{err}");

    // A targeted refresh reads the target only, says so, and is recorded too.
    let said = ok(&run(&fx, &state, &["refresh", "--target", "aws:ec2:Vpc::main"]));
    assert!(said.contains("1 of 11 resources are considered") && said.contains("read 1 resources, no drift"), "{said}");
    let history = json(&run(&fx, &state, &["history", "--json"]));
    assert_eq!(history[0]["operation"], "refresh");

    ok(&run(&fx, &state, &["destroy", "--yes"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protect_blocks_destroy_and_an_import_is_refused_when_it_would_replace() {
    let fx = Fixture::start().await;
    let engine = fx.engine("adopt").await;
    // A VPC made outside fabric: what a team already has.
    let made = fx.aws.ec2.create_vpc().cidr_block("10.42.0.0/16").send().await.unwrap();
    let vpc_id = made.vpc().unwrap().vpc_id().unwrap().to_string();
    fx.aws
        .ec2
        .create_tags()
        .resources(&vpc_id)
        .tags(aws_sdk_ec2::types::Tag::builder().key("Name").value("legacy").build())
        .send()
        .await
        .unwrap();

    let program = |cidr: &'static str, protect: bool| {
        let id = vpc_id.clone();
        move || {
            let mut s = Stack::new("adopt");
            let mut options = Options::new().import(id);
            if protect {
                options = options.protect();
            }
            s.with(options, |s| Vpc::builder().name("legacy").cidr(cidr).build().add_alone(s)).unwrap();
            Arc::new(s.finish().unwrap())
        }
    };
    let plan_of = |graph: Arc<fabric::model::Graph>| {
        let engine = &engine;
        async move {
            let (state, _) = engine.load_and_recover(Some(&graph), false).await.unwrap();
            let imports = engine.read_imports(&graph, &state).await.unwrap();
            plan_with(&graph, &state, &engine.registry, &PlanInputs { imports, ..Default::default() })
        }
    };

    // A different CIDR cannot change in place: the import is refused, naming the field.
    let err = plan_of(program("10.43.0.0/16", false)()).await.unwrap_err().to_string();
    assert!(err.contains(&format!("importing `{vpc_id}` would replace it: `cidr_block` is \"10.42.0.0/16\"")), "{err}");

    // The same CIDR: imported, recorded, no create.
    let graph = program("10.42.0.0/16", true)();
    let plan = plan_of(graph.clone()).await.unwrap();
    assert_eq!(plan.summary().import, 1, "{}", fabric::engine::render::render_plan(&plan));
    let (mut state, _) = engine.load_and_recover(Some(&graph), true).await.unwrap();
    let report = engine.apply(graph.clone(), &mut state, &plan).await.unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(state.resources.values().next().unwrap().outputs["id"], vpc_id.as_str());
    let vpcs = fx.aws.ec2.describe_vpcs().send().await.unwrap();
    assert_eq!(vpcs.vpcs().iter().filter(|v| v.cidr_block() == Some("10.42.0.0/16")).count(), 1, "nothing created");
    let again = plan_of(graph.clone()).await.unwrap();
    assert!(!again.has_changes(), "{}", fabric::engine::render::render_plan(&again));

    // Protected: destroy is refused before any call, and the VPC stays.
    let err = plan_destroy(&state, &engine.registry).unwrap_err();
    assert!(matches!(err, PlanError::Protected(_)), "{err}");
    assert!(err.to_string().contains("aws:ec2:Vpc \"legacy\" would be deleted (option `protect`)"), "{err}");
    let vpcs = fx.aws.ec2.describe_vpcs().vpc_ids(&vpc_id).send().await.unwrap();
    assert_eq!(vpcs.vpcs().len(), 1);
}

/// The cloud id an import takes, from what a deploy recorded (what `state list` shows a user).
fn import_id(type_name: &str, outputs: &Value) -> Option<String> {
    let s = |k: &str| outputs[k].as_str().map(String::from);
    match type_name {
        "aws:ec2:Vpc" | "aws:ec2:Subnet" | "aws:ec2:FlowLog" | "aws:route53:HostedZone" => s("id"),
        "aws:route53:Record" => Some(format!("{}/{}/{}", s("zone_id")?, s("name")?, s("type")?)),
        "aws:acm:Certificate" => s("arn"),
        "aws:rds:DbInstance" | "aws:rds:DbCluster" | "aws:rds:ClusterInstance" => s("identifier"),
        "aws:elasticache:SubnetGroup" => s("name"),
        "aws:elasticache:ReplicationGroup" => s("id"),
        "aws:eks:Cluster" => s("name"),
        "aws:eks:NodeGroup" => Some(format!("{}/{}", s("cluster_name")?, s("name")?)),
        "aws:iam:Role" => s("name"),
        "aws:s3:Bucket" => s("bucket"),
        _ => None,
    }
}

/// Every importable type of acme (VPC, its flow log, subnets, zone, records, certificate, RDS instance, the
/// cache's subnet group and replication group, EKS cluster and node group, IAM roles; the S3
/// bucket of the reference fabric) read back by its
/// cloud id matches the program exactly: a stack that adopts what another deploy made plans
/// `import` with no difference for each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_importable_type_reads_back_what_the_program_says() {
    let fx = Fixture::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../stacks");
    type Program = fn(&mut Stack) -> fabric::Result<()>;
    let cases: [(&str, &str, Program); 2] =
        [("acme", "dev", acme::program), ("reference", "develop", reference::program)];
    let mut imported_types = std::collections::BTreeSet::new();
    for (stack, env, program) in cases {
        let state_dir = dir.path().join(stack);
        let out = fabric_tests::stack_cli(
            crate::stack_command(stack),
            &fx,
            &state_dir,
            stack,
            &["deploy", "--local", "--yes", "--env", env],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let recorded: Value =
            serde_json::from_str(&std::fs::read_to_string(state_dir.join("state.json")).unwrap()).unwrap();

        let graph = fabric::testing::synthesize_env(stack, env, config.join(stack).join("config"), program).unwrap();
        let graph = Arc::new(graph.without(|n| n.type_name().starts_with("k8s:")));
        let mut ids = std::collections::HashMap::new();
        for node in graph.nodes() {
            let rec = &recorded["resources"][node.urn.as_str()];
            if !node.provider.importable() {
                continue;
            }
            // Every importable type needs its cloud id here: a type that becomes importable
            // fails this test until it is checked too.
            let id = import_id(node.type_name(), &rec["outputs"]).unwrap_or_else(|| {
                panic!("{} is importable: add how to read its cloud id to import_id", node.type_name())
            });
            ids.insert(node.urn.clone(), id);
        }
        assert!(!ids.is_empty());
        // A fresh state for the same stack: nothing recorded, everything there.
        let store = fabric::state::StateStore::open(
            Arc::new(fabric::state::LocalBackend::new(dir.path().join(format!("{stack}-adopter")))),
            graph.stack(),
            fabric::state::store::KeySource::LocalKeyFile,
        )
        .await
        .unwrap();
        let engine = fabric::engine::Engine::new(
            fabric::providers::context(graph.stack(), Some(fx.aws.clone())),
            Arc::new(store),
            fabric::providers::registry(),
        );
        let state = fabric::state::State::new(graph.stack());
        let imports = engine.read_imports_with(&graph, &state, &ids).await.unwrap();
        let inputs = PlanInputs { imports, import_ids: ids.clone(), ..Default::default() };
        let plan = plan_with(&graph, &state, &engine.registry, &inputs).unwrap();
        for step in plan.steps.iter().filter(|s| ids.contains_key(&s.urn)) {
            assert_eq!(step.op, fabric::engine::StepOp::Import, "{}", step.urn);
            // Values that are other resources' outputs (a zone from a lookup this deploy makes)
            // are compared at apply; every value known now matches.
            assert!(
                step.changes.iter().all(|c| c.new.as_ref().is_some_and(fabric::model::contains_unknown)),
                "{} read back differs from the program: {}",
                step.urn,
                fabric::engine::render::render_plan(&fabric::engine::Plan {
                    stack: plan.stack.clone(),
                    steps: vec![step.clone()],
                    partial: None
                })
            );
            imported_types.insert(step.type_name.clone());
        }
        let out = fabric_tests::stack_cli(
            crate::stack_command(stack),
            &fx,
            &state_dir,
            stack,
            &["destroy", "--local", "--yes", "--env", env],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let expected = [
        "aws:acm:Certificate",
        "aws:ec2:FlowLog",
        "aws:ec2:Subnet",
        "aws:ec2:Vpc",
        "aws:eks:Cluster",
        "aws:eks:NodeGroup",
        "aws:elasticache:ReplicationGroup",
        "aws:elasticache:SubnetGroup",
        "aws:iam:Role",
        "aws:rds:DbInstance",
        "aws:route53:HostedZone",
        "aws:route53:Record",
        "aws:s3:Bucket",
    ];
    assert_eq!(imported_types.into_iter().collect::<Vec<_>>(), expected);
}
