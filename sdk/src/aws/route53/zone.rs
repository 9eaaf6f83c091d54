//! Hosted zones: the zones fabric creates, and existing zones looked up by domain.

use super::*;
use crate::engine::provider::{Import, read_each};

/// A hosted zone fabric creates and owns: public, or private to a network with `.private(&net)`.
///
/// ```
/// use fabric::prelude::*;
/// use fabric::aws::route53::{HostedZone, Record, RecordValue};
/// let mut s = Stack::new("demo");
/// let zone = HostedZone::builder().name("main").domain("acme.example").build().add(&mut s).unwrap();
/// Record::builder().name("www").zone(&zone).record_name("www").value(RecordValue::Cname("acme.example".into()))
///     .build().add(&mut s).unwrap();
/// assert_eq!(s.finish().unwrap().nodes().len(), 2);
/// ```
///
/// A private zone answers only inside the network it is attached to — internal names such as
/// `db.<fabric>.internal`, so that consumers keep one name when the database is restored or
/// replaced:
///
/// ```
/// use fabric::prelude::*;
/// use fabric::aws::route53::{HostedZone, Record, RecordValue};
/// let mut s = Stack::new("demo");
/// let net = Vpc::builder().name("main").cidr("10.1.0.0/16").nat(Nat::None).build().add(&mut s).unwrap();
/// let internal = HostedZone::builder().name("internal").domain("demo.internal").private(&net).build().add(&mut s).unwrap();
/// Record::builder().name("db").zone(&internal).record_name("db").value(RecordValue::Cname("db-1.example".into()))
///     .build().add(&mut s).unwrap();
/// assert!(internal.is_private());
/// ```
#[derive(TypedBuilder, Clone, Debug)]
pub struct HostedZone {
    #[builder(setter(into))]
    name: String,
    /// The domain, such as `acme.com`.
    #[builder(setter(into))]
    domain: String,
    #[builder(default = "Managed by fabric".to_string(), setter(into))]
    comment: String,
    /// Private to this network (its VPC): the zone answers only inside it.
    #[builder(default, setter(strip_option, into))]
    private: Option<PrivateTo>,
    #[builder(default, setter(into))]
    tags: Tags,
}

/// The network a private zone is attached to.
#[derive(Clone, Debug)]
pub struct PrivateTo {
    vpc_id: Output<String>,
}

#[cfg(feature = "ec2")]
impl From<&crate::aws::ec2::VpcRef> for PrivateTo {
    fn from(vpc: &crate::aws::ec2::VpcRef) -> Self {
        PrivateTo { vpc_id: vpc.id() }
    }
}

/// A zone: created by this stack, or an existing one looked up by domain.
#[derive(Clone, Debug)]
pub struct ZoneRef {
    urn: Urn,
    domain: String,
    /// A zone another stack owns, read through a stack reference: its id and name servers.
    known: Option<(String, Vec<String>)>,
    private: bool,
}

impl ZoneRef {
    pub fn urn(&self) -> &Urn {
        &self.urn
    }

    /// A zone another stack owns, by the id and name servers that stack exports (read with
    /// [`crate::model::Stack::reference`]): records can be put in it; it is never changed.
    pub fn of_other_stack(stack: &str, id: &str, domain: &str, name_servers: Vec<String>) -> ZoneRef {
        ZoneRef {
            urn: Urn::new(stack, ZONE, &zone_id_plain(id)),
            domain: fqdn(domain),
            known: Some((zone_id_plain(id), name_servers)),
            private: false,
        }
    }

    /// Whether the zone is private to a network.
    pub fn is_private(&self) -> bool {
        self.private
    }

    /// The zone id (without `/hostedzone/`).
    pub fn id(&self) -> Output<String> {
        match &self.known {
            Some((id, _)) => Output::known(id.clone()),
            None => Output::reference(self.urn.clone(), "id"),
        }
    }

    pub fn name_servers(&self) -> Output<Vec<String>> {
        match &self.known {
            Some((_, ns)) => Output::known(ns.clone()),
            None => Output::reference(self.urn.clone(), "name_servers"),
        }
    }

    /// `acme.com.`
    pub fn domain(&self) -> &str {
        &self.domain
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZoneInputs<R = String> {
    pub domain: String,
    pub comment: String,
    pub tags: Tags,
    /// The VPC of a private zone (in the stack's region); none for a public zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<R>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZoneOutputs {
    pub id: String,
    pub name_servers: Vec<String>,
}

fn check_domain(c: &mut Checker, domain: &str) {
    c.require(
        valid_dns_name(domain, false) && domain.trim_end_matches('.').contains('.'),
        "domain",
        format!("`{domain}` is not a domain name"),
        "give a name such as `acme.com` (letters, digits and hyphens, at least two labels)",
    );
}

impl HostedZone {
    /// An existing zone of the account, found by its domain when the stack is deployed. Destroy
    /// leaves it alone.
    pub fn existing(domain: &str) -> ExistingZone {
        ExistingZone { domain: domain.to_string() }
    }

    pub fn add(self, s: &mut Stack) -> crate::Result<ZoneRef> {
        let mut c = Checker::new(s.urn(ZONE, &self.name));
        check_domain(&mut c, &self.domain);
        c.require(self.comment.len() <= 256, "comment", "the comment is longer than 256 characters", "shorten it");
        crate::aws::check_tags(&mut c, &self.tags);
        s.report(c.into_errors());
        let domain = fqdn(&self.domain);
        let private = self.private.is_some();
        let inputs = ZoneInputs {
            domain: domain.clone(),
            comment: self.comment.clone(),
            tags: self.tags.clone(),
            vpc_id: self.private.map(|p| p.vpc_id),
        };
        Ok(ZoneRef { urn: s.declare(zone_provider(), &self.name, inputs, vec![]), domain, known: None, private })
    }
}

/// A hosted zone that exists already (see [`HostedZone::existing`]).
#[derive(Clone, Debug)]
pub struct ExistingZone {
    domain: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LookupInputs {
    pub domain: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LookupOutputs {
    pub id: String,
    pub name_servers: Vec<String>,
    pub domain: String,
}

impl LookupOutputs {
    fn new(z: ZoneOutputs, domain: &str) -> Self {
        LookupOutputs { id: z.id, name_servers: z.name_servers, domain: domain.to_string() }
    }
}

impl ExistingZone {
    pub fn add(self, s: &mut Stack) -> crate::Result<ZoneRef> {
        let name = self.domain.trim_end_matches('.').to_ascii_lowercase();
        let mut c = Checker::new(s.urn(ZONE_LOOKUP, &name));
        check_domain(&mut c, &self.domain);
        s.report(c.into_errors());
        let domain = fqdn(&self.domain);
        let inputs = LookupInputs { domain: domain.clone() };
        Ok(ZoneRef { urn: s.declare(lookup_provider(), &name, inputs, vec![]), domain, known: None, private: false })
    }
}

async fn zones_named(ctx: &Ctx, domain: &str) -> ProviderResult<Vec<aws_sdk_route53::types::HostedZone>> {
    let out = ctx
        .aws()?
        .route53
        .list_hosted_zones_by_name()
        .dns_name(domain)
        .max_items(100)
        .send()
        .await
        .map_err(|e| call_failed("ListHostedZonesByName", e))?;
    Ok(out.hosted_zones().iter().filter(|z| fqdn(z.name()) == fqdn(domain)).cloned().collect())
}

async fn zone_outputs(ctx: &Ctx, id: &str) -> ProviderResult<Option<ZoneOutputs>> {
    Ok(found(
        "GetHostedZone",
        |c| c == Some("NoSuchHostedZone"),
        ctx.aws()?.route53.get_hosted_zone().id(id).send().await,
    )?
    .map(|out| ZoneOutputs {
        id: zone_id_plain(out.hosted_zone().map(|z| z.id()).unwrap_or(id)),
        name_servers: out.delegation_set().map(|d| d.name_servers().to_vec()).unwrap_or_default(),
    }))
}

/// The VPCs a private zone is attached to.
pub async fn zone_vpcs(ctx: &Ctx, id: &str) -> ProviderResult<Vec<String>> {
    let out = ctx.aws()?.route53.get_hosted_zone().id(id).send().await.map_err(|e| call_failed("GetHostedZone", e))?;
    Ok(out.vpcs().iter().filter_map(|v| v.vpc_id().map(String::from)).collect())
}

async fn zone_tags(ctx: &Ctx, id: &str) -> ProviderResult<Tags> {
    let out = ctx
        .aws()?
        .route53
        .list_tags_for_resource()
        .resource_type(TagResourceType::Hostedzone)
        .resource_id(id)
        .send()
        .await
        .map_err(|e| call_failed("ListTagsForResource", e))?;
    let tags = out.resource_tag_set().map(|s| s.tags()).unwrap_or_default();
    Ok(crate::aws::user_tags_of(
        tags.iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string()))),
    ))
}

async fn change_tags(ctx: &Ctx, id: &str, old: &Tags, new: &Tags) -> ProviderResult<()> {
    let changes = crate::aws::TagChanges::between(old, new);
    let add: Vec<Tag> = changes.set.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
    let remove = changes.removed;
    if add.is_empty() && remove.is_empty() {
        return Ok(());
    }
    ctx.aws()?
        .route53
        .change_tags_for_resource()
        .resource_type(TagResourceType::Hostedzone)
        .resource_id(id)
        .set_add_tags((!add.is_empty()).then_some(add))
        .set_remove_tag_keys((!remove.is_empty()).then_some(remove))
        .send()
        .await
        .map_err(|e| call_failed("ChangeTagsForResource", e))?;
    Ok(())
}

pub fn zone_provider() -> Arc<dyn Provider> {
    typed(ZoneProvider)
}

pub struct ZoneProvider;

#[async_trait]
impl TypedProvider for ZoneProvider {
    resource_type!(ZONE, ZoneInputs => ZoneOutputs, replace_on &["domain", "vpc_id"], import Import::ById);

    async fn create(&self, ctx: &Ctx, urn: &Urn, inputs: &ZoneInputs) -> ProviderResult<ZoneOutputs> {
        let aws = ctx.aws()?;
        let r53 = &aws.route53;
        let vpc = inputs
            .vpc_id
            .as_ref()
            .map(|id| Vpc::builder().vpc_id(id).vpc_region(VpcRegion::from(aws.region().as_str())).build());
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        // The caller reference makes a retried request idempotent and names the URN.
        let reference = format!("{}{nanos}", caller_prefix(urn));
        let out = crate::aws::create::create_or_find(
            "CreateHostedZone",
            Duration::from_millis(500),
            || async {
                let r = r53
                    .create_hosted_zone()
                    .name(&inputs.domain)
                    .caller_reference(&reference)
                    .set_vpc(vpc.clone())
                    .hosted_zone_config(
                        HostedZoneConfig::builder()
                            .comment(&inputs.comment)
                            .private_zone(inputs.vpc_id.is_some())
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| crate::aws::classify(&e))?;
                Ok(ZoneOutputs {
                    id: zone_id_plain(r.hosted_zone().map(|z| z.id()).unwrap_or_default()),
                    name_servers: r.delegation_set().map(|d| d.name_servers().to_vec()).unwrap_or_default(),
                })
            },
            || self.find(ctx, urn, inputs),
        )
        .await?;
        let tags: Tags = crate::aws::with_fabric_tags(ctx, urn, &inputs.tags).into_iter().collect();
        change_tags(ctx, &out.id, &Tags::new(), &tags).await?;
        Ok(out)
    }

    async fn update(&self, ctx: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<ZoneOutputs> {
        let Update { old, outputs: out, new } = change;
        if old.comment != new.comment {
            ctx.aws()?
                .route53
                .update_hosted_zone_comment()
                .id(&out.id)
                .comment(&new.comment)
                .send()
                .await
                .map_err(|e| call_failed("UpdateHostedZoneComment", e))?;
        }
        change_tags(ctx, &out.id, &old.tags, &new.tags).await?;
        Ok(out.clone())
    }

    async fn delete(&self, ctx: &Ctx, _: &Urn, inputs: &ZoneInputs, out: &ZoneOutputs) -> ProviderResult<()> {
        match ctx.aws()?.route53.delete_hosted_zone().id(&out.id).send().await {
            Ok(_) => Ok(()),
            Err(e) if error_code(&e) == Some("NoSuchHostedZone") => Ok(()),
            Err(e) if error_code(&e) == Some("HostedZoneNotEmpty") => Err(ProviderError(format!(
                "DeleteHostedZone {}: the zone still holds records this stack does not manage; delete them, then destroy again",
                inputs.domain
            ))),
            Err(e) => Err(call_failed("DeleteHostedZone", e)),
        }
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, ZoneOutputs)]) -> Reads<Self> {
        let mut zones = Vec::new();
        let mut pages = ctx.aws()?.route53.list_hosted_zones().into_paginator().send();
        while let Some(page) = pages.next().await {
            zones.extend(page.map_err(|e| call_failed("ListHostedZones", e))?.hosted_zones().iter().cloned());
        }
        let zones = &zones;
        read_each(items, |_, o| async move {
            let Some(z) = zones.iter().find(|z| zone_id_plain(z.id()) == o.id) else { return Ok(None) };
            let inputs = ZoneInputs {
                domain: fqdn(z.name()),
                comment: z.config().and_then(|c| c.comment()).unwrap_or_default().to_string(),
                tags: zone_tags(ctx, &o.id).await?,
                vpc_id: match z.config().is_some_and(|c| c.private_zone()) {
                    true => zone_vpcs(ctx, &o.id).await?.into_iter().next(),
                    false => None,
                },
            };
            Ok(Some((inputs, o.clone())))
        })
        .await
    }

    /// By zone id (`Z…`, or `/hostedzone/Z…`).
    async fn import(&self, ctx: &Ctx, urn: &Urn, id: &str) -> Read<Self> {
        let Some(outputs) = zone_outputs(ctx, &zone_id_plain(id)).await? else { return Ok(None) };
        self.read_one(ctx, urn, outputs).await
    }

    /// Zones of the program's domain, public or private as the program's.
    async fn discover(&self, ctx: &Ctx, _: &Urn, inputs: &ZoneInputs) -> ProviderResult<Vec<String>> {
        Ok(zones_named(ctx, &inputs.domain)
            .await?
            .iter()
            .filter(|z| z.config().is_some_and(|c| c.private_zone()) == inputs.vpc_id.is_some())
            .map(|z| zone_id_plain(z.id()))
            .collect())
    }

    async fn find(&self, ctx: &Ctx, urn: &Urn, inputs: &ZoneInputs) -> ProviderResult<Option<ZoneOutputs>> {
        let prefix = caller_prefix(urn);
        for z in zones_named(ctx, &inputs.domain).await? {
            if z.caller_reference().starts_with(&prefix) {
                return zone_outputs(ctx, &zone_id_plain(z.id())).await;
            }
        }
        Ok(None)
    }
}

pub fn lookup_provider() -> Arc<dyn Provider> {
    typed(LookupProvider)
}

/// Looks an existing public zone up by domain; owns nothing (delete forgets it).
pub struct LookupProvider;

impl LookupProvider {
    async fn lookup(&self, ctx: &Ctx, domain: &str) -> ProviderResult<Option<LookupOutputs>> {
        let zones = zones_named(ctx, domain).await?;
        let public: Vec<_> = zones.iter().filter(|z| !z.config().is_some_and(|c| c.private_zone())).collect();
        match public.as_slice() {
            [] => Ok(None),
            [z] => Ok(zone_outputs(ctx, &zone_id_plain(z.id())).await?.map(|o| LookupOutputs::new(o, domain))),
            _ => Err(ProviderError(format!(
                "{} public hosted zones are named {domain}; keep one, or create the zone with HostedZone::builder()",
                public.len()
            ))),
        }
    }
}

#[async_trait]
impl TypedProvider for LookupProvider {
    resource_type!(ZONE_LOOKUP, LookupInputs => LookupOutputs,
        replace_on &["domain"], import Import::Never("a read of an existing zone's id, not a resource"));

    async fn create(&self, ctx: &Ctx, _: &Urn, inputs: &LookupInputs) -> ProviderResult<LookupOutputs> {
        self.lookup(ctx, &inputs.domain).await?.ok_or_else(|| {
            ProviderError(format!(
                "no public hosted zone named {} in this account; create it with HostedZone::builder(), or check the domain",
                inputs.domain
            ))
        })
    }

    async fn update(&self, ctx: &Ctx, urn: &Urn, change: Update<'_, Self>) -> ProviderResult<LookupOutputs> {
        let new = change.new;
        self.create(ctx, urn, new).await
    }

    async fn delete(&self, _: &Ctx, _: &Urn, _: &LookupInputs, _: &LookupOutputs) -> ProviderResult<()> {
        Ok(())
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, LookupOutputs)]) -> Reads<Self> {
        read_each(items, |_, o| async move {
            let present = zone_outputs(ctx, &o.id).await?;
            Ok(present.map(|z| (LookupInputs { domain: o.domain.clone() }, LookupOutputs::new(z, &o.domain))))
        })
        .await
    }

    async fn find(&self, ctx: &Ctx, _: &Urn, inputs: &LookupInputs) -> ProviderResult<Option<LookupOutputs>> {
        self.lookup(ctx, &inputs.domain).await
    }
}
