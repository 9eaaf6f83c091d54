//! Resources whose create the local emulator does not implement: EKS add-ons, pod identities and
//! access entries, AWS Backup selections.
//!
//! On the emulator, such a create is recorded instead of failing the deploy: why it was not made
//! and what was asked. The record reads back as what was asked (so the next plan is `same`), takes
//! an in-place change as the new request, and is deleted without a call. Everything that was made
//! goes to the provider, as does every call on a real account.

use crate::engine::provider::{Ctx, ProviderResult, Reads, TypedProvider, Update, read_each};
use crate::model::Urn;
use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The outputs of a [`MaybeLacking`] resource: what the provider made, or the record of a create the
/// emulator could not serve (`made` is then the provider's stand-in).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "I: DeserializeOwned, O: DeserializeOwned"))]
pub struct OrGap<I, O> {
    #[serde(flatten)]
    pub made: O,
    /// Why the emulator could not create it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emulator_gap: Option<String>,
    /// What was asked, standing for what would have been read back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<I>,
}

/// A provider whose create the emulator may lack; [`Lacking`] makes it a [`TypedProvider`].
#[async_trait]
pub trait MaybeLacking: Send + Sync + 'static {
    type Inputs: Serialize + DeserializeOwned + Clone + Send + Sync;
    type Outputs: Serialize + DeserializeOwned + Clone + Send + Sync;
    const TYPE: &'static str;
    const REPLACE_ON: &'static [&'static str];
    /// Whether it can be imported, and if not, why not.
    const IMPORT: crate::engine::Import;

    /// Creates it: `Ok(Err(why))` when the emulator does not implement the call.
    async fn create(
        &self,
        ctx: &Ctx,
        urn: &Urn,
        inputs: &Self::Inputs,
    ) -> ProviderResult<Result<Self::Outputs, String>>;
    /// The outputs recorded for a create the emulator could not serve.
    fn stand_in(inputs: &Self::Inputs) -> Self::Outputs;
    /// Changes what was made in place; by default there is nothing to change (every field replaces).
    async fn update(
        &self,
        _ctx: &Ctx,
        _old: &Self::Inputs,
        outputs: &Self::Outputs,
        _new: &Self::Inputs,
    ) -> ProviderResult<Self::Outputs> {
        Ok(outputs.clone())
    }
    async fn delete(&self, ctx: &Ctx, outputs: &Self::Outputs) -> ProviderResult<()>;
    /// Its inputs as read back; `None` when it is gone.
    async fn read(&self, ctx: &Ctx, outputs: &Self::Outputs) -> ProviderResult<Option<Self::Inputs>>;
    /// What this stack made for `urn` before an answer was lost.
    async fn find(&self, ctx: &Ctx, urn: &Urn, inputs: &Self::Inputs) -> ProviderResult<Option<Self::Outputs>>;
    /// See [`crate::engine::Provider::names_taken`].
    async fn names_taken(
        &self,
        _ctx: &Ctx,
        _items: &[(Urn, serde_json::Value)],
    ) -> crate::engine::provider::NamesTaken {
        Ok(None)
    }
}

/// The [`TypedProvider`] of a [`MaybeLacking`] provider, whose outputs are [`OrGap`].
pub struct Lacking<P>(pub P);

#[async_trait]
impl<P: MaybeLacking> TypedProvider for Lacking<P> {
    type Inputs = P::Inputs;
    type Outputs = OrGap<P::Inputs, P::Outputs>;
    const TYPE: &'static str = P::TYPE;
    const REPLACE_ON: &'static [&'static str] = P::REPLACE_ON;
    const IMPORT: crate::engine::Import = P::IMPORT;

    async fn create(&self, ctx: &Ctx, urn: &Urn, inputs: &P::Inputs) -> ProviderResult<Self::Outputs> {
        Ok(match self.0.create(ctx, urn, inputs).await? {
            Ok(made) => OrGap { made, emulator_gap: None, requested: None },
            Err(why) => OrGap { made: P::stand_in(inputs), emulator_gap: Some(why), requested: Some(inputs.clone()) },
        })
    }

    async fn update(&self, ctx: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<Self::Outputs> {
        let Update { old, outputs, new } = change;
        if outputs.emulator_gap.is_some() {
            return Ok(OrGap { requested: Some(new.clone()), ..outputs.clone() });
        }
        let made = self.0.update(ctx, old, &outputs.made, new).await?;
        Ok(OrGap { made, ..outputs.clone() })
    }

    async fn delete(&self, ctx: &Ctx, _: &Urn, _: &P::Inputs, outputs: &Self::Outputs) -> ProviderResult<()> {
        if outputs.emulator_gap.is_some() {
            return Ok(());
        }
        self.0.delete(ctx, &outputs.made).await
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, Self::Outputs)]) -> Reads<Self> {
        read_each(items, |_, o| async move {
            // What the emulator could not create cannot be read back: its record stands.
            let inputs = match &o.requested {
                Some(requested) => Some(requested.clone()),
                None => self.0.read(ctx, &o.made).await?,
            };
            Ok(inputs.map(|i| (i, o.clone())))
        })
        .await
    }

    async fn find(&self, ctx: &Ctx, urn: &Urn, inputs: &P::Inputs) -> ProviderResult<Option<Self::Outputs>> {
        let found = self.0.find(ctx, urn, inputs).await?;
        Ok(found.map(|made| OrGap { made, emulator_gap: None, requested: None }))
    }

    async fn names_taken(&self, ctx: &Ctx, items: &[(Urn, serde_json::Value)]) -> crate::engine::provider::NamesTaken {
        self.0.names_taken(ctx, items).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Out {
        cluster_name: String,
        arn: String,
    }

    #[test]
    fn outputs_keep_the_recorded_shape() {
        // The state written before this type existed: the made fields and the gap side by side.
        let recorded = json!({"cluster_name": "c", "arn": "", "emulator_gap": "no", "requested": {"x": 1}});
        let o: OrGap<serde_json::Value, Out> = serde_json::from_value(recorded.clone()).unwrap();
        assert_eq!(o.made, Out { cluster_name: "c".into(), arn: String::new() });
        assert_eq!(o.emulator_gap.as_deref(), Some("no"));
        assert_eq!(serde_json::to_value(&o).unwrap(), recorded);
        let made = OrGap::<serde_json::Value, Out> { made: o.made.clone(), emulator_gap: None, requested: None };
        assert_eq!(serde_json::to_value(made).unwrap(), json!({"cluster_name": "c", "arn": ""}));
    }
}
