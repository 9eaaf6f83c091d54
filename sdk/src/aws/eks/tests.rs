use super::cluster::logging;
use super::*;
use std::sync::Mutex;

/// A thing whose status goes through `statuses`, one per describe.
fn scripted(statuses: &[&'static str]) -> Mutex<Vec<Option<&'static str>>> {
    let mut v: Vec<Option<&'static str>> =
        statuses.iter().map(|s| if s.is_empty() { None } else { Some(*s) }).collect();
    v.reverse();
    Mutex::new(v)
}

async fn run(statuses: &[&'static str], gone: bool) -> (ProviderResult<Option<&'static str>>, usize) {
    let script = scripted(statuses);
    let calls = Mutex::new(0);
    let result = wait_active(
        "EKS thing t",
        gone,
        NODE_GROUP_ACCEPTORS,
        || {
            *calls.lock().unwrap() += 1;
            let next = script.lock().unwrap().pop().flatten();
            async move { Ok(next) }
        },
        |s: &&str| Some(s.to_string()),
        |s| format!(" ({s})"),
    )
    .await;
    let n = *calls.lock().unwrap();
    (result, n)
}

#[tokio::test(start_paused = true)]
async fn waits_poll_until_active_gone_or_failed() {
    assert_eq!(run(&["CREATING", "CREATING", "ACTIVE"], false).await, (Ok(Some("ACTIVE")), 3));
    assert_eq!(run(&["DELETING", ""], true).await, (Ok(None), 2));
    let (failed, calls) = run(&["CREATING", "CREATE_FAILED"], false).await;
    assert_eq!(
        (failed.unwrap_err().0, calls),
        ("EKS thing t is CREATE_FAILED (CREATE_FAILED) (while waiting for it to be ACTIVE)".to_string(), 2)
    );
    // A delete that fails ends the wait at once too, naming the state.
    let (failed, calls) = run(&["DELETING", "DELETE_FAILED", "DELETING"], true).await;
    assert_eq!(calls, 2);
    assert!(failed.unwrap_err().0.contains("is DELETE_FAILED"));
    let (gone, _) = run(&["CREATING", ""], false).await;
    assert_eq!(gone.unwrap_err().0, "EKS thing t disappeared");
}

#[test]
fn logging_turns_off_what_is_not_asked_for() {
    let l = logging(&["api".into(), "audit".into()]);
    let setups = l.cluster_logging();
    assert_eq!(setups[0].enabled(), Some(true));
    assert_eq!(setups[0].types().len(), 2);
    assert_eq!(setups[1].enabled(), Some(false));
    assert_eq!(setups[1].types().len(), 3);
}

/// The service range reads back as the program states it: as it is when the program chose it, as
/// "not chosen" for a cluster whose range EKS picked, and as it is for an imported cluster unless
/// EKS picked it.
#[test]
fn a_service_range_reads_back_as_the_program_states_it() {
    use super::cluster::observed_service_cidr;
    let with = |cidr: &str| {
        aws_sdk_eks::types::Cluster::builder()
            .kubernetes_network_config(
                aws_sdk_eks::types::KubernetesNetworkConfigResponse::builder().service_ipv4_cidr(cidr).build(),
            )
            .build()
    };
    let chosen = "10.129.0.0/16".to_string();
    assert_eq!(observed_service_cidr(Some(&chosen), &with("10.129.0.0/16")), Some(chosen.clone()));
    assert_eq!(observed_service_cidr(None, &with("172.20.0.0/16")), None, "EKS picked it; the program did not");
    let importing = String::new();
    assert_eq!(observed_service_cidr(Some(&importing), &with("172.20.0.0/16")), None);
    assert_eq!(observed_service_cidr(Some(&importing), &with("10.129.0.0/16")), Some(chosen));
}
