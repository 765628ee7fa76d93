//! Restricted joins (room versions 8 and later): a `restricted` or
//! `knock_restricted` join rule lets in, without an invite, a user who is
//! joined to one of the rooms its `allow` list names.
//!
//! Over federation a resident server vouches for such a join by naming one
//! of its users with invite power in `join_authorised_via_users_server`;
//! the spec's auth rules then check that user. This server is the only
//! resident server, so it both names the user (see [`choose_authoriser`])
//! and checks the name, and it also checks what the resident server would
//! have checked before vouching: that the joiner really is in an allowed
//! room. Which rooms the joiner is in is a fact the service supplies.

use super::rules::{Decision, RoomView};
use super::state::Membership;
use crate::ids::{RoomId, UserId};
use serde_json::{Map, Value};

/// The member-event content key naming who vouched for a restricted join.
pub const AUTHORISER_KEY: &str = "join_authorised_via_users_server";

/// The rooms `allow` names through `m.room_membership` entries; other
/// entry types, and entries without a valid room id, grant nothing.
pub fn allowed_rooms(join_rules: &Map<String, Value>) -> Vec<RoomId> {
    let Some(Value::Array(allow)) = join_rules.get("allow") else {
        return Vec::new();
    };
    allow
        .iter()
        .filter(|entry| entry.get("type").and_then(Value::as_str) == Some("m.room_membership"))
        .filter_map(|entry| entry.get("room_id")?.as_str())
        .filter_map(|id| RoomId::parse(id).ok())
        .collect()
}

/// `join_authorised_via_users_server` of a member event, if it has one.
pub fn authoriser_of(content: &Map<String, Value>) -> Result<Option<UserId>, String> {
    match content.get(AUTHORISER_KEY) {
        None => Ok(None),
        Some(Value::String(s)) => UserId::parse(s)
            .map(Some)
            .map_err(|e| format!("{AUTHORISER_KEY} is not a user id: {e}")),
        Some(other) => Err(format!("{AUTHORISER_KEY} must be a user id, not {other}")),
    }
}

/// The member to name as authoriser: of the `candidates` (user, membership)
/// on `server`, one who is joined and holds the invite level; the highest
/// level wins, then the smallest user id, so the choice is deterministic.
pub fn choose_authoriser<'a>(
    room: RoomView<'_>,
    server: &str,
    candidates: impl IntoIterator<Item = (&'a UserId, Option<Membership>)>,
) -> Option<UserId> {
    let pl = room.power_levels;
    candidates
        .into_iter()
        .filter(|(u, m)| *m == Some(Membership::Join) && u.server_name() == server)
        .filter(|(u, _)| pl.user_level(u) >= pl.invite)
        .max_by(|(a, _), (b, _)| pl.user_level(a).cmp(&pl.user_level(b)).then_with(|| b.cmp(a)))
        .map(|(u, _)| u.clone())
}

/// What the gate knows about a join through a restricted join rule.
#[derive(Debug, Clone, Copy)]
pub struct RestrictedJoin<'a> {
    /// The joiner's current membership in this room.
    pub current: Option<Membership>,
    /// Whether the joiner is joined to a room `allow` names.
    pub in_allowed_room: bool,
    /// The user the event names in `join_authorised_via_users_server`, and
    /// their membership here.
    pub authoriser: Option<(&'a UserId, Option<Membership>)>,
    /// The room's own server: only its users can vouch here.
    pub server: &'a str,
}

/// The spec's rule for `restricted` / `knock_restricted`: banned users never
/// join; joined or invited ones join as usual; anyone else needs an allowed
/// room's membership and a named authoriser who is joined here and holds the
/// invite level.
pub fn may_join_restricted(room: RoomView<'_>, user: &UserId, join: RestrictedJoin<'_>) -> Decision {
    check(room, user, join).into()
}

fn check(room: RoomView<'_>, user: &UserId, join: RestrictedJoin<'_>) -> Result<(), String> {
    match join.current {
        Some(Membership::Ban) => return Err(format!("{user} is banned from the room.")),
        Some(Membership::Join | Membership::Invite) => return Ok(()),
        _ => {}
    }
    if !join.in_allowed_room {
        return Err(format!(
            "You are not invited to this room, and {user} is not joined to any of the rooms its restricted \
             join rule allows, so you need an invite to join."
        ));
    }
    let Some((authoriser, membership)) = join.authoriser else {
        return Err(format!(
            "A join through the room's restricted join rule must name, in {AUTHORISER_KEY}, a member who may invite."
        ));
    };
    if authoriser.server_name() != join.server {
        return Err(format!(
            "{AUTHORISER_KEY} names {authoriser}, who is not a user of this room's server {}.",
            join.server
        ));
    }
    if membership != Some(Membership::Join) {
        return Err(format!(
            "{AUTHORISER_KEY} names {authoriser}, who is not joined to the room, so they cannot vouch for the join."
        ));
    }
    let pl = room.power_levels;
    let level = pl.user_level(authoriser);
    if level < pl.invite {
        return Err(format!(
            "{AUTHORISER_KEY} names {authoriser}, whose power level {level} is below the {} needed to invite, \
             so they cannot vouch for the join.",
            pl.invite
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::state::{JoinRule, PowerLevels};
    use serde_json::json;
    use std::collections::BTreeMap;

    const SERVER: &str = "example.org";

    fn user(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    fn levels() -> PowerLevels {
        PowerLevels {
            invite: 50,
            users: BTreeMap::from([
                ("@owner:example.org".to_string(), 100),
                ("@mod:example.org".to_string(), 50),
                ("@other:example.org".to_string(), 100),
                ("@far:elsewhere.org".to_string(), 100),
            ]),
            ..PowerLevels::default()
        }
    }

    fn view(pl: &PowerLevels) -> RoomView<'_> {
        RoomView {
            join_rule: JoinRule::Restricted,
            power_levels: pl,
        }
    }

    #[test]
    fn allow_keeps_only_room_membership_entries_with_room_ids() {
        let content = json!({"join_rule": "restricted", "allow": [
            {"type": "m.room_membership", "room_id": "!a:example.org"},
            {"type": "m.room_membership"},
            {"type": "m.room_membership", "room_id": "not a room"},
            {"type": "org.example.other", "room_id": "!b:example.org"},
            "garbage",
        ]});
        let rooms = allowed_rooms(content.as_object().unwrap());
        assert_eq!(rooms, vec![RoomId::parse("!a:example.org").unwrap()]);
        assert!(allowed_rooms(json!({"allow": "x"}).as_object().unwrap()).is_empty());
    }

    #[test]
    fn the_authoriser_is_the_highest_joined_local_member_who_may_invite() {
        let pl = levels();
        let (owner, moderator, other, far, nobody) = (
            user("@owner:example.org"),
            user("@mod:example.org"),
            user("@other:example.org"),
            user("@far:elsewhere.org"),
            user("@nobody:example.org"),
        );
        let join = Some(Membership::Join);
        let candidates = vec![
            (&moderator, join),
            (&other, join),
            (&owner, join),
            (&far, join),
            (&nobody, join),
        ];
        // owner and other are both 100: the smaller id wins, whatever the order.
        assert_eq!(
            choose_authoriser(view(&pl), SERVER, candidates.clone()),
            Some(other.clone())
        );
        let reversed: Vec<_> = candidates.into_iter().rev().collect();
        assert_eq!(choose_authoriser(view(&pl), SERVER, reversed), Some(other.clone()));
        // Someone who left cannot vouch; nor can a level below invite.
        let left = vec![(&other, Some(Membership::Leave)), (&moderator, join)];
        assert_eq!(choose_authoriser(view(&pl), SERVER, left), Some(moderator.clone()));
        assert_eq!(choose_authoriser(view(&pl), SERVER, vec![(&nobody, join)]), None);
        assert_eq!(choose_authoriser(view(&pl), SERVER, vec![(&far, join)]), None);
    }

    #[test]
    fn restricted_join_table() {
        let pl = levels();
        let joiner = user("@joiner:example.org");
        let (owner, nobody, far) = (
            user("@owner:example.org"),
            user("@nobody:example.org"),
            user("@far:elsewhere.org"),
        );
        let join = Some(Membership::Join);
        // (current, in allowed room, authoriser, expected)
        type Row<'a> = (
            Option<Membership>,
            bool,
            Option<(&'a UserId, Option<Membership>)>,
            Result<(), &'static str>,
        );
        let rows: Vec<Row<'_>> = vec![
            (None, true, Some((&owner, join)), Ok(())),
            (Some(Membership::Leave), true, Some((&owner, join)), Ok(())),
            (Some(Membership::Knock), true, Some((&owner, join)), Ok(())),
            (Some(Membership::Invite), false, None, Ok(())),
            (Some(Membership::Join), false, None, Ok(())),
            (Some(Membership::Ban), true, Some((&owner, join)), Err("is banned")),
            (None, false, Some((&owner, join)), Err("not joined to any of the rooms")),
            (None, true, None, Err("must name")),
            (None, true, Some((&nobody, join)), Err("below the 50 needed to invite")),
            (
                None,
                true,
                Some((&owner, Some(Membership::Leave))),
                Err("not joined to the room"),
            ),
            (None, true, Some((&far, join)), Err("not a user of this room's server")),
        ];
        for (current, in_allowed_room, authoriser, expected) in rows {
            let decision = may_join_restricted(
                view(&pl),
                &joiner,
                RestrictedJoin {
                    current,
                    in_allowed_room,
                    authoriser,
                    server: SERVER,
                },
            );
            let case = format!("{current:?}, in allowed room {in_allowed_room}, authoriser {authoriser:?}");
            match (expected, decision.reason()) {
                (Ok(()), None) => {}
                (Err(want), Some(why)) => assert!(why.contains(want), "{case}: {why}"),
                (want, got) => panic!("{case}: expected {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn the_authoriser_key_must_be_a_user_id() {
        let ok = json!({"membership": "join", AUTHORISER_KEY: "@owner:example.org"});
        assert_eq!(
            authoriser_of(ok.as_object().unwrap()).unwrap(),
            Some(user("@owner:example.org"))
        );
        assert_eq!(authoriser_of(json!({}).as_object().unwrap()).unwrap(), None);
        assert!(authoriser_of(json!({AUTHORISER_KEY: "owner"}).as_object().unwrap()).is_err());
        assert!(authoriser_of(json!({AUTHORISER_KEY: 5}).as_object().unwrap()).is_err());
    }
}
