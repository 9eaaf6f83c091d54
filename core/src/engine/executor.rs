//! Runs a DAG of async tasks: each starts as soon as its dependencies have succeeded (no
//! level-by-level barriers), at most `parallel` at once. A failure skips its transitive dependents
//! and lets independent work finish.

use std::future::Future;
use std::pin::Pin;
use tokio::task::JoinSet;

/// How one task ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Failed(String),
    /// Not started because the task at this index failed or was skipped.
    Skipped(usize),
}

pub type TaskFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Index used in [`Outcome::Skipped`] for tasks not started because the run was interrupted.
pub const INTERRUPTED: usize = usize::MAX;

/// Runs tasks `0..deps.len()`; `deps[i]` are the indices task `i` waits for. `start(i)` makes the
/// future of task `i`. Once `stop` is set, no further task starts; those in flight finish.
/// Returns each task's outcome.
pub async fn run_dag(
    deps: &[Vec<usize>],
    parallel: usize,
    stop: &std::sync::atomic::AtomicBool,
    mut start: impl FnMut(usize) -> TaskFuture,
) -> Vec<Outcome> {
    let n = deps.len();
    let parallel = parallel.max(1);
    let mut waiting: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(i);
        }
    }
    let mut outcome: Vec<Option<Outcome>> = vec![None; n];
    let mut ready: std::collections::VecDeque<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    let mut running: JoinSet<(usize, Result<(), String>)> = JoinSet::new();
    loop {
        while running.len() < parallel && !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let Some(i) = ready.pop_front() else { break };
            let fut = start(i);
            running.spawn(async move { (i, fut.await) });
        }
        let Some(joined) = running.join_next().await else { break };
        let (i, result) = match joined {
            Ok(r) => r,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        match result {
            Ok(()) => {
                outcome[i] = Some(Outcome::Done);
                for &d in &dependents[i] {
                    waiting[d] -= 1;
                    if waiting[d] == 0 && outcome[d].is_none() {
                        ready.push_back(d);
                    }
                }
            }
            Err(e) => {
                outcome[i] = Some(Outcome::Failed(e));
                let mut stack = vec![i];
                while let Some(f) = stack.pop() {
                    for &d in &dependents[f] {
                        if outcome[d].is_none() {
                            outcome[d] = Some(Outcome::Skipped(f));
                            stack.push(d);
                        }
                    }
                }
            }
        }
    }
    outcome.into_iter().map(|o| o.unwrap_or(Outcome::Skipped(INTERRUPTED))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_task_starts_when_its_own_dependencies_finish_not_a_whole_level() {
        // 0 (10 ms) -> 1 (10 ms); 2 (100 ms). Level scheduling would start 1 at 100 ms.
        let deps = vec![vec![], vec![0], vec![]];
        let started = Arc::new(std::sync::Mutex::new(vec![Duration::ZERO; 3]));
        let t0 = tokio::time::Instant::now();
        let s = started.clone();
        let out = run_dag(&deps, 8, &Default::default(), move |i| {
            let s = s.clone();
            Box::pin(async move {
                s.lock().unwrap()[i] = t0.elapsed();
                tokio::time::sleep(Duration::from_millis(if i == 2 { 100 } else { 10 })).await;
                Ok(())
            })
        })
        .await;
        assert!(out.iter().all(|o| *o == Outcome::Done));
        assert_eq!(started.lock().unwrap()[1], Duration::from_millis(10));
    }

    #[tokio::test]
    async fn failure_skips_only_dependents() {
        // 0 fails; 1 depends on 0; 2 depends on 1; 3 is independent.
        let deps = vec![vec![], vec![0], vec![1], vec![]];
        let out = run_dag(&deps, 4, &Default::default(), |i| {
            Box::pin(async move { if i == 0 { Err("boom".into()) } else { Ok(()) } })
        })
        .await;
        assert_eq!(out, vec![Outcome::Failed("boom".into()), Outcome::Skipped(0), Outcome::Skipped(1), Outcome::Done]);
    }

    #[tokio::test]
    async fn never_more_than_parallel_at_once() {
        let deps = vec![vec![]; 50];
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (n, p) = (now.clone(), peak.clone());
        let out = run_dag(&deps, 3, &Default::default(), move |_| {
            let (n, p) = (n.clone(), p.clone());
            Box::pin(async move {
                let c = n.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(c, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                n.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            })
        })
        .await;
        assert_eq!(out.len(), 50);
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_stop_lets_running_tasks_finish_and_starts_no_more() {
        let deps = vec![vec![], vec![0], vec![1]];
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let out = run_dag(&deps, 4, &stop, move |i| {
            let s = s.clone();
            Box::pin(async move {
                if i == 0 {
                    s.store(true, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Ok(())
            })
        })
        .await;
        assert_eq!(out, vec![Outcome::Done, Outcome::Skipped(INTERRUPTED), Outcome::Skipped(INTERRUPTED)]);
    }
}
