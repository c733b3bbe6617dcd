//! JSON values <-> Arrow.
//!
//! Decoding: each record's JSON is first copied into one buffer with object keys
//! normalised to the schema's column names (ksqlDB matches JSON fields exactly, then
//! case-insensitively), then the whole buffer is decoded by `arrow-json`'s schema-driven
//! decoder in one pass. Only when that fails are records decoded one by one to find and
//! report the bad ones. Encoding uses `arrow-json`'s encoders, with ksqlDB's
//! representations for TIMESTAMP/DATE/TIME (numbers) and BYTES (base64).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StructArray};
use arrow::datatypes::{DataType, Date32Type, Field, FieldRef, Fields, Float64Type, Schema, SchemaRef, Time32MillisecondType, TimestampMillisecondType};
use arrow::error::ArrowError;
use arrow::json::reader::ReaderBuilder;
use arrow::json::writer::{Encoder, EncoderFactory, EncoderOptions, NullableEncoder, make_encoder};
use base64::Engine;

use super::{DecodedRows, EncodedRows, FormatError, RowDecoder, RowEncoder};

// ---------------------------------------------------------------------------------------
// Key normalisation
// ---------------------------------------------------------------------------------------

/// How the JSON at some position relates to the schema.
#[derive(Debug, Clone)]
enum Shape {
    Struct(Arc<StructShape>),
    List(Box<Shape>),
    Map(Box<Shape>),
    Leaf,
}

#[derive(Debug)]
struct StructShape {
    /// Field names as JSON string literals (quoted and escaped), and their shapes.
    fields: Vec<(Vec<u8>, Shape)>,
    exact: HashMap<String, usize>,
    upper: HashMap<String, usize>,
}

impl Shape {
    fn of(dt: &DataType) -> Shape {
        match dt {
            DataType::Struct(fields) => Shape::Struct(Arc::new(StructShape::of(fields))),
            DataType::List(f) | DataType::LargeList(f) => match Shape::of(f.data_type()) {
                Shape::Leaf => Shape::Leaf,
                s => Shape::List(Box::new(s)),
            },
            DataType::Map(entries, _) => match entries.data_type() {
                DataType::Struct(kv) if kv.len() == 2 => match Shape::of(kv[1].data_type()) {
                    Shape::Leaf => Shape::Leaf,
                    s => Shape::Map(Box::new(s)),
                },
                _ => Shape::Leaf,
            },
            _ => Shape::Leaf,
        }
    }
}

impl StructShape {
    fn of(fields: &Fields) -> StructShape {
        let mut exact = HashMap::new();
        let mut upper = HashMap::new();
        let mut out = Vec::new();
        for (i, f) in fields.iter().enumerate() {
            exact.insert(f.name().clone(), i);
            upper.entry(f.name().to_uppercase()).or_insert(i);
            let literal = serde_json::to_vec(f.name()).unwrap_or_default();
            out.push((literal, Shape::of(f.data_type())));
        }
        StructShape { fields: out, exact, upper }
    }
}

/// How deeply a record's JSON may nest (Jackson's default `maxNestingDepth`, which ksqlDB
/// reads JSON with). Deeper records are bad records: counted and skipped. Arrow's JSON
/// decoder recurses over nested values, so without a bound one record could exhaust the
/// stack of the thread decoding it.
pub const MAX_RECORD_DEPTH: usize = 1000;

struct Normalizer<'a> {
    s: &'a [u8],
    i: usize,
    out: &'a mut Vec<u8>,
    /// Objects and arrays the current position is inside.
    depth: usize,
}

type NResult = Result<(), String>;

impl Normalizer<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn err(&self, what: &str) -> String {
        format!("invalid JSON at byte {}: {what}", self.i)
    }

    fn too_deep(&self) -> String {
        format!("the JSON value nests more than {MAX_RECORD_DEPTH} levels deep (at byte {})", self.i)
    }

    /// Enters an object or array.
    fn descend(&mut self) -> NResult {
        if self.depth >= MAX_RECORD_DEPTH {
            return Err(self.too_deep());
        }
        self.depth += 1;
        Ok(())
    }

    /// The extent of a string starting at the current quote.
    fn string_end(&self) -> Result<(usize, bool), String> {
        let mut j = self.i + 1;
        let mut escaped = false;
        while j < self.s.len() {
            match self.s[j] {
                b'"' => return Ok((j + 1, escaped)),
                b'\\' => {
                    escaped = true;
                    j += 2;
                }
                _ => j += 1,
            }
        }
        Err(self.err("unterminated string"))
    }

    fn copy_string(&mut self) -> NResult {
        let (end, _) = self.string_end()?;
        self.out.extend_from_slice(&self.s[self.i..end]);
        self.i = end;
        Ok(())
    }

    /// Copies any JSON value verbatim.
    fn copy_raw(&mut self) -> NResult {
        self.ws();
        match self.peek() {
            Some(b'"') => self.copy_string(),
            Some(b'{') | Some(b'[') => {
                let mut depth = 0usize;
                let start = self.i;
                while self.i < self.s.len() {
                    match self.s[self.i] {
                        b'"' => {
                            let (end, _) = self.string_end()?;
                            self.i = end;
                            continue;
                        }
                        b'{' | b'[' => {
                            depth += 1;
                            if self.depth + depth > MAX_RECORD_DEPTH {
                                return Err(self.too_deep());
                            }
                        }
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                self.out.extend_from_slice(&self.s[start..self.i]);
                                return Ok(());
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
                Err(self.err("unbalanced brackets"))
            }
            Some(_) => {
                let start = self.i;
                while self.i < self.s.len() && !matches!(self.s[self.i], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                    self.i += 1;
                }
                if start == self.i {
                    return Err(self.err("expected a value"));
                }
                self.out.extend_from_slice(&self.s[start..self.i]);
                Ok(())
            }
            None => Err(self.err("unexpected end of input")),
        }
    }

    fn value(&mut self, shape: &Shape) -> NResult {
        self.ws();
        match (shape, self.peek()) {
            (Shape::Struct(st), Some(b'{')) => self.nested(|n| n.object(Some(st), None)),
            (Shape::Map(v), Some(b'{')) => self.nested(|n| n.object(None, Some(v))),
            (Shape::List(e), Some(b'[')) => self.nested(|n| n.array(e)),
            _ => self.copy_raw(),
        }
    }

    /// Parses an object or array one level deeper.
    fn nested(&mut self, parse: impl FnOnce(&mut Self) -> NResult) -> NResult {
        self.descend()?;
        let r = parse(self);
        self.depth -= 1;
        r
    }

    fn array(&mut self, elem: &Shape) -> NResult {
        self.i += 1;
        self.out.push(b'[');
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            self.out.push(b']');
            return Ok(());
        }
        loop {
            self.value(elem)?;
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.out.push(b',');
                }
                Some(b']') => {
                    self.i += 1;
                    self.out.push(b']');
                    return Ok(());
                }
                _ => return Err(self.err("expected ',' or ']'")),
            }
        }
    }

    /// An object: a struct (keys normalised) or a map (keys kept, values shaped).
    fn object(&mut self, st: Option<&StructShape>, map_value: Option<&Shape>) -> NResult {
        self.i += 1;
        self.out.push(b'{');
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            self.out.push(b'}');
            return Ok(());
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a field name"));
            }
            let (end, escaped) = self.string_end()?;
            let raw = &self.s[self.i..end];
            self.i = end;
            let mut child = map_value;
            match st {
                Some(st) => {
                    let name: std::borrow::Cow<str> = if escaped {
                        serde_json::from_slice::<String>(raw).map_err(|e| e.to_string())?.into()
                    } else {
                        String::from_utf8_lossy(&raw[1..raw.len() - 1])
                    };
                    let idx = st.exact.get(name.as_ref()).or_else(|| st.upper.get(&name.to_uppercase()));
                    match idx {
                        Some(&i) => {
                            self.out.extend_from_slice(&st.fields[i].0);
                            child = Some(&st.fields[i].1);
                        }
                        None => self.out.extend_from_slice(raw),
                    }
                }
                None => self.out.extend_from_slice(raw),
            }
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.err("expected ':'"));
            }
            self.i += 1;
            self.out.push(b':');
            match child {
                Some(shape) => self.value(shape)?,
                None => self.copy_raw()?,
            }
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.out.push(b',');
                }
                Some(b'}') => {
                    self.i += 1;
                    self.out.push(b'}');
                    return Ok(());
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }
}

/// Copies one JSON document into `out`, normalising keys by `shape`.
fn normalize(input: &[u8], shape: &Shape, out: &mut Vec<u8>) -> NResult {
    let mut n = Normalizer { s: input, i: 0, out, depth: 0 };
    n.value(shape)?;
    n.ws();
    if n.i != input.len() {
        return Err(n.err("unexpected data after the JSON value"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Decoder
// ---------------------------------------------------------------------------------------

pub struct JsonDecoder {
    /// Arrow fields of the output columns.
    fields: Fields,
    /// The struct the decoder reads: for an unwrapped single value, `{"v": <value>}`.
    decode_schema: SchemaRef,
    shape: Shape,
    unwrapped: bool,
    /// Output columns of type BYTES, decoded from base64 strings after JSON decoding.
    bytes_columns: Vec<usize>,
    /// Output columns holding BYTES inside arrays, maps or structs (HEADERS columns):
    /// read as text, then base64-decoded where the type says BYTES.
    nested_bytes_columns: Vec<usize>,
    buf: Vec<u8>,
}

const UNWRAPPED_FIELD: &str = "v";

impl JsonDecoder {
    pub fn new(fields: Fields, unwrapped: bool) -> JsonDecoder {
        let mut bytes_columns = Vec::new();
        let mut nested_bytes_columns = Vec::new();
        let decode_fields: Vec<Field> = fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                if matches!(f.data_type(), DataType::Binary) {
                    bytes_columns.push(i);
                    Field::new(f.name(), DataType::Utf8, true)
                } else {
                    let text = binary_as_text(f.data_type());
                    if &text != f.data_type() {
                        nested_bytes_columns.push(i);
                    }
                    f.as_ref().clone().with_data_type(text)
                }
            })
            .collect();
        let decode_schema =
            if unwrapped { Arc::new(Schema::new(vec![decode_fields[0].clone().with_name(UNWRAPPED_FIELD)])) } else { Arc::new(Schema::new(decode_fields)) };
        let shape = if unwrapped { Shape::of(decode_schema.field(0).data_type()) } else { Shape::Struct(Arc::new(StructShape::of(decode_schema.fields()))) };
        JsonDecoder { fields, decode_schema, shape, unwrapped, bytes_columns, nested_bytes_columns, buf: Vec::new() }
    }

    fn decode_buffer(&self, buf: &[u8], rows: usize) -> Result<RecordBatch, ArrowError> {
        let mut decoder = ReaderBuilder::new(self.decode_schema.clone()).with_batch_size(rows.max(1)).with_coerce_primitive(true).build_decoder()?;
        let consumed = decoder.decode(buf)?;
        if consumed != buf.len() {
            return Err(ArrowError::JsonError("trailing data".into()));
        }
        let batch = decoder.flush()?.unwrap_or_else(|| RecordBatch::new_empty(self.decode_schema.clone()));
        if batch.num_rows() != rows {
            return Err(ArrowError::JsonError(format!("expected {rows} rows, decoded {}", batch.num_rows())));
        }
        Ok(batch)
    }

    /// Appends one record to `buf`, wrapped for unwrapped values.
    fn push_record(&self, value: &[u8], buf: &mut Vec<u8>) -> NResult {
        if self.unwrapped {
            buf.extend_from_slice(b"{\"v\":");
            normalize(value, &self.shape, buf)?;
            buf.push(b'}');
        } else {
            normalize(value, &self.shape, buf)?;
        }
        buf.push(b'\n');
        Ok(())
    }
}

impl RowDecoder for JsonDecoder {
    fn decode(&mut self, inputs: &[Option<&[u8]>]) -> DecodedRows {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut out = DecodedRows::default();
        let mut starts = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.iter().enumerate() {
            let start = buf.len();
            // A missing value (a tombstone) decodes as a row of nulls; callers that keep
            // tombstones know which rows they were.
            let pushed = match input {
                Some(value) => self.push_record(value, &mut buf),
                None => {
                    buf.extend_from_slice(if self.unwrapped { b"{\"v\":null}\n" } else { b"{}\n" });
                    Ok(())
                }
            };
            match pushed {
                Ok(()) => {
                    starts.push(start);
                    out.kept.push(i as u32);
                }
                Err(e) => {
                    buf.truncate(start);
                    out.errors.push((i as u32, e));
                }
            }
        }
        let batch = match self.decode_buffer(&buf, out.kept.len()) {
            Ok(b) => b,
            Err(_) => {
                // Find the records that fail, then decode the rest together.
                let mut good = Vec::with_capacity(buf.len());
                let mut kept = Vec::new();
                for (n, &idx) in out.kept.iter().enumerate() {
                    let end = starts.get(n + 1).copied().unwrap_or(buf.len());
                    let one = &buf[starts[n]..end];
                    match self.decode_buffer(one, 1) {
                        Ok(_) => {
                            good.extend_from_slice(one);
                            kept.push(idx);
                        }
                        Err(e) => out.errors.push((idx, json_error_message(&e))),
                    }
                }
                out.kept = kept;
                match self.decode_buffer(&good, out.kept.len()) {
                    Ok(b) => b,
                    Err(e) => {
                        for idx in out.kept.drain(..) {
                            out.errors.push((idx, json_error_message(&e)));
                        }
                        RecordBatch::new_empty(self.decode_schema.clone())
                    }
                }
            }
        };
        self.buf = buf;
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        if !self.bytes_columns.is_empty() {
            decode_base64_columns(&mut columns, &self.bytes_columns, &mut out);
        }
        for &c in &self.nested_bytes_columns {
            if let Some(col) = columns.get(c)
                && let Some(binary) = text_as_binary(col, self.fields[c].data_type())
            {
                columns[c] = binary;
            }
        }
        out.errors.sort_by_key(|e| e.0);
        debug_assert_eq!(columns.len(), self.fields.len());
        out.columns = columns;
        out
    }
}

fn json_error_message(e: &ArrowError) -> String {
    match e {
        ArrowError::JsonError(m) => format!("invalid JSON value: {m}"),
        other => format!("invalid JSON value: {other}"),
    }
}

/// `dt` with every BYTES inside it read as text (base64), for the JSON reader.
fn binary_as_text(dt: &DataType) -> DataType {
    match dt {
        DataType::Binary => DataType::Utf8,
        DataType::List(f) => DataType::List(Arc::new(f.as_ref().clone().with_data_type(binary_as_text(f.data_type())))),
        DataType::Struct(fs) => DataType::Struct(fs.iter().map(|f| f.as_ref().clone().with_data_type(binary_as_text(f.data_type()))).collect()),
        DataType::Map(f, sorted) => DataType::Map(Arc::new(f.as_ref().clone().with_data_type(binary_as_text(f.data_type()))), *sorted),
        other => other.clone(),
    }
}

/// An array read with [`binary_as_text`] turned back into `target`: base64 text becomes
/// bytes (text that is not base64 becomes null). None when the shapes do not match.
fn text_as_binary(a: &ArrayRef, target: &DataType) -> Option<ArrayRef> {
    use arrow::array::{Array, ListArray, MapArray, StructArray};
    match target {
        DataType::Binary => {
            let engine = base64::engine::general_purpose::STANDARD;
            let text = a.as_string_opt::<i32>()?;
            let bin: arrow::array::BinaryArray = text.iter().map(|v| v.and_then(|s| engine.decode(s).ok())).collect();
            Some(Arc::new(bin))
        }
        DataType::List(f) => {
            let l = a.as_any().downcast_ref::<ListArray>()?;
            let values = text_as_binary(l.values(), f.data_type())?;
            Some(Arc::new(ListArray::try_new(f.clone(), l.offsets().clone(), values, l.nulls().cloned()).ok()?))
        }
        DataType::Struct(fs) => {
            let s = a.as_any().downcast_ref::<StructArray>()?;
            let cols = fs.iter().zip(s.columns()).map(|(f, c)| text_as_binary(c, f.data_type())).collect::<Option<Vec<_>>>()?;
            Some(Arc::new(StructArray::try_new(fs.clone(), cols, s.nulls().cloned()).ok()?))
        }
        DataType::Map(f, sorted) => {
            let m = a.as_any().downcast_ref::<MapArray>()?;
            let entries: ArrayRef = Arc::new(m.entries().clone());
            let entries = text_as_binary(&entries, f.data_type())?;
            let entries = entries.as_any().downcast_ref::<StructArray>()?.clone();
            Some(Arc::new(MapArray::try_new(f.clone(), m.offsets().clone(), entries, m.nulls().cloned(), *sorted).ok()?))
        }
        _ => Some(a.clone()),
    }
}

/// Replaces base64 text columns by binary columns; rows that are not base64 become errors.
fn decode_base64_columns(columns: &mut [ArrayRef], which: &[usize], out: &mut DecodedRows) {
    let engine = base64::engine::general_purpose::STANDARD;
    let mut bad_rows = std::collections::BTreeSet::new();
    for &c in which {
        let text = columns[c].as_string::<i32>().clone();
        let bin: arrow::array::BinaryArray = text
            .iter()
            .enumerate()
            .map(|(row, v)| {
                v.and_then(|s| match engine.decode(s) {
                    Ok(b) => Some(b),
                    Err(_) => {
                        bad_rows.insert(row);
                        None
                    }
                })
            })
            .collect();
        columns[c] = Arc::new(bin);
    }
    let bad = bad_rows.into_iter().map(|r| (r, "BYTES value is not valid base64".to_string())).collect();
    super::drop_bad_rows(columns, out, bad);
}

// ---------------------------------------------------------------------------------------
// Encoder
// ---------------------------------------------------------------------------------------

/// ksqlDB's JSON for temporal and binary types.
#[derive(Debug)]
struct KsqlEncoders;

struct NumberEncoder<'a, F: Fn(usize) -> i64>(F, std::marker::PhantomData<&'a ()>);

impl<F: Fn(usize) -> i64> Encoder for NumberEncoder<'_, F> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        out.extend_from_slice(itoa_i64((self.0)(idx)).as_bytes());
    }
}

fn itoa_i64(v: i64) -> String {
    v.to_string()
}

struct Base64Encoder<'a>(&'a arrow::array::BinaryArray);

impl Encoder for Base64Encoder<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        out.push(b'"');
        out.extend_from_slice(base64::engine::general_purpose::STANDARD.encode(self.0.value(idx)).as_bytes());
        out.push(b'"');
    }
}

/// Doubles as Jackson writes them: NaN and the infinities as the strings `"NaN"`,
/// `"Infinity"` and `"-Infinity"`, every other value as a number.
struct NonFiniteAsString<'a> {
    values: &'a arrow::array::Float64Array,
    plain: NullableEncoder<'a>,
}

impl Encoder for NonFiniteAsString<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        let v = self.values.value(idx);
        match v {
            v if v.is_nan() => out.extend_from_slice(b"\"NaN\""),
            v if v == f64::INFINITY => out.extend_from_slice(b"\"Infinity\""),
            v if v == f64::NEG_INFINITY => out.extend_from_slice(b"\"-Infinity\""),
            _ => self.plain.encode(idx, out),
        }
    }
}

impl EncoderFactory for KsqlEncoders {
    fn make_default_encoder<'a>(
        &self,
        field: &'a FieldRef,
        array: &'a dyn Array,
        _options: &'a EncoderOptions,
    ) -> Result<Option<NullableEncoder<'a>>, ArrowError> {
        let nulls = array.nulls().cloned();
        let enc: Box<dyn Encoder + 'a> = match array.data_type() {
            // With a time zone (PROTOBUF's JSON mapping) a timestamp is RFC 3339 text.
            DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None) => {
                let a = array.as_primitive::<TimestampMillisecondType>();
                Box::new(NumberEncoder(move |i| a.value(i), std::marker::PhantomData))
            }
            DataType::Date32 => {
                let a = array.as_primitive::<Date32Type>();
                Box::new(NumberEncoder(move |i| i64::from(a.value(i)), std::marker::PhantomData))
            }
            DataType::Time32(arrow::datatypes::TimeUnit::Millisecond) => {
                let a = array.as_primitive::<Time32MillisecondType>();
                Box::new(NumberEncoder(move |i| i64::from(a.value(i)), std::marker::PhantomData))
            }
            DataType::Binary => Box::new(Base64Encoder(array.as_binary::<i32>())),
            DataType::Float64 if array.as_primitive::<Float64Type>().iter().flatten().any(|v| !v.is_finite()) => {
                static PLAIN: std::sync::LazyLock<EncoderOptions> = std::sync::LazyLock::new(|| EncoderOptions::default().with_explicit_nulls(true));
                let plain = make_encoder(field, array, &PLAIN)?;
                Box::new(NonFiniteAsString { values: array.as_primitive::<Float64Type>(), plain })
            }
            _ => return Ok(None),
        };
        Ok(Some(NullableEncoder::new(enc, nulls)))
    }
}

pub struct JsonEncoder {
    fields: Fields,
    unwrapped: bool,
    options: EncoderOptions,
}

impl JsonEncoder {
    pub fn new(fields: Fields, unwrapped: bool) -> JsonEncoder {
        let options = EncoderOptions::default().with_explicit_nulls(true).with_encoder_factory(Arc::new(KsqlEncoders));
        JsonEncoder { fields, unwrapped, options }
    }
}

impl RowEncoder for JsonEncoder {
    fn encode(&self, columns: &[ArrayRef], rows: usize) -> Result<EncodedRows, FormatError> {
        let mut out = EncodedRows::with_capacity(rows);
        let (field, array): (FieldRef, ArrayRef) = if self.unwrapped {
            (self.fields[0].clone(), columns[0].clone())
        } else {
            // A source with key columns only has values without fields: `{}`.
            let st = if self.fields.is_empty() {
                StructArray::new_empty_fields(rows, None)
            } else {
                StructArray::try_new(self.fields.clone(), columns.to_vec(), None).map_err(|e| FormatError::Encode(std::sync::Arc::new(e)))?
            };
            (Arc::new(Field::new("", st.data_type().clone(), false)), Arc::new(st))
        };
        let mut enc = make_encoder(&field, array.as_ref(), &self.options).map_err(|e| FormatError::Encode(std::sync::Arc::new(e)))?;
        for i in 0..rows {
            if array.is_null(i) {
                if self.unwrapped {
                    out.push_null();
                } else {
                    out.buf().extend_from_slice(b"null");
                    out.end_row();
                }
                continue;
            }
            enc.encode(i, out.buf());
            out.end_row();
        }
        Ok(out)
    }
}

/// Encodes each row as a JSON array of its column values (push-query rows).
pub fn encode_json_arrays(columns: &[ArrayRef], rows: usize) -> Result<Vec<String>, FormatError> {
    let options = EncoderOptions::default().with_explicit_nulls(true).with_encoder_factory(Arc::new(KsqlEncoders));
    let fields: Vec<FieldRef> = columns.iter().map(|c| Arc::new(Field::new("", c.data_type().clone(), true))).collect();
    let mut encoders = Vec::with_capacity(columns.len());
    for (f, c) in fields.iter().zip(columns) {
        encoders.push(make_encoder(f, c.as_ref(), &options).map_err(|e| FormatError::Encode(std::sync::Arc::new(e)))?);
    }
    let mut out = Vec::with_capacity(rows);
    let mut buf = Vec::with_capacity(64);
    for row in 0..rows {
        buf.clear();
        buf.push(b'[');
        for (i, (enc, col)) in encoders.iter_mut().zip(columns).enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            if col.is_null(row) {
                buf.extend_from_slice(b"null");
            } else {
                enc.encode(row, &mut buf);
            }
        }
        buf.push(b']');
        out.push(String::from_utf8_lossy(&buf).into_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};

    fn fields() -> Fields {
        vec![
            Field::new("ID", DataType::Int64, true),
            Field::new("NAME", DataType::Utf8, true),
            Field::new(
                "THING",
                DataType::Map(
                    Arc::new(Field::new(
                        "entries",
                        DataType::Struct(vec![Field::new("key", DataType::Utf8, false), Field::new("value", DataType::Utf8, true)].into()),
                        false,
                    )),
                    false,
                ),
                true,
            ),
            Field::new("S", DataType::Struct(vec![Field::new("Inner", DataType::Int64, true)].into()), true),
        ]
        .into()
    }

    #[test]
    fn keys_match_case_insensitively_and_map_keys_are_kept() {
        let mut d = JsonDecoder::new(fields(), false);
        let r = d.decode(&[Some(br#"{"id": 1, "Name": "a", "thing": {"status": false, "x": 1}, "s": {"inner": 5}}"#)]);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.columns[0].as_primitive::<arrow::datatypes::Int64Type>().value(0), 1);
        assert_eq!(r.columns[1].as_string::<i32>().value(0), "a");
        let map = r.columns[2].as_map();
        let keys = map.keys().as_string::<i32>();
        assert_eq!(keys.value(0), "status");
        assert_eq!(map.values().as_string::<i32>().value(0), "false");
        let s = r.columns[3].as_struct();
        assert_eq!(s.column(0).as_primitive::<arrow::datatypes::Int64Type>().value(0), 5);
    }

    #[test]
    fn bytes_inside_arrays_and_structs_are_read_from_base64() {
        let kv = DataType::Struct(vec![Field::new("KEY", DataType::Utf8, true), Field::new("VALUE", DataType::Binary, true)].into());
        let f: Fields = vec![Field::new("HS", DataType::List(Arc::new(Field::new("item", kv, true))), true)].into();
        let mut d = JsonDecoder::new(f, false);
        let r = d.decode(&[Some(br#"{"HS": [{"KEY": "k", "VALUE": "aGk="}, {"KEY": "n", "VALUE": null}]}"#)]);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let list = r.columns[0].as_list::<i32>();
        let items = list.value(0);
        let values = items.as_struct().column(1).as_binary::<i32>().clone();
        assert_eq!(values.value(0), b"hi");
        assert!(values.is_null(1));
    }

    #[test]
    fn bad_records_are_reported_and_the_rest_decode() {
        let mut d = JsonDecoder::new(fields(), false);
        let r = d.decode(&[Some(br#"{"ID": 1}"#), Some(b"{not json"), Some(br#"{"ID": "abc"}"#), Some(br#"{"ID": 4, "NAME": "d"}"#)]);
        assert_eq!(r.kept, vec![0, 3]);
        assert_eq!(r.errors.iter().map(|e| e.0).collect::<Vec<_>>(), vec![1, 2]);
        let ids = r.columns[0].as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!((ids.value(0), ids.value(1)), (1, 4));
    }

    #[test]
    fn missing_value_decodes_as_a_null_row() {
        let f: Fields = vec![Field::new("NAME", DataType::Utf8, true), Field::new("AGE", DataType::Int64, true)].into();
        let mut d = JsonDecoder::new(f, false);
        let r = d.decode(&[Some(br#"{"name":"a","age":1}"#), None]);
        assert_eq!(r.kept, vec![0, 1]);
        assert!(r.errors.is_empty());
        assert!(r.columns[0].is_null(1) && r.columns[1].is_null(1));
    }

    #[test]
    fn unwrapped_single_value_round_trips() {
        let f: Fields = vec![Field::new("K", DataType::Utf8, true)].into();
        let mut d = JsonDecoder::new(f.clone(), true);
        let r = d.decode(&[Some(br#""u1""#), None]);
        assert_eq!(r.kept, vec![0, 1]);
        let e = JsonEncoder::new(f, true);
        let rows = e.encode(&r.columns, 2).unwrap();
        assert_eq!(rows.get(0), Some(&br#""u1""#[..]));
        assert_eq!(rows.get(1), None);
    }

    #[test]
    fn encoder_writes_ksqldb_json() {
        let f: Fields = vec![
            Field::new("ID", DataType::Int64, true),
            Field::new("NAME", DataType::Utf8, true),
            Field::new("TS", DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None), true),
        ]
        .into();
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![Some(1), None])),
            Arc::new(StringArray::from(vec![Some("a\"b"), None])),
            Arc::new(arrow::array::TimestampMillisecondArray::from(vec![Some(1500), None])),
        ];
        let rows = JsonEncoder::new(f, false).encode(&cols, 2).unwrap();
        assert_eq!(std::str::from_utf8(rows.get(0).unwrap()).unwrap(), r#"{"ID":1,"NAME":"a\"b","TS":1500}"#);
        assert_eq!(std::str::from_utf8(rows.get(1).unwrap()).unwrap(), r#"{"ID":null,"NAME":null,"TS":null}"#);
    }

    #[test]
    fn non_finite_doubles_are_written_as_jackson_strings() {
        let f: Fields = vec![Field::new("X", DataType::Float64, true)].into();
        let cols: Vec<ArrayRef> = vec![Arc::new(arrow::array::Float64Array::from(vec![Some(f64::NAN), Some(1.5), Some(f64::NEG_INFINITY), None]))];
        let rows = JsonEncoder::new(f, false).encode(&cols, 4).unwrap();
        let text: Vec<&str> = (0..4).map(|i| std::str::from_utf8(rows.get(i).unwrap()).unwrap()).collect();
        assert_eq!(text, vec![r#"{"X":"NaN"}"#, r#"{"X":1.5}"#, r#"{"X":"-Infinity"}"#, r#"{"X":null}"#]);
    }
}
