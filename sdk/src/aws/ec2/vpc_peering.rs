//! `VpcPeering`: two networks joined — the peering connection (requested and accepted, same
//! account and region) and a route to the other side's block in every route table of both sides.

use crate::aws::ec2::Network;
use crate::aws::ec2::{Route, RouteTableRef, Tags, VpcPeeringConnection, VpcPeeringRef};
use crate::model::{Checker, Output, Stack};
use ipnet::Ipv4Net;
use typed_builder::TypedBuilder;

/// The other side of a peering: a network of this stack, or one another stack exports.
#[derive(Clone, Debug)]
pub struct PeerNetwork {
    /// Who owns it, for messages (`this stack`, `reference-develop`).
    owner: String,
    vpc_id: Output<String>,
    cidr: Option<Ipv4Net>,
    route_tables: Vec<RouteTableRef>,
}

impl PeerNetwork {
    /// A network another stack owns, from what it exports (read with
    /// [`crate::model::Stack::reference`]): its VPC id, block and route table ids. The peering
    /// adds routes to those tables; the tables and the VPC stay that stack's.
    pub fn of_other_stack(stack: &str, vpc_id: &str, cidr: &str, route_table_ids: &[String]) -> PeerNetwork {
        PeerNetwork {
            owner: format!("stack `{stack}`"),
            vpc_id: Output::known(vpc_id.to_string()),
            cidr: cidr.parse().ok(),
            route_tables: route_table_ids.iter().map(|id| RouteTableRef::of_other_stack(stack, id)).collect(),
        }
    }
}

impl From<&Network> for PeerNetwork {
    fn from(net: &Network) -> Self {
        PeerNetwork {
            owner: "this stack".into(),
            vpc_id: net.id(),
            cidr: net.cidr(),
            route_tables: net.route_tables().to_vec(),
        }
    }
}

/// Joins `network` (this stack's) to `peer`, with routes both ways.
///
/// ```
/// use fabric::prelude::*;
/// use fabric::aws::ec2::{PeerNetwork, VpcPeering};
/// let mut s = Stack::new("demo");
/// let a = Vpc::builder().name("a").cidr("10.1.0.0/16").nat(Nat::None).build().add(&mut s).unwrap();
/// let b = Vpc::builder().name("b").cidr("10.2.0.0/16").nat(Nat::None).build().add(&mut s).unwrap();
/// VpcPeering::builder().name("a-b").network(&a).peer(PeerNetwork::from(&b)).build().add(&mut s).unwrap();
/// let g = s.finish().unwrap();
/// // The connection, and one route in each side's (single, public) route table.
/// assert_eq!(g.nodes().iter().filter(|n| n.urn.type_name() == "aws:ec2:Route" && n.urn.name().starts_with("a-b/")).count(), 2);
/// ```
///
/// Overlapping blocks cannot be peered, and are refused before any call:
///
/// ```
/// use fabric::prelude::*;
/// use fabric::aws::ec2::{PeerNetwork, VpcPeering};
/// let mut s = Stack::new("demo");
/// let a = Vpc::builder().name("a").cidr("10.1.0.0/16").build().add(&mut s).unwrap();
/// let peer = PeerNetwork::of_other_stack("legacy", "vpc-0abc", "10.0.0.0/8", &["rtb-0abc".to_string()]);
/// VpcPeering::builder().name("legacy").network(&a).peer(peer).build().add(&mut s).unwrap();
/// assert!(s.finish().err().unwrap().to_string().contains("overlaps"));
/// ```
#[derive(TypedBuilder, Clone, Debug)]
pub struct VpcPeering<'a> {
    #[builder(setter(into))]
    name: String,
    network: &'a Network,
    peer: PeerNetwork,
    #[builder(default, setter(into))]
    tags: Tags,
}

/// A declared peering.
#[derive(Clone, Debug)]
pub struct Peering {
    connection: VpcPeeringRef,
}

impl Peering {
    pub fn connection(&self) -> &VpcPeeringRef {
        &self.connection
    }

    pub fn id(&self) -> Output<String> {
        self.connection.id()
    }
}

impl VpcPeering<'_> {
    pub fn add(self, s: &mut Stack) -> crate::Result<Peering> {
        let mut c = Checker::new(s.urn(crate::aws::ec2::peering::TYPE, &self.name));
        let here = self.network.cidr();
        match (here, self.peer.cidr) {
            (Some(a), Some(b)) => c.require(
                !a.contains(&b.network()) && !b.contains(&a.network()),
                "peer",
                format!(
                    "this network's {a} overlaps {b} of {}: VPCs with overlapping blocks cannot be peered",
                    self.peer.owner
                ),
                "number the fabrics apart (`fabric::numbering`: 10.<n>.0.0/16 each)",
            ),
            (_, None) => c.error(
                "peer",
                format!("the block of the network of {} is not an IPv4 CIDR block", self.peer.owner),
                "give its block as the other stack exports it (`10.1.0.0/16`)",
            ),
            _ => {}
        }
        c.require(
            !self.peer.route_tables.is_empty(),
            "peer",
            format!("the network of {} has no route tables to route back through", self.peer.owner),
            "give its route table ids (the other stack's `route_table_ids` export)",
        );
        s.report(c.into_errors());
        let connection = VpcPeeringConnection::builder()
            .name(self.name.as_str())
            .vpc(self.network.id())
            .peer_vpc(self.peer.vpc_id.clone())
            .tags(self.tags.clone())
            .build()
            .add(s)?;
        let (Some(here), Some(there)) = (here, self.peer.cidr) else { return Ok(Peering { connection }) };
        let sides = [(self.network.route_tables(), there, "here"), (self.peer.route_tables.as_slice(), here, "there")];
        for (tables, destination, side) in sides {
            for (i, table) in tables.iter().enumerate() {
                Route::builder()
                    .name(format!("{}/{side}-{i}", self.name))
                    .route_table(table)
                    .destination(destination.to_string())
                    .peering(&connection)
                    .build()
                    .add(s)?;
            }
        }
        Ok(Peering { connection })
    }
}
