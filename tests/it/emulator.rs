//! The emulator the tests share (`fabric_tests::pool`): a reset wipes what the last test made, and
//! the launcher's fix (`local/src/emulator.py`) leaves moto's accounts and AWS managed policies
//! as they were.

use fabric_tests::Fixture;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_emulator_is_empty_and_still_knows_its_account_and_managed_policies() {
    let fx = Fixture::start().await;
    let ec2 = &fx.aws.ec2;
    let default_vpcs = ec2.describe_vpcs().send().await.unwrap().vpcs().len();
    ec2.create_vpc().cidr_block("10.9.0.0/16").send().await.unwrap();
    fx.bucket("left-behind").await;
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    fx.aws.iam.create_role().role_name("left-behind").assume_role_policy_document(trust).send().await.unwrap();

    fx.reset().await;

    assert_eq!(ec2.describe_vpcs().send().await.unwrap().vpcs().len(), default_vpcs, "only the default VPC");
    assert!(fx.aws.s3.list_buckets().send().await.unwrap().buckets().is_empty(), "no bucket");
    assert!(fx.aws.iam.list_roles().send().await.unwrap().roles().is_empty(), "no role");
    // The account moto answers for is the one it always was …
    let me = fx.aws.sts.get_caller_identity().send().await.unwrap();
    assert_eq!(me.account(), Some("123456789012"));
    // … and AWS managed policies are there to attach (EKS nodes need them).
    fx.aws.iam.create_role().role_name("node").assume_role_policy_document(trust).send().await.unwrap();
    let policy = "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy";
    fx.aws.iam.attach_role_policy().role_name("node").policy_arn(policy).send().await.unwrap();
    let attached = fx.aws.iam.list_attached_role_policies().role_name("node").send().await.unwrap();
    assert_eq!(attached.attached_policies().iter().filter_map(|p| p.policy_arn()).collect::<Vec<_>>(), [policy]);
}
