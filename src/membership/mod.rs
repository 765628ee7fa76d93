//! Room membership: the state a decision needs, and the pure rules.

pub mod rules;
pub mod state;
