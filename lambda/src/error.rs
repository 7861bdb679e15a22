//! One error type, split by what Lambda should do about it.
//!
//! The only question the handler asks of a failure is "retry or record?":
//! retrying a deterministic resizer failure burns money forever, while
//! recording a passing S3 outage as `failed` loses an image that would have
//! worked a minute later.

use pixport_contract::Failure;

/// Everything that can stop one record from being processed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Start-up configuration that can never work; the process exits.
    #[error("config: {0}")]
    Config(String),
    /// S3 or the Data API refused or failed in a way that may clear on retry
    /// (network, 5xx, throttling, a resuming Aurora cluster).
    #[error("transient: {0}")]
    Transient(String),
    /// A storage error retrying will not fix (403, bad request, a missing
    /// table): recorded, then reported so an operator sees it.
    #[error("store: {0}")]
    Store(String),
    /// An invocation payload this function does not handle.
    #[error("bad event: {0}")]
    BadEvent(String),
    /// The resizer refused this image; the same bytes always fail the same way.
    #[error("{}: {message}", failure.code())]
    Resize { failure: Failure, message: String },
}

impl Error {
    /// Whether Lambda should run the invocation again.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Transient(_))
    }

    /// The public failure class this error is recorded as: the resizer's
    /// own, `Transient` for a passing outage, and `Internal` for what
    /// describes this deployment (configuration, a refused store call).
    pub fn failure(&self) -> Failure {
        match self {
            Error::Transient(_) => Failure::Transient,
            Error::Resize { failure, .. } => *failure,
            Error::Config(_) | Error::Store(_) | Error::BadEvent(_) => Failure::Internal,
        }
    }

    pub fn resize(failure: Failure, message: impl Into<String>) -> Self {
        Error::Resize {
            failure,
            message: message.into(),
        }
    }
}

impl From<pixport_aws::Error> for Error {
    fn from(e: pixport_aws::Error) -> Self {
        if e.is_retryable() {
            Error::Transient(e.to_string())
        } else {
            Error::Store(e.to_string())
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
