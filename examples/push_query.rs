//! Streams a push query from a running Eddy server over the ksqlDB REST API.
//!
//! ```sh
//! cargo run --example push_query -- http://127.0.0.1:8088 "SELECT * FROM pageviews EMIT CHANGES;"
//! ```

use futures::StreamExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let server = args.next().unwrap_or_else(|| "http://127.0.0.1:8088".into());
    let sql = args.next().unwrap_or_else(|| "SELECT * FROM pageviews EMIT CHANGES;".into());
    let resp = reqwest::Client::new()
        .post(format!("{server}/query-stream"))
        .json(&serde_json::json!({"sql": sql, "properties": {"auto.offset.reset": "earliest"}}))
        .send()
        .await?;
    if !resp.status().is_success() {
        eprintln!("error: {}", resp.text().await?);
        std::process::exit(1);
    }
    // Delimited framing: a metadata line, then one JSON array per row.
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        print!("{}", String::from_utf8_lossy(&chunk?));
    }
    Ok(())
}
