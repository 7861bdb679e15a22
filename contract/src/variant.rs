//! The row's `variants` column: a JSON array the Lambda writes and the edge
//! reads back to build variant URLs.

use serde::{Deserialize, Serialize};

use crate::format::OutputFormat;

/// One resized copy as recorded in the row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredVariant {
    pub width: u32,
    pub height: u32,
    /// `keys::variant(id, width, format)`.
    pub key: String,
    pub bytes: u64,
    /// Its media type is `format.content_type()`: rows written before the
    /// type was derived also hold a `content_type`, which is ignored.
    pub format: OutputFormat,
    /// Hex SHA-256 of the stored bytes, from the resizer's manifest.
    pub sha256: String,
}
