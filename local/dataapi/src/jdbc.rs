//! `columnMetadata` as the Data API reports it: the service reads results
//! through JDBC, so types are `java.sql.Types` codes and names are the MySQL
//! driver's.

use mysql_async::consts::ColumnType as T;
use serde::Serialize;

use crate::convert::{BINARY_CHARSET, ColInfo, Kind};

/// `ColumnMetadata` of the service model.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ColumnMetadata {
    pub name: String,
    pub r#type: i32,
    pub type_name: String,
    pub label: String,
    pub schema_name: String,
    pub table_name: String,
    pub is_auto_increment: bool,
    pub is_signed: bool,
    pub is_currency: bool,
    pub is_case_sensitive: bool,
    pub nullable: i32,
    pub precision: i32,
    pub scale: i32,
    pub array_base_column_type: i32,
}

// java.sql.Types
const BIT: i32 = -7;
const TINYINT: i32 = -6;
const SMALLINT: i32 = 5;
const INTEGER: i32 = 4;
const BIGINT: i32 = -5;
const REAL: i32 = 7;
const DOUBLE: i32 = 8;
const DECIMAL: i32 = 3;
const CHAR: i32 = 1;
const VARCHAR: i32 = 12;
const LONGVARCHAR: i32 = -1;
const BINARY: i32 = -2;
const VARBINARY: i32 = -3;
const LONGVARBINARY: i32 = -4;
const DATE: i32 = 91;
const TIME: i32 = 92;
const TIMESTAMP: i32 = 93;
const NULL: i32 = 0;

/// JDBC type code and MySQL type name for a column.
pub fn jdbc_type(c: &ColInfo) -> (i32, String) {
    let binary = c.charset == BINARY_CHARSET && !c.enum_or_set;
    let (code, name) = match c.ty {
        T::MYSQL_TYPE_TINY if c.length == 1 => (BIT, "BIT"),
        T::MYSQL_TYPE_TINY => (TINYINT, "TINYINT"),
        T::MYSQL_TYPE_SHORT => (SMALLINT, "SMALLINT"),
        T::MYSQL_TYPE_INT24 => (INTEGER, "MEDIUMINT"),
        T::MYSQL_TYPE_LONG => (INTEGER, "INT"),
        T::MYSQL_TYPE_LONGLONG => (BIGINT, "BIGINT"),
        T::MYSQL_TYPE_FLOAT => (REAL, "FLOAT"),
        T::MYSQL_TYPE_DOUBLE => (DOUBLE, "DOUBLE"),
        T::MYSQL_TYPE_DECIMAL | T::MYSQL_TYPE_NEWDECIMAL => (DECIMAL, "DECIMAL"),
        T::MYSQL_TYPE_BIT if c.length <= 1 => (BIT, "BIT"),
        T::MYSQL_TYPE_BIT => (VARBINARY, "BIT"),
        T::MYSQL_TYPE_YEAR => (DATE, "YEAR"),
        T::MYSQL_TYPE_DATE | T::MYSQL_TYPE_NEWDATE => (DATE, "DATE"),
        T::MYSQL_TYPE_TIME | T::MYSQL_TYPE_TIME2 => (TIME, "TIME"),
        T::MYSQL_TYPE_DATETIME | T::MYSQL_TYPE_DATETIME2 => (TIMESTAMP, "DATETIME"),
        T::MYSQL_TYPE_TIMESTAMP | T::MYSQL_TYPE_TIMESTAMP2 => (TIMESTAMP, "TIMESTAMP"),
        T::MYSQL_TYPE_JSON => (LONGVARCHAR, "JSON"),
        T::MYSQL_TYPE_GEOMETRY => (BINARY, "GEOMETRY"),
        T::MYSQL_TYPE_NULL => (NULL, "NULL"),
        _ if c.enum_or_set => (CHAR, "CHAR"),
        T::MYSQL_TYPE_STRING if binary => (BINARY, "BINARY"),
        T::MYSQL_TYPE_STRING => (CHAR, "CHAR"),
        T::MYSQL_TYPE_VARCHAR | T::MYSQL_TYPE_VAR_STRING if binary => (VARBINARY, "VARBINARY"),
        T::MYSQL_TYPE_VARCHAR | T::MYSQL_TYPE_VAR_STRING => (VARCHAR, "VARCHAR"),
        T::MYSQL_TYPE_TINY_BLOB
        | T::MYSQL_TYPE_MEDIUM_BLOB
        | T::MYSQL_TYPE_LONG_BLOB
        | T::MYSQL_TYPE_BLOB
            if binary =>
        {
            (LONGVARBINARY, "BLOB")
        }
        T::MYSQL_TYPE_TINY_BLOB
        | T::MYSQL_TYPE_MEDIUM_BLOB
        | T::MYSQL_TYPE_LONG_BLOB
        | T::MYSQL_TYPE_BLOB => (LONGVARCHAR, "TEXT"),
        _ => (VARCHAR, "VARCHAR"),
    };
    let numeric =
        matches!(c.kind(), Kind::Long | Kind::Double | Kind::Decimal) && c.ty != T::MYSQL_TYPE_YEAR;
    let name = if numeric && c.unsigned {
        format!("{name} UNSIGNED")
    } else {
        name.to_owned()
    };
    (code, name)
}

/// Bytes per character of common MySQL character sets, to turn a byte
/// length into the character precision JDBC reports.
fn max_bytes_per_char(charset: u16) -> u32 {
    match charset {
        33 | 83 | 192..=215 | 223 => 3,
        45 | 46 | 224..=247 | 255..=323 => 4,
        _ => 1,
    }
}

pub fn column_metadata(c: &ColInfo) -> ColumnMetadata {
    let (code, type_name) = jdbc_type(c);
    let kind = c.kind();
    let numeric =
        matches!(kind, Kind::Long | Kind::Double | Kind::Decimal) && c.ty != T::MYSQL_TYPE_YEAR;
    let precision = match kind {
        // DECIMAL(p,s) arrives as a display width including sign and point.
        Kind::Decimal => {
            let mut p = c.length;
            if c.decimals > 0 {
                p = p.saturating_sub(1);
            }
            if !c.unsigned {
                p = p.saturating_sub(1);
            }
            p
        }
        Kind::Text => c.length / max_bytes_per_char(c.charset),
        _ => c.length,
    };
    ColumnMetadata {
        name: c.name.clone(),
        r#type: code,
        type_name,
        label: c.label.clone(),
        // The MySQL driver reports the database as catalog, not schema.
        schema_name: String::new(),
        table_name: c.table.clone(),
        is_auto_increment: c.auto_increment,
        is_signed: numeric && !c.unsigned,
        is_currency: false,
        is_case_sensitive: matches!(kind, Kind::Blob)
            || (matches!(kind, Kind::Text) && c.charset == BINARY_CHARSET),
        nullable: if c.not_null { 0 } else { 1 },
        precision: i32::try_from(precision).unwrap_or(i32::MAX),
        scale: if matches!(kind, Kind::Decimal | Kind::Double) {
            i32::from(c.decimals.min(31))
        } else {
            0
        },
        array_base_column_type: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(ty: T, length: u32, charset: u16) -> ColInfo {
        ColInfo {
            ty,
            name: "n".into(),
            label: "l".into(),
            table: "t".into(),
            length,
            decimals: 0,
            charset,
            unsigned: false,
            not_null: true,
            auto_increment: false,
            enum_or_set: false,
        }
    }

    #[test]
    fn jdbc_codes() {
        assert_eq!(
            jdbc_type(&col(T::MYSQL_TYPE_LONG, 11, 63)),
            (4, "INT".into())
        );
        assert_eq!(
            jdbc_type(&col(T::MYSQL_TYPE_TINY, 1, 63)),
            (-7, "BIT".into())
        );
        assert_eq!(
            jdbc_type(&col(T::MYSQL_TYPE_VAR_STRING, 400, 45)),
            (12, "VARCHAR".into())
        );
        assert_eq!(
            jdbc_type(&col(T::MYSQL_TYPE_VAR_STRING, 16, 63)),
            (-3, "VARBINARY".into())
        );
        assert_eq!(
            jdbc_type(&col(T::MYSQL_TYPE_BLOB, 65535, 63)),
            (-4, "BLOB".into())
        );
        assert_eq!(
            jdbc_type(&col(T::MYSQL_TYPE_BLOB, 65535, 45)),
            (-1, "TEXT".into())
        );
        assert_eq!(
            jdbc_type(&col(T::MYSQL_TYPE_DATETIME, 19, 63)),
            (93, "DATETIME".into())
        );
        let mut u = col(T::MYSQL_TYPE_LONGLONG, 20, 63);
        u.unsigned = true;
        assert_eq!(jdbc_type(&u), (-5, "BIGINT UNSIGNED".into()));
    }

    #[test]
    fn metadata_precision_scale_and_flags() {
        let mut d = col(T::MYSQL_TYPE_NEWDECIMAL, 12, 63);
        d.decimals = 2;
        let m = column_metadata(&d);
        assert_eq!(
            (m.precision, m.scale, m.is_signed, m.nullable),
            (10, 2, true, 0)
        );
        let v = column_metadata(&col(T::MYSQL_TYPE_VAR_STRING, 400, 45));
        assert_eq!((v.precision, v.is_signed), (100, false));
        assert_eq!(
            (v.name.as_str(), v.label.as_str(), v.table_name.as_str()),
            ("n", "l", "t")
        );
    }
}
