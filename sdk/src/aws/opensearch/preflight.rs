//! OpenSearch's preflight: an engine downgrade the plan alone shows (the service only upgrades),
//! engine versions the region offers (`es:ListVersions`), and the instance types each version
//! offers there (`es:ListInstanceTypeDetails`) — each distinct value asked once.

use super::{DOMAIN, engine_version};
use crate::aws::Aws;
use crate::aws::preflight::{Changes, Preflight, text};
use crate::engine::StepOp;
use crate::model::Urn;
use std::collections::{BTreeMap, BTreeSet};

pub(crate) async fn preflight(aws: &Aws, changes: &Changes<'_>, pf: &mut Preflight) {
    let domains = changes.of(DOMAIN);
    if domains.is_empty() {
        return;
    }
    refuse_downgrades(changes, pf);

    // version → instance types (with the fields that name them) → the domains asking.
    let mut wanted: BTreeMap<String, BTreeMap<(String, &'static str), Vec<Urn>>> = BTreeMap::new();
    for (urn, d) in domains {
        let Some(version) = text(d, "engine_version") else { continue };
        let types = wanted.entry(version.to_string()).or_default();
        if let Some(t) = text(d, "instance_type") {
            types.entry((t.to_string(), "instance_type")).or_default().push(urn.clone());
        }
        if let Some(t) = d.get("dedicated_masters").and_then(|m| text(m, "instance_type")) {
            types.entry((t.to_string(), "dedicated_masters")).or_default().push(urn.clone());
        }
    }
    let check = "OpenSearch engine versions".to_string();
    pf.checked.push(check.clone());
    let mut offered = BTreeSet::new();
    let mut pages = aws.opensearch.list_versions().into_paginator().send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(p) => offered.extend(p.versions().iter().cloned()),
            Err(e) => return pf.skip(aws, &check, "ListVersions", &e),
        }
    }
    for (version, types) in wanted {
        if !offered.contains(&version) {
            for urn in types.values().flatten() {
                pf.problem(
                    urn,
                    "engine_version",
                    format!("OpenSearch Service offers no `{version}` in this region"),
                    "give a version the region offers (`aws opensearch list-versions` lists them)".into(),
                );
            }
            continue;
        }
        let check = format!("OpenSearch instance types for {version}");
        pf.checked.push(check.clone());
        let mut available = BTreeSet::new();
        let mut pages = aws.opensearch.list_instance_type_details().engine_version(&version).into_paginator().send();
        while let Some(page) = pages.next().await {
            match page {
                Ok(p) => available.extend(
                    p.instance_type_details().iter().filter_map(|d| d.instance_type()).map(|t| t.as_str().to_string()),
                ),
                Err(e) => {
                    pf.skip(aws, &check, "ListInstanceTypeDetails", &e);
                    available.clear();
                    break;
                }
            }
        }
        if available.is_empty() {
            continue;
        }
        for ((instance_type, field), users) in types {
            if !available.contains(&instance_type) {
                for urn in users {
                    pf.problem(
                        &urn,
                        field,
                        format!("`{instance_type}` is not an instance type OpenSearch Service offers for {version} in this region"),
                        format!("use a type the region offers (`aws opensearch list-instance-type-details --engine-version {version}` lists them), such as `m7g.large.search`"),
                    );
                }
            }
        }
    }
}

/// An update that would move a domain's engine down is refused in preview: the service upgrades
/// only.
fn refuse_downgrades(changes: &Changes<'_>, pf: &mut Preflight) {
    let updates = changes.plan.steps.iter().filter(|s| s.type_name == DOMAIN && s.op == StepOp::Update);
    for step in updates {
        let Some(c) = step.changes.iter().find(|c| c.field == "engine_version") else { continue };
        let side = |v: &Option<serde_json::Value>| v.as_ref().and_then(|v| v.as_str()).and_then(engine_version);
        if let (Some(old), Some(new)) = (side(&c.old), side(&c.new))
            && new < old
        {
            pf.problem(
                &step.urn,
                "engine_version",
                format!(
                    "OpenSearch Service cannot downgrade a domain from {}.{} to {}.{}: it only upgrades",
                    old.0, old.1, new.0, new.1
                ),
                "keep `engine_version` as deployed, or create a new domain under another name and reindex into it"
                    .into(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::RetryPolicy;
    use crate::aws::scripted::{Script, json};
    use crate::engine::{FieldChange, Plan, Step};
    use serde_json::json as j;

    fn urn(name: &str) -> Urn {
        Urn::new("demo", DOMAIN, name)
    }

    #[tokio::test]
    async fn versions_and_instance_types_the_region_lacks_and_a_downgrade() {
        let script = Script::new([
            json("OpenSearch.ListVersions", 200, j!({"Versions": ["OpenSearch_2.17", "OpenSearch_2.15"]})),
            json(
                "OpenSearch.ListInstanceTypeDetails",
                200,
                j!({"InstanceTypeDetails": [{"InstanceType": "m7g.large.search"}, {"InstanceType": "r7g.large.search"}]}),
            ),
        ]);
        let aws = script.aws(RetryPolicy::RealAccount);
        let mut step = Step::new(urn("logs"), DOMAIN, StepOp::Update, vec![]);
        step.changes = vec![FieldChange {
            field: "engine_version".into(),
            old: Some(j!("OpenSearch_2.17")),
            new: Some(j!("OpenSearch_2.15")),
            forces_replace: false,
            summary: None,
        }];
        let plan = Plan { stack: "demo".into(), steps: vec![step], partial: None };
        let by_type = [(
            DOMAIN.to_string(),
            vec![
                (urn("logs"), j!({"engine_version": "OpenSearch_2.99", "instance_type": "m7g.large.search"})),
                (
                    urn("search"),
                    j!({"engine_version": "OpenSearch_2.17", "instance_type": "x9.huge.search",
                        "dedicated_masters": {"instance_type": "m7g.large.search", "count": 3}}),
                ),
            ],
        )]
        .into_iter()
        .collect();
        let mut pf = Preflight::default();
        preflight(&aws, &Changes { plan: &plan, by_type }, &mut pf).await;
        script.assert_done();
        let problems = pf.problem_lines();
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(
            problems[0].contains(
                "\"logs\" field `engine_version`: OpenSearch Service cannot downgrade a domain from 2.17 to 2.15"
            ),
            "{problems:#?}"
        );
        assert!(
            problems[1].contains("\"search\" field `instance_type`: `x9.huge.search` is not an instance type"),
            "{problems:#?}"
        );
        assert!(
            problems[2].contains("\"logs\" field `engine_version`: OpenSearch Service offers no `OpenSearch_2.99`"),
            "{problems:#?}"
        );
        assert!(script.sent()[1].uri.contains("OpenSearch_2.17"), "{:?}", script.sent()[1].uri);
    }
}
