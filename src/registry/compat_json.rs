//! Whether a JSON Schema (the reader) accepts every document another one (the writer)
//! accepts, as Confluent's registry judges JSON Schema compatibility: types may widen
//! (`integer` to `number`) but not narrow; a property the writer allowed must still be
//! allowed (a closed content model, `additionalProperties: false`, that drops it refuses
//! old documents); a property added where the writer's content model was open may meet
//! old documents holding anything under that name; a newly required property is missing
//! from old documents; enums may gain values, not lose them; items and properties are
//! checked the same way. Local `$ref`s are followed; other keywords are not compared.

use serde_json::Value;

struct Side<'a> {
    root: &'a Value,
}

impl<'a> Side<'a> {
    /// `t` with local `$ref`s followed.
    fn resolve(&self, t: &'a Value) -> &'a Value {
        let mut t = t;
        for _ in 0..32 {
            match t.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')).and_then(|p| self.root.pointer(p)) {
                Some(next) => t = next,
                None => break,
            }
        }
        t
    }
}

/// The JSON types a schema allows; None for any.
fn types(t: &Value) -> Option<Vec<String>> {
    match t.get("type") {
        Some(Value::String(s)) => Some(vec![s.clone()]),
        Some(Value::Array(a)) => Some(a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()),
        _ if t.get("properties").is_some() => Some(vec!["object".into()]),
        _ => None,
    }
}

fn covers(reader: &[String], writer_type: &str) -> bool {
    reader.iter().any(|r| r == writer_type || (r == "number" && writer_type == "integer"))
}

fn alternatives(t: &Value) -> Option<&Vec<Value>> {
    t.get("oneOf").or_else(|| t.get("anyOf")).and_then(Value::as_array)
}

/// Why `reader` does not accept every document `writer` does (empty: it does).
pub fn incompatibilities(reader: &Value, writer: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(&Side { root: reader }, reader, &Side { root: writer }, writer, "#", &mut out, 0);
    out
}

fn walk<'a>(rs: &Side<'a>, r: &'a Value, ws: &Side<'a>, w: &'a Value, path: &str, out: &mut Vec<String>, depth: usize) {
    if depth > 64 {
        return;
    }
    let (r, w) = (rs.resolve(r), ws.resolve(w));
    if r == &Value::Bool(true) || r.as_object().is_some_and(|o| o.is_empty()) {
        return;
    }
    if w == &Value::Bool(false) {
        return;
    }
    // Each alternative the writer allows must be accepted by the reader.
    if let Some(ws_alts) = alternatives(w) {
        for (i, alt) in ws_alts.iter().enumerate() {
            walk(rs, r, ws, alt, &format!("{path}/oneOf/{i}"), out, depth + 1);
        }
        return;
    }
    if let Some(rs_alts) = alternatives(r) {
        let fits = rs_alts.iter().any(|alt| {
            let mut sub = Vec::new();
            walk(rs, alt, ws, w, path, &mut sub, depth + 1);
            sub.is_empty()
        });
        if !fits {
            out.push(format!("{path}: no alternative of the new schema accepts what the old one allowed"));
        }
        return;
    }
    match (types(r), types(w)) {
        (Some(rt), Some(wt)) => {
            for t in &wt {
                if !covers(&rt, t) {
                    out.push(format!("{path}: type {t} is no longer allowed (now {})", rt.join(", ")));
                }
            }
        }
        (Some(rt), None) => out.push(format!("{path}: any type was allowed, now only {}", rt.join(", "))),
        _ => {}
    }
    if let (Some(re), Some(we)) = (r.get("enum").and_then(Value::as_array), w.get("enum").and_then(Value::as_array)) {
        for v in we {
            if !re.contains(v) {
                out.push(format!("{path}: enum value {v} was removed"));
            }
        }
    } else if r.get("enum").is_some() && w.get("enum").is_none() {
        out.push(format!("{path}: an enum now restricts values that were free"));
    }
    if let (Some(ri), Some(wi)) = (r.get("items"), w.get("items")) {
        walk(rs, ri, ws, wi, &format!("{path}/items"), out, depth + 1);
    }
    object(rs, r, ws, w, path, out, depth);
}

fn object<'a>(rs: &Side<'a>, r: &'a Value, ws: &Side<'a>, w: &'a Value, path: &str, out: &mut Vec<String>, depth: usize) {
    let empty = serde_json::Map::new();
    let (rp, wp) = (r.get("properties").and_then(Value::as_object).unwrap_or(&empty), w.get("properties").and_then(Value::as_object).unwrap_or(&empty));
    if rp.is_empty() && wp.is_empty() && r.get("required").is_none() {
        return;
    }
    let closed = |t: &Value| t.get("additionalProperties") == Some(&Value::Bool(false));
    for (name, wt) in wp {
        match rp.get(name) {
            Some(rt) => walk(rs, rt, ws, wt, &format!("{path}/properties/{name}"), out, depth + 1),
            None if closed(r) => out.push(format!("{path}: property {name} was removed from a closed content model")),
            None => {
                if let Some(extra) = r.get("additionalProperties").filter(|a| a.is_object()) {
                    walk(rs, extra, ws, wt, &format!("{path}/properties/{name}"), out, depth + 1);
                }
            }
        }
    }
    for (name, rt) in rp {
        if wp.contains_key(name) || closed(w) {
            continue;
        }
        // Old documents may hold anything under this name.
        if !(rt == &Value::Bool(true) || rt.as_object().is_some_and(|o| o.is_empty())) {
            out.push(format!("{path}: property {name} was added to an open content model"));
        }
    }
    let required = |t: &Value| -> Vec<String> {
        t.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(|v| v.as_str().map(str::to_string)).collect()
    };
    let was_required = required(w);
    for name in required(r) {
        if !was_required.contains(&name) {
            out.push(format!("{path}: property {name} is newly required"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn closed(props: Value) -> Value {
        json!({"type": "object", "properties": props, "additionalProperties": false})
    }

    #[test]
    fn widening_is_allowed_and_narrowing_is_not() {
        assert!(incompatibilities(&json!({"type": "number"}), &json!({"type": "integer"})).is_empty());
        assert_eq!(incompatibilities(&json!({"type": "integer"}), &json!({"type": "number"})).len(), 1);
        assert!(incompatibilities(&json!({"type": "string", "enum": ["a", "b"]}), &json!({"type": "string", "enum": ["a"]})).is_empty());
        assert_eq!(incompatibilities(&json!({"type": "string", "enum": ["a"]}), &json!({"type": "string", "enum": ["a", "b"]})).len(), 1);
        let nullable = json!({"oneOf": [{"type": "null"}, {"type": "string"}]});
        assert!(incompatibilities(&nullable, &json!({"type": "string"})).is_empty());
        assert_eq!(incompatibilities(&json!({"type": "string"}), &nullable).len(), 1);
    }

    #[test]
    fn properties_follow_the_content_model() {
        let a = json!({"a": {"type": "string"}});
        let ab = json!({"a": {"type": "string"}, "b": {"type": "integer"}});
        // Adding to a closed model: old documents never had b.
        assert!(incompatibilities(&closed(ab.clone()), &closed(a.clone())).is_empty());
        // Adding to an open model: old documents may hold anything as b.
        let open = |p: &Value| json!({"type": "object", "properties": p});
        assert_eq!(incompatibilities(&open(&ab), &open(&a)), vec!["#: property b was added to an open content model".to_string()]);
        // Removing from a closed model refuses old documents; from an open one it does not.
        assert_eq!(incompatibilities(&closed(a.clone()), &closed(ab.clone())).len(), 1);
        assert!(incompatibilities(&open(&a), &open(&ab)).is_empty());
        let mut required = closed(ab.clone());
        required["required"] = json!(["b"]);
        assert_eq!(incompatibilities(&required, &closed(a)), vec!["#: property b is newly required".to_string()]);
        let refs = json!({"type": "object", "properties": {"x": {"$ref": "#/definitions/X"}}, "definitions": {"X": {"type": "integer"}}});
        let plain = json!({"type": "object", "properties": {"x": {"type": "string"}}});
        assert_eq!(incompatibilities(&plain, &refs).len(), 1, "refs are followed");
    }
}
