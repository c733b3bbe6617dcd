//! Compatibility of PROTOBUF schemas, by the wire rules of the Protocol Buffers language
//! guide ("Updating a message type") as Confluent's registry applies them: messages are
//! matched by name and fields by number. Fields may be added or removed (proto3 has no
//! required fields) and renamed; a field's type may change only within a wire-compatible
//! group (int32/uint32/int64/uint64/bool, sint32/sint64, fixed32/sfixed32,
//! fixed64/sfixed64, string/bytes, enums with the unsigned and signed varints); a
//! message-typed field keeps its message. Not allowed: removing a message, changing the
//! package or the syntax, adding or removing a proto2 required field, removing a field from
//! a oneof, moving fields into an existing oneof or several existing fields into a new one.

use prost_reflect::{Cardinality, DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};

use crate::format::protobuf_schema::main_file;

/// Why data written with `original` would not read right with `update` (empty: it
/// would). BACKWARD checks (earlier, new); FORWARD (new, earlier).
pub fn incompatibilities(original: &DescriptorPool, update: &DescriptorPool) -> Vec<String> {
    let (Some(old), Some(new)) = (main_file(original), main_file(update)) else { return Vec::new() };
    let mut reasons = Vec::new();
    if old.syntax() != new.syntax() {
        reasons.push(format!("the syntax changed from {:?} to {:?}", old.syntax(), new.syntax()).to_lowercase());
    }
    if old.package_name() != new.package_name() {
        reasons.push(format!("the package changed from '{}' to '{}'", old.package_name(), new.package_name()));
    }
    let relative = |m: &MessageDescriptor, package: &str| m.full_name().strip_prefix(package).unwrap_or(m.full_name()).trim_start_matches('.').to_string();
    let all = |f: &prost_reflect::FileDescriptor| {
        let mut out = Vec::new();
        let mut stack: Vec<MessageDescriptor> = f.messages().collect();
        while let Some(m) = stack.pop() {
            stack.extend(m.child_messages().filter(|c| !c.is_map_entry()));
            out.push(m);
        }
        out
    };
    let updated = all(&new);
    for m in all(&old) {
        let name = relative(&m, old.package_name());
        match updated.iter().find(|u| relative(u, new.package_name()) == name) {
            None => reasons.push(format!("message {name} was removed")),
            Some(u) => message_changes(&name, &m, u, old.package_name(), new.package_name(), &mut reasons),
        }
    }
    reasons
}

/// The incompatible changes between two versions of one message.
fn message_changes(name: &str, old: &MessageDescriptor, new: &MessageDescriptor, old_pkg: &str, new_pkg: &str, reasons: &mut Vec<String>) {
    let real_oneof = |f: &FieldDescriptor| f.containing_oneof().filter(|o| !o.is_synthetic()).map(|o| o.name().to_string());
    for f in old.fields() {
        let at = format!("field {}.{} (number {})", name, f.name(), f.number());
        let Some(g) = new.get_field(f.number()) else {
            if f.cardinality() == Cardinality::Required {
                reasons.push(format!("required {at} was removed"));
            }
            if let Some(o) = real_oneof(&f) {
                reasons.push(format!("{at} was removed from oneof {o}"));
            }
            continue;
        };
        if (f.cardinality() == Cardinality::Required) != (g.cardinality() == Cardinality::Required) {
            reasons.push(format!("{at} changed between required and optional"));
        }
        if let Some(why) = kind_change(&f, &g, old_pkg, new_pkg) {
            reasons.push(format!("{at} {why}"));
        }
        if let (None, Some(o)) = (real_oneof(&f), real_oneof(&g)) {
            let existed = old.oneofs().any(|x| x.name() == o);
            let moved = new.fields().filter(|x| real_oneof(x).as_deref() == Some(o.as_str())).filter(|x| old.get_field(x.number()).is_some()).count();
            if existed {
                reasons.push(format!("{at} was moved into the existing oneof {o}"));
            } else if moved > 1 {
                reasons.push(format!("{at} was moved into the new oneof {o} with other existing fields"));
            }
        }
    }
    for g in new.fields() {
        if old.get_field(g.number()).is_none() && g.cardinality() == Cardinality::Required {
            reasons.push(format!("required field {}.{} (number {}) was added", name, g.name(), g.number()));
        }
    }
}

/// Which wire-compatible group a scalar kind is in.
fn wire_group(kind: &Kind) -> Option<u8> {
    Some(match kind {
        Kind::Int32 | Kind::Uint32 | Kind::Int64 | Kind::Uint64 | Kind::Bool | Kind::Enum(_) => 0,
        Kind::Sint32 | Kind::Sint64 => 1,
        Kind::Fixed32 | Kind::Sfixed32 => 2,
        Kind::Fixed64 | Kind::Sfixed64 => 3,
        Kind::String | Kind::Bytes => 4,
        Kind::Float => 5,
        Kind::Double => 6,
        Kind::Message(_) => return None,
    })
}

fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Message(m) => m.full_name().to_string(),
        Kind::Enum(e) => e.full_name().to_string(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// How a field's type changed incompatibly, if it did.
fn kind_change(f: &FieldDescriptor, g: &FieldDescriptor, old_pkg: &str, new_pkg: &str) -> Option<String> {
    if f.is_map() != g.is_map() {
        return Some("changed between a map and a non-map field".into());
    }
    let (a, b) = (f.kind(), g.kind());
    let packable = |k: &Kind| !matches!(k, Kind::String | Kind::Bytes | Kind::Message(_));
    if f.is_list() != g.is_list() && (packable(&a) || packable(&b)) {
        return Some("changed between repeated and singular (allowed only for strings, bytes and messages)".into());
    }
    let strip = |name: &str, pkg: &str| name.strip_prefix(pkg).unwrap_or(name).trim_start_matches('.').to_string();
    match (&a, &b) {
        (Kind::Message(x), Kind::Message(y)) if f.is_map() => {
            // Map entries: compare the key and value fields.
            let (xk, yk) = (x.map_entry_key_field(), y.map_entry_key_field());
            let (xv, yv) = (x.map_entry_value_field(), y.map_entry_value_field());
            kind_change(&xk, &yk, old_pkg, new_pkg).or_else(|| kind_change(&xv, &yv, old_pkg, new_pkg)).map(|w| format!("has map entries that {w}"))
        }
        (Kind::Message(x), Kind::Message(y)) => (strip(x.full_name(), old_pkg) != strip(y.full_name(), new_pkg))
            .then(|| format!("changed its message type from {} to {}", kind_name(&a), kind_name(&b))),
        (Kind::Enum(x), Kind::Enum(y)) => (strip(x.full_name(), old_pkg) != strip(y.full_name(), new_pkg))
            .then(|| format!("changed its enum type from {} to {}", kind_name(&a), kind_name(&b))),
        _ => (wire_group(&a).is_none() || wire_group(&a) != wire_group(&b))
            .then(|| format!("changed its type from {} to {}, which are not wire-compatible", kind_name(&a), kind_name(&b))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::protobuf_schema::compile;

    fn diff(old: &str, new: &str) -> Vec<String> {
        let pool = |body: &str| compile(&format!("syntax = \"proto3\";\npackage p;\n{body}")).expect("test schema compiles");
        incompatibilities(&pool(old), &pool(new))
    }

    #[test]
    fn adding_removing_and_renaming_fields_is_compatible() {
        assert!(diff("message M { int32 a = 1; string b = 2; }", "message M { int32 a = 1; }").is_empty());
        assert!(diff("message M { int32 a = 1; }", "message M { int32 renamed = 1; string c = 3; }").is_empty());
    }

    #[test]
    fn type_changes_are_compatible_only_within_a_wire_group() {
        assert!(diff("message M { int32 a = 1; }", "message M { int64 a = 1; }").is_empty(), "int32 and int64 are both varints");
        assert!(diff("message M { string a = 1; }", "message M { bytes a = 1; }").is_empty());
        assert!(diff("message M { sint32 a = 1; }", "message M { sint64 a = 1; }").is_empty());
        let reasons = diff("message M { int32 a = 1; }", "message M { string a = 1; }");
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(reasons[0].contains("not wire-compatible"), "{reasons:?}");
        assert_eq!(diff("message M { int32 a = 1; }", "message M { sint32 a = 1; }").len(), 1, "zigzag changes the encoding");
        assert_eq!(diff("message M { double a = 1; }", "message M { float a = 1; }").len(), 1);
        assert_eq!(diff("message M { int32 a = 1; }", "message M { repeated int32 a = 1; }").len(), 1);
        assert!(diff("message M { string a = 1; }", "message M { repeated string a = 1; }").is_empty());
    }

    #[test]
    fn message_typed_fields_keep_their_message_and_messages_stay() {
        let base = "message A { int32 x = 1; } message B { int32 x = 1; }";
        assert_eq!(diff(&format!("{base} message M {{ A f = 1; }}"), &format!("{base} message M {{ B f = 1; }}")).len(), 1);
        let removed = diff("message A { int32 x = 1; } message M { int32 a = 1; }", "message M { int32 a = 1; }");
        assert_eq!(removed, vec!["message A was removed".to_string()]);
        assert!(diff("message M { int32 a = 1; }", "message M { int32 a = 1; } message N { int32 b = 1; }").is_empty(), "adding a message is fine");
        // Nested messages are compared too.
        assert_eq!(diff("message M { message In { int32 a = 1; } }", "message M { message In { string a = 1; } }").len(), 1);
    }

    #[test]
    fn oneof_rules_follow_the_language_guide() {
        assert!(diff("message M { int32 a = 1; }", "message M { oneof o { int32 a = 1; } }").is_empty(), "one field into a new oneof");
        assert_eq!(diff("message M { int32 a = 1; int32 b = 2; }", "message M { oneof o { int32 a = 1; int32 b = 2; } }").len(), 2);
        assert_eq!(diff("message M { int32 a = 1; oneof o { int32 b = 2; } }", "message M { oneof o { int32 a = 1; int32 b = 2; } }").len(), 1);
        assert_eq!(diff("message M { oneof o { int32 a = 1; int32 b = 2; } }", "message M { oneof o { int32 a = 1; } }").len(), 1, "removed from a oneof");
        assert!(diff("message M { oneof o { int32 a = 1; } }", "message M { oneof o { int32 a = 1; int32 b = 2; } }").is_empty(), "added to a oneof");
    }

    #[test]
    fn package_syntax_and_required_fields_matter() {
        let p2 = |body: &str| compile(&format!("syntax = \"proto2\";\n{body}")).expect("compiles");
        let p3 = |body: &str| compile(&format!("syntax = \"proto3\";\n{body}")).expect("compiles");
        assert_eq!(incompatibilities(&p2("message M { optional int32 a = 1; }"), &p3("message M { int32 a = 1; }")).len(), 1);
        assert_eq!(incompatibilities(&p2("message M { optional int32 a = 1; }"), &p2("message M { optional int32 a = 1; required int32 b = 2; }")).len(), 1);
        assert_eq!(incompatibilities(&p2("message M { required int32 a = 1; }"), &p2("message M { }")).len(), 1);
        assert_eq!(diff("message M { int32 a = 1; }", "message M { int32 a = 1; }"), Vec::<String>::new());
        let moved = incompatibilities(&p3("package a; message M { int32 x = 1; }"), &p3("package b; message M { int32 x = 1; }"));
        assert_eq!(moved.len(), 1, "{moved:?}");
    }
}
