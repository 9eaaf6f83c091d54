//! ElastiCache's preflight: what the plan alone proves impossible (an engine change ElastiCache
//! cannot make in place, from the plan's own old and new values), engine versions the region
//! offers (`elasticache:DescribeCacheEngineVersions`), and node types it offers
//! (`elasticache:DescribeReservedCacheNodesOfferings`: every current node type has offerings in
//! a region that runs it) — each distinct value asked once.

use super::{REPLICATION_GROUP, in_place_engine_change};
use crate::aws::Aws;
use crate::aws::preflight::{Changes, Preflight, text};
use crate::engine::StepOp;
use crate::model::Urn;
use std::collections::BTreeMap;

pub(crate) async fn preflight(aws: &Aws, changes: &Changes<'_>, pf: &mut Preflight) {
    let groups = changes.of(REPLICATION_GROUP);
    if groups.is_empty() {
        return;
    }
    refuse_engine_changes(changes, pf);

    let mut versions: BTreeMap<(String, String), Vec<Urn>> = BTreeMap::new();
    let mut node_types: BTreeMap<String, Vec<Urn>> = BTreeMap::new();
    for (urn, g) in groups {
        if let (Some(engine), Some(version)) = (text(g, "engine"), text(g, "engine_version")) {
            versions.entry((engine.into(), version.into())).or_default().push(urn.clone());
        }
        if let Some(t) = text(g, "node_type") {
            node_types.entry(t.into()).or_default().push(urn.clone());
        }
    }
    for ((engine, version), users) in versions {
        let check = format!("ElastiCache {engine} {version}");
        pf.checked.push(check.clone());
        let found =
            aws.elasticache.describe_cache_engine_versions().engine(&engine).engine_version(&version).send().await;
        match found {
            Err(e) => pf.skip(aws, &check, "DescribeCacheEngineVersions", &e),
            Ok(o) if o.cache_engine_versions().is_empty() => {
                for urn in users {
                    pf.problem(
                        &urn,
                        "engine_version",
                        format!("ElastiCache offers no {engine} `{version}` in this region"),
                        format!(
                            "give a version the region offers (`aws elasticache describe-cache-engine-versions --engine {engine}` lists them)"
                        ),
                    );
                }
            }
            Ok(_) => {}
        }
    }
    for (node_type, users) in node_types {
        let check = format!("ElastiCache node type {node_type}");
        pf.checked.push(check.clone());
        let found = aws
            .elasticache
            .describe_reserved_cache_nodes_offerings()
            .cache_node_type(&node_type)
            .max_records(20)
            .send()
            .await;
        match found {
            Err(e) => pf.skip(aws, &check, "DescribeReservedCacheNodesOfferings", &e),
            Ok(o) if o.reserved_cache_nodes_offerings().is_empty() => {
                for urn in users {
                    pf.problem(
                        &urn,
                        "node_type",
                        format!("`{node_type}` is not an ElastiCache node type this region offers"),
                        "use a current node type such as `cache.t4g.small`, `cache.m7g.large` or `cache.r7g.large`"
                            .into(),
                    );
                }
            }
            Ok(_) => {}
        }
    }
}

/// An update whose engine or version ElastiCache cannot change in place is refused in preview,
/// with its reason, before the deploy tries it.
fn refuse_engine_changes(changes: &Changes<'_>, pf: &mut Preflight) {
    let updates = changes.plan.steps.iter().filter(|s| s.type_name == REPLICATION_GROUP && s.op == StepOp::Update);
    for step in updates {
        let change = |field: &str| step.changes.iter().find(|c| c.field == field);
        let (engine, version) = (change("engine"), change("engine_version"));
        if engine.is_none() && version.is_none() {
            continue;
        }
        let desired = changes.of(REPLICATION_GROUP).iter().find(|(u, _)| u == &step.urn).map(|(_, v)| v);
        let now = |field: &str| desired.and_then(|d| text(d, field)).map(str::to_string);
        let side = |c: Option<&crate::engine::FieldChange>, old: bool, field: &str| -> Option<String> {
            match c {
                Some(c) => (if old { &c.old } else { &c.new }).as_ref().and_then(|v| v.as_str()).map(str::to_string),
                None => now(field),
            }
        };
        let (Some(old_engine), Some(old_version), Some(new_engine), Some(new_version)) = (
            side(engine, true, "engine"),
            side(version, true, "engine_version"),
            side(engine, false, "engine"),
            side(version, false, "engine_version"),
        ) else {
            continue;
        };
        if let Err(why) = in_place_engine_change((&old_engine, &old_version), (&new_engine, &new_version)) {
            pf.problem(
                &step.urn,
                if engine.is_some() { "engine" } else { "engine_version" },
                why,
                format!(
                    "keep {old_engine} {old_version} as deployed, or create a new cache under another name and move the clients"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::RetryPolicy;
    use crate::aws::scripted::{Script, xml};
    use crate::engine::{FieldChange, Plan, Step};
    use serde_json::json;

    fn urn(name: &str) -> Urn {
        Urn::new("demo", REPLICATION_GROUP, name)
    }

    fn change(field: &str, old: &str, new: &str) -> FieldChange {
        FieldChange {
            field: field.into(),
            old: Some(json!(old)),
            new: Some(json!(new)),
            forces_replace: false,
            summary: None,
        }
    }

    const NS: &str = "xmlns=\"http://elasticache.amazonaws.com/doc/2015-02-02/\"";

    #[tokio::test]
    async fn versions_and_node_types_the_region_lacks_and_an_engine_change_that_cannot_be_made() {
        let script = Script::new([
            xml(
                "ElastiCache.DescribeCacheEngineVersions",
                200,
                &format!(
                    "<DescribeCacheEngineVersionsResponse {NS}><DescribeCacheEngineVersionsResult><CacheEngineVersions/></DescribeCacheEngineVersionsResult></DescribeCacheEngineVersionsResponse>"
                ),
            ),
            xml(
                "ElastiCache.DescribeCacheEngineVersions",
                200,
                &format!(
                    "<DescribeCacheEngineVersionsResponse {NS}><DescribeCacheEngineVersionsResult><CacheEngineVersions><CacheEngineVersion><Engine>valkey</Engine><EngineVersion>8.0</EngineVersion></CacheEngineVersion></CacheEngineVersions></DescribeCacheEngineVersionsResult></DescribeCacheEngineVersionsResponse>"
                ),
            ),
            xml(
                "ElastiCache.DescribeReservedCacheNodesOfferings",
                200,
                &format!(
                    "<DescribeReservedCacheNodesOfferingsResponse {NS}><DescribeReservedCacheNodesOfferingsResult><ReservedCacheNodesOfferings><ReservedCacheNodesOffering><CacheNodeType>cache.t4g.small</CacheNodeType></ReservedCacheNodesOffering></ReservedCacheNodesOfferings></DescribeReservedCacheNodesOfferingsResult></DescribeReservedCacheNodesOfferingsResponse>"
                ),
            ),
            xml(
                "ElastiCache.DescribeReservedCacheNodesOfferings",
                200,
                &format!(
                    "<DescribeReservedCacheNodesOfferingsResponse {NS}><DescribeReservedCacheNodesOfferingsResult><ReservedCacheNodesOfferings/></DescribeReservedCacheNodesOfferingsResult></DescribeReservedCacheNodesOfferingsResponse>"
                ),
            ),
        ]);
        let aws = script.aws(RetryPolicy::RealAccount);
        let mut step = Step::new(urn("sessions"), REPLICATION_GROUP, StepOp::Update, vec![]);
        step.changes = vec![change("engine", "valkey", "redis"), change("engine_version", "8.0", "7.1")];
        let plan = Plan { stack: "demo".into(), steps: vec![step], partial: None };
        let by_type = [(
            REPLICATION_GROUP.to_string(),
            vec![
                (urn("sessions"), json!({"engine": "redis", "engine_version": "7.1", "node_type": "cache.t4g.small"})),
                (urn("queue"), json!({"engine": "valkey", "engine_version": "8.0", "node_type": "cache.x9.huge"})),
            ],
        )]
        .into_iter()
        .collect();
        let mut pf = Preflight::default();
        preflight(&aws, &Changes { plan: &plan, by_type }, &mut pf).await;
        script.assert_done();
        let problems = pf.problem_lines();
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].contains("aws:elasticache:ReplicationGroup \"sessions\" field `engine`: ElastiCache cannot move a Valkey group back to Redis OSS"), "{problems:#?}");
        assert!(problems[0].contains("keep valkey 8.0 as deployed"), "{problems:#?}");
        assert!(
            problems[1]
                .contains("\"sessions\" field `engine_version`: ElastiCache offers no redis `7.1` in this region"),
            "{problems:#?}"
        );
        assert!(
            problems[2].contains("\"queue\" field `node_type`: `cache.x9.huge` is not an ElastiCache node type"),
            "{problems:#?}"
        );
        assert!(script.sent()[0].body.contains("Engine=redis") && script.sent()[0].body.contains("EngineVersion=7.1"));
    }
}
