//! Per-resource options: how the engine treats a resource, whatever builder declared it.
//!
//! One mechanism for every builder: [`Stack::with`](super::Stack::with) gives options to every
//! resource declared inside it (a component's parts included), and
//! [`Stack::set_options`](super::Stack::set_options) to one resource already declared. The plan
//! shows each option where it changes what happens.

use super::urn::Urn;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Options of one resource (the anchors' resource options: Pulumi's `protect`, `retainOnDelete`,
/// `ignoreChanges`, `deleteBeforeReplace`, `dependsOn`, `aliases`, `customTimeouts`, `import`).
///
/// ```
/// use fabric_core::model::{Options, Stack, Timeouts};
/// use fabric_core::testing::{MemoryCloud, MemoryProvider, Thing};
/// use std::sync::Arc;
/// use std::time::Duration;
/// // In a stack program the closure declares fabric builders (`Vpc::builder()…add(s)`).
/// let provider = Arc::new(MemoryProvider { cloud: MemoryCloud::new() });
/// let mut s = Stack::new("demo");
/// let thing = s.with(Options::new().protect().ignore_changes(["value"]), |s| {
///     Thing::new("main").add(s, &provider)
/// });
/// s.set_options(&thing.urn, Options::new().timeouts(Timeouts::new().delete(Duration::from_secs(1800))));
/// let graph = s.finish().unwrap();
/// let options = &graph.get(&thing.urn).unwrap().options;
/// assert!(options.protect && options.ignore_changes == ["value"]);
/// assert_eq!(options.timeouts.delete, Some(Duration::from_secs(1800)));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Delete and replace are refused by the plan (recorded in state, so that removing the
    /// resource from the program, or `destroy`, is refused too).
    pub protect: bool,
    /// Deleting leaves the resource in the cloud and drops it from state (also the old instance
    /// of a replacement).
    pub retain_on_delete: bool,
    /// Input fields (`tags`, or a path into one: `tags.team`) whose changes in the program are
    /// not applied: the recorded value is kept.
    pub ignore_changes: Vec<String>,
    /// A replacement deletes the old instance before it creates the new one.
    pub delete_before_replace: bool,
    /// Resources this one waits for, beyond those its inputs refer to.
    pub depends_on: Vec<Urn>,
    /// Names this resource had before (same type, same stack): renaming it in code moves its
    /// state instead of replacing it.
    pub aliases: Vec<String>,
    /// How long creating, updating and deleting may wait for the cloud.
    pub timeouts: Timeouts,
    /// The cloud id of an existing resource to adopt instead of creating one.
    pub import: Option<String>,
}

/// Custom waits per operation; `None` keeps the provider's own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    #[serde(default, skip_serializing_if = "Option::is_none", with = "humantime_serde_opt")]
    pub create: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "humantime_serde_opt")]
    pub update: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "humantime_serde_opt")]
    pub delete: Option<Duration>,
}

impl Timeouts {
    pub fn new() -> Self {
        Timeouts::default()
    }
    pub fn create(mut self, d: Duration) -> Self {
        self.create = Some(d);
        self
    }
    pub fn update(mut self, d: Duration) -> Self {
        self.update = Some(d);
        self
    }
    pub fn delete(mut self, d: Duration) -> Self {
        self.delete = Some(d);
        self
    }
    fn or(self, other: Timeouts) -> Timeouts {
        Timeouts {
            create: self.create.or(other.create),
            update: self.update.or(other.update),
            delete: self.delete.or(other.delete),
        }
    }
}

/// Durations in state as `90m`, `1h 30m`.
mod humantime_serde_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| humantime::parse_duration(&t).map_err(serde::de::Error::custom)).transpose()
    }
}

impl Options {
    pub fn new() -> Self {
        Options::default()
    }

    /// Refuse to delete or replace this resource.
    pub fn protect(mut self) -> Self {
        self.protect = true;
        self
    }

    /// Leave it in the cloud when it is deleted (dropped from state only).
    pub fn retain_on_delete(mut self) -> Self {
        self.retain_on_delete = true;
        self
    }

    /// Keep the recorded value of these input fields (`tags`, `tags.team`).
    pub fn ignore_changes<S: Into<String>>(mut self, fields: impl IntoIterator<Item = S>) -> Self {
        self.ignore_changes.extend(fields.into_iter().map(Into::into));
        self
    }

    /// Delete the old instance before creating its replacement.
    pub fn delete_before_replace(mut self) -> Self {
        self.delete_before_replace = true;
        self
    }

    /// Wait for `other` as well.
    pub fn depends_on(mut self, other: &Urn) -> Self {
        self.depends_on.push(other.clone());
        self
    }

    /// This resource was called `old_name` (same type) before.
    pub fn alias(mut self, old_name: impl Into<String>) -> Self {
        self.aliases.push(old_name.into());
        self
    }

    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Adopt the existing resource with this cloud id (a VPC id, a zone id, a role name, a
    /// Kubernetes `namespace/name` …) instead of creating one.
    pub fn import(mut self, id: impl Into<String>) -> Self {
        self.import = Some(id.into());
        self
    }

    /// `self` with `inner` on top: flags add up, lists join, `inner`'s timeouts and import win.
    pub(crate) fn merged(&self, inner: &Options) -> Options {
        let join = |a: &[String], b: &[String]| {
            let mut v = a.to_vec();
            v.extend(b.iter().filter(|x| !a.contains(x)).cloned());
            v
        };
        let mut depends_on = self.depends_on.clone();
        depends_on.extend(inner.depends_on.iter().filter(|d| !self.depends_on.contains(d)).cloned());
        Options {
            protect: self.protect || inner.protect,
            retain_on_delete: self.retain_on_delete || inner.retain_on_delete,
            ignore_changes: join(&self.ignore_changes, &inner.ignore_changes),
            delete_before_replace: self.delete_before_replace || inner.delete_before_replace,
            depends_on,
            aliases: join(&self.aliases, &inner.aliases),
            timeouts: inner.timeouts.or(self.timeouts),
            import: inner.import.clone().or_else(|| self.import.clone()),
        }
    }

    /// What state keeps of these options: what must hold when the resource is no longer in the
    /// program (a protected resource removed from the code is still protected).
    pub fn recorded(&self) -> RecordedOptions {
        RecordedOptions {
            protect: self.protect,
            retain_on_delete: self.retain_on_delete,
            delete_timeout: self.timeouts.delete,
        }
    }
}

/// The options state records with a resource.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedOptions {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub protect: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retain_on_delete: bool,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "humantime_serde_opt")]
    pub delete_timeout: Option<Duration>,
}

impl RecordedOptions {
    pub fn is_default(&self) -> bool {
        *self == RecordedOptions::default()
    }
}

/// `value` with the recorded value of each `ignored` path (`tags`, `tags.team`) put back: what a
/// plan and an apply send for a resource with `ignore_changes`. A path absent from `recorded` is
/// absent from the answer.
pub fn keep_ignored(value: &serde_json::Value, recorded: &serde_json::Value, ignored: &[String]) -> serde_json::Value {
    let mut out = value.clone();
    for path in ignored {
        let parts: Vec<&str> = path.split('.').collect();
        let old = parts.iter().try_fold(recorded, |v, p| v.get(*p));
        set_path(&mut out, &parts, old.cloned());
    }
    out
}

fn set_path(value: &mut serde_json::Value, parts: &[&str], to: Option<serde_json::Value>) {
    let Some((last, parents)) = parts.split_last() else { return };
    let mut at = value;
    for p in parents {
        match at.get_mut(*p) {
            Some(next) => at = next,
            None => return,
        }
    }
    if let Some(map) = at.as_object_mut() {
        match to {
            Some(v) => {
                map.insert(last.to_string(), v);
            }
            None => {
                map.remove(*last);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ignored_paths_keep_their_recorded_values() {
        let desired = json!({"size": 3, "tags": {"team": "web", "cost": "b"}});
        let recorded = json!({"size": 2, "tags": {"team": "ops"}});
        let kept = keep_ignored(&desired, &recorded, &["tags.team".into(), "tags.cost".into()]);
        assert_eq!(kept, json!({"size": 3, "tags": {"team": "ops"}}));
        assert_eq!(keep_ignored(&desired, &recorded, &["size".into()])["size"], 2);
    }

    #[test]
    fn scopes_merge_inner_last() {
        let outer =
            Options::new().protect().ignore_changes(["tags"]).timeouts(Timeouts::new().create(Duration::from_secs(60)));
        let inner =
            Options::new().ignore_changes(["tags", "size"]).timeouts(Timeouts::new().delete(Duration::from_secs(5)));
        let m = outer.merged(&inner);
        assert!(m.protect);
        assert_eq!(m.ignore_changes, ["tags", "size"]);
        assert_eq!(
            (m.timeouts.create, m.timeouts.delete),
            (Some(Duration::from_secs(60)), Some(Duration::from_secs(5)))
        );
    }

    #[test]
    fn recorded_options_round_trip_as_words() {
        let r = Options::new().protect().timeouts(Timeouts::new().delete(Duration::from_secs(5400))).recorded();
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(text, r#"{"protect":true,"delete_timeout":"1h 30m"}"#);
        assert_eq!(serde_json::from_str::<RecordedOptions>(&text).unwrap(), r);
        assert!(RecordedOptions::default().is_default());
    }
}
