//! fabric's built-in policy pack: rules over the resources a plan will create.
//!
//! Each rule has an id (`FAB-<AREA>-<n>`), a severity and the ids of the same check in cdk-nag and
//! checkov (`docs/policy.md` lists them). Every preview and deploy checks the program's resources
//! against [`builtin`] and the stack's own rules ([`Stack::policy`](crate::model::Stack::policy)),
//! applies its waivers ([`Stack::waive`](crate::model::Stack::waive)), shows the findings under
//! the plan, and stops with exit 2, before the first write, on a mandatory one that is not
//! waived. `policy` lists the rules, the findings and the waivers.
//!
//! ```
//! let rules = fabric::policy::builtin();
//! assert!(rules.len() >= 25);
//! assert!(rules.iter().any(|r| r.id() == "FAB-EKS-2"));
//! ```

mod aws_rules;
mod k8s_rules;

use crate::model::policy::{PolicyReport, PolicyView, Rule, Severity, Violations};
use crate::model::{Graph, ValidationErrors};
use std::sync::Arc;

/// A built-in rule: its identity, and a function over the view.
pub(crate) struct Builtin {
    pub id: &'static str,
    pub severity: Severity,
    pub title: &'static str,
    pub equivalents: &'static [&'static str],
    pub check: fn(&PolicyView, &mut Violations),
}

impl Rule for Builtin {
    fn id(&self) -> &str {
        self.id
    }
    fn severity(&self) -> Severity {
        self.severity
    }
    fn title(&self) -> &str {
        self.title
    }
    fn equivalents(&self) -> &[&str] {
        self.equivalents
    }
    fn check(&self, view: &PolicyView, out: &mut Violations) {
        (self.check)(view, out)
    }
}

/// fabric's built-in rules, in catalogue order.
pub fn builtin() -> Vec<Arc<dyn Rule>> {
    aws_rules::RULES.iter().chain(k8s_rules::RULES).map(|r| Arc::new(Builtin { ..*r }) as Arc<dyn Rule>).collect()
}

/// The rules a stack is checked against: the built-in pack, then its own.
pub fn rules_of(graph: &Graph) -> Vec<Arc<dyn Rule>> {
    let mut rules = builtin();
    rules.extend(graph.policy().rules.iter().cloned());
    rules
}

/// Checks `graph` against the built-in and its own rules, with its waivers, as of `today`
/// (`YYYY-MM-DD`). A waiver naming an unknown rule or resource is a validation error.
pub fn check(graph: &Graph, today: &str) -> Result<PolicyReport, ValidationErrors> {
    check_view(graph, &PolicyView::of_graph(graph), today)
}

/// [`check`] of a view already read off `graph` (the CLI reads it once, for the policy and the
/// cost estimate).
pub fn check_view(graph: &Graph, view: &PolicyView, today: &str) -> Result<PolicyReport, ValidationErrors> {
    crate::model::policy::evaluate(view, &rules_of(graph), &graph.policy().waivers, today).map_err(ValidationErrors)
}

/// The catalogue as text: one line per rule (`policy` prints it).
pub fn catalogue(rules: &[Arc<dyn Rule>]) -> String {
    let mut out = String::new();
    for r in rules {
        let also =
            if r.equivalents().is_empty() { String::new() } else { format!(" [{}]", r.equivalents().join(", ")) };
        out.push_str(&format!("  {:<12} {:<9} {}{also}\n", r.id(), r.severity().as_str(), r.title()));
    }
    out
}

#[cfg(test)]
pub(crate) mod tests;
