//! The one place where failures become AWS error responses.
//!
//! The Data API speaks rest-json: the exception name travels in
//! `x-amzn-ErrorType` and the body is `{"message": ...}`; botocore builds its
//! exception classes from exactly those two, so names and statuses here must
//! match the service model.

use http::StatusCode;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ApiError {
    /// No `Authorization` header at all.
    #[error("Missing Authentication Token")]
    MissingAuth,
    /// `Authorization` present but not a well-formed SigV4 header.
    #[error("{0}")]
    IncompleteSignature(String),
    /// Access key id is not the configured one.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    /// Signature, scope or clock skew wrong.
    #[error("{0}")]
    InvalidSignature(String),
    /// The request named a host this server does not answer for (DNS
    /// rebinding: a web page whose name resolves to 127.0.0.1).
    #[error("Host {0:?} is not served here")]
    ForbiddenHost(String),
    /// The signer's IAM policies do not allow the action on the resource.
    #[error("{0}")]
    AccessDenied(String),
    /// Request or SQL problem; AWS reports database errors this way too.
    #[error("{0}")]
    BadRequest(String),
    /// Could not reach MariaDB.
    #[error("{0}")]
    ServiceUnavailable(String),
    /// The auto-paused cluster (this writer instance id) is resuming.
    #[error(
        "The Aurora DB instance {0} is resuming after being auto-paused. Please wait a few seconds and try again."
    )]
    DatabaseResuming(String),
    /// The statement ran past the statement timeout on this connection.
    #[error("Request timed out")]
    StatementTimeout { connection_id: u32 },
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// (HTTP status, `x-amzn-ErrorType`, message).
    pub fn parts(&self) -> (StatusCode, &'static str, String) {
        let (status, name) = match self {
            Self::MissingAuth => (StatusCode::FORBIDDEN, "MissingAuthenticationTokenException"),
            Self::IncompleteSignature(_) => {
                (StatusCode::BAD_REQUEST, "IncompleteSignatureException")
            }
            Self::UnrecognizedClient => (StatusCode::FORBIDDEN, "UnrecognizedClientException"),
            Self::ForbiddenHost(_) | Self::AccessDenied(_) => {
                (StatusCode::FORBIDDEN, "AccessDeniedException")
            }
            Self::InvalidSignature(_) => (StatusCode::FORBIDDEN, "InvalidSignatureException"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "BadRequestException"),
            Self::ServiceUnavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailableError")
            }
            Self::DatabaseResuming(_) => (StatusCode::BAD_REQUEST, "DatabaseResumingException"),
            Self::StatementTimeout { .. } => (StatusCode::BAD_REQUEST, "StatementTimeoutException"),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerErrorException",
            ),
        };
        (status, name, self.to_string())
    }

    /// JSON body; the message is escaped by serde, never spliced.
    /// `StatementTimeoutException` also names the connection that ran it.
    pub fn body(&self) -> String {
        let (_, _, message) = self.parts();
        match self {
            Self::StatementTimeout { connection_id } => {
                serde_json::json!({ "message": message, "dbConnectionId": connection_id })
            }
            _ => serde_json::json!({ "message": message }),
        }
        .to_string()
    }

    pub fn bad(msg: impl Into<String>) -> Self {
        Self::BadRequest(msg.into())
    }
}

impl From<mysql_async::Error> for ApiError {
    /// Server-side SQL errors reach the caller verbatim (e.g. "Duplicate entry
    /// '1' for key 'PRIMARY'"), as the real service passes the engine's text.
    fn from(e: mysql_async::Error) -> Self {
        match e {
            mysql_async::Error::Server(s) => Self::BadRequest(s.message),
            mysql_async::Error::Io(io) => {
                Self::ServiceUnavailable(format!("Communications link failure: {io}"))
            }
            mysql_async::Error::Driver(d) => Self::BadRequest(d.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_statuses_match_the_service_model() {
        let cases = [
            (ApiError::bad("x"), 400, "BadRequestException"),
            (
                ApiError::MissingAuth,
                403,
                "MissingAuthenticationTokenException",
            ),
            (
                ApiError::UnrecognizedClient,
                403,
                "UnrecognizedClientException",
            ),
            (
                ApiError::InvalidSignature("s".into()),
                403,
                "InvalidSignatureException",
            ),
            (
                ApiError::IncompleteSignature("s".into()),
                400,
                "IncompleteSignatureException",
            ),
            (
                ApiError::ServiceUnavailable("s".into()),
                503,
                "ServiceUnavailableError",
            ),
            (
                ApiError::Internal("s".into()),
                500,
                "InternalServerErrorException",
            ),
            (
                ApiError::DatabaseResuming("i".into()),
                400,
                "DatabaseResumingException",
            ),
            (
                ApiError::StatementTimeout { connection_id: 7 },
                400,
                "StatementTimeoutException",
            ),
        ];
        for (e, status, name) in cases {
            let (s, n, _) = e.parts();
            assert_eq!((s.as_u16(), n), (status, name));
        }
    }

    #[test]
    fn statement_timeout_names_the_connection() {
        let v: serde_json::Value =
            serde_json::from_str(&ApiError::StatementTimeout { connection_id: 42 }.body()).unwrap();
        assert_eq!(v["dbConnectionId"], 42);
        assert_eq!(v["message"], "Request timed out");
    }

    #[test]
    fn body_is_escaped_json() {
        let e = ApiError::bad("Duplicate entry '1' for key \"PRIMARY\"");
        let v: serde_json::Value = serde_json::from_str(&e.body()).unwrap();
        assert_eq!(v["message"], "Duplicate entry '1' for key \"PRIMARY\"");
    }
}
