//! Every way a request can fail, and the one place each maps to HTTP.
//!
//! Codes are part of the API contract (documented in `openapi.json`): clients
//! branch on `error.code`, never on the message.

use serde_json::json;

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
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("an upload with this Idempotency-Key is still in progress")]
    IdempotencyInProgress,
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("the image is corrupt or truncated: {0}")]
    CorruptImage(String),
    #[error("the image is too large: {0}")]
    ImageTooLarge(String),
    #[error("object storage error: {0}")]
    Storage(String),
    #[error("object storage unavailable: {0}")]
    StorageUnavailable(String),
    #[error("database error: {0}")]
    Database(String),
    #[error("database unavailable: {0}")]
    DatabaseUnavailable(String),
    #[error(
        "this worker is holding as many uploads as its memory allows: retry in \
         {retry_after_secs} s, or send large files straight to storage with POST /uploads"
    )]
    OverCapacity { retry_after_secs: u32 },
    #[error("server misconfigured: {0}")]
    Config(String),
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
            ApiError::MethodNotAllowed => (405, "method_not_allowed"),
            ApiError::IdempotencyInProgress => (409, "idempotency_in_progress"),
            ApiError::PayloadTooLarge(_) => (413, "payload_too_large"),
            ApiError::UnsupportedMediaType(_) => (415, "unsupported_media_type"),
            ApiError::CorruptImage(_) => (422, "corrupt_image"),
            ApiError::ImageTooLarge(_) => (422, "image_too_large"),
            ApiError::Storage(_) => (502, "storage_error"),
            ApiError::Database(_) => (502, "database_error"),
            ApiError::StorageUnavailable(_) => (503, "storage_unavailable"),
            ApiError::DatabaseUnavailable(_) => (503, "database_unavailable"),
            ApiError::OverCapacity { .. } => (503, "over_capacity"),
            ApiError::Config(_) => (500, "misconfigured"),
        }
    }

    /// Headers the answer carries besides the body.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            ApiError::OverCapacity { retry_after_secs } => {
                vec![("retry-after", retry_after_secs.to_string())]
            }
            _ => Vec::new(),
        }
    }

    /// The one JSON error shape: `{"error": {"code", "message", "request_id"}}`.
    pub fn body(&self, request_id: &str) -> serde_json::Value {
        let (_, code) = self.status_and_code();
        json!({"error": {"code": code, "message": self.to_string(), "request_id": request_id}})
    }
}

impl From<pixport_aws::Error> for ApiError {
    fn from(e: pixport_aws::Error) -> Self {
        ApiError::Config(e.to_string())
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
        assert_eq!(ApiError::Storage("x".into()).status_and_code().0, 502);
        assert_eq!(
            ApiError::DatabaseUnavailable("x".into())
                .status_and_code()
                .0,
            503
        );
    }
}
