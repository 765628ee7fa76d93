//! The part of a room's state the authorization gate reads: the create
//! event, power levels, join rules, and the memberships of the users an
//! event concerns.
//!
//! The store loads it (under the room's write serialization) for exactly the
//! users a write names, so judging an event costs a few point reads whatever
//! the room's size. A user whose membership was not loaded is never guessed
//! at: the gate refuses to judge an event about them.
//!
//! For a join through a `restricted` join rule the gate also needs to know
//! which other rooms the joiner is in; the service supplies that
//! ([`AuthState::load_rooms_of`]), so the gate itself stays free of I/O.

use super::restricted;
use super::room_version::RoomVersion;
use super::state::{JoinRule, Membership, PowerLevels};
use super::third_party::PendingInvite;
use crate::ids::{RoomId, UserId};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// What the gate knows about one room while judging a write.
#[derive(Debug, Clone)]
pub struct AuthState {
    room: RoomId,
    /// `Some` once the room's `m.room.create` exists (stored or in this write).
    create: Option<Create>,
    /// Whether any event follows the create event (the creator's first join
    /// is special only while nothing does).
    after_create: bool,
    power_levels: Option<PowerLevels>,
    join_rule: Option<JoinRule>,
    /// The rooms the join rules' `allow` names (restricted joins).
    allow: Vec<RoomId>,
    members: BTreeMap<UserId, Option<Membership>>,
    /// For users who may join through `allow`: the rooms they are joined to.
    rooms_of: BTreeMap<UserId, BTreeSet<RoomId>>,
    /// The room's `m.room.third_party_invite` events, by token (few per room;
    /// loaded with the rest, kept current by [`AuthState::apply`]).
    third_party_invites: BTreeMap<String, PendingInvite>,
}

/// What the gate reads from `m.room.create`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Create {
    /// `content.creator` before v11, the event's sender from v11 on.
    pub creator: UserId,
    pub room_version: String,
}

/// Stored state the store could not make sense of; the room is damaged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadState(pub String);

impl AuthState {
    /// A room that does not exist yet: its first event must be the create event.
    pub fn new_room(room: RoomId) -> Self {
        AuthState {
            room,
            create: None,
            after_create: false,
            power_levels: None,
            join_rule: None,
            allow: Vec::new(),
            members: BTreeMap::new(),
            rooms_of: BTreeMap::new(),
            third_party_invites: BTreeMap::new(),
        }
    }

    /// An existing room, from the contents of its current create (and that
    /// event's sender), power levels and join rules events.
    pub fn existing(
        room: RoomId,
        (create, create_sender): (&Map<String, Value>, &UserId),
        power_levels: Option<&Map<String, Value>>,
        join_rules: Option<&Map<String, Value>>,
    ) -> Result<Self, BadState> {
        let create =
            Create::from_content(create, create_sender).map_err(|e| BadState(format!("{room}: m.room.create: {e}")))?;
        let power_levels = power_levels
            .map(|c| serde_json::from_value::<PowerLevels>(Value::Object(c.clone())))
            .transpose()
            .map_err(|e| BadState(format!("{room}: m.room.power_levels: {e}")))?;
        Ok(AuthState {
            room,
            create: Some(create),
            after_create: true,
            power_levels,
            join_rule: join_rules.and_then(join_rule_of),
            allow: join_rules.map(restricted::allowed_rooms).unwrap_or_default(),
            members: BTreeMap::new(),
            rooms_of: BTreeMap::new(),
            third_party_invites: BTreeMap::new(),
        })
    }

    /// Records a user's current membership (`None`: never a member event).
    pub fn load_member(&mut self, user: UserId, membership: Option<Membership>) {
        self.members.insert(user, membership);
    }

    /// Records the rooms `user` is joined to, for a join through `allow`.
    pub fn load_rooms_of(&mut self, user: UserId, rooms: BTreeSet<RoomId>) {
        self.rooms_of.insert(user, rooms);
    }

    /// The same state with no memberships loaded (for caching it).
    pub fn without_members(&self) -> AuthState {
        AuthState {
            room: self.room.clone(),
            create: self.create.clone(),
            after_create: self.after_create,
            power_levels: self.power_levels.clone(),
            join_rule: self.join_rule,
            allow: self.allow.clone(),
            members: BTreeMap::new(),
            rooms_of: BTreeMap::new(),
            third_party_invites: self.third_party_invites.clone(),
        }
    }

    /// Records one stored `m.room.third_party_invite` (state key `token`).
    pub fn load_third_party_invite(&mut self, token: &str, sender: UserId, content: &Map<String, Value>) {
        self.third_party_invites
            .insert(token.to_string(), PendingInvite::from_content(token, sender, content));
    }

    /// The pending third-party invite with this token, if the room has one.
    pub fn third_party_invite(&self, token: &str) -> Option<&PendingInvite> {
        self.third_party_invites.get(token)
    }

    /// The room being judged.
    pub fn room(&self) -> &RoomId {
        &self.room
    }

    /// The create event's facts, once the room exists.
    pub fn create(&self) -> Option<&Create> {
        self.create.as_ref()
    }

    /// A loaded user's membership; `Err` if the store did not load it.
    pub fn membership(&self, user: &UserId) -> Result<Option<Membership>, String> {
        self.members
            .get(user)
            .copied()
            .ok_or_else(|| format!("the membership of {user} in {} was not loaded", self.room))
    }

    /// The join rule in force (`invite` when the room has none, as the spec says).
    pub fn join_rule(&self) -> JoinRule {
        self.join_rule.unwrap_or(JoinRule::Invite)
    }

    /// The rules of the room's version, once the room exists with one we implement.
    pub fn version(&self) -> Option<RoomVersion> {
        self.create.as_ref().and_then(|c| RoomVersion::parse(&c.room_version))
    }

    /// The rooms the join rules' `allow` names.
    pub fn allowed_rooms(&self) -> &[RoomId] {
        &self.allow
    }

    /// Whether `user` is joined to a room `allow` names; `Err` if the
    /// service did not say which rooms they are in.
    pub fn in_allowed_room(&self, user: &UserId) -> Result<bool, String> {
        let rooms = self.rooms_of.get(user).ok_or_else(|| {
            format!(
                "the rooms {user} is joined to were not loaded for a join to {}",
                self.room
            )
        })?;
        Ok(self.allow.iter().any(|r| rooms.contains(r)))
    }

    /// Whether the room has an `m.room.power_levels` event yet.
    pub fn has_power_levels(&self) -> bool {
        self.power_levels.is_some()
    }

    /// The power levels in force. Without an `m.room.power_levels` event the
    /// spec's implicit levels apply: the creator 100, everyone else 0, and
    /// state events need 0.
    pub fn power_levels(&self) -> std::borrow::Cow<'_, PowerLevels> {
        match &self.power_levels {
            Some(pl) => std::borrow::Cow::Borrowed(pl),
            None => std::borrow::Cow::Owned({
                let mut pl = PowerLevels {
                    state_default: 0,
                    ..PowerLevels::default()
                };
                if let Some(create) = &self.create {
                    pl.users.insert(create.creator.to_string(), 100);
                }
                pl
            }),
        }
    }

    /// Whether the create event is the only event so far.
    pub(super) fn only_create(&self) -> bool {
        self.create.is_some() && !self.after_create
    }

    /// Takes an authorized event into account, so the next event of the same
    /// write is judged against the state it leaves. Only the gate calls this.
    pub(super) fn apply(
        &mut self,
        sender: &UserId,
        event_type: &str,
        state_key: Option<&str>,
        content: &Map<String, Value>,
    ) {
        if self.create.is_some() {
            self.after_create = true;
        }
        let Some(key) = state_key else { return };
        match event_type {
            "m.room.create" => self.create = Create::from_content(content, sender).ok(),
            "m.room.power_levels" => {
                self.power_levels = serde_json::from_value(Value::Object(content.clone())).ok();
            }
            "m.room.join_rules" => {
                self.join_rule = join_rule_of(content);
                self.allow = restricted::allowed_rooms(content);
            }
            "m.room.member" => {
                if let (Ok(user), Some(m)) = (UserId::parse(key), membership_of(content)) {
                    self.members.insert(user, Some(m));
                }
            }
            _ => {}
        }
    }
}

impl Create {
    /// Reads `room_version` (default "1", as the spec says) and the creator:
    /// from v11 on the event's `sender` (any `creator` key is ignored, as
    /// the spec says), before it `content.creator`.
    pub fn from_content(content: &Map<String, Value>, sender: &UserId) -> Result<Self, String> {
        let room_version = match content.get("room_version") {
            None => "1".to_string(),
            Some(Value::String(v)) => v.clone(),
            Some(other) => return Err(format!("room_version {other} is not a string")),
        };
        if RoomVersion::parse(&room_version).is_some_and(RoomVersion::creator_is_sender) {
            return Ok(Create {
                creator: sender.clone(),
                room_version,
            });
        }
        let creator = content
            .get("creator")
            .and_then(Value::as_str)
            .ok_or("it has no creator")?;
        let creator = UserId::parse(creator).map_err(|e| format!("creator: {e}"))?;
        Ok(Create { creator, room_version })
    }
}

/// `content.join_rule`, if it is one we know.
pub fn join_rule_of(content: &Map<String, Value>) -> Option<JoinRule> {
    serde_json::from_value(content.get("join_rule")?.clone()).ok()
}

/// `content.membership`, if it is one we know.
pub fn membership_of(content: &Map<String, Value>) -> Option<Membership> {
    serde_json::from_value(content.get("membership")?.clone()).ok()
}
