//! Membership changes the service wrote, by action.

use super::register;
use prometheus::{IntCounterVec, Opts, Registry};

/// The actions counted: one per membership endpoint.
pub const ACTIONS: &[&str] = &["join", "invite", "leave", "kick", "ban", "unban", "knock"];

/// Counts written membership events by the action that made them.
pub struct MembershipMetrics {
    changes: IntCounterVec,
}

impl MembershipMetrics {
    pub(super) fn new(registry: &Registry) -> Self {
        let changes = register(
            registry,
            IntCounterVec::new(
                Opts::new(
                    "membership_changes_total",
                    "Membership events written (a repeated join or invite that changes nothing is not counted), by action.",
                ),
                &["action"],
            )
            .expect("valid metric"),
        );
        // Every action shows from the start, at 0, so a rate over it is defined.
        for action in ACTIONS {
            changes.with_label_values(&[action]);
        }
        MembershipMetrics { changes }
    }

    /// Counts `n` membership events written by `action` (one of [`ACTIONS`]).
    pub fn changed(&self, action: &'static str, n: u64) {
        debug_assert!(ACTIONS.contains(&action), "unknown membership action {action}");
        self.changes.with_label_values(&[action]).inc_by(n);
    }
}
