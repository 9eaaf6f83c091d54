//! Amazon EKS: clusters, managed node groups, add-ons, pod identities and access entries, one
//! module each; what they share (tags, the emulator's gaps, idempotency tokens, status waits) is here.

use crate::aws::AwsCtx;
use crate::aws::gap::{Lacking, MaybeLacking, OrGap};
use crate::aws::wait::{Poll, poll_until};
use crate::aws::{TAG_URN, Tags, call_failed, error_code};
use crate::engine::provider::{
    Ctx, NamesTaken, Provider, ProviderError, ProviderResult, Read, Reads, TypedProvider, Update, typed,
};
use crate::model::Urn;
use async_trait::async_trait;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

mod access_entry;
mod addon;
mod cluster;
pub mod cluster_autoscaler;
mod eks_cluster;
mod node_group;
mod pod_identity;
mod preflight;
pub(crate) use preflight::preflight;
#[cfg(test)]
mod tests;

pub use access_entry::*;
pub use addon::*;
pub use cluster::*;
pub use eks_cluster::*;
pub use node_group::*;
pub use pod_identity::*;

/// What a stack program needs of EKS in scope (part of [`crate::prelude`]).
pub mod prelude {
    pub use super::{Capacity, Cluster, EksCluster, NodePool};
}

pub const CLUSTER: &str = "aws:eks:Cluster";
pub const NODE_GROUP: &str = "aws:eks:NodeGroup";
pub const ADDON: &str = "aws:eks:Addon";
pub const ACCESS_ENTRY: &str = "aws:eks:AccessEntry";
pub const POD_IDENTITY: &str = "aws:eks:PodIdentityAssociation";

/// Cluster creates take 10–15 minutes, node groups 3–5; deletes about as long.
const WAIT: Duration = Duration::from_secs(40 * 60);
const POLL: Duration = Duration::from_secs(15);

pub fn providers() -> Vec<Arc<dyn Provider>> {
    vec![cluster_provider(), node_group_provider(), addon_provider(), access_entry_provider(), pod_identity_provider()]
}

pub fn pod_identity_provider() -> Arc<dyn Provider> {
    typed(Lacking(PodIdentityProvider))
}

pub fn cluster_provider() -> Arc<dyn Provider> {
    typed(ClusterProvider)
}

pub fn node_group_provider() -> Arc<dyn Provider> {
    typed(NodeGroupProvider)
}

pub fn addon_provider() -> Arc<dyn Provider> {
    typed(Lacking(AddonProvider))
}

pub fn access_entry_provider() -> Arc<dyn Provider> {
    typed(Lacking(AccessEntryProvider))
}

fn eks_tags(ctx: &Ctx, urn: &Urn, tags: &Tags) -> HashMap<String, String> {
    crate::aws::with_fabric_tags(ctx, urn, tags).into_iter().collect()
}

async fn sync_tags(ctx: &Ctx, arn: &str, old: &Tags, new: &Tags) -> ProviderResult<()> {
    let eks = &ctx.aws()?.eks;
    let remove = |keys| async move {
        let call = eks.untag_resource().resource_arn(arn).set_tag_keys(Some(keys));
        call.send().await.map(drop).map_err(|e| call_failed("UntagResource", e))
    };
    let set = |pairs: Vec<(String, String)>| async move {
        let call = eks.tag_resource().resource_arn(arn).set_tags(Some(pairs.into_iter().collect()));
        call.send().await.map(drop).map_err(|e| call_failed("TagResource", e))
    };
    crate::aws::TagChanges::sync(old, new, remove, set).await
}

fn not_found<E: aws_sdk_eks::error::ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    error_code(e) == Some("ResourceNotFoundException")
}

/// An EKS answer in which "no such thing" is `None`; any other error names the call.
/// A names check of what lives in a cluster (node groups, add-ons), one listing per cluster that
/// exists: `list(cluster)` gives the names there (`None`: no such cluster, so nothing is taken),
/// `name_of(inputs)` an item's name (`None`: not known yet), `tags(cluster, name)` the tags of one
/// that is there.
async fn names_in_clusters<L, LF, T, TF>(
    ctx: &Ctx,
    items: &[(Urn, Value)],
    list: L,
    name_of: impl Fn(&Value) -> Option<String>,
    tags: T,
) -> NamesTaken
where
    L: Fn(String) -> LF,
    LF: std::future::Future<Output = ProviderResult<Option<Vec<String>>>>,
    T: Fn(String, String) -> TF,
    TF: std::future::Future<Output = ProviderResult<Tags>>,
{
    let mut out = vec![None; items.len()];
    for (cluster, indices) in by_cluster(items) {
        let existing: std::collections::BTreeMap<String, String> =
            list(cluster.clone()).await?.unwrap_or_default().into_iter().map(|n| (n.clone(), n)).collect();
        let part: Vec<(Urn, Value)> = indices.iter().map(|&i| items[i].clone()).collect();
        let answers =
            crate::aws::names_held_by(ctx, &part, "name", &name_of, &existing, |name| tags(cluster.clone(), name))
                .await?
                .unwrap_or_default();
        for (i, answer) in indices.into_iter().zip(answers) {
            out[i] = answer;
        }
    }
    Ok(Some(out))
}

/// The items of a names check grouped by their cluster, where it is known.
fn by_cluster(items: &[(Urn, Value)]) -> std::collections::BTreeMap<String, Vec<usize>> {
    let mut clusters: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
    for (i, (_, inputs)) in items.iter().enumerate() {
        if let Some(c) = crate::engine::provider::known_text(inputs, "cluster_name") {
            clusters.entry(c.to_string()).or_default().push(i);
        }
    }
    clusters
}

fn found<T, E>(call: &str, answer: Result<T, SdkError<E, HttpResponse>>) -> ProviderResult<Option<T>>
where
    E: aws_sdk_eks::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    crate::aws::found(call, |code| code == Some("ResourceNotFoundException"), answer)
}

/// A create that failed with `e`: when the thing is already there (`ResourceInUseException`), it is
/// this resource's from an earlier attempt whose answer was lost — checked by the tags `existing`
/// reads, and never taken over when it is not (EKS makes entries and add-ons of its own) — and the
/// create goes on; any other error names the call.
async fn already_ours<E, F, Fut>(
    ctx: &Ctx,
    urn: &Urn,
    what: &str,
    call: &str,
    e: SdkError<E, HttpResponse>,
    existing: F,
) -> ProviderResult<()>
where
    E: aws_sdk_eks::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ProviderResult<HashMap<String, String>>>,
{
    if error_code(&e) == Some("ResourceInUseException") {
        crate::aws::require_ours(ctx, urn, what, &existing().await?)
    } else {
        Err(call_failed(call, e))
    }
}

/// The local emulator does not implement this EKS action (it answers 404 or 500 without an
/// EKS error code).
fn emulator_lacks<E: aws_sdk_eks::error::ProvideErrorMetadata>(ctx: &Ctx, e: &SdkError<E, HttpResponse>) -> bool {
    ctx.aws().is_ok_and(|a| a.emulator)
        && e.raw_response().is_some_and(|r| matches!(r.status().as_u16(), 404 | 500))
        && !not_found(e)
}

/// The idempotency token of a create: the same for a retry of the same create, another one for
/// the create of a replacement (`what` is the new instance's settings).
fn token(urn: &Urn, what: &impl Serialize) -> String {
    let settings = serde_json::to_string(what).unwrap_or_default();
    format!("fabric-{:016x}", crate::model::stable_hash(&format!("{urn}\u{0}{settings}")))
}

/// The statuses that end a wait at once, as failures: taken from the SDK's own waiters
/// (`ClusterActive`/`ClusterDeleted`, `NodegroupActive`/`NodegroupDeleted`,
/// `AddonActive`/`AddonDeleted`), plus the few that fabric's waits also meet (an update that
/// failed, a thing deleted by someone else while it was awaited).
#[derive(Clone, Copy, Debug)]
pub struct Acceptors {
    /// Waiting for `ACTIVE`.
    pub active_fails: &'static [&'static str],
    /// Waiting for it to be gone.
    pub gone_fails: &'static [&'static str],
}

pub const CLUSTER_ACCEPTORS: Acceptors =
    Acceptors { active_fails: &["DELETING", "FAILED"], gone_fails: &["ACTIVE", "CREATING", "PENDING"] };
pub const NODE_GROUP_ACCEPTORS: Acceptors = Acceptors {
    active_fails: &["CREATE_FAILED", "DEGRADED", "DELETING", "DELETE_FAILED"],
    gone_fails: &["DELETE_FAILED"],
};
pub const ADDON_ACCEPTORS: Acceptors = Acceptors {
    active_fails: &["CREATE_FAILED", "DEGRADED", "UPDATE_FAILED", "DELETING", "DELETE_FAILED"],
    gone_fails: &["DELETE_FAILED"],
};

/// Polls `describe` until the thing is `ACTIVE` (or gone, with `gone`). A status that
/// `acceptors` name for that wait stops it at once, naming the status and `why` of what was read.
async fn wait_active<T, F, Fut>(
    what: &str,
    gone: bool,
    acceptors: Acceptors,
    mut describe: F,
    status: impl Fn(&T) -> Option<String>,
    why: impl Fn(&T) -> String,
) -> ProviderResult<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ProviderResult<Option<T>>>,
{
    let failed = if gone { acceptors.gone_fails } else { acceptors.active_fails };
    let check = || {
        let look = describe();
        let (status, why) = (&status, &why);
        async move {
            let found = look.await?;
            match (found.as_ref().and_then(status).as_deref(), gone) {
                (None, true) => Ok(Poll::Ready(None)),
                (Some("ACTIVE"), false) => Ok(Poll::Ready(found)),
                (Some(s), _) if failed.contains(&s) => {
                    let detail = found.as_ref().map(why).unwrap_or_default();
                    let waiting_for = if gone { "to be deleted" } else { "to be ACTIVE" };
                    Err(ProviderError(format!("{what} is {s}{detail} (while waiting for it {waiting_for})")))
                }
                (None, false) => Err(ProviderError(format!("{what} disappeared"))),
                (Some(s), _) => Ok(Poll::Waiting(s.to_string())),
            }
        }
    };
    poll_until(WAIT, POLL, check, |last| format!("{what} did not settle within {WAIT:?} (still {last})")).await
}
