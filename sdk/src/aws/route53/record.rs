//! Records, and the owner markers that make them fabric's.

use super::*;
use crate::engine::provider::Import;

/// What a record holds.
#[derive(Clone, Debug)]
pub enum RecordValue {
    A(Vec<String>),
    Aaaa(Vec<String>),
    /// A CNAME to a host name: a fixed one (`"acme.example".into()`) or another resource's
    /// output (a database's address).
    Cname(Output<String>),
    Txt(Vec<String>),
    /// Name servers of a subdomain's zone: the delegation of that subdomain.
    Ns(Vec<String>),
    /// An alias A record to an AWS endpoint (a load balancer …): its DNS name and hosted zone id.
    AliasA {
        dns_name: Output<String>,
        zone_id: Output<String>,
    },
    AliasAaaa {
        dns_name: Output<String>,
        zone_id: Output<String>,
    },
}

/// A DNS record in a zone, created only where no record of that name and type exists (see the
/// module doc: ownership).
#[derive(TypedBuilder, Clone, Debug)]
pub struct Record<'a> {
    #[builder(setter(into))]
    name: String,
    zone: &'a ZoneRef,
    /// Relative to the zone (`www`, `""` for the apex) or fully qualified (`www.acme.com.`).
    #[builder(setter(into))]
    record_name: String,
    value: RecordValue,
    #[builder(default = 300)]
    ttl: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alias<R = String> {
    pub dns_name: R,
    pub zone_id: R,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordInputs<R = String> {
    pub zone_id: R,
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: String,
    pub ttl: Option<i64>,
    pub values: Vec<R>,
    pub alias: Option<Alias<R>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordOutputs {
    pub zone_id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: String,
}

/// The fully qualified name of `record_name` in `zone` (`zone` ends with a dot).
pub(super) fn record_fqdn(record_name: &str, zone: &str) -> String {
    let n = record_name.trim().to_ascii_lowercase();
    if n.is_empty() || n == "@" {
        zone.to_string()
    } else if n.ends_with('.') {
        n
    } else {
        format!("{n}.{zone}")
    }
}

/// A declared record.
#[derive(Clone, Debug)]
pub struct RecordRef {
    urn: Urn,
}

impl RecordRef {
    pub fn urn(&self) -> &Urn {
        &self.urn
    }

    /// The record's name without the final dot (`db.acme-dev.internal`), known once the record
    /// exists: what a consumer connects to (its settings then wait for the record).
    pub fn host(&self) -> Output<String> {
        Output::reference(self.urn.clone(), "name").map(|n: String| n.trim_end_matches('.').to_string())
    }
}

impl Record<'_> {
    pub fn add(self, s: &mut Stack) -> crate::Result<RecordRef> {
        let mut c = Checker::new(s.urn(RECORD, &self.name));
        let name = record_fqdn(&self.record_name, self.zone.domain());
        c.require(
            valid_dns_name(&name, true),
            "record_name",
            format!("`{}` is not a DNS name", self.record_name),
            "use labels of letters, digits, hyphens and underscores (a leading `*` for a wildcard)",
        );
        c.require(
            name == self.zone.domain() || name.ends_with(&format!(".{}", self.zone.domain())),
            "record_name",
            format!("`{name}` is not inside zone {}", self.zone.domain()),
            format!("give a name relative to the zone (`www`), or one ending in `{}`", self.zone.domain()),
        );
        c.within("ttl", self.ttl, 0..=2_147_483_647, "TTL {} is out of range", "use 0 to 2147483647 seconds");
        let (record_type, values, alias) = match &self.value {
            RecordValue::A(v) => {
                for ip in v {
                    c.require(
                        ip.parse::<std::net::Ipv4Addr>().is_ok(),
                        "value",
                        format!("`{ip}` is not an IPv4 address"),
                        "give addresses such as `192.0.2.10`",
                    );
                }
                ("A", known(v), None)
            }
            RecordValue::Aaaa(v) => {
                for ip in v {
                    c.require(
                        ip.parse::<std::net::Ipv6Addr>().is_ok(),
                        "value",
                        format!("`{ip}` is not an IPv6 address"),
                        "give addresses such as `2001:db8::1`",
                    );
                }
                ("AAAA", known(v), None)
            }
            RecordValue::Cname(target) => {
                c.require(
                    name != self.zone.domain(),
                    "record_name",
                    "a CNAME cannot be at the zone apex",
                    "use an alias A record at the apex (`RecordValue::AliasA`)",
                );
                if let Some(target) = target.known_value() {
                    c.require(
                        valid_dns_name(&target, true),
                        "value",
                        format!("`{target}` is not a DNS name"),
                        "point the CNAME at a host name",
                    );
                }
                ("CNAME", vec![target.clone()], None)
            }
            RecordValue::Txt(v) => {
                for t in v {
                    c.require(
                        t.len() <= 255,
                        "value",
                        "a TXT string is longer than 255 characters",
                        "split it into several strings",
                    );
                }
                ("TXT", v.iter().map(|t| Output::known(format!("\"{}\"", t.replace('"', "\\\"")))).collect(), None)
            }
            RecordValue::Ns(v) => {
                c.require(
                    name != self.zone.domain(),
                    "record_name",
                    "the zone's own NS record is Route 53's",
                    "delegate a subdomain (`dev`), not the zone itself",
                );
                for ns in v {
                    c.require(
                        valid_dns_name(ns, true),
                        "value",
                        format!("`{ns}` is not a name server's name"),
                        "give the subdomain zone's name servers (its `name_servers` output)",
                    );
                }
                ("NS", v.iter().map(|n| Output::known(fqdn(n))).collect(), None)
            }
            RecordValue::AliasA { dns_name, zone_id } => {
                ("A", Vec::new(), Some(Alias { dns_name: dns_name.clone(), zone_id: zone_id.clone() }))
            }
            RecordValue::AliasAaaa { dns_name, zone_id } => {
                ("AAAA", Vec::new(), Some(Alias { dns_name: dns_name.clone(), zone_id: zone_id.clone() }))
            }
        };
        c.require(alias.is_some() || !values.is_empty(), "value", "the record has no value", "give at least one value");
        s.report(c.into_errors());
        let inputs = RecordInputs {
            zone_id: self.zone.id(),
            name,
            record_type: record_type.to_string(),
            ttl: alias.is_none().then_some(self.ttl),
            values,
            alias,
        };
        Ok(RecordRef { urn: s.declare(record_provider(), &self.name, inputs, vec![]) })
    }
}

fn known(values: &[String]) -> Vec<Output<String>> {
    values.iter().cloned().map(Output::known).collect()
}

pub fn record_provider() -> Arc<dyn Provider> {
    typed(RecordProvider)
}

pub struct RecordProvider;

fn record_set(inputs: &RecordInputs) -> ProviderResult<ResourceRecordSet> {
    let mut b = ResourceRecordSet::builder().name(&inputs.name).r#type(RrType::from(inputs.record_type.as_str()));
    match &inputs.alias {
        Some(a) => {
            b = b.alias_target(
                AliasTarget::builder()
                    .dns_name(&a.dns_name)
                    .hosted_zone_id(&a.zone_id)
                    .evaluate_target_health(true)
                    .build()
                    .map_err(|e| ProviderError(e.to_string()))?,
            );
        }
        None => {
            b = b.set_ttl(inputs.ttl);
            for v in &inputs.values {
                b = b.resource_records(
                    ResourceRecord::builder().value(v).build().map_err(|e| ProviderError(e.to_string()))?,
                );
            }
        }
    }
    b.build().map_err(|e| ProviderError(e.to_string()))
}

/// Route 53 writes `*` as `\052` and ends names with a dot.
pub(super) fn normalize_name(n: &str) -> String {
    fqdn(&n.replace("\\052", "*"))
}

/// The name of the TXT record that marks record `name`/`record_type` as fabric's:
/// `_fabric-<type>.<name>` (`_fabric-a.www.example.com.`).
///
/// Route 53 records carry no tags, so ownership is written beside the record, as external-dns
/// does: the marker is created and deleted in the same change batch as the record (batches are
/// all-or-nothing), so it exists exactly when fabric created the record.
pub fn owner_record_name(name: &str, record_type: &str) -> String {
    format!("_fabric-{}.{}", record_type.to_ascii_lowercase(), fqdn(name))
}

/// The owner marker of record `inputs`, naming `stack` and `urn`.
fn owner_record(inputs: &RecordInputs, stack: &str, urn: &Urn) -> RecordInputs {
    RecordInputs {
        zone_id: inputs.zone_id.clone(),
        name: owner_record_name(&inputs.name, &inputs.record_type),
        record_type: "TXT".into(),
        ttl: Some(300),
        values: owner_values(stack, urn),
        alias: None,
    }
}

fn owner_values(stack: &str, urn: &Urn) -> Vec<String> {
    vec![format!("\"{TAG_STACK}={stack}\""), format!("\"{TAG_URN}={urn}\"")]
}

/// Who a marker's values say owns a record: (stack, urn).
fn owner_of(marker: &ResourceRecordSet) -> (Option<String>, Option<String>) {
    let mut stack = None;
    let mut urn = None;
    for v in marker.resource_records() {
        let v = v.value().trim_matches('"');
        if let Some(s) = v.strip_prefix(&format!("{TAG_STACK}=")) {
            stack = Some(s.to_string());
        } else if let Some(u) = v.strip_prefix(&format!("{TAG_URN}=")) {
            urn = Some(u.to_string());
        }
    }
    (stack, urn)
}

/// What a create found when the record was already there.
#[derive(Debug, PartialEq)]
pub(crate) enum Created {
    /// Created now (or by an earlier attempt of this very resource whose answer was lost).
    Owned,
    /// Someone else's record with exactly the values asked for: left as it is, and not ours.
    SharedIdentical,
}

/// The record and its owner marker as they are in the zone now.
struct Found {
    record: Option<ResourceRecordSet>,
    marker: Option<ResourceRecordSet>,
}

/// Creates record `inputs` for `urn` with CREATE semantics: an existing record is never
/// overwritten unless its owner marker names this very resource. With `identical_ok`, an existing
/// record with exactly these values is accepted as shared ([`Created::SharedIdentical`]): left
/// alone, never deleted by this stack.
pub(crate) async fn create_owned(
    ctx: &Ctx,
    urn: &Urn,
    inputs: &RecordInputs,
    identical_ok: bool,
) -> ProviderResult<Created> {
    let marker = owner_record(inputs, &ctx.stack, urn);
    // Looked up first (a clear answer before any write, and the emulator does not refuse a CREATE
    // of a record that exists); the CREATE itself still refuses whatever appears in between.
    let mut found = RecordProvider.find_pair(ctx, inputs).await?;
    if found.record.is_none() && found.marker.is_none() {
        let both = vec![change(ChangeAction::Create, inputs)?, change(ChangeAction::Create, &marker)?];
        match RecordProvider.submit(ctx, &inputs.zone_id, both).await {
            Ok(()) => return Ok(Created::Owned),
            Err(e) if !e.0.contains("already exists") => return Err(e),
            Err(_) => found = RecordProvider.find_pair(ctx, inputs).await?,
        }
    }
    if found.record.is_none() && found.marker.is_none() && ctx.aws()?.emulator {
        // The emulator refuses a CREATE of a record that was deleted earlier (its list shows no
        // such record); the lookup has just shown that nothing is there.
        let both = vec![change(ChangeAction::Upsert, inputs)?, change(ChangeAction::Upsert, &marker)?];
        RecordProvider.submit(ctx, &inputs.zone_id, both).await?;
        return Ok(Created::Owned);
    }
    let owner = found.marker.as_ref().map(owner_of);
    let ours = owner.as_ref().is_some_and(|(_, u)| u.as_deref() == Some(urn.as_str()));
    if ours {
        // Ours from an earlier attempt: make the record what it should be.
        let changes = vec![change(ChangeAction::Upsert, inputs)?, change(ChangeAction::Upsert, &marker)?];
        RecordProvider.submit(ctx, &inputs.zone_id, changes).await?;
        return Ok(Created::Owned);
    }
    let existing = found.record.as_ref().map(|r| observed(&inputs.zone_id, r));
    if identical_ok && owner.is_none() && existing.as_ref().is_some_and(|r| same_record(r, inputs)) {
        return Ok(Created::SharedIdentical);
    }
    let what = match (&existing, &owner) {
        (Some(r), None) => format!("it holds {} and carries no fabric owner record", describe_values(r)),
        (Some(r), Some((stack, urn))) => format!(
            "it holds {} and belongs to {} ({})",
            describe_values(r),
            stack.as_deref().map(|s| format!("stack `{s}`")).unwrap_or_else(|| "another stack".into()),
            urn.as_deref().unwrap_or("unknown resource")
        ),
        (None, Some((stack, _))) => {
            format!("its owner record {} says it belongs to stack `{}`", marker.name, stack.as_deref().unwrap_or("?"))
        }
        (None, None) => {
            "Route 53 refused to create it, yet shows no such record now (deleted meanwhile?): run again".into()
        }
    };
    Err(ProviderError(format!(
        "Route 53 record {} {} already exists in zone {} and is not this stack's: {what}; nothing was changed\n    fix: give the record another name; or delete the existing one; or, to bring it under this stack, add the TXT record {} with the values {} and deploy again",
        inputs.name,
        inputs.record_type,
        inputs.zone_id,
        marker.name,
        owner_values(&ctx.stack, urn).join(" ")
    )))
}

/// Deletes record `name`/`record_type` in `zone_id` and its owner marker, exactly as they are now.
/// A record whose marker names another resource is left alone (an error); one without a marker is
/// deleted (it was recorded as this stack's).
pub(crate) async fn delete_owned(
    ctx: &Ctx,
    urn: &Urn,
    zone_id: &str,
    name: &str,
    record_type: &str,
) -> ProviderResult<()> {
    let key = RecordInputs {
        zone_id: zone_id.to_string(),
        name: name.to_string(),
        record_type: record_type.to_string(),
        ttl: None,
        values: vec![],
        alias: None,
    };
    let found = match RecordProvider.find_pair(ctx, &key).await {
        Ok(f) => f,
        Err(e) if e.0.contains("NoSuchHostedZone") => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut changes = Vec::new();
    if let Some(marker) = &found.marker {
        let (stack, owner) = owner_of(marker);
        if owner.as_deref() != Some(urn.as_str()) {
            return Err(ProviderError(format!(
                "Route 53 record {name} {record_type} in zone {zone_id} now belongs to {} ({}), so it was not deleted\n    fix: remove it from this stack's state (it is no longer this stack's), or delete it by hand",
                stack.map(|s| format!("stack `{s}`")).unwrap_or_else(|| "someone else".into()),
                owner.unwrap_or_default()
            )));
        }
        changes.push(change(ChangeAction::Delete, &observed(zone_id, marker))?);
    }
    if let Some(record) = &found.record {
        changes.push(change(ChangeAction::Delete, &observed(zone_id, record))?);
    }
    if changes.is_empty() {
        return Ok(());
    }
    RecordProvider.submit(ctx, zone_id, changes).await
}

fn same_record(a: &RecordInputs, b: &RecordInputs) -> bool {
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    let alias_key = |a: &Option<Alias>| {
        a.as_ref().map(|a| (fqdn(&a.dns_name), a.zone_id.trim_start_matches("/hostedzone/").to_string()))
    };
    a.record_type == b.record_type
        && sorted(&a.values) == sorted(&b.values)
        && alias_key(&a.alias) == alias_key(&b.alias)
        && (a.alias.is_some() || a.ttl == b.ttl)
}

fn describe_values(r: &RecordInputs) -> String {
    match &r.alias {
        Some(a) => format!("an alias to {}", a.dns_name),
        None => format!("[{}]", r.values.join(", ")),
    }
}

fn change(action: ChangeAction, inputs: &RecordInputs) -> ProviderResult<Change> {
    Change::builder()
        .action(action)
        .resource_record_set(record_set(inputs)?)
        .build()
        .map_err(|e| ProviderError(e.to_string()))
}

impl RecordProvider {
    /// Submits one change batch (all or nothing) and waits until Route 53 has it everywhere.
    async fn submit(&self, ctx: &Ctx, zone_id: &str, changes: Vec<Change>) -> ProviderResult<()> {
        let r53 = &ctx.aws()?.route53;
        let out = r53
            .change_resource_record_sets()
            .hosted_zone_id(zone_id)
            .change_batch(
                ChangeBatch::builder().set_changes(Some(changes)).build().map_err(|e| ProviderError(e.to_string()))?,
            )
            .send()
            .await
            .map_err(|e| call_failed("ChangeResourceRecordSets", e))?;
        // Wait until the change has reached every Route 53 server.
        let Some(info) = out.change_info() else { return Ok(()) };
        let id = info.id().to_string();
        // The first look is the change's own answer; later ones ask GetChange.
        let first = std::sync::Mutex::new(Some(info.status().clone()));
        let check = || async {
            let known = first.lock().expect("not poisoned").take();
            let status = match known {
                Some(s) => s,
                None => {
                    let got = r53.get_change().id(&id).send().await.map_err(|e| call_failed("GetChange", e))?;
                    got.change_info().map(|c| c.status().clone()).unwrap_or(ChangeStatus::Insync)
                }
            };
            Ok(if status == ChangeStatus::Insync { Poll::Ready(()) } else { Poll::Waiting(status.as_str().into()) })
        };
        poll_until(Duration::from_secs(600), Duration::from_secs(5), check, |_| {
            format!("Route 53 change {id} was not INSYNC after 10 minutes")
        })
        .await
    }

    /// The record named by `key` (zone, name, type) and its owner marker, as they are now.
    async fn find_pair(&self, ctx: &Ctx, key: &RecordInputs) -> ProviderResult<Found> {
        let marker_name = owner_record_name(&key.name, &key.record_type);
        let r53 = &ctx.aws()?.route53;
        let look = |name: String, rr: RrType| async move {
            let page = r53
                .list_resource_record_sets()
                .hosted_zone_id(&key.zone_id)
                .start_record_name(&name)
                .start_record_type(rr.clone())
                .max_items(1)
                .send()
                .await
                .map_err(|e| call_failed("ListResourceRecordSets", e))?;
            Ok::<_, ProviderError>(
                page.resource_record_sets()
                    .iter()
                    .find(|r| normalize_name(r.name()) == fqdn(&name) && r.r#type() == &rr)
                    .cloned(),
            )
        };
        let record = look(key.name.clone(), RrType::from(key.record_type.as_str())).await?;
        let marker = look(marker_name, RrType::Txt).await?;
        Ok(Found { record, marker })
    }

    async fn list(&self, ctx: &Ctx, zone_id: &str) -> ProviderResult<Option<Vec<ResourceRecordSet>>> {
        let mut out = Vec::new();
        let (mut start_name, mut start_type): (Option<String>, Option<RrType>) = (None, None);
        loop {
            let page = ctx
                .aws()?
                .route53
                .list_resource_record_sets()
                .hosted_zone_id(zone_id)
                .set_start_record_name(start_name.take())
                .set_start_record_type(start_type.take())
                .send()
                .await;
            let page = match page {
                Ok(p) => p,
                Err(e) if error_code(&e) == Some("NoSuchHostedZone") => return Ok(None),
                Err(e) => return Err(call_failed("ListResourceRecordSets", e)),
            };
            out.extend(page.resource_record_sets().iter().cloned());
            if !page.is_truncated() {
                break;
            }
            start_name = page.next_record_name().map(str::to_string);
            start_type = page.next_record_type().cloned();
            if start_name.is_none() {
                break;
            }
        }
        Ok(Some(out))
    }
}

fn observed(zone_id: &str, r: &ResourceRecordSet) -> RecordInputs {
    RecordInputs {
        zone_id: zone_id.to_string(),
        name: normalize_name(r.name()),
        record_type: r.r#type().as_str().to_string(),
        ttl: r.ttl(),
        values: r.resource_records().iter().map(|v| v.value().to_string()).collect(),
        alias: r
            .alias_target()
            .map(|a| Alias { dns_name: a.dns_name().to_string(), zone_id: a.hosted_zone_id().to_string() }),
    }
}

#[async_trait]
impl TypedProvider for RecordProvider {
    resource_type!(RECORD, RecordInputs => RecordOutputs, replace_on &["zone_id", "name", "type"], import Import::ById);

    /// CREATE, with its owner marker in the same batch: a record that already exists is adopted
    /// only when its marker names this resource (an earlier attempt whose answer was lost).
    async fn create(&self, ctx: &Ctx, urn: &Urn, inputs: &RecordInputs) -> ProviderResult<RecordOutputs> {
        create_owned(ctx, urn, inputs, false).await?;
        Ok(RecordOutputs {
            zone_id: inputs.zone_id.clone(),
            name: inputs.name.clone(),
            record_type: inputs.record_type.clone(),
        })
    }

    /// UPSERT of a record this stack owns (it is in state), with its owner marker (added to
    /// records created before markers existed).
    async fn update(&self, ctx: &Ctx, urn: &Urn, update: Update<'_, Self>) -> ProviderResult<RecordOutputs> {
        let Update { outputs: out, new, .. } = update;
        let found = self.find_pair(ctx, new).await?;
        if let Some(marker) = &found.marker
            && owner_of(marker).1.as_deref() != Some(urn.as_str())
        {
            return Err(ProviderError(format!(
                "Route 53 record {} {} now belongs to another resource ({}), so it was not changed\n    fix: remove it from this stack's state, or give this record another name",
                new.name,
                new.record_type,
                owner_of(marker).1.unwrap_or_default()
            )));
        }
        let marker = owner_record(new, &ctx.stack, urn);
        self.submit(
            ctx,
            &new.zone_id,
            vec![change(ChangeAction::Upsert, new)?, change(ChangeAction::Upsert, &marker)?],
        )
        .await?;
        Ok(out.clone())
    }

    async fn delete(&self, ctx: &Ctx, urn: &Urn, _: &RecordInputs, out: &RecordOutputs) -> ProviderResult<()> {
        delete_owned(ctx, urn, &out.zone_id, &out.name, &out.record_type).await
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, RecordOutputs)]) -> Reads<Self> {
        let mut by_zone: BTreeMap<&str, Option<Vec<ResourceRecordSet>>> = BTreeMap::new();
        for (_, o) in items {
            if !by_zone.contains_key(o.zone_id.as_str()) {
                by_zone.insert(&o.zone_id, self.list(ctx, &o.zone_id).await?);
            }
        }
        Ok(items
            .iter()
            .map(|(_, o)| {
                let sets = by_zone[o.zone_id.as_str()].as_ref()?;
                let r =
                    sets.iter().find(|r| normalize_name(r.name()) == o.name && r.r#type().as_str() == o.record_type)?;
                Some((observed(&o.zone_id, r), o.clone()))
            })
            .collect())
    }

    /// By `<zone id>/<name>/<type>` (`Z0123/www.acme.com./A`).
    async fn import(&self, ctx: &Ctx, urn: &Urn, id: &str) -> Read<Self> {
        let parts: Vec<&str> = id.split('/').filter(|p| !p.is_empty()).collect();
        let [zone, name, record_type] = parts.as_slice() else {
            return Err(ProviderError(format!(
                "`{id}` is not a record id: write <zone id>/<name>/<type>, such as Z0123/www.acme.com./A"
            )));
        };
        let probe = RecordOutputs {
            zone_id: zone_id_plain(zone),
            name: normalize_name(name),
            record_type: record_type.to_ascii_uppercase(),
        };
        match self.read_one(ctx, urn, probe).await {
            Ok(found) => Ok(found),
            Err(e) if e.0.contains("NoSuchHostedZone") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The record of the program's name and type, if the zone has it.
    async fn discover(&self, ctx: &Ctx, _: &Urn, inputs: &RecordInputs) -> ProviderResult<Vec<String>> {
        let found = match self.find_pair(ctx, inputs).await {
            Ok(f) => f,
            Err(e) if e.0.contains("NoSuchHostedZone") => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(found
            .record
            .map(|r| format!("{}/{}/{}", inputs.zone_id, normalize_name(r.name()), r.r#type().as_str()))
            .into_iter()
            .collect())
    }

    /// Only a record whose owner marker names `urn`: a record that was there before is not ours.
    /// One listing per zone that exists: a record of the program's name and type whose owner
    /// record does not name this resource is someone else's.
    async fn names_taken(&self, ctx: &Ctx, items: &[(Urn, serde_json::Value)]) -> crate::engine::provider::NamesTaken {
        use crate::engine::provider::known_text;
        let mut zones: BTreeMap<String, Option<Vec<ResourceRecordSet>>> = BTreeMap::new();
        let mut out = Vec::with_capacity(items.len());
        for (urn, inputs) in items {
            let (Some(zone), Some(name), Some(kind)) =
                (known_text(inputs, "zone_id"), known_text(inputs, "name"), known_text(inputs, "type"))
            else {
                out.push(None);
                continue;
            };
            if !zones.contains_key(zone) {
                zones.insert(zone.to_string(), self.list(ctx, zone).await?);
            }
            let sets = zones[zone].as_deref().unwrap_or_default();
            let named = |n: &str, t: &str| {
                sets.iter().find(|r| normalize_name(r.name()) == normalize_name(n) && r.r#type().as_str() == t)
            };
            let Some(record) = named(name, kind) else {
                out.push(None);
                continue;
            };
            let owner = named(&owner_record_name(name, kind), "TXT").map(owner_of);
            if owner.as_ref().is_some_and(|(_, u)| u.as_deref() == Some(urn.as_str())) {
                out.push(None);
                continue;
            }
            let values = describe_values(&observed(zone, record));
            out.push(Some(crate::engine::Taken {
                field: "name".into(),
                name: format!("{} {kind}", normalize_name(name)),
                holder: match owner {
                    Some((stack, u)) => format!(
                        "it holds {values} and belongs to {} ({})",
                        stack.map(|s| format!("stack `{s}`")).unwrap_or_else(|| "another stack".into()),
                        u.unwrap_or_else(|| "unknown resource".into())
                    ),
                    None => format!("it holds {values} and carries no fabric owner record"),
                },
                fix: format!(
                    "give the record another name; or delete the existing one; or, to bring it under this stack, add the TXT record {} with the values {}",
                    owner_record_name(name, kind),
                    owner_values(&ctx.stack, urn).join(" ")
                ),
            }));
        }
        Ok(Some(out))
    }

    async fn find(&self, ctx: &Ctx, urn: &Urn, inputs: &RecordInputs) -> ProviderResult<Option<RecordOutputs>> {
        let found = match self.find_pair(ctx, inputs).await {
            Ok(f) => f,
            Err(e) if e.0.contains("NoSuchHostedZone") => return Ok(None),
            Err(e) => return Err(e),
        };
        let ours = found.marker.as_ref().is_some_and(|m| owner_of(m).1.as_deref() == Some(urn.as_str()));
        Ok((ours && found.record.is_some()).then(|| RecordOutputs {
            zone_id: inputs.zone_id.clone(),
            name: inputs.name.clone(),
            record_type: inputs.record_type.clone(),
        }))
    }
}
