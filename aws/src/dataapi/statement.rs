//! Request bodies: statements, batches and transactions, pre-filled with
//! the cluster, secret and database by `DataApiConfig`.

use serde::{Deserialize, Serialize};

use super::value::{Field, SqlParameter};
use crate::DataApiConfig;

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
