//! Kubernetes versions: what a cluster runs decides which fields builders may emit and which
//! schemas manifests are validated against (never newer ones than the cluster's).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A Kubernetes minor version, `1.30`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KubeVersion {
    pub major: u32,
    pub minor: u32,
}

impl KubeVersion {
    pub const fn new(major: u32, minor: u32) -> Self {
        KubeVersion { major, minor }
    }

    /// `1.30`, `1.30.2`, `v1.30.2-eks-1234`; `None` for anything else.
    pub fn parse(text: &str) -> Option<KubeVersion> {
        let t = text.trim().trim_start_matches('v');
        let mut parts = t.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor_text: String = parts.next()?.chars().take_while(|c| c.is_ascii_digit()).collect();
        Some(KubeVersion { major, minor: minor_text.parse().ok()? })
    }

    /// From an API server's `/version` answer (`major` and `minor`, where `minor` may carry a
    /// `+`; else `gitVersion`).
    pub fn of_server(info: &k8s_openapi::apimachinery::pkg::version::Info) -> Option<KubeVersion> {
        let minor: String = info.minor.chars().take_while(|c| c.is_ascii_digit()).collect();
        match (info.major.parse(), minor.parse()) {
            (Ok(major), Ok(minor)) => Some(KubeVersion { major, minor }),
            _ => KubeVersion::parse(&info.git_version),
        }
    }

    /// Whether a container `lifecycle` hook may `sleep` (the sleep action: 1.30 and later).
    pub fn has_sleep_action(self) -> bool {
        self >= SLEEP_ACTION
    }
}

/// The first version whose API accepts `lifecycle.preStop.sleep`.
pub const SLEEP_ACTION: KubeVersion = KubeVersion::new(1, 30);

/// The oldest version builders support (EKS's oldest in extended support, and the oldest the
/// offline validator has schemas for is older).
pub const OLDEST_SUPPORTED: KubeVersion = KubeVersion::new(1, 25);

/// The versions whose schemas the pinned `kubernetes-validate` ships.
pub const VALIDATOR_RANGE: (KubeVersion, KubeVersion) = (KubeVersion::new(1, 25), KubeVersion::new(1, 37));

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl TryFrom<String> for KubeVersion {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        KubeVersion::parse(&s).ok_or_else(|| format!("`{s}` is not a Kubernetes version such as `1.33`"))
    }
}

impl From<KubeVersion> for String {
    fn from(v: KubeVersion) -> String {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_config_and_from_servers() {
        assert_eq!(KubeVersion::parse("1.30"), Some(KubeVersion::new(1, 30)));
        assert_eq!(KubeVersion::parse("v1.29.4-eks-036c24b"), Some(KubeVersion::new(1, 29)));
        assert_eq!(KubeVersion::parse("1"), None);
        assert_eq!(KubeVersion::parse("one.two"), None);
        let info = k8s_openapi::apimachinery::pkg::version::Info {
            major: "1".into(),
            minor: "29+".into(),
            git_version: "v1.29.4-eks".into(),
            ..Default::default()
        };
        assert_eq!(KubeVersion::of_server(&info), Some(KubeVersion::new(1, 29)));
        let master = k8s_openapi::apimachinery::pkg::version::Info {
            major: String::new(),
            minor: String::new(),
            git_version: "v0.0.0-master+8e16b12f".into(),
            ..Default::default()
        };
        assert_eq!(KubeVersion::of_server(&master), Some(KubeVersion::new(0, 0)));
        assert!(KubeVersion::new(1, 30).has_sleep_action() && !KubeVersion::new(1, 29).has_sleep_action());
        assert!(KubeVersion::new(1, 9) < KubeVersion::new(1, 10));
    }
}
