//! Any bytes after a frame's size prefix: decoding must return a request or an error, never
//! panic, and a decoded request must encode again.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The same allocator as the server, so the fuzzer sees the server's memory behaviour.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[allow(dead_code)]
#[path = "../../src/kafka"]
mod kafka {
    pub mod frame;
    pub mod versions;
}

fuzz_target!(|data: &[u8]| {
    if let Ok(kafka::frame::Incoming::Request { version, body, .. }) = kafka::frame::decode_request(bytes::Bytes::copy_from_slice(data)) {
        let mut buf = bytes::BytesMut::new();
        let _ = body.encode(&mut buf, version);
    }
});
