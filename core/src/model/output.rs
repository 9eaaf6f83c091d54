//! `Output<T>`: a value known now, or only after another resource has been applied.
//!
//! The stack program never waits on the cloud. A field of another resource (a VPC id, an ARN) is an
//! [`Output`] that *refers* to that field; pure functions of outputs are outputs too. Serializing a
//! resource's inputs resolves every output against what is known at that moment (see
//! [`with_resolver`]): known values are written as they are, unknown ones as a marker
//! `{"$unknown": "<urn>.<field>"}` that plans show as `(known after apply)`.

use super::urn::Urn;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

/// The JSON key of the "not known until apply" marker.
pub const UNKNOWN_KEY: &str = "$unknown";

/// A reference to one output field of one resource.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FieldRef {
    pub urn: Urn,
    pub field: String,
}

type ApplyFn = Arc<dyn Fn(Vec<Value>) -> Result<Value, String> + Send + Sync>;

#[derive(Clone)]
enum Expr {
    Known(Value),
    Ref(FieldRef),
    Apply { args: Vec<Expr>, f: ApplyFn },
}

/// Where the values of other resources' outputs come from while inputs are serialized.
pub trait Lookup {
    /// The value of `field` of `urn`'s outputs, or `None` while it is not known.
    fn output(&self, urn: &Urn, field: &str) -> Option<Value>;
}

/// Nothing is known: every reference serializes as the unknown marker.
pub struct NothingKnown;

impl Lookup for NothingKnown {
    fn output(&self, _: &Urn, _: &str) -> Option<Value> {
        None
    }
}

impl<S: std::hash::BuildHasher> Lookup for std::collections::HashMap<Urn, Value, S> {
    fn output(&self, urn: &Urn, field: &str) -> Option<Value> {
        self.get(urn)?.get(field).cloned()
    }
}

impl Expr {
    fn eval(&self, lookup: &dyn Lookup) -> Result<Option<Value>, String> {
        match self {
            Expr::Known(v) => Ok(Some(v.clone())),
            Expr::Ref(r) => Ok(lookup.output(&r.urn, &r.field)),
            Expr::Apply { args, f } => {
                let mut values = Vec::with_capacity(args.len());
                for arg in args {
                    match arg.eval(lookup)? {
                        Some(v) => values.push(v),
                        None => return Ok(None),
                    }
                }
                f(values).map(Some)
            }
        }
    }

    fn refs(&self, out: &mut BTreeSet<FieldRef>) {
        match self {
            Expr::Known(_) => {}
            Expr::Ref(r) => {
                out.insert(r.clone());
            }
            Expr::Apply { args, .. } => args.iter().for_each(|a| a.refs(out)),
        }
    }

    fn first_ref(&self) -> Option<&FieldRef> {
        match self {
            Expr::Known(_) => None,
            Expr::Ref(r) => Some(r),
            Expr::Apply { args, .. } => args.iter().find_map(|a| a.first_ref()),
        }
    }
}

/// A value of type `T` that may be known only after apply.
///
/// ```
/// use fabric_core::model::{Output, Urn, with_resolver, NothingKnown};
/// use std::collections::HashMap;
///
/// let vpc = Urn::new("demo", "aws:ec2:Vpc", "main");
/// let id: Output<String> = Output::reference(vpc.clone(), "id");
/// let arn = id.clone().map(|id| format!("arn:aws:ec2:us-east-2:123:vpc/{id}"));
///
/// // Before apply nothing is known: the value serializes as a marker.
/// let planned = with_resolver(&NothingKnown, || serde_json::to_value(&arn)).0.unwrap();
/// assert_eq!(planned, serde_json::json!({"$unknown": "demo::aws:ec2:Vpc::main.id"}));
///
/// // After apply the reference resolves, and the function runs.
/// let outputs = HashMap::from([(vpc, serde_json::json!({"id": "vpc-1"}))]);
/// let (applied, deps) = with_resolver(&outputs, || serde_json::to_value(&arn));
/// assert_eq!(applied.unwrap(), "arn:aws:ec2:us-east-2:123:vpc/vpc-1");
/// assert_eq!(deps.len(), 1);
/// ```
pub struct Output<T> {
    expr: Expr,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for Output<T> {
    fn clone(&self) -> Self {
        Output { expr: self.expr.clone(), _type: PhantomData }
    }
}

impl<T> fmt::Debug for Output<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.expr {
            Expr::Known(v) => write!(f, "Output({})", crate::model::secret::redact(v)),
            Expr::Ref(r) => write!(f, "Output({}.{})", r.urn, r.field),
            Expr::Apply { .. } => f.write_str("Output(<computed>)"),
        }
    }
}

impl<T: Serialize> Output<T> {
    /// A value known now.
    pub fn known(value: T) -> Self {
        let value = serde_json::to_value(value).expect("an Output value must serialize to JSON");
        Output { expr: Expr::Known(value), _type: PhantomData }
    }
}

impl<T> Output<T> {
    /// A reference to output `field` of the resource `urn`. Typed handles (`VpcRef::id()` …) build
    /// these for you; use this only for resources fabric has no handle type for.
    pub fn reference(urn: Urn, field: impl Into<String>) -> Self {
        Output { expr: Expr::Ref(FieldRef { urn, field: field.into() }), _type: PhantomData }
    }

    /// Every resource field this output is computed from.
    pub fn refs(&self) -> BTreeSet<FieldRef> {
        let mut out = BTreeSet::new();
        self.expr.refs(&mut out);
        out
    }

    /// The value, when it is known without applying anything.
    pub fn known_value(&self) -> Option<T>
    where
        T: DeserializeOwned,
    {
        match &self.expr {
            Expr::Known(v) => serde_json::from_value(v.clone()).ok(),
            _ => None,
        }
    }
}

impl<T: DeserializeOwned + 'static> Output<T> {
    /// A pure function of this output: runs once the value is known.
    pub fn map<U: Serialize + 'static>(self, f: impl Fn(T) -> U + Send + Sync + 'static) -> Output<U> {
        let f: ApplyFn = Arc::new(move |mut args: Vec<Value>| {
            let arg = args.pop().ok_or("missing argument")?;
            let value: T = serde_json::from_value(arg).map_err(|e| e.to_string())?;
            serde_json::to_value(f(value)).map_err(|e| e.to_string())
        });
        Output { expr: Expr::Apply { args: vec![self.expr], f }, _type: PhantomData }
    }

    /// Both values, once both are known.
    pub fn zip<U: DeserializeOwned + Serialize + 'static>(self, other: Output<U>) -> Output<(T, U)>
    where
        T: Serialize,
    {
        let f: ApplyFn = Arc::new(|args: Vec<Value>| Ok(Value::Array(args)));
        Output { expr: Expr::Apply { args: vec![self.expr, other.expr], f }, _type: PhantomData }
    }

    /// All values of a list of outputs, once every one is known.
    pub fn all(outputs: impl IntoIterator<Item = Output<T>>) -> Output<Vec<T>>
    where
        T: Serialize,
    {
        let f: ApplyFn = Arc::new(|args: Vec<Value>| Ok(Value::Array(args)));
        let args = outputs.into_iter().map(|o| o.expr).collect();
        Output { expr: Expr::Apply { args, f }, _type: PhantomData }
    }
}

impl From<&str> for Output<String> {
    fn from(value: &str) -> Self {
        Output::known(value.to_string())
    }
}

impl From<String> for Output<String> {
    fn from(value: String) -> Self {
        Output::known(value)
    }
}

impl From<&Output<String>> for Output<String> {
    fn from(value: &Output<String>) -> Self {
        value.clone()
    }
}

struct ResolveScope {
    lookup: *const (dyn Lookup + 'static),
    deps: BTreeSet<Urn>,
}

thread_local! {
    static SCOPE: RefCell<Vec<ResolveScope>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` (which serializes inputs) with outputs resolved through `lookup`, and returns its
/// result together with every resource the serialized outputs referred to.
///
/// Outside such a scope, references serialize as unknown and record no dependencies.
pub fn with_resolver<R>(lookup: &dyn Lookup, f: impl FnOnce() -> R) -> (R, BTreeSet<Urn>) {
    struct Guard;
    impl Drop for Guard {
        fn drop(&mut self) {
            SCOPE.with(|s| s.borrow_mut().pop());
        }
    }
    // SAFETY: the pointer is only dereferenced while `f` runs, inside this function's frame where
    // `lookup` is borrowed; the guard removes it before the borrow ends, even on panic.
    let erased: *const (dyn Lookup + '_) = lookup;
    let erased: *const (dyn Lookup + 'static) = unsafe { std::mem::transmute(erased) };
    SCOPE.with(|s| s.borrow_mut().push(ResolveScope { lookup: erased, deps: BTreeSet::new() }));
    let guard = Guard;
    let result = f();
    let deps = SCOPE.with(|s| s.borrow_mut().last_mut().map(|sc| std::mem::take(&mut sc.deps)));
    drop(guard);
    (result, deps.unwrap_or_default())
}

fn unknown_marker(expr: &Expr) -> Value {
    let label = expr.first_ref().map(|r| format!("{}.{}", r.urn, r.field)).unwrap_or_default();
    serde_json::json!({ UNKNOWN_KEY: label })
}

impl<T> Serialize for Output<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let resolved = SCOPE.with(|s| {
            let mut scopes = s.borrow_mut();
            let Some(scope) = scopes.last_mut() else {
                return Ok(match &self.expr {
                    Expr::Known(v) => v.clone(),
                    other => unknown_marker(other),
                });
            };
            let mut refs = BTreeSet::new();
            self.expr.refs(&mut refs);
            scope.deps.extend(refs.into_iter().map(|r| r.urn));
            // SAFETY: see `with_resolver`: the scope is popped before the lookup's borrow ends.
            let lookup = unsafe { &*scope.lookup };
            self.expr.eval(lookup).map(|v| v.unwrap_or_else(|| unknown_marker(&self.expr)))
        });
        match resolved {
            Ok(value) => value.serialize(serializer),
            Err(message) => Err(serde::ser::Error::custom(message)),
        }
    }
}

impl<'de, T: Deserialize<'de> + Serialize> Deserialize<'de> for Output<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Output::known)
    }
}

/// Whether a serialized value contains an unknown marker anywhere.
pub fn contains_unknown(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.contains_key(UNKNOWN_KEY) || map.values().any(contains_unknown),
        Value::Array(items) => items.iter().any(contains_unknown),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    #[test]
    fn known_values_serialize_plainly_without_a_scope() {
        let o = Output::known(42u16);
        assert_eq!(serde_json::to_value(&o).unwrap(), json!(42));
        assert_eq!(o.known_value(), Some(42));
    }

    #[test]
    fn zip_and_all_wait_for_every_argument() {
        let a = Urn::new("s", "t", "a");
        let b = Urn::new("s", "t", "b");
        let both = Output::<String>::reference(a.clone(), "id")
            .zip(Output::<String>::reference(b.clone(), "id"))
            .map(|(x, y)| format!("{x}+{y}"));
        let half = HashMap::from([(a.clone(), json!({"id": "1"}))]);
        let (v, deps) = with_resolver(&half, || serde_json::to_value(&both));
        assert!(contains_unknown(&v.unwrap()));
        assert_eq!(deps, BTreeSet::from([a.clone(), b.clone()]));
        let full = HashMap::from([(a.clone(), json!({"id": "1"})), (b.clone(), json!({"id": "2"}))]);
        let (v, _) = with_resolver(&full, || serde_json::to_value(&both));
        assert_eq!(v.unwrap(), json!("1+2"));
        let all = Output::all(vec![Output::<String>::reference(a, "id"), Output::known("x".to_string())]);
        let (v, _) = with_resolver(&full, || serde_json::to_value(&all));
        assert_eq!(v.unwrap(), json!(["1", "x"]));
    }

    #[test]
    fn a_type_mismatch_is_a_serialization_error_not_a_panic() {
        let a = Urn::new("s", "t", "a");
        let port = Output::<u16>::reference(a.clone(), "port").map(|p| p + 1);
        let outputs = HashMap::from([(a, json!({"port": "not a number"}))]);
        let (v, _) = with_resolver(&outputs, || serde_json::to_value(&port));
        assert!(v.is_err());
    }

    #[test]
    fn nested_scopes_keep_their_own_dependencies() {
        let a = Urn::new("s", "t", "a");
        let o = Output::<String>::reference(a.clone(), "id");
        let (inner, outer) = with_resolver(&NothingKnown, || {
            let (_, inner) = with_resolver(&NothingKnown, || serde_json::to_value(&o));
            inner
        });
        assert_eq!(inner, BTreeSet::from([a]));
        assert!(outer.is_empty());
    }
}
