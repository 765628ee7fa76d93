//! Room creation: the initial state events, in the order the Matrix spec gives.

use super::error::{ServiceError, ServiceResult};
use super::membership::{authorize_all, refuse};
use super::{random_string, Service};
use crate::ids::{RoomAliasId, RoomId, UserId};
use crate::membership::auth::{ProposedEvent, DEFAULT_ROOM_VERSION, SUPPORTED_ROOM_VERSIONS};
use crate::membership::room_version::RoomVersion;
use crate::store::{Creation, Plan, RoomWrite, RoomWritten};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

/// `preset` of `/createRoom`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    PrivateChat,
    TrustedPrivateChat,
    PublicChat,
}

/// What `/createRoom` asks for, with identifiers already parsed.
#[derive(Debug, Clone, Default)]
pub struct RoomSpec {
    pub preset: Option<Preset>,
    /// `visibility: public` (directory listing); also picks the default preset.
    pub public: bool,
    pub alias_localpart: Option<String>,
    pub name: Option<String>,
    pub topic: Option<String>,
    pub invite: Vec<UserId>,
    pub power_level_override: Option<Map<String, Value>>,
    /// (type, state_key, content)
    pub initial_state: Vec<(String, String, Value)>,
    pub creation_content: Option<Map<String, Value>>,
    pub is_direct: bool,
    /// `None`: the default version.
    pub room_version: Option<String>,
}

/// The room's id and alias, if one was made.
pub struct CreatedRoom {
    pub room_id: RoomId,
    pub alias: Option<RoomAliasId>,
}

fn state(sender: &UserId, event_type: &str, state_key: &str, content: Value) -> ProposedEvent {
    ProposedEvent {
        sender: sender.clone(),
        event_type: event_type.to_string(),
        state_key: Some(state_key.to_string()),
        content: super::json_object(content),
    }
}

/// Synapse's default power levels: the creator 100; state, ban, kick and
/// redact 50; invite 50 in public rooms and 0 in private ones.
fn power_levels(creator: &UserId, preset: Preset, spec: &RoomSpec) -> Value {
    let mut users = Map::new();
    users.insert(creator.to_string(), json!(100));
    if preset == Preset::TrustedPrivateChat {
        for invitee in &spec.invite {
            users.insert(invitee.to_string(), json!(100));
        }
    }
    let mut content = json!({
        "users": users,
        "users_default": 0,
        "events": {
            "m.room.name": 50,
            "m.room.power_levels": 100,
            "m.room.history_visibility": 100,
            "m.room.canonical_alias": 50,
            "m.room.avatar": 50,
            "m.room.tombstone": 100,
            "m.room.server_acl": 100,
            "m.room.encryption": 100,
        },
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": if preset == Preset::PublicChat { 50 } else { 0 },
    });
    if let (Some(over), Some(obj)) = (&spec.power_level_override, content.as_object_mut()) {
        for (k, v) in over {
            obj.insert(k.clone(), v.clone());
        }
    }
    content
}

impl Service {
    /// Creates a room owned by `creator`: every initial event is judged by
    /// the gate, in order, and the room, its events and its alias are written
    /// in one atomic write, or nothing is.
    pub async fn create_room(&self, creator: &UserId, spec: RoomSpec) -> ServiceResult<CreatedRoom> {
        let preset = spec.preset.unwrap_or(if spec.public {
            Preset::PublicChat
        } else {
            Preset::PrivateChat
        });
        if let Some(version) = spec.room_version.as_deref() {
            if !SUPPORTED_ROOM_VERSIONS.contains(&version) {
                return Err(ServiceError::new(
                    400,
                    "M_UNSUPPORTED_ROOM_VERSION",
                    format!(
                        "Room version {version:?} is not supported; supported: {}",
                        SUPPORTED_ROOM_VERSIONS.join(", ")
                    ),
                ));
            }
        }
        for invitee in &spec.invite {
            self.require_local(invitee, "Invitee")?;
            if !self.store.user_exists(invitee).await? {
                return Err(ServiceError::not_found(format!(
                    "User {invitee} does not exist on this server"
                )));
            }
            self.require_invites_allowed(invitee).await?;
        }
        let room_id = RoomId::parse(&format!("!{}:{}", random_string(18), self.server_name))
            .map_err(|e| ServiceError::internal(e.0))?;
        let alias = match &spec.alias_localpart {
            None => None,
            Some(local) => Some(self.new_alias(local)?),
        };
        let events = initial_events(creator, preset, alias.as_ref(), &spec);
        let users = concerned_users(creator, &events);
        let limits = self.limits.clone();
        let owner = creator.clone();
        let plan: Plan = Box::new(move |auth| {
            let authorized = authorize_all(auth, events)?;
            limits.invite.check(owner.as_str()).map_err(refuse)?;
            Ok(authorized)
        });
        let written = self
            .store
            .write_room(RoomWrite {
                room: room_id.clone(),
                create: Some(Creation { alias: alias.clone() }),
                users,
                txn: None,
                plan,
            })
            .await?;
        if let RoomWritten::Written(events) = &written {
            self.count_member_events(events);
        }
        Ok(CreatedRoom { room_id, alias })
    }

    /// The alias `#local:server` for `room_alias_name`.
    fn new_alias(&self, local: &str) -> ServiceResult<RoomAliasId> {
        if local.contains(':') || local.chars().any(char::is_whitespace) {
            return Err(ServiceError::invalid_param(format!(
                "room_alias_name {local:?} may not contain ':' or whitespace"
            )));
        }
        RoomAliasId::parse(&format!("#{local}:{}", self.server_name)).map_err(|e| {
            ServiceError::invalid_param(format!("room_alias_name {local:?} does not make a valid alias: {e}"))
        })
    }
}

/// Every user whose membership the gate reads for `events`: the senders
/// and whoever a member event names.
fn concerned_users(creator: &UserId, events: &[ProposedEvent]) -> Vec<UserId> {
    let mut users = BTreeSet::from([creator.clone()]);
    for e in events {
        users.insert(e.sender.clone());
        if e.event_type == "m.room.member" {
            if let Some(user) = e.state_key.as_deref().and_then(|k| UserId::parse(k).ok()) {
                users.insert(user);
            }
        }
    }
    users.into_iter().collect()
}

/// create, creator join, power_levels, canonical_alias, join_rules,
/// history_visibility, guest_access, initial_state, name, topic, invites.
/// A preset event whose type and state key `initial_state` also names is
/// left out, as Synapse does: the request's own wins.
fn initial_events(
    creator: &UserId,
    preset: Preset,
    alias: Option<&RoomAliasId>,
    spec: &RoomSpec,
) -> Vec<ProposedEvent> {
    let mut create = spec.creation_content.clone().unwrap_or_default();
    let version = spec.room_version.as_deref().unwrap_or(DEFAULT_ROOM_VERSION);
    // From v11 the create event's sender is the creator and `creator` is gone.
    if RoomVersion::parse(version).is_some_and(RoomVersion::creator_is_sender) {
        create.remove("creator");
    } else {
        create.insert("creator".into(), json!(creator.as_str()));
    }
    create.insert("room_version".into(), json!(version));
    let mut events = vec![
        state(creator, "m.room.create", "", Value::Object(create)),
        state(
            creator,
            "m.room.member",
            creator.as_str(),
            json!({"membership": "join", "displayname": creator.localpart()}),
        ),
    ];
    let overridden: BTreeSet<(&str, &str)> = spec
        .initial_state
        .iter()
        .map(|(t, k, _)| (t.as_str(), k.as_str()))
        .collect();
    let mut preset_state = vec![state(
        creator,
        "m.room.power_levels",
        "",
        power_levels(creator, preset, spec),
    )];
    if let Some(alias) = alias {
        preset_state.push(state(
            creator,
            "m.room.canonical_alias",
            "",
            json!({"alias": alias.as_str()}),
        ));
    }
    let join_rule = if preset == Preset::PublicChat {
        "public"
    } else {
        "invite"
    };
    preset_state.push(state(creator, "m.room.join_rules", "", json!({"join_rule": join_rule})));
    preset_state.push(state(
        creator,
        "m.room.history_visibility",
        "",
        json!({"history_visibility": "shared"}),
    ));
    let guest = if preset == Preset::PublicChat {
        "forbidden"
    } else {
        "can_join"
    };
    preset_state.push(state(
        creator,
        "m.room.guest_access",
        "",
        json!({"guest_access": guest}),
    ));
    events.extend(
        preset_state
            .into_iter()
            .filter(|e| !overridden.contains(&(e.event_type.as_str(), e.state_key.as_deref().unwrap_or("")))),
    );
    for (event_type, key, content) in &spec.initial_state {
        events.push(state(creator, event_type, key, content.clone()));
    }
    if let Some(name) = &spec.name {
        events.push(state(creator, "m.room.name", "", json!({"name": name})));
    }
    if let Some(topic) = &spec.topic {
        events.push(state(creator, "m.room.topic", "", json!({"topic": topic})));
    }
    for invitee in &spec.invite {
        let mut content = json!({"membership": "invite"});
        if spec.is_direct {
            content["is_direct"] = json!(true);
        }
        events.push(state(creator, "m.room.member", invitee.as_str(), content));
    }
    events
}
