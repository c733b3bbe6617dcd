//! Compatibility of a new schema with a subject's earlier ones, by the subject's level, as
//! Confluent's registry checks it: BACKWARD (the new schema reads data written with the
//! latest earlier one), FORWARD (the latest earlier one reads data written with the new),
//! FULL (both); the TRANSITIVE levels check against every earlier version, not just the
//! latest. AVRO schemas are checked with the Avro specification's resolution rules
//! (`apache-avro`), JSON schemas by `compat_json`, PROTOBUF schemas by `compat_protobuf`.

use apache_avro::schema_compatibility::SchemaCompatibility;

use super::RegistryError;
use super::store::{Compatibility, Schema, SchemaType};

/// Parses an AVRO schema, or says why it is not one.
pub fn parse_avro(schema: &Schema) -> Result<apache_avro::Schema, RegistryError> {
    apache_avro::Schema::parse_str(&schema.schema).map_err(|e| RegistryError::InvalidSchema(format!("not an Avro schema: {e}")))
}

/// Checks `new` against `earlier` (a subject's live versions, oldest first) at `level`;
/// the reasons it is incompatible otherwise.
pub fn check(level: Compatibility, new: &Schema, earlier: &[&Schema]) -> Result<(), Vec<String>> {
    if level == Compatibility::None {
        return Ok(());
    }
    let transitive = matches!(level, Compatibility::BackwardTransitive | Compatibility::ForwardTransitive | Compatibility::FullTransitive);
    let (backward, forward) = match level {
        Compatibility::Backward | Compatibility::BackwardTransitive => (true, false),
        Compatibility::Forward | Compatibility::ForwardTransitive => (false, true),
        _ => (true, true),
    };
    let against: Vec<&&Schema> = if transitive { earlier.iter().collect() } else { earlier.last().into_iter().collect() };
    match new.schema_type {
        SchemaType::Json => return check_json(new, &against, backward, forward),
        SchemaType::Protobuf => return check_protobuf(new, &against, backward, forward),
        SchemaType::Avro => {}
    }
    let Ok(reader) = parse_avro(new) else { return Ok(()) };
    let mut reasons = Vec::new();
    for old in against {
        if old.schema_type != SchemaType::Avro {
            reasons.push(format!("an earlier version is {}, not AVRO", old.schema_type.name()));
            continue;
        }
        let Ok(old) = parse_avro(old) else { continue };
        if backward && let Err(e) = SchemaCompatibility::can_read(&old, &reader) {
            reasons.push(format!("the new schema cannot read data written with an earlier one: {e}"));
        }
        if forward && let Err(e) = SchemaCompatibility::can_read(&reader, &old) {
            reasons.push(format!("an earlier schema cannot read data written with the new one: {e}"));
        }
    }
    if reasons.is_empty() { Ok(()) } else { Err(reasons) }
}

/// [`check`] for PROTOBUF schemas.
fn check_protobuf(new: &Schema, against: &[&&Schema], backward: bool, forward: bool) -> Result<(), Vec<String>> {
    use crate::format::protobuf_schema::compile;
    let Ok(reader) = compile(&new.schema) else { return Ok(()) };
    let mut reasons = Vec::new();
    for old in against {
        if old.schema_type != SchemaType::Protobuf {
            reasons.push(format!("an earlier version is {}, not PROTOBUF", old.schema_type.name()));
            continue;
        }
        let Ok(old) = compile(&old.schema) else { continue };
        if backward {
            let found = super::compat_protobuf::incompatibilities(&old, &reader);
            reasons.extend(found.into_iter().map(|r| format!("the new schema cannot read data written with an earlier one: {r}")));
        }
        if forward {
            let found = super::compat_protobuf::incompatibilities(&reader, &old);
            reasons.extend(found.into_iter().map(|r| format!("an earlier schema cannot read data written with the new one: {r}")));
        }
    }
    if reasons.is_empty() { Ok(()) } else { Err(reasons) }
}

/// [`check`] for JSON schemas.
fn check_json(new: &Schema, against: &[&&Schema], backward: bool, forward: bool) -> Result<(), Vec<String>> {
    let Ok(reader) = serde_json::from_str::<serde_json::Value>(&new.schema) else { return Ok(()) };
    let mut reasons = Vec::new();
    for old in against {
        if old.schema_type != SchemaType::Json {
            reasons.push(format!("an earlier version is {}, not JSON", old.schema_type.name()));
            continue;
        }
        let Ok(old) = serde_json::from_str::<serde_json::Value>(&old.schema) else { continue };
        if backward {
            reasons.extend(
                super::compat_json::incompatibilities(&reader, &old).into_iter().map(|r| format!("the new schema refuses data the earlier one allowed: {r}")),
            );
        }
        if forward {
            reasons.extend(
                super::compat_json::incompatibilities(&old, &reader).into_iter().map(|r| format!("an earlier schema refuses data the new one allows: {r}")),
            );
        }
    }
    if reasons.is_empty() { Ok(()) } else { Err(reasons) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avro(text: &str) -> Schema {
        Schema { schema_type: SchemaType::Avro, schema: text.to_string(), references: Vec::new() }
    }

    const V1: &str = r#"{"type":"record","name":"U","fields":[{"name":"id","type":"long"}]}"#;
    const WITH_DEFAULT: &str = r#"{"type":"record","name":"U","fields":[{"name":"id","type":"long"},{"name":"n","type":["null","string"],"default":null}]}"#;
    const WITHOUT_DEFAULT: &str = r#"{"type":"record","name":"U","fields":[{"name":"id","type":"long"},{"name":"n","type":"string"}]}"#;
    const ID_ONLY_INT: &str = r#"{"type":"record","name":"U","fields":[{"name":"id","type":"int"}]}"#;

    #[test]
    fn backward_needs_defaults_for_added_fields_and_forward_needs_readable_removals() {
        let (v1, with_default, without_default) = (avro(V1), avro(WITH_DEFAULT), avro(WITHOUT_DEFAULT));
        assert_eq!(check(Compatibility::Backward, &with_default, &[&v1]), Ok(()));
        assert!(check(Compatibility::Backward, &without_default, &[&v1]).is_err(), "a new field without a default cannot be read from old data");
        assert_eq!(check(Compatibility::Forward, &without_default, &[&v1]), Ok(()), "old readers ignore the new field");
        assert!(check(Compatibility::Full, &without_default, &[&v1]).is_err());
        assert_eq!(check(Compatibility::None, &avro(r#""string""#), &[&v1]), Ok(()));
        // int is promoted to long when reading, not the other way round.
        assert_eq!(check(Compatibility::Backward, &v1, &[&avro(ID_ONLY_INT)]), Ok(()));
        assert!(check(Compatibility::Backward, &avro(ID_ONLY_INT), &[&v1]).is_err());
    }

    #[test]
    fn transitive_levels_check_every_earlier_version() {
        let (first, second) = (avro(ID_ONLY_INT), avro(V1));
        let third = avro(r#"{"type":"record","name":"U","fields":[{"name":"id","type":"double"}]}"#);
        // A double reads what an int or a long wrote: backward holds against both ...
        assert_eq!(check(Compatibility::BackwardTransitive, &third, &[&first, &second]), Ok(()));
        // ... but neither reads a double: forward finds it for the latest version, forward
        // transitive for each.
        assert_eq!(check(Compatibility::Forward, &third, &[&first, &second]).map_err(|r| r.len()), Err(1));
        assert_eq!(check(Compatibility::ForwardTransitive, &third, &[&first, &second]).map_err(|r| r.len()), Err(2));
    }
}
