//! Avro Parsing Canonical Form and the CRC-64-AVRO (Rabin) fingerprint, as the specification
//! defines them: full names, only the attributes that matter for parsing, in a fixed order, and
//! logical types stripped (so `{"type":"long","logicalType":"timestamp-millis"}` becomes `"long"`).

use serde_json::Value;

const PRIMITIVES: &[&str] = &["null", "boolean", "int", "long", "float", "double", "bytes", "string"];
const EMPTY: u64 = 0xc15d_213a_a4d7_a795;

/// The Parsing Canonical Form of a schema given as JSON.
pub fn canonical_form(schema: &Value) -> String {
    let mut out = String::new();
    let mut named = Vec::new();
    write(schema, None, &mut named, &mut out);
    out
}

/// The CRC-64-AVRO fingerprint of a canonical form, as the 8 little-endian bytes that
/// single-object encoding puts on the wire.
pub fn fingerprint(canonical: &str) -> [u8; 8] {
    let table = table();
    let mut fp = EMPTY;
    for &b in canonical.as_bytes() {
        fp = (fp >> 8) ^ table[((fp ^ b as u64) & 0xff) as usize];
    }
    fp.to_le_bytes()
}

fn table() -> [u64; 256] {
    let mut t = [0u64; 256];
    for (i, slot) in t.iter_mut().enumerate() {
        let mut fp = i as u64;
        for _ in 0..8 {
            fp = (fp >> 1) ^ (EMPTY & (fp & 1).wrapping_neg());
        }
        *slot = fp;
    }
    t
}

fn full_name(name: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if !name.contains('.') && !ns.is_empty() => format!("{ns}.{name}"),
        _ => name.to_string(),
    }
}

fn write(schema: &Value, ns: Option<&str>, named: &mut Vec<String>, out: &mut String) {
    match schema {
        Value::String(name) => {
            if PRIMITIVES.contains(&name.as_str()) {
                out.push_str(&Value::String(name.clone()).to_string());
            } else {
                out.push_str(&Value::String(full_name(name, ns)).to_string());
            }
        }
        Value::Array(branches) => {
            out.push('[');
            for (i, b) in branches.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(b, ns, named, out);
            }
            out.push(']');
        }
        Value::Object(obj) => {
            let ty = obj.get("type").and_then(Value::as_str).unwrap_or("");
            match ty {
                "record" | "error" | "enum" | "fixed" => {
                    let name = obj.get("name").and_then(Value::as_str).unwrap_or("");
                    let own_ns = obj.get("namespace").and_then(Value::as_str).or(ns);
                    let full = full_name(name, own_ns);
                    if named.contains(&full) {
                        out.push_str(&Value::String(full).to_string());
                        return;
                    }
                    named.push(full.clone());
                    let inner_ns = full.rsplit_once('.').map(|(n, _)| n.to_string());
                    out.push_str("{\"name\":");
                    out.push_str(&Value::String(full.clone()).to_string());
                    out.push_str(",\"type\":");
                    out.push_str(&Value::String(ty.into()).to_string());
                    match ty {
                        "enum" => {
                            out.push_str(",\"symbols\":");
                            out.push_str(&obj.get("symbols").cloned().unwrap_or_default().to_string());
                        }
                        "fixed" => {
                            out.push_str(",\"size\":");
                            out.push_str(&obj.get("size").cloned().unwrap_or_default().to_string());
                        }
                        _ => {
                            out.push_str(",\"fields\":[");
                            let fields = obj.get("fields").and_then(Value::as_array);
                            for (i, f) in fields.into_iter().flatten().enumerate() {
                                if i > 0 {
                                    out.push(',');
                                }
                                out.push_str("{\"name\":");
                                out.push_str(&f.get("name").cloned().unwrap_or_default().to_string());
                                out.push_str(",\"type\":");
                                write(&f["type"], inner_ns.as_deref(), named, out);
                                out.push('}');
                            }
                            out.push(']');
                        }
                    }
                    out.push('}');
                }
                "array" => {
                    out.push_str("{\"type\":\"array\",\"items\":");
                    write(&obj["items"], ns, named, out);
                    out.push('}');
                }
                "map" => {
                    out.push_str("{\"type\":\"map\",\"values\":");
                    write(&obj["values"], ns, named, out);
                    out.push('}');
                }
                // A primitive in object form, logical type or not, is its bare name.
                other => write(&Value::String(other.to_string()), ns, named, out),
            }
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn logical_types_are_stripped() {
        let s = json!({"type":"record","name":"R","namespace":"a.b","doc":"x","fields":[
            {"name":"t","type":{"type":"long","logicalType":"timestamp-millis"},"default":0},
            {"name":"u","type":["null",{"type":"enum","name":"E","symbols":["X"]}]},
            {"name":"v","type":["null","E"]}]});
        assert_eq!(
            canonical_form(&s),
            r#"{"name":"a.b.R","type":"record","fields":[{"name":"t","type":"long"},{"name":"u","type":["null",{"name":"a.b.E","type":"enum","symbols":["X"]}]},{"name":"v","type":["null","a.b.E"]}]}"#
        );
    }

    #[test]
    fn matches_a_second_implementation() {
        // schemas/fingerprints.json is written by scripts/avro-fingerprints.py with fastavro.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/");
        let vectors: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{dir}fingerprints.json")).unwrap()).unwrap();
        let vectors = vectors.as_object().unwrap();
        assert!(vectors.len() >= 6);
        for (file, want) in vectors {
            let schema: Value =
                serde_json::from_str(&std::fs::read_to_string(format!("{dir}{file}")).unwrap()).unwrap();
            let canonical = canonical_form(&schema);
            assert_eq!(canonical, want["canonical"].as_str().unwrap(), "{file}");
            let hex: String = fingerprint(&canonical).iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex, want["crc64avro"].as_str().unwrap(), "{file}");
        }
    }
}
