//! `fabric:random:Password`: a password generated once, at its first apply, and kept (encrypted)
//! in state, so every later plan sees the same value.

use crate::engine::provider::Import;
use crate::engine::provider::{Ctx, Provider, ProviderResult, Reads, TypedProvider, Update, typed};
use crate::model::{Output, Secret, Stack, Urn};
use async_trait::async_trait;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const TYPE: &str = "fabric:random:Password";

/// Letters and digits only: safe in URLs, shells and every database's password rules.
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PasswordInputs {
    pub length: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PasswordOutputs {
    pub value: Secret<String>,
}

/// A declared password.
///
/// ```
/// use fabric::prelude::*;
/// use fabric::random::Password;
/// let mut s = Stack::new("demo");
/// let pw = Password::add(&mut s, "db-master", 32);
/// assert_eq!(pw.urn().name(), "db-master");
/// ```
#[derive(Clone, Debug)]
pub struct Password {
    urn: Urn,
}

impl Password {
    pub fn add(s: &mut Stack, name: &str, length: usize) -> Password {
        Password { urn: s.declare(provider(), name, PasswordInputs { length }, vec![]) }
    }

    pub fn urn(&self) -> &Urn {
        &self.urn
    }

    pub fn value(&self) -> Output<Secret<String>> {
        Output::reference(self.urn.clone(), "value")
    }
}

pub fn generate(length: usize) -> String {
    let mut rng = rand::rng();
    (0..length).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

pub fn provider() -> Arc<dyn Provider> {
    typed(PasswordProvider)
}

pub struct PasswordProvider;

#[async_trait]
impl TypedProvider for PasswordProvider {
    resource_type!(TYPE, PasswordInputs => PasswordOutputs,
        replace_on &["length"], import Import::Never("a secret fabric generates: nothing in the cloud to adopt"));

    async fn create(&self, _: &Ctx, _: &Urn, inputs: &PasswordInputs) -> ProviderResult<PasswordOutputs> {
        Ok(PasswordOutputs { value: Secret::new(generate(inputs.length)) })
    }

    async fn update(&self, _: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<PasswordOutputs> {
        let out = change.outputs;
        Ok(out.clone())
    }

    async fn delete(&self, _: &Ctx, _: &Urn, _: &PasswordInputs, _: &PasswordOutputs) -> ProviderResult<()> {
        Ok(())
    }

    async fn read_many(&self, _: &Ctx, items: &[(Urn, PasswordOutputs)]) -> Reads<Self> {
        Ok(items.iter().map(|(_, o)| Some((PasswordInputs { length: o.value.expose().len() }, o.clone()))).collect())
    }

    async fn find(&self, _: &Ctx, _: &Urn, _: &PasswordInputs) -> ProviderResult<Option<PasswordOutputs>> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_long_random_and_url_safe() {
        let a = super::generate(32);
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, super::generate(32));
    }
}
