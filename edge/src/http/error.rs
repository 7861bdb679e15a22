//! The one place a failure becomes an HTTP answer: a status, a stable
//! code (part of the API contract, documented in `openapi.json`: clients
//! branch on `error.code`, never on the message), headers and a JSON body.
//!
//! `ApiError` is what HTTP itself refuses (no route, a method, a token, a
//! query, JSON, a burst limit, `Accept`) plus every domain error
//! (`domain::error::Error`, converted by `?`) and a configuration that
//! does not parse. Upstream failures keep their cause for the log; the
//! public body says only which part failed.

use serde_json::json;

use crate::app::ConfigError;
use crate::domain::error::{DUPLICATE_RETRY_AFTER_SECS, Error};

/// `Retry-After` of a 503 `storage_unavailable` / `database_unavailable`:
/// a restart or failover of the upstream takes seconds.
pub const UPSTREAM_RETRY_AFTER_SECS: u32 = 5;

/// `Retry-After` of a 502 `storage_error` / `database_error`: the upstream
/// refused the request (a missing permission, a table), which an operator
/// fixes, so later than an outage.
pub const UPSTREAM_FAILED_RETRY_AFTER_SECS: u32 = 60;

/// `Retry-After` of a 409 `not_ready`: most resizes finish in a few seconds.
pub const NOT_READY_RETRY_AFTER_SECS: u32 = 2;
/// An attempt ends within the webhook timeout (10 s by default).
pub const DELIVERY_RETRY_AFTER_SECS: u32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Domain(#[from] Error),
    #[error("server misconfigured: {0}")]
    Misconfigured(#[from] ConfigError),
    #[error("invalid JSON body: {0}")]
    InvalidJson(String),
    #[error("invalid query parameter `{0}`")]
    InvalidQuery(&'static str),
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("no route for {0}")]
    NoRoute(String),
    /// With the methods the path does take, for the `Allow` header RFC 9110
    /// requires on a 405.
    #[error("method not allowed; this path takes {0}")]
    MethodNotAllowed(&'static str),
    #[error("too many requests with this token: retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u32 },
    /// With the media types held, as RFC 9110 suggests for a 406.
    #[error(
        "none of the formats this variant is stored in is in the request's Accept: {available}"
    )]
    NotAcceptable { available: String },
    /// An error of a route Uppy's `@uppy/aws-s3` calls: the same answer,
    /// with the top-level `message` Uppy shows for a 4xx.
    #[error(transparent)]
    ForUppy(Box<ApiError>),
}

/// A domain error straight from `pixport-aws` (`?` on an adapter call in
/// a handler).
impl From<pixport_aws::Error> for ApiError {
    fn from(e: pixport_aws::Error) -> Self {
        ApiError::Domain(e.into())
    }
}

impl ApiError {
    /// HTTP status and stable error code.
    pub fn status_and_code(&self) -> (u16, &'static str) {
        match self {
            ApiError::Domain(e) => Self::status_and_code_of(e),
            ApiError::ForUppy(e) => e.status_and_code(),
            ApiError::Misconfigured(_) => (500, "misconfigured"),
            ApiError::InvalidJson(_) => (400, "invalid_json"),
            ApiError::InvalidQuery(_) => (400, "invalid_query"),
            ApiError::Unauthorized => (401, "unauthorized"),
            ApiError::NoRoute(_) => (404, "no_route"),
            ApiError::MethodNotAllowed(_) => (405, "method_not_allowed"),
            ApiError::RateLimited { .. } => (429, "rate_limited"),
            ApiError::NotAcceptable { .. } => (406, "not_acceptable"),
        }
    }

    /// A domain error's status and code.
    pub fn status_and_code_of(e: &Error) -> (u16, &'static str) {
        match e {
            Error::MalformedMultipart(_) => (400, "malformed_multipart"),
            Error::MissingFile => (400, "missing_file"),
            Error::EmptyFile => (400, "empty_file"),
            Error::InvalidField { .. } => (400, "invalid_field"),
            Error::TooManyFields(_) => (400, "too_many_fields"),
            Error::NotFound => (404, "not_found"),
            Error::IdempotencyInProgress => (409, "idempotency_in_progress"),
            Error::IdempotencyKeyReused => (422, "idempotency_key_reused"),
            Error::DuplicateInProgress => (409, "duplicate_in_progress"),
            Error::PayloadTooLarge(_) => (413, "payload_too_large"),
            Error::StorageQuota { .. } => (413, "storage_quota_exceeded"),
            Error::ImageQuota { .. } => (429, "image_quota_exceeded"),
            Error::NoSuchWidth { .. } => (404, "no_such_width"),
            Error::NotReady { .. } => (409, "not_ready"),
            Error::BadSignature => (403, "invalid_signature"),
            Error::LinkExpired => (403, "link_expired"),
            Error::PrivateUnavailable(_) => (400, "private_unavailable"),
            Error::UnsupportedMediaType(_) => (415, "unsupported_media_type"),
            Error::CorruptImage(_) => (422, "corrupt_image"),
            Error::ImageTooLarge(_) => (422, "image_too_large"),
            Error::Storage(e) if e.is_retryable() => (503, "storage_unavailable"),
            Error::Storage(_) => (502, "storage_error"),
            Error::Database(e) if e.is_retryable() => (503, "database_unavailable"),
            Error::Database(_) => (502, "database_error"),
            Error::OverCapacity { .. } => (503, "over_capacity"),
            Error::UploadStalled { .. } => (408, "upload_stalled"),
            // An AWS request that cannot be built is the deploy's setup.
            Error::Unauthenticated(_) => (401, "unauthorized"),
            Error::Forbidden(_) => (403, "forbidden"),
            Error::GrantExpired => (401, "grant_expired"),
            Error::GrantUsed => (409, "grant_used"),
            Error::GrantExceeded(_) => (403, "grant_exceeded"),
            Error::IdentityUnavailable(_) => (503, "identity_unavailable"),
            Error::Request(_) => (500, "misconfigured"),
            Error::Runtime(_) => (500, "internal_error"),
            Error::DeliveryInProgress => (409, "delivery_in_progress"),
            Error::WakeRefused(_) => (401, "wake_refused"),
        }
    }

    /// What a client is told. Upstream failures name the part that failed
    /// and nothing else: their causes carry URLs, SQL and AWS request ids.
    fn public_message(&self) -> String {
        match self {
            ApiError::Domain(Error::Storage(e)) if e.is_retryable() => {
                "object storage is unavailable".into()
            }
            ApiError::Domain(Error::Storage(_)) => "object storage failed".into(),
            ApiError::Domain(Error::Database(e)) if e.is_retryable() => {
                "the database is unavailable".into()
            }
            ApiError::Domain(Error::Database(_)) => "the database failed".into(),
            ApiError::Domain(Error::IdentityUnavailable(_)) => {
                "the identity provider's keys are unavailable".into()
            }
            ApiError::Domain(Error::Runtime(_)) => {
                "the server failed; the request id is in the log".into()
            }
            ApiError::Domain(Error::Request(_)) | ApiError::Misconfigured(_) => {
                "server misconfigured".into()
            }
            other => other.to_string(),
        }
    }

    /// Headers the answer carries besides the body. Every 502/503 says when
    /// to come back: an outage of S3 or the Data API is over in seconds, and
    /// clients that retry at once (or never) make it worse (or lose the upload).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let secs = match self {
            ApiError::ForUppy(e) => return e.headers(),
            ApiError::Domain(Error::OverCapacity { retry_after_secs })
            | ApiError::RateLimited { retry_after_secs } => *retry_after_secs,
            ApiError::Domain(Error::Storage(e) | Error::Database(e)) if e.is_retryable() => {
                UPSTREAM_RETRY_AFTER_SECS
            }
            ApiError::Domain(Error::Storage(_) | Error::Database(_)) => {
                UPSTREAM_FAILED_RETRY_AFTER_SECS
            }
            ApiError::MethodNotAllowed(allow) => return vec![("allow", (*allow).to_string())],
            ApiError::Domain(Error::NotReady { .. }) => NOT_READY_RETRY_AFTER_SECS,
            ApiError::Domain(Error::IdentityUnavailable(_)) => UPSTREAM_RETRY_AFTER_SECS,
            // RFC 6750: a refused bearer credential says so.
            ApiError::Unauthorized => {
                return vec![("www-authenticate", "Bearer realm=\"pixport\"".into())];
            }
            ApiError::Domain(Error::Unauthenticated(_) | Error::GrantExpired) => {
                return vec![(
                    "www-authenticate",
                    "Bearer realm=\"pixport\", error=\"invalid_token\"".into(),
                )];
            }
            ApiError::Domain(Error::DuplicateInProgress) => DUPLICATE_RETRY_AFTER_SECS,
            ApiError::Domain(Error::DeliveryInProgress) => DELIVERY_RETRY_AFTER_SECS,
            // The same URL answers differently to another Accept.
            ApiError::NotAcceptable { .. } => return vec![("vary", "accept".into())],
            // The rest of the body is not read: the connection ends here.
            ApiError::Domain(Error::UploadStalled { .. }) => {
                return vec![("connection", "close".into())];
            }
            _ => return Vec::new(),
        };
        vec![("retry-after", secs.to_string())]
    }

    /// The one JSON error shape: `{"error": {"code", "message", "request_id"}}`.
    pub fn body(&self, request_id: &str) -> serde_json::Value {
        let (_, code) = self.status_and_code();
        let message = self.public_message();
        let mut body =
            json!({"error": {"code": code, "message": message, "request_id": request_id}});
        if let ApiError::ForUppy(_) = self {
            body["message"] = format!("{code}: {message}").into();
        }
        body
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;
    use pixport_aws::{Error as AwsError, Service};

    #[test]
    fn body_has_the_documented_shape() {
        let b = ApiError::from(Error::MissingFile).body("req-1");
        assert_eq!(b["error"]["code"], "missing_file");
        assert_eq!(b["error"]["request_id"], "req-1");
        assert!(
            b["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }

    #[test]
    fn client_errors_are_4xx_and_upstream_errors_5xx() {
        assert_eq!(ApiError::Unauthorized.status_and_code().0, 401);
        assert_eq!(
            ApiError::from(Error::PayloadTooLarge("x".into()))
                .status_and_code()
                .0,
            413
        );
        assert_eq!(
            ApiError::from(Error::UnsupportedMediaType("x".into()))
                .status_and_code()
                .0,
            415
        );
        assert_eq!(
            ApiError::from(Error::CorruptImage("x".into()))
                .status_and_code()
                .0,
            422
        );
        assert_eq!(
            ApiError::from(Error::StorageQuota { limit: 1 }).status_and_code(),
            (413, "storage_quota_exceeded")
        );
        assert_eq!(
            ApiError::from(Error::ImageQuota { limit: 1 }).status_and_code(),
            (429, "image_quota_exceeded")
        );
        let limited = ApiError::RateLimited {
            retry_after_secs: 10,
        };
        assert_eq!(limited.status_and_code(), (429, "rate_limited"));
        assert_eq!(limited.headers(), [("retry-after", "10".to_string())]);
    }

    #[test]
    fn configuration_detail_stays_in_the_log() {
        let body = ApiError::from(ConfigError("DB_SECRET_ARN is not set".into()))
            .body("r")
            .to_string();
        assert!(!body.contains("DB_SECRET_ARN"), "{body}");
    }

    /// Found by schemathesis (`unsupported_method`): RFC 9110 requires a 405
    /// to list what the path does take.
    #[test]
    fn method_not_allowed_names_the_allowed_methods() {
        let e = ApiError::MethodNotAllowed("GET, POST");
        assert_eq!(e.status_and_code(), (405, "method_not_allowed"));
        assert_eq!(e.headers(), vec![("allow", "GET, POST".to_string())]);
    }

    fn s3_refusal() -> AwsError {
        AwsError::S3(pixport_aws::S3Error {
            status: http::StatusCode::FORBIDDEN,
            code: "AccessDenied".into(),
            message: "Access Denied".into(),
            request_id: Some("REQ123".into()),
            host_id: None,
        })
    }

    #[test]
    fn every_upstream_failure_says_when_to_retry() {
        let after = |e: ApiError| e.headers();
        assert_eq!(
            after(AwsError::unreachable(Service::S3, "refused").into()),
            [("retry-after", "5".to_owned())]
        );
        assert_eq!(
            after(AwsError::unreachable(Service::DataApi, "refused").into()),
            [("retry-after", "5".to_owned())]
        );
        assert_eq!(
            after(s3_refusal().into()),
            [("retry-after", "60".to_owned())]
        );
        assert!(after(ApiError::from(Error::MissingFile)).is_empty());
    }

    #[test]
    fn aws_errors_map_by_service_and_retryability() {
        let code = |e: AwsError| ApiError::from(e).status_and_code();
        assert_eq!(code(s3_refusal()), (502, "storage_error"));
        assert_eq!(
            code(AwsError::unreachable(Service::S3, "refused")),
            (503, "storage_unavailable")
        );
        assert_eq!(
            code(AwsError::unreachable(Service::DataApi, "refused")),
            (503, "database_unavailable")
        );
        assert_eq!(code(AwsError::Rows("bad".into())), (502, "database_error"));
        assert_eq!(
            code(AwsError::InvalidInput("empty key".into())),
            (500, "misconfigured")
        );
    }

    #[test]
    fn upstream_causes_stay_in_the_log_not_the_body() {
        let e = ApiError::from(s3_refusal());
        assert!(e.to_string().contains("AccessDenied"), "{e}");
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert!(source.is_some_and(|s| s.contains("REQ123") || s.contains("Access Denied")));
        let body = e.body("r").to_string();
        assert!(
            !body.contains("AccessDenied") && !body.contains("Denied"),
            "{body}"
        );
    }

    #[test]
    fn pace_and_budget_refusals_keep_their_documented_codes() {
        use crate::runtime::budget::PaceError;
        let code = |e: Error| ApiError::from(e).status_and_code();
        assert_eq!(code(PaceError::NoRoom.into()), (503, "over_capacity"));
        assert_eq!(
            code(PaceError::Stalled(10_000).into()),
            (408, "upload_stalled")
        );
        let stalled = ApiError::from(Error::from(PaceError::Stalled(10_000)));
        assert_eq!(stalled.headers(), [("connection", "close".to_string())]);
        assert!(stalled.body("r").to_string().contains("10 s"));
    }

    #[test]
    fn runtime_failures_are_internal_and_keep_their_cause_in_the_log() {
        let e = ApiError::from(Error::Runtime("crypto.subtle threw".into()));
        assert_eq!(e.status_and_code(), (500, "internal_error"));
        assert!(!e.body("r").to_string().contains("crypto"));
    }
}
