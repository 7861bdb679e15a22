//! Sans-IO AWS request building for pixport.
//!
//! The edge worker (wasm32, Workers `fetch`) and the Lambda host (native,
//! an HTTP client) both talk to S3 and the RDS Data API. This crate holds
//! that code once: it builds and signs `http::Request`s and parses
//! responses, but never sends anything and never reads a clock, so each host
//! only supplies a small transport and the current time.
//!
//! Every call has one shape: an [`Operation`] builds its signed request
//! against a target that bundles credentials and endpoint once (an S3
//! [`s3::Bucket`], a Data API [`dataapi::Database`]) and parses its own
//! response. Every failure is one [`Error`], which says which [`Service`]
//! failed and whether a retry may help.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//!
//! use pixport_aws::s3::{Bucket, HeadObject};
//! use pixport_aws::{Credentials, Error, Operation, Region, S3Config, S3Endpoint, Service};
//!
//! let bucket = Bucket::new(
//!     Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None),
//!     S3Config {
//!         region: Region::new("eu-west-1"),
//!         endpoint: S3Endpoint::custom("http://127.0.0.1:9000", true)?,
//!     },
//!     "photos",
//! );
//! let head = HeadObject { key: "originals/01J" };
//! let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
//! let request = head.request(&bucket, now)?;
//! assert_eq!(request.uri(), "http://127.0.0.1:9000/photos/originals/01J");
//! assert!(request.headers().contains_key("authorization"));
//!
//! // The host sends it however it likes; say S3 answered 404.
//! let err = HeadObject::parse(http::StatusCode::NOT_FOUND, &http::HeaderMap::new(), b"")
//!     .unwrap_err();
//! assert_eq!(err.service(), Some(Service::S3));
//! assert!(matches!(err, Error::S3(e) if e.is_not_found()));
//! # Ok::<(), Error>(())
//! ```

pub mod checksum;
pub mod config;
pub mod dataapi;
pub mod encoding;
mod error;
pub mod operation;
pub mod resume;
pub mod s3;
pub mod sign;

pub use checksum::{Checksum, ChecksumAlgorithm, crc32c_base64, sha256_base64};
pub use config::{Credentials, DataApiConfig, Region, S3Config, S3Endpoint};
pub use error::{DataApiError, DataApiErrorKind, Error, S3Error, Service};
pub use operation::Operation;
pub use resume::ResumeWait;
