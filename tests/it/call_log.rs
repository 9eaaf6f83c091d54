//! The call log records every AWS operation (the "no write call" assertions rely on it).

use fabric_tests::Fixture;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_is_recorded_with_its_service() {
    let fx = Fixture::start().await;
    fx.aws.calls.clear();
    fx.aws.ec2.describe_vpcs().send().await.unwrap();
    fx.aws.ec2.create_vpc().cidr_block("10.9.0.0/16").send().await.unwrap();
    fx.aws.rds.describe_db_instances().send().await.unwrap();
    fx.aws.iam.list_roles().send().await.unwrap();
    let calls = fx.aws.calls.calls();
    assert_eq!(calls, ["EC2.DescribeVpcs", "EC2.CreateVpc", "RDS.DescribeDBInstances", "IAM.ListRoles"], "{calls:?}");
    assert_eq!(fx.aws.calls.writes(), ["EC2.CreateVpc"]);
}
