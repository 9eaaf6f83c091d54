//! `verify`: checks of a deployed fabric, read from its state and asked of the real thing.
//!
//! | check | what passes | with `--local` |
//! |---|---|---|
//! | `record` | every DNS record of the state is in its zone, pointing where the program says (Route 53 API) | checked |
//! | `dns` | the zone's own name servers answer each record of a public zone with its target | not checkable |
//! | `listener` | an HTTPS listener has a certificate; an HTTP listener redirects to HTTPS (ELB API) | checked |
//! | `https` | every exported `https://` URL of a name the fabric's records give answers (status below 500) with a certificate valid for its host | not checkable |
//! | `redirect` | `http://` of that host answers with a redirect to `https://` the same host | not checkable |
//! | `canary` | a canary service rolled from v1 to v2 under continuous requests fails none of them | when a cluster is reachable |
//!
//! A check the emulator cannot answer is reported as not checkable, never as passed. Any failed
//! check makes the command exit 1.

pub mod canary;
pub mod probe;

use crate::aws::Aws;
use crate::state::State;
use probe::Probes;
use serde::Serialize;
use serde_json::Value;

/// How one check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Pass,
    Fail,
    NotCheckable,
}

/// One check: what was checked, of what, how it came out, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub subject: String,
    pub outcome: Outcome,
    pub detail: String,
}

impl Check {
    fn new(check: &'static str, subject: impl Into<String>, outcome: Outcome, detail: impl Into<String>) -> Check {
        Check { check, subject: subject.into(), outcome, detail: detail.into() }
    }
}

/// Every check of one run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub passed: bool,
    pub checks: Vec<Check>,
}

impl Report {
    fn new(checks: Vec<Check>) -> Report {
        Report { passed: checks.iter().all(|c| c.outcome != Outcome::Fail), checks }
    }

    fn count(&self, outcome: Outcome) -> usize {
        self.checks.iter().filter(|c| c.outcome == outcome).count()
    }

    /// One line per check, then the counts.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let label = match c.outcome {
                Outcome::Pass => "pass",
                Outcome::Fail => "FAIL",
                Outcome::NotCheckable => "n/a ",
            };
            out.push_str(&format!("{label}  {:<8}  {}: {}\n", c.check, c.subject, c.detail));
        }
        out.push_str(&format!(
            "verify: {} passed, {} failed, {} not checkable\n",
            self.count(Outcome::Pass),
            self.count(Outcome::Fail),
            self.count(Outcome::NotCheckable)
        ));
        out
    }
}

/// Where the checks run: the AWS account (or the emulator, `local`), and how the network is asked.
pub struct Target<'a> {
    pub aws: &'a Aws,
    pub local: bool,
    pub probes: Probes,
}

const LOCAL: &str = "not checkable locally";

/// Runs every check of `state` (the canary is run by the caller, which holds the cluster access).
pub async fn verify(state: &State, target: &Target<'_>) -> Report {
    let mut checks = Vec::new();
    for (urn, record) in &state.resources {
        match record.type_name.as_str() {
            crate::aws::route53::RECORD => checks.extend(records::check(target, &record.inputs).await),
            crate::aws::elbv2::LISTENER => {
                checks.push(listeners::check(target, urn.name(), &record.inputs, &record.outputs).await)
            }
            _ => {}
        }
    }
    // The fabric's own URLs: exported, and served under a name one of its records gives (an
    // EKS endpoint or OIDC issuer is AWS's, with AWS's certificate and no redirect).
    let names: Vec<String> = state
        .resources
        .values()
        .filter(|r| r.type_name == crate::aws::route53::RECORD)
        .map(|r| fqdn(text(&r.inputs, "name")))
        .collect();
    for (name, value) in &state.outputs {
        let Some(url) = value.as_str().filter(|v| v.starts_with("https://")) else { continue };
        if names.contains(&fqdn(&host_of(url))) {
            checks.extend(urls::check(target, name, url).await);
        }
    }
    Report::new(checks)
}

/// Adds the canary's outcome (or why it could not run) to `report`.
pub fn with_canary(mut report: Report, canary: Check) -> Report {
    report.checks.push(canary);
    Report::new(report.checks)
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

/// `https://api.acme.com:8443/x` → `api.acme.com`.
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', ':', '?']).next().unwrap_or_default().to_string()
}

fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.').to_ascii_lowercase())
}

mod records {
    use super::*;

    /// What a record should hold, as text: `alias <name>` or its sorted values.
    fn wanted(inputs: &Value) -> (Option<String>, Vec<String>) {
        let alias = inputs["alias"].as_object().map(|a| fqdn(a["dns_name"].as_str().unwrap_or_default()));
        let record_type = text(inputs, "type");
        let mut values: Vec<String> = inputs["values"]
            .as_array()
            .map(|v| v.iter().filter_map(Value::as_str).map(|s| normal(record_type, s)).collect())
            .unwrap_or_default();
        values.sort();
        (alias, values)
    }

    fn normal(record_type: &str, value: &str) -> String {
        match record_type {
            "CNAME" | "NS" => fqdn(value),
            _ => value.to_string(),
        }
    }

    pub(super) async fn check(target: &Target<'_>, inputs: &Value) -> Vec<Check> {
        let (zone, name, record_type) = (text(inputs, "zone_id"), fqdn(text(inputs, "name")), text(inputs, "type"));
        let subject = format!("{name} {record_type}");
        let (alias, values) = wanted(inputs);
        let shown = match &alias {
            Some(a) => format!("alias {a}"),
            None => values.join(", "),
        };
        let want =
            Wanted { zone, name: &name, record_type, alias: &alias, values: &values, subject: &subject, shown: &shown };
        vec![through_api(target, &want).await, through_name_servers(target, &want).await]
    }

    /// One record as the state says it should be, and how it is shown.
    #[derive(Clone, Copy)]
    struct Wanted<'a> {
        zone: &'a str,
        name: &'a str,
        record_type: &'a str,
        alias: &'a Option<String>,
        values: &'a [String],
        subject: &'a str,
        shown: &'a str,
    }

    async fn through_api(target: &Target<'_>, want: &Wanted<'_>) -> Check {
        let Wanted { zone, name, record_type, alias, values, subject, shown } = *want;
        let answer = target
            .aws
            .route53
            .list_resource_record_sets()
            .hosted_zone_id(zone)
            .start_record_name(name)
            .start_record_type(aws_sdk_route53::types::RrType::from(record_type))
            .max_items(1)
            .send()
            .await;
        let sets = match answer {
            Ok(a) => a.resource_record_sets().to_vec(),
            Err(e) => {
                return Check::new(
                    "record",
                    subject,
                    Outcome::Fail,
                    crate::aws::call_failed("ListResourceRecordSets", e).0,
                );
            }
        };
        let Some(set) = sets
            .into_iter()
            .find(|s| fqdn(&s.name().replace("\\052", "*")) == name && s.r#type().as_str() == record_type)
        else {
            return Check::new("record", subject, Outcome::Fail, format!("missing from zone {zone} (want {shown})"));
        };
        let found_alias = set.alias_target().map(|a| fqdn(a.dns_name()));
        let mut found: Vec<String> = set.resource_records().iter().map(|r| normal(record_type, r.value())).collect();
        found.sort();
        if &found_alias == alias && (alias.is_some() || found == values) {
            return Check::new("record", subject, Outcome::Pass, format!("→ {shown}"));
        }
        let is = match found_alias {
            Some(a) => format!("alias {a}"),
            None => found.join(", "),
        };
        Check::new("record", subject, Outcome::Fail, format!("points elsewhere: {is} (want {shown})"))
    }

    async fn through_name_servers(target: &Target<'_>, want: &Wanted<'_>) -> Check {
        let Wanted { zone, name, record_type, alias, values, subject, shown } = *want;
        if target.local {
            return Check::new("dns", subject, Outcome::NotCheckable, format!("{LOCAL}: the emulator serves no DNS"));
        }
        let zone_info = match target.aws.route53.get_hosted_zone().id(zone).send().await {
            Ok(z) => z,
            Err(e) => return Check::new("dns", subject, Outcome::Fail, crate::aws::call_failed("GetHostedZone", e).0),
        };
        if zone_info.hosted_zone().and_then(|z| z.config()).is_some_and(|c| c.private_zone()) {
            return Check::new(
                "dns",
                subject,
                Outcome::NotCheckable,
                "private zone: it answers only inside its VPC (the record is checked through the API above)",
            );
        }
        let servers: Vec<String> = zone_info.delegation_set().map(|d| d.name_servers().to_vec()).unwrap_or_default();
        let mut last_error = format!("zone {zone} lists no name servers");
        for server in &servers {
            match target.probes.dns(server, name, record_type).await {
                Ok(answers) => return judge(target, server, &answers, alias, values, subject, shown).await,
                Err(e) => last_error = e,
            }
        }
        Check::new("dns", subject, Outcome::Fail, last_error)
    }

    async fn judge(
        target: &Target<'_>,
        server: &str,
        answers: &[String],
        alias: &Option<String>,
        values: &[String],
        subject: &str,
        shown: &str,
    ) -> Check {
        let got = if answers.is_empty() { "nothing".to_string() } else { answers.join(", ") };
        let ok = match alias {
            // An alias answers with its target's addresses: the same ones the target resolves to.
            Some(a) => {
                let theirs = target.probes.dns_system(a).await;
                !answers.is_empty() && (theirs.is_empty() || answers.iter().any(|x| theirs.contains(x)))
            }
            None => answers == values,
        };
        let detail = format!("{server} answers {got} (want {shown})");
        Check::new("dns", subject, if ok { Outcome::Pass } else { Outcome::Fail }, detail)
    }
}

mod listeners {
    use super::*;

    pub(super) async fn check(target: &Target<'_>, name: &str, inputs: &Value, outputs: &Value) -> Check {
        let https = inputs["https"].as_bool().unwrap_or(false);
        let port = inputs["port"].as_i64().unwrap_or_default();
        let kind = if https { "listener" } else { "redirect" };
        let subject = format!("{name} :{port}");
        let arn = text(outputs, "arn");
        let answer = target.aws.elbv2.describe_listeners().listener_arns(arn).send().await;
        let listener = match answer {
            Ok(a) => a.listeners().first().cloned(),
            Err(e) if crate::aws::error_code(&e) == Some("ListenerNotFound") => None,
            Err(e) => {
                return Check::new(kind, subject, Outcome::Fail, crate::aws::call_failed("DescribeListeners", e).0);
            }
        };
        let Some(l) = listener else {
            return Check::new(kind, subject, Outcome::Fail, format!("listener {arn} is gone"));
        };
        if https {
            let cert = l.certificates().first().and_then(|c| c.certificate_arn()).unwrap_or_default();
            let ok = l.protocol().map(|p| p.as_str()) == Some("HTTPS") && !cert.is_empty();
            let detail = match ok {
                true => format!("HTTPS with certificate {cert}, policy {}", l.ssl_policy().unwrap_or("default")),
                false => "not an HTTPS listener with a certificate".to_string(),
            };
            return Check::new(kind, subject, if ok { Outcome::Pass } else { Outcome::Fail }, detail);
        }
        let action = l.default_actions().first();
        let redirect = action.and_then(|a| a.redirect_config());
        match redirect {
            Some(r) if r.protocol() == Some("HTTPS") => Check::new(
                kind,
                subject,
                Outcome::Pass,
                format!(
                    "HTTP redirects to HTTPS:{} ({})",
                    r.port().unwrap_or("the same port"),
                    r.status_code().map(|s| s.as_str()).unwrap_or("301")
                ),
            ),
            _ => Check::new(
                kind,
                subject,
                Outcome::Fail,
                format!(
                    "HTTP does not redirect to HTTPS: its default action is `{}`",
                    action.and_then(|a| a.r#type()).map(|t| t.as_str()).unwrap_or("none")
                ),
            ),
        }
    }
}

mod urls {
    use super::*;

    pub(super) async fn check(target: &Target<'_>, output: &str, url: &str) -> Vec<Check> {
        let subject = format!("{output} {url}");
        if target.local {
            let why = format!("{LOCAL}: the emulator's load balancers serve no traffic");
            return vec![
                Check::new("https", subject.clone(), Outcome::NotCheckable, why.clone()),
                Check::new("redirect", subject, Outcome::NotCheckable, why),
            ];
        }
        let host = host_of(url);
        let https = match target.probes.get(url).await {
            Ok(a) if a.status < 500 => Check::new(
                "https",
                subject.clone(),
                Outcome::Pass,
                format!("HTTP {}, certificate valid for {host}", a.status),
            ),
            Ok(a) => Check::new("https", subject.clone(), Outcome::Fail, format!("answered HTTP {}", a.status)),
            Err(e) => Check::new("https", subject.clone(), Outcome::Fail, e),
        };
        let plain = format!("http://{}", url.trim_start_matches("https://"));
        let redirect = match target.probes.get(&plain).await {
            Ok(a)
                if matches!(a.status, 301 | 302 | 307 | 308)
                    && a.location.as_deref().is_some_and(|l| l.starts_with(&format!("https://{host}"))) =>
            {
                Check::new(
                    "redirect",
                    subject,
                    Outcome::Pass,
                    format!("{plain} → {} {}", a.status, a.location.unwrap_or_default()),
                )
            }
            Ok(a) => Check::new(
                "redirect",
                subject,
                Outcome::Fail,
                format!(
                    "{plain} answered HTTP {}{} instead of a redirect to https://{host}",
                    a.status,
                    a.location.map(|l| format!(" to {l}")).unwrap_or_default()
                ),
            ),
            Err(e) => Check::new("redirect", subject, Outcome::Fail, e),
        };
        vec![https, redirect]
    }
}
