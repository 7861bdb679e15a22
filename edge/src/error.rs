//! Every way a request can fail, and the one place each maps to HTTP.
//!
//! Codes are part of the API contract (documented in `openapi.json`): clients
//! branch on `error.code`, never on the message.
//!
//! An upstream failure keeps its cause (`pixport_aws::Error`, which names
//! the service it came from and whether a retry may help), so `?` on any
//! S3 or Data API call picks the right code and the log keeps the detail;
//! the public body says only which part failed.

use pixport_aws::{Error as AwsError, Service};
use serde_json::json;

/// `Retry-After` of a 503 `storage_unavailable` / `database_unavailable`:
/// a restart or failover of the upstream takes seconds.
pub const UPSTREAM_RETRY_AFTER_SECS: u32 = 5;

/// `Retry-After` of a 502 `storage_error` / `database_error`: the upstream
/// refused the request (a missing permission, a table), which an operator
/// fixes, so later than an outage.
pub const UPSTREAM_FAILED_RETRY_AFTER_SECS: u32 = 60;

/// `Retry-After` of a 409 `not_ready`: most resizes finish in a few seconds.
pub const NOT_READY_RETRY_AFTER_SECS: u32 = 2;

/// `Retry-After` of a 409 `duplicate_in_progress`: the edge has already
/// waited for the other upload; its store is nearly always done by then.
pub const DUPLICATE_RETRY_AFTER_SECS: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("request body is not valid multipart/form-data: {0}")]
    MalformedMultipart(String),
    #[error("the request has no file part")]
    MissingFile,
    #[error("the file part is empty")]
    EmptyFile,
    #[error("invalid field `{field}`: {reason}")]
    InvalidField { field: String, reason: String },
    #[error("invalid JSON body: {0}")]
    InvalidJson(String),
    #[error("invalid query parameter `{0}`")]
    InvalidQuery(&'static str),
    #[error("too many form fields (limit {0})")]
    TooManyFields(usize),
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("no image with this id")]
    NotFound,
    #[error("no route for {0}")]
    NoRoute(String),
    /// With the methods the path does take, for the `Allow` header RFC 9110
    /// requires on a 405.
    #[error("method not allowed; this path takes {0}")]
    MethodNotAllowed(&'static str),
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
    /// S3 refused or failed; 503 when a retry may help, else 502.
    #[error("object storage: {0}")]
    Storage(#[source] AwsError),
    /// The Data API refused or failed; 503 when a retry may help, else 502.
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
    /// The client stopped sending its body (`budget::Metered`): the upload
    /// gave its share of the memory budget back.
    #[error(
        "the upload's body made no progress for {idle_secs} s: send it without long pauses, \
         or send large files straight to storage with POST /uploads"
    )]
    UploadStalled { idle_secs: u64 },
    #[error("server misconfigured: {0}")]
    Config(String),
    #[error("this token already holds {limit} images: delete some before uploading more")]
    ImageQuota { limit: u64 },
    #[error(
        "this upload would take this token's stored originals over {limit} bytes: \
         delete some before uploading more"
    )]
    StorageQuota { limit: u64 },
    #[error("too many requests with this token: retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u32 },
    /// With the widths the image does have, so a client can correct itself.
    #[error("this image has no variant {width} px wide; it has {available}")]
    NoSuchWidth { width: String, available: String },
    #[error("the image is {status}: its variants are not made yet")]
    NotReady { status: &'static str },
    /// With the media types held, as RFC 9110 suggests for a 406.
    #[error(
        "none of the formats this variant is stored in is in the request's Accept: {available}"
    )]
    NotAcceptable { available: String },
}

impl ApiError {
    pub fn invalid_field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ApiError::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// HTTP status and stable error code.
    pub fn status_and_code(&self) -> (u16, &'static str) {
        match self {
            ApiError::MalformedMultipart(_) => (400, "malformed_multipart"),
            ApiError::MissingFile => (400, "missing_file"),
            ApiError::EmptyFile => (400, "empty_file"),
            ApiError::InvalidField { .. } => (400, "invalid_field"),
            ApiError::InvalidJson(_) => (400, "invalid_json"),
            ApiError::InvalidQuery(_) => (400, "invalid_query"),
            ApiError::TooManyFields(_) => (400, "too_many_fields"),
            ApiError::Unauthorized => (401, "unauthorized"),
            ApiError::NotFound => (404, "not_found"),
            ApiError::NoRoute(_) => (404, "no_route"),
            ApiError::MethodNotAllowed(_) => (405, "method_not_allowed"),
            ApiError::IdempotencyInProgress => (409, "idempotency_in_progress"),
            ApiError::IdempotencyKeyReused => (422, "idempotency_key_reused"),
            ApiError::DuplicateInProgress => (409, "duplicate_in_progress"),
            ApiError::PayloadTooLarge(_) => (413, "payload_too_large"),
            ApiError::StorageQuota { .. } => (413, "storage_quota_exceeded"),
            ApiError::ImageQuota { .. } => (429, "image_quota_exceeded"),
            ApiError::RateLimited { .. } => (429, "rate_limited"),
            ApiError::NoSuchWidth { .. } => (404, "no_such_width"),
            ApiError::NotReady { .. } => (409, "not_ready"),
            ApiError::NotAcceptable { .. } => (406, "not_acceptable"),
            ApiError::UnsupportedMediaType(_) => (415, "unsupported_media_type"),
            ApiError::CorruptImage(_) => (422, "corrupt_image"),
            ApiError::ImageTooLarge(_) => (422, "image_too_large"),
            ApiError::Storage(e) if e.is_retryable() => (503, "storage_unavailable"),
            ApiError::Storage(_) => (502, "storage_error"),
            ApiError::Database(e) if e.is_retryable() => (503, "database_unavailable"),
            ApiError::Database(_) => (502, "database_error"),
            ApiError::OverCapacity { .. } => (503, "over_capacity"),
            ApiError::UploadStalled { .. } => (408, "upload_stalled"),
            ApiError::Request(_) | ApiError::Config(_) => (500, "misconfigured"),
        }
    }

    /// What a client is told. Upstream failures name the part that failed
    /// and nothing else: their causes carry URLs, SQL and AWS request ids.
    fn public_message(&self) -> String {
        match self {
            ApiError::Storage(e) if e.is_retryable() => "object storage is unavailable".into(),
            ApiError::Storage(_) => "object storage failed".into(),
            ApiError::Database(e) if e.is_retryable() => "the database is unavailable".into(),
            ApiError::Database(_) => "the database failed".into(),
            ApiError::Request(_) | ApiError::Config(_) => "server misconfigured".into(),
            other => other.to_string(),
        }
    }

    /// Headers the answer carries besides the body. Every 502/503 says when
    /// to come back: an outage of S3 or the Data API is over in seconds, and
    /// clients that retry at once (or never) make it worse (or lose the upload).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let secs = match self {
            ApiError::OverCapacity { retry_after_secs }
            | ApiError::RateLimited { retry_after_secs } => *retry_after_secs,
            ApiError::Storage(e) | ApiError::Database(e) if e.is_retryable() => {
                UPSTREAM_RETRY_AFTER_SECS
            }
            ApiError::Storage(_) | ApiError::Database(_) => UPSTREAM_FAILED_RETRY_AFTER_SECS,
            ApiError::MethodNotAllowed(allow) => return vec![("allow", (*allow).to_string())],
            ApiError::NotReady { .. } => NOT_READY_RETRY_AFTER_SECS,
            ApiError::DuplicateInProgress => DUPLICATE_RETRY_AFTER_SECS,
            // The same URL answers differently to another Accept.
            ApiError::NotAcceptable { .. } => return vec![("vary", "accept".into())],
            // The rest of the body is not read: the connection ends here.
            ApiError::UploadStalled { .. } => return vec![("connection", "close".into())],
            _ => return Vec::new(),
        };
        vec![("retry-after", secs.to_string())]
    }

    /// The one JSON error shape: `{"error": {"code", "message", "request_id"}}`.
    pub fn body(&self, request_id: &str) -> serde_json::Value {
        let (_, code) = self.status_and_code();
        json!({"error": {"code": code, "message": self.public_message(), "request_id": request_id}})
    }
}

/// By the service that failed, so `?` on any `pixport-aws` call is right.
impl From<AwsError> for ApiError {
    fn from(e: AwsError) -> Self {
        match e.service() {
            Some(Service::S3) => ApiError::Storage(e),
            Some(Service::DataApi) => ApiError::Database(e),
            None => ApiError::Request(e),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_documented_shape() {
        let b = ApiError::MissingFile.body("req-1");
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
            ApiError::PayloadTooLarge("x".into()).status_and_code().0,
            413
        );
        assert_eq!(
            ApiError::UnsupportedMediaType("x".into())
                .status_and_code()
                .0,
            415
        );
        assert_eq!(ApiError::CorruptImage("x".into()).status_and_code().0, 422);
        assert_eq!(
            ApiError::StorageQuota { limit: 1 }.status_and_code(),
            (413, "storage_quota_exceeded")
        );
        assert_eq!(
            ApiError::ImageQuota { limit: 1 }.status_and_code(),
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
        let body = ApiError::Config("DB_SECRET_ARN is not set".into())
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
        assert!(after(ApiError::MissingFile).is_empty());
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
}
