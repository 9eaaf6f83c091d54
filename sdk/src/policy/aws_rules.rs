//! The built-in rules over AWS resources: EKS, RDS and Aurora, the network, load balancers, S3,
//! IAM and the data services.

use super::Builtin;
use crate::model::policy::{PolicyResource, PolicyView, Severity::*, Violations};
use serde_json::Value;

pub(super) const RULES: &[Builtin] = &[
    Builtin {
        id: "FAB-EKS-1",
        severity: Advisory,
        title: "an EKS API endpoint is not open to the whole internet",
        equivalents: &["cdk-nag AwsSolutions-EKS1", "checkov CKV_AWS_39", "checkov CKV_AWS_38"],
        check: eks_endpoint_open,
    },
    Builtin {
        id: "FAB-EKS-2",
        severity: Mandatory,
        title: "EKS Secrets are envelope-encrypted with a KMS key",
        equivalents: &["checkov CKV_AWS_58"],
        check: eks_secrets_encrypted,
    },
    Builtin {
        id: "FAB-EKS-3",
        severity: Advisory,
        title: "EKS control-plane logs (api, audit, authenticator) are on",
        equivalents: &["cdk-nag AwsSolutions-EKS2", "checkov CKV_AWS_37"],
        check: eks_logging,
    },
    Builtin {
        id: "FAB-EKS-4",
        severity: Mandatory,
        title: "EKS nodes require IMDSv2, one hop (pods cannot borrow the node's role)",
        equivalents: &["checkov CKV_AWS_79", "checkov CKV_AWS_341"],
        check: eks_nodes_imdsv2,
    },
    Builtin {
        id: "FAB-RDS-1",
        severity: Mandatory,
        title: "RDS and Aurora storage is encrypted",
        equivalents: &["cdk-nag AwsSolutions-RDS2", "checkov CKV_AWS_16", "checkov CKV_AWS_96"],
        check: rds_encrypted,
    },
    Builtin {
        id: "FAB-RDS-2",
        severity: Mandatory,
        title: "RDS and Aurora deletion protection is on in prod",
        equivalents: &["cdk-nag AwsSolutions-RDS10", "checkov CKV_AWS_293", "checkov CKV_AWS_139"],
        check: rds_deletion_protection,
    },
    Builtin {
        id: "FAB-RDS-3",
        severity: Mandatory,
        title: "RDS is Multi-AZ, and Aurora has a reader in another zone, in prod",
        equivalents: &["checkov CKV_AWS_157"],
        check: rds_multi_az,
    },
    Builtin {
        id: "FAB-RDS-4",
        severity: Advisory,
        title: "RDS and Aurora keep backups at least 7 days",
        equivalents: &["cdk-nag AwsSolutions-RDS11 (backups)", "checkov CKV_AWS_133"],
        check: rds_backup_retention,
    },
    Builtin {
        id: "FAB-RDS-5",
        severity: Mandatory,
        title: "RDS is not publicly accessible",
        equivalents: &["cdk-nag HIPAA.Security-RDSInstancePublicAccess", "checkov CKV_AWS_17"],
        check: rds_public,
    },
    Builtin {
        id: "FAB-NET-1",
        severity: Mandatory,
        title: "no ingress from 0.0.0.0/0 except 80/443 to a load balancer",
        equivalents: &["cdk-nag AwsSolutions-EC23", "checkov CKV_AWS_24", "checkov CKV_AWS_25", "checkov CKV_AWS_260"],
        check: net_open_ingress,
    },
    Builtin {
        id: "FAB-NET-2",
        severity: Advisory,
        title: "every VPC has flow logs",
        equivalents: &["cdk-nag AwsSolutions-VPC7", "checkov CKV2_AWS_11"],
        check: net_flow_logs,
    },
    Builtin {
        id: "FAB-NET-3",
        severity: Advisory,
        title: "every VPC's default security group admits and sends nothing",
        equivalents: &["checkov CKV2_AWS_12"],
        check: net_default_group,
    },
    Builtin {
        id: "FAB-ALB-1",
        severity: Mandatory,
        title: "HTTPS listeners use a TLS 1.2+ policy",
        equivalents: &["cdk-nag AwsSolutions-ELB (TLS)", "checkov CKV_AWS_103"],
        check: alb_tls_policy,
    },
    Builtin {
        id: "FAB-ALB-2",
        severity: Advisory,
        title: "load balancers write access logs",
        equivalents: &["cdk-nag AwsSolutions-ELB2", "checkov CKV_AWS_91"],
        check: alb_access_logs,
    },
    Builtin {
        id: "FAB-ALB-3",
        severity: Advisory,
        title: "load balancers drop invalid HTTP header fields",
        equivalents: &["checkov CKV_AWS_131"],
        check: alb_invalid_headers,
    },
    Builtin {
        id: "FAB-ALB-4",
        severity: Advisory,
        title: "load balancer deletion protection is on in prod",
        equivalents: &["checkov CKV_AWS_150"],
        check: alb_deletion_protection,
    },
    Builtin {
        id: "FAB-ALB-5",
        severity: Mandatory,
        title: "plain-HTTP listeners only redirect to HTTPS",
        equivalents: &["checkov CKV_AWS_2", "checkov CKV2_AWS_20"],
        check: alb_http_redirects,
    },
    Builtin {
        id: "FAB-S3-1",
        severity: Mandatory,
        title: "buckets block public access and enforce bucket-owner ownership",
        equivalents: &["cdk-nag AwsSolutions-S2", "checkov CKV_AWS_53", "checkov CKV_AWS_54", "checkov CKV_AWS_56"],
        check: s3_public_access,
    },
    Builtin {
        id: "FAB-S3-2",
        severity: Advisory,
        title: "buckets keep object versions",
        equivalents: &["checkov CKV_AWS_21"],
        check: s3_versioning,
    },
    Builtin {
        id: "FAB-S3-3",
        severity: Mandatory,
        title: "buckets refuse requests without TLS",
        equivalents: &["cdk-nag AwsSolutions-S10", "checkov CKV_AWS_379"],
        check: s3_tls_only,
    },
    Builtin {
        id: "FAB-S3-4",
        severity: Advisory,
        title: "buckets are encrypted with a KMS key of the stack (log buckets excepted)",
        equivalents: &["checkov CKV_AWS_145"],
        check: s3_kms,
    },
    Builtin {
        id: "FAB-IAM-1",
        severity: Mandatory,
        title: "no IAM policy allows `*` or `<service>:*` actions",
        equivalents: &["cdk-nag AwsSolutions-IAM5", "checkov CKV_AWS_62", "checkov CKV_AWS_63", "checkov CKV_AWS_289"],
        check: iam_star_actions,
    },
    Builtin {
        id: "FAB-IAM-2",
        severity: Mandatory,
        title: "`Resource: *` only with a condition, or for read-only Describe/List/Get calls",
        equivalents: &[
            "cdk-nag AwsSolutions-IAM5",
            "checkov CKV_AWS_111",
            "checkov CKV_AWS_290",
            "checkov CKV_AWS_355",
        ],
        check: iam_star_resources,
    },
    Builtin {
        id: "FAB-IAM-3",
        severity: Mandatory,
        title: "no role gets an administrator managed policy",
        equivalents: &["cdk-nag AwsSolutions-IAM4", "checkov CKV_AWS_274"],
        check: iam_admin_policy,
    },
    Builtin {
        id: "FAB-DATA-1",
        severity: Mandatory,
        title: "Redis/Valkey and OpenSearch encrypt in transit",
        equivalents: &[
            "cdk-nag AwsSolutions-AEC5",
            "cdk-nag AwsSolutions-OS2",
            "checkov CKV_AWS_30",
            "checkov CKV_AWS_6",
        ],
        check: data_in_transit,
    },
    Builtin {
        id: "FAB-DATA-2",
        severity: Mandatory,
        title: "Redis/Valkey and OpenSearch encrypt at rest",
        equivalents: &["cdk-nag AwsSolutions-OS1", "checkov CKV_AWS_29", "checkov CKV_AWS_5"],
        check: data_at_rest,
    },
    Builtin {
        id: "FAB-DATA-3",
        severity: Mandatory,
        title: "OpenSearch endpoints require HTTPS with TLS 1.2+",
        equivalents: &["checkov CKV_AWS_83", "checkov CKV_AWS_228"],
        check: search_https,
    },
    Builtin {
        id: "FAB-DATA-4",
        severity: Advisory,
        title: "Redis/Valkey fails over to a replica in another zone in prod",
        equivalents: &["checkov CKV_AWS_191 (replication group)"],
        check: cache_failover,
    },
];

const WHOLE_INTERNET: &[&str] = &["0.0.0.0/0", "::/0"];

fn eks_endpoint_open(view: &PolicyView, out: &mut Violations) {
    for c in view.of_type("aws:eks:Cluster") {
        if c.flag("/endpoint_public") == Some(false) {
            continue;
        }
        let cidrs: Vec<&str> = c
            .at("/public_access_cidrs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if cidrs.is_empty() || cidrs.iter().any(|c| WHOLE_INTERNET.contains(c)) {
            out.add(
                &c.urn,
                "public_access_cidrs",
                "the cluster's API endpoint is reachable from the whole internet",
                "name the office, VPN and CI egress blocks (`.public_access_cidrs([...])`), or make the endpoint private",
            );
        }
    }
}

fn eks_secrets_encrypted(view: &PolicyView, out: &mut Violations) {
    for c in view.of_type("aws:eks:Cluster").filter(|c| !c.is_set("/secrets_key_arn")) {
        out.add(
            &c.urn,
            "secrets_key_arn",
            "Kubernetes Secrets are stored without envelope encryption",
            "give the cluster a KMS key for Secrets (`EksCluster` does unless told not to)",
        );
    }
}

fn eks_logging(view: &PolicyView, out: &mut Violations) {
    for c in view.of_type("aws:eks:Cluster") {
        let on: Vec<&str> =
            c.at("/logging").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        let missing: Vec<&str> = ["api", "audit", "authenticator"].into_iter().filter(|l| !on.contains(l)).collect();
        if !missing.is_empty() {
            out.add(
                &c.urn,
                "logging",
                format!("control-plane logs `{}` are off", missing.join("`, `")),
                "turn on api, audit and authenticator logs (`.logging([...])`)",
            );
        }
    }
}

fn eks_nodes_imdsv2(view: &PolicyView, out: &mut Violations) {
    for g in view.of_type("aws:eks:NodeGroup") {
        let Some(template) = g.refers_to("/launch_template/id").and_then(|u| view.get(&u)) else {
            out.add(
                &g.urn,
                "launch_template",
                "the nodes run without a launch template, so IMDSv1 stays on and pods can reach the node's role",
                "declare node pools through `EksCluster`, which gives each a launch template requiring IMDSv2",
            );
            continue;
        };
        let tokens = template.text("/http_tokens");
        let hops = template.number("/hop_limit").unwrap_or(2.0);
        if tokens != Some("required") || hops > 1.0 {
            out.add(
                &template.urn,
                "http_tokens",
                format!(
                    "the nodes' metadata service allows {} with a hop limit of {hops}",
                    if tokens == Some("required") { "IMDSv2 only" } else { "IMDSv1" }
                ),
                "require IMDSv2 tokens with a hop limit of 1",
            );
        }
    }
}

/// RDS instances and Aurora clusters.
fn databases(view: &PolicyView) -> impl Iterator<Item = &PolicyResource> {
    view.of_type("aws:rds:DbInstance").chain(view.of_type("aws:rds:DbCluster"))
}

fn rds_encrypted(view: &PolicyView, out: &mut Violations) {
    for d in databases(view).filter(|d| d.flag("/storage_encrypted") != Some(true)) {
        out.add(
            &d.urn,
            "storage_encrypted",
            "the database's storage is not encrypted",
            "set `storage_encrypted` (encryption cannot be added later without a copy)",
        );
    }
}

fn rds_deletion_protection(view: &PolicyView, out: &mut Violations) {
    if !view.production {
        return;
    }
    for d in databases(view).filter(|d| d.flag("/deletion_protection") != Some(true)) {
        out.add(
            &d.urn,
            "deletion_protection",
            "a production database can be deleted by one call",
            "set `deletion_protection(true)`",
        );
    }
}

fn rds_multi_az(view: &PolicyView, out: &mut Violations) {
    if !view.production {
        return;
    }
    for d in view.of_type("aws:rds:DbInstance").filter(|d| d.flag("/multi_az") != Some(true)) {
        out.add(
            &d.urn,
            "multi_az",
            "a production database runs in one zone: a zone's outage stops it",
            "set `multi_az(true)`",
        );
    }
    for c in view.of_type("aws:rds:DbCluster") {
        let instances = view.dependents(&c.urn).filter(|r| r.type_name == "aws:rds:ClusterInstance").count();
        if instances < 2 {
            out.add(
                &c.urn,
                "instances",
                format!("a production Aurora cluster has {instances} instance: no reader to fail over to"),
                "give it a reader (`.readers(1)` or more)",
            );
        }
    }
}

fn rds_backup_retention(view: &PolicyView, out: &mut Violations) {
    for d in databases(view) {
        let days = d.number("/backup_retention_days").unwrap_or(0.0);
        if days < 7.0 {
            out.add(
                &d.urn,
                "backup_retention_days",
                format!("automated backups are kept {days} days"),
                "keep them at least 7 days (`backup_retention_days(7)`)",
            );
        }
    }
}

fn rds_public(view: &PolicyView, out: &mut Violations) {
    for d in view.of_type("aws:rds:DbInstance").filter(|d| d.flag("/publicly_accessible") == Some(true)) {
        out.add(
            &d.urn,
            "publicly_accessible",
            "the database has a public address",
            "keep it private and admit clients with `allow_from`, or accept the risk with `.public_waiver(\"why\")`",
        );
    }
}

/// Whether security group `group` fronts a load balancer (one depends on it).
fn fronts_load_balancer(view: &PolicyView, group: &crate::model::Urn) -> bool {
    view.dependents(group).any(|r| r.type_name == "aws:elbv2:LoadBalancer")
}

fn net_open_ingress(view: &PolicyView, out: &mut Violations) {
    for rule in view.of_type("aws:ec2:SecurityGroupIngressRule") {
        let open = |f: &&str| rule.text(&format!("/{f}")).is_some_and(|c| WHOLE_INTERNET.contains(&c));
        let Some(field) = ["cidr_ipv4", "cidr_ipv6"].into_iter().find(|f| open(f)) else {
            continue;
        };
        let (from, to) = (rule.number("/from_port").unwrap_or(-1.0), rule.number("/to_port").unwrap_or(-1.0));
        let web = from == to && (from == 80.0 || from == 443.0);
        let lb = rule.refers_to("/security_group_id").is_some_and(|g| fronts_load_balancer(view, &g));
        if !(web && lb) {
            let ports = if from == to { format!("port {from}") } else { format!("ports {from}-{to}") };
            out.add(
                &rule.urn,
                field,
                format!(
                    "{ports} is open to the whole internet{}",
                    if web { " on a group that fronts no load balancer" } else { "" }
                ),
                "admit named CIDR blocks or security groups; only a load balancer takes 80/443 from anywhere",
            );
        }
    }
}

fn net_flow_logs(view: &PolicyView, out: &mut Violations) {
    for vpc in view.of_type("aws:ec2:Vpc") {
        if !view.dependents(&vpc.urn).any(|r| r.type_name == "aws:ec2:FlowLog") {
            out.add(
                &vpc.urn,
                "flow_logs",
                "the VPC records no flow logs",
                "give the `Vpc` `.flow_logs(&bucket)`, a bucket declared with `.log_delivery(true)`",
            );
        }
    }
}

fn net_default_group(view: &PolicyView, out: &mut Violations) {
    for vpc in view.of_type("aws:ec2:Vpc").filter(|v| v.flag("/close_default_security_group") != Some(true)) {
        out.add(
            &vpc.urn,
            "close_default_security_group",
            "the VPC's default security group keeps AWS's rules (all traffic between its members, all egress)",
            "leave `close_default_security_group` on (the `Vpc` default)",
        );
    }
}

fn alb_tls_policy(view: &PolicyView, out: &mut Violations) {
    for l in view.of_type("aws:elbv2:Listener").filter(|l| l.flag("/https") == Some(true)) {
        let policy = l.text("/ssl_policy").unwrap_or("ELBSecurityPolicy-2016-08");
        let modern = ["TLS13-1-2", "TLS13-1-3", "TLS-1-2", "FS-1-2"].iter().any(|p| policy.contains(p));
        if !modern {
            out.add(
                &l.urn,
                "ssl_policy",
                format!("TLS policy `{policy}` accepts TLS 1.0 or 1.1"),
                "use `ELBSecurityPolicy-TLS13-1-2-2021-06` (AlbIngress's default)",
            );
        }
    }
}

fn alb_access_logs(view: &PolicyView, out: &mut Violations) {
    for lb in view.of_type("aws:elbv2:LoadBalancer").filter(|lb| !lb.is_set("/access_logs")) {
        out.add(
            &lb.urn,
            "access_logs",
            "the load balancer writes no access logs",
            "give the `AlbIngress` `.access_logs(&bucket)`, a bucket declared with `.log_delivery(true)`",
        );
    }
}

fn alb_invalid_headers(view: &PolicyView, out: &mut Violations) {
    for lb in view.of_type("aws:elbv2:LoadBalancer").filter(|lb| lb.flag("/drop_invalid_header_fields") != Some(true)) {
        out.add(
            &lb.urn,
            "drop_invalid_header_fields",
            "requests with invalid header fields reach the targets (request smuggling)",
            "set `drop_invalid_header_fields` (`AlbIngress` always does)",
        );
    }
}

fn alb_deletion_protection(view: &PolicyView, out: &mut Violations) {
    if !view.production {
        return;
    }
    for lb in view.of_type("aws:elbv2:LoadBalancer").filter(|lb| lb.flag("/deletion_protection") != Some(true)) {
        out.add(
            &lb.urn,
            "deletion_protection",
            "a production load balancer (and its DNS name) can be deleted by one call",
            "set `.deletion_protection(true)` on the `AlbIngress` (its default when the stack is production)",
        );
    }
}

fn alb_http_redirects(view: &PolicyView, out: &mut Violations) {
    for l in view.of_type("aws:elbv2:Listener").filter(|l| l.flag("/https") == Some(false)) {
        if l.text("/default_action") != Some("redirect_to_https") {
            out.add(
                &l.urn,
                "default_action",
                "a plain-HTTP listener serves traffic instead of redirecting it to HTTPS",
                "make its default action `redirect_to_https`",
            );
        }
    }
}

fn s3_public_access(view: &PolicyView, out: &mut Violations) {
    for b in view.of_type("aws:s3:Bucket").filter(|b| b.flag("/hardened") != Some(true)) {
        out.add(
            &b.urn,
            "hardened",
            "public access is not blocked and ACLs still apply",
            "leave the bucket hardened (the `Bucket` default)",
        );
    }
}

fn s3_versioning(view: &PolicyView, out: &mut Violations) {
    for b in view.of_type("aws:s3:Bucket").filter(|b| b.flag("/versioning") != Some(true)) {
        out.add(
            &b.urn,
            "versioning",
            "overwritten and deleted objects cannot be recovered",
            "set `versioning(true)`, with a lifecycle rule expiring old versions",
        );
    }
}

fn s3_tls_only(view: &PolicyView, out: &mut Violations) {
    for b in view.of_type("aws:s3:Bucket").filter(|b| b.flag("/hardened") != Some(true)) {
        out.add(
            &b.urn,
            "hardened",
            "the bucket accepts requests over plain HTTP",
            "leave the bucket hardened: its policy denies `aws:SecureTransport = false`",
        );
    }
}

fn s3_kms(view: &PolicyView, out: &mut Violations) {
    // Load balancers write access logs with S3's own key only: a log bucket cannot have one.
    for b in view.of_type("aws:s3:Bucket").filter(|b| !b.is_set("/kms_key_id") && b.flag("/log_delivery") != Some(true))
    {
        out.add(
            &b.urn,
            "kms_key_id",
            "objects are encrypted with S3's own key, which every reader of the bucket may use",
            "give the bucket a KMS key (`.kms_key(&key)`)",
        );
    }
}

/// The statements of an IAM policy document (one or a list).
fn statements(doc: &Value) -> Vec<&Value> {
    match doc.get("Statement") {
        Some(Value::Array(all)) => all.iter().collect(),
        Some(one) => vec![one],
        None => vec![],
    }
}

/// A field of a statement that may be one string or a list.
fn strings<'a>(statement: &'a Value, key: &str) -> Vec<&'a str> {
    match statement.get(key) {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(all)) => all.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

/// The permission policies of the stack's roles (their inline `document`s).
fn policy_documents(view: &PolicyView) -> impl Iterator<Item = (&PolicyResource, &Value)> {
    view.of_type("aws:iam:RolePolicy").filter_map(|p| Some((p, p.at("/document")?)))
}

fn allows(statement: &Value) -> bool {
    statement.get("Effect").and_then(Value::as_str) == Some("Allow")
}

fn iam_star_actions(view: &PolicyView, out: &mut Violations) {
    for (p, doc) in policy_documents(view) {
        let star: Vec<&str> = statements(doc)
            .into_iter()
            .filter(|s| allows(s))
            .flat_map(|s| strings(s, "Action"))
            .filter(|a| *a == "*" || a.ends_with(":*"))
            .collect();
        if !star.is_empty() {
            out.add(
                &p.urn,
                "document",
                format!("allows every action of `{}`", star.join("`, `")),
                "list the actions the workload calls",
            );
        }
    }
}

/// Whether every action is a read: `Describe*`, `List*`, `Get*` (the calls many services cannot
/// scope to a resource).
fn read_only(actions: &[&str]) -> bool {
    !actions.is_empty()
        && actions.iter().all(|a| {
            a.split_once(':').is_some_and(|(_, op)| ["Describe", "List", "Get"].iter().any(|v| op.starts_with(v)))
        })
}

fn iam_star_resources(view: &PolicyView, out: &mut Violations) {
    for (p, doc) in policy_documents(view) {
        for s in statements(doc).into_iter().filter(|s| allows(s)) {
            let conditioned = s.get("Condition").is_some_and(|c| c.as_object().is_some_and(|o| !o.is_empty()));
            if strings(s, "Resource").contains(&"*") && !conditioned && !read_only(&strings(s, "Action")) {
                out.add(
                    &p.urn,
                    "document",
                    format!("allows `{}` on every resource, with no condition", strings(s, "Action").join("`, `")),
                    "name the resources' ARNs, or add a condition (a resource tag of the stack)",
                );
            }
        }
    }
}

fn iam_admin_policy(view: &PolicyView, out: &mut Violations) {
    const ADMIN: &[&str] = &[
        "arn:aws:iam::aws:policy/AdministratorAccess",
        "arn:aws:iam::aws:policy/PowerUserAccess",
        "arn:aws:iam::aws:policy/IAMFullAccess",
    ];
    for a in view.of_type("aws:iam:RolePolicyAttachment") {
        if let Some(arn) = a.text("/policy_arn").filter(|arn| ADMIN.contains(arn)) {
            out.add(
                &a.urn,
                "policy_arn",
                format!("attaches `{arn}`"),
                "grant the role the actions it needs, in a policy of its own",
            );
        }
    }
}

fn data_in_transit(view: &PolicyView, out: &mut Violations) {
    for r in view.of_type("aws:elasticache:ReplicationGroup").filter(|r| r.flag("/transit_encryption") != Some(true)) {
        out.add(
            &r.urn,
            "transit_encryption",
            "clients talk to the cache in plain text",
            "turn on TLS (`Redis` does by default)",
        );
    }
    for d in view.of_type("aws:opensearch:Domain").filter(|d| d.flag("/node_to_node_encryption") != Some(true)) {
        out.add(
            &d.urn,
            "node_to_node_encryption",
            "the domain's nodes talk to each other in plain text",
            "turn on node-to-node encryption",
        );
    }
}

fn data_at_rest(view: &PolicyView, out: &mut Violations) {
    for r in view.of_type("aws:elasticache:ReplicationGroup").chain(view.of_type("aws:opensearch:Domain")) {
        if r.flag("/at_rest_encryption") != Some(true) {
            out.add(
                &r.urn,
                "at_rest_encryption",
                "data and snapshots are stored unencrypted",
                "turn on encryption at rest (it cannot be added later)",
            );
        }
    }
}

fn search_https(view: &PolicyView, out: &mut Violations) {
    for d in view.of_type("aws:opensearch:Domain") {
        let policy = d.text("/tls_policy").unwrap_or("Policy-Min-TLS-1-0-2019-07");
        if d.flag("/enforce_https") != Some(true) || !policy.contains("TLS-1-2") {
            out.add(
                &d.urn,
                "enforce_https",
                format!("the endpoint takes plain HTTP or TLS below 1.2 (policy `{policy}`)"),
                "enforce HTTPS with `Policy-Min-TLS-1-2-PFS-2023-10`",
            );
        }
    }
}

fn cache_failover(view: &PolicyView, out: &mut Violations) {
    if !view.production {
        return;
    }
    for r in view.of_type("aws:elasticache:ReplicationGroup") {
        if r.flag("/automatic_failover") != Some(true) || r.flag("/multi_az") != Some(true) {
            out.add(
                &r.urn,
                "replicas",
                "a production cache has no replica in another zone to fail over to",
                "give it a replica (`.replicas(1)` or more)",
            );
        }
    }
}
