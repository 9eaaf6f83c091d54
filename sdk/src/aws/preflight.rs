//! Preflight: what only AWS can judge, asked before the first write.
//!
//! Between plan and apply (and in every preview), the values the plan is about to send are checked
//! with read-only calls — each distinct value once, never per resource:
//! - the caller's identity and the region (`sts:GetCallerIdentity`, `ec2:DescribeAvailabilityZones`):
//!   zones named for another region, more zones asked for than the region has;
//! - node pool instance types in the zones the stack uses (`ec2:DescribeInstanceTypeOfferings`);
//! - each service's own checks, in its module (`preflight`, marked in the service table): RDS
//!   engine version and class orderable as asked (`aws/rds/preflight.rs`), EKS add-ons and pinned
//!   versions (`aws/eks/preflight.rs`), ElastiCache engine versions and node types and the engine
//!   changes it cannot make (`aws/elasticache/preflight.rs`);
//! - account quotas against what the plan adds: Elastic IPs (`ec2:DescribeAccountAttributes`),
//!   VPCs per region (`servicequotas:GetServiceQuota`).
//!
//! Every problem is reported at once, in the validation format, and the deploy stops with nothing
//! changed. A check whose call the caller may not make, or the local emulator does not answer, is
//! skipped and said so; it never blocks a deploy by itself.

// Each check comes with its service's feature; the helpers they share are idle in a build with none.
#![cfg_attr(not(feature = "full"), allow(dead_code))]

use super::{Aws, describe};
use crate::engine::{Plan, StepOp};
use crate::model::{Graph, Lookup, Urn, ValidationError, contains_unknown};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// `aws::eks::NODE_GROUP`, named here so that preflight builds without the `eks` feature.
const NODE_GROUP: &str = "aws:eks:NodeGroup";

/// What preflight found and did.
#[derive(Debug, Default)]
pub struct Preflight {
    pub problems: Vec<ValidationError>,
    /// The checks made, in words.
    pub checked: Vec<String>,
    /// The checks that could not be made, and why.
    pub skipped: Vec<String>,
}

impl Preflight {
    /// Each problem as the run prints it (what tests assert on).
    #[cfg(test)]
    pub(crate) fn problem_lines(&self) -> Vec<String> {
        self.problems.iter().map(|p| p.to_string()).collect()
    }

    /// One line for the run's output (`Preflight: 6 checks passed; skipped: …`).
    pub fn summary(&self) -> String {
        let mut s = if self.problems.is_empty() {
            let passed = self.checked.len().saturating_sub(self.skipped.len());
            format!("Preflight: {passed} checks passed against AWS ({} skipped), nothing written", self.skipped.len())
        } else {
            format!("Preflight: {} problems in {} checks", self.problems.len(), self.checked.len())
        };
        for skip in &self.skipped {
            s.push_str(&format!("\n  skipped: {skip}"));
        }
        s
    }

    /// Adds what the check of names found ([`crate::engine::names::check`]).
    pub fn add_names(&mut self, names: crate::engine::names::NameReport) {
        self.problems.extend(names.problems);
        self.checked.extend(names.checked.into_iter().map(|c| format!("names of {c}")));
        self.checked.extend(names.skipped.iter().cloned());
        self.skipped.extend(names.skipped);
    }

    /// Records a problem of `urn`'s `field`: what is wrong, and how to fix it.
    pub(crate) fn problem(&mut self, urn: &Urn, field: &str, problem: String, fix: String) {
        self.problems.push(ValidationError { urn: urn.clone(), field: field.into(), problem, fix });
    }

    /// Records a check whose call failed as skipped (never as a problem).
    pub(crate) fn skip<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
        &mut self,
        aws: &Aws,
        check: &str,
        call: &str,
        e: &SdkError<E, HttpResponse>,
    ) {
        // The emulator answers what it lacks with HTTP 500, or 404 and a page of HTML.
        let why = if aws.emulator && super::error_code(e).is_none() {
            format!("the local emulator does not answer {call}")
        } else {
            format!("{call} failed: {}", describe(e))
        };
        self.skipped.push(format!("{check} ({why})"));
    }
}

/// Desired inputs by resource type.
pub type ByType = BTreeMap<String, Vec<(Urn, Value)>>;

/// What a service's checks see: the plan, and the desired inputs of what it creates, replaces or
/// updates, by type.
pub struct Changes<'a> {
    pub plan: &'a Plan,
    pub by_type: ByType,
}

impl Changes<'_> {
    /// The changing resources of type `t`, with their desired inputs.
    pub fn of(&self, t: &str) -> &[(Urn, Value)] {
        self.by_type.get(t).map(Vec::as_slice).unwrap_or_default()
    }
}

/// The desired inputs of the resources this plan creates, replaces or updates, by type.
fn changing(graph: &Graph, plan: &Plan, known: &dyn Lookup) -> ByType {
    let mut by_type = ByType::new();
    for step in
        plan.steps.iter().filter(|s| matches!(s.op, StepOp::Create | StepOp::Replace | StepOp::Update | StepOp::Import))
    {
        let Some(node) = graph.get(&step.urn) else { continue };
        if let Ok(inputs) = node.inputs(known) {
            by_type.entry(step.type_name.clone()).or_default().push((step.urn.clone(), inputs));
        }
    }
    by_type
}

/// A known text field of desired inputs.
pub(crate) fn text<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    v.get(field).filter(|f| !contains_unknown(f)).and_then(Value::as_str)
}

fn stack_urn(graph: &Graph, what: &str) -> Urn {
    Urn::new(graph.stack(), "fabric:Account", what)
}

/// Runs every check that `plan` calls for.
pub async fn run(aws: &Aws, graph: &Graph, plan: &Plan, known: &dyn Lookup) -> Preflight {
    let mut pf = Preflight::default();
    let changes = changing(graph, plan, known);
    if changes.is_empty() {
        return pf;
    }
    let region = aws.region();

    // Who is asking, and can they reach the region at all.
    pf.checked.push("caller identity".into());
    if let Err(e) = aws.sts.get_caller_identity().send().await {
        if aws.emulator && super::error_code(&e).is_none() {
            pf.skip(aws, "caller identity", "GetCallerIdentity", &e);
        } else {
            pf.problem(
                &stack_urn(graph, "caller"),
                "credentials",
                format!("cannot reach AWS in region {region} as this caller: {}", describe(&e)),
                "check the credentials (AWS_PROFILE, `aws sso login`, environment) and the region".into(),
            );
            return pf;
        }
    }

    #[cfg(feature = "ec2")]
    {
        let zones = check_zones(aws, graph, &changes, &mut pf, &region).await;
        check_instance_types(aws, &changes, &zones, &mut pf).await;
        check_quotas(aws, graph, plan, &changes, &mut pf).await;
    }
    // Each service's own checks (its module's `preflight`, named in the service table).
    super::service_preflight(aws, &Changes { plan, by_type: changes }, &mut pf).await;
    pf
}

#[cfg(feature = "ec2")]
/// The zones the stack's subnets use (named, or chosen for a zone count); problems for zones that
/// are not the region's, or counts it cannot meet.
async fn check_zones(aws: &Aws, graph: &Graph, changes: &ByType, pf: &mut Preflight, region: &str) -> Vec<String> {
    let subnets = changes.get(super::ec2::subnet::TYPE).map(Vec::as_slice).unwrap_or_default();
    let counts = changes.get(super::ec2::zones::TYPE).map(Vec::as_slice).unwrap_or_default();
    if subnets.is_empty() && counts.is_empty() && !changes.contains_key(NODE_GROUP) {
        return Vec::new();
    }
    pf.checked.push(format!("availability zones of {region}"));
    let out = match aws.ec2.describe_availability_zones().send().await {
        Ok(o) => o,
        Err(e) => {
            pf.skip(aws, "availability zones", "DescribeAvailabilityZones", &e);
            return Vec::new();
        }
    };
    let mut available: Vec<String> = out
        .availability_zones()
        .iter()
        .filter(|z| z.zone_type().is_none_or(|t| t == "availability-zone"))
        .filter(|z| z.state().is_none_or(|s| s.as_str() == "available"))
        .filter_map(|z| z.zone_name().map(str::to_string))
        .collect();
    available.sort();
    let mut used: BTreeSet<String> = BTreeSet::new();
    for (urn, inputs) in subnets {
        let Some(zone) = text(inputs, "availability_zone") else { continue };
        if available.iter().any(|z| z == zone) {
            used.insert(zone.to_string());
        } else {
            pf.problem(
                urn,
                "availability_zone",
                format!("`{zone}` is not an available zone of region {region}"),
                format!("use zones of {region}: {}", available.join(", ")),
            );
        }
    }
    for (urn, inputs) in counts {
        let n = inputs.get("count").and_then(Value::as_u64).unwrap_or(0) as usize;
        match super::ec2::zones::choose(&[], &available, n, region) {
            Ok(chosen) => used.extend(chosen),
            Err(e) => pf.problem(urn, "count", e.0, format!("ask for at most {} zones", available.len())),
        }
    }
    // Zones already chosen (in state) count too.
    for node in graph.nodes().iter().filter(|n| n.type_name() == super::ec2::subnet::TYPE) {
        if let Some(z) =
            node.inputs(&crate::model::NothingKnown).ok().as_ref().and_then(|i| text(i, "availability_zone"))
            && available.iter().any(|a| a == z)
        {
            used.insert(z.to_string());
        }
    }
    if used.is_empty() {
        used.extend(available.iter().take(3).cloned());
    }
    used.into_iter().collect()
}

#[cfg(feature = "ec2")]
/// Node pool instance types, each offered in every zone the stack uses.
async fn check_instance_types(aws: &Aws, changes: &ByType, zones: &[String], pf: &mut Preflight) {
    let pools = changes.get(NODE_GROUP).map(Vec::as_slice).unwrap_or_default();
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    for (_, inputs) in pools {
        for t in inputs.get("instance_types").and_then(Value::as_array).into_iter().flatten() {
            if let Some(t) = t.as_str() {
                wanted.insert(t.to_string());
            }
        }
    }
    if wanted.is_empty() || zones.is_empty() {
        return;
    }
    pf.checked.push(format!("instance types {} in {}", join(&wanted), zones.join(", ")));
    let filter = |name: &str, values: Vec<String>| {
        aws_sdk_ec2::types::Filter::builder().name(name).set_values(Some(values)).build()
    };
    let mut offered: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut pages = aws
        .ec2
        .describe_instance_type_offerings()
        .location_type(aws_sdk_ec2::types::LocationType::AvailabilityZone)
        .filters(filter("instance-type", wanted.iter().cloned().collect()))
        .filters(filter("location", zones.to_vec()))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(p) => {
                for o in p.instance_type_offerings() {
                    if let (Some(t), Some(z)) = (o.instance_type(), o.location()) {
                        offered.entry(t.as_str().to_string()).or_default().insert(z.to_string());
                    }
                }
            }
            Err(e) => {
                pf.skip(aws, "instance type offerings", "DescribeInstanceTypeOfferings", &e);
                return;
            }
        }
    }
    for (urn, inputs) in pools {
        for t in inputs.get("instance_types").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str)
        {
            let have = offered.get(t).cloned().unwrap_or_default();
            let missing: Vec<&String> = zones.iter().filter(|z| !have.contains(*z)).collect();
            if have.is_empty() {
                pf.problem(
                    urn,
                    "instance_types",
                    format!("instance type `{t}` does not exist or is not offered in {}", zones.join(", ")),
                    "check the spelling (`m6i.large`), or choose a type this region offers".into(),
                );
            } else if !missing.is_empty() {
                pf.problem(
                    urn,
                    "instance_types",
                    format!(
                        "instance type `{t}` is not offered in {} (offered in {})",
                        missing.iter().map(|z| z.as_str()).collect::<Vec<_>>().join(", "),
                        have.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                    "choose a type offered in every zone of the cluster, or list a second type the pool may fall back to".into(),
                );
            }
        }
    }
}

#[cfg(feature = "ec2")]
/// What the plan adds, against the account's quotas and what it already holds.
async fn check_quotas(aws: &Aws, graph: &Graph, plan: &Plan, changes: &ByType, pf: &mut Preflight) {
    let added = |t: &str| {
        let creates = plan.steps.iter().filter(|s| s.type_name == t && s.op == StepOp::Create).count() as i64;
        let deletes = plan.steps.iter().filter(|s| s.type_name == t && s.op == StepOp::Delete).count() as i64;
        creates - deletes
    };
    let eips = added(super::ec2::nat::EIP);
    if eips > 0 && changes.contains_key(super::ec2::nat::EIP) {
        pf.checked.push("Elastic IP quota".into());
        let quota = aws.ec2.describe_account_attributes().attribute_names("vpc-max-elastic-ips".into()).send().await;
        let held = aws.ec2.describe_addresses().send().await;
        match (quota, held) {
            (Ok(q), Ok(h)) => {
                let max = q
                    .account_attributes()
                    .iter()
                    .flat_map(|a| a.attribute_values())
                    .find_map(|v| v.attribute_value()?.parse::<i64>().ok());
                let held = h.addresses().len() as i64;
                if let Some(max) = max
                    && held + eips > max
                {
                    pf.problem(
                        &stack_urn(graph, "quotas"),
                        "elastic_ips",
                        format!(
                            "the plan needs {eips} more Elastic IPs; the account holds {held} of a quota of {max} in {}, so {} would be over",
                            aws.region(),
                            held + eips - max
                        ),
                        "release unused addresses, ask AWS for a higher quota (Service Quotas, L-0263D0A3), or use one NAT gateway (`Nat::Single`)".into(),
                    );
                }
            }
            (Err(e), _) => pf.skip(aws, "Elastic IP quota", "DescribeAccountAttributes", &e),
            (_, Err(e)) => pf.skip(aws, "Elastic IP quota", "DescribeAddresses", &e),
        }
    }
    let vpcs = added(super::ec2::vpc::TYPE);
    if vpcs > 0 {
        pf.checked.push("VPC quota".into());
        let quota = aws.quotas.get_service_quota().service_code("vpc").quota_code("L-F678F1CE").send().await;
        let held = aws.ec2.describe_vpcs().send().await;
        match (quota, held) {
            (Ok(q), Ok(h)) => {
                let max = q.quota().and_then(|q| q.value()).map(|v| v as i64);
                let held = h.vpcs().len() as i64;
                if let Some(max) = max
                    && held + vpcs > max
                {
                    pf.problem(
                        &stack_urn(graph, "quotas"),
                        "vpcs",
                        format!(
                            "the plan needs {vpcs} more VPCs; the account has {held} of a quota of {max} in {}",
                            aws.region()
                        ),
                        "delete unused VPCs, or ask AWS for a higher quota (Service Quotas, vpc L-F678F1CE)".into(),
                    );
                }
            }
            (Err(e), _) => pf.skip(aws, "VPC quota", "GetServiceQuota", &e),
            (_, Err(e)) => pf.skip(aws, "VPC quota", "DescribeVpcs", &e),
        }
    }
}

fn join(set: &BTreeSet<String>) -> String {
    set.iter().cloned().collect::<Vec<_>>().join(", ")
}

#[cfg(all(test, feature = "full"))]
mod tests {
    use super::*;

    #[test]
    fn the_node_group_type_is_the_eks_module_s() {
        assert_eq!(NODE_GROUP, crate::aws::eks::NODE_GROUP);
    }
    use crate::aws::RetryPolicy;
    use crate::aws::scripted::{Script, json, xml};
    use crate::engine::Step;
    use serde_json::json as j;

    const EC2: &str = "xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"";

    fn urn(t: &str, name: &str) -> Urn {
        Urn::new("demo", t, name)
    }

    fn changes(items: Vec<(&str, Urn, Value)>) -> BTreeMap<String, Vec<(Urn, Value)>> {
        let mut m: BTreeMap<String, Vec<(Urn, Value)>> = BTreeMap::new();
        for (t, u, v) in items {
            m.entry(t.to_string()).or_default().push((u, v));
        }
        m
    }

    fn offerings(pairs: &[(&str, &str)]) -> String {
        let items: String = pairs
            .iter()
            .map(|(t, z)| format!("<item><instanceType>{t}</instanceType><locationType>availability-zone</locationType><location>{z}</location></item>"))
            .collect();
        format!(
            "<DescribeInstanceTypeOfferingsResponse {EC2}><requestId>r</requestId><instanceTypeOfferingSet>{items}</instanceTypeOfferingSet></DescribeInstanceTypeOfferingsResponse>"
        )
    }

    #[tokio::test]
    async fn an_instance_type_not_offered_in_one_zone_and_one_that_does_not_exist() {
        let script = Script::new([xml(
            "EC2.DescribeInstanceTypeOfferings",
            200,
            &offerings(&[("m6i.large", "us-east-2a"), ("m6i.large", "us-east-2c")]),
        )]);
        let aws = script.aws(RetryPolicy::RealAccount);
        let pool = urn(crate::aws::eks::NODE_GROUP, "main/general");
        let c = changes(vec![(
            crate::aws::eks::NODE_GROUP,
            pool.clone(),
            j!({"instance_types": ["m6i.large", "m9z.huge"]}),
        )]);
        let zones = ["us-east-2a", "us-east-2b", "us-east-2c"].map(String::from);
        let mut pf = Preflight::default();
        check_instance_types(&aws, &c, &zones, &mut pf).await;
        script.assert_done();
        let sent = &script.sent()[0].body;
        assert!(
            sent.contains("m6i.large") && sent.contains("m9z.huge") && sent.contains("us-east-2b"),
            "one batched call: {sent}"
        );
        let problems = pf.problem_lines();
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(
            problems[0].contains("`m6i.large` is not offered in us-east-2b (offered in us-east-2a, us-east-2c)"),
            "{}",
            problems[0]
        );
        assert!(problems[1].contains("`m9z.huge` does not exist or is not offered"), "{}", problems[1]);
        assert!(problems[0].contains("aws:eks:NodeGroup \"main/general\" field `instance_types`"), "{}", problems[0]);
    }

    fn step(t: &str, name: &str, op: StepOp) -> Step {
        Step::new(urn(t, name), t, op, vec![])
    }

    #[tokio::test]
    async fn a_plan_needing_more_elastic_ips_than_the_quota_is_refused() {
        let script = Script::new([
            xml(
                "EC2.DescribeAccountAttributes",
                200,
                &format!(
                    "<DescribeAccountAttributesResponse {EC2}><requestId>r</requestId><accountAttributeSet><item><attributeName>vpc-max-elastic-ips</attributeName><attributeValueSet><item><attributeValue>5</attributeValue></item></attributeValueSet></item></accountAttributeSet></DescribeAccountAttributesResponse>"
                ),
            ),
            xml(
                "EC2.DescribeAddresses",
                200,
                &format!(
                    "<DescribeAddressesResponse {EC2}><requestId>r</requestId><addressesSet><item><publicIp>198.51.100.1</publicIp><allocationId>eipalloc-1</allocationId><domain>vpc</domain></item></addressesSet></DescribeAddressesResponse>"
                ),
            ),
        ]);
        let aws = script.aws(RetryPolicy::RealAccount);
        let eip = crate::aws::ec2::nat::EIP;
        let plan = Plan {
            stack: "demo".into(),
            steps: (0..5).map(|i| step(eip, &format!("nat-{i}"), StepOp::Create)).collect(),
            partial: None,
        };
        let c = changes(plan.steps.iter().map(|s| (eip, s.urn.clone(), j!({}))).collect());
        let graph = crate::model::Stack::new("demo").finish().unwrap();
        let mut pf = Preflight::default();
        check_quotas(&aws, &graph, &plan, &c, &mut pf).await;
        script.assert_done();
        assert_eq!(pf.problems.len(), 1);
        let p = pf.problems[0].to_string();
        assert!(p.contains("the plan needs 5 more Elastic IPs; the account holds 1 of a quota of 5"), "{p}");
        assert!(p.contains("Nat::Single"), "{p}");
    }

    #[tokio::test]
    async fn zones_of_another_region_and_too_many_zones_are_refused() {
        let zone = |n: &str| {
            format!(
                "<item><zoneName>{n}</zoneName><zoneState>available</zoneState><regionName>us-east-2</regionName><zoneType>availability-zone</zoneType></item>"
            )
        };
        let script = Script::new([xml(
            "EC2.DescribeAvailabilityZones",
            200,
            &format!(
                "<DescribeAvailabilityZonesResponse {EC2}><requestId>r</requestId><availabilityZoneInfo>{}{}{}</availabilityZoneInfo></DescribeAvailabilityZonesResponse>",
                zone("us-east-2a"),
                zone("us-east-2b"),
                zone("us-east-2c")
            ),
        )]);
        let aws = script.aws(RetryPolicy::RealAccount);
        let subnet = crate::aws::ec2::subnet::TYPE;
        let c = changes(vec![
            (subnet, urn(subnet, "main/public-a"), j!({"availability_zone": "us-east-2a"})),
            (subnet, urn(subnet, "main/public-x"), j!({"availability_zone": "us-west-2a"})),
            (crate::aws::ec2::zones::TYPE, urn(crate::aws::ec2::zones::TYPE, "other/zones"), j!({"count": 4})),
        ]);
        let graph = crate::model::Stack::new("demo").finish().unwrap();
        let mut pf = Preflight::default();
        let used = check_zones(&aws, &graph, &c, &mut pf, "us-east-2").await;
        script.assert_done();
        assert_eq!(used, ["us-east-2a"]);
        let problems = pf.problem_lines();
        assert!(problems[0].contains("`us-west-2a` is not an available zone of region us-east-2"), "{problems:?}");
        assert!(problems[0].contains("us-east-2a, us-east-2b, us-east-2c"), "{problems:?}");
        assert!(problems[1].contains("has 3 available zones; 4 were asked for"), "{problems:?}");
    }

    #[tokio::test]
    async fn rds_combinations_and_addon_versions_that_cannot_be_ordered() {
        let script = Script::new([
            xml(
                "RDS.DescribeOrderableDBInstanceOptions",
                200,
                "<DescribeOrderableDBInstanceOptionsResponse><DescribeOrderableDBInstanceOptionsResult><OrderableDBInstanceOptions/></DescribeOrderableDBInstanceOptionsResult></DescribeOrderableDBInstanceOptionsResponse>",
            ),
            json(
                "EKS.DescribeAddonVersions",
                200,
                j!({"addons": [{"addonName": "vpc-cni", "addonVersions": [{"addonVersion": "v1.19.2-eksbuild.1"}, {"addonVersion": "v1.19.0-eksbuild.1"}]}]}),
            ),
        ]);
        let aws = script.aws(RetryPolicy::RealAccount);
        let (rds, addon, cluster) = (crate::aws::rds::INSTANCE, crate::aws::eks::ADDON, crate::aws::eks::CLUSTER);
        let c = changes(vec![
            (
                rds,
                urn(rds, "db"),
                j!({"engine": "postgres", "engine_version": "17.4", "instance_class": "db.m9.huge", "multi_az": true}),
            ),
            (cluster, urn(cluster, "main"), j!({"name": "demo-main", "version": "1.33"})),
            (
                addon,
                urn(addon, "main/vpc-cni"),
                j!({"cluster_name": "demo-main", "name": "vpc-cni", "version": "v1.12.0-eksbuild.1"}),
            ),
        ]);
        let mut pf = Preflight::default();
        let plan = Plan { stack: "demo".into(), steps: Vec::new(), partial: None };
        let c = Changes { plan: &plan, by_type: c };
        crate::aws::rds::preflight(&aws, &c, &mut pf).await;
        crate::aws::eks::preflight(&aws, &c, &mut pf).await;
        script.assert_done();
        let problems = pf.problem_lines();
        assert!(problems[0].contains("postgres 17.4 cannot be ordered on db.m9.huge"), "{problems:?}");
        assert!(
            problems[1].contains("add-on vpc-cni has no version `v1.12.0-eksbuild.1` for Kubernetes 1.33"),
            "{problems:?}"
        );
        assert!(problems[1].contains("v1.19.2-eksbuild.1"), "{problems:?}");
        assert!(script.sent()[1].uri.contains("kubernetesVersion=1.33"), "{}", script.sent()[1].uri);
    }
}
