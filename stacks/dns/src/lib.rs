//! The team's DNS, one per reference fabric (`--env develop|…`): it owns the team's root zone
//! (`<domain>`), delegates the fabric's zone (`<fabric>.<domain>`) to the name servers that zone
//! has, and writes a record into the fabric's zone — all from the fabric's exported outputs, read
//! through its state with a stack reference. Nothing is copied between the programs: when the
//! fabric's zone is replaced, the next deploy of this stack follows.

use fabric::aws::route53::{HostedZone, Record, RecordValue, ZoneRef};
use fabric::prelude::*;
use serde::Deserialize;

/// This stack's settings (`config/<env>.toml`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The reference fabric's stack: `reference-<env>`.
    pub reference: String,
    /// Who to ask about the fabric (a TXT record in its zone).
    pub owner: String,
}

/// What this stack reads of the reference fabric: the outputs it exports.
#[derive(Debug, Deserialize)]
pub struct FabricOutputs {
    /// `develop`.
    pub fabric: String,
    /// The fabric's zone: id, `develop.example.com.`, and its name servers.
    pub zone_id: String,
    pub zone_domain: String,
    pub name_servers: Vec<String>,
}

/// The parent of `develop.example.com.`: `example.com`.
fn parent_domain(domain: &str) -> &str {
    domain.trim_end_matches('.').split_once('.').map(|(_, parent)| parent).unwrap_or(domain)
}

pub fn program(s: &mut Stack) -> fabric::Result<()> {
    let cfg: Config = s.config()?;
    let fabric: FabricOutputs = s.reference(&cfg.reference)?.outputs()?;

    let root = HostedZone::builder().name("root").domain(parent_domain(&fabric.zone_domain)).build().add(s)?;
    Record::builder()
        .name(format!("delegate-{}", fabric.fabric))
        .zone(&root)
        .record_name(fabric.fabric.as_str())
        .value(RecordValue::Ns(fabric.name_servers.clone()))
        .ttl(172_800)
        .build()
        .add(s)?;
    let fabric_zone =
        ZoneRef::of_other_stack(&cfg.reference, &fabric.zone_id, &fabric.zone_domain, fabric.name_servers);
    Record::builder()
        .name("owner")
        .zone(&fabric_zone)
        .record_name("_owner")
        .value(RecordValue::Txt(vec![format!("team={}", cfg.owner)]))
        .build()
        .add(s)?;
    s.export("root_name_servers", root.name_servers());
    s.export("delegated", Output::known(fabric_zone.domain().to_string()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use fabric::model::Stack;
    use serde_json::json;
    use std::sync::Arc;

    /// The program with the develop fabric's outputs as a stack reference would read them.
    fn graph(outputs: serde_json::Value) -> fabric::Result<fabric::model::Graph> {
        let config = concat!(env!("CARGO_MANIFEST_DIR"), "/config/develop.toml");
        let mut s = Stack::for_env("dns", "develop", config);
        let outputs: std::collections::BTreeMap<String, serde_json::Value> = serde_json::from_value(outputs).unwrap();
        s.set_reference_reader(Arc::new(move |stack| Ok((stack == "reference-develop").then(|| outputs.clone()))));
        super::program(&mut s)?;
        Ok(s.finish()?)
    }

    fn develop() -> serde_json::Value {
        json!({
            "fabric": "develop",
            "zone_id": "Z0DEVELOP",
            "zone_domain": "develop.example.com.",
            "name_servers": ["ns-1.awsdns-01.org.", "ns-2.awsdns-02.com."],
            "state_bucket": "example-com-state",
        })
    }

    #[test]
    fn generated_inputs() {
        insta::assert_json_snapshot!(fabric::testing::rendered_inputs(&graph(develop()).unwrap()));
    }

    #[test]
    fn an_output_the_fabric_lacks_is_named_with_those_it_has() {
        let mut outputs = develop();
        outputs.as_object_mut().unwrap().remove("zone_id");
        let err = graph(outputs).err().unwrap().to_string();
        assert!(err.contains("stack `reference-develop` has no output `zone_id`; it has: fabric, name_servers, state_bucket, zone_domain"), "{err}");
    }

    #[test]
    fn the_parent_of_a_fabric_zone() {
        assert_eq!(super::parent_domain("develop.example.com."), "example.com");
    }
}
