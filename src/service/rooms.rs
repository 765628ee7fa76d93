//! Room creation: the initial state events, in the order the Matrix spec gives.

use super::error::{ServiceError, ServiceResult};
use super::{random_string, Service};
use crate::ids::{RoomAliasId, RoomId, UserId};
use crate::store::NewEvent;
use crate::store::Store as _;
use serde_json::{json, Map, Value};

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
}

/// The room's id and alias, if one was made.
pub struct CreatedRoom {
    pub room_id: RoomId,
    pub alias: Option<RoomAliasId>,
}

fn state(sender: &UserId, event_type: &str, state_key: &str, content: Value) -> NewEvent {
    NewEvent {
        sender: sender.clone(),
        event_type: event_type.to_string(),
        state_key: Some(state_key.to_string()),
        content,
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
    /// Creates a room owned by `creator`.
    pub async fn create_room(&self, creator: &UserId, spec: RoomSpec) -> ServiceResult<CreatedRoom> {
        let preset = spec.preset.unwrap_or(if spec.public {
            Preset::PublicChat
        } else {
            Preset::PrivateChat
        });
        for invitee in &spec.invite {
            self.require_local(invitee, "Invitee")?;
            if !self.store.user_exists(invitee)? {
                return Err(ServiceError::not_found(format!(
                    "User {invitee} does not exist on this server"
                )));
            }
        }
        if let Some(over) = &spec.power_level_override {
            if serde_json::from_value::<crate::membership::state::PowerLevels>(Value::Object(over.clone())).is_err() {
                return Err(ServiceError::new(
                    400,
                    "M_BAD_JSON",
                    "power_level_content_override is not valid power levels content",
                ));
            }
        }
        self.limits.invite.check(creator.as_str())?;
        let room_id = RoomId::parse(&format!("!{}:{}", random_string(18), self.server_name))
            .map_err(|e| ServiceError::internal(e.0))?;
        let alias = match &spec.alias_localpart {
            None => None,
            Some(local) => {
                let alias = RoomAliasId::parse(&format!("#{local}:{}", self.server_name)).map_err(|e| {
                    ServiceError::invalid_param(format!("room_alias_name {local:?} does not make a valid alias: {e}"))
                })?;
                if local.contains(':') || local.chars().any(char::is_whitespace) {
                    return Err(ServiceError::invalid_param(format!(
                        "room_alias_name {local:?} may not contain ':' or whitespace"
                    )));
                }
                if self.store.resolve_alias(&alias)?.is_some() {
                    return Err(ServiceError::new(
                        400,
                        "M_ROOM_IN_USE",
                        format!("Room alias {alias} is already taken"),
                    ));
                }
                Some(alias)
            }
        };
        let events = initial_events(creator, preset, alias.as_ref(), &spec);
        let (room, owner) = (room_id.clone(), creator.clone());
        let mut seq = self
            .write(move |store| store.create_room(&room, &owner, &events))
            .await?
            .1;
        if let Some(alias) = &alias {
            // The store needs the room to exist before an alias can point at it.
            // A creation racing for the same alias loses here; its room stays
            // unnamed and unreachable by alias, and the client is told.
            match self.store.set_alias(alias, &room_id)? {
                Some(alias_seq) => seq = seq.max(alias_seq),
                None => {
                    return Err(ServiceError::new(
                        400,
                        "M_ROOM_IN_USE",
                        format!("Room alias {alias} is already taken"),
                    ))
                }
            }
        }
        self.durable(seq).await?;
        Ok(CreatedRoom { room_id, alias })
    }
}

/// create, creator join, power_levels, canonical_alias, join_rules,
/// history_visibility, guest_access, initial_state, name, topic, invites.
fn initial_events(creator: &UserId, preset: Preset, alias: Option<&RoomAliasId>, spec: &RoomSpec) -> Vec<NewEvent> {
    let mut create = spec.creation_content.clone().unwrap_or_default();
    create.insert("creator".into(), json!(creator.as_str()));
    create.insert("room_version".into(), json!("10"));
    let mut events = vec![
        state(creator, "m.room.create", "", Value::Object(create)),
        state(
            creator,
            "m.room.member",
            creator.as_str(),
            json!({"membership": "join", "displayname": creator.localpart()}),
        ),
        state(creator, "m.room.power_levels", "", power_levels(creator, preset, spec)),
    ];
    if let Some(alias) = alias {
        events.push(state(
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
    events.push(state(creator, "m.room.join_rules", "", json!({"join_rule": join_rule})));
    events.push(state(
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
    events.push(state(
        creator,
        "m.room.guest_access",
        "",
        json!({"guest_access": guest}),
    ));
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
