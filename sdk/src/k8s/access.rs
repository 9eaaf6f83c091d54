//! Reaching clusters in-process: a `kube::Client` per cluster, from `--kubeconfig PATH`
//! (`FABRIC_KUBECONFIG`) for any conformant cluster, or from an EKS cluster's endpoint and CA with
//! a bearer token made like `aws eks get-token` (a presigned STS `GetCallerIdentity` URL).

use super::ClusterInfo;
use crate::aws::Aws;
use crate::engine::provider::{ProviderError, ProviderResult};
use base64::Engine as _;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// EKS tokens are valid for 15 minutes; clients are rebuilt well before.
const TOKEN_REUSE: Duration = Duration::from_secs(10 * 60);

/// How a run reaches Kubernetes, taken from its context (see [`crate::providers::context`]); a
/// run given none reaches each cluster through the cluster's own endpoint.
pub trait KubeCtx {
    fn kube(&self) -> &KubeAccess;
}

impl KubeCtx for crate::engine::provider::Ctx {
    fn kube(&self) -> &KubeAccess {
        static DEFAULT: std::sync::LazyLock<KubeAccess> = std::sync::LazyLock::new(KubeAccess::default);
        self.get::<KubeAccess>().unwrap_or(&DEFAULT)
    }
}

/// How this run reaches Kubernetes, and how it applies there.
pub struct KubeAccess {
    /// A kubeconfig that reaches every cluster of the program (its context named after the
    /// cluster, or else its current context).
    pub kubeconfig: Option<PathBuf>,
    /// Take over fields another field manager owns (`--force-conflicts`).
    pub force_conflicts: bool,
    /// Scales every object's readiness timeout (tests shorten it).
    pub timeout_scale: f64,
    fixed: Option<kube::Client>,
    cache: tokio::sync::Mutex<HashMap<ClusterInfo, (kube::Client, Instant)>>,
    versions: tokio::sync::Mutex<HashMap<String, Option<super::KubeVersion>>>,
}

impl Default for KubeAccess {
    fn default() -> Self {
        KubeAccess {
            kubeconfig: None,
            force_conflicts: false,
            timeout_scale: 1.0,
            fixed: None,
            cache: Default::default(),
            versions: Default::default(),
        }
    }
}

impl KubeAccess {
    /// Access through `kubeconfig` when given, else through each cluster's own endpoint.
    pub fn new(kubeconfig: Option<PathBuf>) -> Self {
        KubeAccess { kubeconfig, ..Default::default() }
    }

    /// Every cluster is reached through this client (tests with a mock service).
    pub fn with_client(client: kube::Client) -> Self {
        KubeAccess { fixed: Some(client), ..Default::default() }
    }

    /// Whether objects of a cluster reached `via` this connection can be applied in this run.
    pub fn can_reach(&self, via: &str, local: bool) -> bool {
        self.fixed.is_some() || self.kubeconfig.is_some() || (via == "eks" && !local)
    }

    /// The Kubernetes version the API server of `cluster` answers on `/version` (asked once per
    /// run); `None` when its answer names none.
    pub async fn server_version(
        &self,
        cluster: &ClusterInfo,
        client: &kube::Client,
    ) -> ProviderResult<Option<super::KubeVersion>> {
        let mut versions = self.versions.lock().await;
        if let Some(v) = versions.get(&cluster.name) {
            return Ok(*v);
        }
        let info = client
            .apiserver_version()
            .await
            .map_err(|e| ProviderError(format!("cluster `{}`: reading its version: {e}", cluster.name)))?;
        let v = super::KubeVersion::of_server(&info);
        versions.insert(cluster.name.clone(), v);
        Ok(v)
    }

    /// The client for `cluster`.
    pub async fn client(&self, cluster: &ClusterInfo, aws: Option<&Aws>) -> ProviderResult<kube::Client> {
        if let Some(c) = &self.fixed {
            return Ok(c.clone());
        }
        let mut cache = self.cache.lock().await;
        if let Some((client, made)) = cache.get(cluster)
            && made.elapsed() < TOKEN_REUSE
        {
            return Ok(client.clone());
        }
        let client = match (&self.kubeconfig, cluster.via.as_str()) {
            (Some(path), _) => from_kubeconfig_file(path, &cluster.name).await?,
            (None, "eks") => {
                let aws = aws.ok_or_else(|| ProviderError("reaching an EKS cluster needs AWS credentials".into()))?;
                from_eks(cluster, aws).await?
            }
            (None, _) => {
                return Err(ProviderError(format!(
                    "cluster `{}` is reached only through a kubeconfig: pass --kubeconfig PATH (or set FABRIC_KUBECONFIG)",
                    cluster.name
                )));
            }
        };
        cache.insert(cluster.clone(), (client.clone(), Instant::now()));
        Ok(client)
    }
}

async fn from_kubeconfig_file(path: &std::path::Path, cluster: &str) -> ProviderResult<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .map_err(|e| ProviderError(format!("cannot read kubeconfig {}: {e}", path.display())))?;
    let has_context = kubeconfig.contexts.iter().any(|c| c.name == cluster);
    let options =
        kube::config::KubeConfigOptions { context: has_context.then(|| cluster.to_string()), ..Default::default() };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| ProviderError(format!("kubeconfig {}: {e}", path.display())))?;
    kube::Client::try_from(config).map_err(|e| ProviderError(format!("kubeconfig {}: {e}", path.display())))
}

async fn from_eks(cluster: &ClusterInfo, aws: &Aws) -> ProviderResult<kube::Client> {
    let (Some(name), Some(endpoint), Some(ca)) = (&cluster.cluster_name, &cluster.endpoint, &cluster.ca_data) else {
        return Err(ProviderError(format!("cluster `{}` has no endpoint yet", cluster.name)));
    };
    let token = eks_token(aws, name).await?;
    let yaml = kubeconfig_yaml(&cluster.name, endpoint, ca, &UserAuth::Token(token));
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml)
        .map_err(|e| ProviderError(format!("cluster `{}`: {e}", cluster.name)))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| ProviderError(format!("cluster `{}`: {e}", cluster.name)))?;
    kube::Client::try_from(config).map_err(|e| ProviderError(format!("cluster `{}`: {e}", cluster.name)))
}

/// How a kubeconfig's user authenticates.
pub enum UserAuth {
    /// A bearer token (in-process only: never written to disk).
    Token(String),
    /// `aws eks get-token` at every use (the kubeconfig fabric writes for people and tools).
    AwsCli { cluster_name: String, region: String },
}

/// A kubeconfig for one cluster.
pub fn kubeconfig_yaml(name: &str, endpoint: &str, ca_data: &str, auth: &UserAuth) -> String {
    let user = match auth {
        UserAuth::Token(t) => serde_json::json!({ "token": t }),
        UserAuth::AwsCli { cluster_name, region } => serde_json::json!({ "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", region, "--output", "json"],
            "interactiveMode": "Never",
        }}),
    };
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": name, "cluster": { "server": endpoint, "certificate-authority-data": ca_data } }],
        "users": [{ "name": name, "user": user }],
        "contexts": [{ "name": name, "context": { "cluster": name, "user": name } }],
        "current-context": name,
    });
    serde_saphyr::to_string(&doc).expect("kubeconfig serializes")
}

/// A bearer token for EKS cluster `cluster_name`: `k8s-aws-v1.` and the base64url of a presigned
/// STS `GetCallerIdentity` URL that signs the header `x-k8s-aws-id: <cluster_name>`, valid 60 s.
pub async fn eks_token(aws: &Aws, cluster_name: &str) -> ProviderResult<String> {
    use aws_credential_types::provider::ProvideCredentials;
    let provider = aws
        .config
        .credentials_provider()
        .ok_or_else(|| ProviderError("no AWS credentials to sign the EKS token with".into()))?;
    let credentials = provider
        .provide_credentials()
        .await
        .map_err(|e| ProviderError(format!("AWS credentials for the EKS token: {e}")))?;
    presigned_token(credentials, &aws.region(), cluster_name, SystemTime::now())
}

/// The token of [`eks_token`] for given credentials and time (pure; unit-tested).
pub fn presigned_token(
    credentials: aws_credential_types::Credentials,
    region: &str,
    cluster_name: &str,
    now: SystemTime,
) -> ProviderResult<String> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign};
    let identity = credentials.into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(60));
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| ProviderError(format!("signing the EKS token: {e}")))?
        .into();
    let url = format!("https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15");
    let headers = [("x-k8s-aws-id", cluster_name)];
    let signable = SignableRequest::new("GET", url.clone(), headers.into_iter(), SignableBody::Bytes(&[]))
        .map_err(|e| ProviderError(format!("signing the EKS token: {e}")))?;
    let (instructions, _) =
        sign(signable, &params).map_err(|e| ProviderError(format!("signing the EKS token: {e}")))?.into_parts();
    let mut request = http::Request::get(url).body(()).expect("a GET request");
    instructions.apply_to_request_http1x(&mut request);
    let presigned = request.uri().to_string();
    Ok(format!("k8s-aws-v1.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(presigned)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eks_token_is_a_presigned_sts_url() {
        let creds = aws_credential_types::Credentials::from_keys("AKIDEXAMPLE", "secret", None);
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let token = presigned_token(creds, "us-east-2", "acme-main", at).unwrap();
        let b64 = token.strip_prefix("k8s-aws-v1.").expect("prefix");
        assert!(!b64.contains('='), "no padding");
        let url = String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(b64).unwrap()).unwrap();
        assert!(url.starts_with("https://sts.us-east-2.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&"));
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIDEXAMPLE%2F20231114%2Fus-east-2%2Fsts%2Faws4_request",
            "X-Amz-Date=20231114T221320Z",
            "X-Amz-Expires=60",
            "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id",
            "X-Amz-Signature=",
        ] {
            assert!(url.contains(part), "{part} missing in {url}");
        }
        // Deterministic for the same inputs; another cluster signs differently.
        let again = presigned_token(
            aws_credential_types::Credentials::from_keys("AKIDEXAMPLE", "secret", None),
            "us-east-2",
            "acme-main",
            at,
        )
        .unwrap();
        assert_eq!(token, again);
        let other = presigned_token(
            aws_credential_types::Credentials::from_keys("AKIDEXAMPLE", "secret", None),
            "us-east-2",
            "other",
            at,
        )
        .unwrap();
        assert_ne!(token, other);
    }

    #[test]
    fn written_kubeconfigs_call_aws_for_tokens() {
        let auth = UserAuth::AwsCli { cluster_name: "acme-main".into(), region: "us-east-2".into() };
        let yaml = kubeconfig_yaml("main", "https://example.eks", "Q0E=", &auth);
        let parsed = kube::config::Kubeconfig::from_yaml(&yaml).unwrap();
        assert_eq!(parsed.current_context.as_deref(), Some("main"));
        let exec = parsed.auth_infos[0].auth_info.as_ref().unwrap().exec.as_ref().unwrap();
        assert_eq!(exec.command.as_deref(), Some("aws"));
        assert!(!yaml.contains("token:"));
    }
}
