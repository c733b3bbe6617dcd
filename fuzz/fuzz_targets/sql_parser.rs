//! Any text as SQL statements: the parser (and the expression depth limit) must return a
//! statement or an error with a position, never panic or exhaust the stack, however deeply
//! the input nests. Parsed expressions are also printed back (their Display recurses).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(statements) = eddy::sql::parser::parse(&text) {
        for s in statements {
            let _ = format!("{:?}", s.statement);
        }
    }
    let _ = eddy::sql::parser::parse_expression(&text).map(|e| e.to_string());
    let _ = eddy::sql::parser::created_source_name(&text);
});
