//! The stack: what the program declares, validated into a [`Graph`] before anything runs.

use super::options::Options;
use super::output::{Lookup, NothingKnown, with_resolver};
use super::urn::Urn;
use super::validation::{ValidationError, ValidationErrors};
use crate::engine::provider::Provider;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;
use serde_json::Value;
use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

type InputsFn = Arc<dyn Fn() -> Result<Value, serde_json::Error> + Send + Sync>;

/// Where an environment's configuration comes from.
pub(crate) struct EnvConfig {
    pub(crate) env: String,
    pub(crate) file: std::path::PathBuf,
}

struct Decl {
    urn: Urn,
    provider: Arc<dyn Provider>,
    inputs: InputsFn,
    depends_on: Vec<Urn>,
    options: Options,
}

/// What a stack program builds: resources by URN, exports, and the problems found so far.
///
/// Builders add themselves with `.add(&mut stack)`; every problem is recorded, and
/// [`Stack::finish`] reports them all together.
///
/// ```
/// use fabric_core::model::Stack;
/// use fabric_core::testing::{MemoryCloud, MemoryProvider, Thing};
/// use std::sync::Arc;
/// // A stack program uses fabric's builders (`Vpc::builder()…add(&mut s)?`); here, a test double.
/// let provider = Arc::new(MemoryProvider { cloud: MemoryCloud::new() });
/// let mut s = Stack::new("demo");
/// let thing = Thing::new("main").add(&mut s, &provider);
/// s.export("thing_id", thing.id());
/// let graph = s.finish().unwrap();
/// assert_eq!(graph.nodes().len(), 1);
/// ```
pub struct Stack {
    pub(crate) name: String,
    pub(crate) config: Option<EnvConfig>,
    decls: Vec<Decl>,
    index: HashMap<Urn, usize>,
    errors: Vec<ValidationError>,
    warnings: Vec<ValidationError>,
    exports: BTreeMap<String, InputsFn>,
    extensions: HashMap<TypeId, Box<dyn Any + Send>>,
    region: Option<String>,
    /// Options of the [`Stack::with`] scopes open now, outermost first.
    scopes: Vec<Options>,
    /// How other stacks' outputs are read ([`Stack::reference`]).
    references: Option<super::reference::ReferenceReader>,
    /// Deploys of this stack are atomic ([`Stack::set_atomic`]).
    atomic: bool,
    /// A production environment, when the program says so ([`Stack::set_production`]).
    production: Option<bool>,
    /// The stack's own policy rules and its waivers.
    policy: super::policy::Declared,
    /// Usage assumptions of the cost estimate ([`Stack::assume`]).
    assumptions: BTreeMap<String, f64>,
}

/// Whether `name` may name a resource: 1–128 of `A-Z a-z 0-9 - _ . /`, not starting with `/`.
pub fn valid_resource_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('/')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

impl Stack {
    pub fn new(name: impl Into<String>) -> Self {
        Stack {
            name: name.into(),
            config: None,
            decls: Vec::new(),
            index: HashMap::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            exports: BTreeMap::new(),
            extensions: HashMap::new(),
            region: None,
            scopes: Vec::new(),
            references: None,
            atomic: false,
            production: None,
            policy: Default::default(),
            assumptions: BTreeMap::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A stack for environment `env` (`dev`, `prod`, one per person …): named `<stack>-<env>`, so
    /// that each environment has its own state and tags, with its config read from `file`.
    pub fn for_env(stack: &str, env: &str, file: impl Into<std::path::PathBuf>) -> Self {
        let mut s = Stack::new(format!("{stack}-{env}"));
        s.config = Some(EnvConfig { env: env.to_string(), file: file.into() });
        s
    }

    /// The environment, when the stack was started with `--env`.
    pub fn env(&self) -> Option<&str> {
        self.config.as_ref().map(|c| c.env.as_str())
    }

    /// How [`Stack::reference`] reads other stacks (the command line sets it to this stack's
    /// state backend; tests give their own).
    pub fn set_reference_reader(&mut self, reader: super::reference::ReferenceReader) {
        self.references = Some(reader);
    }

    /// The outputs another stack exported at its last deploy, read from the state backend this
    /// stack uses (local files beside its own, or the same bucket and prefix): the team's shared
    /// zone, state bucket, network ids, without copying values between programs.
    pub fn reference(&self, stack: &str) -> crate::Result<super::reference::StackReference> {
        let error = |problem: String, fix: String| {
            crate::Error::Invalid(ValidationErrors(vec![ValidationError {
                urn: Urn::new(stack, "fabric:StackReference", stack),
                field: "stack".into(),
                problem,
                fix,
            }]))
        };
        let Some(read) = &self.references else {
            return Err(error(
                format!("stack `{}` reads stack `{stack}`, and this run has no state backend to read it from", self.name),
                "run the program through its command line (`cargo xtask <verb> <stack>`), or give tests a reader with `Stack::set_reference_reader`".into(),
            ));
        };
        match read(stack) {
            Ok(Some(outputs)) => Ok(super::reference::StackReference::new(stack, outputs)),
            Ok(None) => Err(error(
                format!("stack `{stack}` has no state in this backend"),
                format!("deploy stack `{stack}` first, with the same backend as this one (`--backend`, `--local`)"),
            )),
            Err(e) => Err(error(
                format!("reading the outputs of stack `{stack}`: {e}"),
                "check the backend and its key (FABRIC_PASSPHRASE)".into(),
            )),
        }
    }

    /// The URN a resource of `type_name` called `name` gets in this stack.
    pub fn urn(&self, type_name: &str, name: &str) -> Urn {
        Urn::new(&self.name, type_name, name)
    }

    /// Declares a resource. Builders call this; it records naming problems instead of failing, so
    /// that all problems are reported together.
    pub fn declare<I>(&mut self, provider: Arc<dyn Provider>, name: &str, inputs: I, depends_on: Vec<Urn>) -> Urn
    where
        I: Serialize + Send + Sync + 'static,
    {
        let urn = self.urn(provider.type_name(), name);
        if !valid_resource_name(name) {
            self.errors.push(ValidationError {
                urn: urn.clone(),
                field: "name".into(),
                problem: format!("`{name}` is not a valid resource name"),
                fix: "use 1 to 128 characters of letters, digits, `-`, `_`, `.` and `/`".into(),
            });
        }
        if self.index.contains_key(&urn) {
            self.errors.push(ValidationError {
                urn: urn.clone(),
                field: "name".into(),
                problem: format!("another {} is already called `{name}`", provider.type_name()),
                fix: "give every resource of a type its own name".into(),
            });
            return urn;
        }
        let inputs = Arc::new(inputs);
        let options = self.scopes.iter().fold(Options::default(), |acc, o| acc.merged(o));
        self.index.insert(urn.clone(), self.decls.len());
        self.decls.push(Decl {
            urn: urn.clone(),
            provider,
            inputs: Arc::new(move || serde_json::to_value(&*inputs)),
            depends_on,
            options,
        });
        urn
    }

    /// Runs `add` (any builder's `.add(s)`, or several) with `options` on every resource it
    /// declares: the one way to give a resource options, whatever declared it.
    ///
    /// `import` needs exactly one resource in the scope. An `alias` names the first resource
    /// declared in the scope (a component's own name); its parts named after it (`db/…`, `db-…`)
    /// get the same rename, so a whole component can be renamed without a replacement.
    ///
    /// ```
    /// use fabric_core::model::{Options, Stack};
    /// use fabric_core::testing::{MemoryCloud, MemoryProvider, Thing};
    /// use std::sync::Arc;
    /// let provider = Arc::new(MemoryProvider { cloud: MemoryCloud::new() });
    /// let mut s = Stack::new("demo");
    /// let vpc = s.with(Options::new().import("vpc-0abc").alias("old-main"), |s| {
    ///     Thing::new("main").add(s, &provider)
    /// });
    /// let graph = s.finish().unwrap();
    /// let options = &graph.get(&vpc.urn).unwrap().options;
    /// assert_eq!((options.import.as_deref(), options.aliases.as_slice()), (Some("vpc-0abc"), &["old-main".to_string()][..]));
    /// ```
    pub fn with<R>(&mut self, options: Options, add: impl FnOnce(&mut Stack) -> R) -> R {
        let first = self.decls.len();
        let (import, aliases) = (options.import.clone(), options.aliases.clone());
        self.scopes.push(Options { import: None, aliases: Vec::new(), ..options });
        let result = add(self);
        self.scopes.pop();
        let declared = first..self.decls.len();
        let scope_urn = || Urn::new(&self.name, "fabric:Options", "with");
        if let Some(id) = import {
            if declared.len() == 1 {
                self.decls[first].options.import = Some(id);
            } else {
                let names: Vec<String> = self.decls[declared.clone()].iter().map(|d| d.urn.display_short()).collect();
                self.errors.push(ValidationError {
                    urn: self.decls.get(first).map(|d| d.urn.clone()).unwrap_or_else(scope_urn),
                    field: "import".into(),
                    problem: format!(
                        "`import(\"{id}\")` adopts one resource, and this scope declared {}{}",
                        declared.len(),
                        if names.is_empty() { String::new() } else { format!(": {}", names.join(", ")) }
                    ),
                    fix: "import each part on its own: `s.set_options(&urn, Options::new().import(\"<id>\"))` for the one it is".into(),
                });
            }
        }
        if !aliases.is_empty() {
            if declared.is_empty() {
                self.errors.push(ValidationError {
                    urn: scope_urn(),
                    field: "alias".into(),
                    problem: format!("alias `{}` is given to a scope that declared nothing", aliases.join("`, `")),
                    fix: "put the builder whose old name it is inside the scope".into(),
                });
            }
            let root = self.decls.get(first).map(|d| d.urn.name().to_string()).unwrap_or_default();
            for i in declared {
                let name = self.decls[i].urn.name().to_string();
                let rest = if name == root {
                    Some("")
                } else {
                    name.strip_prefix(root.as_str()).filter(|r| r.starts_with(['/', '-']))
                };
                if let Some(rest) = rest {
                    let renamed: Vec<String> = aliases.iter().map(|a| format!("{a}{rest}")).collect();
                    self.decls[i].options.aliases.extend(renamed);
                }
            }
        }
        result
    }

    /// Adds `options` to a resource already declared (for example one part of a component).
    pub fn set_options(&mut self, urn: &Urn, options: Options) {
        match self.index.get(urn) {
            Some(&i) => self.decls[i].options = self.decls[i].options.merged(&options),
            None => self.errors.push(ValidationError {
                urn: urn.clone(),
                field: "options".into(),
                problem: format!("options are given to `{urn}`, which is not declared in stack `{}`", self.name),
                fix: "declare the resource first (`.add(&mut s)`), then give it options".into(),
            }),
        }
    }

    /// Makes `urn` wait for `on` (both declared): for an order the inputs do not show, such as
    /// Kubernetes namespaces before the objects in them.
    pub fn depend(&mut self, urn: &Urn, on: &Urn) {
        if let Some(&i) = self.index.get(urn)
            && !self.decls[i].depends_on.contains(on)
        {
            self.decls[i].depends_on.push(on.clone());
        }
    }

    /// Records problems found by a builder.
    pub fn report(&mut self, errors: impl IntoIterator<Item = ValidationError>) {
        self.errors.extend(errors);
    }

    /// Records a setting that works but is risky (a public endpoint open to the internet): shown
    /// with every plan, never an error. The fix says how to close it, or how to say it is meant.
    pub fn warn(&mut self, urn: &Urn, field: &str, problem: impl Into<String>, fix: impl Into<String>) {
        self.warnings.push(ValidationError {
            urn: urn.clone(),
            field: field.into(),
            problem: problem.into(),
            fix: fix.into(),
        });
    }

    /// Whether a resource with this URN has been declared.
    pub fn contains(&self, urn: &Urn) -> bool {
        self.index.contains_key(urn)
    }

    /// A stack output, printed after deploy and kept in state (`outputs` verb).
    pub fn export<T: 'static>(&mut self, name: &str, value: impl Into<super::Output<T>>) {
        let value = value.into();
        if self.exports.contains_key(name) {
            self.errors.push(ValidationError {
                urn: Urn::new(&self.name, "fabric:Export", name),
                field: "name".into(),
                problem: format!("output `{name}` is exported twice; only one value can be kept"),
                fix: "export each output once, or give the second one another name".into(),
            });
            return;
        }
        self.exports.insert(name.to_string(), Arc::new(move || serde_json::to_value(&value)));
    }

    /// The AWS region this stack lives in (from its config): deploys use it whatever the
    /// environment's default region is.
    pub fn set_region(&mut self, region: &str) {
        self.region = Some(region.to_string());
    }

    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// Makes every deploy of this stack atomic, as `deploy --atomic` does: a deploy that fails
    /// returns the fabric to its last successful revision (for example from a prod config).
    pub fn set_atomic(&mut self, atomic: bool) {
        self.atomic = atomic;
    }

    /// Says whether this stack is a production environment, for the policy rules that hold "in
    /// prod" (deletion protection, Multi-AZ). Without it: an environment named `prod` or
    /// `production` is one.
    pub fn set_production(&mut self, production: bool) {
        self.production = Some(production);
    }

    /// Whether the policy rules "in prod" apply to this stack.
    pub fn production(&self) -> bool {
        self.production.unwrap_or_else(|| matches!(self.env(), Some("prod" | "production")))
    }

    /// Adds a policy rule of the stack's own (or of the organisation's pack) to the built-in
    /// ones: checked by every preview and deploy, listed by `policy`.
    pub fn policy(&mut self, rule: impl super::policy::Rule + 'static) {
        self.policy.rules.push(Arc::new(rule));
    }

    /// Accepts policy rule `rule` for `target` (a resource's URN, or a component by name: its
    /// name and the names under it), with the reason in code. A waiver without a reason is
    /// refused; `.until("YYYY-MM-DD")` makes it run out, after which the rule counts as broken
    /// again. Shown in every plan, in `--json` and in the deploy history.
    ///
    /// ```
    /// use fabric_core::model::Stack;
    /// let mut s = Stack::new("demo");
    /// s.waive("FAB-ALB-1", "edge", "access logs go to the shared logging account").until("2027-03-01");
    /// assert_eq!(s.waivers().len(), 1);
    /// ```
    pub fn waive<T: super::policy::WaiverTarget + ?Sized>(
        &mut self,
        rule: &str,
        target: &T,
        reason: &str,
    ) -> WaiverBuilder<'_> {
        let waiver = super::policy::Waiver {
            rule: rule.to_string(),
            scope: target.scope(),
            reason: reason.trim().to_string(),
            until: None,
        };
        if waiver.reason.is_empty() {
            self.errors.push(ValidationError {
                urn: waiver.urn(&self.name),
                field: "reason".into(),
                problem: format!("the waiver of rule `{rule}` gives no reason"),
                fix: "say why the rule does not apply here, in the waiver: `s.waive(rule, target, \"why\")`".into(),
            });
        }
        self.policy.waivers.push(waiver);
        let index = self.policy.waivers.len() - 1;
        WaiverBuilder { stack: self, index }
    }

    /// The waivers declared so far.
    pub fn waivers(&self) -> &[super::policy::Waiver] {
        &self.policy.waivers
    }

    /// Overrides a usage assumption of the cost estimate (`nat_gb_per_month`, …; `cost` lists
    /// them with their defaults): what the plan's monthly cost assumes for usage-priced parts.
    pub fn assume(&mut self, name: &str, value: f64) {
        self.assumptions.insert(name.to_string(), value);
    }

    /// Whether an output of this name is exported.
    pub fn has_export(&self, name: &str) -> bool {
        self.exports.contains_key(name)
    }

    /// Per-stack data that builders share (for example, the subnets declared per VPC, to check
    /// overlaps as they are added).
    pub fn extension<T: Default + Send + 'static>(&mut self) -> &mut T {
        self.extensions
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Box::new(T::default()))
            .downcast_mut::<T>()
            .expect("extension map is keyed by TypeId")
    }

    /// Validates the whole graph (references, cycles) and returns it, or every problem found.
    pub fn finish(mut self) -> Result<Graph, ValidationErrors> {
        let production = self.production();
        let mut deps_of: Vec<Vec<Urn>> = Vec::with_capacity(self.decls.len());
        for decl in &self.decls {
            let (value, refs) = with_resolver(&NothingKnown, || (decl.inputs)());
            if let Err(e) = &value {
                self.errors.push(ValidationError {
                    urn: decl.urn.clone(),
                    field: "inputs".into(),
                    problem: format!("the inputs cannot be serialized: {e}"),
                    fix: "check the values passed to the builder".into(),
                });
            }
            if let Ok(inputs) = &value {
                self.errors.extend(check_options(&decl.urn, &decl.options, inputs, &self.index));
            }
            let mut deps: Vec<Urn> = refs
                .into_iter()
                .chain(decl.depends_on.iter().cloned())
                .chain(decl.options.depends_on.iter().cloned())
                .collect();
            deps.sort();
            deps.dedup();
            for dep in &deps {
                if dep == &decl.urn {
                    continue;
                }
                if !self.index.contains_key(dep) {
                    self.errors.push(ValidationError {
                        urn: decl.urn.clone(),
                        field: "depends_on".into(),
                        problem: format!("refers to `{dep}`, which is not declared in stack `{}`", self.name),
                        fix: "add that resource to the stack (`.add(&mut s)`) before referring to it, or remove the reference".into(),
                    });
                }
            }
            deps_of.push(deps);
        }

        let mut graph = DiGraph::<usize, ()>::with_capacity(self.decls.len(), self.decls.len() * 2);
        let nodes: Vec<NodeIndex> = (0..self.decls.len()).map(|i| graph.add_node(i)).collect();
        for (i, deps) in deps_of.iter().enumerate() {
            for dep in deps {
                if let Some(&j) = self.index.get(dep) {
                    graph.add_edge(nodes[j], nodes[i], ());
                }
            }
        }
        for scc in petgraph::algo::tarjan_scc(&graph) {
            let is_cycle = scc.len() > 1 || graph.contains_edge(scc[0], scc[0]);
            if is_cycle {
                let mut members: Vec<String> = scc.iter().map(|n| self.decls[graph[*n]].urn.display_short()).collect();
                members.sort();
                let first = scc.iter().map(|n| &self.decls[graph[*n]].urn).min().expect("non-empty").clone();
                self.errors.push(ValidationError {
                    urn: first,
                    field: "depends_on".into(),
                    problem: format!("dependency cycle: {}", members.join(" -> ")),
                    fix: "break the cycle, for example by moving a rule into its own resource".into(),
                });
            }
        }
        if !self.errors.is_empty() {
            return Err(ValidationErrors(root_causes_first(self.errors)));
        }
        // Dependency order that keeps the program's declaration order wherever it is free to
        // (Kahn's algorithm, lowest declaration index first), so plans read like the program.
        let mut waiting: Vec<usize> =
            nodes.iter().map(|n| graph.neighbors_directed(*n, petgraph::Direction::Incoming).count()).collect();
        let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> =
            (0..nodes.len()).filter(|&i| waiting[i] == 0).map(std::cmp::Reverse).collect();
        let mut order = Vec::with_capacity(nodes.len());
        while let Some(std::cmp::Reverse(i)) = ready.pop() {
            order.push(nodes[i]);
            for next in graph.neighbors_directed(nodes[i], petgraph::Direction::Outgoing) {
                let j = graph[next];
                waiting[j] -= 1;
                if waiting[j] == 0 {
                    ready.push(std::cmp::Reverse(j));
                }
            }
        }
        let mut decls: Vec<Option<Decl>> = self.decls.into_iter().map(Some).collect();
        let mut out = Vec::with_capacity(decls.len());
        for n in order {
            let i = graph[n];
            let decl = decls[i].take().expect("each node once");
            let mut deps = std::mem::take(&mut deps_of[i]);
            deps.retain(|d| d != &decl.urn);
            out.push(Node { urn: decl.urn, provider: decl.provider, inputs: decl.inputs, deps, options: decl.options });
        }
        let mut graph = Graph::new(self.name, out, self.exports);
        graph.region = self.region;
        graph.warnings = self.warnings;
        graph.atomic = self.atomic;
        graph.production = production;
        graph.policy = self.policy;
        graph.assumptions = self.assumptions;
        Ok(graph)
    }
}

/// A waiver being declared: [`Stack::waive`]`(…).until("2027-03-01")`.
pub struct WaiverBuilder<'a> {
    stack: &'a mut Stack,
    index: usize,
}

impl WaiverBuilder<'_> {
    /// The waiver runs out on this day (`YYYY-MM-DD`, UTC): from then on the rule counts as
    /// broken again. A date that does not parse is refused when the stack is finished.
    pub fn until(self, date: &str) {
        let ok = super::policy::valid_date(date);
        let waiver = &mut self.stack.policy.waivers[self.index];
        waiver.until = Some(date.to_string());
        if !ok {
            let rule = waiver.rule.clone();
            let urn = self.stack.policy.waivers[self.index].urn(&self.stack.name);
            self.stack.errors.push(ValidationError {
                urn,
                field: "until".into(),
                problem: format!("the waiver of rule `{rule}` runs out on `{date}`, which is not a date"),
                fix: "write the day as YYYY-MM-DD, for example `.until(\"2027-03-01\")`".into(),
            });
        }
    }
}

/// A validated stack: resources in dependency order.
pub struct Graph {
    pub(crate) stack: String,
    region: Option<String>,
    pub(crate) nodes: Vec<Node>,
    pub(crate) index: HashMap<Urn, usize>,
    exports: BTreeMap<String, InputsFn>,
    warnings: Vec<ValidationError>,
    atomic: bool,
    production: bool,
    policy: super::policy::Declared,
    assumptions: BTreeMap<String, f64>,
}

/// One declared resource.
pub struct Node {
    pub urn: Urn,
    pub provider: Arc<dyn Provider>,
    inputs: InputsFn,
    /// The resources this one refers to (through outputs) or was told to depend on.
    pub deps: Vec<Urn>,
    /// How the engine treats it ([`Stack::with`]).
    pub options: Options,
}

impl Node {
    pub fn type_name(&self) -> &'static str {
        self.provider.type_name()
    }

    /// The inputs, with outputs of other resources resolved through `lookup` (unknown ones as
    /// markers).
    pub fn inputs(&self, lookup: &dyn Lookup) -> Result<Value, String> {
        with_resolver(lookup, || (self.inputs)()).0.map_err(|e| e.to_string())
    }
}

impl Graph {
    fn new(stack: String, nodes: Vec<Node>, exports: BTreeMap<String, InputsFn>) -> Self {
        let index = nodes.iter().enumerate().map(|(i, n)| (n.urn.clone(), i)).collect();
        Graph {
            stack,
            nodes,
            index,
            exports,
            region: None,
            warnings: Vec::new(),
            atomic: false,
            production: false,
            policy: Default::default(),
            assumptions: BTreeMap::new(),
        }
    }

    /// Whether the policy rules "in prod" apply ([`Stack::set_production`]).
    pub fn production(&self) -> bool {
        self.production
    }

    /// The stack's own rules and its waivers.
    pub fn policy(&self) -> &super::policy::Declared {
        &self.policy
    }

    /// The usage assumptions the stack overrides ([`Stack::assume`]).
    pub fn assumptions(&self) -> &BTreeMap<String, f64> {
        &self.assumptions
    }

    /// Whether the program asked for atomic deploys ([`Stack::set_atomic`]).
    pub fn atomic(&self) -> bool {
        self.atomic
    }

    /// A recorded revision as a graph: each resource with the inputs it had then (references
    /// already resolved: constants), the dependencies it had then, and the stack outputs then.
    /// `provider_of` finds each type's provider, `options_of` each resource's options (those of
    /// the program where it still declares the resource). What `rollback` plans and applies.
    pub fn of_revision(
        stack: &str,
        region: Option<&str>,
        inputs: &BTreeMap<String, Value>,
        deps: &BTreeMap<String, Vec<Urn>>,
        outputs: &BTreeMap<String, Value>,
        provider_of: impl Fn(&str) -> Option<Arc<dyn Provider>>,
        options_of: impl Fn(&Urn) -> Options,
    ) -> Result<Graph, String> {
        let mut s = Stack::new(stack);
        if let Some(region) = region {
            s.set_region(region);
        }
        for (key, value) in inputs {
            let urn = Urn::parse(key).ok_or_else(|| format!("`{key}` is not a resource URN"))?;
            if urn.stack() != stack {
                return Err(format!("it holds `{key}`, a resource of stack `{}`", urn.stack()));
            }
            let provider = provider_of(urn.type_name())
                .ok_or_else(|| format!("no provider for type `{}` (of `{key}`) in this program", urn.type_name()))?;
            let value = value.clone();
            let on = deps.get(key).cloned().unwrap_or_default();
            s.with(options_of(&urn), |s| s.declare(provider, urn.name(), value, on));
        }
        for (name, value) in outputs {
            let value = value.clone();
            s.exports.insert(name.clone(), Arc::new(move || Ok(value.clone())));
        }
        s.finish().map_err(|e| e.to_string())
    }

    /// What [`Stack::warn`] recorded: settings that work but are risky.
    pub fn warnings(&self) -> &[ValidationError] {
        &self.warnings
    }

    /// The graph without the nodes `drop` selects (and without dependencies on them): for runs
    /// that leave part of the program aside, such as Kubernetes objects when no cluster is reachable.
    pub fn without(self, drop: impl Fn(&Node) -> bool) -> Graph {
        let dropped: std::collections::HashSet<Urn> =
            self.nodes.iter().filter(|n| drop(n)).map(|n| n.urn.clone()).collect();
        let nodes = self
            .nodes
            .into_iter()
            .filter(|n| !dropped.contains(&n.urn))
            .map(|mut n| {
                n.deps.retain(|d| !dropped.contains(d));
                n
            })
            .collect();
        let mut graph = Graph::new(self.stack, nodes, self.exports);
        graph.region = self.region;
        graph.warnings = self.warnings;
        graph.atomic = self.atomic;
        graph.production = self.production;
        graph.policy = self.policy;
        graph.assumptions = self.assumptions;
        graph
    }

    /// The region the program set ([`Stack::set_region`]).
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    pub fn stack(&self) -> &str {
        &self.stack
    }

    /// The resources, each after everything it depends on.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn get(&self, urn: &Urn) -> Option<&Node> {
        self.index.get(urn).map(|&i| &self.nodes[i])
    }

    /// The stack outputs resolved through `lookup` (unknown ones as markers).
    pub fn exports(&self, lookup: &dyn Lookup) -> BTreeMap<String, Value> {
        self.exports
            .iter()
            .map(|(k, f)| {
                let v = with_resolver(lookup, || f()).0.unwrap_or(Value::Null);
                (k.clone(), v)
            })
            .collect()
    }
}

/// Options that cannot work for this resource: an ignored field it does not have, an alias that
/// names another declared resource, or itself.
fn check_options(urn: &Urn, options: &Options, inputs: &Value, declared: &HashMap<Urn, usize>) -> Vec<ValidationError> {
    let mut errors = Vec::new();
    let fields: Vec<&String> = inputs.as_object().map(|m| m.keys().collect()).unwrap_or_default();
    for path in &options.ignore_changes {
        let top = path.split('.').next().unwrap_or_default();
        if !fields.iter().any(|f| f.as_str() == top) {
            let mut known: Vec<&str> = fields.iter().map(|f| f.as_str()).collect();
            known.sort();
            errors.push(ValidationError {
                urn: urn.clone(),
                field: "ignore_changes".into(),
                problem: format!("`{path}`: {} has no input field `{top}`", urn.type_name()),
                fix: format!("name one of its fields: {}", known.join(", ")),
            });
        }
    }
    for alias in &options.aliases {
        let old = Urn::new(urn.stack(), urn.type_name(), alias);
        if !valid_resource_name(alias) {
            errors.push(ValidationError {
                urn: urn.clone(),
                field: "alias".into(),
                problem: format!("`{alias}` is not a valid resource name"),
                fix: "give the name the resource had before".into(),
            });
        } else if &old == urn || declared.contains_key(&old) {
            errors.push(ValidationError {
                urn: urn.clone(),
                field: "alias".into(),
                problem: format!("alias `{alias}` names a resource the program declares"),
                fix: "an alias is a name the resource no longer has: remove it, or rename the other resource".into(),
            });
        }
    }
    errors
}

/// Problems that only follow from another problem (the parts of a component declared twice) are
/// left out of the list and counted under their root cause, so
/// that the first screen of output is the fix to make.
fn root_causes_first(errors: Vec<ValidationError>) -> Vec<ValidationError> {
    let is_duplicate = |e: &ValidationError| e.field == "name" && e.problem.contains("is already called");
    // The problem a problem follows from, if any: the parts of a component declared twice (same
    // name, or a name under it) follow from the first duplicate reported, the component's own.
    // (Builders on an invalid resource report nothing that only follows from its invalidity: see
    // `Network::is_valid`.)
    let cause_of = |i: usize| -> Option<Urn> {
        let name = errors[i].urn.name();
        errors[..i]
            .iter()
            .filter(|d| is_duplicate(d))
            .find(|d| {
                d.urn != errors[i].urn && (name == d.urn.name() || name.starts_with(&format!("{}/", d.urn.name())))
            })
            .map(|d| d.urn.clone())
    };
    let causes: Vec<Option<Urn>> = (0..errors.len()).map(cause_of).collect();
    // Follow each chain to an error that has no cause of its own.
    let root_of = |mut u: Urn| {
        for _ in 0..errors.len() {
            match errors.iter().position(|e| e.urn == u).and_then(|i| causes[i].clone()) {
                Some(next) if next != u => u = next,
                _ => break,
            }
        }
        u
    };
    let mut followers: HashMap<Urn, Vec<String>> = HashMap::new();
    let mut roots = Vec::new();
    for (e, cause) in errors.iter().zip(&causes) {
        match cause {
            Some(c) => followers.entry(root_of(c.clone())).or_default().push(e.urn.display_short()),
            None => roots.push(e.clone()),
        }
    }
    if roots.is_empty() {
        return errors;
    }
    for urn in followers.keys().cloned().collect::<Vec<_>>() {
        if let Some(first) = roots.iter_mut().find(|r| r.urn == urn) {
            let mut names = followers.remove(&urn).unwrap_or_default();
            names.sort();
            names.dedup();
            let n = names.len();
            let shown: Vec<String> = names.iter().take(3).cloned().collect();
            first.problem.push_str(&format!(
                " (problems of {n} resource{} built on it follow from this one and are not shown: {}{})",
                if n == 1 { "" } else { "s" },
                shown.join(", "),
                if n > 3 { ", …" } else { "" }
            ));
        }
    }
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Config {
        domain: String,
        replicas: u32,
    }

    #[test]
    fn config_errors_say_what_to_do() {
        let no_env = Stack::new("acme").config::<Config>().unwrap_err().to_string();
        assert!(no_env.contains("field `env`") && no_env.contains("pass `--env <name>`"), "{no_env}");

        let dir = tempfile::tempdir().unwrap();
        let missing =
            Stack::for_env("acme", "prod", dir.path().join("prod.toml")).config::<Config>().unwrap_err().to_string();
        assert!(missing.contains("fabric:Config \"prod\"") && missing.contains("create "), "{missing}");

        let file = dir.path().join("dev.toml");
        std::fs::write(&file, "domain = \"dev.acme.example\"\nreplicas = \"two\"\n").unwrap();
        let wrong = Stack::for_env("acme", "dev", &file).config::<Config>().unwrap_err().to_string();
        assert!(
            wrong.contains("field `config`") && wrong.contains("dev.toml:2: key `replicas`: invalid type"),
            "{wrong}"
        );

        // A choice spelled wrong names the valid ones.
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct WithNat {
            nat: Nat,
        }
        #[derive(serde::Deserialize, Debug)]
        #[serde(rename_all = "kebab-case")]
        enum Nat {
            None,
            Single,
            PerZone,
        }
        std::fs::write(&file, "# the network\nnat = \"perzone\"\n").unwrap();
        let typo = Stack::for_env("acme", "dev", &file).config::<WithNat>().unwrap_err().to_string();
        assert!(typo.contains("dev.toml:2: key `nat`: unknown variant `perzone`"), "{typo}");
        assert!(typo.contains("`none`, `single`, `per-zone`"), "{typo}");
    }

    #[test]
    fn an_output_exported_twice_is_an_error() {
        let mut s = Stack::new("s");
        s.export("url", super::super::Output::known("a".to_string()));
        s.export("url", super::super::Output::known("b".to_string()));
        let err = s.finish().err().unwrap().to_string();
        assert!(err.contains("output `url` is exported twice"), "{err}");
    }

    #[test]
    fn pictures_leave_out_edges_implied_by_others() {
        use crate::testing::{MemoryCloud, MemoryProvider};
        let p: Arc<dyn Provider> = Arc::new(MemoryProvider { cloud: MemoryCloud::new() });
        let mut s = Stack::new("g");
        let a = s.declare(p.clone(), "a", 1, vec![]);
        let b = s.declare(p.clone(), "b", 2, vec![a.clone()]);
        s.declare(p, "c", 3, vec![a, b]);
        let g = s.finish().unwrap();
        assert_eq!(g.drawn_deps(), vec![vec![], vec![0], vec![1]]);
        assert_eq!(g.nodes()[2].deps.len(), 2, "the graph itself keeps every dependency");
        assert_eq!(g.to_mermaid().matches("-->").count(), 2);
    }

    #[test]
    fn each_environment_is_its_own_stack() {
        let s = Stack::for_env("acme", "staging", "x.toml");
        assert_eq!((s.name(), s.env()), ("acme-staging", Some("staging")));
        assert_eq!(Stack::new("acme").env(), None);
    }
}
