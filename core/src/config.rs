//! Per-environment configuration of a stack: `<env>.toml` files read and typed for the program
//! (`s.config()`), with errors that name the file, the line and the key. Kept out of the model,
//! which only describes.

use crate::model::{Stack, Urn, ValidationError, ValidationErrors};

impl Stack {
    /// The typed configuration of this environment (TOML).
    ///
    /// ```
    /// #[derive(serde::Deserialize)]
    /// struct Config { domain: String, replicas: u32 }
    /// let dir = tempfile::tempdir().unwrap();
    /// let file = dir.path().join("dev.toml");
    /// std::fs::write(&file, "domain = \"dev.acme.example\"\nreplicas = 2\n").unwrap();
    /// let s = fabric_core::model::Stack::for_env("acme", "dev", &file);
    /// let cfg: Config = s.config().unwrap();
    /// assert_eq!((s.name(), cfg.domain.as_str(), cfg.replicas), ("acme-dev", "dev.acme.example", 2));
    /// ```
    pub fn config<T: serde::de::DeserializeOwned>(&self) -> crate::Result<T> {
        let Some(c) = &self.config else {
            return Err(self.config_error(
                "env",
                "this stack reads per-environment configuration, and no environment was given".into(),
                "pass `--env <name>` (or set FABRIC_ENV); each environment has a file `stacks/<stack>/config/<name>.toml`".into(),
            ));
        };
        self.parse_config(&c.env, &c.file)
    }

    /// The typed configuration of every environment of this stack — each `<env>.toml` beside
    /// this environment's file — sorted by environment: for checks that span environments (no
    /// two fabrics with overlapping networks), made before any call.
    ///
    /// ```
    /// #[derive(serde::Deserialize)]
    /// struct Config { network: u8 }
    /// let dir = tempfile::tempdir().unwrap();
    /// std::fs::write(dir.path().join("dev.toml"), "network = 1\n").unwrap();
    /// std::fs::write(dir.path().join("prod.toml"), "network = 2\n").unwrap();
    /// let s = fabric_core::model::Stack::for_env("acme", "dev", dir.path().join("dev.toml"));
    /// let all: Vec<(String, Config)> = s.all_configs().unwrap();
    /// assert_eq!(all.iter().map(|(env, c)| (env.as_str(), c.network)).collect::<Vec<_>>(), [("dev", 1), ("prod", 2)]);
    /// ```
    pub fn all_configs<T: serde::de::DeserializeOwned>(&self) -> crate::Result<Vec<(String, T)>> {
        let Some(c) = &self.config else { return self.config().map(|_: toml::Value| Vec::new()) };
        let dir = c.file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        let entries = std::fs::read_dir(dir).map_err(|e| {
            self.config_error(
                "env",
                format!("cannot list {}: {e}", dir.display()),
                "keep every environment's `<env>.toml` in one directory".into(),
            )
        })?;
        let mut files: Vec<(String, std::path::PathBuf)> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .filter_map(|p| Some((p.file_stem()?.to_str()?.to_string(), p)))
            .collect();
        files.sort();
        files.into_iter().map(|(env, file)| Ok((env.clone(), self.parse_config(&env, &file)?))).collect()
    }

    fn config_error(&self, field: &str, problem: String, fix: String) -> crate::Error {
        crate::Error::Invalid(ValidationErrors(vec![ValidationError {
            urn: Urn::new(&self.name, "fabric:Config", self.env().unwrap_or("none")),
            field: field.to_string(),
            problem,
            fix,
        }]))
    }

    fn parse_config<T: serde::de::DeserializeOwned>(&self, env: &str, file: &std::path::Path) -> crate::Result<T> {
        let text = std::fs::read_to_string(file).map_err(|e| {
            self.config_error(
                "env",
                format!("cannot read {}: {e}", file.display()),
                format!("create {} for environment `{env}`", file.display()),
            )
        })?;
        toml::from_str(&text).map_err(|e| {
            let (line, key) = config_location(&text, e.span());
            let at = match line {
                Some(n) => format!("{}:{n}", file.display()),
                None => file.display().to_string(),
            };
            let key = key.map(|k| format!("key `{k}`: ")).unwrap_or_default();
            self.config_error(
                "config",
                format!("{at}: {key}{}", e.message().trim()),
                "fix that line: every field of the stack's config type, with its type".into(),
            )
        })
    }
}

/// The line (1-based) of `span` in `text`, and the key written on that line (`zones` of
/// `zones = "x"`; for a problem of a table, the table's name).
fn config_location(text: &str, span: Option<std::ops::Range<usize>>) -> (Option<usize>, Option<String>) {
    let Some(span) = span else { return (None, None) };
    let start = span.start.min(text.len());
    let line_no = text[..start].matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("");
    let key = match line.split_once('=') {
        Some((k, _)) => Some(k.trim().trim_matches('"').to_string()),
        None => line.trim().strip_prefix('[').and_then(|l| l.strip_suffix(']')).map(|t| t.trim().to_string()),
    };
    (Some(line_no), key.filter(|k| !k.is_empty()))
}
