//! Any bytes as the records of a produce request or a stored segment: splitting, header
//! parsing, CRC checks, decompression and record decoding must return errors, never panic
//! or run out of memory.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The same allocator as the server, so the fuzzer sees the server's memory behaviour.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[allow(dead_code)]
#[path = "../../src/log"]
mod log {
    pub mod batch;
    pub mod compression;
    pub mod varint;
}

use log::batch::{RecordIter, payload, split_batches, split_batches_exact, verify_crc};

fuzz_target!(|data: &[u8]| {
    let _ = split_batches_exact(data);
    for b in split_batches(data) {
        let _ = verify_crc(b);
        if let Ok((header, records)) = payload(b) {
            for r in RecordIter::over(header, &records) {
                if r.is_err() {
                    break;
                }
            }
        }
    }
});
