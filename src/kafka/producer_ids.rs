//! InitProducerId: producer ids for idempotent Kafka producers.
//!
//! Ids are handed out from blocks of 1,000 whose end is written durably before the first id
//! of the block is used, so a restarted server never hands out an id twice (a crash wastes
//! at most the rest of a block). Ids stay far below the range persistent queries use for
//! their own sinks (bit 61 set).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::ProducerId;
use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use parking_lot::Mutex;

use super::Broker;
use super::errors::KafkaError;
use crate::log::{LogError, write_file_durably};

const BLOCK: i64 = 1000;
const FILE: &str = "producer-id-block";

pub struct ProducerIdAllocator {
    path: PathBuf,
    /// (next id, end of the block persisted so far)
    state: Mutex<(i64, i64)>,
}

impl ProducerIdAllocator {
    /// Opens (or starts) the allocator's file in `dir`. Blocking.
    pub fn open(dir: &Path) -> Result<ProducerIdAllocator, KafkaError> {
        std::fs::create_dir_all(dir).map_err(|e| LogError::io(format!("creating {}", dir.display()), e))?;
        let path = dir.join(FILE);
        let next = match std::fs::read_to_string(&path) {
            Ok(s) => s.trim().parse::<i64>().map_err(|e| LogError::Corrupt { what: path.display().to_string(), detail: e.to_string() })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(LogError::io(format!("reading {}", path.display()), e).into()),
        };
        Ok(ProducerIdAllocator { path, state: Mutex::new((next, next)) })
    }

    /// A producer id never handed out before. Blocking (writes a file once per block).
    pub fn allocate(&self) -> Result<i64, LogError> {
        let mut st = self.state.lock();
        if st.0 >= st.1 {
            let end = st.0 + BLOCK;
            write_file_durably(&self.path, end.to_string().as_bytes())?;
            st.1 = end;
        }
        let id = st.0;
        st.0 += 1;
        Ok(id)
    }
}

pub async fn init_producer_id(broker: &Arc<Broker>, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let resp = InitProducerIdResponse::default();
    if let Some(id) = req.transactional_id.as_ref().filter(|t| !t.0.is_empty()) {
        return match super::transactions::init_producer_id(broker, id.0.to_string(), req.transaction_timeout_ms).await {
            Ok((pid, epoch)) => resp.with_producer_id(ProducerId(pid)).with_producer_epoch(epoch),
            Err(e) => resp.with_error_code(e.code()),
        };
    }
    // KIP-360: a producer that knows its id asks for the next epoch.
    if req.producer_id.0 >= 0 && req.producer_epoch >= 0 && req.producer_epoch < i16::MAX - 1 {
        return resp.with_producer_id(req.producer_id).with_producer_epoch(req.producer_epoch + 1);
    }
    let b = broker.clone();
    match tokio::task::spawn_blocking(move || b.producer_ids.allocate()).await {
        Ok(Ok(id)) => resp.with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Ok(Err(e)) => {
            tracing::error!("cannot allocate a producer id: {e}");
            resp.with_error_code(ResponseError::KafkaStorageError.code())
        }
        Err(e) => {
            tracing::error!("cannot allocate a producer id: {e}");
            resp.with_error_code(ResponseError::UnknownServerError.code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_never_reused_across_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = ProducerIdAllocator::open(dir.path()).expect("open");
        let first: Vec<i64> = (0..3).map(|_| a.allocate().expect("id")).collect();
        assert_eq!(first, vec![0, 1, 2]);
        drop(a);
        let b = ProducerIdAllocator::open(dir.path()).expect("reopen");
        let next = b.allocate().expect("id");
        assert!(next > 2, "id {next} may repeat one handed out before the restart");
    }
}
