//! Counters for `/metrics`, in Prometheus' text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub uploads_in_flight: AtomicI64,
}

impl Metrics {
    pub fn count(&self, method: &str, status: u16) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((method.to_string(), status)).or_insert(0) += 1;
        }
    }

    pub fn render(&self, blobs: usize) -> String {
        let mut out = String::new();
        out.push_str("# HELP berth_registry_requests_total HTTP requests by method and status.\n");
        out.push_str("# TYPE berth_registry_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((method, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "berth_registry_requests_total{{method=\"{method}\",status=\"{status}\"}} {n}"
                );
            }
        }
        let gauges = [
            (
                "berth_registry_bytes_received_total",
                "counter",
                "Blob and manifest bytes received.",
                self.bytes_in.load(Ordering::Relaxed) as i64,
            ),
            (
                "berth_registry_bytes_sent_total",
                "counter",
                "Blob and manifest bytes sent.",
                self.bytes_out.load(Ordering::Relaxed) as i64,
            ),
            (
                "berth_registry_uploads_in_flight",
                "gauge",
                "Requests writing upload data right now.",
                self.uploads_in_flight.load(Ordering::Relaxed),
            ),
            (
                "berth_registry_blobs",
                "gauge",
                "Blobs in the store.",
                blobs as i64,
            ),
        ];
        for (name, kind, help, v) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.count("GET", 200);
        m.count("GET", 200);
        m.bytes_out.fetch_add(5, Ordering::Relaxed);
        let t = m.render(3);
        assert!(t.contains("berth_registry_requests_total{method=\"GET\",status=\"200\"} 2\n"));
        assert!(t.contains("berth_registry_bytes_sent_total 5\n"));
        assert!(t.contains("berth_registry_blobs 3\n"));
    }
}
