//! The image record as stored and as the domain hands it out. Its status
//! and variants are the contract's: the resize Lambda writes them.

use pixport_contract::{Placeholder, Status, StoredVariant};
use serde::Deserialize;

pub use crate::domain::fields::Metadata;
use crate::domain::sniff::Probe;

/// A row of `images`.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub id: String,
    pub owner: String,
    pub status: Status,
    pub meta: Metadata,
    pub file_name: Option<String>,
    pub content_type: String,
    pub format: Option<String>,
    pub bytes: Option<u64>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub checksum_sha256: Option<String>,
    pub original_key: String,
    pub variants: Vec<StoredVariant>,
    /// What made the variants (`pixport_contract::Recipe`), as the resize
    /// Lambda recorded it; `None` before it did, or for rows made before
    /// recipes were recorded.
    pub recipe: Option<String>,
    /// Set with `ready` by the resize Lambda.
    pub placeholder: Option<Placeholder>,
    pub failure_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A new row, before the original is stored.
#[derive(Debug, Clone)]
pub struct NewImage {
    pub id: String,
    pub owner: String,
    pub idempotency_key: Option<String>,
    pub meta: Metadata,
    pub file_name: Option<String>,
    /// What the file's head proved (a declared upload: its declared format,
    /// no dimensions until the resizer reads them).
    pub probe: Probe,
    pub original_key: String,
    /// The request that made it: stored with the original as object
    /// metadata, so the resize Lambda's log lines name it too.
    pub request_id: Option<String>,
}

/// What one owner holds, as the rows say.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Usage {
    pub images: i64,
    pub bytes: i64,
}

/// Filters for listing an owner's images.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub limit: u32,
    pub after: Option<String>,
    pub tag: Option<String>,
    pub status: Option<Status>,
    /// Whose rows: the caller's own; `None` only on the operators' route
    /// (every owner's).
    pub owner: Option<String>,
}

/// One page of a list, and whether more rows follow.
#[derive(Debug, Clone)]
pub struct ImagePage {
    pub images: Vec<Image>,
    pub more: bool,
}
