//! Responses: result sets (as records with metadata or formatted JSON),
//! typed rows, update counts and transaction ids.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::value::Field;
use crate::Error;

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
