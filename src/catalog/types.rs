//! ksqlDB's SQL types and their Arrow representations, and the logical schema of a source
//! (key columns, then value columns).

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SqlType {
    Boolean,
    Int,
    Bigint,
    Double,
    Decimal { precision: u8, scale: i8 },
    String,
    Bytes,
    Date,
    Time,
    Timestamp,
    Array(Box<SqlType>),
    Map(Box<SqlType>, Box<SqlType>),
    Struct(Vec<(String, SqlType)>),
}

/// Writes an identifier as ksqlDB prints it: back-quoted, with back-quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

impl fmt::Display for SqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlType::Boolean => f.write_str("BOOLEAN"),
            SqlType::Int => f.write_str("INTEGER"),
            SqlType::Bigint => f.write_str("BIGINT"),
            SqlType::Double => f.write_str("DOUBLE"),
            SqlType::Decimal { precision, scale } => write!(f, "DECIMAL({precision}, {scale})"),
            SqlType::String => f.write_str("STRING"),
            SqlType::Bytes => f.write_str("BYTES"),
            SqlType::Date => f.write_str("DATE"),
            SqlType::Time => f.write_str("TIME"),
            SqlType::Timestamp => f.write_str("TIMESTAMP"),
            SqlType::Array(t) => write!(f, "ARRAY<{t}>"),
            SqlType::Map(k, v) => write!(f, "MAP<{k}, {v}>"),
            SqlType::Struct(fields) => {
                f.write_str("STRUCT<")?;
                for (i, (n, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{} {t}", quote_ident(n))?;
                }
                f.write_str(">")
            }
        }
    }
}

impl SqlType {
    /// Levels of nesting (a primitive type is 1).
    pub fn depth(&self) -> usize {
        match self {
            SqlType::Array(t) => 1 + t.depth(),
            SqlType::Map(k, v) => 1 + k.depth().max(v.depth()),
            SqlType::Struct(fields) => 1 + fields.iter().map(|(_, t)| t.depth()).max().unwrap_or(0),
            _ => 1,
        }
    }

    /// The base type name ksqlDB's REST API reports (`"type"` in a field schema).
    pub fn base_name(&self) -> &'static str {
        match self {
            SqlType::Boolean => "BOOLEAN",
            SqlType::Int => "INTEGER",
            SqlType::Bigint => "BIGINT",
            SqlType::Double => "DOUBLE",
            SqlType::Decimal { .. } => "DECIMAL",
            SqlType::String => "STRING",
            SqlType::Bytes => "BYTES",
            SqlType::Date => "DATE",
            SqlType::Time => "TIME",
            SqlType::Timestamp => "TIMESTAMP",
            SqlType::Array(_) => "ARRAY",
            SqlType::Map(..) => "MAP",
            SqlType::Struct(_) => "STRUCT",
        }
    }

    /// Whether this type, or a type nested in it (elements, map keys and values, struct
    /// fields), satisfies `f`.
    pub fn any_nested(&self, f: &dyn Fn(&SqlType) -> bool) -> bool {
        f(self)
            || match self {
                SqlType::Array(e) => e.any_nested(f),
                SqlType::Map(k, v) => k.any_nested(f) || v.any_nested(f),
                SqlType::Struct(fields) => fields.iter().any(|(_, t)| t.any_nested(f)),
                _ => false,
            }
    }

    pub fn is_numeric(&self) -> bool {
        matches!(self, SqlType::Int | SqlType::Bigint | SqlType::Double | SqlType::Decimal { .. })
    }

    /// The Arrow type values of this SQL type are held in.
    pub fn to_arrow(&self) -> DataType {
        match self {
            SqlType::Boolean => DataType::Boolean,
            SqlType::Int => DataType::Int32,
            SqlType::Bigint => DataType::Int64,
            SqlType::Double => DataType::Float64,
            SqlType::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale),
            SqlType::String => DataType::Utf8,
            SqlType::Bytes => DataType::Binary,
            SqlType::Date => DataType::Date32,
            SqlType::Time => DataType::Time32(TimeUnit::Millisecond),
            SqlType::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
            SqlType::Array(t) => DataType::List(Arc::new(Field::new("item", t.to_arrow(), true))),
            SqlType::Map(k, v) => DataType::Map(
                Arc::new(Field::new(
                    "entries",
                    DataType::Struct(Fields::from(vec![Field::new("key", k.to_arrow(), false), Field::new("value", v.to_arrow(), true)])),
                    false,
                )),
                false,
            ),
            SqlType::Struct(fields) => DataType::Struct(fields.iter().map(|(n, t)| Field::new(n, t.to_arrow(), true)).collect::<Vec<_>>().into()),
        }
    }

    /// The SQL type for an Arrow type, if there is one. Narrower Arrow types map to the
    /// SQL type that holds them (callers cast to `to_arrow()` of the result).
    pub fn from_arrow(dt: &DataType) -> Option<SqlType> {
        Some(match dt {
            DataType::Boolean => SqlType::Boolean,
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16 => SqlType::Int,
            DataType::Int64 | DataType::UInt32 | DataType::UInt64 => SqlType::Bigint,
            DataType::Float16 | DataType::Float32 | DataType::Float64 => SqlType::Double,
            DataType::Decimal32(p, s) | DataType::Decimal64(p, s) | DataType::Decimal128(p, s) => SqlType::Decimal { precision: *p, scale: *s },
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => SqlType::String,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => SqlType::Bytes,
            DataType::Date32 | DataType::Date64 => SqlType::Date,
            DataType::Time32(_) | DataType::Time64(_) => SqlType::Time,
            DataType::Timestamp(_, _) => SqlType::Timestamp,
            DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) | DataType::ListView(f) => {
                SqlType::Array(Box::new(SqlType::from_arrow(f.data_type())?))
            }
            DataType::Map(entries, _) => match entries.data_type() {
                DataType::Struct(kv) if kv.len() == 2 => {
                    SqlType::Map(Box::new(SqlType::from_arrow(kv[0].data_type())?), Box::new(SqlType::from_arrow(kv[1].data_type())?))
                }
                _ => return None,
            },
            DataType::Struct(fields) => {
                SqlType::Struct(fields.iter().map(|f| SqlType::from_arrow(f.data_type()).map(|t| (f.name().clone(), t))).collect::<Option<Vec<_>>>()?)
            }
            DataType::Null => SqlType::String,
            _ => return None,
        })
    }

    /// The REST API's field schema object: `{"type", "fields", "memberSchema"}`.
    pub fn to_schema_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            SqlType::Array(t) => {
                json!({"type": "ARRAY", "fields": null, "memberSchema": t.to_schema_json()})
            }
            SqlType::Map(_, v) => {
                json!({"type": "MAP", "fields": null, "memberSchema": v.to_schema_json()})
            }
            SqlType::Struct(fields) => json!({
                "type": "STRUCT",
                "fields": fields.iter().map(|(n, t)| json!({"name": n, "schema": t.to_schema_json()})).collect::<Vec<_>>(),
                "memberSchema": null
            }),
            SqlType::Decimal { precision, scale } => json!({
                "type": "DECIMAL", "fields": null, "memberSchema": null,
                "parameters": {"precision": precision, "scale": scale}
            }),
            other => json!({"type": other.base_name(), "fields": null, "memberSchema": null}),
        }
    }
}

/// Whether a column comes from the record key, the value, or the record headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Key,
    Value,
    /// `HEADERS` (all headers) or `HEADER('name')` (one header's last value).
    Header,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub ty: SqlType,
    pub kind: ColumnKind,
    /// For `HEADER('name')` columns: the header name.
    pub header_key: Option<String>,
}

impl Column {
    pub fn new(name: impl Into<String>, ty: SqlType, kind: ColumnKind) -> Column {
        Column { name: name.into(), ty, kind, header_key: None }
    }
}

/// The type of a HEADERS column: ARRAY<STRUCT<KEY STRING, VALUE BYTES>>.
pub fn headers_type() -> SqlType {
    SqlType::Array(Box::new(SqlType::Struct(vec![("KEY".into(), SqlType::String), ("VALUE".into(), SqlType::Bytes)])))
}

/// Pseudo-columns every stream and table exposes in queries (ROWTIME is BIGINT epoch
/// milliseconds, as in ksqlDB).
pub const ROWTIME: &str = "ROWTIME";
pub const ROWPARTITION: &str = "ROWPARTITION";
pub const ROWOFFSET: &str = "ROWOFFSET";

/// The columns of a stream or table: key columns first, then value columns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogicalSchema {
    columns: Vec<Column>,
}

impl LogicalSchema {
    /// Builds a schema; key columns are moved before value columns, keeping their order.
    pub fn new(columns: Vec<Column>) -> Self {
        let (mut keys, values): (Vec<_>, Vec<_>) = columns.into_iter().partition(|c| c.kind == ColumnKind::Key);
        keys.extend(values);
        LogicalSchema { columns: keys }
    }

    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    pub fn key_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.kind == ColumnKind::Key)
    }

    pub fn header_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.kind == ColumnKind::Header)
    }

    pub fn value_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.kind == ColumnKind::Value)
    }

    pub fn key_count(&self) -> usize {
        self.key_columns().count()
    }

    pub fn find(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Arrow schema of the key columns.
    pub fn key_arrow_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(self.key_columns().map(|c| Field::new(&c.name, c.ty.to_arrow(), true)).collect::<Vec<_>>()))
    }

    /// Arrow schema of the value columns.
    pub fn value_arrow_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(self.value_columns().map(|c| Field::new(&c.name, c.ty.to_arrow(), true)).collect::<Vec<_>>()))
    }

    /// The schema a query sees for this source: keys, values, then pseudo-columns.
    pub fn query_arrow_schema(&self) -> SchemaRef {
        let mut fields: Vec<Field> = self.columns.iter().map(|c| Field::new(&c.name, c.ty.to_arrow(), true)).collect();
        fields.push(Field::new(ROWTIME, DataType::Int64, false));
        fields.push(Field::new(ROWPARTITION, DataType::Int32, false));
        fields.push(Field::new(ROWOFFSET, DataType::Int64, false));
        Arc::new(Schema::new(fields))
    }

    /// `` `K` STRING KEY, `V` BIGINT `` as ksqlDB prints schemas.
    pub fn describe(&self, mark_keys: bool) -> String {
        self.columns
            .iter()
            .map(|c| {
                let suffix = match (c.kind, &c.header_key) {
                    (ColumnKind::Key, _) if mark_keys => " KEY".to_string(),
                    (ColumnKind::Header, Some(k)) => format!(" HEADER('{k}')"),
                    (ColumnKind::Header, None) => " HEADERS".to_string(),
                    _ => String::new(),
                };
                format!("{} {}{}", quote_ident(&c.name), c.ty, suffix)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_print_like_ksqldb() {
        let t = SqlType::Struct(vec![
            ("F1".into(), SqlType::String),
            ("F2".into(), SqlType::Map(Box::new(SqlType::String), Box::new(SqlType::Array(Box::new(SqlType::Int))))),
        ]);
        assert_eq!(t.to_string(), "STRUCT<`F1` STRING, `F2` MAP<STRING, ARRAY<INTEGER>>>");
        assert_eq!(SqlType::Decimal { precision: 4, scale: 2 }.to_string(), "DECIMAL(4, 2)");
    }

    #[test]
    fn arrow_round_trip_preserves_types() {
        for t in [
            SqlType::Boolean,
            SqlType::Int,
            SqlType::Bigint,
            SqlType::Double,
            SqlType::Decimal { precision: 10, scale: 3 },
            SqlType::String,
            SqlType::Bytes,
            SqlType::Date,
            SqlType::Time,
            SqlType::Timestamp,
            SqlType::Array(Box::new(SqlType::String)),
            SqlType::Map(Box::new(SqlType::String), Box::new(SqlType::Bigint)),
            SqlType::Struct(vec![("A".into(), SqlType::Int)]),
        ] {
            assert_eq!(SqlType::from_arrow(&t.to_arrow()), Some(t));
        }
    }

    #[test]
    fn key_columns_come_first() {
        let s = LogicalSchema::new(vec![Column::new("V", SqlType::Int, ColumnKind::Value), Column::new("K", SqlType::String, ColumnKind::Key)]);
        assert_eq!(s.describe(true), "`K` STRING KEY, `V` INTEGER");
    }
}
