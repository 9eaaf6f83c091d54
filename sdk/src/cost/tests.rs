use super::*;
use serde_json::json;

use crate::policy::tests::res;

fn view(resources: Vec<PolicyResource>) -> PolicyView {
    PolicyView::new("t", false, resources)
}

fn pool(min: i64, max: i64, instance: &str) -> Vec<PolicyResource> {
    vec![
        res("aws:ec2:LaunchTemplate", "lt", json!({"disk_size_gib": 50}), &[]),
        res(
            "aws:eks:NodeGroup",
            "main/general",
            json!({"instance_types": [instance], "min_size": min, "max_size": max}),
            &[("aws:ec2:LaunchTemplate", "lt")],
        ),
    ]
}

fn one(e: &Estimate) -> &Money {
    assert_eq!(e.lines.len(), 1, "{:?}", e.lines);
    &e.lines[0].monthly
}

#[test]
fn a_node_pool_costs_its_range_of_nodes_with_their_disks() {
    let e = estimate(&view(pool(2, 4, "t3.large")), "us-east-1", &BTreeMap::new());
    // t3.large $0.0832 × 730 h + 50 GB × $0.08 = $64.736 a node.
    assert_eq!(one(&e), &Money::Range(129.47, 258.94));
    assert_eq!((e.low, e.high), (129.47, 258.94));
    assert_eq!(e.lines[0].what, "2–4 × t3.large, 50 GB gp3 each");
}

#[test]
fn multi_az_doubles_a_database_and_its_storage() {
    let db = |multi_az: bool| {
        res(
            "aws:rds:DbInstance",
            "db",
            json!({"instance_class": "db.t4g.micro", "allocated_storage": 20, "multi_az": multi_az}),
            &[],
        )
    };
    let single = estimate(&view(vec![db(false)]), "us-east-1", &BTreeMap::new());
    let multi = estimate(&view(vec![db(true)]), "us-east-1", &BTreeMap::new());
    // $0.016 × 730 + 20 GB × $0.115.
    assert_eq!(one(&single), &Money::Known(13.98));
    assert_eq!(one(&multi), &Money::Known(27.96));
}

#[test]
fn a_price_not_in_the_table_is_unknown_by_name_and_never_zero() {
    let e = estimate(&view(pool(1, 1, "x9.mega")), "us-east-1", &BTreeMap::new());
    assert!(matches!(one(&e), Money::Unknown(why) if why.contains("x9.mega")), "{:?}", e.lines);
    assert_eq!(e.unknown().count(), 1);
    let text = render_breakdown(&e);
    assert!(
        text.contains("unknown: aws:eks:NodeGroup \"main/general\": no price for `x9.mega` in us-east-1"),
        "{text}"
    );
    // A region without a table, and a type fabric does not price, are unknown too.
    let e = estimate(&view(pool(1, 1, "t3.large")), "ap-south-2", &BTreeMap::new());
    assert!(matches!(one(&e), Money::Unknown(why) if why.contains("no prices for region ap-south-2")));
    let e = estimate(&view(vec![res("aws:newservice:Thing", "x", json!({}), &[])]), "us-east-1", &BTreeMap::new());
    assert!(matches!(one(&e), Money::Unknown(why) if why.contains("no price model")));
}

#[test]
fn free_types_have_no_line() {
    let e = estimate(
        &view(vec![
            res("aws:ec2:Vpc", "main", json!({}), &[]),
            res("aws:iam:Role", "r", json!({}), &[]),
            res("k8s:apps/v1:Deployment", "api", json!({}), &[]),
        ]),
        "us-east-1",
        &BTreeMap::new(),
    );
    assert!(e.lines.is_empty(), "{:?}", e.lines);
}

#[test]
fn usage_comes_from_assumptions_a_stack_can_override() {
    let nat = || view(vec![res("aws:ec2:NatGateway", "nat", json!({}), &[])]);
    let default = estimate(&nat(), "us-east-1", &BTreeMap::new());
    assert_eq!(one(&default), &Money::Known(37.35));
    assert_eq!(default.assumptions.get("nat_gb_per_month"), Some(&100.0));
    let mine = BTreeMap::from([("nat_gb_per_month".to_string(), 1000.0)]);
    let heavy = estimate(&nat(), "us-east-1", &mine);
    assert_eq!(one(&heavy), &Money::Known(77.85));
    assert!(
        render_breakdown(&heavy)
            .contains("nat_gb_per_month = 1000 GB: data each NAT gateway processes a month (the stack's own figure)")
    );
}

#[test]
fn an_unknown_or_negative_assumption_is_refused() {
    let errors = check_assumptions("t", &BTreeMap::from([("nat_gb".to_string(), 5.0), ("alb_lcu".to_string(), -1.0)]));
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|e| e.problem.contains("`nat_gb` is not a usage assumption") && e.fix.contains("nat_gb_per_month"))
    );
    assert!(errors.iter().any(|e| e.problem.contains("`alb_lcu` is assumed to be -1")));
}

#[test]
fn volume_claims_cost_their_size_per_replica() {
    let sts = res(
        "k8s:apps/v1:StatefulSet",
        "metrics",
        json!({"manifest": {"spec": {"replicas": 2,
        "volumeClaimTemplates": [{"spec": {"resources": {"requests": {"storage": "100Gi"}}}}]}}}),
        &[],
    );
    let e = estimate(&view(vec![sts]), "us-east-1", &BTreeMap::new());
    assert_eq!(one(&e), &Money::Known(16.0));
    assert_eq!(gibibytes("1Ti"), Some(1024.0));
    assert_eq!(gibibytes("512Mi"), Some(0.5));
    assert_eq!(gibibytes("lots"), None);
}

#[test]
fn a_bigger_node_pool_shows_its_delta() {
    let before = estimate(&view(pool(2, 4, "t3.large")), "us-east-1", &BTreeMap::new());
    let after = estimate(&view(pool(3, 6, "t3.large")), "us-east-1", &BTreeMap::new());
    let diff = CostDiff { before, after };
    assert_eq!(diff.delta(), (64.74, 129.48));
    let text = render_diff(&diff);
    assert!(text.contains("$129.47–$258.94/month → $194.21–$388.42/month (+$64.74–+$129.48/month)"), "{text}");
    assert!(
        text.contains("aws:eks:NodeGroup \"main/general\": $129.47–$258.94 → $194.21–$388.42  3–6 × t3.large"),
        "{text}"
    );
    assert_eq!(diff.to_json()["delta"], json!({"low": 64.74, "high": 129.48}));
}

#[test]
fn the_table_is_dated_and_names_its_source() {
    let t = prices();
    assert!(crate::model::policy::valid_date(&t.date), "{}", t.date);
    assert!(!t.source.is_empty());
    for (region, table) in &t.regions {
        assert!(t.tables.contains_key(table), "{region} → {table}");
    }
}
