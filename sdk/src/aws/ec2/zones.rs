//! `aws:ec2:AvailabilityZones`: the zones a network uses, chosen once at apply and kept in state.
//!
//! A program that asks for "three zones" cannot know their names without an API call, and plans
//! make none. This resource picks them when it is first applied (the first available zones of the
//! region, in name order) and records them, so later plans resolve them from state and stay
//! stable. Asking for more zones later keeps the chosen ones and adds others.

use crate::aws::AwsCtx;
use crate::aws::call_failed;
use crate::engine::provider::Import;
use crate::engine::provider::{Ctx, Provider, ProviderError, ProviderResult, Reads, TypedProvider, Update, typed};
use crate::model::{Output, Stack, Urn};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const TYPE: &str = "aws:ec2:AvailabilityZones";

/// Shown in plans for a zone that an update of the selection will pick.
pub const CHOSEN_AT_APPLY: &str = "(chosen at apply)";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZonesInputs {
    pub count: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZonesOutputs {
    pub names: Vec<String>,
}

/// A declared selection of `count` zones.
///
/// ```
/// use fabric::prelude::*;
/// use fabric::aws::ec2::AvailabilityZones;
/// let mut s = Stack::new("demo");
/// let zones = AvailabilityZones::add(&mut s, "main", 3);
/// assert_eq!(zones.len(), 3);
/// ```
#[derive(Clone, Debug)]
pub struct AvailabilityZones {
    urn: Urn,
    count: usize,
}

impl AvailabilityZones {
    pub fn add(s: &mut Stack, name: &str, count: usize) -> Self {
        let urn = s.declare(provider(), name, ZonesInputs { count }, vec![]);
        AvailabilityZones { urn, count }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn urn(&self) -> &Urn {
        &self.urn
    }

    /// The name of zone `i` (known after the first apply).
    pub fn name(&self, i: usize) -> Output<String> {
        Output::<Vec<String>>::reference(self.urn.clone(), "names")
            .map(move |names| names.get(i).cloned().unwrap_or_else(|| CHOSEN_AT_APPLY.to_string()))
    }
}

pub fn provider() -> Arc<dyn Provider> {
    typed(ZonesProvider)
}

pub struct ZonesProvider;

pub(crate) async fn available(ctx: &Ctx) -> ProviderResult<Vec<String>> {
    let out = ctx
        .aws()?
        .ec2
        .describe_availability_zones()
        .filters(super::filter("state", ["available"]))
        .send()
        .await
        .map_err(|e| call_failed("DescribeAvailabilityZones", e))?;
    let mut names: Vec<String> = out
        .availability_zones()
        .iter()
        .filter(|z| z.zone_type().is_none_or(|t| t == "availability-zone"))
        .filter_map(|z| z.zone_name().map(str::to_string))
        .collect();
    names.sort();
    Ok(names)
}

/// `keep` extended (or cut) to `count` zones from `available`.
pub(crate) fn choose(keep: &[String], available: &[String], count: usize, region: &str) -> ProviderResult<Vec<String>> {
    let mut names: Vec<String> = keep.iter().take(count).cloned().collect();
    for z in available {
        if names.len() >= count {
            break;
        }
        if !names.contains(z) {
            names.push(z.clone());
        }
    }
    if names.len() < count {
        return Err(ProviderError(format!(
            "region {region} has {} available zones; {count} were asked for — ask for fewer, or name them",
            available.len()
        )));
    }
    Ok(names)
}

#[async_trait]
impl TypedProvider for ZonesProvider {
    resource_type!(TYPE, ZonesInputs => ZonesOutputs,
        replace_on &[], import Import::Never("a read of the region's zones, not a resource"));

    async fn create(&self, ctx: &Ctx, _: &Urn, inputs: &ZonesInputs) -> ProviderResult<ZonesOutputs> {
        let region = ctx.aws()?.region();
        Ok(ZonesOutputs { names: choose(&[], &available(ctx).await?, inputs.count, &region)? })
    }

    async fn update(&self, ctx: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<ZonesOutputs> {
        let Update { outputs: out, new, .. } = change;
        let region = ctx.aws()?.region();
        Ok(ZonesOutputs { names: choose(&out.names, &available(ctx).await?, new.count, &region)? })
    }

    async fn delete(&self, _: &Ctx, _: &Urn, _: &ZonesInputs, _: &ZonesOutputs) -> ProviderResult<()> {
        Ok(())
    }

    /// A choice made once: it does not drift.
    async fn read_many(&self, _: &Ctx, items: &[(Urn, ZonesOutputs)]) -> Reads<Self> {
        Ok(items.iter().map(|(_, o)| Some((ZonesInputs { count: o.names.len() }, o.clone()))).collect())
    }

    async fn find(&self, _: &Ctx, _: &Urn, _: &ZonesInputs) -> ProviderResult<Option<ZonesOutputs>> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_choice_keeps_what_was_chosen() {
        let avail: Vec<String> = ["us-east-2a", "us-east-2b", "us-east-2c"].map(String::from).to_vec();
        assert_eq!(choose(&[], &avail, 2, "r").unwrap(), ["us-east-2a", "us-east-2b"]);
        let kept = vec!["us-east-2c".to_string()];
        assert_eq!(choose(&kept, &avail, 2, "r").unwrap(), ["us-east-2c", "us-east-2a"]);
        assert!(choose(&[], &avail, 4, "us-east-2").unwrap_err().0.contains("has 3 available zones; 4 were asked for"));
    }
}
