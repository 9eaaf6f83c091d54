//! Operator access to a fabric's private parts — nodes, database, cluster API — without a public
//! SSH port:
//!
//! - **Session Manager** (the default path): nodes run the SSM agent and their role carries
//!   `AmazonSSMManagedInstanceCore` ([`crate::aws::eks::EksCluster`]'s `session_manager`, on by
//!   default); `aws ssm start-session --target <instance>` opens a shell, and port forwarding
//!   reaches the database or a private API endpoint. In a network without NAT the agent reaches
//!   Systems Manager through [`SessionManagerEndpoints`].
//! - **A bastion** ([`Bastion`]), when SSH is required: SSH admitted only from the CIDR blocks
//!   named in config; from the whole internet only with an explicit, reasoned waiver in code.

use crate::aws::ec2::Network;
use crate::aws::ec2::{IngressRule, Protocol, SecurityGroup, SecurityGroupRef, Tags, VpcEndpoint, instance};
use crate::model::{Checker, Output, Stack};
use typed_builder::TypedBuilder;

/// The three interface endpoints Session Manager needs (`ssm`, `ssmmessages`, `ec2messages`) in
/// one subnet per zone (the private ones, or the public ones of a network without private
/// subnets), open on 443 to the network's own block only.
///
/// ```
/// use fabric::prelude::*;
/// use fabric::aws::ec2::SessionManagerEndpoints;
/// let mut s = Stack::new("demo");
/// let net = Vpc::builder().name("main").cidr("10.1.0.0/16").nat(Nat::None).build().add(&mut s).unwrap();
/// SessionManagerEndpoints::builder().name("ssm").network(&net).build().add(&mut s).unwrap();
/// let g = s.finish().unwrap();
/// assert_eq!(g.nodes().iter().filter(|n| n.urn.type_name() == "aws:ec2:VpcEndpoint").count(), 3);
/// ```
#[derive(TypedBuilder, Clone, Debug)]
pub struct SessionManagerEndpoints<'a> {
    #[builder(setter(into))]
    name: String,
    network: &'a Network,
    #[builder(default, setter(into))]
    tags: Tags,
}

/// The services Session Manager talks to.
pub const SESSION_MANAGER_SERVICES: [&str; 3] = ["ssm", "ssmmessages", "ec2messages"];

impl SessionManagerEndpoints<'_> {
    pub fn add(self, s: &mut Stack) -> crate::Result<SecurityGroupRef> {
        let net = self.network;
        let group = SecurityGroup::builder()
            .name(format!("{}/endpoints", self.name))
            .vpc(net.vpc())
            .description("Session Manager endpoints: HTTPS from inside the network")
            .tags(self.tags.clone())
            .build()
            .add(s)?;
        if let Some(cidr) = net.cidr() {
            IngressRule::builder()
                .name(format!("{}/endpoints-443", self.name))
                .group(&group)
                .protocol(Protocol::Tcp)
                .ports(443..=443)
                .from_cidr(cidr.to_string())
                .description("HTTPS from the network")
                .build()
                .add(s)?;
        }
        let subnets: Vec<Output<String>> = if net.private_subnets().is_empty() {
            net.public_subnets().iter().map(|p| p.id()).collect()
        } else {
            net.private_subnets().iter().map(|p| p.id()).collect()
        };
        for service in SESSION_MANAGER_SERVICES {
            VpcEndpoint::builder()
                .name(format!("{}/{service}", self.name))
                .vpc(net.vpc())
                .service(service)
                .subnets(subnets.clone())
                .security_groups(vec![group.id()])
                .tags(self.tags.clone())
                .build()
                .add(s)?;
        }
        Ok(group)
    }
}

/// An SSH bastion: a small Amazon Linux 2023 instance (IMDSv2 only) in the network's first public
/// subnet, admitting SSH from `ssh_from` only.
///
/// ```
/// use fabric::prelude::*;
/// use fabric::aws::ec2::Bastion;
/// let mut s = Stack::new("demo");
/// let net = Vpc::builder().name("main").cidr("10.1.0.0/16").nat(Nat::None).build().add(&mut s).unwrap();
/// let b = Bastion::builder().name("bastion").network(&net).ssh_from(vec!["203.0.113.0/24".into()])
///     .build().add(&mut s).unwrap();
/// s.export("bastion", b.public_ip());
/// assert!(s.finish().is_ok());
/// ```
///
/// SSH from anywhere is refused before any call, unless waived in code with a reason:
///
/// ```
/// use fabric::prelude::*;
/// use fabric::aws::ec2::Bastion;
/// let mut s = Stack::new("demo");
/// let net = Vpc::builder().name("main").cidr("10.1.0.0/16").nat(Nat::None).build().add(&mut s).unwrap();
/// Bastion::builder().name("bastion").network(&net).ssh_from(vec!["0.0.0.0/0".into()]).build().add(&mut s).unwrap();
/// let err = s.finish().err().unwrap().to_string();
/// assert!(err.contains("SSH from the whole internet"), "{err}");
/// ```
#[derive(TypedBuilder, Clone, Debug)]
pub struct Bastion<'a> {
    #[builder(setter(into))]
    name: String,
    network: &'a Network,
    /// Who may connect: office, VPN and CI egress blocks, from config.
    ssh_from: Vec<String>,
    /// Accept `0.0.0.0/0` in `ssh_from`, for the reason given (shown as a warning in every plan).
    #[builder(default, setter(strip_option, into))]
    waiver: Option<String>,
    #[builder(default = "t3.micro".into(), setter(into))]
    instance_type: String,
    /// An EC2 key pair's name (`None`: log in through EC2 Instance Connect or Session Manager).
    #[builder(default, setter(strip_option, into))]
    key_name: Option<String>,
    #[builder(default, setter(into))]
    tags: Tags,
}

/// A declared bastion.
#[derive(Clone, Debug)]
pub struct BastionRef {
    instance: crate::aws::ec2::InstanceRef,
    group: SecurityGroupRef,
}

impl BastionRef {
    /// Where to `ssh` to.
    pub fn public_ip(&self) -> Output<String> {
        self.instance.public_ip()
    }

    /// The bastion's group: admit it where it may go on (`IngressRule … .from_group(…)`).
    pub fn security_group(&self) -> &SecurityGroupRef {
        &self.group
    }
}

impl Bastion<'_> {
    pub fn add(self, s: &mut Stack) -> crate::Result<BastionRef> {
        let urn = s.urn(instance::TYPE, &self.name);
        let mut c = Checker::new(urn.clone());
        c.require(
            !self.ssh_from.is_empty(),
            "ssh_from",
            "a bastion that admits nobody",
            "name the office, VPN and CI blocks in config — or leave the bastion out and use Session Manager",
        );
        let mut anywhere = false;
        for cidr in &self.ssh_from {
            match cidr.parse::<ipnet::Ipv4Net>() {
                Ok(net) if net.prefix_len() == 0 => anywhere = true,
                Ok(_) => {}
                Err(_) => c.error(
                    "ssh_from",
                    format!("`{cidr}` is not an IPv4 CIDR block"),
                    "write blocks such as `203.0.113.0/24`",
                ),
            }
        }
        match (&self.waiver, anywhere) {
            (None, true) => c.error(
                "ssh_from",
                "SSH from the whole internet (0.0.0.0/0) is refused: a bastion open to everyone is scanned within minutes",
                "name the office, VPN and CI egress blocks in config; if it must be open, say why in code: `.waiver(\"…\")`",
            ),
            // The reasoned waiver is one of policy rule FAB-NET-1, shown with every plan.
            (Some(why), true) => {
                s.waive("FAB-NET-1", self.name.as_str(), why);
            }
            _ => {}
        }
        c.require(
            !self.network.is_valid() || !self.network.public_subnets().is_empty(),
            "network",
            "the network has no public subnet for a bastion",
            "use a network with public subnets",
        );
        s.report(c.into_errors());

        let group = SecurityGroup::builder()
            .name(self.name.as_str())
            .vpc(self.network.vpc())
            .description(format!("Bastion {}: SSH from named blocks only", self.name))
            .tags(self.tags.clone())
            .build()
            .add(s)?;
        for (i, cidr) in self.ssh_from.iter().enumerate() {
            IngressRule::builder()
                .name(format!("{}/ssh-{i}", self.name))
                .group(&group)
                .protocol(Protocol::Tcp)
                .ports(22..=22)
                .from_cidr(cidr.as_str())
                .description("SSH")
                .build()
                .add(s)?;
        }
        let image = instance::amazon_linux(s, &format!("{}/image", self.name));
        let subnet = match self.network.public_subnets().first() {
            Some(p) => p.id(),
            None => Output::known(String::new()),
        };
        let instance = instance::declare(
            s,
            &self.name,
            instance::InstanceInputs {
                image_id: image,
                instance_type: self.instance_type.clone(),
                subnet_id: subnet,
                security_group_ids: Output::all([group.id()]),
                key_name: self.key_name.clone(),
                tags: self.tags.clone(),
            },
        );
        Ok(BastionRef { instance, group })
    }
}
