//! The image record as stored and as clients see it. Its status and
//! variants are the contract's: the resize Lambda writes them.

use pixport_contract::{Placeholder, Status, StoredVariant};

use crate::fields::Metadata;

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
    /// Set with `ready` by the resize Lambda.
    pub placeholder: Option<Placeholder>,
    pub failure_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}
