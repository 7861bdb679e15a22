//! The crate's single error type.
//!
//! Callers (the edge worker and the Lambda host) mostly need to answer one
//! question about a failure: retry it or report it. Service errors therefore
//! keep the service's own code and message, plus a classification, instead of
//! being flattened into strings.

use std::fmt;

use http::StatusCode;

/// The service a failure came from. Callers report object storage and
/// database failures differently (the edge has distinct error codes), so
/// every failure of a call to a service says which it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    S3,
    DataApi,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::S3 => "S3",
            Service::DataApi => "Data API",
        })
    }
}

/// Everything that can go wrong while building a request or reading a response.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Configuration that can never produce a valid request (bad endpoint URL, ...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A per-call argument S3 or the URL layer cannot represent (empty key, bad bucket, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// aws-sigv4 refused to sign; in practice a header value it cannot canonicalise.
    #[error("signing failed: {0}")]
    Signing(String),
    /// S3 answered with an error document (or an error status without one).
    #[error(transparent)]
    S3(#[from] S3Error),
    /// The Data API answered with an error.
    #[error(transparent)]
    DataApi(#[from] DataApiError),
    /// The host's transport got no HTTP answer at all (connection refused,
    /// DNS, reset, timeout). This crate never sends anything: hosts report
    /// their transport failures here so that they classify like the rest.
    #[error("{service} unreachable: {detail}")]
    Unreachable { service: Service, detail: String },
    /// A success status with a body this crate cannot read.
    #[error("cannot decode {what} response (HTTP {status}): {detail}")]
    Decode {
        service: Service,
        what: &'static str,
        status: StatusCode,
        detail: String,
    },
    /// Result rows that do not fit the requested Rust type.
    #[error("cannot decode rows: {0}")]
    Rows(String),
}

impl Error {
    /// Whether sending the same request again later may succeed.
    ///
    /// Only service-side conditions are retryable; a request this crate
    /// refused to build will be refused again.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::S3(e) => e.is_retryable(),
            Error::DataApi(e) => e.is_retryable(),
            Error::Decode { status, .. } => status.is_server_error(),
            Error::Unreachable { .. } => true,
            _ => false,
        }
    }

    /// The service whose call failed; `None` for a request this crate
    /// refused to build (configuration, input or signing), which no service
    /// ever saw.
    pub fn service(&self) -> Option<Service> {
        match self {
            Error::S3(_) => Some(Service::S3),
            Error::DataApi(_) | Error::Rows(_) => Some(Service::DataApi),
            Error::Unreachable { service, .. } | Error::Decode { service, .. } => Some(*service),
            Error::Config(_) | Error::InvalidInput(_) | Error::Signing(_) => None,
        }
    }

    /// A transport failure: no answer from `service`.
    pub fn unreachable(service: Service, detail: impl ToString) -> Self {
        Error::Unreachable {
            service,
            detail: detail.to_string(),
        }
    }

    pub(crate) fn decode(
        service: Service,
        what: &'static str,
        status: StatusCode,
        detail: impl ToString,
    ) -> Self {
        Error::Decode {
            service,
            what,
            status,
            detail: detail.to_string(),
        }
    }
}

/// An S3 error response, as S3 describes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("S3 error {code} (HTTP {status}): {message}")]
pub struct S3Error {
    pub status: StatusCode,
    /// S3's error code (`NoSuchKey`, `SignatureDoesNotMatch`, ...). HEAD
    /// responses carry no body, so for them this is the status number, as in
    /// boto3.
    pub code: String,
    pub message: String,
    /// From the `x-amz-request-id` header, else the body (boto3's order): what AWS support asks for.
    pub request_id: Option<String>,
    pub host_id: Option<String>,
}

impl S3Error {
    /// Throttling and server-side failures; S3 documents these as safe to retry.
    pub fn is_retryable(&self) -> bool {
        self.status.is_server_error()
            || self.status == StatusCode::TOO_MANY_REQUESTS
            || matches!(
                self.code.as_str(),
                "SlowDown" | "InternalError" | "RequestTimeout" | "ServiceUnavailable"
            )
    }

    /// A missing object: `NoSuchKey` from GET, a bare 404 from HEAD.
    pub fn is_not_found(&self) -> bool {
        matches!(self.code.as_str(), "NoSuchKey" | "NotFound" | "404")
    }
}

/// The Data API's error codes, from botocore's `rds-data` model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataApiErrorKind {
    AccessDenied,
    BadRequest,
    DatabaseError,
    DatabaseNotFound,
    DatabaseResuming,
    DatabaseUnavailable,
    Forbidden,
    HttpEndpointNotEnabled,
    InternalServerError,
    InvalidResourceState,
    InvalidSecret,
    NotFound,
    SecretsError,
    ServiceUnavailable,
    StatementTimeout,
    TransactionNotFound,
    UnsupportedResult,
    /// Generic AWS throttling (`ThrottlingException`, HTTP 429), not in the
    /// service model but sent by the front door of every AWS API.
    Throttling,
    /// A code this crate does not know; classified by status alone.
    Unknown,
}

impl DataApiErrorKind {
    /// Maps the wire code (already stripped of `:...` and `...#`) to a kind.
    pub fn from_code(code: &str) -> Self {
        use DataApiErrorKind::*;
        match code {
            "AccessDeniedException" => AccessDenied,
            "BadRequestException" => BadRequest,
            "DatabaseErrorException" => DatabaseError,
            "DatabaseNotFoundException" => DatabaseNotFound,
            "DatabaseResumingException" => DatabaseResuming,
            "DatabaseUnavailableException" => DatabaseUnavailable,
            "ForbiddenException" => Forbidden,
            "HttpEndpointNotEnabledException" => HttpEndpointNotEnabled,
            "InternalServerErrorException" => InternalServerError,
            "InvalidResourceStateException" => InvalidResourceState,
            "InvalidSecretException" => InvalidSecret,
            "NotFoundException" => NotFound,
            "SecretsErrorException" => SecretsError,
            "ServiceUnavailableError" => ServiceUnavailable,
            "StatementTimeoutException" => StatementTimeout,
            "TransactionNotFoundException" => TransactionNotFound,
            "UnsupportedResultException" => UnsupportedResult,
            "ThrottlingException" | "TooManyRequestsException" => Throttling,
            _ => Unknown,
        }
    }

    /// Conditions that clear on their own: an Aurora Serverless cluster waking
    /// up, a busy or restarting service, throttling. A statement timeout is
    /// included because the usual cause is a cold or overloaded cluster; note
    /// that outside a transaction the statement may still have committed.
    pub fn is_retryable(self) -> bool {
        use DataApiErrorKind::*;
        matches!(
            self,
            StatementTimeout
                | ServiceUnavailable
                | DatabaseResuming
                | DatabaseUnavailable
                | InternalServerError
                | Throttling
        )
    }
}

/// A Data API error response.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("Data API error {code} (HTTP {status}): {message}")]
pub struct DataApiError {
    pub status: StatusCode,
    pub kind: DataApiErrorKind,
    /// The code as sent, so unknown codes are still reported verbatim.
    pub code: String,
    pub message: String,
    pub request_id: Option<String>,
    /// Sent with `StatementTimeoutException`: the connection still running the statement.
    pub db_connection_id: Option<i64>,
}

impl DataApiError {
    /// Retryable by kind, and any 5xx or 429 whatever its code says.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
            || self.status.is_server_error()
            || self.status == StatusCode::TOO_MANY_REQUESTS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_failure_names_its_service() {
        let s3 = Error::S3(S3Error {
            status: StatusCode::FORBIDDEN,
            code: "AccessDenied".into(),
            message: "denied".into(),
            request_id: None,
            host_id: None,
        });
        assert_eq!(s3.service(), Some(Service::S3));
        assert!(!s3.is_retryable());
        assert_eq!(Error::Rows("x".into()).service(), Some(Service::DataApi));
        let decode = Error::decode(Service::DataApi, "ExecuteStatement", StatusCode::OK, "x");
        assert_eq!(decode.service(), Some(Service::DataApi));
        assert_eq!(Error::InvalidInput("x".into()).service(), None);
    }

    #[test]
    fn no_answer_is_retryable() {
        let e = Error::unreachable(Service::S3, "connection refused");
        assert!(e.is_retryable());
        assert_eq!(e.service(), Some(Service::S3));
        assert_eq!(e.to_string(), "S3 unreachable: connection refused");
    }
}
