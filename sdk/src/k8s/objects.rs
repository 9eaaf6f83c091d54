//! The plain objects: `Namespace`, `ConfigMap`, and `KubeSecret` (a Kubernetes Secret whose values
//! stay secret: encrypted in state, `[secret]` in plans and renders).

use super::{ClusterRef, Manifest, ObjectRef};
use crate::model::{Output, Secret, Stack};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use typed_builder::TypedBuilder;

/// A JSON pointer segment for a map key.
pub(crate) fn pointer_key(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// A namespace.
///
/// ```
/// use fabric::k8s::{ClusterRef, Namespace};
/// let mut s = fabric::model::Stack::new("demo");
/// let ns = Namespace::builder().name("shop").cluster(&ClusterRef::kubeconfig("kind")).build().add(&mut s).unwrap();
/// assert_eq!(ns.name(), "shop");
/// ```
#[derive(TypedBuilder)]
pub struct Namespace<'a> {
    #[builder(setter(into))]
    name: String,
    cluster: &'a ClusterRef,
    #[builder(default)]
    labels: BTreeMap<String, String>,
    /// Deny all traffic to and from its pods but DNS, until their own policies allow it
    /// ([`super::policy`]); `false` leaves the namespace open.
    #[builder(default = true)]
    isolated: bool,
}

impl Namespace<'_> {
    pub fn add(self, s: &mut Stack) -> crate::Result<ObjectRef> {
        let m =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.name, "labels": self.labels}});
        let ns = Manifest::new(m).add(s, self.cluster)?;
        if self.isolated {
            Manifest::new(super::policy::default_deny(&self.name)).add(s, self.cluster)?;
            Manifest::new(super::policy::allow_dns(&self.name)).add(s, self.cluster)?;
        }
        Ok(ns)
    }
}

/// A ConfigMap.
///
/// ```
/// use fabric::k8s::{ClusterRef, ConfigMap};
/// let mut s = fabric::model::Stack::new("demo");
/// let cluster = ClusterRef::kubeconfig("kind");
/// ConfigMap::builder().name("web").namespace("shop").cluster(&cluster)
///     .data([("LOG_LEVEL".to_string(), "info".to_string())].into()).build().add(&mut s).unwrap();
/// assert!(s.finish().is_ok());
/// ```
#[derive(TypedBuilder)]
pub struct ConfigMap<'a> {
    #[builder(setter(into))]
    name: String,
    #[builder(default = "default".into(), setter(into))]
    namespace: String,
    cluster: &'a ClusterRef,
    #[builder(default)]
    data: BTreeMap<String, String>,
}

impl ConfigMap<'_> {
    pub fn add(self, s: &mut Stack) -> crate::Result<ObjectRef> {
        let m = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": self.name, "namespace": self.namespace}, "data": self.data});
        Manifest::new(m).add(s, self.cluster)
    }
}

/// A Kubernetes Secret: its values are [`Secret`]s (a database URL, a generated password), kept
/// encrypted in state and delivered only in the request that applies the object.
///
/// ```
/// use fabric::k8s::{ClusterRef, KubeSecret};
/// use fabric::model::{Output, Secret};
/// let mut s = fabric::model::Stack::new("demo");
/// let cluster = ClusterRef::kubeconfig("kind");
/// let token = Output::known(Secret::new("s3cr3t".to_string()));
/// KubeSecret::builder().name("api").namespace("shop").cluster(&cluster)
///     .values(vec![("TOKEN".into(), token)]).build().add(&mut s).unwrap();
/// let graph = s.finish().unwrap();
/// let rendered = fabric::k8s::render::render_objects(&graph);
/// assert!(rendered[0].yaml.contains("TOKEN: \"[secret]\""), "{}", rendered[0].yaml);
/// ```
#[derive(TypedBuilder)]
pub struct KubeSecret<'a> {
    #[builder(setter(into))]
    name: String,
    #[builder(default = "default".into(), setter(into))]
    namespace: String,
    cluster: &'a ClusterRef,
    values: Vec<(String, Output<Secret<String>>)>,
}

impl KubeSecret<'_> {
    pub fn add(self, s: &mut Stack) -> crate::Result<ObjectRef> {
        let keys: BTreeMap<&str, &str> = self.values.iter().map(|(k, _)| (k.as_str(), "")).collect();
        let mut m = Manifest::new(json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": self.name, "namespace": self.namespace}, "stringData": keys}));
        for (key, value) in self.values {
            let value = value.map(|v: Secret<String>| serde_json::to_value(v).unwrap_or(Value::Null));
            m.inject(&format!("/stringData/{}", pointer_key(&key)), value);
        }
        m.add(s, self.cluster)
    }
}
