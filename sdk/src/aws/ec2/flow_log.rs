//! `aws:ec2:FlowLog`: a VPC's flow logs, delivered to an S3 bucket. AWS cannot change a flow log,
//! so any change of its inputs but the tags replaces it.

use super::tagged::TaggedResource;
use super::vpc::VpcRef;
use super::{Tags, check_tags, is_not_found, tag_specification, user_tags, with_name};
use crate::aws::AwsCtx;
use crate::aws::s3::BucketRef;
use crate::aws::{Failure, call_failed, error_code};
use crate::engine::provider::{Ctx, Import, Provider, ProviderError, ProviderResult};
use crate::model::{Checker, Stack, Urn};
use async_trait::async_trait;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Filter, FlowLogsResourceType, LogDestinationType, ResourceType, TrafficType};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use typed_builder::TypedBuilder;

pub const TYPE: &str = "aws:ec2:FlowLog";

/// Every accepted and rejected flow of a VPC's network interfaces, written to a bucket as
/// `<bucket>/[<prefix>/]AWSLogs/<account>/vpcflowlogs/<region>/…` every ten minutes (each file
/// named with its flow log's id). [`super::Vpc`]'s
/// `flow_logs` declares one; this builder is for a VPC of one's own layout.
///
/// ```
/// use fabric::prelude::*;
/// use fabric::aws::ec2::FlowLog;
/// use fabric::aws::s3::Bucket;
/// let mut s = Stack::new("demo");
/// let logs = Bucket::builder().name("logs").bucket("demo-logs-example").log_delivery(true).build().add(&mut s).unwrap();
/// let vpc = Vpc::builder().name("main").cidr("10.0.0.0/16").build().add_alone(&mut s).unwrap();
/// FlowLog::builder().name("main/flow-logs").vpc(&vpc).bucket(&logs).build().add(&mut s).unwrap();
/// assert!(s.finish().is_ok());
/// ```
#[derive(TypedBuilder, Clone, Debug)]
pub struct FlowLog<'a> {
    #[builder(setter(into))]
    name: String,
    vpc: &'a VpcRef,
    /// A bucket declared with `log_delivery(true)`.
    bucket: &'a BucketRef,
    /// Where in the bucket, before the `AWSLogs/` AWS adds (default: the bucket's root). The
    /// local emulator cannot deliver under a prefix: it refuses the flow log.
    #[builder(default, setter(strip_option, into))]
    prefix: Option<String>,
    /// Which flows: accepted, rejected, or both (the default).
    #[builder(default = Traffic::All)]
    traffic: Traffic,
    #[builder(default, setter(into))]
    tags: Tags,
}

/// Which flows a flow log records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Traffic {
    All,
    Accepted,
    Rejected,
}

impl Traffic {
    fn api(self) -> TrafficType {
        match self {
            Traffic::All => TrafficType::All,
            Traffic::Accepted => TrafficType::Accept,
            Traffic::Rejected => TrafficType::Reject,
        }
    }

    fn of(api: Option<&TrafficType>) -> Traffic {
        match api {
            Some(TrafficType::Accept) => Traffic::Accepted,
            Some(TrafficType::Reject) => Traffic::Rejected,
            _ => Traffic::All,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowLogInputs<R = String> {
    pub vpc_id: R,
    /// `arn:aws:s3:::<bucket>`, or `arn:aws:s3:::<bucket>/<prefix>/`.
    pub destination: R,
    pub traffic: Traffic,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowLogOutputs {
    pub id: String,
}

/// A declared flow log.
#[derive(Clone, Debug)]
pub struct FlowLogRef {
    urn: Urn,
}

impl FlowLogRef {
    outputs!(urn =>
        /// `fl-…`, known after apply.
        id: String,
    );
}

impl FlowLog<'_> {
    pub fn add(self, s: &mut Stack) -> crate::Result<FlowLogRef> {
        let mut c = Checker::new(s.urn(TYPE, &self.name));
        check_tags(&mut c, &self.tags);
        self.bucket.check_log_destination(&mut c, "bucket", "VPC flow logs");
        let prefix = self.prefix.as_deref().map(|p| p.trim_matches('/').to_string());
        if let Some(clean) = &prefix {
            c.require(
                !clean.is_empty() && !clean.split('/').any(|part| part == "AWSLogs" || part.is_empty()),
                "prefix",
                format!("`{}` is not a prefix AWS takes", self.prefix.as_deref().unwrap_or_default()),
                "give one or more non-empty path parts, none of them `AWSLogs` (AWS adds that after the prefix)",
            );
        }
        s.report(c.into_errors());
        let inputs = FlowLogInputs {
            vpc_id: self.vpc.id(),
            destination: self.bucket.arn().map(move |arn| match &prefix {
                Some(p) => format!("{arn}/{p}/"),
                None => arn,
            }),
            traffic: self.traffic,
            tags: with_name(&self.tags, &self.name),
        };
        Ok(FlowLogRef { urn: s.declare(provider(), &self.name, inputs, vec![]) })
    }
}

pub fn provider() -> Arc<dyn Provider> {
    super::tagged::provider(FlowLogProvider)
}

pub struct FlowLogProvider;

#[async_trait]
impl TaggedResource for FlowLogProvider {
    resource_type!(TYPE, FlowLogInputs => FlowLogOutputs,
        item aws_sdk_ec2::types::FlowLog { id: flow_log_id }, create "CreateFlowLogs",
        replace_on &["vpc_id", "destination", "traffic"], import Import::ById);
    const ID_FILTER: Option<&'static str> = Some("flow-log-id");

    /// CreateFlowLogs answers a refusal of its one VPC in the body (`Unsuccessful`), not as an
    /// error: that is a definite refusal too.
    async fn create_once(
        &self,
        ec2: &Client,
        ctx: &Ctx,
        urn: &Urn,
        i: &FlowLogInputs,
    ) -> Result<FlowLogOutputs, Failure> {
        let out = super::send_once!(
            ec2.create_flow_logs()
                .resource_type(FlowLogsResourceType::Vpc)
                .resource_ids(&i.vpc_id)
                .traffic_type(i.traffic.api())
                .log_destination_type(LogDestinationType::S3)
                .log_destination(&i.destination)
                .tag_specifications(tag_specification(ResourceType::VpcFlowLog, ctx, urn, &i.tags))
        )?;
        if let Some(id) = out.flow_log_ids().first() {
            return Ok(FlowLogOutputs { id: id.clone() });
        }
        let error = out.unsuccessful().first().and_then(|u| u.error());
        Err(Failure::Refused {
            code: error.and_then(|e| e.code()).unwrap_or("Unsuccessful").to_string(),
            message: error.and_then(|e| e.message()).unwrap_or("CreateFlowLogs made no flow log").to_string(),
        })
    }

    /// DeleteFlowLogs, too, answers a refusal in the body; a flow log that is gone is deleted.
    async fn delete(&self, ctx: &Ctx, _: &FlowLogInputs, out: &FlowLogOutputs) -> ProviderResult<()> {
        match ctx.aws()?.ec2.delete_flow_logs().flow_log_ids(&out.id).send().await {
            Ok(answer) => match answer.unsuccessful().first().and_then(|u| u.error()) {
                Some(e) if !is_not_found(e.code()) => Err(ProviderError(format!(
                    "DeleteFlowLogs refused {}: {}: {}",
                    out.id,
                    e.code().unwrap_or_default(),
                    e.message().unwrap_or_default()
                ))),
                _ => Ok(()),
            },
            Err(e) if is_not_found(error_code(&e)) => Ok(()),
            Err(e) => Err(call_failed("DeleteFlowLogs", e)),
        }
    }

    async fn describe(&self, ctx: &Ctx, filters: Vec<Filter>) -> ProviderResult<Vec<Self::Item>> {
        Ok(super::describe_all!(
            ctx.aws()?.ec2.describe_flow_logs().set_filter(Some(filters)),
            "DescribeFlowLogs",
            flow_logs
        ))
    }

    async fn observe(&self, _: &Ctx, fl: &Self::Item) -> ProviderResult<(FlowLogInputs, FlowLogOutputs)> {
        let inputs = FlowLogInputs {
            vpc_id: fl.resource_id().unwrap_or_default().to_string(),
            destination: fl.log_destination().unwrap_or_default().to_string(),
            traffic: Traffic::of(fl.traffic_type()),
            tags: user_tags(fl.tags()),
        };
        Ok((inputs, FlowLogOutputs { id: fl.flow_log_id().unwrap_or_default().to_string() }))
    }
}
