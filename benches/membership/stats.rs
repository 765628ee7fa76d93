//! Latency histograms and error counts.

use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::time::Duration;

/// Latencies in microseconds, 1 µs .. 60 s, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

pub fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record((d.as_micros() as u64).max(1));
}

/// `1.23 ms` from microseconds.
pub fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

/// `p50 … p95 … p99 … max …` of one histogram.
pub fn summary(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return "no samples".into();
    }
    format!(
        "p50 {:>9}  p95 {:>9}  p99 {:>9}  max {:>9}",
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.95)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max())
    )
}

/// Error counts by key (`"403 M_FORBIDDEN"`, `"transport: timeout"`), with one example message each.
#[derive(Default)]
pub struct Errors {
    pub counts: BTreeMap<String, (u64, String)>,
}

impl Errors {
    pub fn add(&mut self, key: String, example: impl FnOnce() -> String) {
        self.counts.entry(key).or_insert_with(|| (0, example())).0 += 1;
    }

    pub fn merge(&mut self, other: Errors) {
        for (key, (n, example)) in other.counts {
            self.counts.entry(key).or_insert((0, example)).0 += n;
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.values().map(|(n, _)| n).sum()
    }

    pub fn print(&self, indent: &str) {
        if self.counts.is_empty() {
            println!("{indent}errors: none");
            return;
        }
        println!("{indent}errors: {} in all", self.total());
        for (key, (n, example)) in &self.counts {
            println!("{indent}  {n:>8} × {key}   e.g. {example}");
        }
    }
}

/// The `q` quantile (0..=1) of raw samples, nearest rank; 0 when there are none.
pub fn percentile(v: &mut [u64], q: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[(((v.len() - 1) as f64) * q).round() as usize]
}
