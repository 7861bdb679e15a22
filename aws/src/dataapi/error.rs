//! Data API error responses, read the way botocore reads them.

use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use crate::{DataApiError, DataApiErrorKind};

#[derive(Deserialize, Default)]
#[serde(default)]
struct ErrorBody {
    message: Option<String>,
    #[serde(rename = "Message")]
    message_upper: Option<String>,
    code: Option<String>,
    #[serde(rename = "Code")]
    code_upper: Option<String>,
    #[serde(rename = "__type")]
    type_: Option<String>,
    #[serde(rename = "dbConnectionId")]
    db_connection_id: Option<i64>,
}

/// `BadRequestException:http://internal.amazon.com/...` and
/// `aws.protocols#BadRequestException` both mean `BadRequestException`.
fn sanitize_code(raw: &str) -> &str {
    let before_colon = raw.split(':').next().unwrap_or(raw);
    before_colon.rsplit('#').next().unwrap_or(before_colon)
}

/// Reads a Data API error the way botocore does: the code from
/// `x-amzn-ErrorType`, else the body's `code`/`Code`/`__type`, else the status.
pub fn parse_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> DataApiError {
    let doc: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let header_code = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let raw = header_code
        .or(doc.code)
        .or(doc.code_upper)
        .or(doc.type_)
        .unwrap_or_else(|| status.as_u16().to_string());
    let code = sanitize_code(&raw).to_owned();
    DataApiError {
        status,
        kind: DataApiErrorKind::from_code(&code),
        code,
        message: doc.message.or(doc.message_upper).unwrap_or_default(),
        request_id: headers
            .get("x-amzn-requestid")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        db_connection_id: doc.db_connection_id,
    }
}
