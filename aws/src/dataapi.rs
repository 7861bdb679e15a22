//! The RDS Data API: request bodies, signed requests, typed results.
//!
//! Types mirror the `rds-data` wire format (botocore's `service-2.json`)
//! field for field, so a request serialises to exactly what boto3 sends and
//! every response boto3 accepts deserialises here.

use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::sign::sign_request;
use crate::{Credentials, DataApiConfig, DataApiError, DataApiErrorKind, Error, Service};

/// The SigV4 service name; differs from the endpoint's host prefix only in theory.
pub const SIGNING_NAME: &str = "rds-data";

/// Blobs travel as base64 strings in both directions.
mod base64_bytes {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// A value, as parameter or as result cell: a union with exactly one member set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Field {
    /// Always `true` on the wire; SQL NULL of any type.
    IsNull(bool),
    BooleanValue(bool),
    LongValue(i64),
    DoubleValue(f64),
    /// Also carries DECIMAL, dates, times, UUIDs and JSON (see [`TypeHint`]).
    StringValue(String),
    BlobValue(#[serde(with = "base64_bytes")] Vec<u8>),
    ArrayValue(ArrayValue),
}

impl Field {
    pub fn null() -> Self {
        Field::IsNull(true)
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Field::IsNull(true))
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Field::StringValue(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Field::LongValue(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Field::DoubleValue(v) => Some(*v),
            Field::LongValue(v) => Some(*v as f64),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Field::BooleanValue(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Field::BlobValue(v) => Some(v),
            _ => None,
        }
    }

    /// The cell as plain JSON, for decoding rows into serde structs. Blobs
    /// become arrays of bytes so a `Vec<u8>` field accepts them directly.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Field::IsNull(_) => Value::Null,
            Field::BooleanValue(b) => Value::Bool(*b),
            Field::LongValue(v) => Value::from(*v),
            Field::DoubleValue(v) => {
                serde_json::Number::from_f64(*v).map_or(Value::Null, Value::Number)
            }
            Field::StringValue(s) => Value::String(s.clone()),
            Field::BlobValue(b) => Value::Array(b.iter().map(|x| Value::from(*x)).collect()),
            Field::ArrayValue(a) => a.to_json(),
        }
    }
}

impl From<bool> for Field {
    fn from(v: bool) -> Self {
        Field::BooleanValue(v)
    }
}
impl From<i64> for Field {
    fn from(v: i64) -> Self {
        Field::LongValue(v)
    }
}
impl From<i32> for Field {
    fn from(v: i32) -> Self {
        Field::LongValue(v.into())
    }
}
impl From<f64> for Field {
    fn from(v: f64) -> Self {
        Field::DoubleValue(v)
    }
}
impl From<&str> for Field {
    fn from(v: &str) -> Self {
        Field::StringValue(v.to_owned())
    }
}
impl From<String> for Field {
    fn from(v: String) -> Self {
        Field::StringValue(v)
    }
}
impl From<Vec<u8>> for Field {
    fn from(v: Vec<u8>) -> Self {
        Field::BlobValue(v)
    }
}
impl From<ArrayValue> for Field {
    fn from(v: ArrayValue) -> Self {
        Field::ArrayValue(v)
    }
}
impl<T: Into<Field>> From<Option<T>> for Field {
    fn from(v: Option<T>) -> Self {
        v.map_or_else(Field::null, Into::into)
    }
}

/// An array value (PostgreSQL arrays); nested arrays for more dimensions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ArrayValue {
    BooleanValues(Vec<bool>),
    LongValues(Vec<i64>),
    DoubleValues(Vec<f64>),
    StringValues(Vec<String>),
    ArrayValues(Vec<ArrayValue>),
}

impl ArrayValue {
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            ArrayValue::BooleanValues(v) => v.iter().map(|b| Value::Bool(*b)).collect(),
            ArrayValue::LongValues(v) => v.iter().map(|x| Value::from(*x)).collect(),
            ArrayValue::DoubleValues(v) => v
                .iter()
                .map(|x| serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number))
                .collect(),
            ArrayValue::StringValues(v) => v.iter().map(|s| Value::String(s.clone())).collect(),
            ArrayValue::ArrayValues(v) => v.iter().map(ArrayValue::to_json).collect(),
        }
    }
}

/// Tells the database how to cast a `stringValue` parameter; without it a
/// string bound to a UUID or TIMESTAMP column is a type error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TypeHint {
    Json,
    Uuid,
    Timestamp,
    Date,
    Time,
    Decimal,
}

/// A named parameter, bound to `:name` in the SQL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqlParameter {
    pub name: String,
    pub value: Field,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_hint: Option<TypeHint>,
}

impl SqlParameter {
    pub fn new(name: impl Into<String>, value: impl Into<Field>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
            type_hint: None,
        }
    }

    pub fn hint(mut self, hint: TypeHint) -> Self {
        self.type_hint = Some(hint);
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecordsFormat {
    None,
    /// Rows come back as one JSON string in `formattedRecords`, keyed by column label.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DecimalReturnType {
    String,
    DoubleOrLong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LongReturnType {
    String,
    Long,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultSetOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decimal_return_type: Option<DecimalReturnType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_return_type: Option<LongReturnType>,
}

/// `ExecuteStatement` (`POST /Execute`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteStatement {
    pub resource_arn: String,
    pub secret_arn: String,
    pub sql: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<SqlParameter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// Needed for [`ExecuteStatementOutput::rows`] unless records are formatted as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_result_metadata: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_after_timeout: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_set_options: Option<ResultSetOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format_records_as: Option<RecordsFormat>,
}

impl ExecuteStatement {
    pub fn param(mut self, name: impl Into<String>, value: impl Into<Field>) -> Self {
        self.parameters.push(SqlParameter::new(name, value));
        self
    }

    pub fn parameter(mut self, p: SqlParameter) -> Self {
        self.parameters.push(p);
        self
    }

    pub fn in_transaction(mut self, id: impl Into<String>) -> Self {
        self.transaction_id = Some(id.into());
        self
    }

    /// Column metadata on, so rows can be decoded by name.
    pub fn with_metadata(mut self) -> Self {
        self.include_result_metadata = Some(true);
        self
    }

    pub fn format_json(mut self) -> Self {
        self.format_records_as = Some(RecordsFormat::Json);
        self
    }
}

/// `BatchExecuteStatement` (`POST /BatchExecute`): one statement, many parameter sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchExecuteStatement {
    pub resource_arn: String,
    pub secret_arn: String,
    pub sql: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameter_sets: Vec<Vec<SqlParameter>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
}

/// `BeginTransaction`; the returned id goes into every statement of the transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BeginTransaction {
    pub resource_arn: String,
    pub secret_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitTransaction {
    pub resource_arn: String,
    pub secret_arn: String,
    pub transaction_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackTransaction {
    pub resource_arn: String,
    pub secret_arn: String,
    pub transaction_id: String,
}

/// Result column description (`includeResultMetadata`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ColumnMetadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// JDBC type number.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_auto_increment: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_signed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_currency: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_case_sensitive: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nullable: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub array_base_column_type: Option<i32>,
}

impl ColumnMetadata {
    /// The name a row struct field should match: the `AS` alias when there is one.
    pub fn key(&self) -> Option<&str> {
        self.label
            .as_deref()
            .filter(|l| !l.is_empty())
            .or(self.name.as_deref())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExecuteStatementOutput {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<Vec<Field>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub column_metadata: Vec<ColumnMetadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number_of_records_updated: Option<i64>,
    /// Values the database generated for an INSERT (MySQL auto-increment keys;
    /// PostgreSQL returns them through `RETURNING` records instead).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub generated_fields: Vec<Field>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formatted_records: Option<String>,
}

impl ExecuteStatementOutput {
    /// Decodes the result rows into `T`, from `formattedRecords` when the
    /// statement asked for JSON, else from `records` keyed by column label
    /// (which needs `includeResultMetadata`).
    pub fn rows<T: DeserializeOwned>(&self) -> Result<Vec<T>, Error> {
        if let Some(json) = &self.formatted_records {
            return serde_json::from_str(json).map_err(|e| Error::Rows(e.to_string()));
        }
        if self.records.is_empty() {
            return Ok(Vec::new());
        }
        if self.column_metadata.is_empty() {
            return Err(Error::Rows(
                "records without column metadata; set includeResultMetadata".into(),
            ));
        }
        let names: Vec<&str> = self
            .column_metadata
            .iter()
            .enumerate()
            .map(|(i, c)| {
                c.key()
                    .ok_or_else(|| Error::Rows(format!("column {i} has no name")))
            })
            .collect::<Result<_, _>>()?;
        self.records
            .iter()
            .enumerate()
            .map(|(i, row)| {
                if row.len() != names.len() {
                    return Err(Error::Rows(format!(
                        "row {i} has {} fields for {} columns",
                        row.len(),
                        names.len()
                    )));
                }
                let object: serde_json::Map<String, serde_json::Value> = names
                    .iter()
                    .zip(row)
                    .map(|(n, f)| ((*n).to_owned(), f.to_json()))
                    .collect();
                serde_json::from_value(serde_json::Value::Object(object))
                    .map_err(|e| Error::Rows(format!("row {i}: {e}")))
            })
            .collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UpdateResult {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub generated_fields: Vec<Field>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BatchExecuteStatementOutput {
    /// One entry per parameter set, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub update_results: Vec<UpdateResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BeginTransactionOutput {
    pub transaction_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TransactionStatusOutput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_status: Option<String>,
}

/// A Data API operation: its request body type knows its path and output.
pub trait Operation: Serialize {
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

impl Operation for ExecuteStatement {
    const NAME: &'static str = "ExecuteStatement";
    const PATH: &'static str = "/Execute";
    type Output = ExecuteStatementOutput;
}
impl Operation for BatchExecuteStatement {
    const NAME: &'static str = "BatchExecuteStatement";
    const PATH: &'static str = "/BatchExecute";
    type Output = BatchExecuteStatementOutput;
}
impl Operation for BeginTransaction {
    const NAME: &'static str = "BeginTransaction";
    const PATH: &'static str = "/BeginTransaction";
    type Output = BeginTransactionOutput;
}
impl Operation for CommitTransaction {
    const NAME: &'static str = "CommitTransaction";
    const PATH: &'static str = "/CommitTransaction";
    type Output = TransactionStatusOutput;
}
impl Operation for RollbackTransaction {
    const NAME: &'static str = "RollbackTransaction";
    const PATH: &'static str = "/RollbackTransaction";
    type Output = TransactionStatusOutput;
}

/// Request bodies pre-filled with the cluster, secret and database.
impl DataApiConfig {
    pub fn execute_statement(&self, sql: impl Into<String>) -> ExecuteStatement {
        ExecuteStatement {
            resource_arn: self.resource_arn.clone(),
            secret_arn: self.secret_arn.clone(),
            sql: sql.into(),
            database: self.database.clone(),
            schema: None,
            parameters: Vec::new(),
            transaction_id: None,
            include_result_metadata: None,
            continue_after_timeout: None,
            result_set_options: None,
            format_records_as: None,
        }
    }

    pub fn batch_execute_statement(
        &self,
        sql: impl Into<String>,
        parameter_sets: Vec<Vec<SqlParameter>>,
    ) -> BatchExecuteStatement {
        BatchExecuteStatement {
            resource_arn: self.resource_arn.clone(),
            secret_arn: self.secret_arn.clone(),
            sql: sql.into(),
            database: self.database.clone(),
            schema: None,
            parameter_sets,
            transaction_id: None,
        }
    }

    pub fn begin_transaction(&self) -> BeginTransaction {
        BeginTransaction {
            resource_arn: self.resource_arn.clone(),
            secret_arn: self.secret_arn.clone(),
            database: self.database.clone(),
            schema: None,
        }
    }

    pub fn commit_transaction(&self, transaction_id: impl Into<String>) -> CommitTransaction {
        CommitTransaction {
            resource_arn: self.resource_arn.clone(),
            secret_arn: self.secret_arn.clone(),
            transaction_id: transaction_id.into(),
        }
    }

    pub fn rollback_transaction(&self, transaction_id: impl Into<String>) -> RollbackTransaction {
        RollbackTransaction {
            resource_arn: self.resource_arn.clone(),
            secret_arn: self.secret_arn.clone(),
            transaction_id: transaction_id.into(),
        }
    }
}

/// The signed `POST <endpoint><path>` carrying `operation` as JSON.
pub fn request<O: Operation>(
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

#[cfg(test)]
mod tests {
    use super::*;
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
