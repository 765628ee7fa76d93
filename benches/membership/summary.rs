//! The issue-9 targets, each judged MET or NOT MET from what this run measured.

use super::history::ReadCost;
use super::soak::Flatness;
use super::stats::ms;

/// Everything the targets are judged on; `None` where the run did not measure it.
#[derive(Default)]
pub struct Figures {
    pub connections: usize,
    /// Soak mode: (intervals, seconds each).
    pub soak: Option<(u32, f64)>,
    pub ops_per_sec: Option<f64>,
    pub p99_us: Option<u64>,
    pub cpu_us_per_op: Option<f64>,
    pub floor_ops_per_sec: Option<f64>,
    pub hwm_kib: Option<u64>,
    pub flatness: Option<Flatness>,
    pub join: Option<(f64, usize)>,
    pub reads: Option<ReadCost>,
    pub compare_ops: Option<f64>,
    pub disk_ratio: Option<f64>,
}

const PEAK_RSS_MIB: f64 = 150.0;

fn verdict(ok: bool) -> &'static str {
    if ok {
        "MET"
    } else {
        "NOT MET"
    }
}

fn row(target: &str, measured: &str, result: &str) {
    println!("{target:<68} {measured:>22}   {result}");
}

/// A row that is judged when measured, else says why not.
fn judged(target: &str, measured: Option<(String, bool)>, unmeasured: &str) {
    match measured {
        Some((m, ok)) => row(target, &m, verdict(ok)),
        None => row(target, "-", unmeasured),
    }
}

pub fn print(f: &Figures) {
    println!("\n== summary against the issue-9 targets ==");
    row("target", "measured", "result");
    let at = if f.connections == 64 {
        String::new()
    } else {
        format!(" (ran at {} connections)", f.connections)
    };
    let mix_unmeasured = "not measured";
    judged(
        &format!(">= 0.6x the floor's ops/s, same run, 64 connections{at}"),
        f.ops_per_sec.zip(f.floor_ops_per_sec).map(|(ours, floor)| {
            let ratio = ours / floor;
            (format!("{ratio:.2}x ({ours:.0} / {floor:.0} ops/s)"), ratio >= 0.6)
        }),
        if f.soak.is_some() {
            "not run (soak mode)"
        } else {
            "not run (--no-floor)"
        },
    );
    judged(
        "p99 latency < 15 ms",
        f.p99_us.map(|p| (ms(p), p < 15_000)),
        mix_unmeasured,
    );
    judged(
        "server CPU <= 100 µs per membership op",
        f.cpu_us_per_op.map(|us| (format!("{us:.0} µs"), us <= 100.0)),
        "not measured (give --server-pid PID with --url)",
    );
    judged(
        "peak server RSS (VmHWM since start, set-up included) <= 150 MiB",
        f.hwm_kib.map(|k| {
            let mib = k as f64 / 1024.0;
            (format!("{mib:.1} MiB"), mib <= PEAK_RSS_MIB)
        }),
        "not measured (give --server-pid PID with --url)",
    );
    if let Some((intervals, secs)) = f.soak {
        let short = if intervals as f64 * secs < 600.0 || secs != 60.0 {
            format!(" (ran {intervals} × {secs} s)")
        } else {
            String::new()
        };
        judged(
            &format!("RSS flat over 10 minutes: last minute's mean within 10% of the second's{short}"),
            f.flatness
                .as_ref()
                .map(|fl| (format!("{:+.1}%", fl.change() * 100.0), fl.flat())),
            "not judged (needs 3 intervals and --server-pid)",
        );
    }
    let skipped = if f.soak.is_some() {
        "not run (soak mode)"
    } else {
        "skipped"
    };
    judged(
        "100,000-member room join p50 within 1.2x the 10-member one",
        f.join.map(|(ratio, members)| {
            let m = if members == 100_000 {
                format!("{ratio:.2}x")
            } else {
                format!("{ratio:.2}x ({members} members)")
            };
            (m, ratio <= 1.2)
        }),
        skipped,
    );
    match &f.reads {
        Some(reads) => {
            for (read, short, long) in &reads.p50s {
                let ratio = *long as f64 / (*short).max(1) as f64;
                let m = if reads.long == 100_000 {
                    format!("{ratio:.2}x")
                } else {
                    format!("{ratio:.2}x ({} events)", reads.long)
                };
                row(
                    &format!("{read} p50, 100,000 vs 100 events, within 1.5x"),
                    &m,
                    verdict(ratio <= 1.5),
                );
            }
        }
        None => row(
            "/messages and /initialSync p50, 100,000 vs 100 events, within 1.5x",
            "-",
            skipped,
        ),
    }
    judged(
        "ops/s >= 100x Synapse's on the same mix",
        f.ops_per_sec
            .zip(f.compare_ops.filter(|s| *s > 0.0))
            .map(|(ours, synapse)| {
                let x = ours / synapse;
                (format!("{x:.1}x (Synapse {synapse:.0})"), x >= 100.0)
            }),
        "not judged (give --compare-ops OPS)",
    );
    judged(
        "data folder <= 3x the logical data",
        f.disk_ratio.map(|r| (format!("{r:.2}x"), r <= 3.0)),
        "not measured (give --data-dir PATH with --url)",
    );
}
