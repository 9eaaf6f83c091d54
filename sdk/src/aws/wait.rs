//! Waiting for the cloud: one polling loop for every provider that waits on a status (EKS
//! clusters, node groups and add-ons, RDS instances, NAT gateways, ACM certificates, Route 53
//! changes, VPC peerings and endpoints, EC2 instances), bounded by the step's custom timeout.

use crate::engine::provider::{ProviderError, ProviderResult};
use std::future::Future;
use std::time::Duration;

/// What one look found.
pub enum Poll<T> {
    /// Done, with this.
    Ready(T),
    /// Not yet; what it is now (for the timeout message).
    Waiting(String),
}

/// Runs `check` every `interval` until it is [`Poll::Ready`] or fails; after `timeout` (or the
/// step's custom timeout, [`crate::engine::provider::wait_limit`]), fails with `timed_out(last
/// state)`, naming the limit. The first look is immediate.
pub async fn poll_until<T, F, Fut>(
    timeout: Duration,
    interval: Duration,
    mut check: F,
    timed_out: impl FnOnce(&str) -> String,
) -> ProviderResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ProviderResult<Poll<T>>>,
{
    let limit = crate::engine::provider::wait_limit(timeout);
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let last = match check().await? {
            Poll::Ready(v) => return Ok(v),
            Poll::Waiting(state) => state,
        };
        if tokio::time::Instant::now() > deadline {
            let mut message = timed_out(&last);
            if crate::engine::provider::custom_wait_limit().is_some() {
                message.push_str(&format!(
                    " — gave up after the custom timeout of {} (custom_timeouts)",
                    humantime::format_duration(limit)
                ));
            }
            return Err(ProviderError(message));
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn polls_until_ready_or_times_out_with_the_last_state() {
        let looks = AtomicUsize::new(0);
        let ready = poll_until(
            Duration::from_secs(60),
            Duration::from_secs(10),
            || async {
                let n = looks.fetch_add(1, Ordering::SeqCst);
                Ok(if n == 2 { Poll::Ready(n) } else { Poll::Waiting(format!("look {n}")) })
            },
            |_| unreachable!(),
        )
        .await;
        assert_eq!(ready, Ok(2));

        let started = tokio::time::Instant::now();
        let late: ProviderResult<()> = poll_until(
            Duration::from_secs(30),
            Duration::from_secs(10),
            || async { Ok(Poll::Waiting("pending".into())) },
            |last| format!("still {last}"),
        )
        .await;
        assert_eq!(late, Err(ProviderError("still pending".into())));
        assert!(started.elapsed() >= Duration::from_secs(30));

        let failed: ProviderResult<()> = poll_until(
            Duration::from_secs(30),
            Duration::from_secs(10),
            || async { Err("boom".into()) },
            |_| String::new(),
        )
        .await;
        assert_eq!(failed, Err(ProviderError("boom".into())));

        // A step's custom timeout replaces the provider's own, and the message says so.
        let started = tokio::time::Instant::now();
        let limited: ProviderResult<()> =
            crate::engine::provider::with_wait_limit(Some(Duration::from_secs(20)), async {
                poll_until(
                    Duration::from_secs(600),
                    Duration::from_secs(10),
                    || async { Ok(Poll::Waiting("creating".into())) },
                    |last| format!("still {last}"),
                )
                .await
            })
            .await;
        let message = limited.unwrap_err().0;
        assert!(message.starts_with("still creating — gave up after the custom timeout of 20s"), "{message}");
        assert!(started.elapsed() < Duration::from_secs(60));
    }
}
