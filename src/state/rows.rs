//! The stored form of a materialized table row: its event time (ROWTIME), the wall-clock
//! time it was last updated, the partition of the task that wrote it (the server of a
//! service that runs that partition answers for the row), and the row as a JSON object
//! (ksqlDB's JSON for each type), so key lookups answer without converting anything.
//! Rows of the first layout (without the partition) still read.

use super::StateError;

/// The layout without the writer's partition.
const VERSION_1: u8 = 1;
const VERSION: u8 = 2;

/// A materialized row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRow<'a> {
    pub rowtime: i64,
    pub updated_ms: i64,
    /// The partition of the task that wrote the row (None: a row of the first layout).
    pub partition: Option<i32>,
    /// `{"COL": value, ...}` with every column of the table (key columns included).
    pub json: &'a [u8],
}

pub fn encode(rowtime: i64, updated_ms: i64, partition: i32, json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(21 + json.len());
    out.push(VERSION);
    out.extend_from_slice(&rowtime.to_be_bytes());
    out.extend_from_slice(&updated_ms.to_be_bytes());
    out.extend_from_slice(&partition.to_be_bytes());
    out.extend_from_slice(json);
    out
}

pub fn decode(bytes: &[u8]) -> Result<StoredRow<'_>, StateError> {
    let header = match bytes.first() {
        Some(&VERSION_1) => 17,
        Some(&VERSION) => 21,
        _ => 0,
    };
    if header == 0 || bytes.len() < header {
        return Err(StateError::Corrupt(format!("materialized row of {} bytes has an unknown layout", bytes.len())));
    }
    let rowtime = i64::from_be_bytes(bytes[1..9].try_into().expect("8 bytes"));
    let updated_ms = i64::from_be_bytes(bytes[9..17].try_into().expect("8 bytes"));
    let partition = (header == 21).then(|| i32::from_be_bytes(bytes[17..21].try_into().expect("4 bytes")));
    Ok(StoredRow { rowtime, updated_ms, partition, json: &bytes[header..] })
}

#[cfg(test)]
mod tests {
    #[test]
    fn rows_round_trip() {
        let b = super::encode(5, 7, 3, br#"{"A":1}"#);
        let r = super::decode(&b).unwrap();
        assert_eq!((r.rowtime, r.updated_ms, r.partition, r.json), (5, 7, Some(3), &br#"{"A":1}"#[..]));
        assert!(super::decode(b"x").is_err());
        assert!(super::decode(&b[..20]).is_err());
        // A row written before rows carried their partition.
        let mut old = vec![1u8];
        old.extend_from_slice(&5i64.to_be_bytes());
        old.extend_from_slice(&7i64.to_be_bytes());
        old.extend_from_slice(br#"{"A":1}"#);
        let r = super::decode(&old).unwrap();
        assert_eq!((r.rowtime, r.partition, r.json), (5, None, &br#"{"A":1}"#[..]));
    }
}
