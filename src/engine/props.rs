//! `WITH (...)` properties of CREATE statements, checked against the names ksqlDB knows.

use crate::format::{FormatKind, FormatSpec, ProtobufNullable};
use crate::log::TopicConfig;
use crate::sql::SqlError;
use crate::sql::ast::{PropValue, Props};

/// Properties of CREATE STREAM/TABLE [AS SELECT] and INSERT INTO.
#[derive(Debug, Clone, Default)]
pub struct SourceProps {
    pub kafka_topic: Option<String>,
    pub partitions: Option<i32>,
    pub key_format: Option<FormatKind>,
    pub value_format: Option<FormatKind>,
    pub key_delimiter: Option<char>,
    pub value_delimiter: Option<char>,
    pub wrap_single_value: Option<bool>,
    pub timestamp: Option<String>,
    pub timestamp_format: Option<String>,
    /// WINDOW_TYPE of a windowed source (its records' keys carry window bounds).
    pub window_type: Option<crate::catalog::WindowType>,
    /// WINDOW_SIZE of a TUMBLING or HOPPING source, ms.
    pub window_size_ms: Option<i64>,
    /// Topic settings (retention, segments, cleanup, compression, flush), Kafka names.
    pub topic_settings: Vec<(String, String)>,
    /// KEY_SCHEMA_ID / VALUE_SCHEMA_ID: the registered schema to read and write with.
    pub key_schema_id: Option<i32>,
    pub value_schema_id: Option<i32>,
    /// KEY_SCHEMA_FULL_NAME / VALUE_SCHEMA_FULL_NAME: the name of the schema written.
    pub key_full_name: Option<String>,
    pub value_full_name: Option<String>,
    /// KEY_/VALUE_PROTOBUF_NULLABLE_REPRESENTATION: OPTIONAL or WRAPPER.
    pub key_protobuf_nullable: Option<ProtobufNullable>,
    pub value_protobuf_nullable: Option<ProtobufNullable>,
}

/// WITH properties that configure the topic rather than the source.
const TOPIC_SETTINGS: &[&str] = &[
    "RETENTION_MS",
    "RETENTION_BYTES",
    "SEGMENT_BYTES",
    "SEGMENT_MS",
    "CLEANUP_POLICY",
    "DELETE_RETENTION_MS",
    "COMPRESSION_TYPE",
    "COMPRESSION",
    "FLUSH",
    "FLUSH_INTERVAL_MS",
];

const KNOWN: &[&str] = &[
    "KAFKA_TOPIC",
    "PARTITIONS",
    "REPLICAS",
    "KEY_FORMAT",
    "VALUE_FORMAT",
    "FORMAT",
    "KEY_DELIMITER",
    "VALUE_DELIMITER",
    "WRAP_SINGLE_VALUE",
    "TIMESTAMP",
    "TIMESTAMP_FORMAT",
    "KEY_SCHEMA_ID",
    "KEY_PROTOBUF_NULLABLE_REPRESENTATION",
    "VALUE_PROTOBUF_NULLABLE_REPRESENTATION",
    "VALUE_SCHEMA_ID",
    "VALUE_AVRO_SCHEMA_FULL_NAME",
    "KEY_SCHEMA_FULL_NAME",
    "VALUE_SCHEMA_FULL_NAME",
    "WINDOW_TYPE",
    "WINDOW_SIZE",
];

fn delimiter(name: &str, v: &PropValue, pos: crate::sql::ast::Pos) -> Result<char, SqlError> {
    let s = v.as_text();
    // A bare space or tab must be written as SPACE or TAB.
    if s.trim().is_empty() {
        return Err(SqlError::at(
            pos,
            format!(
                "Failed to prepare statement: Configuration {name} is invalid: Delimiter cannot be empty, if you meant to have a tab or space for \
                    delimiter, please use the special values 'TAB' or 'SPACE'\nExample valid value: ';'"
            ),
            None,
        ));
    }
    match s.to_ascii_uppercase().as_str() {
        "TAB" => return Ok('\t'),
        "SPACE" => return Ok(' '),
        _ => {}
    }
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(SqlError::at(
            pos,
            format!(
                "Failed to prepare statement: Configuration {name} is invalid: Invalid delimiter value: '{s}'. Delimiter must be a single character or \
                    TAB,SPACE\nExample valid value: ';'"
            ),
            None,
        )),
    }
}

/// `30 SECONDS` and the like, in milliseconds, or ksqlDB's reason it is not a duration.
fn duration_ms(text: &str) -> Result<i64, String> {
    let invalid = |why: String| format!("Invalid duration: '{text}'. {why}");
    let mut parts = text.split_whitespace();
    let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid("Not a duration such as '30 SECONDS'".into()));
    };
    let n: i64 = n.parse().map_err(|_| invalid(format!("Not a number: '{n}'")))?;
    let unit = unit.to_ascii_uppercase();
    let ms = match unit.trim_end_matches('S') {
        "MILLISECOND" => 1,
        "SECOND" => 1_000,
        "MINUTE" => 60_000,
        "HOUR" => 3_600_000,
        "DAY" => 86_400_000,
        _ => return Err(invalid(format!("Unknown time unit: '{unit}'"))),
    };
    Ok(n * ms)
}

impl SourceProps {
    /// The window of a source declared WITH (WINDOW_TYPE=..., WINDOW_SIZE=...). Its errors
    /// are `SqlError::Properties`: ksqlDB checks the window while building the statement.
    pub fn source_window(&self) -> Result<Option<(crate::catalog::WindowType, Option<i64>)>, SqlError> {
        use crate::catalog::WindowType;
        match (self.window_type, self.window_size_ms) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err(SqlError::invalid("'WINDOW_SIZE' should not be set without 'WINDOW_TYPE'.", None).in_properties()),
            (Some(WindowType::Session), Some(_)) => Err(SqlError::invalid("'WINDOW_SIZE' should not be set for SESSION windows.", None).in_properties()),
            (Some(WindowType::Session), None) => Ok(Some((WindowType::Session, None))),
            (Some(t), None) => {
                Err(SqlError::invalid(format!("'WINDOW_SIZE' must be set for {} windows.", t.name()), Some("e.g. WINDOW_SIZE='30 SECONDS'".into()))
                    .in_properties())
            }
            (Some(t), Some(size)) => Ok(Some((t, Some(size)))),
        }
    }

    pub fn parse(props: &Props) -> Result<SourceProps, SqlError> {
        let mut out = SourceProps::default();
        let mut check = TopicConfig::default();
        let given = |n: &str| props.0.iter().any(|(p, _, _)| p.replace('.', "_") == n);
        if given("FORMAT") {
            for other in ["KEY_FORMAT", "VALUE_FORMAT"] {
                if given(other) {
                    return Err(SqlError::invalid(
                        format!(
                            "Cannot supply both '{other}' and 'FORMAT' properties, as 'FORMAT' sets both key and value formats. Either use just \
                                'FORMAT', or use 'KEY_FORMAT' and 'VALUE_FORMAT'."
                        ),
                        None,
                    ));
                }
            }
        }
        for (name, value, pos) in &props.0 {
            let pos = *pos;
            let name = &name.replace('.', "_");
            let text = value.as_text();
            let format = |s: &str| FormatKind::parse(s).map_err(|e| SqlError::at(pos, e.to_string(), None));
            match name.as_str() {
                "KAFKA_TOPIC" => out.kafka_topic = Some(text),
                "PARTITIONS" => {
                    let n: i32 = text.parse().map_err(|_| SqlError::at(pos, format!("PARTITIONS must be a positive whole number, got '{text}'"), None))?;
                    if n < 1 {
                        return Err(SqlError::at(pos, format!("PARTITIONS must be at least 1, got {n}"), None));
                    }
                    out.partitions = Some(n);
                }
                "REPLICAS" => {}
                "KEY_FORMAT" => out.key_format = Some(format(&text)?),
                "VALUE_FORMAT" => out.value_format = Some(format(&text)?),
                "FORMAT" => {
                    let f = format(&text)?;
                    out.key_format = Some(f);
                    out.value_format = Some(f);
                }
                "KEY_DELIMITER" => out.key_delimiter = Some(delimiter(name, value, pos)?),
                "VALUE_DELIMITER" => out.value_delimiter = Some(delimiter(name, value, pos)?),
                "WRAP_SINGLE_VALUE" => {
                    out.wrap_single_value = Some(match value {
                        PropValue::Boolean(b) => *b,
                        _ => match text.to_ascii_lowercase().as_str() {
                            "true" => true,
                            "false" => false,
                            _ => return Err(SqlError::at(pos, "WRAP_SINGLE_VALUE must be true or false", None)),
                        },
                    })
                }
                "TIMESTAMP" => out.timestamp = Some(text.to_uppercase()),
                "TIMESTAMP_FORMAT" => out.timestamp_format = Some(text),
                "WINDOW_TYPE" => {
                    out.window_type = Some(match text.to_ascii_uppercase().as_str() {
                        "TUMBLING" => crate::catalog::WindowType::Tumbling,
                        "HOPPING" => crate::catalog::WindowType::Hopping,
                        "SESSION" => crate::catalog::WindowType::Session,
                        _ => {
                            return Err(SqlError::at(
                                pos,
                                format!("Configuration WINDOW_TYPE is invalid: '{text}'. Valid values are SESSION, HOPPING and TUMBLING."),
                                None,
                            ));
                        }
                    })
                }
                "WINDOW_SIZE" => {
                    out.window_size_ms = Some(
                        duration_ms(&text).map_err(|why| SqlError::at(pos, format!("Configuration WINDOW_SIZE is invalid: {why}"), None).in_properties())?,
                    )
                }
                other if TOPIC_SETTINGS.contains(&other) => {
                    let key = other.to_ascii_lowercase().replace('_', ".");
                    check.set(&key, &text).map_err(|e| SqlError::at(pos, e, None))?;
                    out.topic_settings.push((key, text));
                }
                "KEY_SCHEMA_ID" | "VALUE_SCHEMA_ID" => {
                    let id: i32 = text.parse().map_err(|_| SqlError::at(pos, format!("{name} must be a schema id (a whole number), got '{text}'"), None))?;
                    if name == "KEY_SCHEMA_ID" {
                        out.key_schema_id = Some(id);
                    } else {
                        out.value_schema_id = Some(id);
                    }
                }
                "KEY_PROTOBUF_NULLABLE_REPRESENTATION" | "VALUE_PROTOBUF_NULLABLE_REPRESENTATION" => {
                    let nullable = match text.to_ascii_uppercase().as_str() {
                        "OPTIONAL" => ProtobufNullable::Optional,
                        "WRAPPER" => ProtobufNullable::Wrapper,
                        _ => {
                            return Err(SqlError::at(pos, format!("{name} must be OPTIONAL or WRAPPER, got '{text}'"), None));
                        }
                    };
                    if name.starts_with("KEY") {
                        out.key_protobuf_nullable = Some(nullable);
                    } else {
                        out.value_protobuf_nullable = Some(nullable);
                    }
                }
                "KEY_SCHEMA_FULL_NAME" => out.key_full_name = Some(text),
                "VALUE_SCHEMA_FULL_NAME" | "VALUE_AVRO_SCHEMA_FULL_NAME" => out.value_full_name = Some(text),
                other if KNOWN.contains(&other) => {}
                other => {
                    return Err(SqlError::at(
                        pos,
                        format!("Invalid config variable(s) in the WITH clause: {other}"),
                        Some(
                            "valid properties are KAFKA_TOPIC, PARTITIONS, REPLICAS, KEY_FORMAT, VALUE_FORMAT, FORMAT, KEY_DELIMITER, \
                            VALUE_DELIMITER, WRAP_SINGLE_VALUE, TIMESTAMP, TIMESTAMP_FORMAT, and the topic settings FLUSH, FLUSH_INTERVAL_MS, \
                                RETENTION_MS, RETENTION_BYTES, SEGMENT_BYTES, SEGMENT_MS, CLEANUP_POLICY, DELETE_RETENTION_MS, COMPRESSION_TYPE"
                                .into(),
                        ),
                    ));
                }
            }
        }
        if out.value_delimiter.is_some() && out.value_format.is_some_and(|f| f != FormatKind::Delimited) {
            let f = out.value_format.map(|f| f.name()).unwrap_or_default();
            return Err(SqlError::invalid(format!("{f} does not support the following configs: [delimiter]"), None));
        }
        if out.wrap_single_value == Some(false) && matches!(out.value_format, Some(FormatKind::Protobuf | FormatKind::ProtobufNosr)) {
            let f = out.value_format.map(|f| f.name()).unwrap_or_default();
            return Err(SqlError::invalid(format!("Format '{f}' does not support 'WRAP_SINGLE_VALUE' set to 'false'."), None));
        }
        if out.wrap_single_value == Some(true) && matches!(out.value_format, Some(FormatKind::Delimited | FormatKind::Kafka)) {
            let f = out.value_format.map(|f| f.name()).unwrap_or_default();
            return Err(SqlError::invalid(format!("Format '{f}' does not support 'WRAP_SINGLE_VALUE' set to 'true'."), None));
        }
        Ok(out)
    }

    /// The server's topic defaults with this statement's topic settings applied.
    pub fn topic_config(&self, defaults: &TopicConfig) -> TopicConfig {
        let mut c = defaults.clone();
        for (k, v) in &self.topic_settings {
            // Validated in `parse`.
            let _ = c.set(k, v);
        }
        c
    }

    /// Refuses schema ids and full names for formats without a registry (checked once the
    /// formats are known: a query's result inherits its source's).
    pub fn check_registry_props(&self, key: &FormatSpec, value: &FormatSpec) -> Result<(), SqlError> {
        for (role, given, format) in [("KEY", self.key_protobuf_nullable, key), ("VALUE", self.value_protobuf_nullable, value)] {
            if given.is_some() && !matches!(format.kind, FormatKind::Protobuf | FormatKind::ProtobufNosr) {
                let name = format!("{role}_PROTOBUF_NULLABLE_REPRESENTATION");
                return Err(SqlError::invalid(
                    format!("{name} is provided but format {} is not PROTOBUF or PROTOBUF_NOSR", format.kind.name()),
                    Some(format!("remove {name}, or set {role}_FORMAT to PROTOBUF")),
                ));
            }
        }
        for (role, id, full_name, format) in [
            ("KEY", self.key_schema_id.is_some(), self.key_full_name.is_some(), key),
            ("VALUE", self.value_schema_id.is_some(), self.value_full_name.is_some(), value),
        ] {
            let given = if id {
                "SCHEMA_ID"
            } else if full_name {
                "SCHEMA_FULL_NAME"
            } else {
                continue;
            };
            if !format.uses_registry() {
                let name = format!("{role}_{given}");
                return Err(SqlError::invalid(
                    format!("{name} is provided but format {} does not support Schema Registry", format.kind.name()),
                    Some(format!("schema ids and full names go with AVRO, JSON_SR and PROTOBUF; set {role}_FORMAT to one of them or remove {name}")),
                ));
            }
        }
        Ok(())
    }

    /// The key format, defaulting to `default`.
    pub fn key_spec(&self, default: &FormatSpec) -> FormatSpec {
        let mut spec = match self.key_format {
            Some(k) => FormatSpec::new(k),
            None => default.clone(),
        };
        if let Some(d) = self.key_delimiter {
            spec.delimiter = d;
        }
        if let Some(n) = self.key_protobuf_nullable {
            spec.protobuf_nullable = n;
        }
        if spec.uses_registry() {
            spec.schema_id = self.key_schema_id;
            spec.schema = None;
            spec.full_name = self.key_full_name.clone();
        }
        spec
    }

    /// The value format, defaulting to `default`.
    pub fn value_spec(&self, default: &FormatSpec) -> FormatSpec {
        let mut spec = match self.value_format {
            Some(k) => FormatSpec::new(k),
            None => default.clone(),
        };
        if let Some(d) = self.value_delimiter {
            spec.delimiter = d;
        }
        if let Some(w) = self.wrap_single_value {
            spec.wrap_single_value = w;
        }
        if let Some(n) = self.value_protobuf_nullable {
            spec.protobuf_nullable = n;
        }
        if spec.uses_registry() {
            spec.schema_id = self.value_schema_id;
            spec.schema = None;
            spec.full_name = self.value_full_name.clone();
        }
        spec
    }
}
