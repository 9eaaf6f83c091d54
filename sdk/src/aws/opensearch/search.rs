//! `SearchDomain`: a private, zone-aware, encrypted OpenSearch Service domain behind
//! fine-grained access control, with a generated master user.

use super::{DOMAIN, DOMAIN_ONLY, DomainInputs, Masters, domain_provider, engine_version};
use crate::aws::ec2::private_access::require_two_zones;
use crate::aws::ec2::{AccessNames, Network, PrivateAccess, PrivateService, SecurityGroupRef, Tags};
use crate::model::{Checker, Output, Secret, Stack, Urn};
use crate::random::Password;
use typed_builder::TypedBuilder;

/// The TLS policies a domain may enforce: TLS 1.2 or newer only.
const TLS_POLICIES: &[&str] = &[
    "Policy-Min-TLS-1-2-PFS-2023-10",
    "Policy-Min-TLS-1-2-2019-07",
    "Policy-Min-TLS-1-2-RFC9151-FIPS-2024-08",
    "Policy-Min-TLS-1-2-FIPS-PQ-2026-10",
];

/// The master user of every domain fabric makes (its password is generated).
const MASTER_USER: &str = "fabric-admin";

/// An OpenSearch Service domain in the private subnets of a network.
///
/// Defaults: OpenSearch 2.17 on three `m7g.large.search` data nodes, one per zone over the
/// network's zones (two or three: zone awareness keeps each shard's replica in another zone), no
/// dedicated masters (`dedicated_masters` for domains of ten nodes or more), 20 GiB of gp3 per
/// node, encrypted at rest (the AWS managed key, or `kms_key`) and between nodes, HTTPS only with
/// TLS 1.2 or newer (`Policy-Min-TLS-1-2-PFS-2023-10`), fine-grained access control with a master
/// user `fabric-admin` whose password is generated and kept encrypted in state.
///
/// Who may call it: only the groups named in `allow_from` (or a cluster given to
/// `allow_cluster`) reach port 443, and a workload needs the master user's credentials (`url()`,
/// a secret) to be let in. The domain's access policy admits HTTP calls on this domain's own
/// paths and nothing else: a policy naming IAM principals would refuse the master user's unsigned
/// requests (the service's guide recommends exactly this pairing for fine-grained access control).
/// AWS Backup does not protect OpenSearch: the service takes hourly snapshots of its own.
///
/// ```
/// use fabric::prelude::*;
/// let mut s = Stack::new("demo");
/// let net = Vpc::builder().name("main").cidr("10.0.0.0/16").nat(Nat::Single).build().add(&mut s).unwrap();
/// let search = SearchDomain::builder().name("search").network(&net).build().add(&mut s).unwrap();
/// s.export("search_url", search.url());
/// assert!(s.finish().is_ok());
/// ```
#[derive(TypedBuilder, Clone, Debug)]
pub struct SearchDomain<'a> {
    #[builder(setter(into))]
    name: String,
    network: &'a Network,
    /// `OpenSearch_<major>.<minor>`; upgrades go up in place, never down.
    #[builder(default = "OpenSearch_2.17".to_string(), setter(into))]
    engine_version: String,
    /// The data nodes' instance type (`<family>.<size>.search`).
    #[builder(default = "m7g.large.search".to_string(), setter(into))]
    instance_type: String,
    /// Data nodes: a multiple of the zone count.
    #[builder(default = 3)]
    instance_count: i32,
    /// Zones (2 or 3, at most the network's); default: the network's zones, up to three.
    #[builder(default, setter(strip_option))]
    zones: Option<i32>,
    /// Dedicated master nodes (`instance_type`, 3 or 5 of them).
    #[builder(default, setter(strip_option))]
    dedicated_masters: Option<Masters>,
    /// GiB of gp3 storage per data node (10 to 16,384).
    #[builder(default = 20)]
    volume_gb: i32,
    /// The minimum TLS the endpoint accepts: one of the service's TLS 1.2 policies.
    #[builder(default = TLS_POLICIES[0].to_string(), setter(into))]
    tls_policy: String,
    /// Security groups admitted on 443 (nothing else is).
    #[builder(default)]
    allow_from: Vec<&'a SecurityGroupRef>,
    /// A customer managed key for encryption at rest (none: the AWS managed key). Changing it
    /// replaces the domain.
    #[builder(default, setter(strip_option))]
    kms_key: Option<&'a crate::aws::kms::KmsKeyRef>,
    #[builder(default, setter(into))]
    tags: Tags,
}

/// A declared search domain.
#[derive(Clone, Debug)]
pub struct Search {
    domain: Urn,
    password: Output<Secret<String>>,
    access: PrivateAccess,
}

impl Search {
    outputs!(domain =>
        /// The domain's VPC endpoint host name (HTTPS on 443).
        endpoint: String,
    );

    /// The master user's name.
    pub fn master_user(&self) -> &'static str {
        MASTER_USER
    }

    /// The master user's password, as a secret.
    pub fn master_password(&self) -> Output<Secret<String>> {
        self.password.clone()
    }

    /// `https://fabric-admin:password@endpoint`, as a secret: what a `WebService` takes as
    /// `OPENSEARCH_URL`.
    pub fn url(&self) -> Output<Secret<String>> {
        self.url_at(self.endpoint())
    }

    /// The URL through another name of the domain.
    pub fn url_at(&self, host: Output<String>) -> Output<Secret<String>> {
        self.password
            .clone()
            .zip(host)
            .map(|(password, host)| Secret::new(format!("https://{MASTER_USER}:{}@{host}", password.expose())))
    }
}

/// A domain name: 3–28 lower-case letters, digits and hyphens, starting with a letter.
fn valid_domain_name(name: &str) -> bool {
    (3..=28).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl SearchDomain<'_> {
    pub fn add(self, s: &mut Stack) -> crate::Result<Search> {
        let name = self.name.clone();
        let domain_name = self.domain_name(s);
        let zones = self.zone_count();
        self.check(s, &domain_name, zones);
        let access = PrivateAccess::add(
            s,
            s.urn(DOMAIN, &name),
            AccessNames { label: "search", protocol: "HTTPS" },
            self.network,
            443,
            &self.allow_from,
            format!("Search domain {name}: 443 from named groups only"),
            &self.tags,
        )?;
        // One private subnet per zone the domain uses, sorted (reads compare equal).
        let subnets = self.network.private_subnets().iter().take(zones.max(1) as usize).map(|p| p.id());
        let subnet_ids = Output::all(subnets).map(|mut ids| {
            ids.sort();
            ids
        });
        // The service asks for an upper-case letter, a digit and a symbol: the generated
        // characters, then one of each.
        let password = Password::add(s, &format!("{name}/master-password"), 32)
            .value()
            .map(|p: Secret<String>| Secret::new(format!("{}_Aa1", p.expose())));
        let inputs: DomainInputs<Output<String>, Output<Secret<String>>, Output<Vec<String>>> = DomainInputs {
            name: domain_name,
            engine_version: self.engine_version.clone(),
            instance_type: self.instance_type.clone(),
            instance_count: self.instance_count,
            zone_count: zones,
            dedicated_masters: self.dedicated_masters.clone(),
            volume_gb: self.volume_gb,
            volume_type: "gp3".into(),
            subnet_ids,
            security_group_ids: vec![access.security_group().id()],
            at_rest_encryption: true,
            kms_key_id: self.kms_key.map(|k| k.arn()),
            node_to_node_encryption: true,
            enforce_https: true,
            tls_policy: self.tls_policy.clone(),
            master_user: MASTER_USER.into(),
            master_password: Some(password.clone()),
            access_policy: DOMAIN_ONLY.into(),
            tags: self.tags.clone(),
        };
        let domain = s.declare(domain_provider(), &name, inputs, vec![]);
        Ok(Search { domain, password, access })
    }

    /// The zones the domain spreads over: as given, else the network's, at most three.
    fn zone_count(&self) -> i32 {
        self.zones.unwrap_or_else(|| (self.network.private_subnets().len() as i32).min(3))
    }

    /// `<stack>-<name>-<hash>`, at most 28 characters; the hash is over what forces a replacement
    /// (the key), so a replacement gets a new name and is made before the old one goes.
    fn domain_name(&self, s: &Stack) -> String {
        let base = format!("{}-{}", s.name(), self.name).to_ascii_lowercase().replace(['/', '_', '.'], "-");
        let key = self.kms_key.map(|k| k.urn().to_string()).unwrap_or_default();
        crate::aws::physical_name(&base, 28, &[&key])
    }

    fn check(&self, s: &mut Stack, domain_name: &str, zones: i32) {
        let mut c = Checker::new(s.urn(DOMAIN, &self.name));
        c.require(
            valid_domain_name(domain_name),
            "name",
            format!("`{domain_name}` (stack-name-hash) is not a valid OpenSearch domain name"),
            "use lower-case letters, digits and hyphens, starting with a letter",
        );
        c.require(
            engine_version(&self.engine_version).is_some_and(|v| v >= (2, 3)),
            "engine_version",
            format!("`{}` is not an OpenSearch version fabric runs", self.engine_version),
            "give `OpenSearch_<major>.<minor>` from 2.3 on, such as `OpenSearch_2.17`",
        );
        let search_type = |t: &str| {
            let parts: Vec<&str> = t.split('.').collect();
            parts.len() == 3 && parts[2] == "search" && parts.iter().all(|p| !p.is_empty())
        };
        c.require(
            search_type(&self.instance_type),
            "instance_type",
            format!("`{}` is not an OpenSearch instance type", self.instance_type),
            "use a type such as `m7g.large.search` or `r7g.large.search`",
        );
        require_two_zones(&mut c, self.network, "a zone-aware search domain");
        let network_zones = self.network.private_subnets().len() as i32;
        c.within(
            "zones",
            zones,
            2..=3,
            "{} zones; a zone-aware domain spreads over 2 or 3",
            "give 2 or 3 zones (3, where the network has them, survives the loss of one with a quorum)",
        );
        if network_zones >= 2 {
            c.require(
                zones <= network_zones,
                "zones",
                format!("{zones} zones, but the network has private subnets in {network_zones}"),
                format!("give at most {network_zones} zones, or a network over more zones"),
            );
        }
        if (2..=3).contains(&zones) {
            c.require(
                self.instance_count >= zones && self.instance_count % zones == 0,
                "instance_count",
                format!(
                    "{} data nodes over {zones} zones: zone awareness needs the same number in each zone",
                    self.instance_count
                ),
                format!("give a multiple of {zones} ({zones}, {}, …)", zones * 2),
            );
        }
        if let Some(m) = &self.dedicated_masters {
            c.require(
                m.count == 3 || m.count == 5,
                "dedicated_masters",
                format!("{} dedicated masters: a quorum needs an odd count, and the service takes 3 or 5", m.count),
                "give 3 dedicated masters (5 for the largest domains)",
            );
            c.require(
                search_type(&m.instance_type),
                "dedicated_masters",
                format!("`{}` is not an OpenSearch instance type", m.instance_type),
                "use a type such as `m7g.large.search`",
            );
        }
        c.within(
            "volume_gb",
            self.volume_gb,
            10..=16_384,
            "{} GiB per node; gp3 volumes on OpenSearch take 10 to 16,384",
            "give at least 10 GiB (20 is the default)",
        );
        c.require(
            TLS_POLICIES.contains(&self.tls_policy.as_str()),
            "tls_policy",
            format!("`{}` is not a TLS policy of TLS 1.2 or newer", self.tls_policy),
            format!("use one of {}", TLS_POLICIES.join(", ")),
        );
        s.report(c.into_errors());
    }
}

impl PrivateService for Search {
    fn private_access(&self) -> &PrivateAccess {
        &self.access
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names_and_versions_follow_opensearch_rules() {
        assert!(valid_domain_name("shop-search-1a2b3c"));
        assert!(!valid_domain_name("Shop"));
        assert!(!valid_domain_name("ab"));
        assert!(!valid_domain_name(&"a".repeat(29)));
        assert_eq!(engine_version("OpenSearch_2.17"), Some((2, 17)));
        assert_eq!(engine_version("Elasticsearch_7.10"), None);
    }
}
