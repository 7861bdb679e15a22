//! What the edge worker and the resize Lambda both know.
//!
//! The two halves never call each other: they meet in S3 keys and in the
//! `images` row. Each used to spell that meeting point itself, so a change
//! on one side broke the other silently. This crate holds it once, with no
//! dependency but `serde` and `serde_json`, so it builds for the Worker (wasm32-unknown-unknown),
//! the resizer's target (wasm32-wasip1) and the native Lambda alike.
//!
//! The JSON shapes are pinned by fixtures (`fixtures/*.json`) that the tests
//! parse and write back unchanged.

pub mod failure;
pub mod format;
pub mod hmac;
pub mod keys;
pub mod limits;
pub mod manifest;
pub mod outputs;
pub mod recipe;
pub mod status;
pub mod variant;
pub mod wake;

pub use failure::Failure;
pub use format::{OutputFormat, SourceFormat};
pub use limits::{ImageLimits, LimitError};
pub use manifest::{MANIFEST_VERSION, Manifest, Placeholder};
pub use outputs::{FormatChoice, OutputRule, OutputSet, OutputSetError};
pub use recipe::Recipe;
pub use status::Status;
pub use variant::StoredVariant;
