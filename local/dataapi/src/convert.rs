//! Values between the Data API's `Field` union and MySQL's wire values.
//!
//! Result typing follows what the Data API returns for Aurora MySQL through
//! its JDBC driver: DECIMAL, dates and JSON as strings, binary columns as
//! blobs, TINYINT(1)/BIT(1) as booleans, integers (also unsigned) as longs.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use mysql_async::Value;
use mysql_async::consts::ColumnType as T;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The `Field` union of the service model; exactly one member is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Field {
    IsNull(bool),
    BooleanValue(bool),
    /// i128 so that BIGINT UNSIGNED round-trips as a JSON number.
    LongValue(i128),
    DoubleValue(f64),
    StringValue(String),
    /// Base64 on the wire.
    BlobValue(String),
    ArrayValue(serde_json::Value),
}

impl Field {
    /// Bytes this value adds to a row, for the service's size limits.
    pub fn size(&self) -> usize {
        match self {
            Field::IsNull(_) | Field::BooleanValue(_) => 1,
            Field::LongValue(_) | Field::DoubleValue(_) => 8,
            Field::StringValue(s) => s.len(),
            Field::BlobValue(s) => s.len() / 4 * 3,
            Field::ArrayValue(v) => v.to_string().len(),
        }
    }

    /// The value inside `formattedRecords` (formatRecordsAs = JSON).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Field::IsNull(_) => J::Null,
            Field::BooleanValue(b) => J::Bool(*b),
            Field::LongValue(n) => match (i64::try_from(*n), u64::try_from(*n)) {
                (Ok(i), _) => J::from(i),
                (_, Ok(u)) => J::from(u),
                _ => J::String(n.to_string()),
            },
            Field::DoubleValue(d) => serde_json::Number::from_f64(*d).map_or(J::Null, J::Number),
            Field::StringValue(s) | Field::BlobValue(s) => J::String(s.clone()),
            Field::ArrayValue(v) => v.clone(),
        }
    }
}

/// `typeHint` of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TypeHint {
    Json,
    Uuid,
    Timestamp,
    Date,
    Time,
    Decimal,
}

/// A request parameter's value as MySQL should receive it.
pub fn param_value(field: &Field, hint: Option<TypeHint>) -> Result<Value, ApiError> {
    Ok(match field {
        Field::IsNull(_) => Value::NULL,
        Field::BooleanValue(b) => Value::Int(i64::from(*b)),
        Field::LongValue(n) => i64::try_from(*n)
            .map(Value::Int)
            .map_err(|_| ApiError::bad(format!("longValue {n} is out of range")))?,
        Field::DoubleValue(d) => Value::Double(*d),
        Field::BlobValue(b) => Value::Bytes(
            B64.decode(b)
                .map_err(|_| ApiError::bad("blobValue is not valid base64"))?,
        ),
        Field::ArrayValue(_) => return Err(ApiError::bad("Array parameters are not supported.")),
        Field::StringValue(s) => match hint {
            None => Value::Bytes(s.as_bytes().to_vec()),
            Some(TypeHint::Date) => {
                let (y, mo, d) = parse_date(s).ok_or_else(|| unparsable(s, "DATE"))?;
                Value::Date(y, mo, d, 0, 0, 0, 0)
            }
            Some(TypeHint::Time) => {
                let (h, mi, sec, us) = parse_time(s).ok_or_else(|| unparsable(s, "TIME"))?;
                Value::Time(false, u32::from(h / 24), h % 24, mi, sec, us)
            }
            Some(TypeHint::Timestamp) => {
                let (date, time) = s
                    .split_once([' ', 'T'])
                    .ok_or_else(|| unparsable(s, "TIMESTAMP"))?;
                let (y, mo, d) = parse_date(date).ok_or_else(|| unparsable(s, "TIMESTAMP"))?;
                let (h, mi, sec, us) = parse_time(time)
                    .filter(|t| t.0 < 24)
                    .ok_or_else(|| unparsable(s, "TIMESTAMP"))?;
                Value::Date(y, mo, d, h, mi, sec, us)
            }
            Some(TypeHint::Decimal) => {
                if !is_decimal(s) {
                    return Err(unparsable(s, "DECIMAL"));
                }
                Value::Bytes(s.as_bytes().to_vec())
            }
            Some(TypeHint::Json) => {
                serde_json::from_str::<serde_json::Value>(s).map_err(|_| unparsable(s, "JSON"))?;
                Value::Bytes(s.as_bytes().to_vec())
            }
            Some(TypeHint::Uuid) => {
                if !is_uuid(s) {
                    return Err(unparsable(s, "UUID"));
                }
                Value::Bytes(s.as_bytes().to_vec())
            }
        },
    })
}

fn unparsable(s: &str, what: &str) -> ApiError {
    ApiError::bad(format!("Text '{s}' could not be parsed as {what}"))
}

fn digits<T: std::str::FromStr>(s: &str, len: usize) -> Option<T> {
    (s.len() == len && s.bytes().all(|c| c.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<(u16, u8, u8)> {
    let mut it = s.split('-');
    let y: u16 = digits(it.next()?, 4)?;
    let m: u8 = digits(it.next()?, 2)?;
    let d: u8 = digits(it.next()?, 2)?;
    if it.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some((y, m, d))
}

/// `HH:MM:SS[.fraction]` to (hours, minutes, seconds, microseconds).
pub fn parse_time(s: &str) -> Option<(u8, u8, u8, u32)> {
    let (hms, frac) = match s.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (s, None),
    };
    let mut it = hms.split(':');
    let h: u8 = digits(it.next()?, 2)?;
    let m: u8 = digits(it.next()?, 2)?;
    let sec: u8 = digits(it.next()?, 2)?;
    if it.next().is_some() || m > 59 || sec > 59 {
        return None;
    }
    let us = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|c| c.is_ascii_digit()) => {
            let six: String = f.chars().chain(std::iter::repeat('0')).take(6).collect();
            six.parse().ok()?
        }
        Some(_) => return None,
    };
    Some((h, m, sec, us))
}

fn is_decimal(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exp) = match s.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.strip_prefix(['-', '+']).unwrap_or(e))),
        None => (s, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all = |p: &str| p.bytes().all(|c| c.is_ascii_digit());
    !(int.is_empty() && frac.is_empty())
        && all(int)
        && all(frac)
        && exp.is_none_or(|e| !e.is_empty() && all(e))
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|c| c.is_ascii_hexdigit()))
}

/// What the result mapping needs from a column, separate from the driver's
/// type so it can be built in tests.
#[derive(Debug, Clone)]
pub struct ColInfo {
    pub ty: T,
    pub name: String,
    pub label: String,
    pub table: String,
    pub length: u32,
    pub decimals: u8,
    pub charset: u16,
    pub unsigned: bool,
    pub not_null: bool,
    pub auto_increment: bool,
    pub enum_or_set: bool,
}

/// MySQL's "binary" character set: bytes rather than text.
pub const BINARY_CHARSET: u16 = 63;

impl ColInfo {
    pub fn from_column(c: &mysql_async::Column) -> Self {
        use mysql_async::consts::ColumnFlags as F;
        let f = c.flags();
        let org = c.org_name_str();
        Self {
            ty: c.column_type(),
            name: if org.is_empty() {
                c.name_str().into_owned()
            } else {
                org.into_owned()
            },
            label: c.name_str().into_owned(),
            table: c.org_table_str().into_owned(),
            length: c.column_length(),
            decimals: c.decimals(),
            charset: c.character_set(),
            unsigned: f.contains(F::UNSIGNED_FLAG),
            not_null: f.contains(F::NOT_NULL_FLAG),
            auto_increment: f.contains(F::AUTO_INCREMENT_FLAG),
            enum_or_set: f.intersects(F::ENUM_FLAG | F::SET_FLAG),
        }
    }

    pub fn kind(&self) -> Kind {
        match self.ty {
            T::MYSQL_TYPE_TINY if self.length == 1 => Kind::Bool,
            T::MYSQL_TYPE_BIT if self.length <= 1 => Kind::Bool,
            T::MYSQL_TYPE_BIT => Kind::Blob,
            T::MYSQL_TYPE_TINY
            | T::MYSQL_TYPE_SHORT
            | T::MYSQL_TYPE_INT24
            | T::MYSQL_TYPE_LONG
            | T::MYSQL_TYPE_LONGLONG
            | T::MYSQL_TYPE_YEAR => Kind::Long,
            T::MYSQL_TYPE_FLOAT | T::MYSQL_TYPE_DOUBLE => Kind::Double,
            T::MYSQL_TYPE_DECIMAL | T::MYSQL_TYPE_NEWDECIMAL => Kind::Decimal,
            T::MYSQL_TYPE_DATE | T::MYSQL_TYPE_NEWDATE => Kind::Date,
            T::MYSQL_TYPE_DATETIME
            | T::MYSQL_TYPE_DATETIME2
            | T::MYSQL_TYPE_TIMESTAMP
            | T::MYSQL_TYPE_TIMESTAMP2 => Kind::DateTime,
            T::MYSQL_TYPE_TIME | T::MYSQL_TYPE_TIME2 => Kind::Time,
            T::MYSQL_TYPE_GEOMETRY => Kind::Blob,
            T::MYSQL_TYPE_NULL => Kind::Text,
            T::MYSQL_TYPE_VARCHAR
            | T::MYSQL_TYPE_VAR_STRING
            | T::MYSQL_TYPE_STRING
            | T::MYSQL_TYPE_TINY_BLOB
            | T::MYSQL_TYPE_MEDIUM_BLOB
            | T::MYSQL_TYPE_LONG_BLOB
            | T::MYSQL_TYPE_BLOB
                if self.charset == BINARY_CHARSET && !self.enum_or_set =>
            {
                Kind::Blob
            }
            _ => Kind::Text,
        }
    }
}

/// How a column's values are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Long,
    Double,
    Decimal,
    Date,
    DateTime,
    Time,
    Blob,
    Text,
}

/// `resultSetOptions` of ExecuteStatement.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResultOptions {
    pub decimal_as_number: bool,
    pub long_as_string: bool,
}

/// One result value as a `Field`. Handles both the text protocol (all
/// `Bytes`) and the binary protocol (typed values).
pub fn result_field(col: &ColInfo, v: Value, opts: ResultOptions) -> Field {
    if v == Value::NULL {
        return Field::IsNull(true);
    }
    match col.kind() {
        Kind::Bool => Field::BooleanValue(match v {
            Value::Int(i) => i != 0,
            Value::UInt(u) => u != 0,
            // Text protocol sends "0"/"1" for TINYINT, raw bits for BIT.
            Value::Bytes(b) => b.iter().any(|&c| c != 0 && c != b'0'),
            _ => true,
        }),
        Kind::Long => {
            let n: Option<i128> = match &v {
                Value::Int(i) => Some(i128::from(*i)),
                Value::UInt(u) => Some(i128::from(*u)),
                Value::Bytes(b) => std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()),
                _ => None,
            };
            match n {
                Some(n) if opts.long_as_string => Field::StringValue(n.to_string()),
                Some(n) => Field::LongValue(n),
                None => Field::StringValue(text(v)),
            }
        }
        Kind::Double => match v {
            Value::Double(d) => Field::DoubleValue(d),
            // Shortest decimal of the f32 first, as JDBC's getDouble gives
            // 1.1 (not 1.100000023841858) for a FLOAT 1.1.
            Value::Float(f) => Field::DoubleValue(f.to_string().parse().unwrap_or(f64::from(f))),
            other => {
                let s = text(other);
                s.parse().map_or(Field::StringValue(s), Field::DoubleValue)
            }
        },
        Kind::Decimal => {
            let s = text(v);
            if opts.decimal_as_number {
                if let Ok(n) = s.parse::<i64>() {
                    return Field::LongValue(i128::from(n));
                }
                if let Ok(d) = s.parse::<f64>() {
                    return Field::DoubleValue(d);
                }
            }
            Field::StringValue(s)
        }
        Kind::Date => Field::StringValue(match v {
            Value::Date(y, m, d, ..) => format!("{y:04}-{m:02}-{d:02}"),
            other => text(other),
        }),
        Kind::DateTime => Field::StringValue(match v {
            Value::Date(y, mo, d, h, mi, s, us) => {
                format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}{}", millis(us))
            }
            other => normalize_fraction(&text(other)),
        }),
        Kind::Time => Field::StringValue(match v {
            Value::Time(neg, days, h, mi, s, us) => {
                let hours = days * 24 + u32::from(h);
                let sign = if neg { "-" } else { "" };
                format!("{sign}{hours:02}:{mi:02}:{s:02}{}", millis(us))
            }
            other => normalize_fraction(&text(other)),
        }),
        Kind::Blob => Field::BlobValue(match v {
            Value::Bytes(b) => B64.encode(b),
            other => B64.encode(text(other)),
        }),
        Kind::Text => Field::StringValue(text(v)),
    }
}

/// The service shows at most milliseconds and drops an all-zero fraction.
fn millis(us: u32) -> String {
    if us == 0 {
        String::new()
    } else {
        format!(".{:03}", us / 1000)
    }
}

fn normalize_fraction(s: &str) -> String {
    match s.split_once('.') {
        Some((head, frac)) => {
            let six: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
            format!("{head}{}", millis(six.parse().unwrap_or(0)))
        }
        None => s.to_owned(),
    }
}

fn text(v: Value) -> String {
    match v {
        Value::Bytes(b) => String::from_utf8(b)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        Value::NULL => String::new(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Double(d) => d.to_string(),
        Value::Date(y, mo, d, h, mi, s, us) => {
            format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}{}", millis(us))
        }
        Value::Time(neg, days, h, mi, s, us) => format!(
            "{}{:02}:{mi:02}:{s:02}{}",
            if neg { "-" } else { "" },
            days * 24 + u32::from(h),
            millis(us)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(ty: T) -> ColInfo {
        ColInfo {
            ty,
            name: "c".into(),
            label: "c".into(),
            table: "t".into(),
            length: 11,
            decimals: 0,
            charset: 45,
            unsigned: false,
            not_null: false,
            auto_increment: false,
            enum_or_set: false,
        }
    }

    #[test]
    fn field_json_is_a_single_member_union() {
        let f: Field = serde_json::from_str(r#"{"longValue": 5}"#).unwrap();
        assert_eq!(f, Field::LongValue(5));
        assert_eq!(
            serde_json::to_string(&Field::IsNull(true)).unwrap(),
            r#"{"isNull":true}"#
        );
        assert_eq!(
            serde_json::to_string(&Field::LongValue(u64::MAX.into())).unwrap(),
            r#"{"longValue":18446744073709551615}"#
        );
        assert!(serde_json::from_str::<Field>(r#"{"nope": 1}"#).is_err());
    }

    #[test]
    fn params_convert_with_type_hints() {
        let s = |x: &str| Field::StringValue(x.into());
        assert_eq!(
            param_value(&Field::BooleanValue(true), None).unwrap(),
            Value::Int(1)
        );
        assert_eq!(
            param_value(&Field::BlobValue("AAEC".into()), None).unwrap(),
            Value::Bytes(vec![0, 1, 2])
        );
        assert_eq!(
            param_value(&s("2024-02-29"), Some(TypeHint::Date)).unwrap(),
            Value::Date(2024, 2, 29, 0, 0, 0, 0)
        );
        assert_eq!(
            param_value(&s("2024-02-29 13:14:15.5"), Some(TypeHint::Timestamp)).unwrap(),
            Value::Date(2024, 2, 29, 13, 14, 15, 500_000)
        );
        assert_eq!(
            param_value(&s("25:00:01"), Some(TypeHint::Time)).unwrap(),
            Value::Time(false, 1, 1, 0, 1, 0)
        );
        assert!(param_value(&s("2024-13-01"), Some(TypeHint::Date)).is_err());
        assert!(param_value(&s("12.5e3"), Some(TypeHint::Decimal)).is_ok());
        assert!(param_value(&s("12,5"), Some(TypeHint::Decimal)).is_err());
        assert!(param_value(&s("{\"a\":1}"), Some(TypeHint::Json)).is_ok());
        assert!(param_value(&s("{a:1}"), Some(TypeHint::Json)).is_err());
        assert!(
            param_value(
                &s("123e4567-e89b-12d3-a456-426614174000"),
                Some(TypeHint::Uuid)
            )
            .is_ok()
        );
        assert!(param_value(&s("123e4567"), Some(TypeHint::Uuid)).is_err());
        let arr = Field::ArrayValue(serde_json::json!({"longValues": [1]}));
        assert_eq!(
            param_value(&arr, None).unwrap_err().to_string(),
            "Array parameters are not supported."
        );
    }

    #[test]
    fn results_are_typed_like_aurora_mysql() {
        let o = ResultOptions::default();
        let mut tiny1 = col(T::MYSQL_TYPE_TINY);
        tiny1.length = 1;
        assert_eq!(
            result_field(&tiny1, Value::Bytes(b"1".to_vec()), o),
            Field::BooleanValue(true)
        );
        assert_eq!(
            result_field(&tiny1, Value::Int(0), o),
            Field::BooleanValue(false)
        );
        assert_eq!(
            result_field(&col(T::MYSQL_TYPE_LONGLONG), Value::UInt(u64::MAX), o),
            Field::LongValue(u64::MAX.into())
        );
        assert_eq!(
            result_field(&col(T::MYSQL_TYPE_LONG), Value::Bytes(b"-7".to_vec()), o),
            Field::LongValue(-7)
        );
        assert_eq!(
            result_field(
                &col(T::MYSQL_TYPE_NEWDECIMAL),
                Value::Bytes(b"1.50".to_vec()),
                o
            ),
            Field::StringValue("1.50".into())
        );
        assert_eq!(
            result_field(&col(T::MYSQL_TYPE_FLOAT), Value::Float(1.1), o),
            Field::DoubleValue(1.1)
        );
        assert_eq!(
            result_field(
                &col(T::MYSQL_TYPE_DATETIME),
                Value::Date(2024, 1, 2, 3, 4, 5, 123_456),
                o
            ),
            Field::StringValue("2024-01-02 03:04:05.123".into())
        );
        assert_eq!(
            result_field(
                &col(T::MYSQL_TYPE_TIMESTAMP),
                Value::Bytes(b"2024-01-02 03:04:05.000000".to_vec()),
                o
            ),
            Field::StringValue("2024-01-02 03:04:05".into())
        );
        assert_eq!(
            result_field(
                &col(T::MYSQL_TYPE_TIME),
                Value::Time(false, 1, 2, 3, 4, 0),
                o
            ),
            Field::StringValue("26:03:04".into())
        );
        let mut blob = col(T::MYSQL_TYPE_BLOB);
        blob.charset = BINARY_CHARSET;
        assert_eq!(
            result_field(&blob, Value::Bytes(vec![0, 1, 2]), o),
            Field::BlobValue("AAEC".into())
        );
        assert_eq!(
            result_field(&col(T::MYSQL_TYPE_BLOB), Value::Bytes(b"txt".to_vec()), o),
            Field::StringValue("txt".into())
        );
        assert_eq!(
            result_field(&col(T::MYSQL_TYPE_LONG), Value::NULL, o),
            Field::IsNull(true)
        );
    }

    #[test]
    fn result_set_options_change_number_reporting() {
        let o = ResultOptions {
            decimal_as_number: true,
            long_as_string: true,
        };
        assert_eq!(
            result_field(
                &col(T::MYSQL_TYPE_NEWDECIMAL),
                Value::Bytes(b"2.5".to_vec()),
                o
            ),
            Field::DoubleValue(2.5)
        );
        assert_eq!(
            result_field(
                &col(T::MYSQL_TYPE_NEWDECIMAL),
                Value::Bytes(b"2".to_vec()),
                o
            ),
            Field::LongValue(2)
        );
        assert_eq!(
            result_field(&col(T::MYSQL_TYPE_LONG), Value::Int(3), o),
            Field::StringValue("3".into())
        );
    }

    #[test]
    fn formatted_json_values() {
        assert_eq!(Field::IsNull(true).to_json(), serde_json::Value::Null);
        assert_eq!(
            Field::LongValue(u64::MAX.into()).to_json(),
            serde_json::json!(u64::MAX)
        );
        assert_eq!(
            Field::StringValue("x".into()).to_json(),
            serde_json::json!("x")
        );
    }
}
