//! EKS against the emulator: a cluster with pools of different shapes (general, memory-heavy
//! with a taint, GPU scaled from zero), add-ons and an admin; no-op with no API call; a pool
//! resized and relabelled in place; destroy leaves no cluster.
//!
//! The emulator implements clusters and node groups but not add-ons or access entries (recorded
//! as emulator gaps, reported after the deploy), nor cluster security groups.

use fabric::prelude::*;
use fabric_tests::Fixture;
use std::sync::Arc;

/// The stack as `--local` runs it: the cluster's own Kubernetes objects (the Cluster Autoscaler)
/// left out, since the emulator's EKS has no API server.
fn synthesize(program: impl Fn(&mut Stack) -> fabric::Result<()>) -> Arc<fabric::model::Graph> {
    let graph = fabric::testing::synthesize("eks", program).unwrap();
    assert!(graph.nodes().iter().any(|n| n.type_name() == "k8s:apps/v1:Deployment"), "the autoscaler is declared");
    Arc::new(graph.without(|n| n.type_name().starts_with(fabric::k8s::TYPE_PREFIX)))
}

async fn node_groups(fx: &Fixture) -> Vec<String> {
    let groups = fx.aws.eks.list_nodegroups().cluster_name("eks-main").send().await.unwrap();
    let mut names = groups.nodegroups().to_vec();
    names.sort();
    names
}

fn program(general_max: i32, memory_label: &'static str) -> impl Fn(&mut Stack) -> fabric::Result<()> {
    program_with(general_max, memory_label, "t3.large")
}

fn program_with(
    general_max: i32,
    memory_label: &'static str,
    general_type: &'static str,
) -> impl Fn(&mut Stack) -> fabric::Result<()> {
    move |s| {
        let net = Vpc::builder().name("main").cidr("10.20.0.0/16").zones(3).nat(Nat::Single).build().add(s)?;
        EksCluster::builder()
            .name("main")
            .network(&net)
            .pool(
                NodePool::builder()
                    .name("general")
                    .instance_types(vec![general_type.into()])
                    .size(2..=general_max)
                    .build(),
            )
            .pool(
                NodePool::builder()
                    .name("memory")
                    .instance_types(vec!["r6i.xlarge".into()])
                    .size(1..=3)
                    .label("workload", memory_label)
                    .taint("workload", "memory", "NO_SCHEDULE")
                    .build(),
            )
            .pool(
                NodePool::builder()
                    .name("gpu")
                    .instance_types(vec!["g5.xlarge".into()])
                    .size(0..=2)
                    .ami_type("AL2023_x86_64_NVIDIA")
                    .capacity(Capacity::Spot)
                    .build(),
            )
            .admin("arn:aws:iam::123456789012:role/platform")
            .build()
            .add(s)?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_with_three_pools_lives_and_dies() {
    let fx = Fixture::start().await;
    let engine = fx.engine("eks").await;
    let graph = synthesize(program(6, "memory"));
    let (plan, report) = fx.deploy(&engine, graph.clone()).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(plan.summary().create, graph.nodes().len());

    let cluster = fx.aws.eks.describe_cluster().name("eks-main").send().await.unwrap().cluster.unwrap();
    // Secrets envelope-encrypted with the stack's own key, which rotates yearly.
    let key_arn = cluster.encryption_config()[0].provider().unwrap().key_arn().unwrap().to_string();
    let kms = &fx.aws.kms;
    let key = kms.describe_key().key_id(&key_arn).send().await.unwrap().key_metadata.unwrap();
    assert_eq!(key.key_state().map(|s| s.as_str()), Some("Enabled"));
    let rotation = kms.get_key_rotation_status().key_id(&key_arn).send().await.unwrap();
    assert!(rotation.key_rotation_enabled());
    let vpc = cluster.resources_vpc_config().unwrap();
    assert!(vpc.endpoint_private_access() && vpc.endpoint_public_access());
    assert_eq!(vpc.subnet_ids().len(), 3, "the private subnets of three zones");
    let names = node_groups(&fx).await;
    let pools: Vec<&str> = names.iter().map(|n| n.rsplit_once('-').unwrap().0).collect();
    assert_eq!(pools, ["general", "gpu", "memory"], "each pool's name with a hash of its settings: {names:?}");
    let memory =
        fx.aws.eks.describe_nodegroup().cluster_name("eks-main").nodegroup_name(&names[2]).send().await.unwrap();
    let memory = memory.nodegroup.unwrap();
    assert_eq!(memory.taints().len(), 1);
    assert_eq!(memory.labels().unwrap()["workload"], "memory");
    // Nodes boot from a launch template: IMDSv2 only, one hop (pods cannot take the node's role),
    // an encrypted gp3 root volume of the pool's size; the node group itself names no disk.
    let template = memory.launch_template().expect("a launch template");
    let versions = fx
        .aws
        .ec2
        .describe_launch_template_versions()
        .launch_template_id(template.id().unwrap())
        .versions(template.version().unwrap())
        .send()
        .await
        .unwrap();
    let data = versions.launch_template_versions()[0].launch_template_data().unwrap();
    let metadata = data.metadata_options().unwrap();
    assert_eq!(metadata.http_tokens().map(|t| t.as_str()), Some("required"));
    assert_eq!(metadata.http_put_response_hop_limit(), Some(1));
    let root = data.block_device_mappings().iter().find(|m| m.device_name() == Some("/dev/xvda")).unwrap();
    let ebs = root.ebs().unwrap();
    assert_eq!((ebs.encrypted(), ebs.volume_type().map(|v| v.as_str())), (Some(true), Some("gp3")));
    assert_eq!(ebs.volume_size(), Some(50));
    let (state, _) = engine.load_and_recover(None, false).await.unwrap();
    let outputs = &state.outputs;
    assert!(outputs["kubeconfig"].as_str().unwrap().contains("--cluster-name"), "{outputs:?}");
    let gaps: Vec<_> = state.resources.values().filter(|r| r.outputs.get("emulator_gap").is_some()).collect();
    assert_eq!(
        gaps.len(),
        6 + 1 + 1 + 1,
        "six add-ons, the access entry, the cluster security group, the autoscaler's pod identity"
    );

    fx.aws.calls.clear();
    let (plan, _) = fx.deploy(&engine, graph).await;
    assert!(!plan.has_changes(), "{}", fabric::engine::render::render_plan(&plan));
    assert!(fx.aws.calls.calls().is_empty(), "{:?}", fx.aws.calls.calls());

    // Bigger general pool, relabelled memory pool: updated in place.
    let graph = synthesize(program(9, "memory-heavy"));
    let (plan, report) = fx.deploy(&engine, graph).await;
    assert!(report.ok(), "{report:?}");
    let s = plan.summary();
    assert_eq!(
        (s.update, s.replace, s.create, s.delete),
        (2, 0, 0, 0),
        "{}",
        fabric::engine::render::render_plan(&plan)
    );
    assert!(fx.aws.calls.writes().iter().all(|c| c == "EKS.UpdateNodegroupConfig"), "{:?}", fx.aws.calls.writes());
    let general =
        fx.aws.eks.describe_nodegroup().cluster_name("eks-main").nodegroup_name(&names[0]).send().await.unwrap();
    assert_eq!(general.nodegroup.unwrap().scaling_config().unwrap().max_size(), Some(9));
    assert_eq!(node_groups(&fx).await, names, "updated in place: the same node groups");

    // New instance types: a new node group (a new name), created before the old one is deleted;
    // the cloud shows the new types, and the next preview has nothing to do.
    let graph = synthesize(program_with(9, "memory-heavy", "m6i.large"));
    let (plan, report) = fx.deploy(&engine, graph.clone()).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(plan.summary().replace, 1, "{}", fabric::engine::render::render_plan(&plan));
    let now = node_groups(&fx).await;
    assert_eq!(now.len(), 3, "the old general pool is gone: {now:?}");
    assert!(!now.contains(&names[0]) && now[0].starts_with("general-"), "{now:?}");
    let general = fx.aws.eks.describe_nodegroup().cluster_name("eks-main").nodegroup_name(&now[0]).send().await;
    assert_eq!(general.unwrap().nodegroup.unwrap().instance_types(), ["m6i.large"]);
    assert!(!fx.preview(&engine, &graph).await.has_changes());

    let (_, report) = fabric::engine::Session::destroy_all(&engine).await.unwrap();
    assert!(report.ok(), "{report:?}");
    assert!(fx.aws.eks.list_clusters().send().await.unwrap().clusters().is_empty());
    let key = kms.describe_key().key_id(&key_arn).send().await.unwrap().key_metadata.unwrap();
    assert_eq!(key.key_state().map(|s| s.as_str()), Some("PendingDeletion"), "KMS keys are deleted after a wait");
    assert_eq!(fx.tagged("eks").await, vec![]);
}

/// Preflight against the emulator, for what it can answer: an instance type that does not exist
/// and a zone of another region are found before any write; the call log holds reads only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_finds_what_only_aws_can_judge_before_any_write() {
    let fx = Fixture::start().await;
    let engine = fx.engine("eks").await;
    let graph = synthesize(|s| {
        let net = Vpc::builder()
            .name("main")
            .cidr("10.20.0.0/16")
            .zones(vec!["us-east-2a".to_string(), "us-east-2b".into(), "us-west-2c".into()])
            .nat(Nat::Single)
            .build()
            .add(s)?;
        EksCluster::builder()
            .name("main")
            .network(&net)
            .pool(
                NodePool::builder()
                    .name("general")
                    .instance_types(vec!["m9z.huge".into(), "t3.large".into()])
                    .size(2..=4)
                    .build(),
            )
            .build()
            .add(s)?;
        Ok(())
    });
    let (state, _) = engine.load_and_recover(Some(&graph), false).await.unwrap();
    let plan = fabric::engine::plan(&graph, &state, &engine.registry).unwrap();
    fx.aws.calls.clear();
    let pf = fabric::aws::preflight::run(&fx.aws, &graph, &plan, &state).await;
    let problems: Vec<String> = pf.problems.iter().map(|p| p.to_string()).collect();
    assert!(
        problems.iter().any(|p| p.contains("`us-west-2c` is not an available zone of region us-east-2")),
        "{problems:#?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("instance type `m9z.huge` does not exist or is not offered")),
        "{problems:#?}"
    );
    assert!(!problems.iter().any(|p| p.contains("t3.large")), "t3.large is offered: {problems:#?}");
    assert!(fx.aws.calls.writes().is_empty(), "preflight only reads: {:?}", fx.aws.calls.writes());
    let calls = fx.aws.calls.calls();
    assert_eq!(calls.iter().filter(|c| c.ends_with("DescribeInstanceTypeOfferings")).count(), 1, "batched: {calls:?}");
    assert!(pf.summary().contains("skipped"), "says what the emulator could not answer: {}", pf.summary());
}
