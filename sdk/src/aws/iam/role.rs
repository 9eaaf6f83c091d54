//! Roles: named `<stack>-<name>`, tagged, with their trust policy.

use super::*;
use crate::engine::provider::{Import, read_each};

/// An IAM role.
///
/// ```
/// use fabric::prelude::*;
/// use fabric::aws::iam::{PolicyDocument, Role, RolePolicyAttachment, aws_managed_policy};
/// let mut s = Stack::new("demo");
/// let role = Role::builder().name("backup").trust(PolicyDocument::trust_services(&["backup.amazonaws.com"]))
///     .build().add(&mut s).unwrap();
/// RolePolicyAttachment::builder().name("backup-service").role(&role)
///     .policy_arn(aws_managed_policy("service-role/AWSBackupServiceRolePolicyForBackup")).build().add(&mut s).unwrap();
/// assert_eq!(s.finish().unwrap().nodes().len(), 2);
/// ```
#[derive(TypedBuilder, Clone, Debug)]
pub struct Role {
    #[builder(setter(into))]
    name: String,
    /// Who may assume the role.
    trust: PolicyDocument,
    #[builder(default, setter(into))]
    description: String,
    #[builder(default, setter(into))]
    tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoleInputs {
    pub role_name: String,
    pub assume_role_policy: Value,
    pub description: String,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoleOutputs {
    pub arn: String,
    pub name: String,
    pub id: String,
}

#[derive(Clone, Debug)]
pub struct RoleRef {
    urn: Urn,
    name: String,
}

impl RoleRef {
    outputs!(urn =>
        arn: String,
        /// The role's name, `<stack>-<name>` (known before apply).
        name: String,
    );

    pub fn role_name(&self) -> &str {
        &self.name
    }
}

fn valid_role_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 64 && n.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

impl Role {
    pub fn add(self, s: &mut Stack) -> crate::Result<RoleRef> {
        let mut c = Checker::new(s.urn(ROLE, &self.name));
        let role_name = format!("{}-{}", s.name(), self.name.replace('/', "-"));
        c.require(
            valid_role_name(&role_name),
            "name",
            format!("the role name `{role_name}` (stack-name) is not a valid IAM role name"),
            "use at most 64 characters in all, of letters, digits and +=,.@_-",
        );
        c.require(
            self.description.len() <= 1000,
            "description",
            "the description is longer than 1000 characters",
            "shorten it",
        );
        let principals =
            self.trust.json()["Statement"].as_array().is_some_and(|st| st.iter().all(|s| s.get("Principal").is_some()));
        c.require(
            principals,
            "trust",
            "every statement of a trust policy needs a Principal",
            "build it with `PolicyDocument::trust_services`",
        );
        self.trust.check(&mut c, "trust");
        crate::aws::check_tags(&mut c, &self.tags);
        s.report(c.into_errors());
        let inputs = RoleInputs {
            role_name: role_name.clone(),
            assume_role_policy: self.trust.0.clone(),
            description: self.description.clone(),
            tags: self.tags.clone(),
        };
        Ok(RoleRef { urn: s.declare(role_provider(), &self.name, inputs, vec![]), name: role_name })
    }
}

pub fn role_provider() -> Arc<dyn Provider> {
    typed(RoleProvider)
}

pub struct RoleProvider;

fn tags_of(tags: &[Tag]) -> Tags {
    crate::aws::user_tags_of(tags.iter().map(|t| (t.key().to_string(), t.value().to_string())))
}

fn iam_tags(ctx: &Ctx, urn: &Urn, tags: &Tags) -> ProviderResult<Vec<Tag>> {
    crate::aws::with_fabric_tags(ctx, urn, tags).into_iter().map(|(k, v)| iam_tag(k, v)).collect()
}

fn iam_tag(key: String, value: String) -> ProviderResult<Tag> {
    Tag::builder().key(key).value(value).build().map_err(|e| ProviderError(format!("IAM tag: {e}")))
}

impl RoleProvider {
    async fn get(&self, ctx: &Ctx, name: &str) -> ProviderResult<Option<aws_sdk_iam::types::Role>> {
        Ok(found("GetRole", |c| c == Some("NoSuchEntity"), ctx.aws()?.iam.get_role().role_name(name).send().await)?
            .and_then(|out| out.role().cloned()))
    }

    async fn observe(&self, ctx: &Ctx, role: &aws_sdk_iam::types::Role) -> ProviderResult<RoleInputs> {
        let tags = ctx
            .aws()?
            .iam
            .list_role_tags()
            .role_name(role.role_name())
            .send()
            .await
            .map_err(|e| call_failed("ListRoleTags", e))?;
        Ok(RoleInputs {
            role_name: role.role_name().to_string(),
            assume_role_policy: role.assume_role_policy_document().map(decode_policy).unwrap_or(Value::Null),
            description: role.description().unwrap_or_default().to_string(),
            tags: tags_of(tags.tags()),
        })
    }
}

fn role_outputs(r: &aws_sdk_iam::types::Role) -> RoleOutputs {
    RoleOutputs { arn: r.arn().to_string(), name: r.role_name().to_string(), id: r.role_id().to_string() }
}

#[async_trait]
impl TypedProvider for RoleProvider {
    resource_type!(ROLE, RoleInputs => RoleOutputs, replace_on &["role_name"], import Import::ById);

    async fn create(&self, ctx: &Ctx, urn: &Urn, inputs: &RoleInputs) -> ProviderResult<RoleOutputs> {
        let iam = &ctx.aws()?.iam;
        let tags = iam_tags(ctx, urn, &inputs.tags)?;
        create_or_find(
            "CreateRole",
            Duration::from_millis(500),
            || async {
                let req = iam
                    .create_role()
                    .role_name(&inputs.role_name)
                    .assume_role_policy_document(inputs.assume_role_policy.to_string())
                    .set_description((!inputs.description.is_empty()).then(|| inputs.description.clone()))
                    .set_tags(Some(tags.clone()))
                    .customize()
                    .config_override(no_retry_iam());
                match req.send().await {
                    Ok(out) => Ok(out.role().map(role_outputs).unwrap_or(RoleOutputs { arn: String::new(), name: String::new(), id: String::new() })),
                    Err(e) if error_code(&e) == Some("EntityAlreadyExists") => match self.find(ctx, urn, inputs).await {
                        Ok(Some(found)) => Ok(found),
                        _ => Err(crate::aws::Failure::Refused {
                            code: "EntityAlreadyExists".into(),
                            message: format!(
                                "a role named `{}` exists and was not created by {urn}; rename this role or delete that one",
                                inputs.role_name
                            ),
                        }),
                    },
                    Err(e) => Err(classify(&e)),
                }
            },
            || self.find(ctx, urn, inputs),
        )
        .await
    }

    async fn update(&self, ctx: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<RoleOutputs> {
        let Update { old, outputs: out, new } = change;
        let iam = &ctx.aws()?.iam;
        if old.assume_role_policy != new.assume_role_policy {
            iam.update_assume_role_policy()
                .role_name(&out.name)
                .policy_document(new.assume_role_policy.to_string())
                .send()
                .await
                .map_err(|e| call_failed("UpdateAssumeRolePolicy", e))?;
        }
        if old.description != new.description {
            iam.update_role()
                .role_name(&out.name)
                .description(&new.description)
                .send()
                .await
                .map_err(|e| call_failed("UpdateRole", e))?;
        }
        let name = out.name.as_str();
        let remove = |keys| async move {
            let call = iam.untag_role().role_name(name).set_tag_keys(Some(keys));
            call.send().await.map(drop).map_err(|e| call_failed("UntagRole", e))
        };
        let set = |pairs: Vec<(String, String)>| async move {
            let tags = pairs.into_iter().map(|(k, v)| iam_tag(k, v)).collect::<ProviderResult<Vec<_>>>()?;
            let call = iam.tag_role().role_name(name).set_tags(Some(tags));
            call.send().await.map(drop).map_err(|e| call_failed("TagRole", e))
        };
        crate::aws::TagChanges::sync(&old.tags, &new.tags, remove, set).await?;
        Ok(out.clone())
    }

    async fn delete(&self, ctx: &Ctx, _: &Urn, _: &RoleInputs, out: &RoleOutputs) -> ProviderResult<()> {
        match ctx.aws()?.iam.delete_role().role_name(&out.name).send().await {
            Ok(_) => Ok(()),
            Err(e) if is_no_such_entity(&e) => Ok(()),
            Err(e) if error_code(&e) == Some("DeleteConflict") => Err(ProviderError(format!(
                "DeleteRole {}: policies not managed by this stack are still attached to it; detach them, then destroy again",
                out.name
            ))),
            Err(e) => Err(call_failed("DeleteRole", e)),
        }
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, RoleOutputs)]) -> Reads<Self> {
        // ListRoles is one paginated call for the account; tags come per role.
        let mut roles = Vec::new();
        let mut pages = ctx.aws()?.iam.list_roles().into_paginator().send();
        while let Some(page) = pages.next().await {
            roles.extend(page.map_err(|e| call_failed("ListRoles", e))?.roles().iter().cloned());
        }
        let roles = &roles;
        read_each(items, |_, o| async move {
            let Some(r) = roles.iter().find(|r| r.role_name() == o.name) else { return Ok(None) };
            Ok(Some((self.observe(ctx, r).await?, role_outputs(r))))
        })
        .await
    }

    /// By role name.
    async fn import(&self, ctx: &Ctx, _: &Urn, id: &str) -> Read<Self> {
        let Some(role) = self.get(ctx, id).await? else { return Ok(None) };
        Ok(Some((self.observe(ctx, &role).await?, role_outputs(&role))))
    }

    /// The role of the program's name, if it exists.
    async fn discover(&self, ctx: &Ctx, _: &Urn, inputs: &RoleInputs) -> ProviderResult<Vec<String>> {
        Ok(self.get(ctx, &inputs.role_name).await?.map(|r| r.role_name().to_string()).into_iter().collect())
    }

    async fn find(&self, ctx: &Ctx, urn: &Urn, inputs: &RoleInputs) -> ProviderResult<Option<RoleOutputs>> {
        let Some(role) = self.get(ctx, &inputs.role_name).await? else { return Ok(None) };
        let tags = ctx
            .aws()?
            .iam
            .list_role_tags()
            .role_name(&inputs.role_name)
            .send()
            .await
            .map_err(|e| call_failed("ListRoleTags", e))?;
        let ours = tags.tags().iter().any(|t| t.key() == TAG_URN && t.value() == urn.as_str());
        Ok(ours.then(|| role_outputs(&role)))
    }

    /// One `ListRoles` listing (roles are account-wide); the tags of the roles the program's names
    /// meet (`ListRoles` leaves tags out).
    async fn names_taken(&self, ctx: &Ctx, items: &[(Urn, Value)]) -> NamesTaken {
        let iam = &ctx.aws()?.iam;
        let mut existing = BTreeMap::new();
        let mut pages = iam.list_roles().into_paginator().send();
        while let Some(page) = pages.next().await {
            for r in page.map_err(|e| call_failed("ListRoles", e))?.roles() {
                existing.insert(r.role_name().to_string(), r.role_name().to_string());
            }
        }
        crate::aws::names_held(ctx, items, "role_name", &existing, |name| async move {
            let tags = iam.list_role_tags().role_name(name).send().await.map_err(|e| call_failed("ListRoleTags", e))?;
            Ok(tags.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect())
        })
        .await
    }
}
