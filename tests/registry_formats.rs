//! The registry formats (AVRO, JSON_SR) as users reach them over REST: sources declared with
//! columns register their schema, sources without columns take them from the registry,
//! CREATE ... AS SELECT registers its result's schema, bad records are counted and skipped,
//! and a restart reads with the schemas a statement was created with.

mod common;

use common::TestServer;
use serde_json::{Value, json};

const SR: &str = "application/vnd.schemaregistry.v1+json";

async fn register(s: &TestServer, subject: &str, schema: Value) -> i64 {
    register_at(&s.url, subject, schema, "AVRO").await
}

async fn register_typed(s: &TestServer, subject: &str, schema: Value, schema_type: &str) -> i64 {
    register_at(&s.url, subject, schema, schema_type).await
}

/// Registers a schema with the registry API at `url`; its id.
async fn register_at(url: &str, subject: &str, schema: Value, schema_type: &str) -> i64 {
    let r = reqwest::Client::new()
        .post(format!("{url}/subjects/{subject}/versions"))
        .header("Content-Type", SR)
        .body(json!({"schema": schema.to_string(), "schemaType": schema_type}).to_string())
        .send()
        .await
        .expect("register");
    let body: Value = r.json().await.expect("json");
    body["id"].as_i64().unwrap_or_else(|| panic!("no id: {body}"))
}

async fn latest(s: &TestServer, subject: &str) -> Value {
    let r = reqwest::get(format!("{}/subjects/{subject}/versions/latest", s.url)).await.expect("get");
    r.json().await.expect("json")
}

/// A record framed as Confluent's serializers write it: magic 0, the id, the Avro body.
fn framed(id: i64, schema: &Value, value: apache_avro::types::Value) -> Vec<u8> {
    let schema = apache_avro::Schema::parse(schema).expect("schema");
    let mut out = vec![0];
    out.extend_from_slice(&(id as i32).to_be_bytes());
    out.extend_from_slice(&apache_avro::to_avro_datum(&schema, value).expect("encode"));
    out
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn user(name: &str, age: i32) -> apache_avro::types::Value {
    use apache_avro::types::Value as A;
    A::Record(vec![("name".into(), A::String(name.into())), ("age".into(), A::Int(age))])
}

fn user_schema() -> Value {
    json!({"type": "record", "name": "User", "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "int"}]})
}

#[tokio::test(flavor = "multi_thread")]
async fn declared_columns_register_their_schema_and_round_trip_through_csas() {
    let s = TestServer::start();
    s.ksql_ok(
        "CREATE STREAM orders (id INT KEY, item STRING, price DECIMAL(6,2), at TIMESTAMP, tags MAP<STRING, INT>, addr STRUCT<city STRING>) \
         WITH (kafka_topic='orders', format='AVRO', partitions=1);",
    )
    .await;
    let value = latest(&s, "orders-value").await;
    let schema: Value = serde_json::from_str(value["schema"].as_str().expect("schema")).expect("json");
    assert_eq!(schema["name"], "io.confluent.ksql.avro_schemas.KsqlDataSourceSchema", "{schema}");
    assert_eq!(schema["fields"][1]["type"][1]["logicalType"], "decimal", "{schema}");
    assert_eq!(latest(&s, "orders-key").await["schema"], json!(r#"["null","int"]"#));
    s.ksql_with(
        "CREATE STREAM cheap AS SELECT id, UCASE(item) AS item, price, addr->city AS city FROM orders WHERE price < 10;",
        json!({"auto.offset.reset": "earliest"}),
    )
    .await;
    s.ksql_ok("INSERT INTO orders (id, item, price, at, tags, addr) VALUES (1, 'pen', 2.50, '2024-05-01T10:00:00', MAP('a' := 1), STRUCT(city := 'Oslo'));")
        .await;
    s.ksql_ok("INSERT INTO orders (id, item, price) VALUES (2, 'desk', 99.00);").await;
    let rows = s.wait_rows("SELECT * FROM cheap;", 1).await;
    assert_eq!(rows, vec![vec![json!(1), json!("PEN"), json!(2.50), json!("Oslo")]]);
    let out = latest(&s, "CHEAP-value").await;
    assert!(out["schema"].as_str().expect("schema").contains("\"CITY\""), "{out}");
    let full = s.rows("SELECT * FROM orders;").await;
    assert_eq!(full.len(), 2);
    assert_eq!(full[0][4], json!({"a": 1}), "{full:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn columns_come_from_the_registry_and_bad_records_are_counted() {
    let s = TestServer::start();
    let id = register(&s, "people-value", user_schema()).await;
    s.ksql_ok("CREATE STREAM seed (a INT) WITH (kafka_topic='people', value_format='JSON', partitions=1);").await;
    s.ksql_ok("CREATE STREAM people WITH (kafka_topic='people', value_format='AVRO');").await;
    let schema = user_schema();
    let good = framed(id, &schema, user("ann", 30));
    let mut unknown_id = good.clone();
    unknown_id[4] = 99;
    let truncated = good[..good.len() - 2].to_vec();
    let records = vec![
        json!({"valueBase64": b64(&good)}),
        json!({"valueBase64": b64(b"{\"not\": \"avro\"}")}),
        json!({"valueBase64": b64(&unknown_id)}),
        json!({"valueBase64": b64(&truncated)}),
        json!({"valueBase64": b64(&framed(id, &schema, user("bob", 41)))}),
    ];
    s.produce("people", records).await;
    let rows = s.wait_rows("SELECT NAME, AGE FROM people;", 2).await;
    assert_eq!(rows, vec![vec![json!("ann"), json!(30)], vec![json!("bob"), json!(41)]]);
    // PRINT recognises registry frames and shows them decoded.
    let (_, printed) = s.post("/query", json!({"ksql": "PRINT 'people' FROM BEGINNING LIMIT 1;"})).await;
    let printed = printed.as_str().unwrap_or_default();
    assert!(printed.contains("Value format: AVRO"), "{printed}");
    assert!(printed.contains(r#"value: {"name":"ann","age":30}"#), "{printed}");
    // A persistent query over the same records counts the three bad ones and keeps going.
    s.ksql_with("CREATE STREAM older AS SELECT name, age + 1 AS next_age FROM people;", json!({"auto.offset.reset": "earliest"})).await;
    let rows = s.wait_rows("SELECT * FROM older;", 2).await;
    assert_eq!(rows.len(), 2);
    s.wait_until("three failed records", async |s: &TestServer| {
        let (_, d) = s.ksql("DESCRIBE older EXTENDED;").await;
        d[0]["sourceDescription"]["writeQueries"][0]["processingErrors"].as_i64() == Some(3)
    })
    .await;
    let (status, body) = s.ksql("CREATE STREAM missing WITH (kafka_topic='people2', value_format='AVRO', partitions=1);").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("Subject: people2-value"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_reads_with_the_schema_a_source_was_created_with() {
    let mut s = TestServer::start();
    let id = register(&s, "events-value", user_schema()).await;
    s.ksql_ok("CREATE STREAM seed (a INT) WITH (kafka_topic='events', value_format='JSON', partitions=1);").await;
    s.ksql_ok("CREATE STREAM events WITH (kafka_topic='events', value_format='AVRO');").await;
    s.produce("events", vec![json!({"valueBase64": b64(&framed(id, &user_schema(), user("cy", 7)))})]).await;
    // A compatible new version adds a field; the stream keeps the columns it was made with.
    let v2 = json!({"type": "record", "name": "User", "fields": [
        {"name": "name", "type": "string"}, {"name": "age", "type": "int"}, {"name": "email", "type": ["null", "string"], "default": null}]});
    let id2 = register(&s, "events-value", v2.clone()).await;
    assert_ne!(id, id2);
    use apache_avro::types::Value as A;
    let with_email =
        A::Record(vec![("name".into(), A::String("di".into())), ("age".into(), A::Int(8)), ("email".into(), A::Union(1, Box::new(A::String("d@x".into()))))]);
    s.produce("events", vec![json!({"valueBase64": b64(&framed(id2, &v2, with_email))})]).await;
    s.kill9();
    s.restart();
    let (_, d) = s.ksql("DESCRIBE events;").await;
    assert_eq!(d[0]["sourceDescription"]["valueSchemaId"], json!(id), "{d}");
    let fields: Vec<&str> = d[0]["sourceDescription"]["fields"].as_array().expect("fields").iter().filter_map(|f| f["name"].as_str()).collect();
    assert_eq!(fields, vec!["NAME", "AGE"], "{d}");
    let rows = s.wait_rows("SELECT NAME, AGE FROM events;", 2).await;
    assert_eq!(rows, vec![vec![json!("cy"), json!(7)], vec![json!("di"), json!(8)]]);
    assert_eq!(latest(&s, "events-value").await["id"], json!(id2));
}

/// A JSON_SR record: magic 0, the id, the JSON text.
fn json_framed(id: i64, value: Value) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&(id as i32).to_be_bytes());
    out.extend_from_slice(value.to_string().as_bytes());
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn json_sr_infers_columns_from_a_json_schema_and_registers_its_results() {
    let s = TestServer::start();
    let schema = json!({"type": "object", "properties": {
        "name": {"type": "string"},
        "visits": {"oneOf": [{"type": "null"}, {"type": "integer", "connect.type": "int32"}]},
        "tags": {"$ref": "#/definitions/Tags"}},
        "definitions": {"Tags": {"type": "array", "items": {"type": "string"}}}});
    let id = register_typed(&s, "clicks-value", schema, "JSON").await;
    s.ksql_ok("CREATE STREAM seed (a INT) WITH (kafka_topic='clicks', value_format='JSON', partitions=1);").await;
    s.ksql_ok("CREATE STREAM clicks WITH (kafka_topic='clicks', value_format='JSON_SR');").await;
    let (_, d) = s.ksql("DESCRIBE clicks;").await;
    let fields: Vec<String> = d[0]["sourceDescription"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| format!("{} {}", f["name"].as_str().unwrap_or_default(), f["schema"]["type"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(fields, vec!["NAME STRING", "VISITS INTEGER", "TAGS ARRAY"], "{d}");
    s.produce(
        "clicks",
        vec![
            json!({"valueBase64": b64(&json_framed(id, json!({"name": "ann", "visits": 3, "tags": ["a"]})))}),
            json!({"valueBase64": b64(br#"{"name": "no frame"}"#)}),
            json!({"valueBase64": b64(&json_framed(id, json!({"name": "bob", "visits": null, "tags": []})))}),
        ],
    )
    .await;
    s.ksql_with(
        "CREATE STREAM busy WITH (value_format='JSON_SR') AS SELECT name, visits * 2 AS double_visits FROM clicks;",
        json!({"auto.offset.reset": "earliest"}),
    )
    .await;
    let rows = s.wait_rows("SELECT * FROM busy;", 2).await;
    assert_eq!(rows, vec![vec![json!("ann"), json!(6)], vec![json!("bob"), Value::Null]]);
    let out = latest(&s, "BUSY-value").await;
    assert_eq!(out["schemaType"], "JSON", "{out}");
    assert!(out["schema"].as_str().unwrap_or_default().contains("DOUBLE_VISITS"), "{out}");
    let (_, printed) = s.post("/query", json!({"ksql": "PRINT 'BUSY' FROM BEGINNING LIMIT 1;"})).await;
    let printed = printed.as_str().unwrap_or_default();
    assert!(printed.contains("Value format: JSON_SR") && printed.contains(r#"value: {"NAME":"ann","DOUBLE_VISITS":6}"#), "{printed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_external_registry_holds_the_schemas_of_a_server_pointed_at_it() {
    // `registry` stands for a Confluent Schema Registry: any server speaking its API.
    let registry = TestServer::start();
    let id = register(&registry, "trips-value", user_schema()).await;
    let s = TestServer::start_with(&["--schema-registry-url", &registry.url]);
    s.ksql_ok("CREATE STREAM seed (a INT) WITH (kafka_topic='trips', value_format='JSON', partitions=1);").await;
    s.ksql_ok("CREATE STREAM trips WITH (kafka_topic='trips', value_format='AVRO');").await;
    s.produce("trips", vec![json!({"valueBase64": b64(&framed(id, &user_schema(), user("eve", 5)))})]).await;
    s.ksql_with("CREATE STREAM aged AS SELECT name, age * 2 AS double_age FROM trips;", json!({"auto.offset.reset": "earliest"})).await;
    let rows = s.wait_rows("SELECT * FROM aged;", 1).await;
    assert_eq!(rows, vec![vec![json!("eve"), json!(10)]]);
    // The result's schema went to the external registry; the server's own API says where.
    assert!(latest(&registry, "AGED-value").await["schema"].as_str().unwrap_or_default().contains("DOUBLE_AGE"));
    let r = reqwest::get(format!("{}/subjects", s.url)).await.expect("get");
    assert_eq!(r.status().as_u16(), 404);
    let body: Value = r.json().await.expect("json");
    assert!(body["message"].as_str().unwrap_or_default().contains(&registry.url), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_registry_api_can_have_its_own_listener() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let listen = format!("127.0.0.1:{port}");
    let s = TestServer::start_with(&["--schema-registry-listen", &listen]);
    let id = register_at(&format!("http://{listen}"), "x-value", json!("string"), "AVRO").await;
    assert_eq!(latest(&s, "x-value").await["id"], json!(id), "one registry behind both listeners");
    let r = reqwest::get(format!("http://{listen}/info")).await.expect("get");
    assert_eq!(r.status().as_u16(), 404, "the registry listener serves only the registry's API");
}

#[tokio::test(flavor = "multi_thread")]
async fn sources_adopt_a_new_schema_version_by_create_or_replace_or_alter() {
    let s = TestServer::start();
    let id = register(&s, "evo-value", user_schema()).await;
    s.ksql_ok("CREATE STREAM seed (a INT) WITH (kafka_topic='evo', value_format='JSON', partitions=1);").await;
    s.ksql_ok("CREATE STREAM evo WITH (kafka_topic='evo', value_format='AVRO');").await;
    let v2 = json!({"type": "record", "name": "User", "fields": [
        {"name": "name", "type": "string"}, {"name": "age", "type": "int"}, {"name": "email", "type": ["null", "string"], "default": null}]});
    let id2 = register(&s, "evo-value", v2.clone()).await;
    use apache_avro::types::Value as A;
    let with_email =
        A::Record(vec![("name".into(), A::String("fay".into())), ("age".into(), A::Int(9)), ("email".into(), A::Union(1, Box::new(A::String("f@x".into()))))]);
    s.produce(
        "evo",
        vec![json!({"valueBase64": b64(&framed(id, &user_schema(), user("gus", 4)))}), json!({"valueBase64": b64(&framed(id2, &v2, with_email))})],
    )
    .await;
    // The stream keeps its columns until it is replaced; then it reads the new field.
    assert_eq!(s.wait_rows("SELECT * FROM evo;", 2).await[1], vec![json!("fay"), json!(9)]);
    s.ksql_ok("CREATE OR REPLACE STREAM evo WITH (kafka_topic='evo', value_format='AVRO');").await;
    let rows = s.wait_rows("SELECT NAME, EMAIL FROM evo;", 2).await;
    assert_eq!(rows, vec![vec![json!("gus"), Value::Null], vec![json!("fay"), json!("f@x")]]);
    // A replacement may add columns, never drop or change them.
    let (status, body) = s.ksql("CREATE OR REPLACE STREAM evo (NAME STRING) WITH (kafka_topic='evo', value_format='AVRO');").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("Cannot upgrade data source"), "{body}");

    // ALTER on a stream whose schema Eddy registered registers the next version.
    s.ksql_ok("CREATE STREAM notes (id INT KEY, body STRING) WITH (kafka_topic='notes', format='AVRO', partitions=1);").await;
    s.ksql_ok("ALTER STREAM notes ADD COLUMN stars INT;").await;
    let latest_notes = latest(&s, "notes-value").await;
    assert_eq!(latest_notes["version"], json!(2), "{latest_notes}");
    s.ksql_ok("INSERT INTO notes (id, body, stars) VALUES (1, 'ok', 5);").await;
    assert_eq!(s.wait_rows("SELECT STARS FROM notes;", 1).await, vec![vec![json!(5)]]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schema_referencing_another_subject_is_read_with_it() {
    let s = TestServer::start();
    let address = json!({"type": "record", "name": "Address", "namespace": "acme", "fields": [{"name": "city", "type": "string"}]});
    register(&s, "address-value", address.clone()).await;
    let order = json!({"type": "record", "name": "Order", "namespace": "acme",
        "fields": [{"name": "id", "type": "long"}, {"name": "ship_to", "type": "acme.Address"}]});
    let r = reqwest::Client::new()
        .post(format!("{}/subjects/shipments-value/versions", s.url))
        .header("Content-Type", SR)
        .body(json!({"schema": order.to_string(), "references": [{"name": "acme.Address", "subject": "address-value", "version": 1}]}).to_string())
        .send()
        .await
        .expect("register");
    let id = r.json::<Value>().await.expect("json")["id"].as_i64().expect("id");
    s.ksql_ok("CREATE STREAM seed (a INT) WITH (kafka_topic='shipments', value_format='JSON', partitions=1);").await;
    s.ksql_ok("CREATE STREAM shipments WITH (kafka_topic='shipments', value_format='AVRO');").await;
    // The producer's serializer writes the same bytes as with the referenced type in place.
    let mut whole = order.clone();
    whole["fields"][1]["type"] = address;
    let parsed = apache_avro::Schema::parse(&whole).expect("schema");
    use apache_avro::types::Value as A;
    let record = A::Record(vec![("id".into(), A::Long(7)), ("ship_to".into(), A::Record(vec![("city".into(), A::String("Oslo".into()))]))]);
    let mut frame = vec![0];
    frame.extend_from_slice(&(id as i32).to_be_bytes());
    frame.extend_from_slice(&apache_avro::to_avro_datum(&parsed, record).expect("encode"));
    s.produce("shipments", vec![json!({"valueBase64": b64(&frame)})]).await;
    let rows = s.wait_rows("SELECT ID, SHIP_TO->city FROM shipments;", 1).await;
    assert_eq!(rows, vec![vec![json!(7), json!("Oslo")]]);
}

#[tokio::test(flavor = "multi_thread")]
async fn protobuf_streams_register_a_proto_schema_and_are_read_back_by_inference() {
    let s = TestServer::start();
    s.ksql_ok(
        "CREATE STREAM events (id INT KEY, kind STRING, tags ARRAY<STRING>, at TIMESTAMP, detail STRUCT<n BIGINT>) \
         WITH (kafka_topic='events', format='PROTOBUF', partitions=1);",
    )
    .await;
    let schema = latest(&s, "events-value").await;
    assert_eq!(schema["schemaType"], "PROTOBUF", "{schema}");
    assert!(schema["schema"].as_str().unwrap_or_default().contains("repeated string TAGS"), "{schema}");
    s.ksql_ok("INSERT INTO events (id, kind, tags, at, detail) VALUES (1, 'click', ARRAY['a', 'b'], '2024-05-01T10:00:00', STRUCT(n := 5));").await;
    // proto3 has no null scalars: a null reads back as its default.
    s.ksql_ok("INSERT INTO events (id, kind) VALUES (2, NULL);").await;
    s.produce("events", vec![json!({"keyBase64": b64(&[0, 0, 0, 0, 1, 0, 8, 3]), "valueBase64": b64(b"\x00\x00\x00\x00\x07garbage")})]).await;
    s.ksql_with(
        "CREATE STREAM copied WITH (format='PROTOBUF') AS SELECT id, UCASE(kind) AS kind, tags, detail FROM events;",
        json!({"auto.offset.reset": "earliest"}),
    )
    .await;
    let rows = s.wait_rows("SELECT * FROM copied;", 2).await;
    assert_eq!(rows[0], vec![json!(1), json!("CLICK"), json!(["a", "b"]), json!({"N": 5})]);
    // PRINT shows PROTOBUF frames decoded with the message their id and indexes name.
    let (_, printed) = s.post("/query", json!({"ksql": "PRINT 'events' FROM BEGINNING LIMIT 1;"})).await;
    let printed = printed.as_str().unwrap_or_default();
    assert!(printed.contains("Value format: PROTOBUF"), "{printed}");
    assert!(printed.contains(r#""KIND":"click","TAGS":["a","b"]"#), "{printed}");
    assert_eq!(rows[1], vec![json!(2), json!(""), json!([]), Value::Null]);
    // A stream without columns over the result takes them from COPIED-value.
    s.ksql_ok("CREATE STREAM again WITH (kafka_topic='COPIED', format='PROTOBUF');").await;
    let (_, d) = s.ksql("DESCRIBE again;").await;
    let fields: Vec<&str> = d[0]["sourceDescription"]["fields"].as_array().expect("fields").iter().filter_map(|f| f["name"].as_str()).collect();
    assert_eq!(fields, vec!["ID", "KIND", "TAGS", "DETAIL"], "{d}");
    assert_eq!(s.wait_rows("SELECT KIND FROM again;", 2).await, vec![vec![json!("CLICK")], vec![json!("")]]);
}

#[tokio::test(flavor = "multi_thread")]
async fn protobuf_nullable_scalars_and_logical_types_round_trip() {
    let s = TestServer::start();
    // Wrappers let scalars be null; DECIMAL, DATE and TIME are Confluent's and google's types.
    s.ksql_ok(
        "CREATE STREAM prices (id INT KEY, amount DECIMAL(8,3), day DATE, at TIME, note STRING, qty INT) \
         WITH (kafka_topic='prices', format='PROTOBUF', value_protobuf_nullable_representation='WRAPPER', partitions=1);",
    )
    .await;
    let schema = latest(&s, "prices-value").await["schema"].as_str().unwrap_or_default().to_string();
    for part in [
        "confluent.type.Decimal AMOUNT",
        "google.type.Date DAY",
        "google.type.TimeOfDay AT",
        "google.protobuf.StringValue NOTE",
        "google.protobuf.Int32Value QTY",
    ] {
        assert!(schema.contains(part), "{part} missing from {schema}");
    }
    s.ksql_ok("INSERT INTO prices (id, amount, day, at, note, qty) VALUES (1, 12345.678, '2024-02-29', '13:45:01.250', 'x', 0);").await;
    s.ksql_ok("INSERT INTO prices (id, amount, note) VALUES (2, -0.5, NULL);").await;
    // Rows show DATE as days since the epoch and TIME as milliseconds of the day.
    let rows = s.wait_rows("SELECT * FROM prices;", 2).await;
    assert_eq!(rows[0], vec![json!(1), json!(12345.678), json!(19_782), json!(49_501_250), json!("x"), json!(0)]);
    assert_eq!(rows[1], vec![json!(2), json!(-0.5), Value::Null, Value::Null, Value::Null, Value::Null], "wrapped nulls stay null");
    // OPTIONAL fields do the same; the property belongs to PROTOBUF formats only.
    s.ksql_ok(
        "CREATE STREAM opt (id INT KEY, n BIGINT) WITH (kafka_topic='opt', format='PROTOBUF', \
         value_protobuf_nullable_representation='OPTIONAL', partitions=1);",
    )
    .await;
    assert!(latest(&s, "opt-value").await["schema"].as_str().unwrap_or_default().contains("optional int64 N"));
    s.ksql_ok("INSERT INTO opt (id, n) VALUES (1, NULL);").await;
    assert_eq!(s.wait_rows("SELECT n FROM opt;", 1).await, vec![vec![Value::Null]]);
    let (status, body) = s
        .ksql("CREATE STREAM j (id INT KEY, n INT) WITH (kafka_topic='j', format='JSON', value_protobuf_nullable_representation='WRAPPER', partitions=1);")
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("is not PROTOBUF"), "{body}");
}
