//! The authorization gate: one pure function judges every event the server
//! writes, whatever endpoint proposed it (createRoom's initial events, state
//! `PUT`s, messages and every membership change), against the room's
//! [`AuthState`], in the style of the Matrix authorization rules for room
//! versions 7 to 11; where they differ (which join rules exist, who the
//! creator is) the room's version decides, see [`super::room_version`].
//!
//! The store writes only [`Authorized`] events, and nothing outside this
//! module can make one, so there is no second way into a room. Judging an
//! event also applies it to the auth state, so the events of one write (a
//! whole createRoom) are judged in order, each against what the previous
//! ones left.
//!
//! The membership branch asks the per-action rules in [`super::rules`];
//! everything else follows the spec's list for non-member events.
//!
//! One deliberate difference from the spec: a room's first power-levels
//! event is judged as a change from the implicit levels (creator 100,
//! everyone else 0) instead of being allowed outright, so that createRoom
//! cannot hand out levels above the creator's own.

use super::auth_state::{join_rule_of, membership_of};
pub use super::auth_state::{AuthState, BadState, Create};
use super::limits::{self, LimitError};
use super::restricted::{self, RestrictedJoin};
use super::room_version::{self, RoomVersion};
use super::rules::{self, Decision, RoomView};
use super::state::{JoinRule, Membership, PowerLevels};
use super::third_party::{self, THIRD_PARTY_INVITE};
use crate::ids::{RoomId, UserId};
use serde_json::{Map, Value};

/// The room versions whose rules the gate implements.
pub const SUPPORTED_ROOM_VERSIONS: &[&str] = room_version::SUPPORTED;
/// The version `createRoom` uses when asked for none.
pub const DEFAULT_ROOM_VERSION: &str = room_version::DEFAULT;

const CREATE: &str = "m.room.create";
const MEMBER: &str = "m.room.member";
const POWER_LEVELS: &str = "m.room.power_levels";
const JOIN_RULES: &str = "m.room.join_rules";

/// An event the server wants to write, before it is judged.
#[derive(Debug, Clone, PartialEq)]
pub struct ProposedEvent {
    pub sender: UserId,
    pub event_type: String,
    /// `Some` for state events.
    pub state_key: Option<String>,
    pub content: Map<String, Value>,
}

/// An event the gate allowed in one room. Only [`authorize`] makes these.
#[derive(Debug, Clone, PartialEq)]
pub struct Authorized {
    room: RoomId,
    event: ProposedEvent,
}

impl Authorized {
    /// The room the event was judged for.
    pub fn room(&self) -> &RoomId {
        &self.room
    }

    /// The event as it was judged.
    pub fn event(&self) -> &ProposedEvent {
        &self.event
    }

    /// The event itself, for the store to write.
    pub fn into_event(self) -> ProposedEvent {
        self.event
    }
}

/// Why the gate refused an event; each kind has its HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// The rules forbid it: 403 `M_FORBIDDEN`.
    Forbidden(String),
    /// The event is malformed (bad membership, unparseable levels): 400 `M_BAD_JSON`.
    Invalid(String),
    /// The event breaks a size limit: 413 `M_TOO_LARGE`.
    TooLarge(String),
    /// The auth state lacks what the rules need: a bug, 500.
    Internal(String),
}

impl Denial {
    /// The sentence the client is told.
    pub fn message(&self) -> &str {
        match self {
            Self::Forbidden(m) | Self::Invalid(m) | Self::TooLarge(m) | Self::Internal(m) => m,
        }
    }
}

type Judged = Result<(), Denial>;

fn forbidden(decision: Decision) -> Judged {
    match decision {
        Decision::Allowed => Ok(()),
        Decision::Denied(why) => Err(Denial::Forbidden(why)),
    }
}

/// Judges `event` for the room of `state`; if allowed, applies it to
/// `state` and returns it as [`Authorized`]. A denial changes nothing.
pub fn authorize(state: &mut AuthState, event: ProposedEvent) -> Result<Authorized, Denial> {
    limits::check_event(
        state.room().as_str(),
        event.sender.as_str(),
        &event.event_type,
        event.state_key.as_deref(),
        &event.content,
    )
    .map_err(|e| match e {
        LimitError::TooLarge(why) => Denial::TooLarge(why),
        LimitError::Invalid(why) => Denial::Invalid(why),
    })?;
    if event.event_type == CREATE {
        judge_create(state, &event)?;
    } else if state.create().is_none() {
        return Err(Denial::Forbidden(format!(
            "Room {} does not exist yet: its first event must be m.room.create.",
            state.room()
        )));
    } else if event.event_type == MEMBER {
        judge_member(state, &event)?;
    } else {
        judge_other(state, &event)?;
    }
    state.apply(
        &event.sender,
        &event.event_type,
        event.state_key.as_deref(),
        &event.content,
    );
    if let (THIRD_PARTY_INVITE, Some(token)) = (event.event_type.as_str(), event.state_key.as_deref()) {
        state.load_third_party_invite(token, event.sender.clone(), &event.content);
    }
    Ok(Authorized {
        room: state.room().clone(),
        event,
    })
}

/// The create event: first, by a user of the room's server, naming them as
/// creator (before v11; from v11 the sender is the creator), with a room
/// version we implement.
fn judge_create(state: &AuthState, event: &ProposedEvent) -> Judged {
    if state.create().is_some() {
        return Err(Denial::Forbidden(format!(
            "Room {} already exists: m.room.create can only be its first event.",
            state.room()
        )));
    }
    if event.state_key.as_deref() != Some("") {
        return Err(Denial::Invalid("m.room.create must have an empty state key.".into()));
    }
    if event.sender.server_name() != state.room().server_name() {
        return Err(Denial::Forbidden(format!(
            "{} cannot create a room on server {}.",
            event.sender,
            state.room().server_name()
        )));
    }
    let create = Create::from_content(&event.content, &event.sender)
        .map_err(|e| Denial::Invalid(format!("m.room.create: {e}.")))?;
    if create.creator != event.sender {
        return Err(Denial::Forbidden(format!(
            "m.room.create names {} as creator, but {} is sending it.",
            create.creator, event.sender
        )));
    }
    if !SUPPORTED_ROOM_VERSIONS.contains(&create.room_version.as_str()) {
        return Err(Denial::Invalid(format!(
            "Room version {:?} is not supported; supported: {}.",
            create.room_version,
            SUPPORTED_ROOM_VERSIONS.join(", ")
        )));
    }
    Ok(())
}

/// `m.room.member`: the target, the new membership, then the rule for the
/// action it amounts to.
fn judge_member(state: &AuthState, event: &ProposedEvent) -> Judged {
    let key = event
        .state_key
        .as_deref()
        .ok_or_else(|| Denial::Invalid("m.room.member needs a state key naming the user.".into()))?;
    let target = UserId::parse(key).map_err(|e| Denial::Invalid(format!("m.room.member state key: {e}")))?;
    let new = membership_of(&event.content).ok_or_else(|| {
        Denial::Invalid("m.room.member content needs a membership of join, invite, leave, ban or knock.".into())
    })?;
    let sender = &event.sender;
    let sender_m = state.membership(sender).map_err(Denial::Internal)?;
    let target_m = state.membership(&target).map_err(Denial::Internal)?;
    let levels = state.power_levels();
    let room = RoomView {
        join_rule: state.join_rule(),
        power_levels: &levels,
    };
    let version = state.version().ok_or_else(|| {
        Denial::Internal(format!(
            "room {} has a version the gate does not implement",
            state.room()
        ))
    })?;
    match new {
        Membership::Join => {
            let creator = state.create().map(|c| &c.creator);
            if state.only_create() && creator == Some(&target) && *sender == target {
                return Ok(());
            }
            if *sender != target {
                return Err(Denial::Forbidden(format!(
                    "Cannot force another user to join: {sender} cannot join {target} to the room."
                )));
            }
            judge_join(state, version, room, event, sender_m)
        }
        Membership::Invite => match event.content.get("third_party_invite") {
            Some(tpi) => {
                let token = tpi.pointer("/signed/token").and_then(Value::as_str).unwrap_or_default();
                let pending = state.third_party_invite(token);
                forbidden(third_party::may_invite_by_third_party(
                    sender, &target, target_m, tpi, pending,
                ))
            }
            None => forbidden(rules::may_invite(room, sender, sender_m, &target, target_m)),
        },
        Membership::Leave if *sender == target => forbidden(rules::may_leave(sender_m)),
        Membership::Leave if target_m == Some(Membership::Ban) => {
            forbidden(rules::may_unban(room, sender, sender_m, &target, target_m))
        }
        Membership::Leave => forbidden(rules::may_kick(room, sender, sender_m, &target, target_m)),
        Membership::Ban => forbidden(rules::may_ban(room, sender, sender_m, &target, target_m)),
        Membership::Knock => judge_knock(version, state.join_rule(), sender, sender_m, &target),
    }
}

/// `join_rule` as the spec spells it.
fn rule_name(rule: JoinRule) -> String {
    serde_json::to_value(rule)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A join of the sender themself: a join rule the room's version does not
/// know lets nobody in; `restricted` and `knock_restricted` follow their
/// own rule; the others the plain join rule.
fn judge_join(
    state: &AuthState,
    version: RoomVersion,
    room: RoomView<'_>,
    event: &ProposedEvent,
    sender_m: Option<Membership>,
) -> Judged {
    let sender = &event.sender;
    if !version.knows(room.join_rule) {
        return Err(Denial::Forbidden(format!(
            "Nobody can join this room: its join rule {} does not exist in room version {}.",
            rule_name(room.join_rule),
            version.as_str()
        )));
    }
    if !room.join_rule.is_restricted() {
        return forbidden(rules::may_join(room, sender, sender_m));
    }
    // Invited or joined users do not need the allow list, nor an authoriser.
    let needs_allow = !matches!(sender_m, Some(Membership::Join | Membership::Invite | Membership::Ban));
    let in_allowed_room = if needs_allow {
        state.in_allowed_room(sender).map_err(Denial::Internal)?
    } else {
        false
    };
    let authoriser = restricted::authoriser_of(&event.content).map_err(Denial::Invalid)?;
    let authoriser = match &authoriser {
        Some(user) if needs_allow => Some((user, state.membership(user).map_err(Denial::Internal)?)),
        _ => None,
    };
    forbidden(restricted::may_join_restricted(
        room,
        sender,
        RestrictedJoin {
            current: sender_m,
            in_allowed_room,
            authoriser,
            server: state.room().server_name(),
        },
    ))
}

/// Knocking: only where the join rule asks for it (and the room's version
/// knows that rule), only for oneself, and not by someone already banned,
/// invited or joined.
fn judge_knock(
    version: RoomVersion,
    join_rule: JoinRule,
    sender: &UserId,
    sender_m: Option<Membership>,
    target: &UserId,
) -> Judged {
    if !matches!(join_rule, JoinRule::Knock | JoinRule::KnockRestricted) {
        return Err(Denial::Forbidden(format!(
            "You cannot knock on this room: its join rule is {}.",
            rule_name(join_rule)
        )));
    }
    if !version.knows(join_rule) {
        return Err(Denial::Forbidden(format!(
            "You cannot knock on this room: its join rule {} does not exist in room version {}.",
            rule_name(join_rule),
            version.as_str()
        )));
    }
    if sender != target {
        return Err(Denial::Forbidden(format!(
            "{sender} cannot knock on behalf of {target}."
        )));
    }
    match sender_m {
        Some(m @ (Membership::Ban | Membership::Invite | Membership::Join)) => Err(Denial::Forbidden(format!(
            "You cannot knock: your membership is already {}.",
            m.as_str()
        ))),
        _ => Ok(()),
    }
}

/// Every other event: the sender must be joined and reach the event's
/// level; state events follow the state rules, power levels the change rules.
fn judge_other(state: &AuthState, event: &ProposedEvent) -> Judged {
    let sender = &event.sender;
    let sender_m = state.membership(sender).map_err(Denial::Internal)?;
    let levels = state.power_levels();
    let room = RoomView {
        join_rule: state.join_rule(),
        power_levels: &levels,
    };
    let Some(key) = event.state_key.as_deref() else {
        return forbidden(rules::may_send_message(room, sender, sender_m, &event.event_type));
    };
    if event.event_type == THIRD_PARTY_INVITE {
        return forbidden(third_party::may_send_third_party_invite(room, sender, sender_m));
    }
    let new_levels = if event.event_type == POWER_LEVELS {
        Some(parse_power_levels(&event.content)?)
    } else {
        None
    };
    if event.event_type == JOIN_RULES && join_rule_of(&event.content).is_none() {
        return Err(Denial::Invalid(
            "m.room.join_rules needs a join_rule of public, invite, knock, private, restricted or knock_restricted."
                .into(),
        ));
    }
    forbidden(rules::may_send_state(
        room,
        sender,
        sender_m,
        &event.event_type,
        key,
        new_levels.as_ref(),
    ))
}

/// Power-levels content as the rules read it: integer levels, and `users`
/// keyed by valid user ids.
fn parse_power_levels(content: &Map<String, Value>) -> Result<PowerLevels, Denial> {
    let levels: PowerLevels = serde_json::from_value(Value::Object(content.clone()))
        .map_err(|e| Denial::Invalid(format!("m.room.power_levels content is invalid: {e}")))?;
    if let Some(bad) = levels.users.keys().find(|u| UserId::parse(u).is_err()) {
        return Err(Denial::Invalid(format!(
            "m.room.power_levels users has the key {bad:?}, which is not a user id."
        )));
    }
    Ok(levels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ROOM: &str = "!room:example.org";
    const ALICE: &str = "@alice:example.org";
    const BOB: &str = "@bob:example.org";
    const CAROL: &str = "@carol:example.org";

    fn user(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    fn event(sender: &str, event_type: &str, state_key: Option<&str>, content: Value) -> ProposedEvent {
        ProposedEvent {
            sender: user(sender),
            event_type: event_type.into(),
            state_key: state_key.map(str::to_string),
            content: content.as_object().cloned().unwrap(),
        }
    }

    fn member(sender: &str, target: &str, membership: &str) -> ProposedEvent {
        event(sender, MEMBER, Some(target), json!({ "membership": membership }))
    }

    fn fresh() -> AuthState {
        let mut s = AuthState::new_room(RoomId::parse(ROOM).unwrap());
        for u in [ALICE, BOB, CAROL] {
            s.load_member(user(u), None);
        }
        s
    }

    /// The events createRoom makes for alice's private room, in order.
    fn private_room() -> Vec<ProposedEvent> {
        vec![
            event(ALICE, CREATE, Some(""), json!({"creator": ALICE, "room_version": "10"})),
            member(ALICE, ALICE, "join"),
            event(
                ALICE,
                POWER_LEVELS,
                Some(""),
                json!({"users": {ALICE: 100}, "state_default": 50, "invite": 0}),
            ),
            event(ALICE, JOIN_RULES, Some(""), json!({"join_rule": "invite"})),
            event(
                ALICE,
                "m.room.history_visibility",
                Some(""),
                json!({"history_visibility": "shared"}),
            ),
        ]
    }

    /// Judges `events` in order; returns the index and denial of the first refused one.
    fn judge_all(state: &mut AuthState, events: Vec<ProposedEvent>) -> Result<usize, (usize, Denial)> {
        let n = events.len();
        for (i, e) in events.into_iter().enumerate() {
            authorize(state, e).map_err(|d| (i, d))?;
        }
        Ok(n)
    }

    /// One createRoom extra (an `initial_state` entry or an invite) after the
    /// preset's events, and what the gate must say about it.
    struct Case {
        name: &'static str,
        extra: ProposedEvent,
        expected: Result<(), &'static str>,
    }

    #[test]
    fn create_room_events_table() {
        let cases = [
            Case {
                name: "force-join another user",
                extra: member(ALICE, BOB, "join"),
                expected: Err("Cannot force another user to join"),
            },
            Case {
                name: "a second create event",
                extra: event(ALICE, CREATE, Some(""), json!({"creator": BOB, "room_version": "1"})),
                expected: Err("m.room.create can only be its first event"),
            },
            Case {
                name: "invite the creator",
                extra: member(ALICE, ALICE, "invite"),
                expected: Err("cannot invite yourself"),
            },
            Case {
                name: "power levels above the sender's own",
                extra: event(ALICE, POWER_LEVELS, Some(""), json!({"users": {ALICE: 100, BOB: 150}})),
                expected: Err("above your power level 100"),
            },
            Case {
                name: "a ban level above the sender's own",
                extra: event(
                    ALICE,
                    POWER_LEVELS,
                    Some(""),
                    json!({"users": {ALICE: 100}, "ban": 101}),
                ),
                expected: Err("above your power level 100"),
            },
            Case {
                name: "ban by the creator",
                extra: member(ALICE, BOB, "ban"),
                expected: Ok(()),
            },
            Case {
                name: "invite by the creator",
                extra: member(ALICE, BOB, "invite"),
                expected: Ok(()),
            },
            Case {
                name: "a topic",
                extra: event(ALICE, "m.room.topic", Some(""), json!({"topic": "hi"})),
                expected: Ok(()),
            },
            Case {
                name: "a state key naming another user",
                extra: event(ALICE, "m.custom", Some(BOB), json!({})),
                expected: Err("only that user may send it"),
            },
            Case {
                name: "a member event without membership",
                extra: event(ALICE, MEMBER, Some(BOB), json!({})),
                expected: Err("needs a membership"),
            },
            Case {
                name: "a join rule nobody knows",
                extra: event(ALICE, JOIN_RULES, Some(""), json!({"join_rule": "everyone"})),
                expected: Err("needs a join_rule"),
            },
            Case {
                name: "an event sent in the name of someone outside the room",
                extra: event(BOB, "m.room.topic", Some(""), json!({"topic": "mine"})),
                expected: Err("You are not in the room"),
            },
        ];
        for case in cases {
            let mut state = fresh();
            let mut events = private_room();
            events.push(case.extra);
            let got = judge_all(&mut state, events);
            match (got, case.expected) {
                (Ok(_), Ok(())) => {}
                (Err((i, d)), Err(phrase)) => {
                    assert_eq!(
                        i, 5,
                        "{}: the preset's own events must pass, failed at {i}: {d:?}",
                        case.name
                    );
                    assert!(
                        d.message().contains(phrase),
                        "{}: {d:?} should say {phrase:?}",
                        case.name
                    );
                }
                (got, want) => panic!("{}: expected {want:?}, got {got:?}", case.name),
            }
        }
    }

    #[test]
    fn a_room_starts_with_its_create_event_by_its_creator() {
        let mut s = fresh();
        let err = authorize(&mut s, member(ALICE, ALICE, "join")).unwrap_err();
        assert!(matches!(err, Denial::Forbidden(ref m) if m.contains("first event must be m.room.create")));
        let other_creator = event(ALICE, CREATE, Some(""), json!({"creator": BOB, "room_version": "10"}));
        assert!(matches!(authorize(&mut s, other_creator), Err(Denial::Forbidden(_))));
        let elsewhere = event("@eve:evil.org", CREATE, Some(""), json!({"creator": "@eve:evil.org"}));
        assert!(matches!(authorize(&mut s, elsewhere), Err(Denial::Forbidden(_))));
        let old = event(ALICE, CREATE, Some(""), json!({"creator": ALICE, "room_version": "1"}));
        assert!(matches!(authorize(&mut s, old), Err(Denial::Invalid(ref m)) if m.contains("not supported")));
        assert!(s.create().is_none(), "denials change nothing");
        authorize(&mut s, private_room().remove(0)).unwrap();
        assert_eq!(s.create().unwrap().creator, user(ALICE));
    }

    #[test]
    fn only_the_creator_joins_without_an_invite_right_after_create() {
        let mut s = fresh();
        authorize(&mut s, private_room().remove(0)).unwrap();
        let err = authorize(&mut s, member(BOB, BOB, "join")).unwrap_err();
        assert!(err.message().contains("not invited"), "{err:?}");
        authorize(&mut s, member(ALICE, ALICE, "join")).unwrap();
        assert_eq!(s.membership(&user(ALICE)).unwrap(), Some(Membership::Join));
    }

    #[test]
    fn the_first_power_levels_are_judged_against_the_implicit_ones() {
        // Implicit levels: the creator 100, so handing out 100 is fine and 101 is not.
        let mut s = fresh();
        let mut events = private_room();
        events.truncate(2);
        judge_all(&mut s, events).unwrap();
        let trusted = event(ALICE, POWER_LEVELS, Some(""), json!({"users": {ALICE: 100, BOB: 100}}));
        authorize(&mut s.clone(), trusted).unwrap();
        let above = event(ALICE, POWER_LEVELS, Some(""), json!({"users": {ALICE: 100, BOB: 101}}));
        assert!(matches!(authorize(&mut s, above), Err(Denial::Forbidden(_))));
        let garbage = event(ALICE, POWER_LEVELS, Some(""), json!({"ban": "lots"}));
        assert!(matches!(authorize(&mut s, garbage), Err(Denial::Invalid(_))));
        let bad_user = event(ALICE, POWER_LEVELS, Some(""), json!({"users": {"bob": 1}}));
        assert!(matches!(authorize(&mut s, bad_user), Err(Denial::Invalid(_))));
    }

    #[test]
    fn each_event_is_judged_against_what_the_previous_ones_left() {
        let mut s = fresh();
        let mut events = private_room();
        // The creator lowers their own level, and then may no longer set the topic (50).
        events.push(event(
            ALICE,
            POWER_LEVELS,
            Some(""),
            json!({"users": {ALICE: 10}, "state_default": 50}),
        ));
        events.push(event(ALICE, "m.room.topic", Some(""), json!({"topic": "x"})));
        let (i, d) = judge_all(&mut s, events).unwrap_err();
        assert_eq!(i, 6);
        assert!(d.message().contains("below the 50"), "{d:?}");
    }

    #[test]
    fn membership_changes_map_to_their_rules() {
        let mut s = fresh();
        judge_all(&mut s, private_room()).unwrap();
        authorize(&mut s, member(ALICE, BOB, "invite")).unwrap();
        authorize(&mut s, member(BOB, BOB, "join")).unwrap();
        // Bob (level 0) cannot kick alice; alice kicks bob; then bans and unbans him.
        assert!(authorize(&mut s, member(BOB, ALICE, "leave")).is_err());
        authorize(&mut s, member(ALICE, BOB, "leave")).unwrap();
        authorize(&mut s, member(ALICE, BOB, "ban")).unwrap();
        assert!(authorize(&mut s, member(BOB, BOB, "join"))
            .unwrap_err()
            .message()
            .contains("banned"));
        authorize(&mut s, member(ALICE, BOB, "leave")).unwrap();
        assert_eq!(s.membership(&user(BOB)).unwrap(), Some(Membership::Leave));
        // Knocking needs a knock join rule.
        assert!(authorize(&mut s, member(CAROL, CAROL, "knock")).is_err());
        authorize(
            &mut s,
            event(ALICE, JOIN_RULES, Some(""), json!({"join_rule": "knock"})),
        )
        .unwrap();
        authorize(&mut s, member(CAROL, CAROL, "knock")).unwrap();
        assert!(authorize(&mut s, member(CAROL, BOB, "knock")).is_err());
    }

    /// Alice's private room at `version`, with `join_rules` content, and
    /// bob, carol and dave loaded as never having been members.
    fn room_at(version: &str, join_rules: Value) -> AuthState {
        let mut s = fresh();
        s.load_member(user(DAVE), None);
        let mut events = private_room();
        events[0] = event(
            ALICE,
            CREATE,
            Some(""),
            json!({"creator": ALICE, "room_version": version}),
        );
        events[3] = event(ALICE, JOIN_RULES, Some(""), join_rules);
        judge_all(&mut s, events).unwrap();
        s
    }

    const DAVE: &str = "@dave:example.org";
    const OTHER_ROOM: &str = "!other:example.org";

    fn restricted_rules(rule: &str) -> Value {
        json!({"join_rule": rule, "allow": [{"type": "m.room_membership", "room_id": OTHER_ROOM}]})
    }

    fn in_other_room(s: &mut AuthState, who: &str, joined: bool) {
        let rooms = if joined {
            [RoomId::parse(OTHER_ROOM).unwrap()].into()
        } else {
            Default::default()
        };
        s.load_rooms_of(user(who), rooms);
    }

    fn vouched_join(joiner: &str, authoriser: &str) -> ProposedEvent {
        event(
            joiner,
            MEMBER,
            Some(joiner),
            json!({"membership": "join", "join_authorised_via_users_server": authoriser}),
        )
    }

    #[test]
    fn knocking_needs_a_version_that_knows_the_join_rule() {
        // (version, join rule, may knock)
        let rows = [
            ("7", "knock", true),
            ("10", "knock", true),
            ("11", "knock", true),
            ("7", "invite", false),
            ("9", "knock_restricted", false),
            ("10", "knock_restricted", true),
            ("11", "knock_restricted", true),
            ("10", "restricted", false),
        ];
        for (version, rule, allowed) in rows {
            let mut s = room_at(version, json!({"join_rule": rule}));
            let got = authorize(&mut s, member(BOB, BOB, "knock"));
            assert_eq!(got.is_ok(), allowed, "knock on {rule} in v{version}: {got:?}");
        }
    }

    #[test]
    fn a_join_rule_the_version_does_not_know_lets_nobody_in_not_even_an_invitee() {
        for (version, rule) in [
            ("7", "restricted"),
            ("8", "knock_restricted"),
            ("9", "knock_restricted"),
        ] {
            let mut s = room_at(version, restricted_rules(rule));
            authorize(&mut s, member(ALICE, BOB, "invite")).unwrap();
            let err = authorize(&mut s, member(BOB, BOB, "join")).unwrap_err();
            assert!(err.message().contains("does not exist in room version"), "{err:?}");
        }
    }

    #[test]
    fn a_member_of_an_allowed_room_joins_a_restricted_room_when_an_inviter_vouches() {
        for (version, rule) in [
            ("8", "restricted"),
            ("9", "restricted"),
            ("10", "knock_restricted"),
            ("11", "restricted"),
        ] {
            let case = format!("{rule} in v{version}");
            let mut s = room_at(version, restricted_rules(rule));
            in_other_room(&mut s, BOB, true);
            in_other_room(&mut s, CAROL, false);
            // Without the key, or vouched by someone who may not invite: refused.
            let bare = authorize(&mut s, member(BOB, BOB, "join")).unwrap_err();
            assert!(bare.message().contains("must name"), "{case}: {bare:?}");
            let err = authorize(&mut s, vouched_join(BOB, DAVE)).unwrap_err();
            assert!(err.message().contains("not joined to the room"), "{case}: {err:?}");
            // Carol is in no allowed room: even alice's word does not let her in.
            let err = authorize(&mut s, vouched_join(CAROL, ALICE)).unwrap_err();
            assert!(
                err.message().contains("not joined to any of the rooms"),
                "{case}: {err:?}"
            );
            authorize(&mut s, vouched_join(BOB, ALICE)).unwrap();
            assert_eq!(s.membership(&user(BOB)).unwrap(), Some(Membership::Join), "{case}");
            // An invitee joins without the key.
            authorize(&mut s, member(ALICE, CAROL, "invite")).unwrap();
            authorize(&mut s, member(CAROL, CAROL, "join")).unwrap();
        }
    }

    #[test]
    fn the_authoriser_needs_the_invite_level() {
        let mut s = room_at("10", restricted_rules("restricted"));
        authorize(&mut s, member(ALICE, BOB, "invite")).unwrap();
        authorize(&mut s, member(BOB, BOB, "join")).unwrap();
        authorize(
            &mut s,
            event(
                ALICE,
                POWER_LEVELS,
                Some(""),
                json!({"users": {ALICE: 100}, "state_default": 50, "invite": 50}),
            ),
        )
        .unwrap();
        in_other_room(&mut s, CAROL, true);
        let err = authorize(&mut s, vouched_join(CAROL, BOB)).unwrap_err();
        assert!(err.message().contains("below the 50 needed to invite"), "{err:?}");
        authorize(&mut s, vouched_join(CAROL, ALICE)).unwrap();
    }

    #[test]
    fn a_restricted_join_whose_rooms_were_not_loaded_is_not_judged() {
        let mut s = room_at("10", restricted_rules("restricted"));
        let err = authorize(&mut s, vouched_join(BOB, ALICE)).unwrap_err();
        assert!(matches!(err, Denial::Internal(_)), "{err:?}");
    }

    #[test]
    fn from_v11_the_create_events_sender_is_the_creator() {
        let mut s = fresh();
        let create = event(ALICE, CREATE, Some(""), json!({"room_version": "11"}));
        authorize(&mut s, create).unwrap();
        assert_eq!(s.create().unwrap().creator, user(ALICE));
        authorize(&mut s, member(ALICE, ALICE, "join")).unwrap();
        // Before v11 the creator key is still required.
        let mut old = fresh();
        let err = authorize(&mut old, event(ALICE, CREATE, Some(""), json!({"room_version": "10"}))).unwrap_err();
        assert!(err.message().contains("no creator"), "{err:?}");
        // A stray creator in a v11 create event is ignored, not believed.
        let mut stray = fresh();
        authorize(
            &mut stray,
            event(ALICE, CREATE, Some(""), json!({"room_version": "11", "creator": BOB})),
        )
        .unwrap();
        assert_eq!(stray.create().unwrap().creator, user(ALICE));
    }

    #[test]
    fn an_event_about_a_user_whose_membership_was_not_loaded_is_not_judged() {
        let mut s = fresh();
        judge_all(&mut s, private_room()).unwrap();
        let err = authorize(&mut s, member(ALICE, "@dave:example.org", "invite")).unwrap_err();
        assert!(matches!(err, Denial::Internal(_)), "{err:?}");
    }

    #[test]
    fn messages_need_membership_and_their_level_and_no_member_or_create_type() {
        let mut s = fresh();
        judge_all(&mut s, private_room()).unwrap();
        authorize(&mut s, event(ALICE, "m.room.message", None, json!({"body": "hi"}))).unwrap();
        assert!(authorize(&mut s, event(BOB, "m.room.message", None, json!({"body": "hi"}))).is_err());
        assert!(matches!(
            authorize(&mut s, event(ALICE, MEMBER, None, json!({"membership": "join"}))),
            Err(Denial::Invalid(_))
        ));
        assert!(matches!(
            authorize(&mut s, event(ALICE, CREATE, None, json!({"creator": ALICE}))),
            Err(Denial::Forbidden(_))
        ));
    }

    #[test]
    fn oversized_events_are_refused_before_any_rule() {
        let mut s = fresh();
        judge_all(&mut s, private_room()).unwrap();
        let big = json!({ "body": "x".repeat(limits::MAX_EVENT_BYTES) });
        let err = authorize(&mut s, event(ALICE, "m.room.message", None, big)).unwrap_err();
        assert!(matches!(err, Denial::TooLarge(_)), "{err:?}");
    }
}
