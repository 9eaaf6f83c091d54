//! The Kubernetes Cluster Autoscaler for an [`EksCluster`](super::EksCluster): adds nodes to a
//! pool when pods cannot be scheduled and removes idle ones, within each pool's `size` — the
//! node half of horizontal scaling (autoscalers move pods, this moves nodes).
//!
//! It discovers the pools by the tags EKS puts on their autoscaling groups
//! (`k8s.io/cluster-autoscaler/enabled`, `k8s.io/cluster-autoscaler/<cluster>`), and acts with a
//! role of its own (EKS Pod Identity for its service account; [`ACTIONS`] allowed).

use crate::k8s::pod::{quantities, restricted_container, restricted_pod};
use crate::k8s::{ClusterRef, Manifest};
use crate::model::{Output, Stack};
use serde_json::{Value, json};

/// The autoscaler release for a Kubernetes minor version (they are released in step).
pub fn image(kubernetes_version: &str) -> String {
    format!("registry.k8s.io/autoscaling/cluster-autoscaler:v{kubernetes_version}.0")
}

/// What the autoscaler reads, anywhere in the account.
pub const DESCRIBE_ACTIONS: [&str; 9] = [
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeLaunchConfigurations",
    "autoscaling:DescribeScalingActivities",
    "autoscaling:DescribeTags",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplateVersions",
    "eks:DescribeNodegroup",
];

/// What the autoscaler changes: only on the groups of its own cluster.
pub const SCALE_ACTIONS: [&str; 2] =
    ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"];

/// The autoscaler's permissions for EKS cluster `cluster_name`: it reads everywhere, and resizes
/// only autoscaling groups tagged `k8s.io/cluster-autoscaler/<cluster_name>: owned` (the tag EKS
/// puts on its managed node groups), never another cluster's or anything else in the account.
pub fn policy(cluster_name: &str) -> crate::aws::iam::PolicyDocument {
    crate::aws::iam::PolicyDocument::new().allow(&DESCRIBE_ACTIONS, &["*"]).allow_when(
        &SCALE_ACTIONS,
        &["*"],
        json!({"StringEquals": {format!("aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}"): "owned"}}),
    )
}

/// The autoscaler's health endpoint (its `--address`, 8085).
pub const HEALTH_PORT: i32 = 8085;

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

/// Declares the autoscaler's objects in `kube-system` of `cluster` (EKS cluster `cluster_name`,
/// in the region `arn` names).
pub fn declare(
    s: &mut Stack,
    cluster: &ClusterRef,
    cluster_name: &str,
    arn: Output<String>,
    kubernetes_version: &str,
) -> crate::Result<()> {
    let name = "cluster-autoscaler";
    let ns = "kube-system";
    let labels = json!({"app.kubernetes.io/name": name});
    let watch = ["watch", "list", "get"];
    let objects = [
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns, "labels": labels}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": name, "labels": labels},
        "rules": [
            rule(&[""], &["events", "endpoints"], &["create", "patch"]),
            rule(&[""], &["pods/eviction"], &["create"]),
            rule(&[""], &["pods/status"], &["update"]),
            rule(&[""], &["nodes"], &["watch", "list", "get", "update"]),
            rule(&[""], &["namespaces", "pods", "services", "replicationcontrollers", "persistentvolumeclaims", "persistentvolumes"], &watch),
            rule(&["apps"], &["statefulsets", "replicasets", "daemonsets"], &watch),
            rule(&["policy"], &["poddisruptionbudgets"], &["watch", "list"]),
            rule(&["storage.k8s.io"], &["storageclasses", "csinodes", "csidrivers", "csistoragecapacities", "volumeattachments"], &watch),
            rule(&["batch"], &["jobs", "cronjobs"], &watch),
            rule(&["coordination.k8s.io"], &["leases"], &["create"]),
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": [name], "verbs": ["get", "update"]},
        ]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "rules": [
            rule(&[""], &["configmaps"], &["create", "list", "watch"]),
            {"apiGroups": [""], "resources": ["configmaps"],
             "resourceNames": ["cluster-autoscaler-status", "cluster-autoscaler-priority-expander"],
             "verbs": ["delete", "get", "update", "watch"]},
        ]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]}),
    ];
    for o in objects {
        Manifest::new(o).add(s, cluster)?;
    }
    let container = json!({
        "name": name,
        "image": image(kubernetes_version),
        "command": [
            "./cluster-autoscaler",
            "--cloud-provider=aws",
            format!("--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,k8s.io/cluster-autoscaler/{cluster_name}"),
            "--balance-similar-node-groups",
            "--expander=least-waste",
            "--skip-nodes-with-local-storage=false",
            "--skip-nodes-with-system-pods=false",
        ],
        "env": [{"name": "AWS_REGION", "value": ""}],
        "ports": [{"name": "health", "containerPort": HEALTH_PORT, "protocol": "TCP"}],
        // Restarted when it stops answering (a stuck autoscaler stops scaling silently).
        "livenessProbe": {"httpGet": {"path": "/health-check", "port": "health"},
            "initialDelaySeconds": 30, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3},
        "resources": {"requests": quantities("100m", "300Mi"), "limits": quantities("500m", "600Mi")},
        "securityContext": restricted_container(true),
    });
    let mut deployment = Manifest::new(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "priorityClassName": "system-cluster-critical",
                    "serviceAccountName": name,
                    "securityContext": restricted_pod(65534),
                    "containers": [container],
                },
            },
        },
    }));
    // arn:aws:eks:<region>:<account>:cluster/<name>
    let region = arn.map(|arn: String| Value::String(arn.split(':').nth(3).unwrap_or_default().to_string()));
    deployment.inject("/spec/template/spec/containers/0/env/0/value", region);
    deployment.add(s, cluster)?;
    Ok(())
}
