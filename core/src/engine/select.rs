//! Targeted runs: `--target <urn>` (that resource and what it needs) and `--exclude <urn>` (that
//! resource and what needs it), on preview, deploy, destroy and refresh.

use super::plan::Plan;
use crate::model::{Graph, Urn};
use crate::state::State;
use std::collections::{BTreeSet, HashSet};

/// The resources a run may touch, named on the command line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selection {
    pub targets: Vec<Urn>,
    pub excludes: Vec<Urn>,
}

/// What a run does to its selection, which decides what comes along with a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Deploy, preview: a target brings what it depends on; an exclusion keeps out what depends on it.
    Apply,
    /// Destroy: a target brings what depends on it (that goes first); an exclusion keeps what it
    /// depends on.
    Destroy,
    /// Refresh: exactly what is named.
    Read,
}

impl Selection {
    /// Resolves what the user wrote (a full URN, `type::name`, or a name that only one resource
    /// has) against the program and state; an error names what was not found and what is close.
    pub fn resolve(
        targets: &[String],
        excludes: &[String],
        graph: Option<&Graph>,
        state: &State,
    ) -> Result<Option<Selection>, String> {
        if targets.is_empty() && excludes.is_empty() {
            return Ok(None);
        }
        let mut all: BTreeSet<Urn> = state.resources.keys().cloned().collect();
        if let Some(g) = graph {
            all.extend(g.nodes().iter().map(|n| n.urn.clone()));
        }
        let one = |flag: &str, text: &String| -> Result<Urn, String> {
            let matches: Vec<&Urn> = all
                .iter()
                .filter(|u| {
                    u.as_str() == text || format!("{}::{}", u.type_name(), u.name()) == *text || u.name() == text
                })
                .collect();
            match matches.as_slice() {
                [one] => Ok((*one).clone()),
                [] => {
                    let close: Vec<String> = all
                        .iter()
                        .filter(|u| u.as_str().contains(text.as_str()) || text.contains(u.name()))
                        .take(5)
                        .map(|u| format!("'{u}'"))
                        .collect();
                    Err(format!(
                        "`{flag} {text}` names no resource of stack `{}` (in the program or in state){}\n    fix: name a resource by its URN (`cargo xtask state <stack> list` shows them){}",
                        state.stack,
                        if all.is_empty() { " — the stack has none" } else { "" },
                        if close.is_empty() { String::new() } else { format!("; close: {}", close.join(", ")) }
                    ))
                }
                many => Err(format!(
                    "`{flag} {text}` names {} resources: {}\n    fix: write the full URN of the one you mean",
                    many.len(),
                    many.iter().map(|u| format!("'{u}'")).collect::<Vec<_>>().join(", ")
                )),
            }
        };
        let targets = targets.iter().map(|t| one("--target", t)).collect::<Result<Vec<_>, _>>()?;
        let excludes = excludes.iter().map(|t| one("--exclude", t)).collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Selection { targets, excludes }))
    }

    /// The URNs this selection lets a run touch.
    pub fn members(&self, direction: Direction, graph: Option<&Graph>, state: &State) -> HashSet<Urn> {
        // Edges "a depends on b", from the program where it declares the resource, else from state.
        let deps_of = |u: &Urn| -> Vec<Urn> {
            match graph.and_then(|g| g.get(u)) {
                Some(n) => n.deps.clone(),
                None => state.resources.get(u).map(|r| r.deps.clone()).unwrap_or_default(),
            }
        };
        let mut all: Vec<Urn> = state.resources.keys().cloned().collect();
        if let Some(g) = graph {
            all.extend(g.nodes().iter().map(|n| n.urn.clone()).filter(|u| !state.resources.contains_key(u)));
        }
        let dependents_of = |u: &Urn| -> Vec<Urn> { all.iter().filter(|x| deps_of(x).contains(u)).cloned().collect() };
        let closure = |start: &[Urn], next: &dyn Fn(&Urn) -> Vec<Urn>| -> HashSet<Urn> {
            let mut seen: HashSet<Urn> = HashSet::new();
            let mut todo: Vec<Urn> = start.to_vec();
            while let Some(u) = todo.pop() {
                if seen.insert(u.clone()) {
                    todo.extend(next(&u));
                }
            }
            seen
        };
        type Next<'a> = &'a dyn Fn(&Urn) -> Vec<Urn>;
        let (bring, keep_out): (Next, Next) = match direction {
            Direction::Apply => (&deps_of, &dependents_of),
            Direction::Destroy => (&dependents_of, &deps_of),
            Direction::Read => (&|_| Vec::new(), &|_| Vec::new()),
        };
        let mut members: HashSet<Urn> =
            if self.targets.is_empty() { all.iter().cloned().collect() } else { closure(&self.targets, bring) };
        for u in closure(&self.excludes, keep_out) {
            members.remove(&u);
        }
        members
    }

    /// Drops the steps outside the selection and says so in the plan.
    pub fn restrict(&self, plan: &mut Plan, graph: Option<&Graph>, state: &State) {
        let direction = if graph.is_some() { Direction::Apply } else { Direction::Destroy };
        let members = self.members(direction, graph, state);
        let before = plan.steps.iter().filter(|s| !s.retired).count();
        // A replaced resource's old instance goes with that resource only.
        plan.steps.retain(|s| members.contains(&s.urn));
        let kept = plan.steps.iter().filter(|s| !s.retired).count();
        plan.partial = Some(self.describe(kept, before));
    }

    /// What a partial run says: the flags as given, and how many resources it considers.
    pub fn describe(&self, kept: usize, of: usize) -> String {
        let mut flags = Vec::new();
        flags.extend(self.targets.iter().map(|t| format!("--target '{t}'")));
        flags.extend(self.excludes.iter().map(|t| format!("--exclude '{t}'")));
        format!(
            "partial run ({}): {kept} of {of} resources are considered; the other {} are left as they are, whatever the program or state says",
            flags.join(" "),
            of - kept
        )
    }
}
