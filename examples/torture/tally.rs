//! The counts of a run, and its one summary line.

/// How many details of one kind a cycle prints before it only counts.
const DETAILS_PER_KIND: usize = 5;

#[derive(Debug, Default)]
pub struct Tally {
    pub cycles: u64,
    /// Every acknowledged change (membership, message, registration), repeats' acknowledgements included.
    pub acked_ops: u64,
    /// Acknowledged changes missing after a restart.
    pub lost_acked_ops: u64,
    /// Acknowledgements that came for the repeat of a request first (a subset of acked_ops).
    pub retry_acks: u64,
    /// Of those, the ones whose change was missing after the restart (a subset of lost_acked_ops).
    pub retry_acks_lost: u64,
    /// Events a sync showed that no longer exist after the restart.
    pub phantom_events: u64,
    /// Events that exist after the restart but never reached a sync resumed from its last token.
    pub undelivered_events: u64,
    /// Sync answers whose token range holds other events after the restart.
    pub changed_windows: u64,
    /// Restarts after which the position is below a token a client was shown.
    pub stream_regressions: u64,
    /// Restarts after which a sync from beyond the position was answered 2xx.
    pub future_tokens_accepted: u64,
    pub restarts_failed: u64,
    /// Answers no correct server gives, found during the load or the checks.
    pub problems: u64,
    /// Printed details per kind in the current cycle.
    shown: std::collections::HashMap<&'static str, usize>,
}

impl Tally {
    /// Prints one violation's detail (the first few of each kind per cycle).
    pub fn detail(&mut self, kind: &'static str, what: impl FnOnce() -> String) {
        let shown = self.shown.entry(kind).or_default();
        *shown += 1;
        if *shown <= DETAILS_PER_KIND {
            eprintln!("    {kind}: {}", what());
        } else if *shown == DETAILS_PER_KIND + 1 {
            eprintln!("    {kind}: … (more in this cycle are only counted)");
        }
    }

    pub fn problem(&mut self, what: String) {
        self.problems += 1;
        self.detail("problem", || what);
    }

    pub fn new_cycle(&mut self) {
        self.shown.clear();
    }

    pub fn violations(&self) -> u64 {
        self.lost_acked_ops
            + self.phantom_events
            + self.undelivered_events
            + self.changed_windows
            + self.stream_regressions
            + self.future_tokens_accepted
            + self.restarts_failed
            + self.problems
    }

    /// A copy of the counts, to print what one cycle added.
    pub fn snapshot(&self) -> [u64; 12] {
        [
            self.cycles,
            self.acked_ops,
            self.lost_acked_ops,
            self.retry_acks,
            self.retry_acks_lost,
            self.phantom_events,
            self.undelivered_events,
            self.changed_windows,
            self.stream_regressions,
            self.future_tokens_accepted,
            self.restarts_failed,
            self.problems,
        ]
    }

    pub fn summary(&self) -> String {
        format!(
            "torture: cycles={} acked_ops={} lost_acked_ops={} retry_acks={} retry_acks_lost={} \
             phantom_events={} undelivered_events={} changed_windows={} stream_regressions={} \
             future_tokens_accepted={} restarts_failed={} problems={} result={}",
            self.cycles,
            self.acked_ops,
            self.lost_acked_ops,
            self.retry_acks,
            self.retry_acks_lost,
            self.phantom_events,
            self.undelivered_events,
            self.changed_windows,
            self.stream_regressions,
            self.future_tokens_accepted,
            self.restarts_failed,
            self.problems,
            if self.violations() == 0 { "PASS" } else { "FAIL" }
        )
    }
}

/// What one cycle added, `name=+n` for the non-zero counts.
pub fn delta(before: &[u64; 12], after: &[u64; 12]) -> String {
    const NAMES: [&str; 12] = [
        "cycles",
        "acked",
        "lost",
        "retry_acks",
        "retry_lost",
        "phantom",
        "undelivered",
        "changed_windows",
        "regressions",
        "future_accepted",
        "restarts_failed",
        "problems",
    ];
    NAMES
        .iter()
        .zip(before.iter().zip(after))
        .skip(1)
        .filter(|(_, (b, a))| a > b)
        .map(|(n, (b, a))| format!("{n}=+{}", a - b))
        .collect::<Vec<_>>()
        .join(" ")
}
