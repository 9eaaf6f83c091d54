//! Managed node groups: the cluster's workers, rolled one batch at a time.

use super::*;
use crate::engine::provider::{Import, read_each};
use aws_sdk_eks::types::{
    NodegroupScalingConfig, NodegroupUpdateConfig, Taint, TaintEffect, UpdateLabelsPayload, UpdateTaintsPayload,
};

/// A taint nodes of a pool carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
pub struct NodeTaint {
    pub key: String,
    pub value: String,
    /// `NO_SCHEDULE`, `NO_EXECUTE` or `PREFER_NO_SCHEDULE`.
    pub effect: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeGroupInputs<R = String, L = Vec<String>> {
    pub cluster_name: R,
    pub name: String,
    pub node_role_arn: R,
    pub subnet_ids: L,
    pub instance_types: Vec<String>,
    /// `ON_DEMAND` or `SPOT`.
    pub capacity_type: String,
    /// `AL2023_x86_64_STANDARD`, `AL2023_x86_64_NVIDIA`, `AL2023_ARM_64_STANDARD`, …
    pub ami_type: String,
    pub disk_size_gib: i32,
    pub min_size: i32,
    pub desired_size: i32,
    pub max_size: i32,
    pub labels: std::collections::BTreeMap<String, String>,
    pub taints: Vec<NodeTaint>,
    pub tags: Tags,
    /// How the nodes boot (IMDSv2, hop limit, root volume): with one, `disk_size_gib` is 0 and
    /// the size is the template's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_template: Option<NodeLaunchTemplate<R>>,
}

/// The launch template a node group's nodes boot from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeLaunchTemplate<R = String> {
    pub id: R,
    pub version: R,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeGroupOutputs {
    pub cluster_name: String,
    pub name: String,
    pub arn: String,
    /// The autoscaling group behind the pool (load balancer target groups attach to it).
    pub autoscaling_group: String,
}

pub struct NodeGroupProvider;

impl NodeGroupProvider {
    async fn describe(
        &self,
        ctx: &Ctx,
        cluster: &str,
        name: &str,
    ) -> ProviderResult<Option<aws_sdk_eks::types::Nodegroup>> {
        Ok(found(
            "DescribeNodegroup",
            ctx.aws()?.eks.describe_nodegroup().cluster_name(cluster).nodegroup_name(name).send().await,
        )?
        .and_then(|o| o.nodegroup))
    }

    async fn wait(
        &self,
        ctx: &Ctx,
        cluster: &str,
        name: &str,
        gone: bool,
    ) -> ProviderResult<Option<aws_sdk_eks::types::Nodegroup>> {
        wait_active(
            &format!("EKS node group {name}"),
            gone,
            NODE_GROUP_ACCEPTORS,
            || self.describe(ctx, cluster, name),
            |g: &aws_sdk_eks::types::Nodegroup| g.status().map(|s| s.as_str().to_string()),
            |g| {
                let issues: Vec<&str> =
                    g.health().map(|h| h.issues().iter().filter_map(|i| i.message()).collect()).unwrap_or_default();
                format!(": {}", issues.join("; "))
            },
        )
        .await
    }

    fn outputs(g: &aws_sdk_eks::types::Nodegroup) -> NodeGroupOutputs {
        NodeGroupOutputs {
            cluster_name: g.cluster_name().unwrap_or_default().to_string(),
            name: g.nodegroup_name().unwrap_or_default().to_string(),
            arn: g.nodegroup_arn().unwrap_or_default().to_string(),
            autoscaling_group: g
                .resources()
                .and_then(|r| r.auto_scaling_groups().first())
                .and_then(|a| a.name())
                .unwrap_or_default()
                .to_string(),
        }
    }
}

/// What a node group's cloud name is derived from: every field that forces its replacement (so a
/// replacement is a new node group, created before the old one is drained and deleted).
fn node_group_forcing(i: &NodeGroupInputs) -> Vec<String> {
    let mut subnets = i.subnet_ids.clone();
    subnets.sort();
    vec![
        i.node_role_arn.clone(),
        subnets.join(","),
        i.instance_types.join(","),
        i.capacity_type.clone(),
        i.ami_type.clone(),
        i.disk_size_gib.to_string(),
        i.launch_template.as_ref().map(|t| format!("{}@{}", t.id, t.version)).unwrap_or_default(),
    ]
}

/// The node group's name in EKS: `<pool>-<hash of the replace-forcing fields>`.
pub fn node_group_name(i: &NodeGroupInputs) -> String {
    let forcing = node_group_forcing(i);
    crate::aws::physical_name(&i.name, 63, &forcing.iter().map(String::as_str).collect::<Vec<_>>())
}

fn taint(t: &NodeTaint) -> Taint {
    Taint::builder().key(&t.key).value(&t.value).effect(TaintEffect::from(t.effect.as_str())).build()
}

#[async_trait]
impl TypedProvider for NodeGroupProvider {
    resource_type!(NODE_GROUP, NodeGroupInputs => NodeGroupOutputs,
        replace_on &[ "cluster_name", "name", "node_role_arn", "subnet_ids", "instance_types", "capacity_type", "ami_type", "disk_size_gib", "launch_template", ],
        import Import::ById);

    async fn create(&self, ctx: &Ctx, urn: &Urn, i: &NodeGroupInputs) -> ProviderResult<NodeGroupOutputs> {
        let name = node_group_name(i);
        let sent = ctx
            .aws()?
            .eks
            .create_nodegroup()
            .cluster_name(&i.cluster_name)
            .nodegroup_name(&name)
            .node_role(&i.node_role_arn)
            .set_subnets(Some(i.subnet_ids.clone()))
            .set_instance_types(Some(i.instance_types.clone()))
            .capacity_type(aws_sdk_eks::types::CapacityTypes::from(i.capacity_type.as_str()))
            .ami_type(aws_sdk_eks::types::AmiTypes::from(i.ami_type.as_str()))
            // With a launch template, the root volume is the template's (EKS refuses both).
            .set_disk_size(i.launch_template.is_none().then_some(i.disk_size_gib))
            .set_launch_template(i.launch_template.as_ref().map(|t| {
                aws_sdk_eks::types::LaunchTemplateSpecification::builder().id(&t.id).version(&t.version).build()
            }))
            .scaling_config(
                NodegroupScalingConfig::builder()
                    .min_size(i.min_size)
                    .desired_size(i.desired_size)
                    .max_size(i.max_size)
                    .build(),
            )
            // Nodes are replaced one at a time: pods move under their disruption budgets.
            .update_config(NodegroupUpdateConfig::builder().max_unavailable(1).build())
            .set_labels((!i.labels.is_empty()).then(|| i.labels.clone().into_iter().collect()))
            .set_taints((!i.taints.is_empty()).then(|| i.taints.iter().map(taint).collect()))
            .set_tags(Some(eks_tags(ctx, urn, &i.tags)))
            .client_request_token(token(urn, i))
            .send()
            .await;
        if let Err(e) = sent {
            let existing = || async {
                Ok(self.describe(ctx, &i.cluster_name, &name).await?.and_then(|g| g.tags).unwrap_or_default())
            };
            let what = format!("EKS node group {name} of cluster {}", i.cluster_name);
            already_ours(ctx, urn, &what, "CreateNodegroup", e, existing).await?;
        }
        let g = self.wait(ctx, &i.cluster_name, &name, false).await?.expect("active");
        Ok(Self::outputs(&g))
    }

    async fn update(&self, ctx: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<NodeGroupOutputs> {
        let Update { old, outputs: out, new } = change;
        let eks = &ctx.aws()?.eks;
        let scaling_changed =
            (old.min_size, old.desired_size, old.max_size) != (new.min_size, new.desired_size, new.max_size);
        let labels_changed = old.labels != new.labels;
        let taints_changed = old.taints != new.taints;
        if scaling_changed || labels_changed || taints_changed {
            let mut req = eks.update_nodegroup_config().cluster_name(&out.cluster_name).nodegroup_name(&out.name);
            if scaling_changed {
                // The autoscaler owns the desired size; keep it, within the new bounds.
                let current = self
                    .describe(ctx, &out.cluster_name, &out.name)
                    .await?
                    .and_then(|g| g.scaling_config().and_then(|s| s.desired_size()))
                    .unwrap_or(new.desired_size);
                let desired = if old.desired_size != new.desired_size { new.desired_size } else { current }
                    .clamp(new.min_size, new.max_size);
                req = req.scaling_config(
                    NodegroupScalingConfig::builder()
                        .min_size(new.min_size)
                        .desired_size(desired)
                        .max_size(new.max_size)
                        .build(),
                );
            }
            if labels_changed {
                let removed: Vec<String> =
                    old.labels.keys().filter(|k| !new.labels.contains_key(*k)).cloned().collect();
                req = req.labels(
                    UpdateLabelsPayload::builder()
                        .set_add_or_update_labels(Some(new.labels.clone().into_iter().collect()))
                        .set_remove_labels((!removed.is_empty()).then_some(removed))
                        .build(),
                );
            }
            if taints_changed {
                let removed: Vec<Taint> = old.taints.iter().filter(|t| !new.taints.contains(t)).map(taint).collect();
                let added: Vec<Taint> = new.taints.iter().filter(|t| !old.taints.contains(t)).map(taint).collect();
                req = req.taints(
                    UpdateTaintsPayload::builder()
                        .set_add_or_update_taints((!added.is_empty()).then_some(added))
                        .set_remove_taints((!removed.is_empty()).then_some(removed))
                        .build(),
                );
            }
            req.send().await.map_err(|e| call_failed("UpdateNodegroupConfig", e))?;
            self.wait(ctx, &out.cluster_name, &out.name, false).await?;
        }
        sync_tags(ctx, &out.arn, &old.tags, &new.tags).await?;
        Ok(out.clone())
    }

    async fn delete(&self, ctx: &Ctx, _: &Urn, _: &NodeGroupInputs, out: &NodeGroupOutputs) -> ProviderResult<()> {
        if found(
            "DeleteNodegroup",
            ctx.aws()?.eks.delete_nodegroup().cluster_name(&out.cluster_name).nodegroup_name(&out.name).send().await,
        )?
        .is_none()
        {
            return Ok(());
        }
        self.wait(ctx, &out.cluster_name, &out.name, true).await.map(|_| ())
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, NodeGroupOutputs)]) -> Reads<Self> {
        read_each(items, |_, o| async move {
            let Some(g) = self.describe(ctx, &o.cluster_name, &o.name).await? else { return Ok(None) };
            let scaling = g.scaling_config();
            let mut subnets = g.subnets().to_vec();
            subnets.sort();
            let mut taints: Vec<NodeTaint> = g
                .taints()
                .iter()
                .map(|t| NodeTaint {
                    key: t.key().unwrap_or_default().to_string(),
                    value: t.value().unwrap_or_default().to_string(),
                    effect: t.effect().map(|e| e.as_str().to_string()).unwrap_or_default(),
                })
                .collect();
            taints.sort();
            let mut inputs = NodeGroupInputs {
                cluster_name: o.cluster_name.clone(),
                name: o.name.clone(),
                node_role_arn: g.node_role().unwrap_or_default().to_string(),
                subnet_ids: subnets,
                instance_types: g.instance_types().to_vec(),
                capacity_type: g.capacity_type().map(|c| c.as_str().to_string()).unwrap_or_default(),
                ami_type: g.ami_type().map(|a| a.as_str().to_string()).unwrap_or_default(),
                disk_size_gib: if g.launch_template().is_some() { 0 } else { g.disk_size().unwrap_or_default() },
                min_size: scaling.and_then(|s| s.min_size()).unwrap_or_default(),
                desired_size: scaling.and_then(|s| s.desired_size()).unwrap_or_default(),
                max_size: scaling.and_then(|s| s.max_size()).unwrap_or_default(),
                labels: g.labels().cloned().unwrap_or_default().into_iter().collect(),
                taints,
                tags: crate::aws::user_tags_of(g.tags().cloned().unwrap_or_default()),
                launch_template: g.launch_template().map(|t| NodeLaunchTemplate {
                    id: t.id().unwrap_or_default().to_string(),
                    version: t.version().unwrap_or_default().to_string(),
                }),
            };
            // The pool's name, without the suffix its settings give the node group's name.
            let forcing = node_group_forcing(&inputs);
            inputs.name =
                crate::aws::base_name(&o.name, &forcing.iter().map(String::as_str).collect::<Vec<_>>()).to_string();
            Ok(Some((inputs, Self::outputs(&g))))
        })
        .await
    }

    /// By `<cluster>/<node group>`.
    async fn import(&self, ctx: &Ctx, urn: &Urn, id: &str) -> Read<Self> {
        let Some((cluster, name)) = id.split_once('/') else {
            return Err(ProviderError(format!("`{id}` is not a node group id: write <cluster>/<node group>")));
        };
        let probe = NodeGroupOutputs {
            cluster_name: cluster.to_string(),
            name: name.to_string(),
            arn: String::new(),
            autoscaling_group: String::new(),
        };
        self.read_one(ctx, urn, probe).await
    }

    /// The node group of the program's name (its settings' suffix included), if it exists.
    async fn discover(&self, ctx: &Ctx, _: &Urn, i: &NodeGroupInputs) -> ProviderResult<Vec<String>> {
        let name = node_group_name(i);
        Ok(self
            .describe(ctx, &i.cluster_name, &name)
            .await?
            .map(|_| format!("{}/{name}", i.cluster_name))
            .into_iter()
            .collect())
    }

    /// One `ListNodegroups` per cluster that exists; the tags of the groups the program's
    /// (physical) names meet. A pool whose name is not known yet is not checked.
    async fn names_taken(&self, ctx: &Ctx, items: &[(Urn, Value)]) -> NamesTaken {
        let eks = &ctx.aws()?.eks;
        let list = |cluster: String| async move {
            let mut names = Vec::new();
            let mut pages = eks.list_nodegroups().cluster_name(cluster).into_paginator().send();
            while let Some(page) = pages.next().await {
                let Some(p) = found("ListNodegroups", page)? else { return Ok(None) };
                names.extend(p.nodegroups().iter().cloned());
            }
            Ok(Some(names))
        };
        // The physical name, where every field it is made of is known.
        let name_of =
            |v: &Value| serde_json::from_value::<NodeGroupInputs>(v.clone()).ok().map(|n| node_group_name(&n));
        let tags = |cluster: String, name: String| async move {
            Ok(self
                .describe(ctx, &cluster, &name)
                .await?
                .and_then(|g| g.tags)
                .unwrap_or_default()
                .into_iter()
                .collect())
        };
        names_in_clusters(ctx, items, list, name_of, tags).await
    }

    async fn find(&self, ctx: &Ctx, urn: &Urn, i: &NodeGroupInputs) -> ProviderResult<Option<NodeGroupOutputs>> {
        match self.describe(ctx, &i.cluster_name, &node_group_name(i)).await? {
            Some(g) if g.tags().and_then(|t| t.get(TAG_URN)).map(String::as_str) == Some(urn.as_str()) => {
                Ok(Some(Self::outputs(&g)))
            }
            _ => Ok(None),
        }
    }
}
