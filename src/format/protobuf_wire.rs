//! The fast path for reading flat PROTOBUF messages: when every column is a scalar or enum
//! field of a proto3 message, the wire format is walked with `prost`'s primitives and each
//! field's last value kept (borrowed from the record) until the row is appended; no message
//! object is built. Other messages (nested, repeated, maps, well-known types, proto2) are
//! read through `prost-reflect` by `protobuf_arrow`.

use prost_reflect::prost::encoding::{WireType, decode_key, decode_varint, skip_field};
use prost_reflect::{Kind, MessageDescriptor, Syntax};

/// A field's value as the wire holds it.
#[derive(Debug, Clone, Copy)]
pub enum Raw<'a> {
    Varint(u64),
    Fixed32(u32),
    Fixed64(u64),
    Bytes(&'a [u8]),
}

/// A column read from a field: its kind, and whether an absent field reads as null.
#[derive(Clone)]
pub struct FlatField {
    pub kind: Kind,
    pub presence: bool,
}

/// Which column each field number fills.
pub struct FlatPlan {
    /// Per column: the field it reads (None: the message has no such field).
    pub fields: Vec<Option<FlatField>>,
    /// Column index by field number (small numbers), usize::MAX when not read.
    by_number: Vec<usize>,
    /// Larger field numbers: (number, column).
    far: Vec<(u32, usize)>,
}

/// Field numbers below this are looked up by index.
const NEAR: u32 = 256;

impl FlatPlan {
    /// The plan when `message` is proto3 and `columns` (field number and kind per column)
    /// are all scalars or enums; None otherwise.
    pub fn new(message: &MessageDescriptor, columns: &[Option<prost_reflect::FieldDescriptor>]) -> Option<FlatPlan> {
        if message.parent_file().syntax() != Syntax::Proto3 {
            return None;
        }
        let mut plan = FlatPlan { fields: Vec::with_capacity(columns.len()), by_number: Vec::new(), far: Vec::new() };
        for (i, column) in columns.iter().enumerate() {
            let Some(field) = column else {
                plan.fields.push(None);
                continue;
            };
            if field.is_list() || field.is_map() || matches!(field.kind(), Kind::Message(_)) {
                return None;
            }
            if field.number() < NEAR {
                let at = field.number() as usize;
                if plan.by_number.len() <= at {
                    plan.by_number.resize(at + 1, usize::MAX);
                }
                plan.by_number[at] = i;
            } else {
                plan.far.push((field.number(), i));
            }
            plan.fields.push(Some(FlatField { kind: field.kind(), presence: field.supports_presence() }));
        }
        Some(plan)
    }

    fn column_of(&self, number: u32) -> Option<usize> {
        if number < NEAR {
            self.by_number.get(number as usize).copied().filter(|c| *c != usize::MAX)
        } else {
            self.far.iter().find(|(n, _)| *n == number).map(|(_, c)| *c)
        }
    }

    /// Reads a message's fields into `staged` (one slot per column, last value wins);
    /// fields no column reads are skipped.
    pub fn read<'a>(&self, mut body: &'a [u8], staged: &mut Vec<Option<Raw<'a>>>) -> Result<(), String> {
        staged.clear();
        staged.resize(self.fields.len(), None);
        let bad = |e: prost_reflect::prost::DecodeError| format!("the PROTOBUF message does not decode: {e}");
        while !body.is_empty() {
            let (number, wire) = decode_key(&mut body).map_err(bad)?;
            let Some(column) = self.column_of(number) else {
                skip_field(wire, number, &mut body, prost_reflect::prost::encoding::DecodeContext::default()).map_err(bad)?;
                continue;
            };
            let raw = match wire {
                WireType::Varint => Raw::Varint(decode_varint(&mut body).map_err(bad)?),
                WireType::ThirtyTwoBit => {
                    let (b, rest) = body.split_first_chunk::<4>().ok_or("the PROTOBUF message is cut short")?;
                    body = rest;
                    Raw::Fixed32(u32::from_le_bytes(*b))
                }
                WireType::SixtyFourBit => {
                    let (b, rest) = body.split_first_chunk::<8>().ok_or("the PROTOBUF message is cut short")?;
                    body = rest;
                    Raw::Fixed64(u64::from_le_bytes(*b))
                }
                WireType::LengthDelimited => {
                    let len = usize::try_from(decode_varint(&mut body).map_err(bad)?).map_err(|_| "a field's length is too large".to_string())?;
                    if len > body.len() {
                        return Err("the PROTOBUF message is cut short".into());
                    }
                    let (value, rest) = body.split_at(len);
                    body = rest;
                    Raw::Bytes(value)
                }
                other => return Err(format!("field {number} has wire type {other:?}, which no scalar field has")),
            };
            if let Some(f) = &self.fields[column] {
                check_wire(&f.kind, &raw, number)?;
            }
            staged[column] = Some(raw);
        }
        Ok(())
    }
}

/// Refuses a value whose wire type does not fit the field's kind.
fn check_wire(kind: &Kind, raw: &Raw, number: u32) -> Result<(), String> {
    let fits = match raw {
        Raw::Varint(_) => matches!(kind, Kind::Int32 | Kind::Int64 | Kind::Uint32 | Kind::Uint64 | Kind::Sint32 | Kind::Sint64 | Kind::Bool | Kind::Enum(_)),
        Raw::Fixed32(_) => matches!(kind, Kind::Fixed32 | Kind::Sfixed32 | Kind::Float),
        Raw::Fixed64(_) => matches!(kind, Kind::Fixed64 | Kind::Sfixed64 | Kind::Double),
        Raw::Bytes(b) => match kind {
            Kind::String => std::str::from_utf8(b).is_ok(),
            Kind::Bytes => true,
            _ => false,
        },
    };
    if fits { Ok(()) } else { Err(format!("field {number} does not hold a {kind:?} value on the wire").to_lowercase()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::protobuf_schema::{compile, message_at};

    fn plan() -> (FlatPlan, MessageDescriptor) {
        let pool = compile("syntax = \"proto3\"; message M { int64 id = 1; string name = 2; double d = 300; optional bool b = 4; }").expect("compiles");
        let m = message_at(&pool, &[0]).expect("message");
        let columns: Vec<Option<prost_reflect::FieldDescriptor>> = ["id", "name", "d", "b", "absent"].iter().map(|n| m.get_field_by_name(n)).collect();
        (FlatPlan::new(&m, &columns).expect("flat"), m)
    }

    #[test]
    fn fields_are_staged_by_number_the_last_value_winning_and_unknown_ones_skipped() {
        let (plan, _) = plan();
        // id=1, id=7 (the last wins), unknown field 9 (a string), d=2.5 at number 300.
        let mut body = vec![0x08, 0x01, 0x08, 0x07, 0x4a, 0x02, b'h', b'i', 0xe1, 0x12];
        body.extend_from_slice(&2.5f64.to_le_bytes());
        let mut staged = Vec::new();
        plan.read(&body, &mut staged).expect("reads");
        assert!(matches!(staged[0], Some(Raw::Varint(7))));
        assert!(staged[1].is_none() && staged[3].is_none() && staged[4].is_none());
        assert!(matches!(staged[2], Some(Raw::Fixed64(v)) if f64::from_bits(v) == 2.5));
    }

    #[test]
    fn cut_short_or_mistyped_messages_are_refused() {
        let (plan, _) = plan();
        let mut staged = Vec::new();
        assert!(plan.read(&[0x12, 0x05, b'a'], &mut staged).is_err(), "a string longer than the message");
        assert!(plan.read(&[0x08], &mut staged).is_err(), "a key without its value");
        assert!(plan.read(&[0x0a, 0x01, b'a'], &mut staged).is_err(), "id (int64) sent as a string");
        assert!(plan.read(&[0x12, 0x02, 0xff, 0xfe], &mut staged).is_err(), "a string that is not UTF-8");
    }

    #[test]
    fn nested_repeated_and_proto2_messages_take_the_general_path() {
        let pool = compile("syntax = \"proto3\"; message I { int32 x = 1; } message M { I i = 1; repeated int32 r = 2; }").expect("compiles");
        let m = message_at(&pool, &[1]).expect("message");
        assert!(FlatPlan::new(&m, &[m.get_field(1)]).is_none());
        assert!(FlatPlan::new(&m, &[m.get_field(2)]).is_none());
        let p2 = compile("syntax = \"proto2\"; message M { optional int32 x = 1 [default = 5]; }").expect("compiles");
        let m2 = message_at(&p2, &[0]).expect("message");
        assert!(FlatPlan::new(&m2, &[m2.get_field(1)]).is_none(), "proto2 defaults are the general path's");
    }
}
