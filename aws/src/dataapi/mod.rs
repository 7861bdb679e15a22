//! The RDS Data API: request bodies, signed requests, typed results.
//!
//! Types mirror the `rds-data` wire format (botocore's `service-2.json`)
//! field for field, so a request serialises to exactly what boto3 sends and
//! every response boto3 accepts deserialises here. By concern: `value`
//! (parameters and cells), `statement` (request bodies), `result`
//! (responses and typed rows), `error` (error responses); this module makes
//! each request body an [`Operation`] against a [`Database`].

use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::sign::sign_request;
use crate::{Credentials, DataApiConfig, Error, Operation, Service};

/// The SigV4 service name; differs from the endpoint's host prefix only in theory.
pub const SIGNING_NAME: &str = "rds-data";

mod error;
mod result;
mod statement;
mod value;

pub use error::parse_error;
pub use result::{
    BatchExecuteStatementOutput, BeginTransactionOutput, ColumnMetadata, ExecuteStatementOutput,
    TransactionStatusOutput, UpdateResult,
};
pub use statement::{
    BatchExecuteStatement, BeginTransaction, CommitTransaction, DecimalReturnType,
    ExecuteStatement, LongReturnType, RecordsFormat, ResultSetOptions, RollbackTransaction,
};
pub use value::{ArrayValue, Field, SqlParameter, TypeHint};

/// A database behind the Data API, with the credentials that sign its
/// requests: the target of every Data API [`Operation`].
#[derive(Debug, Clone)]
pub struct Database {
    pub credentials: Credentials,
    pub config: DataApiConfig,
}

impl Database {
    pub fn new(credentials: Credentials, config: DataApiConfig) -> Self {
        Database {
            credentials,
            config,
        }
    }

    pub fn execute_statement(&self, sql: impl Into<String>) -> ExecuteStatement {
        self.config.execute_statement(sql)
    }

    pub fn batch_execute_statement(
        &self,
        sql: impl Into<String>,
        parameter_sets: Vec<Vec<SqlParameter>>,
    ) -> BatchExecuteStatement {
        self.config.batch_execute_statement(sql, parameter_sets)
    }

    pub fn begin_transaction(&self) -> BeginTransaction {
        self.config.begin_transaction()
    }

    pub fn commit_transaction(&self, transaction_id: impl Into<String>) -> CommitTransaction {
        self.config.commit_transaction(transaction_id)
    }

    pub fn rollback_transaction(&self, transaction_id: impl Into<String>) -> RollbackTransaction {
        self.config.rollback_transaction(transaction_id)
    }
}

/// What a Data API call is on the wire: a JSON body posted to a path,
/// answered with a JSON output.
pub(crate) trait Action: Serialize {
    /// botocore's operation name, for messages.
    const NAME: &'static str;
    const PATH: &'static str;
    type Output: DeserializeOwned;

    /// Decodes the response to this operation.
    fn parse_response(
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Self::Output, Error> {
        if !status.is_success() {
            return Err(parse_error(status, headers, body).into());
        }
        serde_json::from_slice(body)
            .map_err(|e| Error::decode(Service::DataApi, Self::NAME, status, e))
    }
}

macro_rules! data_api_operation {
    ($op:ty, $name:literal, $path:literal, $output:ty) => {
        impl Action for $op {
            const NAME: &'static str = $name;
            const PATH: &'static str = $path;
            type Output = $output;
        }

        impl Operation for $op {
            const SERVICE: Service = Service::DataApi;
            type Target = Database;
            type Output = $output;

            fn request(&self, db: &Database, now: SystemTime) -> Result<Request<Bytes>, Error> {
                request(&db.credentials, &db.config, self, now)
            }

            fn parse(
                status: StatusCode,
                headers: &HeaderMap,
                body: &[u8],
            ) -> Result<$output, Error> {
                <$op as Action>::parse_response(status, headers, body)
            }
        }
    };
}

data_api_operation!(
    ExecuteStatement,
    "ExecuteStatement",
    "/Execute",
    ExecuteStatementOutput
);
data_api_operation!(
    BatchExecuteStatement,
    "BatchExecuteStatement",
    "/BatchExecute",
    BatchExecuteStatementOutput
);
data_api_operation!(
    BeginTransaction,
    "BeginTransaction",
    "/BeginTransaction",
    BeginTransactionOutput
);
data_api_operation!(
    CommitTransaction,
    "CommitTransaction",
    "/CommitTransaction",
    TransactionStatusOutput
);
data_api_operation!(
    RollbackTransaction,
    "RollbackTransaction",
    "/RollbackTransaction",
    TransactionStatusOutput
);

/// The signed `POST <endpoint><path>` carrying `operation` as JSON.
pub(crate) fn request<O: Action>(
    credentials: &Credentials,
    cfg: &DataApiConfig,
    operation: &O,
    now: SystemTime,
) -> Result<Request<Bytes>, Error> {
    let body = serde_json::to_vec(operation)
        .map_err(|e| Error::InvalidInput(format!("{}: {e}", O::NAME)))?;
    let url = format!("{}{}", cfg.endpoint.trim_end_matches('/'), O::PATH);
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(&url)
        .header(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )
        .body(Bytes::from(body))
        .map_err(|e| Error::Config(format!("Data API URL {url}: {e}")))?;
    sign_request(&mut request, credentials, &cfg.region, SIGNING_NAME, now)?;
    Ok(request)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::DataApiErrorKind;
    use crate::Region;
    use serde_json::json;

    fn cfg() -> DataApiConfig {
        DataApiConfig::new(
            Region::new("eu-west-1"),
            "arn:aws:rds:eu-west-1:123456789012:cluster:pix",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pix-AbCdEf",
        )
        .with_database("pixport")
    }

    #[test]
    fn field_wire_format() {
        let cases = [
            (Field::null(), json!({"isNull": true})),
            (Field::from(true), json!({"booleanValue": true})),
            (Field::from(-5i64), json!({"longValue": -5})),
            (Field::from(1.5), json!({"doubleValue": 1.5})),
            (Field::from("ü"), json!({"stringValue": "ü"})),
            (Field::from(vec![0u8, 255]), json!({"blobValue": "AP8="})),
            (
                Field::from(ArrayValue::ArrayValues(vec![ArrayValue::LongValues(vec![
                    1, 2,
                ])])),
                json!({"arrayValue": {"arrayValues": [{"longValues": [1, 2]}]}}),
            ),
            (Field::from(None::<i64>), json!({"isNull": true})),
        ];
        for (field, wire) in cases {
            assert_eq!(serde_json::to_value(&field).unwrap(), wire);
            assert_eq!(serde_json::from_value::<Field>(wire).unwrap(), field);
        }
    }

    #[test]
    fn execute_statement_body() {
        let op = cfg()
            .execute_statement("SELECT * FROM photos WHERE id = :id")
            .parameter(
                SqlParameter::new("id", "8a1c4c5e-0000-4000-8000-000000000000")
                    .hint(TypeHint::Uuid),
            )
            .with_metadata();
        assert_eq!(
            serde_json::to_value(&op).unwrap(),
            json!({
                "resourceArn": "arn:aws:rds:eu-west-1:123456789012:cluster:pix",
                "secretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pix-AbCdEf",
                "sql": "SELECT * FROM photos WHERE id = :id",
                "database": "pixport",
                "parameters": [{"name": "id", "value": {"stringValue": "8a1c4c5e-0000-4000-8000-000000000000"}, "typeHint": "UUID"}],
                "includeResultMetadata": true
            })
        );
    }

    #[test]
    fn request_is_signed_post() {
        let creds = Credentials::new("AKID", "SECRET", Some("TOKEN".into()));
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let r = request(&creds, &cfg(), &cfg().begin_transaction(), t).unwrap();
        assert_eq!(r.method(), Method::POST);
        assert_eq!(
            r.uri().to_string(),
            "https://rds-data.eu-west-1.amazonaws.com/BeginTransaction"
        );
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(r.headers()["x-amz-security-token"], "TOKEN");
        let auth = r.headers()["authorization"].to_str().unwrap();
        assert!(auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKID/20231114/eu-west-1/rds-data/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, "
        ));
        assert!(!r.headers().contains_key("x-amz-content-sha256"));
    }

    /// Every exception in botocore's rds-data model (name, status), plus
    /// generic throttling and an unknown code.
    const ERRORS: &[(&str, u16, DataApiErrorKind, bool)] = &[
        (
            "AccessDeniedException",
            403,
            DataApiErrorKind::AccessDenied,
            false,
        ),
        (
            "BadRequestException",
            400,
            DataApiErrorKind::BadRequest,
            false,
        ),
        (
            "DatabaseErrorException",
            400,
            DataApiErrorKind::DatabaseError,
            false,
        ),
        (
            "DatabaseNotFoundException",
            404,
            DataApiErrorKind::DatabaseNotFound,
            false,
        ),
        (
            "DatabaseResumingException",
            400,
            DataApiErrorKind::DatabaseResuming,
            true,
        ),
        (
            "DatabaseUnavailableException",
            504,
            DataApiErrorKind::DatabaseUnavailable,
            true,
        ),
        (
            "ForbiddenException",
            403,
            DataApiErrorKind::Forbidden,
            false,
        ),
        (
            "HttpEndpointNotEnabledException",
            400,
            DataApiErrorKind::HttpEndpointNotEnabled,
            false,
        ),
        (
            "InternalServerErrorException",
            500,
            DataApiErrorKind::InternalServerError,
            true,
        ),
        (
            "InvalidResourceStateException",
            400,
            DataApiErrorKind::InvalidResourceState,
            false,
        ),
        (
            "InvalidSecretException",
            400,
            DataApiErrorKind::InvalidSecret,
            false,
        ),
        ("NotFoundException", 404, DataApiErrorKind::NotFound, false),
        (
            "SecretsErrorException",
            400,
            DataApiErrorKind::SecretsError,
            false,
        ),
        (
            "ServiceUnavailableError",
            503,
            DataApiErrorKind::ServiceUnavailable,
            true,
        ),
        (
            "StatementTimeoutException",
            400,
            DataApiErrorKind::StatementTimeout,
            true,
        ),
        (
            "TransactionNotFoundException",
            404,
            DataApiErrorKind::TransactionNotFound,
            false,
        ),
        (
            "UnsupportedResultException",
            400,
            DataApiErrorKind::UnsupportedResult,
            false,
        ),
        (
            "ThrottlingException",
            400,
            DataApiErrorKind::Throttling,
            true,
        ),
        (
            "SomethingNewException",
            400,
            DataApiErrorKind::Unknown,
            false,
        ),
        (
            "SomethingNewException",
            502,
            DataApiErrorKind::Unknown,
            true,
        ),
    ];

    #[test]
    fn every_error_maps_from_header() {
        for (code, status, kind, retry) in ERRORS {
            let mut h = HeaderMap::new();
            h.insert(
                "x-amzn-ErrorType",
                HeaderValue::from_str(&format!(
                    "{code}:http://internal.amazon.com/coral/com.amazon.rdsdataservice/"
                ))
                .unwrap(),
            );
            h.insert("x-amzn-RequestId", HeaderValue::from_static("req-1"));
            let status = StatusCode::from_u16(*status).unwrap();
            let body = br#"{"message":"boom"}"#;
            let e = ExecuteStatement::parse_response(status, &h, body).unwrap_err();
            assert_eq!(e.is_retryable(), *retry, "{code}");
            let Error::DataApi(e) = e else {
                panic!("{code}")
            };
            assert_eq!(e.kind, *kind, "{code}");
            assert_eq!(e.code, *code);
            assert_eq!(e.message, "boom");
            assert_eq!(e.request_id.as_deref(), Some("req-1"));
        }
    }

    #[test]
    fn every_error_maps_from_body() {
        for (code, status, kind, retry) in ERRORS {
            let status = StatusCode::from_u16(*status).unwrap();
            for body in [
                json!({"code": code, "message": "m"}),
                json!({"Code": code, "Message": "m"}),
                json!({"__type": format!("com.amazonaws.rdsdata#{code}"), "message": "m"}),
            ] {
                let e = parse_error(status, &HeaderMap::new(), body.to_string().as_bytes());
                assert_eq!(e.kind, *kind, "{body}");
                assert_eq!(e.message, "m");
                assert_eq!(e.is_retryable(), *retry, "{body}");
            }
        }
    }

    #[test]
    fn statement_timeout_carries_connection_id() {
        let body = br#"{"message":"timeout","dbConnectionId":42}"#;
        let mut h = HeaderMap::new();
        h.insert(
            "x-amzn-errortype",
            HeaderValue::from_static("StatementTimeoutException"),
        );
        let e = parse_error(StatusCode::BAD_REQUEST, &h, body);
        assert_eq!(e.kind, DataApiErrorKind::StatementTimeout);
        assert_eq!(e.db_connection_id, Some(42));
    }

    #[test]
    fn bodyless_errors_fall_back_to_status() {
        let e = parse_error(StatusCode::SERVICE_UNAVAILABLE, &HeaderMap::new(), b"");
        assert_eq!(e.code, "503");
        assert_eq!(e.kind, DataApiErrorKind::Unknown);
        assert!(e.is_retryable());
        let e = parse_error(StatusCode::FORBIDDEN, &HeaderMap::new(), b"<html>");
        assert!(!e.is_retryable());
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Photo {
        id: i64,
        title: Option<String>,
        ratio: f64,
        public: bool,
        thumb: Vec<u8>,
        tags: Vec<String>,
    }

    #[test]
    fn rows_decode_from_records_with_metadata() {
        let body = json!({
            "records": [[
                {"longValue": 7}, {"isNull": true}, {"doubleValue": 1.5},
                {"booleanValue": true}, {"blobValue": "AQI="},
                {"arrayValue": {"stringValues": ["a", "b"]}}
            ]],
            "columnMetadata": [
                {"name": "id", "label": "id", "type": 4, "typeName": "int4"},
                {"name": "title", "label": "title"},
                {"name": "r", "label": "ratio"},
                {"name": "public"},
                {"name": "thumb", "label": ""},
                {"name": "tags", "label": "tags", "arrayBaseColumnType": 12}
            ],
            "numberOfRecordsUpdated": 0
        });
        let out = ExecuteStatement::parse_response(
            StatusCode::OK,
            &HeaderMap::new(),
            body.to_string().as_bytes(),
        )
        .unwrap();
        let rows: Vec<Photo> = out.rows().unwrap();
        assert_eq!(
            rows,
            vec![Photo {
                id: 7,
                title: None,
                ratio: 1.5,
                public: true,
                thumb: vec![1, 2],
                tags: vec!["a".into(), "b".into()]
            }]
        );
    }

    #[test]
    fn rows_decode_from_formatted_json() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct R {
            id: i64,
            name: String,
        }
        let body = json!({"formattedRecords": "[{\"id\":1,\"name\":\"a\"},{\"id\":2,\"name\":\"b\"}]", "numberOfRecordsUpdated": 0});
        let out = ExecuteStatement::parse_response(
            StatusCode::OK,
            &HeaderMap::new(),
            body.to_string().as_bytes(),
        )
        .unwrap();
        let rows: Vec<R> = out.rows().unwrap();
        assert_eq!(
            rows,
            vec![
                R {
                    id: 1,
                    name: "a".into()
                },
                R {
                    id: 2,
                    name: "b".into()
                }
            ]
        );
    }

    #[test]
    fn rows_need_metadata_and_matching_widths() {
        let out = ExecuteStatementOutput {
            records: vec![vec![Field::from(1i64)]],
            ..Default::default()
        };
        assert!(matches!(
            out.rows::<serde_json::Value>(),
            Err(Error::Rows(_))
        ));
        let out = ExecuteStatementOutput {
            records: vec![vec![Field::from(1i64)]],
            column_metadata: vec![
                ColumnMetadata {
                    name: Some("a".into()),
                    ..Default::default()
                },
                ColumnMetadata {
                    name: Some("b".into()),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        assert!(matches!(
            out.rows::<serde_json::Value>(),
            Err(Error::Rows(_))
        ));
        assert!(
            ExecuteStatementOutput::default()
                .rows::<serde_json::Value>()
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn other_outputs() {
        let ok = StatusCode::OK;
        let h = HeaderMap::new();
        let b = BeginTransaction::parse_response(ok, &h, br#"{"transactionId":"tx-1"}"#).unwrap();
        assert_eq!(b.transaction_id, "tx-1");
        let c = CommitTransaction::parse_response(
            ok,
            &h,
            br#"{"transactionStatus":"Transaction Committed"}"#,
        )
        .unwrap();
        assert_eq!(
            c.transaction_status.as_deref(),
            Some("Transaction Committed")
        );
        let r = RollbackTransaction::parse_response(
            ok,
            &h,
            br#"{"transactionStatus":"Rollback Complete"}"#,
        )
        .unwrap();
        assert_eq!(r.transaction_status.as_deref(), Some("Rollback Complete"));
        let u = BatchExecuteStatement::parse_response(ok, &h, br#"{"updateResults":[{"generatedFields":[{"longValue":1}]},{"generatedFields":[]},{}]}"#).unwrap();
        assert_eq!(u.update_results.len(), 3);
        assert_eq!(
            u.update_results[0].generated_fields,
            vec![Field::LongValue(1)]
        );
        let e = ExecuteStatement::parse_response(ok, &h, b"not json").unwrap_err();
        assert!(matches!(e, Error::Decode { .. }));
    }
}
