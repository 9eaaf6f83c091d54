//! What the local emulator cannot show, request by request, in the wire format of the real APIs:
//! EKS add-ons, access entries and Pod Identity (the emulator does not implement them), the
//! ownership checks of creates that meet an existing resource, waits that end at once on a failure
//! state, an interrupted RDS restore, the retry policy under throttling, and the waits of VPC
//! peerings (accepted, or failed with AWS's reason) and endpoints (states as EC2 spells them).

use super::RetryPolicy;
use super::eks::{AccessEntryInputs, AddonInputs, PodIdentityInputs};
use super::rds::{InstanceInputs, Restore};
use super::scripted::{Script, json, json_error, query_error, xml};
use crate::engine::provider::Ctx;
use crate::model::{Secret, Urn};
use serde_json::{Value, json as j};
use std::sync::Arc;

const STACK: &str = "demo";

fn ctx(script: &Script, retry: RetryPolicy) -> Ctx {
    crate::providers::context(STACK, Some(Arc::new(script.aws(retry))))
}

fn ours(urn: &Urn) -> Value {
    j!({"fabric:stack": STACK, "fabric:urn": urn.as_str()})
}

fn foreign() -> Value {
    j!({"team": "data", "fabric:stack": "other", "fabric:urn": "other::aws:eks:Addon::x"})
}

// ------------------------------------------------------------------------------------ add-ons

fn addon_urn() -> Urn {
    Urn::new(STACK, "aws:eks:Addon", "main/vpc-cni")
}

fn addon_inputs() -> Value {
    serde_json::to_value(AddonInputs {
        cluster_name: "demo-main".to_string(),
        name: "vpc-cni".into(),
        version: None,
        pod_identity: None,
        tags: Default::default(),
        configuration: Some(crate::aws::eks::VPC_CNI_CONFIGURATION.into()),
    })
    .unwrap()
}

fn addon(status: &str, tags: Value) -> Value {
    j!({"addon": {"addonName": "vpc-cni", "clusterName": "demo-main", "status": status,
        "addonArn": "arn:aws:eks:us-east-2:111122223333:addon/demo-main/vpc-cni/1", "tags": tags}})
}

#[tokio::test(start_paused = true)]
async fn an_addon_that_is_not_ours_is_refused_and_nothing_is_changed() {
    let script = Script::new([
        json_error("EKS.CreateAddon", 409, "ResourceInUseException", "Addon already exists."),
        json("EKS.DescribeAddon", 200, addon("ACTIVE", foreign())),
    ]);
    let err = super::eks::addon_provider()
        .create(&ctx(&script, RetryPolicy::RealAccount), &addon_urn(), &addon_inputs())
        .await
        .unwrap_err()
        .0;
    script.assert_done();
    assert!(err.contains("EKS add-on vpc-cni of cluster demo-main already exists and is not this stack's"), "{err}");
    assert!(err.contains("it belongs to other::aws:eks:Addon::x") && err.contains("nothing was changed"), "{err}");
    assert!(err.contains(&format!("fabric:urn={}", addon_urn())), "says how to adopt it: {err}");
}

#[tokio::test(start_paused = true)]
async fn an_addon_of_ours_whose_answer_was_lost_is_adopted_and_awaited() {
    let urn = addon_urn();
    let script = Script::new([
        json_error("EKS.CreateAddon", 409, "ResourceInUseException", "Addon already exists."),
        json("EKS.DescribeAddon", 200, addon("CREATING", ours(&urn))),
        json("EKS.DescribeAddon", 200, addon("CREATING", ours(&urn))),
        json("EKS.DescribeAddon", 200, addon("ACTIVE", ours(&urn))),
    ]);
    let out = super::eks::addon_provider()
        .create(&ctx(&script, RetryPolicy::RealAccount), &urn, &addon_inputs())
        .await
        .unwrap();
    script.assert_done();
    assert_eq!(out["arn"], "arn:aws:eks:us-east-2:111122223333:addon/demo-main/vpc-cni/1");
    // The create asked with this resource's tags and an idempotency token.
    let create: Value = serde_json::from_str(&script.sent()[0].body).unwrap();
    assert_eq!(create["tags"]["fabric:urn"], urn.as_str());
    assert!(create["clientRequestToken"].as_str().unwrap().starts_with("fabric-"));
    // The VPC CNI is asked to enforce NetworkPolicies.
    assert_eq!(create["configurationValues"], r#"{"enableNetworkPolicy":"true"}"#);
}

#[tokio::test(start_paused = true)]
async fn a_failed_addon_ends_the_wait_at_once_naming_the_state() {
    let urn = addon_urn();
    let script = Script::new([
        json("EKS.CreateAddon", 200, addon("CREATING", ours(&urn))),
        json("EKS.DescribeAddon", 200, addon("CREATE_FAILED", ours(&urn))),
    ]);
    let err = super::eks::addon_provider()
        .create(&ctx(&script, RetryPolicy::RealAccount), &urn, &addon_inputs())
        .await
        .unwrap_err()
        .0;
    script.assert_done();
    assert!(err.contains("EKS add-on vpc-cni is CREATE_FAILED"), "{err}");
}

// ------------------------------------------------------------------------------ access entries

const ADMIN: &str = "arn:aws:iam::111122223333:role/admin";
const CLUSTER_ADMIN: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy";
const VIEW: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy";

fn entry_urn() -> Urn {
    Urn::new(STACK, "aws:eks:AccessEntry", "main/admin")
}

fn entry_inputs(policy: &str) -> Value {
    serde_json::to_value(AccessEntryInputs {
        cluster_name: "demo-main".to_string(),
        principal_arn: ADMIN.into(),
        policy_arn: policy.into(),
    })
    .unwrap()
}

fn entry(tags: Value) -> Value {
    j!({"accessEntry": {"clusterName": "demo-main", "principalArn": ADMIN, "type": "STANDARD",
        "accessEntryArn": "arn:aws:eks:us-east-2:111122223333:access-entry/demo-main/role/111122223333/admin/1",
        "tags": tags}})
}

fn associated(policy: &str) -> Value {
    j!({"clusterName": "demo-main", "principalArn": ADMIN,
        "associatedAccessPolicy": {"policyArn": policy, "accessScope": {"type": "cluster"}}})
}

#[tokio::test(start_paused = true)]
async fn a_policy_change_associates_the_new_policy_then_removes_the_old() {
    let p = super::eks::access_entry_provider();
    assert!(!p.replace_on().contains(&"policy_arn"), "a policy change is an update, not a replacement");
    let script = Script::new([
        json("EKS.AssociateAccessPolicy", 200, associated(VIEW)),
        json("EKS.DisassociateAccessPolicy", 200, j!({})),
    ]);
    let outputs = j!({"cluster_name": "demo-main", "principal_arn": ADMIN});
    p.update(
        &ctx(&script, RetryPolicy::RealAccount),
        &entry_urn(),
        &entry_inputs(CLUSTER_ADMIN),
        &outputs,
        &entry_inputs(VIEW),
    )
    .await
    .unwrap();
    script.assert_done();
    let sent = script.sent();
    let associate: Value = serde_json::from_str(&sent[0].body).unwrap();
    assert_eq!(associate["policyArn"], VIEW);
    assert_eq!(sent[1].method, "DELETE");
    assert!(
        sent[1].uri.ends_with(&format!("/access-policies/{}", CLUSTER_ADMIN.replace(':', "%3A").replace('/', "%2F"))),
        "the old association goes: {}",
        sent[1].uri
    );
}

#[tokio::test(start_paused = true)]
async fn an_access_entry_eks_made_itself_is_never_taken_over() {
    let script = Script::new([
        json_error(
            "EKS.CreateAccessEntry",
            409,
            "ResourceInUseException",
            "The specified access entry resource is already in use on this cluster.",
        ),
        json("EKS.DescribeAccessEntry", 200, entry(j!({}))),
    ]);
    let err = super::eks::access_entry_provider()
        .create(&ctx(&script, RetryPolicy::RealAccount), &entry_urn(), &entry_inputs(CLUSTER_ADMIN))
        .await
        .unwrap_err()
        .0;
    script.assert_done();
    assert!(
        err.contains(
            "the EKS access entry of arn:aws:iam::111122223333:role/admin in cluster demo-main already exists"
        ),
        "{err}"
    );
    assert!(!script.ops().contains(&"EKS.AssociateAccessPolicy".to_string()), "no policy was associated");
}

#[tokio::test(start_paused = true)]
async fn an_access_entry_of_ours_is_found_again_after_a_crash() {
    let urn = entry_urn();
    let script = Script::new([json("EKS.DescribeAccessEntry", 200, entry(ours(&urn)))]);
    let found = super::eks::access_entry_provider()
        .find(&ctx(&script, RetryPolicy::RealAccount), &urn, &entry_inputs(VIEW))
        .await;
    script.assert_done();
    assert_eq!(found.unwrap().unwrap()["principal_arn"], ADMIN);
}

// ---------------------------------------------------------------------------------- pod identity

fn identity_urn() -> Urn {
    Urn::new(STACK, "aws:eks:PodIdentityAssociation", "main/ebs-csi")
}

fn identity_inputs() -> Value {
    serde_json::to_value(PodIdentityInputs {
        cluster_name: "demo-main".to_string(),
        namespace: "kube-system".into(),
        service_account: "ebs-csi-controller-sa".into(),
        role_arn: "arn:aws:iam::111122223333:role/demo-ebs".to_string(),
        tags: Default::default(),
    })
    .unwrap()
}

fn association(tags: Value) -> Value {
    j!({"association": {"clusterName": "demo-main", "namespace": "kube-system",
        "serviceAccount": "ebs-csi-controller-sa", "roleArn": "arn:aws:iam::111122223333:role/theirs",
        "associationId": "a-1234567890", "associationArn": "arn:aws:eks:us-east-2:111122223333:podidentityassociation/demo-main/a-1234567890",
        "tags": tags}})
}

fn listed() -> Value {
    j!({"associations": [{"clusterName": "demo-main", "namespace": "kube-system",
        "serviceAccount": "ebs-csi-controller-sa", "associationId": "a-1234567890",
        "associationArn": "arn:aws:eks:us-east-2:111122223333:podidentityassociation/demo-main/a-1234567890"}]})
}

#[tokio::test(start_paused = true)]
async fn a_pod_identity_association_that_is_not_ours_is_refused() {
    let script = Script::new([
        json_error("EKS.CreatePodIdentityAssociation", 409, "ResourceInUseException", "Association already exists"),
        json("EKS.ListPodIdentityAssociations", 200, listed()),
        json("EKS.DescribePodIdentityAssociation", 200, association(j!({}))),
    ]);
    let err = super::eks::pod_identity_provider()
        .create(&ctx(&script, RetryPolicy::RealAccount), &identity_urn(), &identity_inputs())
        .await
        .unwrap_err()
        .0;
    script.assert_done();
    assert!(
        err.contains("pod identity association of kube-system/ebs-csi-controller-sa in cluster demo-main"),
        "{err}"
    );
    assert!(err.contains("carries no fabric tags"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_pod_identity_association_of_ours_is_adopted() {
    let urn = identity_urn();
    let script = Script::new([
        json_error("EKS.CreatePodIdentityAssociation", 409, "ResourceInUseException", "Association already exists"),
        json("EKS.ListPodIdentityAssociations", 200, listed()),
        json("EKS.DescribePodIdentityAssociation", 200, association(ours(&urn))),
    ]);
    let out = super::eks::pod_identity_provider()
        .create(&ctx(&script, RetryPolicy::RealAccount), &urn, &identity_inputs())
        .await
        .unwrap();
    script.assert_done();
    assert_eq!(out["association_id"], "a-1234567890");
}

// ------------------------------------------------------------------------------------ RDS restore

fn db_urn() -> Urn {
    Urn::new(STACK, "aws:rds:DbInstance", "db")
}

fn restored_inputs() -> Value {
    serde_json::to_value(InstanceInputs::<String, Secret<String>> {
        identifier: "demo-db-abc123".into(),
        engine: "postgres".into(),
        engine_version: "17.4".into(),
        engine_major: "17".into(),
        instance_class: "db.t4g.medium".into(),
        allocated_storage: 20,
        max_allocated_storage: 100,
        storage_type: "gp3".into(),
        storage_encrypted: true,
        multi_az: true,
        backup_retention_days: 7,
        deletion_protection: true,
        publicly_accessible: false,
        db_subnet_group_name: "demo-db".into(),
        vpc_security_group_ids: vec!["sg-1".into()],
        db_name: "app".into(),
        master_username: "app".into(),
        master_password: Some(Secret::new("this-stacks-password".into())),
        skip_final_snapshot: None,
        apply_immediately: None,
        restore: Some(Restore::Snapshot { snapshot: "nightly-2026-11-28".into() }),
        tags: Default::default(),
    })
    .unwrap()
}

fn db_instance(status: &str, tags: &[(&str, &str)]) -> String {
    let tags: String =
        tags.iter().map(|(k, v)| format!("<Tag><Key>{k}</Key><Value>{v}</Value></Tag>")).collect::<Vec<_>>().join("");
    format!(
        "<DBInstance><DBInstanceIdentifier>demo-db-abc123</DBInstanceIdentifier><DBInstanceStatus>{status}</DBInstanceStatus>\
         <DBInstanceArn>arn:aws:rds:us-east-2:111122223333:db:demo-db-abc123</DBInstanceArn><DbiResourceId>db-XYZ</DbiResourceId>\
         <Endpoint><Address>demo-db-abc123.c1.us-east-2.rds.amazonaws.com</Address><Port>5432</Port></Endpoint>\
         <TagList>{tags}</TagList></DBInstance>"
    )
}

fn described(status: &str, tags: &[(&str, &str)]) -> String {
    format!(
        "<DescribeDBInstancesResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\"><DescribeDBInstancesResult><DBInstances>{}</DBInstances></DescribeDBInstancesResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></DescribeDBInstancesResponse>",
        db_instance(status, tags)
    )
}

#[tokio::test(start_paused = true)]
async fn an_interrupted_restore_is_finished_with_this_stacks_password() {
    let urn = db_urn();
    let urn_s = urn.to_string();
    let tagged: [(&str, &str); 2] = [("fabric:stack", STACK), ("fabric:urn", urn_s.as_str())];
    let modified = format!(
        "<ModifyDBInstanceResponse><ModifyDBInstanceResult>{}</ModifyDBInstanceResult></ModifyDBInstanceResponse>",
        db_instance("modifying", &tagged)
    );
    let script = Script::new([
        // Recovery: the instance is there and ours, but its restore was never finished.
        xml("RDS.DescribeDBInstances", 200, &described("available", &tagged)),
        // The create runs again: no second restore, this stack's password set, then marked done.
        xml("RDS.DescribeDBInstances", 200, &described("available", &tagged)),
        xml("RDS.DescribeDBInstances", 200, &described("available", &tagged)),
        xml("RDS.ModifyDBInstance", 200, &modified),
        xml("RDS.DescribeDBInstances", 200, &described("resetting-master-credentials", &tagged)),
        xml("RDS.DescribeDBInstances", 200, &described("available", &tagged)),
        xml(
            "RDS.AddTagsToResource",
            200,
            "<AddTagsToResourceResponse><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></AddTagsToResourceResponse>",
        ),
    ]);
    let ctx = ctx(&script, RetryPolicy::RealAccount);
    let p = super::rds::instance_provider();
    assert_eq!(p.find(&ctx, &urn, &restored_inputs()).await.unwrap(), None, "not finished: not adopted as done");
    let out = p.create(&ctx, &urn, &restored_inputs()).await.unwrap();
    script.assert_done();
    assert_eq!(out["identifier"], "demo-db-abc123");
    let sent = script.sent();
    assert!(!script.ops().iter().any(|o| o.contains("Restore")), "no second restore: {:?}", script.ops());
    assert!(sent[3].body.contains("MasterUserPassword=this-stacks-password"), "{}", sent[3].body);
    assert!(sent[6].body.contains("fabric%3Arestore-finished"), "{}", sent[6].body);
}

#[tokio::test(start_paused = true)]
async fn a_restore_that_cannot_be_done_ends_the_wait_at_once() {
    let urn = db_urn();
    let urn_s = urn.to_string();
    let tagged: [(&str, &str); 2] = [("fabric:stack", STACK), ("fabric:urn", urn_s.as_str())];
    let script = Script::new([
        query_error("RDS.DescribeDBInstances", 404, "DBInstanceNotFound", "DBInstance demo-db-abc123 not found."),
        xml(
            "RDS.RestoreDBInstanceFromDBSnapshot",
            200,
            &format!(
                "<RestoreDBInstanceFromDBSnapshotResponse><RestoreDBInstanceFromDBSnapshotResult>{}</RestoreDBInstanceFromDBSnapshotResult></RestoreDBInstanceFromDBSnapshotResponse>",
                db_instance("creating", &tagged)
            ),
        ),
        xml("RDS.DescribeDBInstances", 200, &described("incompatible-restore", &tagged)),
    ]);
    let err = super::rds::instance_provider()
        .create(&ctx(&script, RetryPolicy::RealAccount), &urn, &restored_inputs())
        .await
        .unwrap_err()
        .0;
    script.assert_done();
    assert!(err.contains("is incompatible-restore"), "{err}");
}

// ---------------------------------------------------------------------------------------- retries

#[tokio::test(start_paused = true)]
async fn throttling_is_retried_on_a_real_account_and_the_error_reads_as_one_line() {
    let urn = addon_urn();
    let throttled = || json_error("EKS.DescribeAddon", 400, "ThrottlingException", "Rate exceeded");
    let script = Script::new([
        throttled(),
        throttled(),
        json_error("EKS.DescribeAddon", 503, "ServiceUnavailableException", "try again"),
        json("EKS.DescribeAddon", 200, addon("ACTIVE", ours(&urn))),
    ]);
    let found = super::eks::addon_provider()
        .find(&ctx(&script, RetryPolicy::RealAccount), &urn, &addon_inputs())
        .await
        .unwrap();
    script.assert_done();
    assert!(found.is_some(), "four attempts, one call");

    // Throttled on every one of its attempts: one line naming the call, the code, the attempts.
    let script = Script::new((0..RetryPolicy::REAL_ATTEMPTS).map(|_| throttled()));
    let started = tokio::time::Instant::now();
    let err = super::eks::addon_provider()
        .read_many(
            &ctx(&script, RetryPolicy::RealAccount),
            &[(urn.clone(), j!({"cluster_name": "demo-main", "name": "vpc-cni", "arn": "a"}))],
        )
        .await
        .unwrap_err()
        .0;
    script.assert_done();
    assert!(started.elapsed() >= std::time::Duration::from_secs(60), "backed off for minutes: {:?}", started.elapsed());
    assert!(!err.contains('\n'), "{err}");
    assert!(
        err.starts_with("DescribeAddon failed: ThrottlingException: Rate exceeded (HTTP 400, 15 attempts in "),
        "{err}"
    );

    // The local emulator's policy: one attempt (it answers unimplemented actions with 500).
    let script = Script::new([throttled()]);
    let err = super::eks::addon_provider()
        .find(&ctx(&script, RetryPolicy::Emulator), &urn, &addon_inputs())
        .await
        .unwrap_err()
        .0;
    script.assert_done();
    assert!(err.contains("(HTTP 400, 1 attempt in "), "{err}");
}

// ------------------------------------------------------------------------------------ NAT gateway

#[tokio::test(start_paused = true)]
async fn a_nat_gateway_that_fails_ends_the_wait_at_once_with_its_reason() {
    const EC2: &str = "xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"";
    let script = Script::new([
        xml(
            "EC2.CreateNatGateway",
            200,
            &format!(
                "<CreateNatGatewayResponse {EC2}><requestId>r</requestId><natGateway><natGatewayId>nat-0abc</natGatewayId><state>pending</state></natGateway></CreateNatGatewayResponse>"
            ),
        ),
        xml(
            "EC2.DescribeNatGateways",
            200,
            &format!(
                "<DescribeNatGatewaysResponse {EC2}><requestId>r</requestId><natGatewaySet><item><natGatewayId>nat-0abc</natGatewayId><state>pending</state></item></natGatewaySet></DescribeNatGatewaysResponse>"
            ),
        ),
        xml(
            "EC2.DescribeNatGateways",
            200,
            &format!(
                "<DescribeNatGatewaysResponse {EC2}><requestId>r</requestId><natGatewaySet><item><natGatewayId>nat-0abc</natGatewayId><state>failed</state><failureCode>Gateway.NotAttached</failureCode><failureMessage>Network vpc-1 has no Internet gateway attached</failureMessage></item></natGatewaySet></DescribeNatGatewaysResponse>"
            ),
        ),
    ]);
    let inputs = serde_json::to_value(super::ec2::nat::NatGatewayInputs::<String> {
        subnet_id: "subnet-1".into(),
        allocation_id: "eipalloc-1".into(),
        tags: Default::default(),
    })
    .unwrap();
    let err = super::ec2::nat::nat_provider()
        .create(&ctx(&script, RetryPolicy::RealAccount), &Urn::new(STACK, "aws:ec2:NatGateway", "main/nat-a"), &inputs)
        .await
        .unwrap_err()
        .0;
    script.assert_done();
    assert!(
        err.contains("NAT gateway nat-0abc is failed") && err.contains("has no Internet gateway attached"),
        "{err}"
    );
}

// ------------------------------------------------------------------ EKS Secrets encryption

fn cluster_inputs(key: Option<&str>) -> Value {
    serde_json::to_value(super::eks::ClusterInputs::<String, Vec<String>> {
        name: "demo-main".into(),
        version: "1.33".into(),
        role_arn: "arn:aws:iam::111122223333:role/eks".into(),
        subnet_ids: vec!["subnet-a".into(), "subnet-b".into()],
        security_group_ids: vec!["sg-1".into()],
        endpoint_public: false,
        endpoint_private: true,
        public_access_cidrs: vec![],
        logging: vec![],
        tags: Default::default(),
        secrets_key_arn: key.map(String::from),
        service_cidr: None,
    })
    .unwrap()
}

fn cluster_outputs() -> Value {
    j!({"name": "demo-main", "arn": "arn:aws:eks:us-east-2:111122223333:cluster/demo-main", "endpoint": "https://x",
        "ca_data": "Y2E=", "oidc_issuer": "https://oidc", "node_security_group_id": "sg-2"})
}

/// A cluster of that name that another stack made is refused, nothing created or changed; one of
/// ours whose create answer was lost is adopted and awaited.
#[tokio::test(start_paused = true)]
async fn a_cluster_is_adopted_only_when_it_is_ours() {
    let urn = Urn::new(STACK, "aws:eks:Cluster", "main");
    let in_use = || json_error("EKS.CreateCluster", 409, "ResourceInUseException", "Cluster already exists with name");
    let cluster = |status: &str, tags: Value| {
        j!({"cluster": {"name": "demo-main", "status": status, "tags": tags,
            "arn": "arn:aws:eks:us-east-2:111122223333:cluster/demo-main", "endpoint": "https://x",
            "certificateAuthority": {"data": "Y2E="}, "identity": {"oidc": {"issuer": "https://oidc"}},
            "resourcesVpcConfig": {"clusterSecurityGroupId": "sg-2"}}})
    };
    let script = Script::new([in_use(), json("EKS.DescribeCluster", 200, cluster("ACTIVE", foreign()))]);
    let err = super::eks::cluster_provider()
        .create(&ctx(&script, RetryPolicy::RealAccount), &urn, &cluster_inputs(None))
        .await
        .unwrap_err()
        .0;
    script.assert_done();
    assert!(err.contains("EKS cluster demo-main already exists and is not this stack's"), "{err}");
    assert!(err.contains("it belongs to other::aws:eks:Addon::x"), "{err}");

    let script = Script::new([
        in_use(),
        json("EKS.DescribeCluster", 200, cluster("CREATING", ours(&urn))),
        json("EKS.DescribeCluster", 200, cluster("ACTIVE", ours(&urn))),
    ]);
    let out = super::eks::cluster_provider()
        .create(&ctx(&script, RetryPolicy::RealAccount), &urn, &cluster_inputs(None))
        .await
        .unwrap();
    script.assert_done();
    assert_eq!(out["name"], "demo-main");
}

const KEY_ARN: &str = "arn:aws:kms:us-east-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/// Envelope encryption added to a running cluster is `AssociateEncryptionConfig` (in place, then
/// awaited); a change or removal of the key — which EKS cannot do — is refused with no call.
#[tokio::test(start_paused = true)]
async fn secrets_encryption_is_added_in_place_and_never_changed() {
    let urn = Urn::new(STACK, "aws:eks:Cluster", "main");
    let script = Script::new([
        json("EKS.AssociateEncryptionConfig", 200, j!({"update": {"id": "u1", "status": "InProgress"}})),
        json("EKS.DescribeCluster", 200, j!({"cluster": {"name": "demo-main", "status": "UPDATING"}})),
        json("EKS.DescribeCluster", 200, j!({"cluster": {"name": "demo-main", "status": "ACTIVE"}})),
        json(
            "EKS.DescribeCluster",
            200,
            j!({"cluster": {"name": "demo-main", "status": "ACTIVE",
            "arn": "arn:aws:eks:us-east-2:111122223333:cluster/demo-main", "endpoint": "https://x",
            "certificateAuthority": {"data": "Y2E="}, "identity": {"oidc": {"issuer": "https://oidc"}},
            "resourcesVpcConfig": {"clusterSecurityGroupId": "sg-2"}}}),
        ),
    ]);
    let provider = super::eks::cluster_provider();
    let c = ctx(&script, RetryPolicy::RealAccount);
    provider.update(&c, &urn, &cluster_inputs(None), &cluster_outputs(), &cluster_inputs(Some(KEY_ARN))).await.unwrap();
    script.assert_done();
    let sent = script.sent();
    let body: Value = serde_json::from_str(&sent[0].body).unwrap();
    assert_eq!(body["encryptionConfig"], j!([{"resources": ["secrets"], "provider": {"keyArn": KEY_ARN}}]));

    let script = Script::new([]);
    let c = ctx(&script, RetryPolicy::RealAccount);
    let err = provider
        .update(&c, &urn, &cluster_inputs(Some(KEY_ARN)), &cluster_outputs(), &cluster_inputs(None))
        .await
        .unwrap_err()
        .0;
    assert!(err.contains("EKS cannot change or remove that key") && err.contains("nothing was changed"), "{err}");
    assert!(script.sent().is_empty(), "no call was made");
}

// ------------------------------------------------------------------ VPC peering and endpoints

const EC2_NS: &str = "xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"";

fn peering_step(op: &'static str, status: &str, message: &str) -> super::scripted::Step {
    let (root, item_open, item_close) = match op {
        "EC2.DescribeVpcPeeringConnections" => (
            "DescribeVpcPeeringConnectionsResponse",
            "<vpcPeeringConnectionSet><item>",
            "</item></vpcPeeringConnectionSet>",
        ),
        "EC2.AcceptVpcPeeringConnection" => {
            ("AcceptVpcPeeringConnectionResponse", "<vpcPeeringConnection>", "</vpcPeeringConnection>")
        }
        _ => ("CreateVpcPeeringConnectionResponse", "<vpcPeeringConnection>", "</vpcPeeringConnection>"),
    };
    xml(
        op,
        200,
        &format!(
            "<{root} {EC2_NS}><requestId>r</requestId>{item_open}<vpcPeeringConnectionId>pcx-1</vpcPeeringConnectionId><status><code>{status}</code><message>{message}</message></status>{item_close}</{root}>"
        ),
    )
}

fn peering_inputs() -> Value {
    serde_json::to_value(super::ec2::peering::PeeringInputs::<String> {
        vpc_id: "vpc-a".into(),
        peer_vpc_id: "vpc-b".into(),
        tags: Default::default(),
    })
    .unwrap()
}

/// A real account answers a new peering `initiating-request`, then `pending-acceptance` until
/// the accepter accepts: the create accepts it (same account) and waits for `active`.
#[tokio::test(start_paused = true)]
async fn a_peering_is_accepted_and_awaited_until_active() {
    let script = Script::new([
        peering_step("EC2.CreateVpcPeeringConnection", "initiating-request", "Initiating Request to 111122223333"),
        peering_step("EC2.DescribeVpcPeeringConnections", "pending-acceptance", "Pending Acceptance by 111122223333"),
        peering_step("EC2.AcceptVpcPeeringConnection", "provisioning", "Provisioning"),
        peering_step("EC2.DescribeVpcPeeringConnections", "provisioning", "Provisioning"),
        peering_step("EC2.DescribeVpcPeeringConnections", "active", "Active"),
    ]);
    let out = super::ec2::peering::provider()
        .create(
            &ctx(&script, RetryPolicy::RealAccount),
            &Urn::new(STACK, "aws:ec2:VpcPeeringConnection", "a-b"),
            &peering_inputs(),
        )
        .await
        .unwrap();
    script.assert_done();
    assert_eq!(out["id"], "pcx-1");
    let accept = script.sent().into_iter().find(|s| s.op == "EC2.AcceptVpcPeeringConnection").unwrap();
    assert!(accept.body.contains("VpcPeeringConnectionId=pcx-1"), "{}", accept.body);
}

/// Overlapping blocks make AWS fail the peering: the wait ends at once, saying why.
#[tokio::test(start_paused = true)]
async fn a_failed_peering_ends_the_wait_at_once_with_its_reason() {
    let script = Script::new([
        peering_step("EC2.CreateVpcPeeringConnection", "initiating-request", "Initiating Request"),
        peering_step("EC2.DescribeVpcPeeringConnections", "failed", "Failed due to overlapping CIDR range"),
    ]);
    let err = super::ec2::peering::provider()
        .create(
            &ctx(&script, RetryPolicy::RealAccount),
            &Urn::new(STACK, "aws:ec2:VpcPeeringConnection", "a-b"),
            &peering_inputs(),
        )
        .await
        .unwrap_err()
        .0;
    script.assert_done();
    assert!(err.contains("VPC peering pcx-1: failed (Failed due to overlapping CIDR range)"), "{err}");
}

/// The inputs of an interface endpoint for Session Manager in one subnet.
fn ssm_endpoint_inputs() -> Value {
    serde_json::to_value(super::ec2::endpoint::EndpointInputs::<String> {
        vpc_id: "vpc-a".into(),
        service: "ssm".into(),
        subnet_ids: vec!["subnet-a".into()],
        security_group_ids: vec!["sg-1".into()],
        tags: Default::default(),
    })
    .unwrap()
}

/// EC2 answers VPC endpoint states in lowercase (`pending`, `available`), which the SDK's
/// `State` enum (`Available`) does not match: the wait still ends when the endpoint is available.
#[tokio::test(start_paused = true)]
async fn an_endpoint_is_awaited_until_available_in_the_real_apis_spelling() {
    let endpoint = |root: &str, wrap: (&str, &str), state: &str| {
        format!(
            "<{root} {EC2_NS}><requestId>r</requestId>{}<vpcEndpointId>vpce-1</vpcEndpointId><state>{state}</state><serviceName>com.amazonaws.us-east-2.ssm</serviceName>{}</{root}>",
            wrap.0, wrap.1
        )
    };
    let set = ("<vpcEndpointSet><item>", "</item></vpcEndpointSet>");
    let script = Script::new([
        xml(
            "EC2.CreateVpcEndpoint",
            200,
            &endpoint("CreateVpcEndpointResponse", ("<vpcEndpoint>", "</vpcEndpoint>"), "pending"),
        ),
        xml("EC2.DescribeVpcEndpoints", 200, &endpoint("DescribeVpcEndpointsResponse", set, "pending")),
        xml("EC2.DescribeVpcEndpoints", 200, &endpoint("DescribeVpcEndpointsResponse", set, "available")),
    ]);
    let inputs = ssm_endpoint_inputs();
    let out = super::ec2::endpoint::provider()
        .create(&ctx(&script, RetryPolicy::RealAccount), &Urn::new(STACK, "aws:ec2:VpcEndpoint", "ssm/ssm"), &inputs)
        .await
        .unwrap();
    script.assert_done();
    assert_eq!(out["id"], "vpce-1");
    let create = &script.sent()[0];
    assert!(create.body.contains("ServiceName=com.amazonaws.us-east-2.ssm"), "{}", create.body);
    assert!(create.body.contains("PrivateDnsEnabled=true"), "{}", create.body);
}

/// Every AWS wait goes through `aws::wait::poll_until`, so a step's custom timeout bounds it: an
/// endpoint that stays `pending` fails at the custom limit (30 s), not at the provider's 10
/// minutes, and the error says which limit it was.
#[tokio::test(start_paused = true)]
async fn an_endpoint_wait_honours_the_custom_timeout() {
    let body = |root: &str, wrap: (&str, &str)| {
        format!(
            "<{root} {EC2_NS}><requestId>r</requestId>{}<vpcEndpointId>vpce-1</vpcEndpointId><state>pending</state><serviceName>com.amazonaws.us-east-2.ssm</serviceName>{}</{root}>",
            wrap.0, wrap.1
        )
    };
    let set = ("<vpcEndpointSet><item>", "</item></vpcEndpointSet>");
    // The create, then a look every 5 s: at 0, 5, …, 30 and 35 s (past the limit).
    let mut steps = vec![xml(
        "EC2.CreateVpcEndpoint",
        200,
        &body("CreateVpcEndpointResponse", ("<vpcEndpoint>", "</vpcEndpoint>")),
    )];
    steps.extend((0..8).map(|_| xml("EC2.DescribeVpcEndpoints", 200, &body("DescribeVpcEndpointsResponse", set))));
    let script = Script::new(steps);
    let inputs = ssm_endpoint_inputs();
    let ctx = ctx(&script, RetryPolicy::RealAccount);
    let urn = Urn::new(STACK, "aws:ec2:VpcEndpoint", "ssm/ssm");
    let provider = super::ec2::endpoint::provider();
    let started = tokio::time::Instant::now();
    let limit = Some(std::time::Duration::from_secs(30));
    let err =
        crate::engine::provider::with_wait_limit(limit, provider.create(&ctx, &urn, &inputs)).await.unwrap_err().0;
    assert!(err.contains("VPC endpoint vpce-1: not available") && err.contains("still pending"), "{err}");
    assert!(err.contains("custom timeout of 30s"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "waited {:?}", started.elapsed());
}
