//! Snapshots of what the components generate, and their validation.

use fabric::prelude::*;
use fabric::testing::{plan_against, rendered_inputs, synthesize};

#[test]
fn vpc_per_zone_nat_generates_a_three_zone_two_tier_network() {
    let graph = synthesize("snap", |s| {
        Vpc::builder().name("main").cidr("10.0.0.0/16").zones(3).nat(Nat::PerZone).build().add(s)?;
        Ok(())
    })
    .unwrap();
    insta::assert_json_snapshot!(rendered_inputs(&graph));
    let plan = plan_against(&graph, &fabric::state::State::new("snap"));
    insta::assert_snapshot!(fabric::engine::render::render_plan(&plan));
}

#[test]
fn vpc_without_nat_is_public_only_in_named_zones() {
    let graph = synthesize("snap", |s| {
        let net = Vpc::builder()
            .name("ref")
            .cidr("10.1.0.0/16")
            .zones(["us-east-2a", "us-east-2b", "us-east-2c"])
            .nat(Nat::None)
            .build()
            .add(s)?;
        assert!(net.private_subnets().is_empty());
        Ok(())
    })
    .unwrap();
    let types: Vec<&str> = graph.nodes().iter().map(|n| n.type_name()).collect();
    assert!(!types.contains(&"aws:ec2:NatGateway") && !types.contains(&"aws:ec2:AvailabilityZones"), "{types:?}");
    insta::assert_json_snapshot!(rendered_inputs(&graph));
}

#[test]
fn single_nat_serves_every_private_zone() {
    let graph = synthesize("snap", |s| {
        Vpc::builder().name("main").cidr("10.0.0.0/16").zones(2).nat(Nat::Single).build().add(s)?;
        Ok(())
    })
    .unwrap();
    let nats = graph.nodes().iter().filter(|n| n.type_name() == "aws:ec2:NatGateway").count();
    let egress: Vec<_> = graph.nodes().iter().filter(|n| n.urn.name().ends_with("-egress")).collect();
    assert_eq!((nats, egress.len()), (1, 2));
    for e in egress {
        assert!(e.deps.iter().any(|d| d.name() == "main/nat-a"), "{:?}", e.deps);
    }
}

type Program = Box<dyn FnOnce(&mut Stack) -> fabric::Result<()>>;

#[test]
fn invalid_vpcs_are_rejected_with_field_and_fix() {
    let cases: Vec<(Program, &str)> = vec![
        (
            Box::new(|s| Vpc::builder().name("one").cidr("10.0.0.0/16").zones(1).build().add(s).map(|_| ())),
            "fabric:Vpc \"one\" field `zones`: 1 zone(s) asked for; a production network spans 2 to 6",
        ),
        (
            Box::new(|s| Vpc::builder().name("many").cidr("10.0.0.0/16").zones(7).build().add(s).map(|_| ())),
            "fabric:Vpc \"many\" field `zones`: 7 zone(s)",
        ),
        (
            Box::new(|s| Vpc::builder().name("small").cidr("10.0.0.0/26").build().add(s).map(|_| ())),
            "fabric:Vpc \"small\" field `cidr`: 10.0.0.0/26 is too small",
        ),
        (
            Box::new(|s| {
                Vpc::builder()
                    .name("twice")
                    .cidr("10.0.0.0/16")
                    .zones(["us-east-2a", "us-east-2a"])
                    .build()
                    .add(s)
                    .map(|_| ())
            }),
            "fabric:Vpc \"twice\" field `zones`: a zone is named twice",
        ),
        (
            Box::new(|s| Vpc::builder().name("bad").cidr("10.0.0.0/99").build().add(s).map(|_| ())),
            "aws:ec2:Vpc \"bad\" field `cidr`: `10.0.0.0/99` is not an IPv4 CIDR block",
        ),
        (
            Box::new(|s| {
                Vpc::builder()
                    .name("zone")
                    .cidr("10.0.0.0/16")
                    .zones(["us-east-2a", "nowhere"])
                    .build()
                    .add(s)
                    .map(|_| ())
            }),
            "aws:ec2:Subnet \"zone/public-b\" field `zone`: `nowhere` is not an availability zone name",
        ),
    ];
    for (program, expected) in cases {
        let err = synthesize("bad", program).err().expect(expected).to_string();
        assert!(err.contains(expected), "expected `{expected}` in\n{err}");
    }
}
