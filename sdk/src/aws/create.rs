//! Creating without duplicating.
//!
//! Most AWS create calls are not idempotent (CreateVpc has no client token), so when a create's
//! answer is lost — a timeout, a reset connection, a 5xx after the write — retrying blindly can
//! make a second resource. [`create_or_find`] sends the create with the SDK's retries off; on an
//! ambiguous failure it looks the resource up (by its `fabric:urn` tag, or its natural key) and
//! retries only if it is not there. Throttling (which never creates anything) is retried directly.
//! The delays between attempts are backon's exponential backoff with jitter.

use super::Failure;
use crate::engine::provider::{ProviderError, ProviderResult};
use std::future::Future;
use std::time::Duration;

/// Attempts at a create before giving up (throttling included: it never creates anything).
pub const CREATE_ATTEMPTS: u32 = 10;

/// SDK config that turns retries off for one call (`.customize().config_override(no_retry())`;
/// an EC2 call: `aws::ec2::send_once!`).
#[cfg(feature = "ec2")]
pub fn no_retry() -> aws_sdk_ec2::config::Builder {
    aws_sdk_ec2::config::Builder::default().retry_config(aws_config::retry::RetryConfig::disabled())
}

/// [`no_retry`] for IAM calls.
#[cfg(feature = "iam")]
pub fn no_retry_iam() -> aws_sdk_iam::config::Builder {
    aws_sdk_iam::config::Builder::default().retry_config(aws_config::retry::RetryConfig::disabled())
}

/// Runs `create` at most [`CREATE_ATTEMPTS`] times; after an ambiguous failure, `find` decides
/// whether the create in fact happened.
pub async fn create_or_find<T, C, CF, L, LF>(
    what: &str,
    base_delay: Duration,
    mut create: C,
    mut find: L,
) -> ProviderResult<T>
where
    C: FnMut() -> CF,
    CF: Future<Output = Result<T, Failure>>,
    L: FnMut() -> LF,
    LF: Future<Output = ProviderResult<Option<T>>>,
{
    let mut delays = backoff(base_delay, Duration::from_secs(20));
    let mut last = String::new();
    for attempt in 1..=CREATE_ATTEMPTS {
        match create().await {
            Ok(v) => return Ok(v),
            Err(Failure::Refused { code, message }) => {
                return Err(ProviderError(format!("{what} failed: {code}: {message}")));
            }
            Err(Failure::Throttled(m)) => {
                tracing::warn!("{what}: throttled (attempt {attempt}): {m}");
                last = m;
                tokio::time::sleep(delays.next().unwrap_or(base_delay)).await;
            }
            Err(Failure::Ambiguous(m)) => {
                tracing::warn!("{what}: answer lost (attempt {attempt}), looking it up before retrying: {m}");
                // Time for a create that did happen to show in a lookup.
                tokio::time::sleep(delays.next().unwrap_or(base_delay)).await;
                if let Some(found) = find().await? {
                    return Ok(found);
                }
                last = m;
            }
        }
    }
    Err(ProviderError(format!("{what} failed after {CREATE_ATTEMPTS} attempts: {last}")))
}

/// The delays between attempts: from `first`, doubling up to `most`, each with a random share
/// added, so that calls throttled together do not come back together (backon's exponential
/// backoff).
fn backoff(first: Duration, most: Duration) -> impl Iterator<Item = Duration> {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::default()
        .with_min_delay(first)
        .with_max_delay(most)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}

/// Error codes that mean "something still uses this; it will let go": an address still held by a
/// NAT gateway being deleted answers `InvalidIPAddress.InUse`.
const WAITING_ON_DEPENDENTS: &[&str] = &["DependencyViolation", "InvalidIPAddress.InUse"];

/// Retries `op` while AWS answers `DependencyViolation` (for example a security group whose
/// network interfaces are still being released), for up to `budget`.
pub async fn retry_dependency_violation<F, Fut>(what: &str, budget: Duration, mut op: F) -> ProviderResult<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let start = tokio::time::Instant::now();
    let mut delays = backoff(Duration::from_millis(500), Duration::from_secs(15));
    loop {
        match op().await {
            Ok(()) => return Ok(()),
            Err(f @ Failure::Refused { .. })
                if WAITING_ON_DEPENDENTS.contains(&f.code()) && start.elapsed() < budget =>
            {
                tracing::info!("{what}: {} — waiting for dependents to go", f.message());
            }
            Err(Failure::Throttled(_)) if start.elapsed() < budget => {}
            Err(f) => return Err(ProviderError(format!("{what} failed: {}", f.message()))),
        }
        tokio::time::sleep(delays.next().unwrap_or(Duration::from_secs(15))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_lost_answer_is_looked_up_not_recreated() {
        // The first create succeeds in the cloud but its answer is lost.
        let creates = Arc::new(AtomicU32::new(0));
        let cloud = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let (c, cl) = (creates.clone(), cloud.clone());
        let out = create_or_find(
            "CreateVpc",
            Duration::from_millis(100),
            move || {
                let (c, cl) = (c.clone(), cl.clone());
                async move {
                    c.fetch_add(1, Ordering::SeqCst);
                    cl.lock().unwrap().push("vpc-1".into());
                    Err::<String, _>(Failure::Ambiguous("connection reset".into()))
                }
            },
            || {
                let cl = cloud.clone();
                async move { Ok(cl.lock().unwrap().first().cloned()) }
            },
        )
        .await
        .unwrap();
        assert_eq!(out, "vpc-1");
        assert_eq!(creates.load(Ordering::SeqCst), 1, "no second create");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_request_is_retried_after_the_lookup_finds_nothing() {
        let attempts = Arc::new(AtomicU32::new(0));
        let a = attempts.clone();
        let out = create_or_find(
            "CreateSubnet",
            Duration::from_millis(100),
            move || {
                let a = a.clone();
                async move {
                    if a.fetch_add(1, Ordering::SeqCst) == 0 {
                        Err(Failure::Ambiguous("timeout".into()))
                    } else {
                        Ok("subnet-1".to_string())
                    }
                }
            },
            || async { Ok(None) },
        )
        .await
        .unwrap();
        assert_eq!(out, "subnet-1");
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_fail_at_once_and_throttling_retries_without_lookup() {
        let err = create_or_find(
            "CreateVpc",
            Duration::from_millis(1),
            || async {
                Err::<String, _>(Failure::Refused { code: "VpcLimitExceeded".into(), message: "too many".into() })
            },
            || async { panic!("a refusal needs no lookup") },
        )
        .await
        .unwrap_err();
        assert!(err.0.contains("VpcLimitExceeded"));
        let n = Arc::new(AtomicU32::new(0));
        let n2 = n.clone();
        let out = create_or_find(
            "CreateVpc",
            Duration::from_millis(1),
            move || {
                let n = n2.clone();
                async move {
                    if n.fetch_add(1, Ordering::SeqCst) < 2 {
                        Err(Failure::Throttled("slow down".into()))
                    } else {
                        Ok(7)
                    }
                }
            },
            || async { panic!("throttling needs no lookup") },
        )
        .await
        .unwrap();
        assert_eq!(out, 7);
    }

    #[tokio::test(start_paused = true)]
    async fn dependency_violations_are_waited_out_within_the_budget() {
        let n = Arc::new(AtomicU32::new(0));
        let n2 = n.clone();
        retry_dependency_violation("DeleteSecurityGroup", Duration::from_secs(60), move || {
            let n = n2.clone();
            async move {
                if n.fetch_add(1, Ordering::SeqCst) < 3 {
                    Err(Failure::Refused { code: "DependencyViolation".into(), message: "in use".into() })
                } else {
                    Ok(())
                }
            }
        })
        .await
        .unwrap();
        let err = retry_dependency_violation("DeleteVpc", Duration::from_secs(5), || async {
            Err(Failure::Refused { code: "DependencyViolation".into(), message: "has subnets".into() })
        })
        .await
        .unwrap_err();
        assert!(err.0.contains("has subnets"));
    }
}
