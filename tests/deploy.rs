//! The monitoring files in `deploy/`: the alert rules pass Prometheus's own checker, and every
//! metric they and the Grafana dashboard use is one the code emits and the catalogue describes.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap()
}

/// Every `acd_...` metric name in `text`.
fn metrics_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("acd_") {
        let start = i + at;
        let mut end = start;
        while end < b.len() && (b[end].is_ascii_lowercase() || b[end] == b'_' || b[end].is_ascii_digit()) {
            end += 1;
        }
        let before = start.checked_sub(1).map(|p| b[p]);
        if before.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == b'_')) && end > start + 4 {
            out.insert(text[start..end].to_string());
        }
        i = end.max(start + 1);
    }
    out
}

/// All Rust source of the product.
fn source() -> String {
    let mut text = String::new();
    for dir in ["consumer/src", "producer/src", "core/src"] {
        let mut stack = vec![root().join(dir)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    text.push_str(&std::fs::read_to_string(p).unwrap());
                }
            }
        }
    }
    text
}

#[test]
fn alert_rules_pass_promtool() {
    let file = root().join("deploy/prometheus/alerts.yml");
    match Command::new("promtool").arg("check").arg("rules").arg(&file).output() {
        Ok(out) => assert!(
            out.status.success(),
            "promtool check rules: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => eprintln!("promtool is not installed (Debian package prometheus): alert rules not checked"),
    }
}

#[test]
fn the_dashboard_and_alerts_use_only_emitted_and_documented_metrics() {
    let dashboard: serde_json::Value = serde_json::from_str(&read("deploy/grafana/acd-bridge.json")).unwrap();
    assert!(dashboard["panels"].as_array().unwrap().len() >= 8);
    let used: BTreeSet<String> = metrics_in(&read("deploy/grafana/acd-bridge.json"))
        .into_iter()
        .chain(metrics_in(&read("deploy/prometheus/alerts.yml")))
        .filter(|m| !m.starts_with("acd_bridge"))
        .collect();
    assert!(used.len() >= 10, "{used:?}");
    let code = source();
    let catalogue = read("docs/metrics.md");
    for m in &used {
        let base = m.trim_end_matches("_bucket").trim_end_matches("_sum").trim_end_matches("_count");
        assert!(
            code.contains(&format!("\"{m}\"")) || code.contains(&format!("\"{base}_bucket\"")),
            "{m}: no code emits it"
        );
        assert!(
            catalogue.contains(&format!("`{m}`")) || catalogue.contains(&format!("`{base}_bucket`")),
            "{m}: not in docs/metrics.md"
        );
    }
}
