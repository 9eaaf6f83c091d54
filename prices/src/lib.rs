//! Rebuilds fabric's price table (`sdk/src/cost/prices.json`) from the AWS Price List API:
//! `cargo xtask prices refresh`.
//!
//! For every instance size the table prices (EC2, RDS PostgreSQL, Aurora PostgreSQL, ElastiCache,
//! OpenSearch) in every region group it has, one `GetProducts` call with the filters that name
//! that SKU (on demand, Linux, shared tenancy, Single-AZ …) gives the hourly on-demand price.
//! The flat rates (NAT gateway hours, gp3 GB-months …) are kept as they are, and the source says
//! so. A size the API does not answer for is reported by name and keeps its old price.

use aws_sdk_pricing::types::{Filter, FilterType};
use serde_json::Value;

/// The instance tables of `prices.json`: the service and the filters that name one SKU.
pub struct Table {
    pub key: &'static str,
    pub service: &'static str,
    /// Filters besides `instanceType` and `regionCode`.
    pub filters: &'static [(&'static str, &'static str)],
}

pub const TABLES: &[Table] = &[
    Table {
        key: "ec2_hour",
        service: "AmazonEC2",
        filters: &[
            ("operatingSystem", "Linux"),
            ("tenancy", "Shared"),
            ("preInstalledSw", "NA"),
            ("capacitystatus", "Used"),
        ],
    },
    Table {
        key: "rds_postgres_hour",
        service: "AmazonRDS",
        filters: &[("databaseEngine", "PostgreSQL"), ("deploymentOption", "Single-AZ")],
    },
    Table { key: "aurora_postgres_hour", service: "AmazonRDS", filters: &[("databaseEngine", "Aurora PostgreSQL")] },
    Table { key: "elasticache_node_hour", service: "AmazonElastiCache", filters: &[("cacheEngine", "Redis")] },
    Table { key: "opensearch_instance_hour", service: "AmazonES", filters: &[] },
];

/// What a refresh did.
#[derive(Debug, Default, PartialEq)]
pub struct Refreshed {
    /// Prices that changed: `us-east ec2_hour t3.large: 0.0832 → 0.0850`.
    pub changed: Vec<String>,
    /// SKUs the API had no on-demand hourly price for (their old price is kept).
    pub missing: Vec<String>,
    pub asked: usize,
}

/// The lowest on-demand hourly USD price in a `GetProducts` answer's price list (each entry a
/// JSON document: `terms.OnDemand.*.priceDimensions.*`, unit `Hrs`). Zero prices (reserved
/// capacity placeholders) are ignored.
pub fn hourly_price(price_list: &[String]) -> Option<f64> {
    let mut best: Option<f64> = None;
    for doc in price_list {
        let Ok(doc) = serde_json::from_str::<Value>(doc) else { continue };
        let terms = doc.pointer("/terms/OnDemand").and_then(Value::as_object);
        for term in terms.into_iter().flat_map(|t| t.values()) {
            let dims = term.get("priceDimensions").and_then(Value::as_object);
            for dim in dims.into_iter().flat_map(|d| d.values()) {
                if dim.get("unit").and_then(Value::as_str) != Some("Hrs") {
                    continue;
                }
                let usd = dim.pointer("/pricePerUnit/USD").and_then(Value::as_str).and_then(|p| p.parse::<f64>().ok());
                if let Some(p) = usd.filter(|p| *p > 0.0) {
                    best = Some(best.map_or(p, |b: f64| b.min(p)));
                }
            }
        }
    }
    best
}

fn filter(field: &str, value: &str) -> Filter {
    Filter::builder()
        .r#type(FilterType::TermMatch)
        .field(field)
        .value(value)
        .build()
        .expect("field, value and type are set")
}

/// The on-demand hourly price of `size` in `region` for `table`, from the API.
pub async fn ask(
    client: &aws_sdk_pricing::Client,
    table: &Table,
    region: &str,
    size: &str,
) -> Result<Option<f64>, String> {
    let mut filters = vec![filter("instanceType", size), filter("regionCode", region)];
    filters.extend(table.filters.iter().map(|(f, v)| filter(f, v)));
    let mut list = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = client
            .get_products()
            .service_code(table.service)
            .set_filters(Some(filters.clone()))
            .format_version("aws_v1")
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| {
                format!(
                    "GetProducts {} {size} {region}: {}",
                    table.service,
                    aws_sdk_pricing::error::DisplayErrorContext(&e)
                )
            })?;
        list.extend(out.price_list().iter().cloned());
        token = out.next_token().map(String::from);
        if token.is_none() {
            break;
        }
    }
    Ok(hourly_price(&list))
}

/// Refreshes every instance price of `table` (the parsed `prices.json`) and dates it `today`.
pub async fn refresh(client: &aws_sdk_pricing::Client, table: &mut Value, today: &str) -> Result<Refreshed, String> {
    let mut done = Refreshed::default();
    let regions: Vec<(String, String)> = table["regions"]
        .as_object()
        .ok_or("prices.json has no `regions`")?
        .iter()
        .filter_map(|(r, g)| Some((r.clone(), g.as_str()?.to_string())))
        .collect();
    let groups: Vec<String> =
        table["tables"].as_object().ok_or("prices.json has no `tables`")?.keys().cloned().collect();
    for group in groups {
        // A group's prices are read in its first region (the others price these SKUs alike).
        let Some((region, _)) = regions.iter().find(|(_, g)| *g == group) else { continue };
        for t in TABLES {
            let sizes: Vec<String> =
                table["tables"][&group][t.key].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
            for size in sizes {
                done.asked += 1;
                match ask(client, t, region, &size).await? {
                    Some(price) => {
                        let old = table["tables"][&group][t.key][&size].as_f64();
                        if old != Some(price) {
                            done.changed.push(format!("{group} {} {size}: {} → {price}", t.key, old.unwrap_or(0.0)));
                        }
                        table["tables"][&group][t.key][&size] = price.into();
                    }
                    None => done.missing.push(format!("{group} {} {size} ({region})", t.key)),
                }
            }
        }
    }
    let rates_date = table["rates_date"].as_str().or(table["date"].as_str()).unwrap_or("?").to_string();
    table["rates_date"] = rates_date.clone().into();
    table["date"] = today.into();
    table["source"] = format!(
        "AWS Price List API (GetProducts, on demand), instance-hour prices refreshed {today} by `cargo xtask prices refresh`; flat rates (gp3, NAT, EKS, ALB, endpoints, KMS, Route 53, Backup, S3, flow logs) kept from the table of {rates_date}"
    )
    .into();
    Ok(done)
}

#[cfg(test)]
mod tests;
