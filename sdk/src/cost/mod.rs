//! What a stack costs a month, on demand, in its region: every preview shows the total before
//! and after the change and the difference; `cost` prints the breakdown without asking the cloud.
//!
//! Prices come from a dated table in the repository (`prices.json`: its date and source are
//! printed with every estimate; `cargo xtask prices refresh` rebuilds it from the AWS Price List
//! API). Usage-priced parts (a NAT gateway's data, a load balancer's LCUs, backup storage) come
//! from [`ASSUMPTIONS`], whose defaults every estimate lists and a stack overrides with
//! [`Stack::assume`](crate::model::Stack::assume). A resource whose price is not known is named as
//! unknown, and never counted as zero.
//!
//! ```
//! use fabric::cost::{Money, estimate};
//! use fabric::model::policy::{PolicyResource, PolicyView};
//! use fabric::model::Urn;
//! let nat = PolicyResource {
//!     urn: Urn::new("s", "aws:ec2:NatGateway", "nat-a"),
//!     type_name: "aws:ec2:NatGateway".into(),
//!     inputs: serde_json::json!({}),
//!     deps: vec![],
//! };
//! let e = estimate(&PolicyView::new("s", false, vec![nat]), "us-east-1", &Default::default());
//! // 730 hours at $0.045, and 100 GB (the default assumption) at $0.045.
//! assert_eq!(e.lines[0].monthly, Money::Known(32.85 + 4.5));
//! ```

mod render;
pub use render::{render_breakdown, render_diff};

use crate::model::policy::{PolicyResource, PolicyView};
use crate::model::{Urn, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Hours in a month, as AWS's own calculator counts them.
pub const HOURS_PER_MONTH: f64 = 730.0;

/// The price table shipped with fabric.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PriceTable {
    /// When the prices were taken (`YYYY-MM-DD`).
    pub date: String,
    /// When the flat rates were (`prices refresh` renews the instance prices only).
    #[serde(default)]
    pub rates_date: String,
    pub currency: String,
    /// Where they came from.
    pub source: String,
    /// Region → the table that prices it.
    pub regions: BTreeMap<String, String>,
    pub tables: BTreeMap<String, RegionPrices>,
}

/// One region's prices.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RegionPrices {
    pub ec2_hour: BTreeMap<String, f64>,
    pub rds_postgres_hour: BTreeMap<String, f64>,
    pub aurora_postgres_hour: BTreeMap<String, f64>,
    pub elasticache_node_hour: BTreeMap<String, f64>,
    pub opensearch_instance_hour: BTreeMap<String, f64>,
    /// Flat rates by name (`eks_cluster_hour`, `ebs_gp3_gb_month`, …).
    pub rates: BTreeMap<String, f64>,
}

/// The table in the repository, `sdk/src/cost/prices.json`.
pub fn prices() -> &'static PriceTable {
    static TABLE: OnceLock<PriceTable> = OnceLock::new();
    TABLE.get_or_init(|| serde_json::from_str(include_str!("prices.json")).expect("prices.json is valid"))
}

/// A usage figure the estimate assumes, with its default.
pub struct Assumption {
    pub name: &'static str,
    pub default: f64,
    pub unit: &'static str,
    pub what: &'static str,
}

/// Every usage assumption, with its default ([`Stack::assume`](crate::model::Stack::assume)
/// overrides one; a name not listed here is refused).
pub const ASSUMPTIONS: &[Assumption] = &[
    Assumption {
        name: "nat_gb_per_month",
        default: 100.0,
        unit: "GB",
        what: "data each NAT gateway processes a month",
    },
    Assumption { name: "alb_lcu", default: 1.0, unit: "LCU", what: "load-balancer capacity units in use, on average" },
    Assumption {
        name: "endpoint_gb_per_month",
        default: 10.0,
        unit: "GB",
        what: "data each interface endpoint processes a month",
    },
    Assumption { name: "aurora_storage_gb", default: 20.0, unit: "GB", what: "storage of each Aurora cluster" },
    Assumption { name: "aurora_io_millions", default: 10.0, unit: "million", what: "Aurora I/O requests a month" },
    Assumption { name: "backup_gb", default: 100.0, unit: "GB", what: "warm backup storage of each backup plan" },
    Assumption { name: "bucket_gb", default: 50.0, unit: "GB", what: "objects stored in each bucket" },
    Assumption { name: "instance_root_gb", default: 8.0, unit: "GB", what: "root volume of each EC2 instance" },
    Assumption {
        name: "flow_log_gb_per_month",
        default: 10.0,
        unit: "GB",
        what: "flow-log records each VPC delivers to S3 a month",
    },
];

/// Checks a stack's overrides: each names an assumption, with a value of zero or more.
pub fn check_assumptions(stack: &str, overrides: &BTreeMap<String, f64>) -> Vec<ValidationError> {
    let mut errors = Vec::new();
    for (name, value) in overrides {
        let urn = Urn::new(stack, "fabric:CostAssumption", name);
        if !ASSUMPTIONS.iter().any(|a| a.name == name) {
            let known: Vec<&str> = ASSUMPTIONS.iter().map(|a| a.name).collect();
            errors.push(ValidationError {
                urn,
                field: "assume".into(),
                problem: format!("`{name}` is not a usage assumption of the cost estimate"),
                fix: format!("name one of {}", known.join(", ")),
            });
        } else if !value.is_finite() || *value < 0.0 {
            errors.push(ValidationError {
                urn,
                field: "assume".into(),
                problem: format!("`{name}` is assumed to be {value}"),
                fix: "give a figure of zero or more".into(),
            });
        }
    }
    errors
}

/// A monthly cost: known, a range (a node pool between its minimum and maximum size), or unknown.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Money {
    Known(f64),
    Range(f64, f64),
    /// Why it is not known (no price for that instance type in that region …).
    Unknown(String),
}

impl Money {
    /// The low and high ends; `None` when unknown.
    pub fn bounds(&self) -> Option<(f64, f64)> {
        match self {
            Money::Known(x) => Some((*x, *x)),
            Money::Range(a, b) => Some((*a, *b)),
            Money::Unknown(_) => None,
        }
    }
}

/// One priced resource.
#[derive(Clone, Debug, Serialize)]
pub struct Line {
    pub urn: Urn,
    /// What is priced: `3–12 × m6i.large, 50 GB gp3 each`.
    pub what: String,
    pub monthly: Money,
}

/// The monthly cost of a set of resources.
#[derive(Clone, Debug, Serialize)]
pub struct Estimate {
    pub region: String,
    pub prices_date: String,
    pub currency: String,
    pub lines: Vec<Line>,
    /// The sum of the known lines, low and high.
    pub low: f64,
    pub high: f64,
    /// The assumptions the lines used, with the values used.
    pub assumptions: BTreeMap<String, f64>,
}

impl Estimate {
    pub fn unknown(&self) -> impl Iterator<Item = &Line> {
        self.lines.iter().filter(|l| matches!(l.monthly, Money::Unknown(_)))
    }

    fn line(&self, urn: &Urn) -> Option<&Line> {
        self.lines.iter().find(|l| &l.urn == urn)
    }
}

/// Types that cost nothing by themselves (their traffic or the nodes they run on are priced
/// elsewhere, or the service is free).
const FREE: &[&str] = &[
    "aws:ec2:Vpc",
    "aws:ec2:Subnet",
    "aws:ec2:RouteTable",
    "aws:ec2:Route",
    "aws:ec2:RouteTableAssociation",
    "aws:ec2:InternetGateway",
    "aws:ec2:SecurityGroup",
    "aws:ec2:SecurityGroupIngressRule",
    "aws:ec2:AvailabilityZones",
    "aws:ec2:ImageLookup",
    "aws:ec2:LaunchTemplate",
    "aws:ec2:VpcPeeringConnection",
    "aws:acm:Certificate",
    "aws:acm:CertificateValidation",
    "aws:route53:Record",
    "aws:route53:ZoneLookup",
    "aws:elbv2:Listener",
    "aws:elbv2:ListenerRule",
    "aws:elbv2:TargetGroup",
    "aws:autoscaling:TargetGroupAttachment",
    "aws:eks:Addon",
    "aws:eks:AccessEntry",
    "aws:eks:PodIdentityAssociation",
    "aws:rds:DbSubnetGroup",
    "aws:rds:DbClusterParameterGroup",
    "aws:elasticache:SubnetGroup",
    "aws:backup:Vault",
    "aws:backup:Selection",
];

fn free(type_name: &str) -> bool {
    FREE.contains(&type_name)
        || type_name.starts_with("aws:iam:")
        || type_name.starts_with("fabric:")
        || (type_name.starts_with("k8s:")
            && !type_name.ends_with(":StatefulSet")
            && !type_name.ends_with(":PersistentVolumeClaim"))
}

/// The monthly cost of the resources in `view`, in `region`, with the stack's `overrides` of
/// the usage assumptions.
pub fn estimate(view: &PolicyView, region: &str, overrides: &BTreeMap<String, f64>) -> Estimate {
    let table = prices();
    let mut pricer = Pricer {
        view,
        region,
        prices: table.regions.get(region).and_then(|t| table.tables.get(t)),
        overrides,
        used: BTreeMap::new(),
    };
    let mut lines = Vec::new();
    for r in &view.resources {
        if free(&r.type_name) {
            continue;
        }
        let line = pricer.price(r);
        if let Some((what, monthly)) = line {
            lines.push(Line { urn: r.urn.clone(), what, monthly });
        }
    }
    let (low, high) =
        lines.iter().filter_map(|l| l.monthly.bounds()).fold((0.0, 0.0), |(a, b), (lo, hi)| (a + lo, b + hi));
    Estimate {
        region: region.to_string(),
        prices_date: table.date.clone(),
        currency: table.currency.clone(),
        lines,
        low: round(low),
        high: round(high),
        assumptions: pricer.used,
    }
}

/// The estimate before a change (what state holds) and after it (what the program declares).
#[derive(Clone, Debug, Serialize)]
pub struct CostDiff {
    pub before: Estimate,
    pub after: Estimate,
}

impl CostDiff {
    /// The change of the monthly total, low and high.
    pub fn delta(&self) -> (f64, f64) {
        (round(self.after.low - self.before.low), round(self.after.high - self.before.high))
    }

    /// The resources whose monthly cost changes: (urn, before, after).
    pub fn changed(&self) -> Vec<(&Urn, Option<&Line>, Option<&Line>)> {
        let mut urns: Vec<&Urn> = self.before.lines.iter().chain(&self.after.lines).map(|l| &l.urn).collect();
        urns.sort();
        urns.dedup();
        urns.into_iter()
            .map(|u| (u, self.before.line(u), self.after.line(u)))
            .filter(|(_, b, a)| b.map(|l| (&l.monthly, &l.what)) != a.map(|l| (&l.monthly, &l.what)))
            .collect()
    }

    pub fn to_json(&self) -> Value {
        let (dl, dh) = self.delta();
        let changed: Vec<Value> = self
            .changed()
            .into_iter()
            .map(|(urn, b, a)| {
                serde_json::json!({"urn": urn, "before": b.map(|l| &l.monthly), "after": a.map(|l| &l.monthly),
                "what": a.or(b).map(|l| l.what.clone())})
            })
            .collect();
        serde_json::json!({
            "region": self.after.region, "currency": self.after.currency, "prices_date": self.after.prices_date,
            "before": {"low": self.before.low, "high": self.before.high},
            "after": {"low": self.after.low, "high": self.after.high},
            "delta": {"low": dl, "high": dh},
            "changed": changed,
            "unknown": self.after.unknown().map(|l| &l.urn).collect::<Vec<_>>(),
            "assumptions": self.after.assumptions,
        })
    }
}

/// A view of what state holds, for the estimate before a change.
pub fn view_of_state(state: &crate::state::State) -> PolicyView {
    let resources = state
        .resources
        .iter()
        .map(|(urn, r)| PolicyResource {
            urn: urn.clone(),
            type_name: r.type_name.clone(),
            inputs: r.inputs.clone(),
            deps: r.deps.clone(),
        })
        .collect();
    PolicyView::new(&state.stack, false, resources)
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

struct Pricer<'a> {
    view: &'a PolicyView,
    region: &'a str,
    prices: Option<&'a RegionPrices>,
    overrides: &'a BTreeMap<String, f64>,
    used: BTreeMap<String, f64>,
}

type Priced = Option<(String, Money)>;

impl Pricer<'_> {
    fn assume(&mut self, name: &str) -> f64 {
        let default = ASSUMPTIONS.iter().find(|a| a.name == name).map(|a| a.default).unwrap_or(0.0);
        let v = self.overrides.get(name).copied().unwrap_or(default);
        self.used.insert(name.to_string(), v);
        v
    }

    fn rate(&self, name: &str) -> Result<f64, String> {
        let p = self.prices.ok_or_else(|| self.no_region())?;
        p.rates.get(name).copied().ok_or_else(|| format!("no `{name}` rate for {}", self.region))
    }

    fn no_region(&self) -> String {
        format!(
            "no prices for region {} (the table has {})",
            self.region,
            prices().regions.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    }

    fn hourly(&self, table: fn(&RegionPrices) -> &BTreeMap<String, f64>, size: &str) -> Result<f64, String> {
        let p = self.prices.ok_or_else(|| self.no_region())?;
        table(p).get(size).copied().ok_or_else(|| format!("no price for `{size}` in {}", self.region))
    }

    fn price(&mut self, r: &PolicyResource) -> Priced {
        let t = r.type_name.as_str();
        let result: Result<(String, Money), String> = match t {
            "aws:eks:Cluster" => {
                self.rate("eks_cluster_hour").map(|h| ("control plane".into(), Money::Known(h * HOURS_PER_MONTH)))
            }
            "aws:eks:NodeGroup" => self.node_group(r),
            "aws:ec2:Instance" => self.instance(r),
            "aws:ec2:NatGateway" => {
                let gb = self.assume("nat_gb_per_month");
                self.rate("nat_gateway_hour").and_then(|h| {
                    Ok((
                        format!("730 h + {gb} GB processed"),
                        Money::Known(h * HOURS_PER_MONTH + gb * self.rate("nat_gateway_gb")?),
                    ))
                })
            }
            "aws:ec2:ElasticIp" => {
                self.rate("public_ipv4_hour").map(|h| ("public IPv4 address".into(), Money::Known(h * HOURS_PER_MONTH)))
            }
            "aws:ec2:VpcEndpoint" => self.endpoint(r),
            "aws:elbv2:LoadBalancer" => {
                let lcu = self.assume("alb_lcu");
                self.rate("alb_hour").and_then(|h| {
                    Ok((
                        format!("730 h + {lcu} LCU"),
                        Money::Known((h + lcu * self.rate("alb_lcu_hour")?) * HOURS_PER_MONTH),
                    ))
                })
            }
            "aws:rds:DbInstance" => self.db_instance(r),
            "aws:rds:DbCluster" => self.aurora_cluster(r),
            "aws:rds:ClusterInstance" => {
                let class = r.text("/instance_class").unwrap_or_default().to_string();
                self.hourly(|p| &p.aurora_postgres_hour, &class).map(|h| (class, Money::Known(h * HOURS_PER_MONTH)))
            }
            "aws:elasticache:ReplicationGroup" => self.cache(r),
            "aws:opensearch:Domain" => self.search(r),
            "aws:kms:Key" => self.rate("kms_key_month").map(|m| ("key".into(), Money::Known(m))),
            "aws:route53:HostedZone" => {
                self.rate("route53_zone_month").map(|m| ("hosted zone".into(), Money::Known(m)))
            }
            "aws:backup:Plan" => {
                let gb = self.assume("backup_gb");
                self.rate("backup_warm_gb_month").map(|m| (format!("{gb} GB warm storage"), Money::Known(gb * m)))
            }
            "aws:ec2:FlowLog" => {
                let gb = self.assume("flow_log_gb_per_month");
                self.rate("flow_logs_s3_gb").map(|m| (format!("{gb} GB delivered"), Money::Known(gb * m)))
            }
            "aws:s3:Bucket" => {
                let gb = self.assume("bucket_gb");
                self.rate("s3_standard_gb_month").map(|m| (format!("{gb} GB standard"), Money::Known(gb * m)))
            }
            _ if t.ends_with(":StatefulSet") => return self.volume_claims(r),
            _ if t.ends_with(":PersistentVolumeClaim") => {
                let Some(gb) = r.text("/manifest/spec/resources/requests/storage").and_then(gibibytes) else {
                    return Some(("volume".into(), Money::Unknown("its size is not a quantity fabric reads".into())));
                };
                self.rate("ebs_gp3_gb_month").map(|m| (format!("{gb} GiB gp3"), Money::Known(gb * m)))
            }
            _ => Err("fabric has no price model for this type".into()),
        };
        Some(match result {
            Ok((what, Money::Known(x))) => (what, Money::Known(round(x))),
            Ok((what, Money::Range(a, b))) => (what, Money::Range(round(a), round(b))),
            Ok(other) => other,
            Err(why) => (String::new(), Money::Unknown(why)),
        })
    }

    fn node_group(&mut self, r: &PolicyResource) -> Result<(String, Money), String> {
        let types: Vec<&str> =
            r.at("/instance_types").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        let first = types.first().ok_or("the pool names no instance type")?;
        let hour = self.hourly(|p| &p.ec2_hour, first)?;
        let (min, max) = (r.number("/min_size").unwrap_or(0.0), r.number("/max_size").unwrap_or(0.0));
        let disk = r
            .deps
            .iter()
            .filter_map(|d| self.view.get(d))
            .find(|d| d.type_name == "aws:ec2:LaunchTemplate")
            .and_then(|lt| lt.number("/disk_size_gib"))
            .or_else(|| r.number("/disk_size_gib").filter(|g| *g > 0.0))
            .unwrap_or(20.0);
        let node = hour * HOURS_PER_MONTH + disk * self.rate("ebs_gp3_gb_month")?;
        let what = format!("{min}–{max} × {first}, {disk} GB gp3 each");
        Ok((what, if min == max { Money::Known(node * min) } else { Money::Range(node * min, node * max) }))
    }

    fn instance(&mut self, r: &PolicyResource) -> Result<(String, Money), String> {
        let size = r.text("/instance_type").unwrap_or_default().to_string();
        let root = self.assume("instance_root_gb");
        let hour = self.hourly(|p| &p.ec2_hour, &size)?;
        Ok((
            format!("{size}, {root} GB root"),
            Money::Known(hour * HOURS_PER_MONTH + root * self.rate("ebs_gp3_gb_month")?),
        ))
    }

    fn endpoint(&mut self, r: &PolicyResource) -> Result<(String, Money), String> {
        let zones = r.deps.iter().filter(|d| d.type_name() == "aws:ec2:Subnet").count() as f64;
        if zones == 0.0 {
            return Ok(("gateway endpoint".into(), Money::Known(0.0)));
        }
        let gb = self.assume("endpoint_gb_per_month");
        let m = self.rate("vpc_endpoint_zone_hour")? * HOURS_PER_MONTH * zones + gb * self.rate("vpc_endpoint_gb")?;
        Ok((format!("interface endpoint in {zones} zones + {gb} GB"), Money::Known(m)))
    }

    fn db_instance(&mut self, r: &PolicyResource) -> Result<(String, Money), String> {
        let class = r.text("/instance_class").unwrap_or_default().to_string();
        let copies = if r.flag("/multi_az") == Some(true) { 2.0 } else { 1.0 };
        let gb = r.number("/allocated_storage").unwrap_or(0.0);
        let hour = self.hourly(|p| &p.rds_postgres_hour, &class)?;
        let m = copies * (hour * HOURS_PER_MONTH + gb * self.rate("rds_gp3_gb_month")?);
        let az = if copies > 1.0 { ", Multi-AZ (×2)" } else { "" };
        Ok((format!("{class}, {gb} GB gp3{az}"), Money::Known(m)))
    }

    fn aurora_cluster(&mut self, r: &PolicyResource) -> Result<(String, Money), String> {
        let (gb, io) = (self.assume("aurora_storage_gb"), self.assume("aurora_io_millions"));
        let m = gb * self.rate("aurora_storage_gb_month")? + io * self.rate("aurora_io_per_million")?;
        let mut what = format!("{gb} GB storage + {io} million I/O");
        if let Some(max) = r.number("/serverless_v2/max") {
            let min = r.number("/serverless_v2/min").unwrap_or(0.5);
            let acu = self.rate("aurora_serverless_acu_hour")? * HOURS_PER_MONTH;
            what.push_str(&format!(", serverless v2 {min}–{max} ACU"));
            return Ok((what, Money::Range(m + min * acu, m + max * acu)));
        }
        Ok((what, Money::Known(m)))
    }

    fn cache(&mut self, r: &PolicyResource) -> Result<(String, Money), String> {
        let node = r.text("/node_type").unwrap_or_default().to_string();
        let nodes = 1.0 + r.number("/replicas").unwrap_or(0.0);
        let mut hour = self.hourly(|p| &p.elasticache_node_hour, &node)?;
        let valkey = r.text("/engine") == Some("valkey");
        if valkey {
            hour *= self.rate("valkey_node_factor")?;
        }
        Ok((
            format!("{nodes} × {node}{}", if valkey { " (Valkey)" } else { "" }),
            Money::Known(nodes * hour * HOURS_PER_MONTH),
        ))
    }

    fn search(&mut self, r: &PolicyResource) -> Result<(String, Money), String> {
        let size = r.text("/instance_type").unwrap_or_default().to_string();
        let n = r.number("/instance_count").unwrap_or(1.0);
        let gb = r.number("/volume_gb").unwrap_or(0.0);
        let hour = self.hourly(|p| &p.opensearch_instance_hour, &size)?;
        let m = n * (hour * HOURS_PER_MONTH + gb * self.rate("opensearch_gp3_gb_month")?);
        Ok((format!("{n} × {size}, {gb} GB gp3 each"), Money::Known(m)))
    }

    /// A StatefulSet's volumes: each claim template's size, once per replica.
    fn volume_claims(&mut self, r: &PolicyResource) -> Priced {
        let templates = r.at("/manifest/spec/volumeClaimTemplates").and_then(Value::as_array)?;
        let replicas = r.number("/manifest/spec/replicas").unwrap_or(1.0);
        let mut gb = 0.0;
        for t in templates {
            match t.pointer("/spec/resources/requests/storage").and_then(Value::as_str).and_then(gibibytes) {
                Some(g) => gb += g,
                None => {
                    return Some((
                        "volumes".into(),
                        Money::Unknown("a claim's size is not a quantity fabric reads".into()),
                    ));
                }
            }
        }
        Some(match self.rate("ebs_gp3_gb_month") {
            Ok(m) => (format!("{replicas} × {gb} GiB gp3 (volume claims)"), Money::Known(round(replicas * gb * m))),
            Err(why) => (String::new(), Money::Unknown(why)),
        })
    }
}

/// A Kubernetes storage quantity in GiB (`100Gi`, `1Ti`, `500Mi`).
fn gibibytes(q: &str) -> Option<f64> {
    let (n, unit) = q.find(|c: char| c.is_ascii_alphabetic()).map(|i| q.split_at(i)).unwrap_or((q, ""));
    let n: f64 = n.parse().ok()?;
    let factor = match unit {
        "Gi" => 1.0,
        "Ti" => 1024.0,
        "Mi" => 1.0 / 1024.0,
        "G" => 1e9 / 1073741824.0,
        "T" => 1e12 / 1073741824.0,
        "" => 1.0 / 1073741824.0,
        _ => return None,
    };
    Some(n * factor)
}

#[cfg(test)]
mod tests;
