//! Invalid variants of the example: each is rejected with a message naming the resource, the field
//! and a fix, all problems at once, and before any API call (a listener standing in for AWS sees no
//! connection).

use fabric::aws::ec2::Vpc;
use fabric::model::Stack;
use fabric::prelude::*;
use std::net::TcpListener;

type Program = Box<dyn FnOnce(&mut Stack) -> fabric::Result<()>>;

fn with_config(change: impl FnOnce(&mut example::Config)) -> Program {
    let mut cfg = example::Config::default();
    change(&mut cfg);
    Box::new(move |s| example::program_with(&cfg)(s))
}

/// The example plus `extra`, declared after it.
fn with_extra(extra: impl FnOnce(&mut Stack) -> fabric::Result<()> + 'static) -> Program {
    Box::new(move |s| {
        example::program(s)?;
        extra(s)
    })
}

/// (what, program, expected fragments of the message)
fn variants() -> Vec<(&'static str, Program, Vec<&'static str>)> {
    vec![
        (
            "CIDR syntax",
            with_config(|c| c.vpc_cidr = "10.0.0.0/33".into()),
            vec!["aws:ec2:Vpc \"main\" field `cidr`", "`10.0.0.0/33` is not an IPv4 CIDR block", "fix: write it as"],
        ),
        (
            "host bits",
            with_config(|c| c.vpc_cidr = "10.0.0.1/16".into()),
            vec!["aws:ec2:Vpc \"main\" field `cidr`", "has host bits set", "use the network address: `10.0.0.0/16`"],
        ),
        (
            "VPC too large",
            with_config(|c| c.vpc_cidr = "10.0.0.0/8".into()),
            vec!["aws:ec2:Vpc \"main\" field `cidr`", "/8; AWS allows /16 to /28"],
        ),
        (
            "subnet outside its VPC",
            with_config(|c| c.public_subnets[2].1 = "10.1.2.0/24".into()),
            vec![
                "aws:ec2:Subnet \"public-c\" field `cidr`",
                "`10.1.2.0/24` is outside VPC \"main\" (10.0.0.0/16)",
                "fix: choose a block inside 10.0.0.0/16",
            ],
        ),
        (
            "overlapping subnets",
            with_config(|c| c.public_subnets[1].1 = "10.0.0.128/25".into()),
            vec!["aws:ec2:Subnet \"public-b\" field `cidr`", "overlaps subnet \"public-a\" (10.0.0.0/24)"],
        ),
        (
            "zone name",
            with_config(|c| c.public_subnets[0].0 = "us-east-2".into()),
            vec!["field `zone`", "`us-east-2` is not an availability zone name"],
        ),
        (
            "duplicate names",
            with_config(|c| c.public_subnets[1].0 = "us-east-2a".into()),
            vec!["aws:ec2:Subnet \"public-a\" field `name`", "another aws:ec2:Subnet is already called `public-a`"],
        ),
        (
            "reserved tag",
            with_config(|c| c.tags.push(("aws:owner".into(), "me".into()))),
            vec!["aws:ec2:Vpc \"main\" field `tags`", "`aws:owner` uses a reserved prefix"],
        ),
        (
            "port out of range",
            with_config(|c| c.app_port = 70000),
            vec!["aws:ec2:SecurityGroupIngressRule \"app-from-lb\" field `ports`", "outside 0..=65535"],
        ),
        (
            "reference to a resource of another stack",
            with_extra(|s| {
                let mut elsewhere = Stack::new("other");
                let vpc = Vpc::builder().name("elsewhere").cidr("10.9.0.0/16").build().add_alone(&mut elsewhere)?;
                Subnet::builder().name("stray").vpc(&vpc).cidr("10.9.0.0/24").zone("us-east-2a").build().add(s)?;
                Ok(())
            }),
            vec![
                "aws:ec2:Subnet \"stray\" field `depends_on`",
                "refers to `other::aws:ec2:Vpc::elsewhere`, which is not declared in stack `example`",
            ],
        ),
        (
            "a rule with two sources",
            with_extra(|s| {
                let vpc = Vpc::builder().name("second").cidr("10.1.0.0/16").build().add_alone(s)?;
                let g = SecurityGroup::builder().name("g").vpc(&vpc).build().add(s)?;
                IngressRule::builder()
                    .name("both")
                    .group(&g)
                    .ports(22..=22)
                    .from_cidr("10.0.0.0/8")
                    .from_group(&g)
                    .build()
                    .add(s)?;
                Ok(())
            }),
            vec!["aws:ec2:SecurityGroupIngressRule \"both\" field `source`", "exactly one source"],
        ),
        (
            "all protocols with ports",
            with_extra(|s| {
                let vpc = Vpc::builder().name("second").cidr("10.1.0.0/16").build().add_alone(s)?;
                let g = SecurityGroup::builder().name("g").vpc(&vpc).build().add(s)?;
                IngressRule::builder()
                    .name("all")
                    .group(&g)
                    .protocol(Protocol::All)
                    .ports(0..=10)
                    .from_cidr("10.1.0.0/16")
                    .build()
                    .add(s)?;
                Ok(())
            }),
            vec!["field `ports`", "`Protocol::All` admits every port"],
        ),
        (
            "security group description",
            with_extra(|s| {
                let vpc = Vpc::builder().name("second").cidr("10.1.0.0/16").build().add_alone(s)?;
                SecurityGroup::builder().name("g").vpc(&vpc).description("café").build().add(s)?;
                Ok(())
            }),
            vec!["aws:ec2:SecurityGroup \"g\" field `description`"],
        ),
        (
            "route table of another VPC",
            with_extra(|s| {
                let a = Vpc::builder().name("a").cidr("10.1.0.0/16").build().add_alone(s)?;
                let b = Vpc::builder().name("b").cidr("10.2.0.0/16").build().add_alone(s)?;
                let subnet =
                    Subnet::builder().name("in-a").vpc(&a).cidr("10.1.0.0/24").zone("us-east-2a").build().add(s)?;
                let rt = RouteTable::builder().name("of-b").vpc(&b).build().add(s)?;
                RouteTableAssociation::builder().name("crossed").route_table(&rt).subnet(&subnet).build().add(s)?;
                Ok(())
            }),
            vec![
                "aws:ec2:RouteTableAssociation \"crossed\" field `subnet`",
                "is in VPC \"a\" but route table \"of-b\" is in VPC \"b\"",
            ],
        ),
        (
            "route destination",
            with_extra(|s| {
                let vpc = Vpc::builder().name("second").cidr("10.1.0.0/16").build().add_alone(s)?;
                let igw = InternetGateway::builder().name("second").vpc(&vpc).build().add(s)?;
                let rt = RouteTable::builder().name("second").vpc(&vpc).build().add(s)?;
                Route::builder().name("bad").route_table(&rt).destination("everywhere").gateway(&igw).build().add(s)?;
                Ok(())
            }),
            vec!["aws:ec2:Route \"bad\" field `destination`", "`everywhere` is not an IPv4 CIDR block"],
        ),
    ]
}

#[test]
fn each_invalid_variant_names_resource_field_and_fix_and_calls_nothing() {
    let all = variants();
    assert!(all.len() >= 10);
    for (what, program, fragments) in all {
        // What the stack reports.
        let mut s = Stack::new("example");
        program(&mut s).unwrap();
        let errors = s.finish().err().unwrap_or_else(|| panic!("{what}: accepted"));
        let text = errors.to_string();
        for f in &fragments {
            assert!(text.contains(f), "{what}: expected `{f}` in\n{text}");
        }
        assert!(text.contains("nothing was changed"), "{text}");
    }
    // And through the command line: exit code 2, and not one connection to the AWS endpoint.
    let aws = TcpListener::bind("127.0.0.1:0").unwrap();
    aws.set_nonblocking(true).unwrap();
    let endpoint = format!("http://{}", aws.local_addr().unwrap());
    let state = tempfile::tempdir().unwrap();
    for (what, program, _) in variants() {
        let args =
            ["example", "deploy", "--yes", "--endpoint", &endpoint, "--state-dir", state.path().to_str().unwrap()];
        let code = fabric::cli::run_with_args("example", args, program);
        assert_eq!(code, 2, "{what}");
        assert!(aws.accept().is_err(), "{what}: something connected to the AWS endpoint");
    }
    assert_eq!(std::fs::read_dir(state.path()).unwrap().count(), 0, "no state was written");
}

#[test]
fn all_problems_are_reported_together() {
    let mut s = Stack::new("example");
    with_config(|c| {
        c.vpc_cidr = "10.0.0.1/16".into();
        c.public_subnets[0].0 = "nowhere".into();
        c.app_port = -5;
    })(&mut s)
    .unwrap();
    let errors = s.finish().err().unwrap();
    assert_eq!(errors.0.len(), 3, "{errors}");
    assert!(errors.to_string().starts_with("the stack is invalid (3 problems); nothing was changed:"));
}

/// A component declared twice is one problem, not one per part, and the first line says so.
#[test]
fn a_duplicate_component_is_reported_once_with_its_consequences_counted() {
    let mut s = Stack::new("dup");
    for _ in 0..2 {
        fabric::aws::ec2::Vpc::builder()
            .name("main")
            .cidr("10.0.0.0/16")
            .zones(3)
            .nat(Nat::PerZone)
            .build()
            .add(&mut s)
            .unwrap();
    }
    let errors = s.finish().err().unwrap();
    let text = errors.to_string();
    assert_eq!(errors.0.len(), 1, "{text}");
    let first = text.lines().nth(1).unwrap();
    assert!(
        first.contains("aws:ec2:Vpc \"main\" field `name`: another aws:ec2:Vpc is already called `main`"),
        "{first}"
    );
    assert!(first.contains("follow from this one and are not shown"), "{first}");
}

/// An invalid network does not drag the database, the cluster and the load balancer built on it
/// into the report with fixes that do not apply.
#[test]
fn an_invalid_network_is_the_only_problem_reported() {
    let mut s = Stack::new("net");
    let net = fabric::aws::ec2::Vpc::builder().name("main").cidr("10.0.0.0/33").zones(3).build().add(&mut s).unwrap();
    RdsPostgres::builder().name("db").network(&net).build().add(&mut s).unwrap();
    let errors = s.finish().err().unwrap();
    let text = errors.to_string();
    assert!(!text.contains("use a network with NAT"), "{text}");
    assert!(text.contains("aws:ec2:Vpc \"main\" field `cidr`"), "{text}");
}

/// Values another program reads, in that program's grammar; contradictions in pod settings.
#[test]
fn kubernetes_values_the_schema_lets_through_are_refused() {
    use serde_json::json;
    let mut s = Stack::new("k8s");
    let cluster = ClusterRef::kubeconfig("kind");
    let pod = |resources: serde_json::Value, security: serde_json::Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "apps"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
            "spec": {"terminationGracePeriodSeconds": -5, "securityContext": security,
            "containers": [{"name": "web", "image": "nginx:1.27", "resources": resources,
                "readinessProbe": {"httpGet": {"path": "/", "port": 80}, "periodSeconds": -1}}]}}}})
    };
    Manifest::new(pod(
        json!({"requests": {"cpu": "2 cores", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}),
        json!({"runAsNonRoot": true, "runAsUser": 0}),
    ))
    .add(&mut s, &cluster)
    .unwrap();
    let text = s.finish().err().unwrap().to_string();
    for expected in [
        "field `spec.template.spec.containers[0].resources.requests.cpu`: `2 cores` is not a Kubernetes quantity",
        "field `spec.template.spec.containers[0].resources.requests.memory`: the request \"2Gi\" is above the limit \"1Gi\"",
        "field `spec.template.spec.containers[0].securityContext.runAsUser`: runs as user 0 (root) while runAsNonRoot is true",
        "field `spec.template.spec.terminationGracePeriodSeconds`: -5 is negative",
        "field `spec.template.spec.containers[0].readinessProbe.periodSeconds`: -1 is negative",
    ] {
        assert!(text.contains(expected), "expected `{expected}` in\n{text}");
    }
}

#[test]
fn prometheus_durations_are_checked_with_prometheus_rules() {
    let mut s = Stack::new("metrics");
    let cluster = ClusterRef::kubeconfig("kind");
    Prometheus::builder()
        .name("metrics")
        .cluster(&cluster)
        .retention("forever")
        .scrape_interval("2 hours")
        .build()
        .add(&mut s)
        .unwrap();
    let text = s.finish().err().unwrap().to_string();
    assert!(text.contains("field `retention`: `forever` is not a Prometheus duration"), "{text}");
    assert!(text.contains("field `scrape_interval`: `2 hours` is not a Prometheus duration"), "{text}");
}
