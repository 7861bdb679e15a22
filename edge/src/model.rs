//! The image record as stored and as clients see it.

use serde::{Deserialize, Serialize};

use crate::fields::Metadata;

/// Lifecycle of an image row; see `migrations/0001_images.sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Uploading,
    Pending,
    Ready,
    Failed,
    Deleting,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Uploading => "uploading",
            Status::Pending => "pending",
            Status::Ready => "ready",
            Status::Failed => "failed",
            Status::Deleting => "deleting",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "uploading" => Status::Uploading,
            "pending" => Status::Pending,
            "ready" => Status::Ready,
            "failed" => Status::Failed,
            "deleting" => Status::Deleting,
            _ => return None,
        })
    }
}

/// One resized copy, as the resize Lambda records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    pub width: u32,
    pub height: u32,
    pub key: String,
    pub bytes: u64,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub content_type: Option<String>,
}

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
    pub variants: Vec<Variant>,
    pub failure_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

pub fn original_key(id: &str) -> String {
    format!("originals/{id}")
}

pub fn variants_prefix(id: &str) -> String {
    format!("variants/{id}/")
}
