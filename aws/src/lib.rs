//! Sans-IO AWS request building for pixport.
//!
//! The edge worker (wasm32, Workers `fetch`) and the Lambda host (native,
//! an HTTP client) both talk to S3 and the RDS Data API. This crate holds
//! that code once: it builds and signs `http::Request`s and parses
//! responses, but never sends anything and never reads a clock, so each host
//! only supplies a small transport and the current time.

pub mod checksum;
pub mod config;
pub mod dataapi;
pub mod encoding;
mod error;
pub mod s3;
pub mod sign;

pub use checksum::{Checksum, ChecksumAlgorithm, crc32c_base64, sha256_base64};
pub use config::{Credentials, DataApiConfig, Region, S3Config, S3Endpoint};
pub use error::{DataApiError, DataApiErrorKind, Error, S3Error, Service};
