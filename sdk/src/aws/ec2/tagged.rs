//! What the tagged EC2 resources (VPC, subnet, internet gateway, Elastic IP, NAT gateway, route
//! table, security group) share: each is created with fabric's tags in the create call itself, found
//! again by them after a lost answer, read back in one filtered Describe call, changed in place in
//! its tags (and what [`TaggedResource::update_more`] adds), and deleted idempotently.
//!
//! A kind implements [`TaggedResource`]; [`provider`] makes it the engine's provider.

use super::{Tags, stack_filter, sync_tags, urn_filters};
use crate::aws::create::create_or_find;
use crate::aws::{AwsCtx, Failure};
use crate::engine::provider::{Ctx, Provider, ProviderResult, Read, Reads, TypedProvider, Update, read_each, typed};
use crate::model::Urn;
use async_trait::async_trait;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::Filter;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

/// One kind of tagged EC2 resource.
#[async_trait]
pub(crate) trait TaggedResource: Send + Sync + 'static {
    type Inputs: Serialize + DeserializeOwned + Send + Sync;
    type Outputs: Serialize + DeserializeOwned + Clone + Send + Sync;
    /// What its Describe call lists.
    type Item: Send + Sync;
    const TYPE: &'static str;
    const REPLACE_ON: &'static [&'static str];
    /// The create call, for messages.
    const CREATE: &'static str;
    /// The Describe filter on its id (`vpc-id`), for kinds that can be imported: they are read by
    /// id (an imported resource carries no fabric tags) and discovered by their `Name` tag.
    const ID_FILTER: Option<&'static str> = None;
    /// Whether it can be imported (by `ID_FILTER`), and if not, why not.
    const IMPORT: crate::engine::Import;

    /// One create call, carrying fabric's tags ([`super::tag_specification`]).
    async fn create_once(
        &self,
        ec2: &Client,
        ctx: &Ctx,
        urn: &Urn,
        inputs: &Self::Inputs,
    ) -> Result<Self::Outputs, Failure>;
    /// What follows a create (attach, set attributes, wait until available).
    async fn after_create(&self, _ctx: &Ctx, _inputs: &Self::Inputs, _out: &Self::Outputs) -> ProviderResult<()> {
        Ok(())
    }
    /// The outputs once [`TaggedResource::after_create`] is done, for kinds whose create answer
    /// lacks what comes later (an instance's addresses).
    async fn settled(&self, _ctx: &Ctx, out: Self::Outputs) -> ProviderResult<Self::Outputs> {
        Ok(out)
    }
    /// What an in-place update changes besides the tags.
    async fn update_more(
        &self,
        _ctx: &Ctx,
        _old: &Self::Inputs,
        _out: &Self::Outputs,
        _new: &Self::Inputs,
    ) -> ProviderResult<()> {
        Ok(())
    }
    async fn delete(&self, ctx: &Ctx, inputs: &Self::Inputs, out: &Self::Outputs) -> ProviderResult<()>;
    /// Every item the filters match, all pages.
    async fn describe(&self, ctx: &Ctx, filters: Vec<Filter>) -> ProviderResult<Vec<Self::Item>>;
    /// What a described item says: its inputs and outputs.
    async fn observe(&self, ctx: &Ctx, item: &Self::Item) -> ProviderResult<(Self::Inputs, Self::Outputs)>;
    fn id(out: &Self::Outputs) -> &str;
    fn item_id(item: &Self::Item) -> Option<&str>;
    fn tags(inputs: &Self::Inputs) -> &Tags;
}

/// The engine's provider of a [`TaggedResource`] kind.
pub(crate) fn provider<T: TaggedResource>(kind: T) -> Arc<dyn Provider> {
    typed(Tagged(kind))
}

/// A [`TaggedResource`] kind as a [`TypedProvider`].
pub(crate) struct Tagged<T>(T);

impl<T: TaggedResource> Tagged<T> {
    /// The outputs of the first item the filters match.
    async fn first(&self, ctx: &Ctx, filters: Vec<Filter>) -> Read<Self> {
        match self.0.describe(ctx, filters).await?.first() {
            Some(item) => Ok(Some(self.0.observe(ctx, item).await?)),
            None => Ok(None),
        }
    }
}

#[async_trait]
impl<T: TaggedResource> TypedProvider for Tagged<T> {
    type Inputs = T::Inputs;
    type Outputs = T::Outputs;
    const TYPE: &'static str = T::TYPE;
    const REPLACE_ON: &'static [&'static str] = T::REPLACE_ON;
    const IMPORT: crate::engine::Import = T::IMPORT;

    async fn create(&self, ctx: &Ctx, urn: &Urn, inputs: &T::Inputs) -> ProviderResult<T::Outputs> {
        let ec2 = &ctx.aws()?.ec2;
        let create = || self.0.create_once(ec2, ctx, urn, inputs);
        let out = create_or_find(T::CREATE, Duration::from_millis(500), create, || self.find(ctx, urn, inputs)).await?;
        self.0.after_create(ctx, inputs, &out).await?;
        self.0.settled(ctx, out).await
    }

    async fn update(&self, ctx: &Ctx, _: &Urn, change: Update<'_, Self>) -> ProviderResult<T::Outputs> {
        let Update { old, outputs: out, new } = change;
        self.0.update_more(ctx, old, out, new).await?;
        sync_tags(ctx, T::id(out), T::tags(old), T::tags(new)).await?;
        Ok(out.clone())
    }

    async fn delete(&self, ctx: &Ctx, _: &Urn, inputs: &T::Inputs, out: &T::Outputs) -> ProviderResult<()> {
        self.0.delete(ctx, inputs, out).await
    }

    async fn read_many(&self, ctx: &Ctx, items: &[(Urn, T::Outputs)]) -> Reads<Self> {
        let filter = match T::ID_FILTER {
            Some(by_id) => super::filter(by_id, items.iter().map(|(_, o)| T::id(o))),
            None => stack_filter(ctx),
        };
        let found = &self.0.describe(ctx, vec![filter]).await?;
        read_each(items, |_, out| async move {
            let Some(item) = found.iter().find(|item| T::item_id(item) == Some(T::id(out))) else { return Ok(None) };
            Ok(Some(self.0.observe(ctx, item).await?))
        })
        .await
    }

    async fn find(&self, ctx: &Ctx, urn: &Urn, _: &T::Inputs) -> ProviderResult<Option<T::Outputs>> {
        Ok(self.first(ctx, urn_filters(ctx, urn)).await?.map(|(_, out)| out))
    }

    /// By its id (`vpc-…`, `subnet-…`).
    async fn import(&self, ctx: &Ctx, urn: &Urn, id: &str) -> Read<Self> {
        match T::ID_FILTER {
            Some(by_id) => self.first(ctx, vec![super::filter(by_id, [id])]).await,
            None => Err(format!("{} cannot be imported", urn.type_name()).into()),
        }
    }

    /// The resources whose `Name` tag is the program's name for it.
    async fn discover(&self, ctx: &Ctx, _: &Urn, inputs: &T::Inputs) -> ProviderResult<Vec<String>> {
        let (Some(_), Some(name)) = (T::ID_FILTER, T::tags(inputs).get("Name")) else { return Ok(Vec::new()) };
        let found = self.0.describe(ctx, vec![super::filter("tag:Name", [name.as_str()])]).await?;
        Ok(found.iter().filter_map(|item| T::item_id(item).map(String::from)).collect())
    }
}
