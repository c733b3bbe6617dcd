//! The built-in schema registry as Confluent's clients reach it: its REST API on the
//! server's HTTP port, with Confluent's content type, bodies and error codes, kept across
//! a kill -9.

mod common;

use common::TestServer;
use serde_json::{Value, json};

const SR: &str = "application/vnd.schemaregistry.v1+json";

async fn call(s: &TestServer, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", s.url)).header("Accept", SR);
    if let Some(b) = body {
        req = req.header("Content-Type", SR).body(b.to_string());
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn get(s: &TestServer, path: &str) -> (u16, Value) {
    call(s, reqwest::Method::GET, path, None).await
}

async fn post(s: &TestServer, path: &str, body: Value) -> (u16, Value) {
    call(s, reqwest::Method::POST, path, Some(body)).await
}

async fn delete(s: &TestServer, path: &str) -> (u16, Value) {
    call(s, reqwest::Method::DELETE, path, None).await
}

const USER_V1: &str = r#"{"type":"record","name":"User","fields":[{"name":"id","type":"long"}]}"#;
const USER_V2: &str = r#"{"type":"record","name":"User","fields":[{"name":"id","type":"long"},{"name":"name","type":["null","string"],"default":null}]}"#;

#[tokio::test]
async fn schemas_register_under_subjects_with_global_ids_and_read_back() {
    let s = TestServer::start();
    assert_eq!(post(&s, "/subjects/users-value/versions", json!({"schema": USER_V1})).await, (200, json!({"id": 1})));
    // The same schema again (laid out otherwise) is the same version; a new one is the next.
    let relaid = r#"{ "type": "record", "name": "User", "fields": [ {"name": "id", "type": "long"} ] }"#;
    assert_eq!(post(&s, "/subjects/users-value/versions", json!({"schema": relaid})).await, (200, json!({"id": 1})));
    assert_eq!(post(&s, "/subjects/users-value/versions", json!({"schema": USER_V2})).await, (200, json!({"id": 2})));
    // The same schema under another subject keeps its id.
    assert_eq!(post(&s, "/subjects/accounts-value/versions", json!({"schema": USER_V1})).await, (200, json!({"id": 1})));
    let proto = "syntax = \"proto3\";\nmessage Ping { int64 at = 1; }\n";
    assert_eq!(post(&s, "/subjects/pings-value/versions", json!({"schema": proto, "schemaType": "PROTOBUF"})).await, (200, json!({"id": 3})));

    assert_eq!(get(&s, "/subjects").await, (200, json!(["accounts-value", "pings-value", "users-value"])));
    assert_eq!(get(&s, "/subjects/users-value/versions").await, (200, json!([1, 2])));
    assert_eq!(get(&s, "/subjects/users-value/versions/latest").await, (200, json!({"subject": "users-value", "id": 2, "version": 2, "schema": USER_V2})));
    assert_eq!(get(&s, "/subjects/users-value/versions/1/schema").await, (200, serde_json::from_str::<Value>(USER_V1).unwrap()));
    assert_eq!(get(&s, "/schemas/ids/1").await, (200, json!({"schema": USER_V1})));
    assert_eq!(get(&s, "/schemas/ids/3").await, (200, json!({"schema": proto, "schemaType": "PROTOBUF"})));
    assert_eq!(get(&s, "/schemas/ids/1/versions").await, (200, json!([{"subject": "accounts-value", "version": 1}, {"subject": "users-value", "version": 1}])));
    assert_eq!(get(&s, "/schemas/types").await, (200, json!(["JSON", "PROTOBUF", "AVRO"])));
    // Looking a schema up says where it is, without registering it.
    assert_eq!(
        post(&s, "/subjects/users-value", json!({"schema": USER_V2})).await,
        (200, json!({"subject": "users-value", "id": 2, "version": 2, "schema": USER_V2}))
    );
}

#[tokio::test]
async fn the_registry_answers_with_confluents_error_codes() {
    let s = TestServer::start();
    post(&s, "/subjects/t-value/versions", json!({"schema": "\"string\""})).await;
    for (path, status, code) in [
        ("/subjects/nope/versions", 404, 40401),
        ("/subjects/t-value/versions/7", 404, 40402),
        ("/subjects/t-value/versions/zero", 422, 42202),
        ("/schemas/ids/99", 404, 40403),
        ("/config/t-value", 404, 40408),
    ] {
        let (got, body) = get(&s, path).await;
        assert_eq!((got, body["error_code"].clone()), (status, json!(code)), "{path}: {body}");
        assert!(!body["message"].as_str().unwrap_or_default().is_empty(), "{path}: {body}");
    }
    let (status, body) = post(&s, "/subjects/t-value/versions", json!({"schema": "{not json"})).await;
    assert_eq!((status, body["error_code"].clone()), (422, json!(42201)), "{body}");
    let (status, body) = post(&s, "/subjects/t-value/versions", json!({"schema": "\"int\"", "schemaType": "XML"})).await;
    assert_eq!((status, body["error_code"].clone()), (422, json!(42201)), "{body}");
    let (status, body) = post(&s, "/subjects/t-value", json!({"schema": "\"int\""})).await;
    assert_eq!((status, body["error_code"].clone()), (404, json!(40403)), "{body}");
    let (status, body) = call(&s, reqwest::Method::PUT, "/config", Some(json!({"compatibility": "SIDEWAYS"}))).await;
    assert_eq!((status, body["error_code"].clone()), (422, json!(42203)), "{body}");
}

#[tokio::test]
async fn deletes_are_soft_then_permanent_and_everything_survives_a_kill() {
    let mut s = TestServer::start();
    post(&s, "/subjects/keep-value/versions", json!({"schema": USER_V1})).await;
    post(&s, "/subjects/keep-value/versions", json!({"schema": USER_V2})).await;
    post(&s, "/subjects/drop-value/versions", json!({"schema": "\"bytes\""})).await;
    assert_eq!(call(&s, reqwest::Method::PUT, "/config/keep-value", Some(json!({"compatibility": "FULL"}))).await, (200, json!({"compatibility": "FULL"})));
    // Permanent deletion needs a soft one first.
    let (status, body) = delete(&s, "/subjects/drop-value?permanent=true").await;
    assert_eq!((status, body["error_code"].clone()), (404, json!(40405)), "{body}");
    assert_eq!(delete(&s, "/subjects/drop-value").await, (200, json!([1])));
    assert_eq!(get(&s, "/subjects").await, (200, json!(["keep-value"])));
    assert_eq!(get(&s, "/subjects?deleted=true").await, (200, json!(["drop-value", "keep-value"])));
    assert_eq!(delete(&s, "/subjects/drop-value?permanent=true").await, (200, json!([1])));
    assert_eq!(delete(&s, "/subjects/keep-value/versions/1").await, (200, json!(1)));

    s.kill9();
    s.restart();
    assert_eq!(get(&s, "/subjects?deleted=true").await, (200, json!(["keep-value"])));
    assert_eq!(get(&s, "/subjects/keep-value/versions").await, (200, json!([2])));
    assert_eq!(get(&s, "/subjects/keep-value/versions/latest").await.1["id"], json!(2));
    assert_eq!(get(&s, "/config/keep-value").await, (200, json!({"compatibilityLevel": "FULL"})));
    assert_eq!(get(&s, "/config").await, (200, json!({"compatibilityLevel": "BACKWARD"})));
    // Ids are never reused, not even those of hard-deleted schemas.
    assert_eq!(post(&s, "/subjects/new-value/versions", json!({"schema": "\"float\""})).await, (200, json!({"id": 4})));
}

#[tokio::test]
async fn incompatible_schemas_are_refused_by_the_subjects_level() {
    let s = TestServer::start();
    post(&s, "/subjects/users-value/versions", json!({"schema": USER_V1})).await;
    // BACKWARD (the default): a new field needs a default, or old data cannot be read.
    let without_default = r#"{"type":"record","name":"User","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"}]}"#;
    let (status, body) = post(&s, "/subjects/users-value/versions", json!({"schema": without_default})).await;
    assert_eq!((status, body["error_code"].clone()), (409, json!(409)), "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("incompatible with an earlier schema"), "{body}");
    assert_eq!(
        post(&s, "/compatibility/subjects/users-value/versions/latest", json!({"schema": without_default})).await,
        (200, json!({"is_compatible": false}))
    );
    let (_, verbose) = post(&s, "/compatibility/subjects/users-value/versions/1?verbose=true", json!({"schema": without_default})).await;
    assert!(verbose["messages"].as_array().is_some_and(|m| !m.is_empty()), "{verbose}");
    assert_eq!(post(&s, "/compatibility/subjects/users-value/versions/latest", json!({"schema": USER_V2})).await, (200, json!({"is_compatible": true})));
    // FORWARD takes it: old readers ignore the new field.
    call(&s, reqwest::Method::PUT, "/config/users-value", Some(json!({"compatibility": "FORWARD"}))).await;
    assert_eq!(post(&s, "/subjects/users-value/versions", json!({"schema": without_default})).await, (200, json!({"id": 2})));
    // An Avro schema that does not parse is invalid, not incompatible.
    let (status, body) = post(&s, "/subjects/users-value/versions", json!({"schema": r#"{"type":"record","name":"User"}"#})).await;
    assert_eq!((status, body["error_code"].clone()), (422, json!(42201)), "{body}");
}

#[tokio::test]
async fn json_schemas_are_checked_by_the_content_model_rules() {
    let s = TestServer::start();
    let v1 = json!({"type": "object", "properties": {"id": {"type": "integer"}}, "additionalProperties": false}).to_string();
    let (status, _) = post(&s, "/subjects/orders-value/versions", json!({"schema": v1, "schemaType": "JSON"})).await;
    assert_eq!(status, 200);
    // BACKWARD: a property added to a closed model is fine; a newly required one is not.
    let added = json!({"type": "object", "properties": {"id": {"type": "integer"}, "note": {"type": "string"}}, "additionalProperties": false}).to_string();
    assert_eq!(post(&s, "/subjects/orders-value/versions", json!({"schema": added, "schemaType": "JSON"})).await.0, 200);
    let required = json!({"type": "object", "properties": {"id": {"type": "integer"}, "note": {"type": "string"}}, "required": ["note"],
        "additionalProperties": false})
    .to_string();
    let (status, body) = post(&s, "/subjects/orders-value/versions", json!({"schema": required, "schemaType": "JSON"})).await;
    assert_eq!((status, body["error_code"].clone()), (409, json!(409)), "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("property note is newly required"), "{body}");
    // Narrowing a type is refused; under NONE anything goes.
    let narrowed = json!({"type": "object", "properties": {"id": {"type": "string"}, "note": {"type": "string"}}, "additionalProperties": false}).to_string();
    assert_eq!(post(&s, "/subjects/orders-value/versions", json!({"schema": narrowed.clone(), "schemaType": "JSON"})).await.0, 409);
    reqwest::Client::new()
        .put(format!("{}/config/orders-value", s.url))
        .header("Content-Type", SR)
        .body(json!({"compatibility": "NONE"}).to_string())
        .send()
        .await
        .expect("put config");
    assert_eq!(post(&s, "/subjects/orders-value/versions", json!({"schema": narrowed, "schemaType": "JSON"})).await.0, 200);
}

async fn put(s: &TestServer, path: &str, body: Value) -> (u16, Value) {
    call(s, reqwest::Method::PUT, path, Some(body)).await
}

#[tokio::test]
async fn modes_make_subjects_read_only_or_importable_and_survive_a_kill() {
    let mut s = TestServer::start();
    assert_eq!(get(&s, "/mode").await, (200, json!({"mode": "READWRITE"})));
    // IMPORT: a registry's copy keeps its ids.
    assert_eq!(put(&s, "/mode", json!({"mode": "IMPORT"})).await, (200, json!({"mode": "IMPORT"})));
    assert_eq!(post(&s, "/subjects/copied-value/versions", json!({"schema": "\"string\"", "id": 42})).await, (200, json!({"id": 42})));
    assert_eq!(put(&s, "/mode", json!({"mode": "READWRITE"})).await.0, 200);
    let (status, body) = post(&s, "/subjects/other-value/versions", json!({"schema": "\"int\"", "id": 50})).await;
    assert_eq!((status, body["error_code"].clone()), (422, json!(42205)), "ids are given only in IMPORT mode: {body}");
    // READONLY on one subject refuses its changes, not others'.
    assert_eq!(put(&s, "/mode/copied-value", json!({"mode": "READONLY"})).await.0, 200);
    let (status, body) = post(&s, "/subjects/copied-value/versions", json!({"schema": "\"string\""})).await;
    assert_eq!((status, body["error_code"].clone()), (422, json!(42205)), "{body}");
    assert_eq!(call(&s, reqwest::Method::DELETE, "/subjects/copied-value", None).await.0, 422);
    assert_eq!(post(&s, "/subjects/free-value/versions", json!({"schema": "\"long\""})).await, (200, json!({"id": 43})));
    assert_eq!(put(&s, "/mode", json!({"mode": "SIDEWAYS"})).await.1["error_code"], json!(42204));
    s.kill9();
    s.restart();
    assert_eq!(get(&s, "/mode/copied-value").await, (200, json!({"mode": "READONLY"})));
    assert_eq!(get(&s, "/schemas/ids/42").await.1["schema"], json!("\"string\""));
}

#[tokio::test]
async fn a_deeply_nested_schema_is_refused_and_the_server_keeps_serving() {
    let s = TestServer::start();
    let proto = format!("syntax = \"proto3\"; {} int32 x = 1; {}", "message M { ".repeat(20_000), "} ".repeat(20_000));
    let (status, body) = post(&s, "/subjects/deep-value/versions", json!({"schema": proto, "schemaType": "PROTOBUF"})).await;
    assert_eq!((status, body["error_code"].clone()), (422, json!(42201)), "{body}");
    let avro = format!("{}\"int\"{}", "{\"type\": \"array\", \"items\": ".repeat(5_000), "}".repeat(5_000));
    let (status, body) = post(&s, "/subjects/deep-avro-value/versions", json!({"schema": avro})).await;
    assert_eq!((status, body["error_code"].clone()), (422, json!(42201)), "{body}");
    assert_eq!(get(&s, "/subjects").await, (200, json!([])));
}

async fn register_proto(s: &TestServer, subject: &str, body: &str) -> (u16, Value) {
    post(s, &format!("/subjects/{subject}/versions"), json!({"schema": format!("syntax = \"proto3\";\n{body}"), "schemaType": "PROTOBUF"})).await
}

#[tokio::test]
async fn protobuf_schemas_are_checked_by_the_wire_rules_per_level() {
    let s = TestServer::start();
    assert_eq!(register_proto(&s, "p-value", "message M { int32 id = 1; string name = 2; }").await.0, 200);
    // BACKWARD: removing a field and widening int32 to int64 (both varints) are fine.
    assert_eq!(register_proto(&s, "p-value", "message M { int64 id = 1; }").await.0, 200);
    let (status, body) = register_proto(&s, "p-value", "message M { string id = 1; }").await;
    assert_eq!((status, body["error_code"].clone()), (409, json!(409)), "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("not wire-compatible"), "{body}");
    // The compatibility endpoint says the same without registering.
    let check = json!({"schema": "syntax = \"proto3\";\nmessage M { sint64 id = 1; }", "schemaType": "PROTOBUF"});
    let (status, body) = post(&s, "/compatibility/subjects/p-value/versions/latest", check).await;
    assert_eq!((status, body["is_compatible"].clone()), (200, json!(false)), "zigzag varints differ from plain ones: {body}");
    // FORWARD: a message the old schema had must stay; FULL: adding a message is refused
    // too (old readers would be missing it), as Confluent's registry does.
    assert_eq!(put(&s, "/config/p-value", json!({"compatibility": "FORWARD"})).await.0, 200);
    assert_eq!(register_proto(&s, "p-value", "message M { int64 id = 1; } message Extra { bool b = 1; }").await.0, 409);
    assert_eq!(put(&s, "/config/p-value", json!({"compatibility": "BACKWARD"})).await.0, 200);
    assert_eq!(register_proto(&s, "p-value", "message M { int64 id = 1; } message Extra { bool b = 1; }").await.0, 200);
    assert_eq!(put(&s, "/config/p-value", json!({"compatibility": "FULL"})).await.0, 200);
    assert_eq!(register_proto(&s, "p-value", "message M { int64 id = 1; int32 z = 3; }").await.0, 409, "a message removed");
    // BACKWARD_TRANSITIVE checks every version: v1 had a oneof-free `name` = 2 as string.
    assert_eq!(put(&s, "/config/p-value", json!({"compatibility": "BACKWARD_TRANSITIVE"})).await.0, 200);
    let (status, body) = register_proto(&s, "p-value", "message M { int64 id = 1; double name = 2; } message Extra { bool b = 1; }").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(put(&s, "/config/p-value", json!({"compatibility": "BACKWARD"})).await.0, 200);
    assert_eq!(register_proto(&s, "p-value", "message M { int64 id = 1; double name = 2; } message Extra { bool b = 1; }").await.0, 200);
}

#[tokio::test]
async fn protobuf_references_resolve_imports_and_serialized_format_answers_descriptors() {
    use base64::Engine;
    let s = TestServer::start();
    let dep = "syntax = \"proto3\";\npackage shared;\nmessage Money { string currency = 1; int64 units = 2; }";
    assert_eq!(post(&s, "/subjects/money.proto/versions", json!({"schema": dep, "schemaType": "PROTOBUF"})).await, (200, json!({"id": 1})));
    let main = "syntax = \"proto3\";\nimport \"money.proto\";\nmessage Order { string id = 1; shared.Money total = 2; }";
    let (status, body) = post(&s, "/subjects/orders-value/versions", json!({"schema": main, "schemaType": "PROTOBUF"})).await;
    assert_eq!((status, body["error_code"].clone()), (422, json!(42201)), "the import is unknown without its reference: {body}");
    let refs = json!([{"name": "money.proto", "subject": "money.proto", "version": 1}]);
    let registered = json!({"schema": main, "schemaType": "PROTOBUF", "references": refs});
    assert_eq!(post(&s, "/subjects/orders-value/versions", registered).await, (200, json!({"id": 2})));
    // Confluent's clients read PROTOBUF schemas as base64 FileDescriptorProtos.
    let (status, body) = get(&s, "/schemas/ids/2?format=serialized").await;
    assert_eq!(status, 200, "{body}");
    let bytes = base64::engine::general_purpose::STANDARD.decode(body["schema"].as_str().unwrap_or_default()).expect("base64");
    assert!(bytes.windows(11).any(|w| w == b"money.proto"), "the descriptor names its dependency");
    assert_eq!(body["references"], refs);
    let (_, latest) = get(&s, "/subjects/orders-value/versions/latest?format=serialized").await;
    assert_eq!(latest["schema"], body["schema"]);
    // A stream declared on the subject takes its columns through the import.
    s.ksql_ok("CREATE STREAM orders WITH (kafka_topic='orders', value_format='PROTOBUF', partitions=1);").await;
    let described = s.ksql_ok("DESCRIBE orders;").await;
    let text = described.to_string();
    assert!(text.contains("TOTAL") && text.contains("CURRENCY"), "{text}");
    // And the base64 form registers as a schema of its own, accepted like its source.
    let again = json!({"schema": body["schema"], "schemaType": "PROTOBUF", "references": refs});
    assert_eq!(post(&s, "/subjects/copy-value/versions", again).await.0, 200);
}
