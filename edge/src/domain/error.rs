//! What can go wrong in the image lifecycle, in the domain's words.
//!
//! No status codes here: `http::error` maps each variant to one status and
//! one stable code. An upstream failure keeps its cause
//! (`pixport_aws::Error`, which names the service and says whether a retry
//! may help), so `?` on any S3 or Data API call picks the right variant and
//! the log keeps the detail; what a client is told is decided at the edge
//! of HTTP, never here.

use pixport_aws::{Error as AwsError, Service};

use crate::runtime::budget::{self, PaceError, Refused};

/// `Retry-After` of a `DuplicateInProgress`: the upload service has already
/// waited for the other upload; its store is nearly always done by then.
pub const DUPLICATE_RETRY_AFTER_SECS: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("request body is not valid multipart/form-data: {0}")]
    MalformedMultipart(String),
    #[error("the request has no file part")]
    MissingFile,
    #[error("the file part is empty")]
    EmptyFile,
    #[error("invalid field `{field}`: {reason}")]
    InvalidField { field: String, reason: String },
    #[error("too many form fields (limit {0})")]
    TooManyFields(usize),
    #[error("no image with this id")]
    NotFound,
    #[error("an upload with this Idempotency-Key is still in progress")]
    IdempotencyInProgress,
    #[error("this Idempotency-Key was used for another file: use a new key for a new upload")]
    IdempotencyKeyReused,
    /// Another upload of the same bytes by the same owner is still being
    /// stored; once it is, sending again returns it as the duplicate.
    #[error(
        "the same file is being uploaded by another request: retry in {DUPLICATE_RETRY_AFTER_SECS} s"
    )]
    DuplicateInProgress,
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("the image is corrupt or truncated: {0}")]
    CorruptImage(String),
    #[error("the image is too large: {0}")]
    ImageTooLarge(String),
    #[error("this token already holds {limit} images: delete some before uploading more")]
    ImageQuota { limit: u64 },
    #[error(
        "this upload would take this token's stored originals over {limit} bytes: \
         delete some before uploading more"
    )]
    StorageQuota { limit: u64 },
    /// With the widths the image does have, so a client can correct itself.
    #[error("this image has no variant {width} px wide; it has {available}")]
    NoSuchWidth { width: String, available: String },
    #[error("the image is {status}: its variants are not made yet")]
    NotReady { status: &'static str },
    /// S3 refused or failed.
    #[error("object storage: {0}")]
    Storage(#[source] AwsError),
    /// The Data API refused or failed.
    #[error("database: {0}")]
    Database(#[source] AwsError),
    /// An AWS request that could not even be built (bad endpoint, key or
    /// signing input): the worker's setup, not the service, is at fault.
    #[error("cannot build an AWS request: {0}")]
    Request(#[source] AwsError),
    #[error(
        "this worker is holding as many uploads as its memory allows: retry in \
         {retry_after_secs} s, or send large files straight to storage with POST /uploads"
    )]
    OverCapacity { retry_after_secs: u32 },
    /// The client stopped sending its body (`runtime::budget::Metered`):
    /// the upload gave its share of the memory budget back.
    #[error(
        "the upload's body made no progress for {idle_secs} s: send it without long pauses, \
         or send large files straight to storage with POST /uploads"
    )]
    UploadStalled { idle_secs: u64 },
    /// A credential was presented and is not valid (a JWT's failed rule,
    /// a grant that is not one); the message says which rule.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller is known but may not do this.
    #[error("this credential may not {0}")]
    Forbidden(String),
    #[error("the upload grant has expired: ask for a new one")]
    GrantExpired,
    #[error("the upload grant was used already: ask for a new one")]
    GrantUsed,
    #[error("outside the upload grant: {0}")]
    GrantExceeded(String),
    /// A delivery URL's signature does not match (`domain::delivery`).
    #[error("the delivery URL's signature is not valid")]
    BadSignature,
    /// A signed delivery URL past its `expires`.
    #[error("the delivery URL has expired: ask for the image again for a new one")]
    LinkExpired,
    /// Private images need signed delivery (`DELIVERY_KEYS`) and no public
    /// base in front of `variants/`.
    #[error("this deployment cannot keep images private: {0}")]
    PrivateUnavailable(&'static str),
    /// The identity provider's keys could not be fetched.
    #[error("the identity provider is unavailable: {0}")]
    IdentityUnavailable(String),
    /// The runtime failed at something no client can change (a digest, the
    /// random source); the cause is for the log.
    #[error("the runtime failed: {0}")]
    Runtime(String),
    /// A webhook event a delivery run is sending right now: redelivery
    /// waits for that attempt's outcome.
    #[error("this event is being sent right now: ask again once this attempt has ended")]
    DeliveryInProgress,
    /// A wake-up call without a valid signature (`pixport_contract::wake::call`).
    #[error("the wake-up call is not signed with the wake secret: {0}")]
    WakeRefused(&'static str),
}

impl Error {
    pub fn invalid_field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// By the service that failed, so `?` on any `pixport-aws` call is right.
impl From<AwsError> for Error {
    fn from(e: AwsError) -> Self {
        match e.service() {
            Some(Service::S3) => Error::Storage(e),
            Some(Service::DataApi) => Error::Database(e),
            None => Error::Request(e),
        }
    }
}

impl From<PaceError> for Error {
    fn from(e: PaceError) -> Self {
        match e {
            PaceError::Stalled(ms) => Error::UploadStalled {
                idle_secs: ms.div_ceil(1000),
            },
            PaceError::NoRoom => Error::OverCapacity {
                retry_after_secs: budget::RETRY_AFTER_SECS,
            },
        }
    }
}

impl From<Refused> for Error {
    fn from(r: Refused) -> Self {
        Error::OverCapacity {
            retry_after_secs: r.retry_after_secs,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
