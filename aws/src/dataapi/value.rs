//! Values: parameters bound to `:name` and result cells, in the wire's
//! one-member-set union form.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

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
