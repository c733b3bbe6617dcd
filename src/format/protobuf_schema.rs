//! `.proto` schemas for the PROTOBUF formats: compiling the text (or the base64
//! `FileDescriptorProto` Confluent's clients register) with its imports, the message
//! Confluent's message indexes name, the schema ksqlDB writes for a source's columns, and
//! the columns ksqlDB infers from a registered schema.

use prost_reflect::{DescriptorPool, Kind, MessageDescriptor};

use super::ProtobufNullable;
use super::avro_schema::Unreadable;
use crate::catalog::types::SqlType;

/// The name of the message ksqlDB's schemas hold.
const ROOT: &str = "ConnectDefault1";

/// Why columns cannot be written as PROTOBUF.
pub fn unsupported(ty: &SqlType) -> Option<String> {
    match ty {
        SqlType::Array(item) if matches!(**item, SqlType::Array(_) | SqlType::Map(..)) => {
            Some("PROTOBUF cannot hold an ARRAY of ARRAYs or MAPs (repeated fields cannot repeat)".into())
        }
        SqlType::Map(k, _) if **k != SqlType::String => Some("PROTOBUF format only supports MAP types with STRING keys".into()),
        SqlType::Map(_, v) if matches!(**v, SqlType::Array(_) | SqlType::Map(..)) => Some("PROTOBUF map values cannot be ARRAYs or MAPs".into()),
        SqlType::Array(item) | SqlType::Map(_, item) => unsupported(item),
        SqlType::Struct(fields) => fields.iter().find_map(|(_, t)| unsupported(t)),
        _ => None,
    }
}

/// The `.proto` text ksqlDB registers for `columns`: one message with a field per column
/// (structs as nested messages). A single unwrapped column (a key) is a message of one
/// field, or when it is a STRUCT, the struct's own message. `full_name` (a
/// `*_SCHEMA_FULL_NAME`) names the message and, when dotted, its package; `nullable` says
/// how scalars may be null.
pub fn schema_for(columns: &[(&str, &SqlType)], unwrapped: bool, full_name: Option<&str>, nullable: ProtobufNullable) -> String {
    let mut body = String::new();
    let mut counter = 1;
    let timestamps = columns.iter().any(|(_, t)| t.any_nested(&|t| *t == SqlType::Timestamp));
    let fields = match columns {
        [(_, SqlType::Struct(inner))] if unwrapped => inner.clone(),
        _ => columns.iter().map(|(n, t)| (n.to_string(), (*t).clone())).collect(),
    };
    let (package, name) = match full_name.map(|n| n.trim_start_matches('.')).and_then(|n| n.rsplit_once('.')) {
        Some((package, name)) => (format!("package {package};\n\n"), name),
        None => (String::new(), full_name.unwrap_or(ROOT)),
    };
    message(name, fields, (&mut counter, nullable), 0, &mut body);
    let mut imports = String::new();
    let uses = |wanted: &dyn Fn(&SqlType) -> bool| columns.iter().any(|(_, t)| t.any_nested(wanted));
    if timestamps {
        imports.push_str("import \"google/protobuf/timestamp.proto\";\n");
    }
    for (file, wanted) in [
        ("confluent/type/decimal.proto", &(|t: &SqlType| matches!(t, SqlType::Decimal { .. })) as &dyn Fn(&SqlType) -> bool),
        ("google/type/date.proto", &|t: &SqlType| *t == SqlType::Date),
        ("google/type/timeofday.proto", &|t: &SqlType| *t == SqlType::Time),
    ] {
        if uses(wanted) {
            imports.push_str(&format!("import \"{file}\";\n"));
        }
    }
    if nullable == ProtobufNullable::Wrapper {
        imports.push_str("import \"google/protobuf/wrappers.proto\";\n");
    }
    if !imports.is_empty() {
        imports.push('\n');
    }
    format!("syntax = \"proto3\";\n\n{package}{imports}{body}")
}

fn message(name: &str, fields: Vec<(String, SqlType)>, (counter, nullable): (&mut usize, ProtobufNullable), indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent);
    out.push_str(&format!("{pad}message {name} {{\n"));
    for (i, (field, ty)) in fields.iter().enumerate() {
        let mut nested = |t: &SqlType| -> String {
            match t {
                SqlType::Struct(inner) => {
                    *counter += 1;
                    let n = format!("ConnectDefault{counter}");
                    message(&n, inner.clone(), (counter, nullable), indent + 1, out);
                    n
                }
                other => scalar(other).to_string(),
            }
        };
        let decl = match ty {
            SqlType::Array(item) => format!("repeated {}", nested(item)),
            SqlType::Map(_, v) => format!("map<string, {}>", nested(v)),
            SqlType::Decimal { precision, scale } => {
                let meta = format!("{{ params: [{{ key: \"precision\", value: \"{precision}\" }}, {{ key: \"scale\", value: \"{scale}\" }}] }}");
                format!("confluent.type.Decimal {field} = {} [(confluent.field_meta) = {meta}]", i + 1)
            }
            SqlType::Struct(_) | SqlType::Timestamp | SqlType::Date | SqlType::Time => nested(ty),
            scalar_type => match (nullable, wrapper(scalar_type)) {
                (ProtobufNullable::Optional, _) => format!("optional {}", nested(scalar_type)),
                (ProtobufNullable::Wrapper, Some(w)) => w.to_string(),
                _ => nested(scalar_type),
            },
        };
        if matches!(ty, SqlType::Decimal { .. }) {
            out.push_str(&format!("{pad}  {decl};\n"));
        } else {
            out.push_str(&format!("{pad}  {decl} {field} = {};\n", i + 1));
        }
    }
    out.push_str(&format!("{pad}}}\n"));
}

/// The `google.protobuf` wrapper of a scalar type.
fn wrapper(ty: &SqlType) -> Option<&'static str> {
    Some(match ty {
        SqlType::Boolean => "google.protobuf.BoolValue",
        SqlType::Int => "google.protobuf.Int32Value",
        SqlType::Bigint => "google.protobuf.Int64Value",
        SqlType::Double => "google.protobuf.DoubleValue",
        SqlType::String => "google.protobuf.StringValue",
        SqlType::Bytes => "google.protobuf.BytesValue",
        _ => return None,
    })
}

fn scalar(ty: &SqlType) -> &'static str {
    match ty {
        SqlType::Boolean => "bool",
        SqlType::Int => "int32",
        SqlType::Bigint => "int64",
        SqlType::Double => "double",
        SqlType::Bytes => "bytes",
        SqlType::Timestamp => "google.protobuf.Timestamp",
        SqlType::Date => "google.type.Date",
        SqlType::Time => "google.type.TimeOfDay",
        SqlType::Decimal { .. } => "confluent.type.Decimal",
        _ => "string",
    }
}

/// How deeply a `.proto` text may nest blocks (messages, options, maps). The parser
/// recurses per level, so without a bound one schema posted to the registry could exhaust
/// the stack of the thread compiling it.
pub const MAX_SCHEMA_NESTING: usize = 64;

/// The deepest nesting of `{`, `[`, `(` and `<` in `.proto` text, outside strings and
/// comments.
fn nesting(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' => {
                let quote = b[i];
                i += 1;
                while i < b.len() && b[i] != quote {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b'{' | b'[' | b'(' | b'<' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' | b')' | b'>' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    max
}

/// The types Confluent's serializers and ksqlDB import beside google's well-known ones, as
/// their published definitions lay them out: field metadata (the precision and scale of a
/// decimal), decimals, dates and times of day. `decimal.proto` imports `meta.proto`
/// publicly, so schemas that annotate decimals after importing only `decimal.proto` (as
/// ksqlDB's do) compile.
const KNOWN_FILES: &[(&str, &str)] = &[
    (
        "confluent/meta.proto",
        "syntax = \"proto3\";\npackage confluent;\nimport \"google/protobuf/descriptor.proto\";\n\
         message Meta { string doc = 1; map<string, string> params = 2; repeated string tags = 3; }\n\
         extend google.protobuf.FileOptions { Meta file_meta = 1088; }\n\
         extend google.protobuf.MessageOptions { Meta message_meta = 1088; }\n\
         extend google.protobuf.FieldOptions { Meta field_meta = 1088; }\n\
         extend google.protobuf.EnumOptions { Meta enum_meta = 1088; }\n\
         extend google.protobuf.EnumValueOptions { Meta enum_value_meta = 1088; }\n",
    ),
    (
        "confluent/type/decimal.proto",
        "syntax = \"proto3\";\npackage confluent.type;\nimport public \"confluent/meta.proto\";\n\
         message Decimal { bytes value = 1; uint32 precision = 2; int32 scale = 3; }\n",
    ),
    ("google/type/date.proto", "syntax = \"proto3\";\npackage google.type;\nmessage Date { int32 year = 1; int32 month = 2; int32 day = 3; }\n"),
    (
        "google/type/timeofday.proto",
        "syntax = \"proto3\";\npackage google.type;\nmessage TimeOfDay { int32 hours = 1; int32 minutes = 2; int32 seconds = 3; int32 nanos = 4; }\n",
    ),
];

/// The precision and scale a DECIMAL column has when its field carries none.
const DEFAULT_DECIMAL: (u8, i8) = (38, 9);

/// The name the schema being compiled has among its imports.
const MAIN_FILE: &str = "schema.proto";

/// Whether registry text is a base64 descriptor rather than `.proto` source (which always
/// holds blanks, quotes or semicolons that base64 does not).
fn is_base64(text: &str) -> bool {
    let t = text.trim();
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
}

fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text.trim()).map_err(|e| format!("not a PROTOBUF schema: the descriptor is not base64 ({e})"))
}

/// One schema file for the compiler, from `.proto` source or a base64 `FileDescriptorProto`.
fn schema_file(name: &str, text: &str) -> Result<protox::file::File, protox::Error> {
    if !is_base64(text) {
        return protox::file::File::from_source(name, text);
    }
    let bytes = decode_base64(text).map_err(|e| protox::Error::new(std::io::Error::other(e)))?;
    let mut proto = <prost_reflect::prost_types::FileDescriptorProto as prost_reflect::prost::Message>::decode(bytes.as_slice())
        .map_err(|e| protox::Error::new(std::io::Error::other(format!("the base64 text is not a FileDescriptorProto: {e}"))))?;
    proto.name = Some(name.to_string());
    Ok(protox::file::File::from_file_descriptor_proto(proto))
}

/// Compiles a schema without imports of its own (google's well-known types available).
pub fn compile(text: &str) -> Result<DescriptorPool, String> {
    compile_with(text, &[])
}

/// Compiles a schema (`.proto` text, or a base64 `FileDescriptorProto` as Confluent's
/// clients register it) whose imports are `imports` (name imported, its text) and google's
/// well-known types. A base64 `FileDescriptorSet` holding a `schema.proto` (what
/// [`resolved_set`] makes of a schema and its references) is read as it is.
pub fn compile_with(text: &str, imports: &[(String, String)]) -> Result<DescriptorPool, String> {
    if is_base64(text)
        && let Ok(pool) = DescriptorPool::decode(decode_base64(text)?.as_slice())
        && pool.get_file_by_name(MAIN_FILE).is_some()
    {
        return Ok(pool);
    }
    for t in std::iter::once(text).chain(imports.iter().map(|(_, t)| t.as_str())) {
        if !is_base64(t) && nesting(t) > MAX_SCHEMA_NESTING {
            return Err(format!("not a PROTOBUF schema Eddy reads: it nests more than {MAX_SCHEMA_NESTING} levels deep"));
        }
    }
    struct Files(Vec<(String, String)>);
    impl protox::file::FileResolver for Files {
        fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
            match self.0.iter().find(|(n, _)| n == name) {
                Some((n, t)) => schema_file(n, t),
                None => Err(protox::Error::file_not_found(name)),
            }
        }
    }
    let files = std::iter::once((MAIN_FILE.to_string(), text.to_string())).chain(imports.iter().cloned()).collect();
    let known = KNOWN_FILES.iter().map(|(n, t)| (n.to_string(), t.to_string()));
    let mut resolver = protox::file::ChainFileResolver::new();
    resolver.add(Files(files));
    resolver.add(Files(known.collect()));
    resolver.add(protox::file::GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true);
    compiler.open_file(MAIN_FILE).map_err(|e| format!("not a PROTOBUF schema: {e}"))?;
    Ok(compiler.descriptor_pool())
}

/// A schema with its imports as one base64 `FileDescriptorSet` that [`compile`] reads back:
/// what formats are given for a schema with references.
pub fn resolved_set(text: &str, imports: &[(String, String)]) -> Result<String, String> {
    use base64::Engine;
    Ok(base64::engine::general_purpose::STANDARD.encode(compile_with(text, imports)?.encode_to_vec()))
}

/// The schema as Confluent's `?format=serialized` answers it: its base64
/// `FileDescriptorProto`.
pub fn serialized(text: &str, imports: &[(String, String)]) -> Result<String, String> {
    use base64::Engine;
    let pool = compile_with(text, imports)?;
    let file = pool.get_file_by_name(MAIN_FILE).ok_or("the schema has no file")?;
    Ok(base64::engine::general_purpose::STANDARD.encode(prost_reflect::prost::Message::encode_to_vec(file.file_descriptor_proto())))
}

/// The compiled schema's own file (not its imports).
pub fn main_file(pool: &DescriptorPool) -> Option<prost_reflect::FileDescriptor> {
    pool.get_file_by_name(MAIN_FILE)
}

/// The message Confluent's message indexes name: the first index picks a top-level
/// message of the schema's file, each further one a nested message.
pub fn message_at(pool: &DescriptorPool, indexes: &[i32]) -> Result<MessageDescriptor, String> {
    let file = pool.get_file_by_name(MAIN_FILE).ok_or("the schema has no file")?;
    let first = indexes.first().copied().unwrap_or(0);
    let mut m = file.messages().nth(first.max(0) as usize).ok_or_else(|| format!("the schema has no message at index {first}"))?;
    for i in indexes.iter().skip(1) {
        let next = m.child_messages().nth((*i).max(0) as usize);
        m = next.ok_or_else(|| format!("message {} has no nested message at index {i}", m.full_name()))?;
    }
    Ok(m)
}

/// The message records are written with: the one `full_name` names (a schema's
/// `*_SCHEMA_FULL_NAME`), else the file's first, with the message indexes that name it.
pub fn message_named(pool: &DescriptorPool, full_name: Option<&str>) -> Result<(MessageDescriptor, Vec<i32>), String> {
    let Some(name) = full_name else { return Ok((message_at(pool, &[0])?, vec![0])) };
    let file = main_file(pool).ok_or("the schema has no file")?;
    let mut stack: Vec<(MessageDescriptor, Vec<i32>)> = file.messages().enumerate().map(|(i, m)| (m, vec![i as i32])).collect();
    while let Some((m, path)) = stack.pop() {
        if m.full_name() == name.trim_start_matches('.') {
            return Ok((m, path));
        }
        stack.extend(m.child_messages().enumerate().map(|(i, c)| (c, path.iter().copied().chain([i as i32]).collect())));
    }
    let names: Vec<String> = file.messages().map(|m| m.full_name().to_string()).collect();
    Err(format!("the schema has no message named {name}; its messages are {}", names.join(", ")))
}

/// The SQL type of a field's kind, as ksqlDB reads it.
fn kind_type(kind: &Kind, depth: usize) -> Result<SqlType, Unreadable> {
    if depth > 32 {
        return Err(Unreadable("the PROTOBUF schema nests too deep".into()));
    }
    Ok(match kind {
        Kind::Bool => SqlType::Boolean,
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => SqlType::Int,
        Kind::Uint32 | Kind::Fixed32 | Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64 => SqlType::Bigint,
        Kind::Float | Kind::Double => SqlType::Double,
        Kind::String | Kind::Enum(_) => SqlType::String,
        Kind::Bytes => SqlType::Bytes,
        Kind::Message(m) => match m.full_name() {
            "google.protobuf.Timestamp" => SqlType::Timestamp,
            "google.type.Date" => SqlType::Date,
            "google.type.TimeOfDay" => SqlType::Time,
            "confluent.type.Decimal" => SqlType::Decimal { precision: DEFAULT_DECIMAL.0, scale: DEFAULT_DECIMAL.1 },
            "google.protobuf.StringValue" => SqlType::String,
            "google.protobuf.BoolValue" => SqlType::Boolean,
            "google.protobuf.Int32Value" | "google.protobuf.UInt32Value" => SqlType::Int,
            "google.protobuf.Int64Value" | "google.protobuf.UInt64Value" => SqlType::Bigint,
            "google.protobuf.DoubleValue" | "google.protobuf.FloatValue" => SqlType::Double,
            "google.protobuf.BytesValue" => SqlType::Bytes,
            _ => SqlType::Struct(message_fields(m, depth + 1)?),
        },
    })
}

/// A `confluent.type.Decimal` field's SQL type: its precision and scale from the field's
/// `confluent.field_meta` params, as Confluent's converter writes them.
pub fn decimal_of(f: &prost_reflect::FieldDescriptor) -> SqlType {
    let options = f.options();
    let param = |name: &str| -> Option<i64> {
        let meta = options.extensions().find(|(e, _)| e.full_name() == "confluent.field_meta").map(|(_, v)| v.clone())?;
        let prost_reflect::Value::Message(meta) = meta else { return None };
        let params = meta.get_field_by_name("params")?;
        let prost_reflect::Value::Map(entries) = params.as_ref() else { return None };
        entries.get(&prost_reflect::MapKey::String(name.to_string()))?.as_str()?.trim().parse().ok()
    };
    let precision = param("precision").and_then(|p| u8::try_from(p).ok()).filter(|p| (1..=38).contains(p)).unwrap_or(DEFAULT_DECIMAL.0);
    let scale =
        param("scale").and_then(|s| i8::try_from(s).ok()).filter(|s| (0..=precision as i8).contains(s)).unwrap_or(DEFAULT_DECIMAL.1.min(precision as i8));
    SqlType::Decimal { precision, scale }
}

fn field_type(f: &prost_reflect::FieldDescriptor, depth: usize) -> Result<SqlType, Unreadable> {
    Ok(if !f.is_list() && matches!(f.kind(), Kind::Message(m) if m.full_name() == "confluent.type.Decimal") {
        decimal_of(f)
    } else if f.is_map() {
        let Kind::Message(entry) = f.kind() else { return Err(Unreadable("a map without entries".into())) };
        SqlType::Map(Box::new(SqlType::String), Box::new(kind_type(&entry.map_entry_value_field().kind(), depth + 1)?))
    } else if f.is_list() {
        SqlType::Array(Box::new(kind_type(&f.kind(), depth + 1)?))
    } else {
        kind_type(&f.kind(), depth + 1)?
    })
}

/// The column a oneof is read as, as Confluent's converter names it: the oneof's name and
/// its index in the message.
pub fn oneof_column(message: &MessageDescriptor, oneof: &prost_reflect::OneofDescriptor) -> String {
    let index = message.oneofs().position(|o| o.name() == oneof.name()).unwrap_or(0);
    format!("{}_{index}", oneof.name())
}

/// A message's fields as columns; the members of a oneof (not proto3's `optional`) make one
/// STRUCT column in the place of its first member, as ksqlDB reads them.
fn message_fields(m: &MessageDescriptor, depth: usize) -> Result<Vec<(String, SqlType)>, Unreadable> {
    let mut out = Vec::new();
    let mut seen_oneofs: Vec<String> = Vec::new();
    for f in m.fields() {
        match f.containing_oneof().filter(|o| !o.is_synthetic()) {
            Some(oneof) => {
                if seen_oneofs.iter().any(|n| n == oneof.name()) {
                    continue;
                }
                seen_oneofs.push(oneof.name().to_string());
                let members =
                    oneof.fields().map(|member| Ok((member.name().to_string(), field_type(&member, depth)?))).collect::<Result<Vec<_>, Unreadable>>()?;
                out.push((oneof_column(m, &oneof), SqlType::Struct(members)));
            }
            None => out.push((f.name().to_string(), field_type(&f, depth)?)),
        }
    }
    Ok(out)
}

/// The columns a registered `.proto` schema holds, as ksqlDB infers them: the fields of the
/// message `full_name` names, or of the first one, names upper-cased when `upper` (for keys
/// too: a PROTOBUF key is a message).
pub fn columns_of(text: &str, full_name: Option<&str>, single_name: &str, upper: bool) -> Result<Vec<(String, SqlType)>, Unreadable> {
    let pool = compile(text).map_err(Unreadable)?;
    let (m, _) = message_named(&pool, full_name).map_err(Unreadable)?;
    let fields = message_fields(&m, 0)?;
    let fields: Vec<(String, SqlType)> = if upper { fields.into_iter().map(|(n, t)| (n.to_uppercase(), upper_names(t))).collect() } else { fields };
    if fields.is_empty() {
        return Ok(vec![(single_name.to_string(), SqlType::Struct(Vec::new()))]);
    }
    Ok(fields)
}

/// Struct field names upper-cased, as ksqlDB infers them from PROTOBUF schemas.
fn upper_names(t: SqlType) -> SqlType {
    match t {
        SqlType::Struct(fields) => SqlType::Struct(fields.into_iter().map(|(n, t)| (n.to_uppercase(), upper_names(t))).collect()),
        SqlType::Array(item) => SqlType::Array(Box::new(upper_names(*item))),
        SqlType::Map(k, v) => SqlType::Map(k, Box::new(upper_names(*v))),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_make_a_schema_that_infers_them_back() {
        let st = SqlType::Struct(vec![("F0".into(), SqlType::Int)]);
        let arr = SqlType::Array(Box::new(SqlType::Bigint));
        let map = SqlType::Map(Box::new(SqlType::String), Box::new(SqlType::Double));
        let text =
            schema_for(&[("ID", &SqlType::Bigint), ("S", &st), ("A", &arr), ("M", &map), ("T", &SqlType::Timestamp)], false, None, ProtobufNullable::Defaults);
        let cols = columns_of(&text, None, "ROWVAL", true).unwrap();
        assert_eq!(
            cols,
            vec![("ID".into(), SqlType::Bigint), ("S".into(), st), ("A".into(), arr), ("M".into(), map), ("T".into(), SqlType::Timestamp)],
            "{text}"
        );
    }

    #[test]
    fn deeply_nested_schemas_are_refused_before_the_parser_recurses() {
        let deep = format!("syntax = \"proto3\"; {} int32 x = 1; {}", "message M { ".repeat(5000), "} ".repeat(5000));
        let err = compile(&deep).err().unwrap_or_default();
        assert!(err.contains("nests more than 64 levels"), "{err}");
        // Braces in strings and comments do not count.
        let quoted = format!("syntax = \"proto3\"; // {}\nmessage M {{ string s = 1 [json_name = \"{}\"]; }}", "{".repeat(100), "{".repeat(100));
        assert!(compile(&quoted).is_ok());
    }

    #[test]
    fn base64_descriptors_compile_like_their_source() {
        let text = schema_for(&[("ID", &SqlType::Bigint), ("T", &SqlType::Timestamp)], false, None, ProtobufNullable::Defaults);
        let descriptor = serialized(&text, &[]).expect("serializes");
        let pool = compile(&descriptor).expect("a base64 FileDescriptorProto compiles");
        assert_eq!(message_at(&pool, &[0]).expect("has a message").fields().count(), 2);
        assert_eq!(columns_of(&descriptor, None, "ROWVAL", true).unwrap(), columns_of(&text, None, "ROWVAL", true).unwrap());
        assert!(compile("AAAA").is_err(), "base64 that is no descriptor of a file");
    }

    #[test]
    fn imports_are_resolved_by_name_and_kept_in_a_resolved_set() {
        let dep = ("other.proto".to_string(), "syntax = \"proto3\"; package o; message Inner { string s = 1; }".to_string());
        let main = "syntax = \"proto3\"; import \"other.proto\"; message Outer { o.Inner inner = 1; }";
        assert!(compile(main).is_err(), "the import is missing without its reference");
        let set = resolved_set(main, std::slice::from_ref(&dep)).expect("compiles with its import");
        let cols = columns_of(&set, None, "ROWVAL", true).expect("the set reads back");
        assert_eq!(cols, vec![("INNER".to_string(), SqlType::Struct(vec![("S".into(), SqlType::String)]))]);
    }
}
