//! Eddy's own topic and consumer-group endpoints (beside the ksqlDB API): inspect topics,
//! produce and read raw records, look up offsets by time, and see or reset group offsets.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use super::routes::parse_body;
use super::{ApiError, AppState};
use crate::log::batch::{self, BatchBuilder, BatchHeader, Compression, RecordIter};
use crate::log::groups::ResetTo;
use crate::log::murmur2::partition_for_key;
use crate::log::{Log, LogError};

fn ok(v: Value) -> Response {
    (StatusCode::OK, [(axum::http::header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

fn log_error(e: LogError) -> ApiError {
    match e {
        LogError::UnknownTopic(t) => ApiError::not_found(format!("topic '{t}' does not exist; GET /topics lists the topics")),
        LogError::UnknownPartition { topic, partition } => ApiError::not_found(format!("topic '{topic}' has no partition {partition}")),
        e @ LogError::OffsetOutOfRange { .. } => ApiError::generic(StatusCode::RANGE_NOT_SATISFIABLE, 41600, e.to_string()),
        e if e.is_storage() => ApiError::internal(e.to_string()),
        other => ApiError::bad_request(other.to_string()),
    }
}

/// Runs blocking log work off the async threads.
async fn blocking<T: Send + 'static>(state: &AppState, f: impl FnOnce(&Log) -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    let log = state.engine.log().clone();
    tokio::task::spawn_blocking(move || f(&log)).await.map_err(|e| ApiError::internal(e.to_string()))?
}

fn topic_json(log: &Log, name: &str) -> Result<Value, ApiError> {
    let t = log.topic(name).map_err(log_error)?;
    let partitions: Vec<Value> = t
        .partitions()
        .iter()
        .map(|p| {
            // Sizes are known of the data directory's partitions only.
            let local = t.local_partition(p.id()).ok();
            json!({
                "partition": p.id(),
                "logStartOffset": p.start_offset(),
                "logEndOffset": p.end_offset(),
                "sizeBytes": local.map(|l| l.size_bytes()),
                "segments": local.map(|l| l.segment_count()),
            })
        })
        .collect();
    let config: serde_json::Map<String, Value> = t.config().entries().into_iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    let groups: Vec<Value> = log
        .offsets()
        .groups()
        .into_iter()
        .filter_map(|g| {
            let lag: Vec<_> = log.group_lag(&g).into_iter().filter(|l| l.topic == t.name()).collect();
            (!lag.is_empty()).then(|| json!({"group": g, "lag": lag.iter().map(|l| l.lag).sum::<i64>()}))
        })
        .collect();
    Ok(json!({"name": t.name(), "partitions": partitions, "config": config, "consumerGroups": groups}))
}

pub async fn list_topics(State(state): State<AppState>) -> Result<Response, ApiError> {
    blocking(&state, |log| {
        let list: Vec<Value> = log.topics().iter().map(|t| topic_json(log, t.name())).collect::<Result<_, _>>()?;
        Ok(ok(json!({"topics": list})))
    })
    .await
}

pub async fn get_topic(State(state): State<AppState>, Path(name): Path<String>) -> Result<Response, ApiError> {
    blocking(&state, move |log| Ok(ok(topic_json(log, &name)?))).await
}

/// Bytes for a JSON key or value: strings as UTF-8, null as null, anything else as JSON text.
fn json_bytes(v: Option<&Value>) -> Option<Vec<u8>> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone().into_bytes()),
        Some(other) => Some(other.to_string().into_bytes()),
    }
}

fn field_bytes(rec: &serde_json::Map<String, Value>, name: &str) -> Result<Option<Vec<u8>>, ApiError> {
    let b64 = format!("{name}Base64");
    if let Some(v) = rec.get(&b64) {
        let s = v.as_str().ok_or_else(|| ApiError::bad_request(format!("'{b64}' must be a base64 string")))?;
        return base64::engine::general_purpose::STANDARD.decode(s).map(Some).map_err(|e| ApiError::bad_request(format!("'{b64}' is not valid base64: {e}")));
    }
    Ok(json_bytes(rec.get(name)))
}

/// POST /topics/{name}/records: `{"records": [{"key", "value", "headers", "partition",
/// "timestamp"}], "compression": "lz4"}`. Strings are stored as UTF-8, other JSON as JSON
/// text, `keyBase64`/`valueBase64` as raw bytes, a null value as a tombstone.
pub async fn produce(State(state): State<AppState>, Path(name): Path<String>, body: Bytes) -> Result<Response, ApiError> {
    if state.engine.log().is_internal_topic(&name) {
        return Err(ApiError::forbidden(format!(
            "topic '{name}' is internal to Eddy (names starting with '{}' are reserved): it can be read but not written",
            state.engine.log().internal_prefix()
        )));
    }
    let body = parse_body(&body)?;
    let records = body
        .get("records")
        .and_then(|r| r.as_array())
        .cloned()
        .ok_or_else(|| ApiError::bad_request("the body needs \"records\": [{\"key\": ..., \"value\": ...}, ...]"))?;
    let codec = match body.get("compression").and_then(|c| c.as_str()) {
        None => None,
        Some(c) => Some(Compression::parse(c).ok_or_else(|| ApiError::bad_request(format!("unknown compression '{c}'; use none, gzip, snappy, lz4 or zstd")))?),
    };
    blocking(&state, move |log| {
        let topic = log.topic(&name).map_err(log_error)?;
        let n = topic.partition_count();
        let now = chrono::Utc::now().timestamp_millis();
        // Group records per partition, keeping their order.
        let mut per_partition: std::collections::BTreeMap<i32, Vec<(usize, BatchRecord)>> = Default::default();
        for (i, r) in records.iter().enumerate() {
            let rec = r.as_object().ok_or_else(|| ApiError::bad_request(format!("record {i} is not an object")))?;
            let key = field_bytes(rec, "key")?;
            let value = field_bytes(rec, "value")?;
            let mut headers = Vec::new();
            match rec.get("headers") {
                None | Some(Value::Null) => {}
                Some(Value::Object(m)) => {
                    for (k, v) in m {
                        headers.push((k.clone().into_bytes(), json_bytes(Some(v))));
                    }
                }
                Some(Value::Array(a)) => {
                    for h in a {
                        let k = h
                            .get("key")
                            .and_then(|k| k.as_str())
                            .ok_or_else(|| ApiError::bad_request(format!("record {i}: every header needs a string \"key\"")))?;
                        headers.push((k.as_bytes().to_vec(), json_bytes(h.get("value"))));
                    }
                }
                Some(_) => {
                    return Err(ApiError::bad_request(format!("record {i}: \"headers\" must be an object or a list of {{key, value}}")));
                }
            }
            let partition = match rec.get("partition") {
                Some(p) => {
                    let p = p.as_i64().ok_or_else(|| ApiError::bad_request(format!("record {i}: \"partition\" must be a number")))?;
                    let p = i32::try_from(p).unwrap_or(-1);
                    if p < 0 || p >= n {
                        return Err(ApiError::bad_request(format!("record {i}: topic '{name}' has partitions 0..{}", n - 1)));
                    }
                    p
                }
                None => match &key {
                    Some(k) => partition_for_key(k, n),
                    None => (i as i32) % n,
                },
            };
            let timestamp = rec.get("timestamp").and_then(|t| t.as_i64()).unwrap_or(now);
            per_partition.entry(partition).or_default().push((i, BatchRecord { key, value, headers, timestamp }));
        }
        let codec = codec.unwrap_or_else(|| topic.config().codec());
        let mut results = vec![Value::Null; records.len()];
        for (p, recs) in per_partition {
            let mut b = BatchBuilder::default();
            for (_, r) in &recs {
                let hs: Vec<(&[u8], Option<&[u8]>)> = r.headers.iter().map(|(k, v)| (k.as_slice(), v.as_deref())).collect();
                b.push(r.timestamp, r.key.as_deref(), r.value.as_deref(), &hs);
            }
            let batch = b.finish_compressed(codec).map_err(|e| ApiError::bad_request(e.to_string()))?;
            let out = topic.partition(p).map_err(log_error)?.append(batch).map_err(log_error)?;
            for (j, (i, _)) in recs.iter().enumerate() {
                results[*i] = json!({"partition": p, "offset": out.base_offset + j as i64});
            }
        }
        Ok(ok(json!({"offsets": results})))
    })
    .await
}

struct BatchRecord {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    timestamp: i64,
}

#[derive(Deserialize)]
pub struct ReadParams {
    offset: Option<i64>,
    limit: Option<usize>,
    /// `read_committed`: what a Kafka consumer with that isolation level reads (no
    /// records of open or aborted transactions); anything else reads every record.
    isolation: Option<String>,
}

fn show_bytes(out: &mut serde_json::Map<String, Value>, name: &str, b: Option<&[u8]>) {
    match b.map(std::str::from_utf8) {
        None => {
            out.insert(name.into(), Value::Null);
        }
        Some(Ok(s)) => {
            out.insert(name.into(), json!(s));
        }
        Some(Err(_)) => {
            out.insert(format!("{name}Base64"), json!(base64::engine::general_purpose::STANDARD.encode(b.unwrap_or_default())));
        }
    }
}

/// GET /topics/{name}/partitions/{p}/records?offset=N&limit=M
pub async fn read_records(
    State(state): State<AppState>,
    Path((name, partition)): Path<(String, i32)>,
    Query(q): Query<ReadParams>,
) -> Result<Response, ApiError> {
    blocking(&state, move |log| {
        let topic = log.topic(&name).map_err(log_error)?;
        let p = topic.partition(partition).map_err(log_error)?;
        let mut at = q.offset.unwrap_or_else(|| p.start_offset());
        let limit = q.limit.unwrap_or(100).min(10_000);
        let committed = q.isolation.as_deref() == Some("read_committed");
        let mut out = Vec::new();
        while out.len() < limit {
            let data = if committed { p.read_committed(at, 1 << 20) } else { p.read(at, 1 << 20) }.map_err(log_error)?;
            if data.is_empty() {
                break;
            }
            for b in batch::split_batches(&data) {
                let h = BatchHeader::parse(b).map_err(|e| ApiError::internal(e.to_string()))?;
                if !h.is_control() {
                    let (h, payload) = batch::payload(b).map_err(|e| ApiError::internal(e.to_string()))?;
                    for r in RecordIter::over(h, &payload) {
                        let r = r.map_err(|e| ApiError::internal(e.to_string()))?;
                        if r.offset < at || out.len() >= limit {
                            continue;
                        }
                        let mut m = serde_json::Map::new();
                        m.insert("offset".into(), json!(r.offset));
                        m.insert("timestamp".into(), json!(r.timestamp));
                        show_bytes(&mut m, "key", r.key);
                        show_bytes(&mut m, "value", r.value);
                        let hs: Vec<Value> = r
                            .headers
                            .iter()
                            .map(|h| {
                                let mut hm = serde_json::Map::new();
                                hm.insert("key".into(), json!(String::from_utf8_lossy(h.key)));
                                show_bytes(&mut hm, "value", h.value);
                                Value::Object(hm)
                            })
                            .collect();
                        m.insert("headers".into(), json!(hs));
                        out.push(Value::Object(m));
                    }
                }
                at = h.last_offset() + 1;
                if out.len() >= limit {
                    break;
                }
            }
        }
        let next = out.last().and_then(|r| r["offset"].as_i64()).map(|o| o + 1).unwrap_or(at);
        Ok(ok(json!({"records": out, "nextOffset": next, "logStartOffset": p.start_offset(), "logEndOffset": p.end_offset()})))
    })
    .await
}

#[derive(Deserialize)]
pub struct OffsetParams {
    timestamp: i64,
}

/// GET /topics/{name}/offsets?timestamp=T: per partition, the first offset with a
/// timestamp >= T (null when every record is older).
pub async fn offsets_for_time(State(state): State<AppState>, Path(name): Path<String>, Query(q): Query<OffsetParams>) -> Result<Response, ApiError> {
    blocking(&state, move |log| {
        let topic = log.topic(&name).map_err(log_error)?;
        let mut list = Vec::new();
        for p in topic.partitions() {
            list.push(json!({"partition": p.id(), "offset": p.offset_for_timestamp(q.timestamp).map_err(log_error)?}));
        }
        Ok(ok(json!({"timestamp": q.timestamp, "partitions": list})))
    })
    .await
}

pub async fn list_groups(State(state): State<AppState>) -> Result<Response, ApiError> {
    blocking(&state, |log| {
        let list: Vec<Value> = log
            .offsets()
            .groups()
            .into_iter()
            .map(|g| {
                let lag = log.group_lag(&g);
                let mut topics: Vec<&str> = lag.iter().map(|l| l.topic.as_str()).collect();
                topics.dedup();
                json!({"group": g, "topics": topics, "lag": lag.iter().map(|l| l.lag).sum::<i64>()})
            })
            .collect();
        Ok(ok(json!({"groups": list})))
    })
    .await
}

pub async fn get_group(State(state): State<AppState>, Path(group): Path<String>) -> Result<Response, ApiError> {
    blocking(&state, move |log| {
        let lag = log.group_lag(&group);
        if lag.is_empty() && !log.offsets().groups().contains(&group) {
            return Err(ApiError::not_found(format!("consumer group '{group}' has no committed offsets; GET /groups lists the groups")));
        }
        Ok(ok(json!({"group": group, "offsets": lag, "lag": lag.iter().map(|l| l.lag).sum::<i64>()})))
    })
    .await
}

/// POST /groups/{group}/reset: `{"topic": "t", "to": "earliest" | "latest" | "timestamp" |
/// "offset", "value": N, "partitions": [0, 1]}`.
pub async fn reset_group(State(state): State<AppState>, Path(group): Path<String>, body: Bytes) -> Result<Response, ApiError> {
    let body = parse_body(&body)?;
    if state.engine.runtime().is_running(&group) {
        return Err(ApiError::generic(
            StatusCode::CONFLICT,
            40900,
            format!("group '{group}' belongs to the running query {group}; TERMINATE it before moving its offsets"),
        ));
    }
    let topic = body.get("topic").and_then(|t| t.as_str()).ok_or_else(|| ApiError::bad_request("the body needs \"topic\""))?.to_string();
    let value = body.get("value").and_then(|v| v.as_i64());
    let to = match body.get("to").and_then(|t| t.as_str()).unwrap_or("") {
        "earliest" => ResetTo::Earliest,
        "latest" => ResetTo::Latest,
        "timestamp" => ResetTo::Timestamp(value.ok_or_else(|| ApiError::bad_request("\"to\": \"timestamp\" needs \"value\": <epoch ms>"))?),
        "offset" => ResetTo::Offset(value.ok_or_else(|| ApiError::bad_request("\"to\": \"offset\" needs \"value\": <offset>"))?),
        other => {
            return Err(ApiError::bad_request(format!("\"to\" must be earliest, latest, timestamp or offset, got '{other}'")));
        }
    };
    let partitions: Option<Vec<i32>> = match body.get("partitions") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(
            a.iter().map(|p| p.as_i64().map(|x| x as i32).ok_or_else(|| ApiError::bad_request("\"partitions\" must be numbers"))).collect::<Result<_, _>>()?,
        ),
        Some(_) => {
            return Err(ApiError::bad_request("\"partitions\" must be a list of numbers"));
        }
    };
    blocking(&state, move |log| {
        let new = log.reset_group(&group, &topic, partitions.as_deref(), to).map_err(log_error)?;
        let list: Vec<Value> = new.iter().map(|(p, o)| json!({"partition": p, "offset": o})).collect();
        Ok(ok(json!({"group": group, "topic": topic, "offsets": list})))
    })
    .await
}
