//! A small metrics registry: named counters and gauges with labels, rendered as Prometheus text.
//! Handles are `Arc<AtomicU64>`/`Arc<AtomicI64>` so the hot path pays one atomic add.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone)]
enum Handle {
    Counter(Arc<AtomicU64>),
    Gauge(Arc<AtomicI64>),
}

/// One metric: its help text and its series by label set.
type Family = (String, BTreeMap<String, Handle>);

/// The process's metrics.
#[derive(Default, Clone)]
pub struct Registry {
    inner: Arc<Mutex<BTreeMap<String, Family>>>,
}

fn labels_text(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let parts: Vec<String> =
        labels.iter().map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))).collect();
    format!("{{{}}}", parts.join(","))
}

impl Registry {
    /// A counter; the same name and labels give the same handle.
    pub fn counter(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Arc<AtomicU64> {
        let mut map = self.inner.lock().expect("metrics lock");
        let entry = map.entry(name.to_string()).or_insert_with(|| (help.to_string(), BTreeMap::new()));
        match entry.1.entry(labels_text(labels)).or_insert_with(|| Handle::Counter(Arc::default())) {
            Handle::Counter(c) => c.clone(),
            Handle::Gauge(_) => panic!("metric {name} is a gauge"),
        }
    }

    /// A gauge; the same name and labels give the same handle.
    pub fn gauge(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Arc<AtomicI64> {
        let mut map = self.inner.lock().expect("metrics lock");
        let entry = map.entry(name.to_string()).or_insert_with(|| (help.to_string(), BTreeMap::new()));
        match entry.1.entry(labels_text(labels)).or_insert_with(|| Handle::Gauge(Arc::default())) {
            Handle::Gauge(g) => g.clone(),
            Handle::Counter(_) => panic!("metric {name} is a counter"),
        }
    }

    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        let map = self.inner.lock().expect("metrics lock");
        let mut out = String::new();
        for (name, (help, series)) in map.iter() {
            let kind = match series.values().next() {
                Some(Handle::Gauge(_)) => "gauge",
                _ => "counter",
            };
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, h) in series {
                let v = match h {
                    Handle::Counter(c) => c.load(Ordering::Relaxed) as i64,
                    Handle::Gauge(g) => g.load(Ordering::Relaxed),
                };
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let r = Registry::default();
        r.counter("acd_ingest_records_total", "records", &[("topic", "a\"b")]).fetch_add(3, Ordering::Relaxed);
        r.gauge("acd_ready", "ready", &[]).store(1, Ordering::Relaxed);
        let text = r.render();
        assert!(text.contains("acd_ingest_records_total{topic=\"a\\\"b\"} 3"), "{text}");
        assert!(text.contains("# TYPE acd_ready gauge\nacd_ready 1"), "{text}");
    }
}
