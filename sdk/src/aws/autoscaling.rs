//! EC2 Auto Scaling: load balancer target groups attached to the autoscaling groups of node
//! pools, so that instances join (and leave) the target groups as the pool scales.

/// What a stack program needs of Auto Scaling in scope (part of [`crate::prelude`]): nothing by default;
/// its builders are named by path (`fabric::aws::…`).
pub mod prelude {}

use super::{call_failed, error_code};
use crate::aws::AwsCtx;
use crate::engine::provider::Import;
use crate::engine::provider::{
    Ctx, Provider, ProviderError, ProviderResult, Reads, TypedProvider, Update, read_each, typed,
};
use crate::model::{Output, Stack, Urn};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const TARGET_GROUP_ATTACHMENT: &str = "aws:autoscaling:TargetGroupAttachment";

pub fn attachment_provider() -> Arc<dyn Provider> {
    typed(AttachmentProvider)
}

/// Every Auto Scaling provider.
pub fn providers() -> Vec<Arc<dyn Provider>> {
    vec![attachment_provider()]
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttachmentInputs<R = String> {
    pub autoscaling_group: R,
    pub target_group_arn: R,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttachmentOutputs {
    pub autoscaling_group: String,
    pub target_group_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emulator_gap: Option<String>,
}

/// A target group attached to an autoscaling group.
pub struct TargetGroupAttachment;

impl TargetGroupAttachment {
    /// Declares the attachment of `target_group_arn` to `autoscaling_group`.
    pub fn declare(
        s: &mut Stack,
        name: &str,
        autoscaling_group: Output<String>,
        target_group_arn: Output<String>,
    ) -> Urn {
        s.declare(attachment_provider(), name, AttachmentInputs { autoscaling_group, target_group_arn }, vec![])
    }
}

pub struct AttachmentProvider;

impl AttachmentProvider {
    /// The target groups attached to `asg` (`None`: no such group).
    async fn attached(&self, ctx: &Ctx, asg: &str) -> ProviderResult<Option<Vec<String>>> {
        let out = ctx
            .aws()?
            .autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(asg)
            .send()
            .await
            .map_err(|e| call_failed("DescribeAutoScalingGroups", e))?;
        Ok(out.auto_scaling_groups().first().map(|g| g.target_group_arns().to_vec()))
    }
}

#[async_trait]
impl TypedProvider for AttachmentProvider {
    resource_type!(TARGET_GROUP_ATTACHMENT, AttachmentInputs => AttachmentOutputs,
        replace_on &["autoscaling_group", "target_group_arn"],
        import Import::Never("a link between two resources, found again by its pair"));

    /// Attaching is idempotent: attaching an attached group changes nothing.
    async fn create(&self, ctx: &Ctx, _: &Urn, i: &AttachmentInputs) -> ProviderResult<AttachmentOutputs> {
        let aws = ctx.aws()?;
        if aws.emulator && self.attached(ctx, &i.autoscaling_group).await?.is_none() {
            return Ok(AttachmentOutputs {
                autoscaling_group: i.autoscaling_group.clone(),
                target_group_arn: i.target_group_arn.clone(),
                emulator_gap: Some(format!(
                    "the emulator's EKS node groups have no autoscaling group ({} does not exist)",
                    i.autoscaling_group
                )),
            });
        }
        aws.autoscaling
            .attach_load_balancer_target_groups()
            .auto_scaling_group_name(&i.autoscaling_group)
            .target_group_arns(&i.target_group_arn)
            .send()
            .await
            .map_err(|e| call_failed("AttachLoadBalancerTargetGroups", e))?;
        Ok(AttachmentOutputs {
            autoscaling_group: i.autoscaling_group.clone(),
            target_group_arn: i.target_group_arn.clone(),
            emulator_gap: None,
        })
    }

    async fn update(&self, _: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<AttachmentOutputs> {
        let out = change.outputs;
        Ok(out.clone())
    }

    async fn delete(&self, ctx: &Ctx, _: &Urn, _: &AttachmentInputs, out: &AttachmentOutputs) -> ProviderResult<()> {
        if out.emulator_gap.is_some() {
            return Ok(());
        }
        match ctx
            .aws()?
            .autoscaling
            .detach_load_balancer_target_groups()
            .auto_scaling_group_name(&out.autoscaling_group)
            .target_group_arns(&out.target_group_arn)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // The group (or the target group) is gone already.
            Err(e) if error_code(&e) == Some("ValidationError") => Ok(()),
            Err(e) => Err(call_failed("DetachLoadBalancerTargetGroups", e)),
        }
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, AttachmentOutputs)]) -> Reads<Self> {
        read_each(items, |_, o| async move {
            let inputs = AttachmentInputs {
                autoscaling_group: o.autoscaling_group.clone(),
                target_group_arn: o.target_group_arn.clone(),
            };
            if o.emulator_gap.is_some() {
                return Ok(Some((inputs, o.clone())));
            }
            let attached = self.attached(ctx, &o.autoscaling_group).await?.unwrap_or_default();
            Ok(attached.contains(&o.target_group_arn).then(|| (inputs, o.clone())))
        })
        .await
    }

    async fn find(&self, ctx: &Ctx, _: &Urn, i: &AttachmentInputs) -> ProviderResult<Option<AttachmentOutputs>> {
        let attached = self.attached(ctx, &i.autoscaling_group).await.map_err(|e| ProviderError(e.0))?;
        Ok(attached.filter(|a| a.contains(&i.target_group_arn)).map(|_| AttachmentOutputs {
            autoscaling_group: i.autoscaling_group.clone(),
            target_group_arn: i.target_group_arn.clone(),
            emulator_gap: None,
        }))
    }
}
