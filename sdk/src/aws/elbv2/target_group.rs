//! Target groups: where a listener rule forwards, with their health checks.

use super::*;
use crate::engine::provider::Import;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetGroupInputs<R = String> {
    pub name: String,
    pub vpc_id: R,
    /// The instance port traffic goes to (a Kubernetes NodePort).
    pub port: i32,
    pub health_check_path: String,
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetGroupOutputs {
    pub arn: String,
    /// The name the program gave (the cloud name adds a hash: [`target_group_name`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program_name: Option<String>,
}

/// The target group's name in ELBv2: the program's name with a hash of it and of the fields that
/// force a replacement (VPC, port), so a replacement never collides with the group it replaces.
/// At most 32 characters.
pub fn target_group_name(i: &TargetGroupInputs) -> String {
    crate::aws::physical_name(&i.name, 32, &[&i.name, &i.vpc_id, &i.port.to_string()])
}

pub fn target_group_provider() -> Arc<dyn Provider> {
    typed(TargetGroupProvider)
}

pub struct TargetGroupProvider;

#[async_trait]
impl TypedProvider for TargetGroupProvider {
    resource_type!(TARGET_GROUP, TargetGroupInputs => TargetGroupOutputs,
        replace_on &["name", "vpc_id", "port"], import Import::Never("not implemented yet"));

    async fn create(&self, ctx: &Ctx, urn: &Urn, i: &TargetGroupInputs) -> ProviderResult<TargetGroupOutputs> {
        if let Some(found) = self.find(ctx, urn, i).await? {
            return Ok(found);
        }
        let out = ctx
            .aws()?
            .elbv2
            .create_target_group()
            .name(target_group_name(i))
            .protocol(ProtocolEnum::Http)
            .port(i.port)
            .vpc_id(&i.vpc_id)
            .target_type(TargetTypeEnum::Instance)
            .health_check_protocol(ProtocolEnum::Http)
            .health_check_path(&i.health_check_path)
            .matcher(Matcher::builder().http_code("200-399").build())
            .set_tags(Some(tags(ctx, urn, &i.tags)))
            .send()
            .await
            .map_err(|e| call_failed("CreateTargetGroup", e))?;
        let arn = out.target_groups().first().and_then(|t| t.target_group_arn()).unwrap_or_default().to_string();
        Ok(TargetGroupOutputs { arn, program_name: Some(i.name.clone()) })
    }

    async fn update(&self, ctx: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<TargetGroupOutputs> {
        let Update { old, outputs: out, new } = change;
        if old.health_check_path != new.health_check_path {
            ctx.aws()?
                .elbv2
                .modify_target_group()
                .target_group_arn(&out.arn)
                .health_check_path(&new.health_check_path)
                .send()
                .await
                .map_err(|e| call_failed("ModifyTargetGroup", e))?;
        }
        Ok(out.clone())
    }

    async fn delete(&self, ctx: &Ctx, _: &Urn, _: &TargetGroupInputs, out: &TargetGroupOutputs) -> ProviderResult<()> {
        found(
            "DeleteTargetGroup",
            not_found,
            ctx.aws()?.elbv2.delete_target_group().target_group_arn(&out.arn).send().await,
        )
        .map(drop)
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, TargetGroupOutputs)]) -> Reads<Self> {
        let mut all = Vec::new();
        let mut pages = ctx.aws()?.elbv2.describe_target_groups().into_paginator().send();
        while let Some(page) = pages.next().await {
            all.extend(page.map_err(|e| call_failed("DescribeTargetGroups", e))?.target_groups().iter().cloned());
        }
        Ok(items
            .iter()
            .map(|(_, o)| {
                let t = all.iter().find(|t| t.target_group_arn() == Some(o.arn.as_str()))?;
                let mut inputs = TargetGroupInputs {
                    name: t.target_group_name().unwrap_or_default().to_string(),
                    vpc_id: t.vpc_id().unwrap_or_default().to_string(),
                    port: t.port().unwrap_or_default(),
                    health_check_path: t.health_check_path().unwrap_or_default().to_string(),
                    tags: Tags::new(),
                };
                // The program's name is not in the cloud name's hash; a legacy name is its own.
                if let Some(recorded) = o.program_name.as_deref()
                    && target_group_name(&TargetGroupInputs { name: recorded.to_string(), ..inputs.clone() })
                        == inputs.name
                {
                    inputs.name = recorded.to_string();
                }
                Some((inputs, o.clone()))
            })
            .collect())
    }

    /// One `DescribeTargetGroups` listing; the tags of the groups the program's (physical) names
    /// meet. A group whose VPC is still to be made cannot be taken (its name holds the VPC's id).
    async fn names_taken(&self, ctx: &Ctx, items: &[(Urn, Value)]) -> NamesTaken {
        let mut existing = std::collections::BTreeMap::new();
        let mut pages = ctx.aws()?.elbv2.describe_target_groups().into_paginator().send();
        while let Some(page) = pages.next().await {
            for tg in page.map_err(|e| call_failed("DescribeTargetGroups", e))?.target_groups() {
                if let (Some(name), Some(arn)) = (tg.target_group_name(), tg.target_group_arn()) {
                    existing.insert(name.to_string(), arn.to_string());
                }
            }
        }
        let name_of =
            |v: &Value| serde_json::from_value::<TargetGroupInputs>(v.clone()).ok().map(|t| target_group_name(&t));
        crate::aws::names_held_by(ctx, items, "name", name_of, &existing, |arn| async move { tags_of(ctx, &arn).await })
            .await
    }

    async fn find(&self, ctx: &Ctx, urn: &Urn, i: &TargetGroupInputs) -> ProviderResult<Option<TargetGroupOutputs>> {
        let found = match ctx.aws()?.elbv2.describe_target_groups().names(target_group_name(i)).send().await {
            Ok(o) => o.target_groups().first().and_then(|t| t.target_group_arn()).map(str::to_string),
            Err(e) if not_found(error_code(&e)) => None,
            Err(e) => return Err(call_failed("DescribeTargetGroups", e)),
        };
        let Some(arn) = found else { return Ok(None) };
        if !owned_by(ctx, &arn, urn).await? {
            return Err(ProviderError(format!(
                "a target group named `{}` exists and was not created by {urn}",
                i.name
            )));
        }
        Ok(Some(TargetGroupOutputs { arn, program_name: Some(i.name.clone()) }))
    }
}

// ---------------------------------------------------------------- listener
