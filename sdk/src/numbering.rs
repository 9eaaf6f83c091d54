//! Network numbering across a team's fabrics: fabric number `n` (0–127) owns `10.<n>.0.0/16` for
//! its VPC and `10.<128 + n>.0.0/16` for its cluster's Kubernetes services, so any two fabrics
//! can be peered or joined by a VPN (up to 128 of them), and no service address shadows a peer's.
//! Pods take VPC addresses (the VPC CNI), so they need no range of their own.
//!
//! The number comes from each environment's config; [`check_disjoint`] refuses, before any call,
//! two environments whose blocks overlap — run it over [`crate::model::Stack::all_configs`] in
//! the program (so `preview` reports it) and in a test.
//!
//! ```
//! use fabric::numbering::{Allocation, FabricNumber, overlaps};
//! let develop = FabricNumber::new(1).unwrap();
//! assert_eq!(develop.vpc_cidr().to_string(), "10.1.0.0/16");
//! assert_eq!(develop.service_cidr().to_string(), "10.129.0.0/16");
//! let all = [
//!     Allocation::numbered("develop", develop),
//!     Allocation::numbered("alice", FabricNumber::new(1).unwrap()),
//!     Allocation::numbered("prod", FabricNumber::new(3).unwrap()),
//! ];
//! let found = overlaps(&all);
//! assert_eq!(found.len(), 2); // alice's VPC and service blocks are develop's
//! assert!(found[0].to_string().contains("`alice` vpc 10.1.0.0/16 overlaps `develop` vpc 10.1.0.0/16"));
//! ```

use crate::model::{Checker, Stack, Urn};
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

/// A fabric's number: its place in the team's address plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct FabricNumber(u8);

impl FabricNumber {
    /// The highest number: `10.128.0.0/9` holds the service ranges.
    pub const MAX: u8 = 127;

    pub fn new(n: u8) -> Result<Self, String> {
        if n > Self::MAX {
            return Err(format!(
                "fabric number {n} is out of range: numbers are 0 to {} (VPC 10.<n>.0.0/16, services 10.<128+n>.0.0/16)",
                Self::MAX
            ));
        }
        Ok(FabricNumber(n))
    }

    pub fn get(self) -> u8 {
        self.0
    }

    /// `10.<n>.0.0/16`.
    pub fn vpc_cidr(self) -> Ipv4Net {
        block(self.0)
    }

    /// `10.<128 + n>.0.0/16`: the cluster's Kubernetes service addresses.
    pub fn service_cidr(self) -> Ipv4Net {
        block(128 + self.0)
    }
}

fn block(second: u8) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::new(10, second, 0, 0), 16).expect("/16 is a valid prefix")
}

impl TryFrom<u8> for FabricNumber {
    type Error = String;
    fn try_from(n: u8) -> Result<Self, String> {
        FabricNumber::new(n)
    }
}

impl From<FabricNumber> for u8 {
    fn from(n: FabricNumber) -> u8 {
        n.0
    }
}

/// One fabric's address blocks, by what they are for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// The environment (`develop`) or fabric the blocks belong to.
    pub fabric: String,
    pub blocks: Vec<(String, Ipv4Net)>,
}

impl Allocation {
    /// The VPC and service blocks of fabric number `n`.
    pub fn numbered(fabric: &str, n: FabricNumber) -> Self {
        Allocation {
            fabric: fabric.to_string(),
            blocks: vec![("vpc".into(), n.vpc_cidr()), ("services".into(), n.service_cidr())],
        }
    }
}

/// Two blocks of different fabrics that share addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overlap {
    pub fabric: String,
    pub what: String,
    pub block: Ipv4Net,
    pub other_fabric: String,
    pub other_what: String,
    pub other_block: Ipv4Net,
}

impl std::fmt::Display for Overlap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` {} {} overlaps `{}` {} {}",
            self.fabric, self.what, self.block, self.other_fabric, self.other_what, self.other_block
        )
    }
}

fn overlap(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Every pair of blocks of two different fabrics that overlap, in the order given (each pair once,
/// the later fabric first).
pub fn overlaps(all: &[Allocation]) -> Vec<Overlap> {
    let mut found = Vec::new();
    for (i, later) in all.iter().enumerate() {
        for earlier in &all[..i] {
            for (what, block) in &later.blocks {
                for (other_what, other_block) in &earlier.blocks {
                    if overlap(*block, *other_block) {
                        found.push(Overlap {
                            fabric: later.fabric.clone(),
                            what: what.clone(),
                            block: *block,
                            other_fabric: earlier.fabric.clone(),
                            other_what: other_what.clone(),
                            other_block: *other_block,
                        });
                    }
                }
            }
        }
    }
    found
}

/// The lowest numbers no allocation uses, for the fix of an error.
fn free_numbers(all: &[Allocation], count: usize) -> Vec<u8> {
    (0..=FabricNumber::MAX)
        .filter(|n| {
            let mine = Allocation::numbered("", FabricNumber(*n));
            all.iter().all(|a| overlaps(&[a.clone(), mine.clone()]).is_empty())
        })
        .take(count)
        .collect()
}

/// Reports every overlap between the fabrics of `all` (a stack's environments) as an error of
/// field `field` of the stack's config, with free numbers in the fix: the plan stops before any
/// call.
pub fn check_disjoint(s: &mut Stack, field: &str, all: &[Allocation]) {
    let mut c = Checker::new(Urn::new(s.name(), "fabric:Config", s.env().unwrap_or("none")));
    let found = overlaps(all);
    if !found.is_empty() {
        let free: Vec<String> = free_numbers(all, 3).iter().map(u8::to_string).collect();
        for o in found {
            c.error(
                field,
                format!("{o}: the two fabrics could never be peered or joined by a VPN"),
                format!(
                    "give each environment its own `{field}` in its config (unused: {})",
                    if free.is_empty() { "none".to_string() } else { free.join(", ") }
                ),
            );
        }
    }
    s.report(c.into_errors());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_map_to_disjoint_blocks() {
        let all: Vec<Allocation> = (0..=FabricNumber::MAX)
            .map(|n| Allocation::numbered(&n.to_string(), FabricNumber::new(n).unwrap()))
            .collect();
        assert!(overlaps(&all).is_empty(), "128 fabrics, no overlap");
        assert_eq!(FabricNumber::new(127).unwrap().service_cidr().to_string(), "10.255.0.0/16");
        assert!(FabricNumber::new(128).unwrap_err().contains("0 to 127"));
        let n: Result<FabricNumber, _> = serde_json::from_str("200");
        assert!(n.unwrap_err().to_string().contains("out of range"));
    }

    #[test]
    fn a_hand_written_block_that_covers_another_fabric_is_found() {
        let wide = Allocation { fabric: "legacy".into(), blocks: vec![("vpc".into(), "10.0.0.0/8".parse().unwrap())] };
        let develop = Allocation::numbered("develop", FabricNumber::new(1).unwrap());
        let found = overlaps(&[wide.clone(), develop.clone()]);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].other_fabric, "legacy");
        assert!(free_numbers(&[wide, develop], 3).is_empty());
    }

    #[test]
    fn the_check_names_both_fabrics_and_free_numbers() {
        let mut s = Stack::new("reference-develop");
        let all = [
            Allocation::numbered("develop", FabricNumber::new(0).unwrap()),
            Allocation::numbered("staging", FabricNumber::new(2).unwrap()),
            Allocation::numbered("alice", FabricNumber::new(2).unwrap()),
        ];
        check_disjoint(&mut s, "network", &all);
        let err = s.finish().err().unwrap().to_string();
        assert!(err.contains("`alice` vpc 10.2.0.0/16 overlaps `staging` vpc 10.2.0.0/16"), "{err}");
        assert!(err.contains("unused: 1, 3, 4"), "{err}");
    }
}
