//! The service table's machinery: [`table!`] turns one line per AWS service into the service's
//! module (behind its cargo feature), its client field in [`super::Aws`], its providers in
//! [`super::providers`], and its row of [`SERVICES`] (what the registry tells a program built
//! without it). The table itself is in `aws/mod.rs`.

/// One AWS service behind a cargo feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Service {
    /// Its module under `aws/`.
    pub module: &'static str,
    /// Its cargo feature in `sdk/Cargo.toml` (several services may share one: `eks` brings Auto
    /// Scaling too).
    pub feature: &'static str,
    /// The type-name prefixes its providers serve (`aws:rds:`).
    pub prefixes: &'static [&'static str],
    /// Whether this program was built with it.
    pub built: bool,
}

/// The client of one service (`client!(aws_sdk_ec2, &config, &calls, retry)`): its calls recorded
/// into `calls`, retried in `retry`'s partition.
macro_rules! client {
    ($sdk:ident, $config:expr, $calls:expr, $retry:expr) => {
        $sdk::Client::from_conf(
            $sdk::config::Builder::from($config)
                .interceptor(Recorder($calls.clone()))
                .retry_partition($retry.partition())
                .build(),
        )
    };
}

/// `module: "feature", ["aws:prefix:"], client_field = sdk_crate;` per service, with `, preflight`
/// before the `;` when the module has checks of its own for preflight
/// (`pub(crate) async fn preflight(&Aws, &preflight::Changes, &mut preflight::Preflight)`).
macro_rules! table {
    ($( $module:ident : $feature:literal, [$($prefix:literal),*], $client:ident = $sdk:ident $(, $hook:ident)?; )*) => {
        $( #[cfg(feature = $feature)] pub mod $module; )*

        /// What a stack program needs in scope from every service this program was built with:
        /// each service module's own `prelude` (part of [`crate::prelude`]).
        pub mod prelude {
            $( #[cfg(feature = $feature)] #[allow(unused_imports)] pub use super::$module::prelude::*; )*
        }

        /// Every AWS service behind a cargo feature, built into this program or not.
        pub const SERVICES: &[Service] = &[
            $( Service { module: stringify!($module), feature: $feature, prefixes: &[$($prefix),*], built: cfg!(feature = $feature) }, )*
        ];

        /// Preflight's service checks: the `preflight` of each built service that has one.
        #[allow(unused_variables)]
        async fn service_preflight(aws: &Aws, changes: &preflight::Changes<'_>, pf: &mut preflight::Preflight) {
            $( #[cfg(feature = $feature)] { $( $module::$hook(aws, changes, pf).await; )? } )*
        }

        /// The providers of every service this program was built with.
        fn service_providers() -> Vec<Arc<dyn Provider>> {
            #[allow(unused_mut)]
            let mut all: Vec<Arc<dyn Provider>> = Vec::new();
            $( #[cfg(feature = $feature)] all.extend($module::providers()); )*
            all
        }

        /// The AWS clients of one run: S3 (state), STS and Service Quotas (preflight) always, and
        /// one per service of the table this program was built with.
        pub struct Aws {
            pub config: aws_types::SdkConfig,
            pub s3: aws_sdk_s3::Client,
            pub sts: aws_sdk_sts::Client,
            pub quotas: aws_sdk_servicequotas::Client,
            $( #[cfg(feature = $feature)] pub $client: $sdk::Client, )*
            pub calls: CallLog,
            /// Talking to the local emulator: an API it does not implement (HTTP 500) may be
            /// recorded as an *emulator gap* by providers that know it, and is reported after the
            /// deploy — never on real AWS.
            pub emulator: bool,
        }

        impl Aws {
            fn with_service_clients(
                config: aws_types::SdkConfig,
                s3: aws_sdk_s3::Client,
                sts: aws_sdk_sts::Client,
                quotas: aws_sdk_servicequotas::Client,
                calls: CallLog,
                #[allow(unused_variables)] retry: RetryPolicy,
            ) -> Self {
                Aws {
                    $( #[cfg(feature = $feature)] $client: client!($sdk, &config, &calls, retry), )*
                    s3,
                    sts,
                    quotas,
                    config,
                    calls,
                    emulator: false,
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use crate::aws::SERVICES;

    /// The layer rule `providers → components`: no provider module names a component (tests, which
    /// may compose a component to drive a provider, are left out).
    #[test]
    fn no_provider_module_uses_a_component() {
        fn walk(dir: &std::path::Path, offenders: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().to_string();
                if path.is_dir() {
                    walk(&path, offenders);
                } else if !name.contains("test") && name != "scripted.rs" {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                    // Code, not comments (a doc link to a component names no dependency).
                    for (n, line) in code.lines().enumerate().filter(|(_, l)| !l.trim_start().starts_with("//")) {
                        if line.contains("crate::components")
                            || line.trim_start().starts_with("use super::super::components")
                        {
                            offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                        }
                    }
                }
            }
        }
        let mut offenders = Vec::new();
        walk(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src/aws")), &mut offenders);
        assert!(
            offenders.is_empty(),
            "providers must not use components (move the code into the component):\n{}",
            offenders.join("\n")
        );
    }

    /// `sdk/Cargo.toml`'s `[features]`.
    fn manifest_features() -> toml::Table {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
        let manifest: toml::Table = text.parse().unwrap();
        manifest["features"].as_table().unwrap().clone()
    }

    #[test]
    fn the_service_table_and_the_manifest_name_the_same_services() {
        let features = manifest_features();
        let sdk_deps = |f: &str| -> Vec<String> {
            features[f]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|v| v.as_str()?.strip_prefix("dep:aws-sdk-").map(String::from))
                .collect()
        };
        // Every feature that brings an AWS SDK crate is a service of the table…
        for (name, _) in features.iter() {
            if !sdk_deps(name).is_empty() {
                assert!(
                    SERVICES.iter().any(|s| s.feature == name),
                    "feature `{name}` brings {:?} but no line of the service table (aws/mod.rs) names it",
                    sdk_deps(name)
                );
            }
        }
        // …and every service's feature exists, brings an SDK crate, and is part of `full`.
        let full: Vec<&str> = features["full"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
        for s in SERVICES {
            assert!(
                features.contains_key(s.feature),
                "service `{}`: no feature `{}` in sdk/Cargo.toml",
                s.module,
                s.feature
            );
            assert!(!sdk_deps(s.feature).is_empty(), "feature `{}` brings no aws-sdk crate", s.feature);
            assert!(full.contains(&s.feature), "feature `{}` is not in `full`", s.feature);
            assert!(!s.prefixes.is_empty(), "service `{}` serves no type prefix", s.module);
        }
    }
}
