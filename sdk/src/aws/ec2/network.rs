//! `Vpc`: a production network over several availability zones — a public and a private subnet
//! per zone with computed, non-overlapping blocks, an internet gateway, a route table per tier, and
//! NAT gateways for the private tier.

use super::{
    self as ec2, AvailabilityZones, ElasticIp, InternetGateway, NatGateway, Route, RouteTable, RouteTableAssociation,
    RouteTableRef, Subnet, SubnetRef, Tags,
};
use crate::model::{Checker, Output, Stack};
use ipnet::Ipv4Net;
use typed_builder::TypedBuilder;

/// How private subnets reach the internet. In config files: `"none"`, `"single"` or
/// `"per-zone"` (anything else is refused, with the valid values listed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Nat {
    /// No NAT gateways and no private subnets: public subnets only (the low-cost reference fabric).
    None,
    /// One NAT gateway for all zones (cheaper; a zone outage cuts the others' egress).
    Single,
    /// One NAT gateway per zone (the default: no zone depends on another).
    PerZone,
}

/// Which availability zones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Zones {
    /// The first `n` available zones of the region, chosen at the first deploy and kept in state.
    Count(usize),
    /// These zones, by name.
    Named(Vec<String>),
}

impl From<usize> for Zones {
    fn from(n: usize) -> Self {
        Zones::Count(n)
    }
}

impl From<Vec<String>> for Zones {
    fn from(v: Vec<String>) -> Self {
        Zones::Named(v)
    }
}

impl<const N: usize> From<[&str; N]> for Zones {
    fn from(v: [&str; N]) -> Self {
        Zones::Named(v.iter().map(|z| z.to_string()).collect())
    }
}

impl Zones {
    fn len(&self) -> usize {
        match self {
            Zones::Count(n) => *n,
            Zones::Named(v) => v.len(),
        }
    }
}

/// A production VPC.
///
/// ```
/// use fabric::prelude::*;
/// let mut s = Stack::new("demo");
/// let net = Vpc::builder().name("main").cidr("10.0.0.0/16").zones(3).nat(Nat::PerZone).build().add(&mut s).unwrap();
/// assert_eq!(net.public_subnets().len(), 3);
/// assert_eq!(net.private_subnets().len(), 3);
/// assert_eq!(net.private_subnets()[0].cidr().to_string(), "10.0.0.0/18");
/// assert_eq!(net.public_subnets()[0].cidr().to_string(), "10.0.192.0/20");
/// ```
///
/// Public and private subnets are different types, so handing a public subnet to something that
/// must be private does not compile:
///
/// ```compile_fail
/// use fabric::prelude::*;
/// fn database_in(subnets: &[PrivateSubnet]) {}
/// let mut s = Stack::new("demo");
/// let net = Vpc::builder().name("main").cidr("10.0.0.0/16").build().add(&mut s).unwrap();
/// database_in(net.public_subnets());
/// ```
#[derive(TypedBuilder, Clone, Debug)]
pub struct Vpc {
    #[builder(setter(into))]
    name: String,
    /// The VPC's IPv4 block, /16 to /24 (split across the zones and tiers).
    #[builder(setter(into))]
    cidr: String,
    /// A count of zones (default 3), or their names.
    #[builder(default = Zones::Count(3), setter(into))]
    zones: Zones,
    #[builder(default = Nat::PerZone)]
    nat: Nat,
    /// Revoke every rule of the VPC's default security group (on by default): fabric gives each
    /// resource a group of its own, so only what falls back on the default one would use it.
    /// `false` keeps AWS's rules (all traffic between members, all egress).
    #[builder(default = true)]
    close_default_security_group: bool,
    /// Record the VPC's traffic in this bucket (declared with `log_delivery(true)`): a
    /// [`super::FlowLog`] named `<name>/flow-logs`, writing under `AWSLogs/` at the bucket's root.
    #[builder(default, setter(transform = |bucket: &crate::aws::s3::BucketRef| Some(bucket.clone())))]
    flow_logs: Option<crate::aws::s3::BucketRef>,
    #[builder(default, setter(into))]
    tags: Tags,
}

/// A subnet with a route to the internet gateway.
#[derive(Clone, Debug)]
pub struct PublicSubnet {
    subnet: SubnetRef,
    cidr: Ipv4Net,
}

/// A subnet without a public route (egress through NAT, if any).
#[derive(Clone, Debug)]
pub struct PrivateSubnet {
    subnet: SubnetRef,
    cidr: Ipv4Net,
}

macro_rules! subnet_accessors {
    ($t:ty) => {
        impl $t {
            pub fn subnet(&self) -> &SubnetRef {
                &self.subnet
            }

            pub fn id(&self) -> Output<String> {
                self.subnet.id()
            }

            pub fn zone(&self) -> Output<String> {
                self.subnet.zone()
            }

            pub fn cidr(&self) -> Ipv4Net {
                self.cidr
            }
        }
    };
}
subnet_accessors!(PublicSubnet);
subnet_accessors!(PrivateSubnet);

/// A declared network.
#[derive(Clone, Debug)]
pub struct Network {
    vpc: ec2::VpcRef,
    public: Vec<PublicSubnet>,
    private: Vec<PrivateSubnet>,
    /// The public tier's table first, then one per private subnet.
    route_tables: Vec<RouteTableRef>,
    /// False when the network's own settings were invalid (its problems are reported): builders
    /// on it then report nothing that only follows from its having no subnets.
    valid: bool,
}

impl Network {
    pub fn id(&self) -> Output<String> {
        self.vpc.id()
    }

    pub fn vpc(&self) -> &ec2::VpcRef {
        &self.vpc
    }

    pub fn cidr(&self) -> Option<Ipv4Net> {
        self.vpc.cidr()
    }

    /// Whether the network's settings were valid (see the field).
    pub fn is_valid(&self) -> bool {
        self.valid
    }

    pub fn public_subnets(&self) -> &[PublicSubnet] {
        &self.public
    }

    pub fn private_subnets(&self) -> &[PrivateSubnet] {
        &self.private
    }

    /// Every route table of the network (the public tier's, then the private subnets'): where a
    /// peering or a VPN adds its routes.
    pub fn route_tables(&self) -> &[RouteTableRef] {
        &self.route_tables
    }
}

/// Smallest number of bits that counts to `n`.
fn bits_for(n: usize) -> u8 {
    let mut b = 0;
    while (1usize << b) < n {
        b += 1;
    }
    b
}

/// Subnet blocks: private subnets first, each as large as the split allows; public subnets share
/// the next block. Without private subnets, the public ones share the whole VPC.
pub fn plan_subnets(vpc: Ipv4Net, zones: usize, private: bool) -> Result<(Vec<Ipv4Net>, Vec<Ipv4Net>), String> {
    let split = |net: Ipv4Net, bits: u8| -> Result<Vec<Ipv4Net>, String> {
        let prefix = net.prefix_len() + bits;
        if prefix > 28 {
            return Err(format!(
                "{net} is too small for {zones} zones: subnets would be /{prefix}, AWS allows at most /28"
            ));
        }
        Ok(net.subnets(prefix).map_err(|e| e.to_string())?.collect())
    };
    if !private {
        let public = split(vpc, bits_for(zones))?;
        return Ok((public.into_iter().take(zones).collect(), Vec::new()));
    }
    let blocks = split(vpc, bits_for(zones + 1))?;
    let private_blocks: Vec<Ipv4Net> = blocks.iter().take(zones).copied().collect();
    let public = split(blocks[zones], bits_for(zones))?.into_iter().take(zones).collect();
    Ok((public, private_blocks))
}

impl Vpc {
    /// The VPC alone, for a layout of one's own (`zones` and `nat` do not apply): its subnets,
    /// gateways and route tables are declared with the low-level builders of [`crate::aws::ec2`].
    ///
    /// ```
    /// use fabric::prelude::*;
    /// let mut s = Stack::new("demo");
    /// let vpc = Vpc::builder().name("main").cidr("10.0.0.0/16").build().add_alone(&mut s).unwrap();
    /// assert_eq!(vpc.cidr().unwrap().to_string(), "10.0.0.0/16");
    /// ```
    pub fn add_alone(self, s: &mut Stack) -> crate::Result<ec2::VpcRef> {
        let vpc = ec2::vpc::declare(s, &self.name, &self.cidr, self.close_default_security_group, &self.tags)?;
        self.add_flow_logs(s, &vpc)?;
        Ok(vpc)
    }

    fn add_flow_logs(&self, s: &mut Stack, vpc: &ec2::VpcRef) -> crate::Result<()> {
        if let Some(bucket) = &self.flow_logs {
            let name = format!("{}/flow-logs", self.name);
            super::FlowLog::builder().name(name).vpc(vpc).bucket(bucket).tags(self.tags.clone()).build().add(s)?;
        }
        Ok(())
    }

    /// The production network: the VPC, its subnets over the zones, gateways and route tables.
    pub fn add(self, s: &mut Stack) -> crate::Result<Network> {
        let urn = s.urn("fabric:Vpc", &self.name);
        let mut c = Checker::new(urn);
        let n = self.zones.len();
        c.within(
            "zones",
            n,
            2..=6,
            "{} zone(s) asked for; a production network spans 2 to 6",
            "use `.zones(3)` (the default) or name two to six zones",
        );
        if let Zones::Named(names) = &self.zones {
            let mut sorted = names.clone();
            sorted.sort();
            sorted.dedup();
            c.require(sorted.len() == names.len(), "zones", "a zone is named twice", "name each zone once");
        }
        let vpc_net: Option<Ipv4Net> = self.cidr.parse().ok();
        let blocks = match vpc_net {
            Some(net) if net.prefix_len() <= 24 && (2..=6).contains(&n) => {
                match plan_subnets(net.trunc(), n, self.nat != Nat::None) {
                    Ok(b) => Some(b),
                    Err(e) => {
                        c.error("cidr", e, "use a larger block, such as a /16");
                        None
                    }
                }
            }
            Some(net) if net.prefix_len() > 24 => {
                c.error(
                    "cidr",
                    format!("{net} is too small for a network of public and private subnets"),
                    "use a /16 to /24 block",
                );
                None
            }
            _ => None,
        };
        s.report(c.into_errors());

        let name = &self.name;
        let tags = self.tags.clone();
        let vpc = ec2::vpc::declare(s, name, &self.cidr, self.close_default_security_group, &tags)?;
        self.add_flow_logs(s, &vpc)?;
        let zone_names: Vec<Output<String>> = match &self.zones {
            Zones::Named(v) => v.iter().map(|z| Output::known(z.clone())).collect(),
            Zones::Count(n) => {
                let zones = AvailabilityZones::add(s, &format!("{name}/zones"), *n);
                (0..*n).map(|i| zones.name(i)).collect()
            }
        };
        let Some((public_blocks, private_blocks)) = blocks else {
            return Ok(Network {
                vpc,
                public: Vec::new(),
                private: Vec::new(),
                route_tables: Vec::new(),
                valid: false,
            });
        };
        let letter = |i: usize| char::from(b'a' + i as u8);

        let igw = InternetGateway::builder().name(name.as_str()).vpc(&vpc).tags(tags.clone()).build().add(s)?;
        let public_rt =
            RouteTable::builder().name(format!("{name}/public")).vpc(&vpc).tags(tags.clone()).build().add(s)?;
        Route::builder()
            .name(format!("{name}/public-internet"))
            .route_table(&public_rt)
            .destination("0.0.0.0/0")
            .gateway(&igw)
            .build()
            .add(s)?;
        let mut route_tables = vec![public_rt.clone()];
        let mut public = Vec::new();
        for (i, block) in public_blocks.iter().enumerate() {
            let subnet = Subnet::builder()
                .name(format!("{name}/public-{}", letter(i)))
                .vpc(&vpc)
                .cidr(block.to_string())
                .zone(zone_names[i].clone())
                .public(true)
                .tags(tier_tags(&tags, "public"))
                .build()
                .add(s)?;
            RouteTableAssociation::builder()
                .name(format!("{name}/public-{}", letter(i)))
                .route_table(&public_rt)
                .subnet(&subnet)
                .build()
                .add(s)?;
            public.push(PublicSubnet { subnet, cidr: *block });
        }

        let mut nat_gateways = Vec::new();
        let nat_count = match self.nat {
            Nat::None => 0,
            Nat::Single => 1,
            Nat::PerZone => n,
        };
        for (i, p) in public.iter().enumerate().take(nat_count) {
            let ip =
                ElasticIp::builder().name(format!("{name}/nat-{}", letter(i))).tags(tags.clone()).build().add(s)?;
            let nat = NatGateway::builder()
                .name(format!("{name}/nat-{}", letter(i)))
                .subnet(&p.subnet)
                .address(&ip)
                .tags(tags.clone())
                .build()
                .add(s)?;
            nat_gateways.push(nat);
        }

        let mut private = Vec::new();
        for (i, block) in private_blocks.iter().enumerate() {
            let subnet = Subnet::builder()
                .name(format!("{name}/private-{}", letter(i)))
                .vpc(&vpc)
                .cidr(block.to_string())
                .zone(zone_names[i].clone())
                .tags(tier_tags(&tags, "private"))
                .build()
                .add(s)?;
            let rt = RouteTable::builder()
                .name(format!("{name}/private-{}", letter(i)))
                .vpc(&vpc)
                .tags(tags.clone())
                .build()
                .add(s)?;
            let nat = &nat_gateways[if self.nat == Nat::Single { 0 } else { i }];
            Route::builder()
                .name(format!("{name}/private-{}-egress", letter(i)))
                .route_table(&rt)
                .destination("0.0.0.0/0")
                .nat_gateway(nat)
                .build()
                .add(s)?;
            RouteTableAssociation::builder()
                .name(format!("{name}/private-{}", letter(i)))
                .route_table(&rt)
                .subnet(&subnet)
                .build()
                .add(s)?;
            private.push(PrivateSubnet { subnet, cidr: *block });
            route_tables.push(rt);
        }
        Ok(Network { vpc, public, private, route_tables, valid: true })
    }
}

/// The tier tag (`fabric:tier` is reserved, so `tier`), which load balancers and EKS also read.
fn tier_tags(tags: &Tags, tier: &str) -> Tags {
    let mut t = tags.clone();
    t.insert("tier".into(), tier.into());
    let elb = if tier == "public" { "kubernetes.io/role/elb" } else { "kubernetes.io/role/internal-elb" };
    t.insert(elb.into(), "1".into());
    t
}

/// A private zone attached to this network (`HostedZone::builder().private(&net)`).
#[cfg(feature = "route53")]
impl From<&Network> for crate::aws::route53::PrivateTo {
    fn from(net: &Network) -> Self {
        net.vpc().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_blocks_do_not_overlap_and_stay_inside() {
        for zones in 2..=6 {
            for private in [true, false] {
                let vpc: Ipv4Net = "10.0.0.0/16".parse().unwrap();
                let (public, privs) = plan_subnets(vpc, zones, private).unwrap();
                assert_eq!(public.len(), zones);
                assert_eq!(privs.len(), if private { zones } else { 0 });
                let all: Vec<Ipv4Net> = public.iter().chain(privs.iter()).copied().collect();
                for (i, a) in all.iter().enumerate() {
                    assert!(vpc.contains(a));
                    for b in &all[i + 1..] {
                        assert!(!a.contains(b) && !b.contains(a), "{a} overlaps {b}");
                    }
                }
            }
        }
        let (public, private) = plan_subnets("10.0.0.0/16".parse().unwrap(), 3, true).unwrap();
        assert_eq!(
            private.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            ["10.0.0.0/18", "10.0.64.0/18", "10.0.128.0/18"]
        );
        assert_eq!(
            public.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            ["10.0.192.0/20", "10.0.208.0/20", "10.0.224.0/20"]
        );
        assert!(plan_subnets("10.0.0.0/26".parse().unwrap(), 3, true).unwrap_err().contains("too small"));
    }
}
