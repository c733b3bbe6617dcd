//! The stored form of a materialized table row: its event time (ROWTIME), the wall-clock
//! time it was last updated, and the row as a JSON object (ksqlDB's JSON for each type),
//! so key lookups answer without converting anything.

use super::StateError;

const VERSION: u8 = 1;

/// A materialized row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRow<'a> {
    pub rowtime: i64,
    pub updated_ms: i64,
    /// `{"COL": value, ...}` with every column of the table (key columns included).
    pub json: &'a [u8],
}

pub fn encode(rowtime: i64, updated_ms: i64, json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(17 + json.len());
    out.push(VERSION);
    out.extend_from_slice(&rowtime.to_be_bytes());
    out.extend_from_slice(&updated_ms.to_be_bytes());
    out.extend_from_slice(json);
    out
}

pub fn decode(bytes: &[u8]) -> Result<StoredRow<'_>, StateError> {
    if bytes.len() < 17 || bytes[0] != VERSION {
        return Err(StateError::Corrupt(format!("materialized row of {} bytes has an unknown layout", bytes.len())));
    }
    let rowtime = i64::from_be_bytes(bytes[1..9].try_into().expect("8 bytes"));
    let updated_ms = i64::from_be_bytes(bytes[9..17].try_into().expect("8 bytes"));
    Ok(StoredRow { rowtime, updated_ms, json: &bytes[17..] })
}

#[cfg(test)]
mod tests {
    #[test]
    fn rows_round_trip() {
        let b = super::encode(5, 7, br#"{"A":1}"#);
        let r = super::decode(&b).unwrap();
        assert_eq!((r.rowtime, r.updated_ms, r.json), (5, 7, &br#"{"A":1}"#[..]));
        assert!(super::decode(b"x").is_err());
    }
}
