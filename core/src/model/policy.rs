//! Policy: rules over the resources a plan will create, and waivers declared in code.
//!
//! A [`Rule`] looks at every resource's final inputs (the values the provider will send, with
//! `{"$unknown": "<urn>.<field>"}` where a value is known only after apply) and at the graph, and
//! reports [`Violation`]s in the validation format: resource, field, why, how to fix it. Its
//! [`Severity`] says what a violation does: `mandatory` stops preview and deploy with exit 2
//! before the first write, `advisory` warns. A [`Waiver`] ([`crate::model::Stack::waive`]) accepts
//! one rule's violations on one resource (or a component's resources) with a reason, optionally
//! until a date; an expired waiver counts as none, and a waiver that matches no violation is
//! reported as stale.
//!
//! fabric's built-in rules live in `fabric::policy`; a stack adds its own with
//! [`crate::model::Stack::policy`].

use super::urn::Urn;
use super::validation::ValidationError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a violation of a rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Stops preview and deploy (exit 2) before the first write, unless waived.
    Mandatory,
    /// Shown with every plan; never stops anything.
    Advisory,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Mandatory => "mandatory",
            Severity::Advisory => "advisory",
        }
    }
}

/// One resource as the rules see it: its final inputs, unknown values marked.
#[derive(Clone, Debug)]
pub struct PolicyResource {
    pub urn: Urn,
    pub type_name: String,
    pub inputs: Value,
    pub deps: Vec<Urn>,
}

impl PolicyResource {
    /// The input at a JSON pointer (`/spec/replicas`).
    pub fn at(&self, pointer: &str) -> Option<&Value> {
        self.inputs.pointer(pointer)
    }

    /// The boolean at `pointer`; `None` when absent, null or not a boolean.
    pub fn flag(&self, pointer: &str) -> Option<bool> {
        self.at(pointer).and_then(Value::as_bool)
    }

    /// The string at `pointer`.
    pub fn text(&self, pointer: &str) -> Option<&str> {
        self.at(pointer).and_then(Value::as_str)
    }

    /// The number at `pointer`.
    pub fn number(&self, pointer: &str) -> Option<f64> {
        self.at(pointer).and_then(Value::as_f64)
    }

    /// Whether the value at `pointer` is set: present, not null (an unknown value is set).
    pub fn is_set(&self, pointer: &str) -> bool {
        self.at(pointer).is_some_and(|v| !v.is_null())
    }

    /// The resource `pointer` refers to, when its value is a reference known only after apply.
    pub fn refers_to(&self, pointer: &str) -> Option<Urn> {
        let marker = self.at(pointer)?.get("$unknown")?.as_str()?;
        Urn::parse(marker.rsplit_once('.').map(|(urn, _)| urn).unwrap_or(marker))
    }
}

/// Everything a rule can look at: the resources the program declares, in dependency order.
#[derive(Clone, Debug, Default)]
pub struct PolicyView {
    pub stack: String,
    /// A production environment (`prod`, `production`, or [`crate::model::Stack::set_production`]):
    /// rules "in prod" apply.
    pub production: bool,
    pub resources: Vec<PolicyResource>,
    index: BTreeMap<Urn, usize>,
}

impl PolicyView {
    pub fn new(stack: &str, production: bool, resources: Vec<PolicyResource>) -> Self {
        let index = resources.iter().enumerate().map(|(i, r)| (r.urn.clone(), i)).collect();
        PolicyView { stack: stack.to_string(), production, resources, index }
    }

    /// The program's graph as rules see it (inputs resolved with nothing known yet).
    pub fn of_graph(graph: &super::Graph) -> Self {
        let resources = graph
            .nodes()
            .iter()
            .map(|n| PolicyResource {
                urn: n.urn.clone(),
                type_name: n.type_name().to_string(),
                inputs: n.inputs(&super::NothingKnown).unwrap_or(Value::Null),
                deps: n.deps.clone(),
            })
            .collect();
        PolicyView::new(graph.stack(), graph.production(), resources)
    }

    /// The resources of one type (`aws:rds:DbInstance`).
    pub fn of_type<'a>(&'a self, type_name: &'a str) -> impl Iterator<Item = &'a PolicyResource> + 'a {
        self.resources.iter().filter(move |r| r.type_name == type_name)
    }

    pub fn get(&self, urn: &Urn) -> Option<&PolicyResource> {
        self.index.get(urn).map(|&i| &self.resources[i])
    }

    /// The resources that depend on `urn`.
    pub fn dependents<'a>(&'a self, urn: &'a Urn) -> impl Iterator<Item = &'a PolicyResource> + 'a {
        self.resources.iter().filter(move |r| r.deps.contains(urn))
    }
}

/// A rule broken by one resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub urn: Urn,
    /// The input field at fault.
    pub field: String,
    pub problem: String,
    pub fix: String,
}

/// Where a rule reports what it found.
#[derive(Default)]
pub struct Violations(pub Vec<Violation>);

impl Violations {
    pub fn add(&mut self, urn: &Urn, field: &str, problem: impl Into<String>, fix: impl Into<String>) {
        self.0.push(Violation { urn: urn.clone(), field: field.into(), problem: problem.into(), fix: fix.into() });
    }
}

/// A policy rule. Built-in rules are `fabric::policy::builtin()`; a stack registers its own with
/// [`crate::model::Stack::policy`], and an organisation shares a pack as a crate of rules.
///
/// ```
/// use fabric_core::model::policy::{PolicyView, Rule, Severity, Violations};
/// /// Every bucket's name starts with the team's prefix.
/// struct BucketPrefix;
/// impl Rule for BucketPrefix {
///     fn id(&self) -> &str { "ACME-S3-1" }
///     fn severity(&self) -> Severity { Severity::Mandatory }
///     fn title(&self) -> &str { "bucket names start with `acme-`" }
///     fn check(&self, view: &PolicyView, out: &mut Violations) {
///         for b in view.of_type("aws:s3:Bucket") {
///             if !b.text("/bucket").is_some_and(|n| n.starts_with("acme-")) {
///                 out.add(&b.urn, "bucket", "the name lacks the team prefix", "name it `acme-…`");
///             }
///         }
///     }
/// }
/// assert_eq!(BucketPrefix.id(), "ACME-S3-1");
/// ```
pub trait Rule: Send + Sync {
    /// A stable id, `<PACK>-<AREA>-<n>` (`FAB-EKS-1`), that waivers name.
    fn id(&self) -> &str;
    fn severity(&self) -> Severity;
    /// What the rule asks for, in a line.
    fn title(&self) -> &str;
    /// The same check in other tools (`cdk-nag AwsSolutions-EKS1`, `checkov CKV_AWS_39`).
    fn equivalents(&self) -> &[&str] {
        &[]
    }
    fn check(&self, view: &PolicyView, out: &mut Violations);
}

/// What a waiver covers: one resource, or every resource of a component (its name, and the
/// names under it: `edge`, `edge/https`, `edge-logs`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WaiverScope {
    Resource(Urn),
    Component(String),
}

impl WaiverScope {
    pub fn covers(&self, urn: &Urn) -> bool {
        match self {
            WaiverScope::Resource(u) => u == urn,
            WaiverScope::Component(name) => {
                let n = urn.name();
                n == name
                    || n.strip_prefix(name.as_str()).is_some_and(|rest| rest.starts_with('/') || rest.starts_with('-'))
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            WaiverScope::Resource(u) => u.display_short(),
            WaiverScope::Component(name) => format!("`{name}` and its parts"),
        }
    }
}

/// What a waiver can name: a resource's URN (`db.urn()`), or a component by name (`"edge"`).
pub trait WaiverTarget {
    fn scope(&self) -> WaiverScope;
}

impl WaiverTarget for Urn {
    fn scope(&self) -> WaiverScope {
        WaiverScope::Resource(self.clone())
    }
}

impl WaiverTarget for str {
    fn scope(&self) -> WaiverScope {
        WaiverScope::Component(self.to_string())
    }
}

impl WaiverTarget for String {
    fn scope(&self) -> WaiverScope {
        WaiverScope::Component(self.clone())
    }
}

/// A rule accepted, in code, for a resource: why, and until when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiver {
    pub rule: String,
    pub scope: WaiverScope,
    pub reason: String,
    /// `YYYY-MM-DD`: from this day on the waiver counts as none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

impl Waiver {
    /// Whether the waiver has expired on `today` (`YYYY-MM-DD`).
    pub fn expired(&self, today: &str) -> bool {
        self.until.as_deref().is_some_and(|until| until <= today)
    }

    /// The URN a problem with the waiver is reported under: its resource, or (for a component)
    /// `fabric:Waiver` with the component's name.
    pub fn urn(&self, stack: &str) -> Urn {
        match &self.scope {
            WaiverScope::Resource(u) => u.clone(),
            WaiverScope::Component(name) => Urn::new(stack, "fabric:Waiver", name),
        }
    }

    pub fn describe(&self) -> String {
        let until = self.until.as_deref().map(|u| format!(", until {u}")).unwrap_or_default();
        format!("{} on {}: {}{until}", self.rule, self.scope.describe(), self.reason)
    }
}

/// Whether `date` is a calendar date written `YYYY-MM-DD`.
pub fn valid_date(date: &str) -> bool {
    date.len() == 10 && humantime::parse_rfc3339(&format!("{date}T00:00:00Z")).is_ok()
}

/// Today's date in UTC, `YYYY-MM-DD`.
pub fn today() -> String {
    humantime::format_rfc3339(std::time::SystemTime::now()).to_string()[..10].to_string()
}

/// The rules and waivers a stack declared ([`crate::model::Stack::policy`], [`crate::model::Stack::waive`]).
#[derive(Clone, Default)]
pub struct Declared {
    pub rules: Vec<Arc<dyn Rule>>,
    pub waivers: Vec<Waiver>,
}

/// One violation with its rule and what became of it.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub rule: String,
    pub severity: Severity,
    pub title: String,
    #[serde(flatten)]
    pub violation: Violation,
    /// The waiver that accepts it (an expired one included: then it is not accepted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiver: Option<Waiver>,
    /// Its waiver has expired: it counts as not waived.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub expired: bool,
}

impl Finding {
    /// Accepted by a waiver that has not expired.
    pub fn waived(&self) -> bool {
        self.waiver.is_some() && !self.expired
    }

    /// Stops preview and deploy.
    pub fn blocks(&self) -> bool {
        self.severity == Severity::Mandatory && !self.waived()
    }
}

/// What the rules found in a stack.
#[derive(Clone, Debug, Serialize)]
pub struct PolicyReport {
    /// How many rules were checked.
    pub rules: usize,
    pub findings: Vec<Finding>,
    /// Waivers that accept nothing: their rule is not broken by what they name.
    pub stale: Vec<Waiver>,
}

impl PolicyReport {
    pub fn blocking(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.blocks())
    }

    pub fn blocks(&self) -> bool {
        self.blocking().next().is_some()
    }

    /// The waivers that accepted something (for the deploy history).
    pub fn waivers_used(&self) -> Vec<Waiver> {
        let mut used: Vec<Waiver> = Vec::new();
        for w in self.findings.iter().filter(|f| f.waived()).filter_map(|f| f.waiver.as_ref()) {
            if !used.contains(w) {
                used.push(w.clone());
            }
        }
        used
    }

    /// The report as text, the lines a plan shows under it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let count = |sev: Severity, waived: bool| {
            self.findings.iter().filter(|f| f.severity == sev && f.waived() == waived).count()
        };
        let (mandatory, advisory) = (count(Severity::Mandatory, false), count(Severity::Advisory, false));
        let waived = self.findings.iter().filter(|f| f.waived()).count();
        out.push_str(&format!(
            "Policy: {} rules; {mandatory} mandatory, {advisory} advisory, {waived} waived{}\n",
            self.rules,
            if self.stale.is_empty() { String::new() } else { format!(", {} stale waivers", self.stale.len()) }
        ));
        let mut findings: Vec<&Finding> = self.findings.iter().collect();
        findings.sort_by_key(|f| (f.waived(), f.severity, f.rule.clone(), f.violation.urn.clone()));
        for f in findings {
            let v = &f.violation;
            let label = match (f.waived(), f.expired) {
                (true, _) => "waived".to_string(),
                (false, true) => format!("{} (waiver expired)", f.severity.as_str()),
                (false, false) => f.severity.as_str().to_string(),
            };
            out.push_str(&format!(
                "  {label} {}: {} field `{}`: {}\n",
                f.rule,
                v.urn.display_short(),
                v.field,
                v.problem
            ));
            match &f.waiver {
                Some(w) if f.waived() => out.push_str(&format!(
                    "      reason: {}{}\n",
                    w.reason,
                    w.until.as_deref().map(|u| format!(" (until {u})")).unwrap_or_default()
                )),
                Some(w) => out.push_str(&format!(
                    "      the waiver ran out on {}: {}\n      fix: {}\n",
                    w.until.as_deref().unwrap_or("?"),
                    w.reason,
                    v.fix
                )),
                None => out.push_str(&format!("      fix: {}\n", v.fix)),
            }
        }
        for w in &self.stale {
            out.push_str(&format!(
                "  stale waiver {}: {} does not break the rule\n      fix: remove the waiver `{}`\n",
                w.rule,
                w.scope.describe(),
                w.describe()
            ));
        }
        out
    }
}

/// Checks `view` against `rules` and applies `waivers` as of `today` (`YYYY-MM-DD`).
///
/// A waiver of a rule id no rule has is an error (in the validation format), as is a rule id
/// that two rules share.
pub fn evaluate(
    view: &PolicyView,
    rules: &[Arc<dyn Rule>],
    waivers: &[Waiver],
    today: &str,
) -> Result<PolicyReport, Vec<ValidationError>> {
    let mut errors = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for r in rules {
        if !seen.insert(r.id().to_string()) {
            errors.push(ValidationError {
                urn: Urn::new(&view.stack, "fabric:Rule", r.id()),
                field: "id".into(),
                problem: format!("two rules have the id `{}`", r.id()),
                fix: "give each rule of the stack's policy its own id".into(),
            });
        }
    }
    for w in waivers {
        if !seen.contains(&w.rule) {
            let mut known: Vec<&str> = rules.iter().map(|r| r.id()).collect();
            known.sort();
            let near: Vec<&str> = known
                .iter()
                .copied()
                .filter(|k| k.rsplit_once('-').map(|(p, _)| p) == w.rule.rsplit_once('-').map(|(p, _)| p))
                .collect();
            errors.push(ValidationError {
                urn: w.urn(&view.stack),
                field: "waive".into(),
                problem: format!("waives rule `{}`, and no rule has that id", w.rule),
                fix: if near.is_empty() {
                    "name a rule `policy` lists (`cargo xtask policy <stack>`)".to_string()
                } else {
                    format!("name one of {} (`cargo xtask policy <stack>` lists them all)", near.join(", "))
                },
            });
        }
        if let WaiverScope::Resource(u) = &w.scope
            && view.get(u).is_none()
        {
            errors.push(ValidationError {
                urn: u.clone(),
                field: "waive".into(),
                problem: format!("waives rule `{}` for a resource the stack does not declare", w.rule),
                fix: "name a resource of this stack (its handle's `.urn()`), or a component by name".into(),
            });
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut findings = Vec::new();
    let mut used = vec![false; waivers.len()];
    for rule in rules {
        let mut found = Violations::default();
        rule.check(view, &mut found);
        for violation in found.0 {
            let hit = waivers.iter().position(|w| w.rule == rule.id() && w.scope.covers(&violation.urn));
            if let Some(i) = hit {
                used[i] = true;
            }
            let waiver = hit.map(|i| waivers[i].clone());
            let expired = waiver.as_ref().is_some_and(|w| w.expired(today));
            findings.push(Finding {
                rule: rule.id().to_string(),
                severity: rule.severity(),
                title: rule.title().to_string(),
                violation,
                waiver,
                expired,
            });
        }
    }
    let stale = waivers.iter().zip(used).filter(|(_, used)| !used).map(|(w, _)| w.clone()).collect();
    Ok(PolicyReport { rules: rules.len(), findings, stale })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct NoPublic;
    impl Rule for NoPublic {
        fn id(&self) -> &str {
            "T-1"
        }
        fn severity(&self) -> Severity {
            Severity::Mandatory
        }
        fn title(&self) -> &str {
            "nothing public"
        }
        fn check(&self, view: &PolicyView, out: &mut Violations) {
            for r in &view.resources {
                if r.flag("/public") == Some(true) {
                    out.add(&r.urn, "public", "it is public", "make it private");
                }
            }
        }
    }

    fn view() -> PolicyView {
        let res = |name: &str, public: bool| PolicyResource {
            urn: Urn::new("s", "t:x:Y", name),
            type_name: "t:x:Y".into(),
            inputs: json!({"public": public}),
            deps: vec![],
        };
        PolicyView::new("s", false, vec![res("edge", true), res("edge/logs", true), res("db", false)])
    }

    fn waiver(scope: WaiverScope, until: Option<&str>) -> Waiver {
        Waiver { rule: "T-1".into(), scope, reason: "because".into(), until: until.map(String::from) }
    }

    fn rules() -> Vec<Arc<dyn Rule>> {
        vec![Arc::new(NoPublic)]
    }

    #[test]
    fn a_mandatory_violation_blocks_until_waived_and_a_component_waiver_covers_its_parts() {
        let report = evaluate(&view(), &rules(), &[], "2026-12-07").unwrap();
        assert_eq!(report.blocking().count(), 2);
        let w = waiver(WaiverScope::Component("edge".into()), None);
        let report = evaluate(&view(), &rules(), &[w], "2026-12-07").unwrap();
        assert!(!report.blocks(), "{}", report.render());
        assert_eq!(report.waivers_used().len(), 1);
    }

    #[test]
    fn an_expired_waiver_fails_like_the_rule_and_a_stale_one_is_reported() {
        let expired = waiver(WaiverScope::Resource(Urn::new("s", "t:x:Y", "edge")), Some("2026-12-07"));
        let stale = waiver(WaiverScope::Resource(Urn::new("s", "t:x:Y", "db")), Some("2027-01-01"));
        let report = evaluate(&view(), &rules(), &[expired, stale.clone()], "2026-12-07").unwrap();
        let edge = report.findings.iter().find(|f| f.violation.urn.name() == "edge").unwrap();
        assert!(edge.expired && edge.blocks());
        assert_eq!(report.stale, vec![stale]);
        let text = report.render();
        assert!(text.contains("mandatory (waiver expired) T-1"), "{text}");
        assert!(text.contains("stale waiver T-1"), "{text}");
        // The day before, the same waiver holds.
        let held = waiver(WaiverScope::Resource(Urn::new("s", "t:x:Y", "edge")), Some("2026-12-08"));
        let report = evaluate(&view(), &rules(), &[held], "2026-12-07").unwrap();
        assert!(!report.findings.iter().find(|f| f.violation.urn.name() == "edge").unwrap().blocks());
    }

    #[test]
    fn a_waiver_of_an_unknown_rule_or_resource_is_an_error() {
        let mut w = waiver(WaiverScope::Component("edge".into()), None);
        w.rule = "T-9".into();
        let errors = evaluate(&view(), &rules(), &[w], "2026-12-07").unwrap_err();
        assert!(errors[0].problem.contains("no rule has that id"), "{errors:?}");
        assert!(errors[0].fix.contains("T-1"), "{errors:?}");
        let w = waiver(WaiverScope::Resource(Urn::new("s", "t:x:Y", "nope")), None);
        assert!(evaluate(&view(), &rules(), &[w], "2026-12-07").is_err());
    }

    #[test]
    fn dates_are_checked_and_compared() {
        assert!(valid_date("2027-03-01"));
        assert!(valid_date("2028-02-29"));
        for bad in ["2027-02-30", "2027-3-1", "01-03-2027", "tomorrow", "2027-13-01"] {
            assert!(!valid_date(bad), "{bad}");
        }
        assert!(valid_date(&today()));
    }

    #[test]
    fn a_component_scope_covers_its_name_and_parts_only() {
        let scope = WaiverScope::Component("edge".into());
        assert!(scope.covers(&Urn::new("s", "t", "edge")));
        assert!(scope.covers(&Urn::new("s", "t", "edge/https")));
        assert!(scope.covers(&Urn::new("s", "t", "edge-logs")));
        assert!(!scope.covers(&Urn::new("s", "t", "edges")));
    }
}
