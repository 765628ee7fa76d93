//! The parts of room state the membership rules read.

use crate::ids::UserId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A user's membership in a room (`m.room.member` `membership`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Membership {
    Join,
    Invite,
    Leave,
    Ban,
    Knock,
}

impl Membership {
    /// The value as the spec spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Join => "join",
            Self::Invite => "invite",
            Self::Leave => "leave",
            Self::Ban => "ban",
            Self::Knock => "knock",
        }
    }
}

/// `m.room.join_rules` `join_rule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinRule {
    Public,
    Invite,
    Knock,
    Private,
    Restricted,
    KnockRestricted,
}

impl JoinRule {
    /// `restricted` or `knock_restricted`: members of a room the rule's
    /// `allow` names may join without an invite.
    pub fn is_restricted(self) -> bool {
        matches!(self, JoinRule::Restricted | JoinRule::KnockRestricted)
    }
}

/// `m.room.power_levels` content, with the spec's defaults for absent keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowerLevels {
    #[serde(default = "default_50")]
    pub ban: i64,
    #[serde(default = "default_50")]
    pub kick: i64,
    #[serde(default)]
    pub invite: i64,
    #[serde(default = "default_50")]
    pub redact: i64,
    #[serde(default = "default_50")]
    pub state_default: i64,
    #[serde(default)]
    pub events_default: i64,
    #[serde(default)]
    pub users_default: i64,
    #[serde(default)]
    pub users: BTreeMap<String, i64>,
    #[serde(default)]
    pub events: BTreeMap<String, i64>,
}

fn default_50() -> i64 {
    50
}

impl Default for PowerLevels {
    fn default() -> Self {
        serde_json::from_str("{}").expect("empty power levels use defaults")
    }
}

impl PowerLevels {
    /// The level of `user`: their entry in `users`, else `users_default`.
    pub fn user_level(&self, user: &UserId) -> i64 {
        self.users.get(user.as_str()).copied().unwrap_or(self.users_default)
    }

    /// The level needed to send a state event of `event_type`.
    pub fn state_level(&self, event_type: &str) -> i64 {
        self.events.get(event_type).copied().unwrap_or(self.state_default)
    }
}
