//! Renders server entities and query rows as the ksql CLI does: entity tables with a
//! dashed rule, boxed query results.

use serde_json::Value;

/// A padded table: header row, a rule, rows, a closing rule.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    // One line per row: newlines inside cells (multi-line SQL) become spaces.
    let rows: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|c| c.lines().map(str::trim).collect::<Vec<_>>().join(" ")).collect()).collect();
    let rows = &rows;
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| -> String { cells.iter().zip(&widths).map(|(c, w)| format!(" {c:<w$} ", w = *w)).collect::<Vec<_>>().join("|") };
    let header = line(headers.to_vec());
    let rule = "-".repeat(header.chars().count());
    let mut out = format!("{header}\n{rule}\n");
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out.push_str(&rule);
    out.push('\n');
    out
}

fn s(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// A value as a query-result cell.
pub fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_string(),
        other => other.to_string(),
    }
}

fn type_name(schema: &Value) -> String {
    let t = s(schema, "type");
    match t.as_str() {
        "STRING" => "VARCHAR(STRING)".to_string(),
        "ARRAY" => format!("ARRAY<{}>", type_name(schema.get("memberSchema").unwrap_or(&Value::Null))),
        "MAP" => format!("MAP<STRING, {}>", type_name(schema.get("memberSchema").unwrap_or(&Value::Null))),
        "STRUCT" => {
            let fields = schema.get("fields").and_then(|f| f.as_array()).cloned().unwrap_or_default();
            let inner: Vec<String> = fields.iter().map(|f| format!("{} {}", s(f, "name"), type_name(f.get("schema").unwrap_or(&Value::Null)))).collect();
            format!("STRUCT<{}>", inner.join(", "))
        }
        "DECIMAL" => {
            let p = schema.pointer("/parameters/precision").map(|x| x.to_string()).unwrap_or_default();
            let sc = schema.pointer("/parameters/scale").map(|x| x.to_string()).unwrap_or_default();
            format!("DECIMAL({p}, {sc})")
        }
        _ => t,
    }
}

/// The Field | Type table of a source or query description.
fn fields_table(d: &Value) -> String {
    let fields = d.get("fields").and_then(|f| f.as_array()).cloned().unwrap_or_default();
    let rows: Vec<Vec<String>> = fields
        .iter()
        .map(|f| {
            let key = if f.get("type").and_then(|t| t.as_str()) == Some("KEY") { "  (key)" } else { "" };
            vec![s(f, "name"), format!("{}{key}", type_name(f.get("schema").unwrap_or(&Value::Null)))]
        })
        .collect();
    table(&["Field", "Type"], &rows)
}

fn describe_source(d: &Value) -> String {
    let mut out = String::new();
    out.push_str(&format!("\n{:<21}: {}\n", "Name", s(d, "name")));
    let extended = d.get("extended").and_then(|e| e.as_bool()).unwrap_or(false);
    if extended {
        out.push_str(&format!("{:<21}: {}\n", "Type", s(d, "type")));
        let ts = s(d, "timestamp");
        out.push_str(&format!("{:<21}: {}\n", "Timestamp field", if ts.is_empty() { "Not set - using <ROWTIME>".to_string() } else { ts }));
        out.push_str(&format!("{:<21}: {}\n", "Key format", s(d, "keyFormat")));
        out.push_str(&format!("{:<21}: {}\n", "Value format", s(d, "valueFormat")));
        out.push_str(&format!("{:<21}: {} (partitions: {}, replication: {})\n", "Kafka topic", s(d, "topic"), s(d, "partitions"), s(d, "replication")));
        out.push_str(&format!("{:<21}: {}\n", "Statement", s(d, "statement")));
    }
    out.push_str(&fields_table(d));
    if !extended {
        out.push_str("For runtime statistics and query details run: DESCRIBE <Stream,Table> EXTENDED;\n");
        return out;
    }
    for (title, key) in [("Queries that read from this STREAM", "readQueries"), ("Queries that write from this STREAM", "writeQueries")] {
        let qs = d.get(key).and_then(|q| q.as_array()).cloned().unwrap_or_default();
        out.push_str(&format!("\n{title}\n-----------------------------------\n"));
        for q in qs {
            out.push_str(&format!("{} ({}) : {}\n", s(&q, "id"), s(&q, "state"), s(&q, "queryString")));
        }
    }
    out.push_str("\nFor query topology and execution plan please run: EXPLAIN <QueryId>\n");
    out.push_str(&format!("\nLocal runtime statistics\n------------------------\n{}\n{}\n", s(d, "statistics"), s(d, "errorStats")));
    if let Some(offsets) = d.get("queryOffsetSummaries").and_then(|o| o.as_array()) {
        for g in offsets {
            out.push_str(&format!("\nConsumer Groups summary:\n\nConsumer Group       : {}\n", s(g, "groupId")));
            for t in g.get("topicSummaries").and_then(|t| t.as_array()).cloned().unwrap_or_default() {
                out.push_str(&format!("\nKafka topic          : {}\n", s(&t, "kafkaTopic")));
                let rows: Vec<Vec<String>> = t
                    .get("offsets")
                    .and_then(|o| o.as_array())
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|o| vec![s(o, "partition"), s(o, "logStartOffset"), s(o, "logEndOffset"), s(o, "consumerOffset"), s(o, "lag")])
                    .collect();
                out.push_str(&table(&["Partition", "Start Offset", "End Offset", "Offset", "Lag"], &rows));
            }
        }
    }
    out
}

/// Renders one /ksql entity.
pub fn entity(e: &Value) -> String {
    let ty = s(e, "@type");
    match ty.as_str() {
        "currentStatus" => {
            let msg = e.pointer("/commandStatus/message").and_then(|m| m.as_str()).unwrap_or("").to_string();
            table(&["Message"], &[vec![msg]])
        }
        "streams" | "tables" => {
            let list = e.get(&ty).and_then(|l| l.as_array()).cloned().unwrap_or_default();
            let rows: Vec<Vec<String>> =
                list.iter().map(|x| vec![s(x, "name"), s(x, "topic"), s(x, "keyFormat"), s(x, "valueFormat"), s(x, "isWindowed")]).collect();
            let first = if ty == "streams" { "Stream Name" } else { "Table Name" };
            table(&[first, "Kafka Topic", "Key Format", "Value Format", "Windowed"], &rows)
        }
        "queries" => {
            let list = e.get("queries").and_then(|l| l.as_array()).cloned().unwrap_or_default();
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|q| {
                    let sinks = q.get("sinks").and_then(|x| x.as_array()).map(|a| a.iter().map(cell).collect::<Vec<_>>().join(",")).unwrap_or_default();
                    let topics =
                        q.get("sinkKafkaTopics").and_then(|x| x.as_array()).map(|a| a.iter().map(cell).collect::<Vec<_>>().join(",")).unwrap_or_default();
                    vec![s(q, "id"), s(q, "queryType"), s(q, "state"), sinks, topics, s(q, "processingErrors"), s(q, "queryString")]
                })
                .collect();
            let mut out = table(&["Query ID", "Query Type", "Status", "Sink Name", "Sink Kafka Topic", "Errors", "Query String"], &rows);
            out.push_str("For detailed information on a Query run: EXPLAIN <Query ID>;\n");
            out
        }
        "kafka_topics" | "kafka_topics_extended" => {
            let list = e.get("topics").and_then(|l| l.as_array()).cloned().unwrap_or_default();
            let parts = |t: &Value| t.get("replicaInfo").and_then(|r| r.as_array()).map(|a| a.len()).unwrap_or(0).to_string();
            if ty == "kafka_topics" {
                let rows: Vec<Vec<String>> = list.iter().map(|t| vec![s(t, "name"), parts(t), "1".into()]).collect();
                table(&["Kafka Topic", "Partitions", "Partition Replicas"], &rows)
            } else {
                let lag = |t: &Value| {
                    t.get("consumerGroups")
                        .and_then(|g| g.as_array())
                        .map(|gs| gs.iter().map(|g| format!("{}={}", s(g, "group"), s(g, "lag"))).collect::<Vec<_>>().join(", "))
                        .unwrap_or_default()
                };
                let rows: Vec<Vec<String>> =
                    list.iter().map(|t| vec![s(t, "name"), parts(t), "1".into(), s(t, "consumerCount"), s(t, "consumerGroupCount"), lag(t)]).collect();
                table(&["Kafka Topic", "Partitions", "Partition Replicas", "Consumers", "ConsumerGroups", "Lag by group"], &rows)
            }
        }
        "sourceDescription" => describe_source(e.get("sourceDescription").unwrap_or(&Value::Null)),
        "source_descriptions" => {
            e.get("sourceDescriptions").and_then(|l| l.as_array()).map(|l| l.iter().map(describe_source).collect::<Vec<_>>().join("\n")).unwrap_or_default()
        }
        "queryDescription" => {
            let q = e.get("queryDescription").unwrap_or(&Value::Null);
            let mut out = format!("\n{:<21}: {}\n{:<21}: {}\n", "ID", s(q, "id"), "SQL", s(q, "statementText"));
            out.push_str(&fields_table(q));
            out.push_str(&format!("\nExecution plan\n--------------\n{}\n", s(q, "executionPlan")));
            out
        }
        "properties" => {
            let list = e.get("properties").and_then(|l| l.as_array()).cloned().unwrap_or_default();
            let rows: Vec<Vec<String>> = list.iter().map(|p| vec![s(p, "name"), s(p, "scope"), s(p, "value")]).collect();
            table(&["Property", "Scope", "Value"], &rows)
        }
        "function_names" => {
            let list = e.get("functions").and_then(|l| l.as_array()).cloned().unwrap_or_default();
            let rows: Vec<Vec<String>> = list.iter().map(|f| vec![s(f, "name"), s(f, "category")]).collect();
            table(&["Function Name", "Category"], &rows)
        }
        "describe_function" => {
            let mut out = format!(
                "\nName        : {}\nType        : {}\nCategory    : {}\nDescription : {}\n",
                s(e, "name"),
                s(e, "type"),
                s(e, "category"),
                s(e, "description")
            );
            for v in e.get("functions").and_then(Value::as_array).into_iter().flatten() {
                out.push_str(&format!("\nVariation   : {}\n", s(v, "synopsis")));
                if !s(v, "returnType").is_empty() {
                    out.push_str(&format!("Returns     : {}\n", s(v, "returnType")));
                }
            }
            out
        }
        "variables" => {
            let list = e.get("variables").and_then(|l| l.as_array()).cloned().unwrap_or_default();
            let rows: Vec<Vec<String>> = list.iter().map(|v| vec![s(v, "name"), s(v, "value")]).collect();
            table(&["Variable Name", "Value"], &rows)
        }
        "assert_topic" => {
            let exists = e.get("exists").and_then(Value::as_bool).unwrap_or(false);
            format!("Topic {} {}\n", s(e, "topicName"), if exists { "exists" } else { "does not exist" })
        }
        "assert_schema" => {
            let exists = e.get("exists").and_then(Value::as_bool).unwrap_or(false);
            let subject = e.get("subject").and_then(Value::as_str).map(|x| format!(" with subject name {x}")).unwrap_or_default();
            let id = e.get("id").and_then(Value::as_u64).map(|x| format!(" id {x}")).unwrap_or_default();
            format!("Schema{subject}{id} {}\n", if exists { "exists" } else { "does not exist" })
        }
        _ => serde_json::to_string_pretty(e).unwrap_or_default(),
    }
}

/// Renders an error body from the server.
pub fn error(e: &Value) -> String {
    let msg = s(e, "message");
    if msg.is_empty() { e.to_string() } else { msg }
}

/// Column widths for streamed rows (unknown values): at least the header, at most 40.
pub fn stream_widths(names: &[String]) -> Vec<usize> {
    names.iter().map(|n| n.chars().count().clamp(12, 40)).collect()
}

pub fn boxed_rule(widths: &[usize]) -> String {
    let mut s = String::from("+");
    for w in widths {
        s.push_str(&"-".repeat(*w));
        s.push('+');
    }
    s
}

/// A row of cells padded to their widths; a longer value is cut with `…` (`output JSON`
/// shows whole values).
pub fn boxed_row(cells: &[String], widths: &[usize]) -> String {
    let mut s = String::from("|");
    for (c, w) in cells.iter().zip(widths) {
        if c.chars().count() > *w {
            let cut: String = c.chars().take(w.saturating_sub(1)).collect();
            s.push_str(&cut);
            s.push('…');
        } else {
            s.push_str(&format!("{c:<w$}", w = *w));
        }
        s.push('|');
    }
    s
}

/// The terminal's width in columns when output goes to a terminal (`COLUMNS`, else the
/// terminal's own size); none when it goes to a pipe or file, which get whole rows.
pub fn terminal_columns() -> Option<usize> {
    // SAFETY: isatty only inspects the descriptor.
    if unsafe { libc::isatty(libc::STDOUT_FILENO) } != 1 {
        return None;
    }
    if let Some(c) = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()) {
        return Some(c);
    }
    // SAFETY: TIOCGWINSZ fills a winsize struct for a terminal; it fails (-1) otherwise.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_col > 0).then_some(ws.ws_col as usize)
}

/// Column widths shrunk, widest first, so a row fits `columns` (no narrower than 4).
pub fn fit_widths(mut widths: Vec<usize>, columns: Option<usize>) -> Vec<usize> {
    let Some(columns) = columns else { return widths };
    let total = |w: &[usize]| w.iter().sum::<usize>() + w.len() + 1;
    while total(&widths) > columns {
        let Some((i, &w)) = widths.iter().enumerate().max_by_key(|(_, w)| **w) else { break };
        if w <= 4 {
            break;
        }
        widths[i] = w - 1;
    }
    widths
}

/// Column names from a header schema like `` `A` STRING, `B` BIGINT ``.
pub fn schema_names(schema: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut depth = 0i32;
    let mut current = String::new();
    for ch in schema.chars() {
        match ch {
            '<' | '(' => depth += 1,
            '>' | ')' => depth -= 1,
            ',' if depth == 0 => {
                names.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(ch);
    }
    if !current.trim().is_empty() {
        names.push(current);
    }
    names
        .iter()
        .map(|n| {
            let n = n.trim();
            if let Some(rest) = n.strip_prefix('`') {
                rest.split('`').next().unwrap_or("").to_string()
            } else {
                n.split_whitespace().next().unwrap_or("").to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_tables_are_padded() {
        let t = table(&["Stream Name", "Kafka Topic"], &[vec!["PAGEVIEWS".into(), "pageviews".into()]]);
        assert_eq!(t, " Stream Name | Kafka Topic \n---------------------------\n PAGEVIEWS   | pageviews   \n---------------------------\n");
    }

    #[test]
    fn schema_names_handle_nested_types() {
        assert_eq!(schema_names("`A` STRING, `B` MAP<STRING, INTEGER>, `c d` BIGINT, `D` DECIMAL(4, 2)"), vec!["A", "B", "c d", "D"]);
    }

    #[test]
    fn rows_fit_the_terminal_and_long_values_are_cut() {
        let widths = fit_widths(vec![40, 12, 40], Some(60));
        assert!(widths.iter().sum::<usize>() + widths.len() < 60, "{widths:?}");
        assert_eq!(boxed_row(&["abcdefgh".into()], &[5]), "|abcd…|");
        assert_eq!(fit_widths(vec![40, 40], None), vec![40, 40]);
    }

    #[test]
    fn assertions_read_as_sentences() {
        let topic = serde_json::json!({"@type": "assert_topic", "topicName": "orders", "exists": true});
        assert_eq!(entity(&topic), "Topic orders exists\n");
        let schema = serde_json::json!({"@type": "assert_schema", "subject": "orders-value", "id": null, "exists": false});
        assert_eq!(entity(&schema), "Schema with subject name orders-value does not exist\n");
    }
}
