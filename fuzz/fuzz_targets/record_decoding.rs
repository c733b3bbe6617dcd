//! Any bytes as record values in JSON and DELIMITED: decoding must turn each record into a
//! row or a per-record error, never panic or exhaust the stack (a JSON value nested
//! arbitrarily deep is a bad record, not a crash). The input is split on 0xFF into several
//! records decoded as one batch, as the query runtime does.
#![no_main]

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields};
use eddy::format::RowDecoder;
use eddy::format::delimited::DelimitedDecoder;
use eddy::format::json::JsonDecoder;
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn fields() -> Fields {
    let inner = Fields::from(vec![Field::new("A", DataType::Int64, true), Field::new("B", DataType::Utf8, true)]);
    let entry = Fields::from(vec![Field::new("key", DataType::Utf8, false), Field::new("value", DataType::Int32, true)]);
    let entries = Field::new("entries", DataType::Struct(entry), false);
    Fields::from(vec![
        Field::new("ID", DataType::Utf8, true),
        Field::new("N", DataType::Int32, true),
        Field::new("X", DataType::Float64, true),
        Field::new("S", DataType::Struct(inner), true),
        Field::new("L", DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), true),
        Field::new("M", DataType::Map(Arc::new(entries), false), true),
        Field::new("D", DataType::Decimal128(10, 2), true),
        Field::new("T", DataType::Binary, true),
    ])
}

fuzz_target!(|data: &[u8]| {
    let records: Vec<Option<&[u8]>> = data.split(|b| *b == 0xFF).map(Some).collect();
    for unwrapped in [false, true] {
        let f = if unwrapped { Fields::from(vec![fields()[3].as_ref().clone()]) } else { fields() };
        let mut json = JsonDecoder::new(f, unwrapped);
        let out = json.decode(&records);
        assert_eq!(out.kept.len() + out.errors.len(), records.len(), "every record is a row or an error");
    }
    let flat = Fields::from(vec![Field::new("ID", DataType::Utf8, true), Field::new("N", DataType::Int32, true), Field::new("X", DataType::Float64, true)]);
    let mut delimited = DelimitedDecoder::new(flat, ',');
    let _ = delimited.decode(&records);
});
