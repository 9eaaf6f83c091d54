//! What a resource's handle (its `…Ref`, returned by `.add`) offers: its URN and one typed
//! [`Output`](crate::model::Output) per output the provider records.

/// Writes a handle's `urn()` and its output accessors, inside its `impl` block. `outputs!(urn =>
/// id: String, arn: String)` reads the URN from the field `urn` and gives `id()` and `arn()`, each
/// an [`Output`](crate::model::Output) that refers to the output of that name; a `///` line before
/// a name documents it further, and `address as "primary_address"` reads an output of another name.
///
/// ```text
/// impl KmsKeyRef {
///     outputs!(urn =>
///         /// The key's ARN, known after apply.
///         arn: String,
///         key_id: String,
///     );
/// }
/// ```
macro_rules! outputs {
    ($urn:ident => $($(#[$doc:meta])* $name:ident $(as $key:literal)?: $ty:ty),* $(,)?) => {
        /// The resource's URN: what [`crate::model::Stack`] knows it by.
        pub fn urn(&self) -> &crate::model::Urn {
            &self.$urn
        }
        $(
            #[doc = concat!("The `", stringify!($name), "` output.")]
            $(#[$doc])*
            pub fn $name(&self) -> crate::model::Output<$ty> {
                crate::model::Output::reference(self.$urn.clone(), outputs!(@key $name $($key)?))
            }
        )*
    };
    (@key $name:ident) => {
        stringify!($name)
    };
    (@key $name:ident $key:literal) => {
        $key
    };
}

/// Writes what a provider declares about its resource type, inside its `impl TypedProvider` (or
/// `TaggedResource`, `MaybeLacking`) block: the type name, the inputs and outputs, the fields whose
/// change replaces it, and whether it can be imported. For an EC2 kind also the item its Describe
/// call lists, which of the item's ids is which output (`{ id: vpc_id }`: the output `id` is the
/// item's `vpc_id()`), and the name of its create call; its tags are the inputs' `tags`.
///
/// ```text
/// impl TypedProvider for KeyProvider {
///     resource_type!(KEY, KeyInputs => KeyOutputs, replace_on &["alias"], import Import::Never("not implemented yet"));
///     // … create, update, delete, read_many, find
/// }
/// impl TaggedResource for VpcKind {
///     resource_type!(TYPE, VpcInputs => VpcOutputs, item Vpc { id: vpc_id }, create "CreateVpc",
///         replace_on &["cidr_block"], import Import::ById);
///     // … create_once, delete, describe, observe
/// }
/// ```
macro_rules! resource_type {
    ($type_name:expr, $inputs:ty => $outputs:ty $(, item $item:ty { $out_id:ident: $item_id:ident })?
        $(, create $create:expr)?, replace_on $replace_on:expr, import $import:expr $(,)?) => {
        type Inputs = $inputs;
        type Outputs = $outputs;
        const TYPE: &'static str = $type_name;
        const REPLACE_ON: &'static [&'static str] = $replace_on;
        const IMPORT: crate::engine::Import = $import;
        $(const CREATE: &'static str = $create;)?
        $(
            type Item = $item;

            fn id(out: &$outputs) -> &str {
                &out.$out_id
            }

            fn item_id(item: &$item) -> Option<&str> {
                item.$item_id()
            }

            fn tags(inputs: &$inputs) -> &crate::aws::Tags {
                &inputs.tags
            }
        )?
    };
}
