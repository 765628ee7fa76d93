//! The membership decisions, one pure function per action.
//!
//! Each rule is a readable function of (sender membership, target membership,
//! join rule, power levels), following the room version 10 authorization rules
//! for `m.room.member` and `m.room.power_levels` (and Synapse's `event_auth`
//! where the spec is silent). Nothing here does I/O: the service layer reads
//! the room, asks a rule, and writes an event only when the rule allows it.
//!
//! Every denial carries one sentence naming the rule that failed, with the
//! user ids and power levels involved; it is returned as `M_FORBIDDEN`.

use super::state::{JoinRule, Membership, PowerLevels};
use crate::ids::UserId;
use std::collections::BTreeSet;

/// The outcome of a membership rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// A precise human sentence; the errcode is `M_FORBIDDEN`.
    Denied(String),
}

impl Decision {
    /// Whether the action may go ahead.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed)
    }

    /// The denial sentence, if the action was denied.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Allowed => None,
            Self::Denied(why) => Some(why),
        }
    }
}

impl From<Result<(), String>> for Decision {
    fn from(outcome: Result<(), String>) -> Self {
        match outcome {
            Ok(()) => Self::Allowed,
            Err(why) => Self::Denied(why),
        }
    }
}

/// What the rules read about a room.
#[derive(Debug, Clone, Copy)]
pub struct RoomView<'a> {
    pub join_rule: JoinRule,
    pub power_levels: &'a PowerLevels,
}

/// Who may read room state / members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAccess {
    /// The user is joined and sees the current state.
    Current,
    /// The user left or was banned and sees the state as of that moment.
    AsOfLeave,
    /// The user was never joined (or is only invited / knocking).
    Denied,
}

/// A rule step: `Err` holds the denial sentence.
type Check = Result<(), String>;

/// `m.room.join_rules` `join_rule` as the spec spells it.
fn rule_name(rule: JoinRule) -> &'static str {
    match rule {
        JoinRule::Public => "public",
        JoinRule::Invite => "invite",
        JoinRule::Knock => "knock",
        JoinRule::Private => "private",
        JoinRule::Restricted => "restricted",
        JoinRule::KnockRestricted => "knock_restricted",
    }
}

/// Why someone who is not joined is not joined, in the second person.
fn your_standing(membership: Option<Membership>) -> &'static str {
    match membership {
        None => "you have never joined it",
        Some(Membership::Leave) => "you have left it",
        Some(Membership::Ban) => "you are banned from it",
        Some(Membership::Invite) => "you are invited but have not joined",
        Some(Membership::Knock) => "you have knocked but have not been let in",
        Some(Membership::Join) => "you are joined",
    }
}

/// The sender must currently be joined to act on the room.
fn require_joined(sender_membership: Option<Membership>, action: &str) -> Check {
    match sender_membership {
        Some(Membership::Join) => Ok(()),
        other => Err(format!(
            "You are not in the room ({}), so you cannot {action}.",
            your_standing(other)
        )),
    }
}

/// The sender's level must reach `needed`.
fn require_level(have: i64, needed: i64, action: &str) -> Check {
    if have < needed {
        Err(format!(
            "Your power level {have} is below the {needed} needed to {action}."
        ))
    } else {
        Ok(())
    }
}

/// The sender's level must be strictly above the target's.
fn require_above(have: i64, target: &UserId, target_level: i64, action: &str) -> Check {
    if have <= target_level {
        Err(format!(
            "Your power level {have} is not above {target}'s {target_level}, so you cannot {action} them."
        ))
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// join
// ---------------------------------------------------------------------------

/// `None` membership means the user never had a member event in the room.
///
/// Banned users never join; joined users "join" idempotently; public rooms let
/// anyone in; every other join rule needs an invite. `private` is treated
/// like `invite`. The gate asks [`super::restricted`] instead for the
/// restricted rules (joins through another room's membership), and refuses
/// a rule the room's version does not know before asking either.
pub fn may_join(room: RoomView<'_>, user: &UserId, current: Option<Membership>) -> Decision {
    check_join(room, user, current).into()
}

fn check_join(room: RoomView<'_>, user: &UserId, current: Option<Membership>) -> Check {
    match current {
        Some(Membership::Ban) => return Err(format!("{user} is banned from the room.")),
        Some(Membership::Join) => return Ok(()),
        _ => {}
    }
    let invited = current == Some(Membership::Invite);
    let rule = rule_name(room.join_rule);
    let knocked = if current == Some(Membership::Knock) {
        " Your knock has not been accepted with an invite yet."
    } else {
        ""
    };
    match room.join_rule {
        JoinRule::Public => Ok(()),
        _ if invited => Ok(()),
        JoinRule::Invite | JoinRule::Knock | JoinRule::Private => Err(format!(
            "You are not invited to this room: its join rule is {rule}, so {user} needs an invite to join.{knocked}"
        )),
        JoinRule::Restricted | JoinRule::KnockRestricted => Err(format!(
            "You are not invited to this room: its join rule is {rule}, so {user} needs an invite, or \
             membership of a room the rule allows, to join.{knocked}"
        )),
    }
}

// ---------------------------------------------------------------------------
// invite
// ---------------------------------------------------------------------------

/// The sender must be joined and hold the invite level; the target must not be
/// joined or banned. Re-inviting an invited user is allowed (and inviting a
/// knocking user accepts the knock).
pub fn may_invite(
    room: RoomView<'_>,
    sender: &UserId,
    sender_membership: Option<Membership>,
    target: &UserId,
    target_membership: Option<Membership>,
) -> Decision {
    check_invite(room, sender, sender_membership, target, target_membership).into()
}

fn check_invite(
    room: RoomView<'_>,
    sender: &UserId,
    sender_membership: Option<Membership>,
    target: &UserId,
    target_membership: Option<Membership>,
) -> Check {
    if sender == target {
        return Err(format!("You cannot invite yourself ({sender})."));
    }
    require_joined(sender_membership, "invite anyone")?;
    match target_membership {
        Some(Membership::Ban) => {
            return Err(format!(
                "{target} is banned from the room, so they cannot be invited until they are unbanned."
            ))
        }
        Some(Membership::Join) => return Err(format!("{target} is already in the room.")),
        None | Some(Membership::Invite | Membership::Leave | Membership::Knock) => {}
    }
    let pl = room.power_levels;
    require_level(pl.user_level(sender), pl.invite, "invite users")
}

// ---------------------------------------------------------------------------
// leave
// ---------------------------------------------------------------------------

/// Leaving one's own membership: allowed from join, from invite (rejecting
/// it) and from knock (withdrawing it).
pub fn may_leave(current: Option<Membership>) -> Decision {
    match current {
        Some(Membership::Join | Membership::Invite | Membership::Knock) => Decision::Allowed,
        None => Decision::Denied("You cannot leave a room you have never been in.".into()),
        Some(Membership::Leave) => Decision::Denied("You have already left the room.".into()),
        Some(Membership::Ban) => Decision::Denied(
            "You are banned from the room, so there is nothing to leave; only an unban can change your membership."
                .into(),
        ),
    }
}

// ---------------------------------------------------------------------------
// kick
// ---------------------------------------------------------------------------

/// Setting another user's membership to leave when they are joined, invited
/// (revoking the invite) or knocking (rejecting the knock). The sender must be
/// joined, hold the kick level, and be above the target.
pub fn may_kick(
    room: RoomView<'_>,
    sender: &UserId,
    sender_membership: Option<Membership>,
    target: &UserId,
    target_membership: Option<Membership>,
) -> Decision {
    check_kick(room, sender, sender_membership, target, target_membership).into()
}

fn check_kick(
    room: RoomView<'_>,
    sender: &UserId,
    sender_membership: Option<Membership>,
    target: &UserId,
    target_membership: Option<Membership>,
) -> Check {
    if sender == target {
        return Err(format!("You cannot kick yourself ({sender}); leave the room instead."));
    }
    require_joined(sender_membership, "kick anyone")?;
    check_kick_target(target, target_membership)?;
    let pl = room.power_levels;
    let mine = pl.user_level(sender);
    require_level(mine, pl.kick, "kick users")?;
    require_above(mine, target, pl.user_level(target), "kick")
}

/// Only someone joined, invited or knocking can be kicked. Also asked by the
/// `/kick` endpoint itself: the gate reads a leave of a banned user as an
/// unban, which `/kick` must not do.
pub fn kick_target(target: &UserId, target_membership: Option<Membership>) -> Decision {
    check_kick_target(target, target_membership).into()
}

fn check_kick_target(target: &UserId, target_membership: Option<Membership>) -> Check {
    match target_membership {
        Some(Membership::Join | Membership::Invite | Membership::Knock) => Ok(()),
        None => Err(format!(
            "{target} has never been in the room, so they cannot be kicked."
        )),
        Some(Membership::Leave) => Err(format!("{target} has already left the room, so they cannot be kicked.")),
        Some(Membership::Ban) => Err(format!(
            "{target} is banned from the room, so they cannot be kicked; unban them instead."
        )),
    }
}

// ---------------------------------------------------------------------------
// ban
// ---------------------------------------------------------------------------

/// The sender must be joined, hold the ban level and be above the target,
/// whatever the target's membership (banning a banned user is idempotent).
pub fn may_ban(
    room: RoomView<'_>,
    sender: &UserId,
    sender_membership: Option<Membership>,
    target: &UserId,
    target_membership: Option<Membership>,
) -> Decision {
    // Any target membership may be banned, including none at all.
    let _ = target_membership;
    check_ban(room, sender, sender_membership, target).into()
}

fn check_ban(room: RoomView<'_>, sender: &UserId, sender_membership: Option<Membership>, target: &UserId) -> Check {
    if sender == target {
        return Err(format!("You cannot ban yourself ({sender})."));
    }
    require_joined(sender_membership, "ban anyone")?;
    let pl = room.power_levels;
    let mine = pl.user_level(sender);
    require_level(mine, pl.ban, "ban users")?;
    require_above(mine, target, pl.user_level(target), "ban")
}

// ---------------------------------------------------------------------------
// unban
// ---------------------------------------------------------------------------

/// Moving a banned user to leave. The sender must be joined and hold the ban
/// level; since the spec treats this as "leave by another user", the sender
/// also needs the kick level and a level above the target.
pub fn may_unban(
    room: RoomView<'_>,
    sender: &UserId,
    sender_membership: Option<Membership>,
    target: &UserId,
    target_membership: Option<Membership>,
) -> Decision {
    check_unban(room, sender, sender_membership, target, target_membership).into()
}

fn check_unban(
    room: RoomView<'_>,
    sender: &UserId,
    sender_membership: Option<Membership>,
    target: &UserId,
    target_membership: Option<Membership>,
) -> Check {
    if sender == target {
        return Err(format!("You cannot unban yourself ({sender})."));
    }
    require_joined(sender_membership, "unban anyone")?;
    check_unban_target(target, target_membership)?;
    let pl = room.power_levels;
    let mine = pl.user_level(sender);
    require_level(mine, pl.ban, "unban users")?;
    require_level(mine, pl.kick, "kick users, which unbanning also requires")?;
    require_above(mine, target, pl.user_level(target), "unban")
}

/// Only a banned user can be unbanned. Also asked by the `/unban` endpoint
/// itself: the gate reads a leave of someone not banned as a kick.
pub fn unban_target(target: &UserId, target_membership: Option<Membership>) -> Decision {
    check_unban_target(target, target_membership).into()
}

fn check_unban_target(target: &UserId, target_membership: Option<Membership>) -> Check {
    if target_membership != Some(Membership::Ban) {
        let state = target_membership.map_or("none", Membership::as_str);
        return Err(format!(
            "{target} is not banned from the room (their membership is {state})."
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// other state events
// ---------------------------------------------------------------------------

const POWER_LEVELS: &str = "m.room.power_levels";

/// Sending a state event other than m.room.member (e.g. m.room.name, m.room.join_rules, m.room.power_levels).
/// `new_power_levels` is Some when event_type is m.room.power_levels (the proposed content).
///
/// The sender must be joined and reach the event type's state level; a state
/// key starting with `@` must be the sender's own id; and a power-levels change
/// must only touch levels the sender can reach (see [`check_power_levels_change`]).
pub fn may_send_state(
    room: RoomView<'_>,
    sender: &UserId,
    sender_membership: Option<Membership>,
    event_type: &str,
    state_key: &str,
    new_power_levels: Option<&PowerLevels>,
) -> Decision {
    check_send_state(room, sender, sender_membership, event_type, state_key, new_power_levels).into()
}

fn check_send_state(
    room: RoomView<'_>,
    sender: &UserId,
    sender_membership: Option<Membership>,
    event_type: &str,
    state_key: &str,
    new_power_levels: Option<&PowerLevels>,
) -> Check {
    let action = format!("send {event_type} state events");
    require_joined(sender_membership, &action)?;
    if state_key.starts_with('@') && state_key != sender.as_str() {
        return Err(format!(
            "The state key {state_key:?} starts with '@', so only that user may send it, and you are {sender}."
        ));
    }
    let pl = room.power_levels;
    require_level(pl.user_level(sender), pl.state_level(event_type), &action)?;
    if event_type == POWER_LEVELS {
        match new_power_levels {
            Some(new) => check_power_levels_change(pl, new, sender)?,
            None => {
                return Err(format!(
                    "The new {POWER_LEVELS} content is missing, so the change cannot be checked."
                ))
            }
        }
    }
    Ok(())
}

/// A level value for messages: `unset` when the entry is absent.
fn show(level: Option<i64>) -> String {
    level.map_or_else(|| "unset".to_string(), |l| l.to_string())
}

/// One added, removed or changed level: neither its old nor its new value may
/// be above the sender's level.
fn check_level_change(what: &str, old: Option<i64>, new: Option<i64>, mine: i64) -> Check {
    if old == new {
        return Ok(());
    }
    let (from, to) = (show(old), show(new));
    if let Some(o) = old.filter(|&o| o > mine) {
        return Err(format!(
            "You cannot change {what} from {from} to {to}: the current value {o} is above your power level {mine}."
        ));
    }
    if let Some(n) = new.filter(|&n| n > mine) {
        return Err(format!(
            "You cannot change {what} from {from} to {to}: the new value {n} is above your power level {mine}."
        ));
    }
    Ok(())
}

/// The room version 10 rules for replacing `old` with `new`, judged at the
/// sender's current (old) level:
/// - every changed top-level level (`ban`, `kick`, `invite`, `redact`,
///   `state_default`, `events_default`, `users_default`) and every added,
///   removed or changed `events` / `users` entry must have both its old and
///   new value at or below the sender's level;
/// - a `users` entry of another user that is changed or removed must currently
///   be below the sender's level.
fn check_power_levels_change(old: &PowerLevels, new: &PowerLevels, sender: &UserId) -> Check {
    let mine = old.user_level(sender);
    let top_level = [
        ("ban", old.ban, new.ban),
        ("kick", old.kick, new.kick),
        ("invite", old.invite, new.invite),
        ("redact", old.redact, new.redact),
        ("state_default", old.state_default, new.state_default),
        ("events_default", old.events_default, new.events_default),
        ("users_default", old.users_default, new.users_default),
    ];
    for (key, o, n) in top_level {
        check_level_change(&format!("the '{key}' level"), Some(o), Some(n), mine)?;
    }

    let event_types: BTreeSet<&String> = old.events.keys().chain(new.events.keys()).collect();
    for event_type in event_types {
        let (o, n) = (old.events.get(event_type).copied(), new.events.get(event_type).copied());
        check_level_change(&format!("the level for {event_type} events"), o, n, mine)?;
    }

    let users: BTreeSet<&String> = old.users.keys().chain(new.users.keys()).collect();
    for user in users {
        let (o, n) = (old.users.get(user).copied(), new.users.get(user).copied());
        if o == n {
            continue;
        }
        check_level_change(&format!("{user}'s power level"), o, n, mine)?;
        if user.as_str() != sender.as_str() {
            if let Some(o) = o.filter(|&o| o >= mine) {
                return Err(format!(
                    "You cannot change {user}'s power level from {o} to {}: their current level {o} is not below \
                     your power level {mine}.",
                    show(n)
                ));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// reading state
// ---------------------------------------------------------------------------

/// Joined users read the current state; users who left or were banned read
/// the state as of that moment; everyone else (never joined, invited,
/// knocking) is denied.
pub fn may_read_state(membership: Option<Membership>) -> ReadAccess {
    match membership {
        Some(Membership::Join) => ReadAccess::Current,
        Some(Membership::Leave | Membership::Ban) => ReadAccess::AsOfLeave,
        None | Some(Membership::Invite | Membership::Knock) => ReadAccess::Denied,
    }
}

// ---------------------------------------------------------------------------
// messages and history
// ---------------------------------------------------------------------------

/// Sending a message (non-state) event of `event_type`.
///
/// The sender must be joined, and their level must reach the room's level
/// for that event type: its `events` entry, else `events_default`.
pub fn may_send_message(
    room: RoomView<'_>,
    sender: &UserId,
    sender_membership: Option<Membership>,
    event_type: &str,
) -> Decision {
    let check = || -> Check {
        let action = format!("send {event_type} events");
        require_joined(sender_membership, &action)?;
        let pl = room.power_levels;
        let needed = pl.events.get(event_type).copied().unwrap_or(pl.events_default);
        require_level(pl.user_level(sender), needed, &action)
    };
    check().into()
}

/// `m.room.history_visibility` `history_visibility`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryVisibility {
    WorldReadable,
    Shared,
    Invited,
    Joined,
}

impl HistoryVisibility {
    /// The setting as the event content spells it; `shared` when absent or unknown, as the spec says.
    pub fn parse(value: Option<&str>) -> Self {
        match value {
            Some("world_readable") => Self::WorldReadable,
            Some("invited") => Self::Invited,
            Some("joined") => Self::Joined,
            _ => Self::Shared,
        }
    }
}

/// The stream positions a user may read: `after < pos`, and `pos <= upto` when `upto` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub after: u64,
    pub upto: Option<u64>,
}

impl Window {
    /// Whether the event at `pos` is inside the window.
    pub fn contains(&self, pos: u64) -> bool {
        pos > self.after && self.upto.is_none_or(|u| pos <= u)
    }
}

/// Which of a room's events a user may read, from the room's history
/// visibility and the user's membership events in the room, oldest first, as
/// (stream position, membership). `None` means none at all.
///
/// - `world_readable`: everything, to anyone.
/// - A joined member: everything under `shared`; from the join (or, under
///   `invited`, from the invite that led to it) under the other settings.
/// - An invitee: from the invite under `invited`, otherwise nothing.
/// - A former member who was joined at some point: as a member would, but
///   only up to the membership change that ended their last join.
/// - Anyone else (never joined, knocking): nothing.
pub fn history_window(visibility: HistoryVisibility, history: &[(u64, Membership)]) -> Option<Window> {
    if visibility == HistoryVisibility::WorldReadable {
        return Some(Window { after: 0, upto: None });
    }
    let (_, current) = *history.last()?;
    // The first entry of the run of `m` entries ending at index `end`.
    let run_start = |end: usize, m: Membership| -> usize {
        let mut i = end;
        while i > 0 && history[i - 1].1 == m {
            i -= 1;
        }
        i
    };
    // Where the member's view starts for a join run starting at `start`.
    let from = |start: usize| -> u64 {
        let pos = match visibility {
            HistoryVisibility::Invited if start > 0 && history[start - 1].1 == Membership::Invite => {
                history[run_start(start - 1, Membership::Invite)].0
            }
            _ => history[start].0,
        };
        match visibility {
            HistoryVisibility::Shared | HistoryVisibility::WorldReadable => 0,
            HistoryVisibility::Invited | HistoryVisibility::Joined => pos.saturating_sub(1),
        }
    };
    let last = history.len() - 1;
    match current {
        Membership::Join => Some(Window {
            after: from(run_start(last, Membership::Join)),
            upto: None,
        }),
        Membership::Invite if visibility == HistoryVisibility::Invited => Some(Window {
            after: history[run_start(last, Membership::Invite)].0.saturating_sub(1),
            upto: None,
        }),
        Membership::Leave | Membership::Ban => {
            let joined = history.iter().rposition(|(_, m)| *m == Membership::Join)?;
            Some(Window {
                after: from(run_start(joined, Membership::Join)),
                upto: history.get(joined + 1).map(|(pos, _)| *pos),
            })
        }
        Membership::Invite | Membership::Knock => None,
    }
}

/// The parts of a room's history a user may read when its history
/// visibility changed over time: each event is judged by the setting in force
/// just before it (`shared` before the first setting) and the user's
/// membership history, through [`history_window`]. `settings` are
/// (position of the event that set it, setting), oldest first. The windows
/// come back oldest first, disjoint; empty means nothing is readable.
pub fn visible_windows(settings: &[(u64, HistoryVisibility)], history: &[(u64, Membership)]) -> Vec<Window> {
    let mut segments: Vec<(Window, HistoryVisibility)> = Vec::new();
    let mut after = 0;
    let mut current = HistoryVisibility::Shared;
    for &(pos, setting) in settings {
        segments.push((Window { after, upto: Some(pos) }, current));
        after = pos;
        current = setting;
    }
    segments.push((Window { after, upto: None }, current));
    let mut out: Vec<Window> = Vec::new();
    for (segment, setting) in segments {
        let Some(w) = history_window(setting, history) else {
            continue;
        };
        let after = segment.after.max(w.after);
        let upto = match (segment.upto, w.upto) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if upto.is_some_and(|u| u <= after) {
            continue;
        }
        match out.last_mut() {
            Some(prev) if prev.upto == Some(after) => prev.upto = upto,
            _ => out.push(Window { after, upto }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use Membership::{Ban, Invite, Join, Knock, Leave};

    const ALICE: &str = "@alice:example.org";
    const BOB: &str = "@bob:example.org";

    const MEMBERSHIPS: [Option<Membership>; 6] = [None, Some(Join), Some(Invite), Some(Leave), Some(Ban), Some(Knock)];
    const RULES: [JoinRule; 6] = [
        JoinRule::Public,
        JoinRule::Invite,
        JoinRule::Knock,
        JoinRule::Private,
        JoinRule::Restricted,
        JoinRule::KnockRestricted,
    ];

    fn alice() -> UserId {
        UserId::parse(ALICE).unwrap()
    }

    fn bob() -> UserId {
        UserId::parse(BOB).unwrap()
    }

    /// A power-level setup: alice is the sender, bob the target.
    #[derive(Debug, Clone, Copy)]
    struct Levels {
        sender: i64,
        target: i64,
        invite: i64,
        kick: i64,
        ban: i64,
    }

    const SETUPS: [Levels; 9] = [
        // Everyone at the defaults.
        Levels {
            sender: 0,
            target: 0,
            invite: 0,
            kick: 50,
            ban: 50,
        },
        // A moderator over a plain user.
        Levels {
            sender: 50,
            target: 0,
            invite: 0,
            kick: 50,
            ban: 50,
        },
        // Two moderators.
        Levels {
            sender: 50,
            target: 50,
            invite: 0,
            kick: 50,
            ban: 50,
        },
        // An admin over a moderator.
        Levels {
            sender: 100,
            target: 50,
            invite: 0,
            kick: 50,
            ban: 50,
        },
        // A plain user against an admin.
        Levels {
            sender: 0,
            target: 100,
            invite: 0,
            kick: 50,
            ban: 50,
        },
        // Invites need a moderator.
        Levels {
            sender: 0,
            target: 0,
            invite: 50,
            kick: 50,
            ban: 50,
        },
        // Kicking is cheap, banning dear.
        Levels {
            sender: 50,
            target: 0,
            invite: 0,
            kick: 0,
            ban: 100,
        },
        // Banning is cheap, kicking dear.
        Levels {
            sender: 50,
            target: 0,
            invite: 0,
            kick: 100,
            ban: 0,
        },
        // Negative levels work like any others.
        Levels {
            sender: -10,
            target: -20,
            invite: -10,
            kick: -10,
            ban: -10,
        },
    ];

    fn power_levels(l: Levels) -> PowerLevels {
        PowerLevels {
            invite: l.invite,
            kick: l.kick,
            ban: l.ban,
            users: BTreeMap::from([(ALICE.to_string(), l.sender), (BOB.to_string(), l.target)]),
            ..PowerLevels::default()
        }
    }

    fn room(join_rule: JoinRule, power_levels: &PowerLevels) -> RoomView<'_> {
        RoomView {
            join_rule,
            power_levels,
        }
    }

    /// Asserts a decision: `Ok` means allowed, `Err(phrase)` a denial whose
    /// message contains `phrase`.
    fn assert_decision(actual: &Decision, expected: Result<(), &str>, case: &str) {
        match (actual, expected) {
            (Decision::Allowed, Ok(())) => {}
            (Decision::Denied(why), Err(phrase)) => {
                assert!(why.contains(phrase), "{case}: denial {why:?} should contain {phrase:?}")
            }
            (actual, expected) => panic!("{case}: expected {expected:?}, got {actual:?}"),
        }
    }

    fn denied(decision: Decision) -> String {
        match decision {
            Decision::Denied(why) => why,
            Decision::Allowed => panic!("expected a denial, got Allowed"),
        }
    }

    // -- exhaustive tables ---------------------------------------------------

    /// The join table from the brief, row by row in priority order.
    fn expected_join(rule: JoinRule, current: Option<Membership>) -> Result<(), &'static str> {
        const NEEDS_INVITE: [JoinRule; 5] = [
            JoinRule::Invite,
            JoinRule::Knock,
            JoinRule::Private,
            JoinRule::Restricted,
            JoinRule::KnockRestricted,
        ];
        const RESTRICTED: [JoinRule; 2] = [JoinRule::Restricted, JoinRule::KnockRestricted];
        if current == Some(Ban) {
            return Err("@alice:example.org is banned from the room");
        }
        if current == Some(Join) || rule == JoinRule::Public || current == Some(Invite) {
            return Ok(());
        }
        assert!(NEEDS_INVITE.contains(&rule));
        if RESTRICTED.contains(&rule) {
            Err("or membership of a room the rule allows")
        } else {
            Err("You are not invited to this room")
        }
    }

    #[test]
    fn join_table_covers_every_membership_and_join_rule() {
        let mut cases = 0;
        for setup in SETUPS {
            let pl = power_levels(setup);
            for rule in RULES {
                for current in MEMBERSHIPS {
                    let actual = may_join(room(rule, &pl), &alice(), current);
                    let case = format!("join {current:?} into {rule:?} with {setup:?}");
                    assert_decision(&actual, expected_join(rule, current), &case);
                    cases += 1;
                }
            }
        }
        assert_eq!(cases, 9 * 6 * 6);
    }

    /// The sender-side rows shared by invite, kick, ban and unban.
    fn sender_not_joined(sender: Option<Membership>) -> bool {
        sender != Some(Join)
    }

    /// Runs `rule` for every sender membership, target membership, join rule
    /// and power-level setup, comparing with `expected`.
    fn run_table(
        action: &str,
        rule: fn(RoomView<'_>, &UserId, Option<Membership>, &UserId, Option<Membership>) -> Decision,
        expected: fn(Option<Membership>, Option<Membership>, Levels) -> Result<(), String>,
    ) -> usize {
        let mut cases = 0;
        for setup in SETUPS {
            let pl = power_levels(setup);
            for join_rule in RULES {
                for sender in MEMBERSHIPS {
                    for target in MEMBERSHIPS {
                        let actual = rule(room(join_rule, &pl), &alice(), sender, &bob(), target);
                        let want = expected(sender, target, setup);
                        let case = format!("{action}: sender {sender:?}, target {target:?}, {join_rule:?}, {setup:?}");
                        assert_decision(&actual, want.as_ref().map(|_| ()).map_err(String::as_str), &case);
                        cases += 1;
                    }
                }
            }
        }
        cases
    }

    #[test]
    fn invite_table_covers_every_combination() {
        fn expected(sender: Option<Membership>, target: Option<Membership>, l: Levels) -> Result<(), String> {
            const INVITABLE: [Option<Membership>; 4] = [None, Some(Invite), Some(Leave), Some(Knock)];
            if sender_not_joined(sender) {
                Err("You are not in the room".into())
            } else if target == Some(Ban) {
                Err(format!("{BOB} is banned from the room"))
            } else if target == Some(Join) {
                Err(format!("{BOB} is already in the room"))
            } else if l.sender < l.invite {
                assert!(INVITABLE.contains(&target));
                Err(format!(
                    "power level {} is below the {} needed to invite",
                    l.sender, l.invite
                ))
            } else {
                Ok(())
            }
        }
        assert_eq!(run_table("invite", may_invite, expected), 9 * 6 * 6 * 6);
    }

    #[test]
    fn kick_table_covers_every_combination() {
        fn expected(sender: Option<Membership>, target: Option<Membership>, l: Levels) -> Result<(), String> {
            const KICKABLE: [Option<Membership>; 3] = [Some(Join), Some(Invite), Some(Knock)];
            if sender_not_joined(sender) {
                Err("You are not in the room".into())
            } else if !KICKABLE.contains(&target) {
                let why = match target {
                    None => "has never been in the room",
                    Some(Leave) => "has already left the room",
                    _ => "is banned from the room",
                };
                Err(format!("{BOB} {why}, so they cannot be kicked"))
            } else if l.sender < l.kick {
                Err(format!(
                    "power level {} is below the {} needed to kick",
                    l.sender, l.kick
                ))
            } else if l.sender <= l.target {
                Err(format!("power level {} is not above {BOB}'s {}", l.sender, l.target))
            } else {
                Ok(())
            }
        }
        assert_eq!(run_table("kick", may_kick, expected), 9 * 6 * 6 * 6);
    }

    #[test]
    fn ban_table_covers_every_combination() {
        fn expected(sender: Option<Membership>, _target: Option<Membership>, l: Levels) -> Result<(), String> {
            if sender_not_joined(sender) {
                Err("You are not in the room".into())
            } else if l.sender < l.ban {
                Err(format!("power level {} is below the {} needed to ban", l.sender, l.ban))
            } else if l.sender <= l.target {
                Err(format!("power level {} is not above {BOB}'s {}", l.sender, l.target))
            } else {
                Ok(())
            }
        }
        assert_eq!(run_table("ban", may_ban, expected), 9 * 6 * 6 * 6);
    }

    #[test]
    fn unban_table_covers_every_combination() {
        fn expected(sender: Option<Membership>, target: Option<Membership>, l: Levels) -> Result<(), String> {
            if sender_not_joined(sender) {
                Err("You are not in the room".into())
            } else if target != Some(Ban) {
                Err(format!("{BOB} is not banned"))
            } else if l.sender < l.ban {
                Err(format!(
                    "power level {} is below the {} needed to unban",
                    l.sender, l.ban
                ))
            } else if l.sender < l.kick {
                Err(format!(
                    "power level {} is below the {} needed to kick",
                    l.sender, l.kick
                ))
            } else if l.sender <= l.target {
                Err(format!("power level {} is not above {BOB}'s {}", l.sender, l.target))
            } else {
                Ok(())
            }
        }
        assert_eq!(run_table("unban", may_unban, expected), 9 * 6 * 6 * 6);
    }

    #[test]
    fn leave_table_covers_every_membership() {
        let table: [(Option<Membership>, Result<(), &str>); 6] = [
            (None, Err("never been in")),
            (Some(Join), Ok(())),
            (Some(Invite), Ok(())),
            (Some(Leave), Err("already left")),
            (Some(Ban), Err("banned")),
            (Some(Knock), Ok(())),
        ];
        for (current, expected) in table {
            assert_decision(&may_leave(current), expected, &format!("leave from {current:?}"));
        }
    }

    #[test]
    fn read_table_covers_every_membership() {
        let table = [
            (None, ReadAccess::Denied),
            (Some(Join), ReadAccess::Current),
            (Some(Invite), ReadAccess::Denied),
            (Some(Leave), ReadAccess::AsOfLeave),
            (Some(Ban), ReadAccess::AsOfLeave),
            (Some(Knock), ReadAccess::Denied),
        ];
        for (membership, expected) in table {
            assert_eq!(may_read_state(membership), expected, "read with {membership:?}");
        }
    }

    #[test]
    fn send_state_table_covers_memberships_keys_and_levels() {
        // (event type, level it needs in the room below)
        let event_types = [
            ("m.room.name", 50),
            ("m.room.topic", 0),
            (POWER_LEVELS, 100),
            ("com.example.x", 50),
        ];
        let state_keys = ["", ALICE, BOB, "not@a.user"];
        let mut cases = 0;
        for sender_level in [0, 50, 100] {
            let mut pl = PowerLevels::default();
            pl.users.insert(ALICE.into(), sender_level);
            pl.events.insert("m.room.topic".into(), 0);
            pl.events.insert(POWER_LEVELS.into(), 100);
            for join_rule in RULES {
                for sender in MEMBERSHIPS {
                    for (event_type, needed) in event_types {
                        for state_key in state_keys {
                            let unchanged = pl.clone();
                            let new = (event_type == POWER_LEVELS).then_some(&unchanged);
                            let actual =
                                may_send_state(room(join_rule, &pl), &alice(), sender, event_type, state_key, new);
                            let expected = if sender_not_joined(sender) {
                                Err("You are not in the room".to_string())
                            } else if state_key == BOB {
                                Err(format!("only that user may send it, and you are {ALICE}"))
                            } else if sender_level < needed {
                                Err(format!(
                                    "power level {sender_level} is below the {needed} needed to send {event_type}"
                                ))
                            } else {
                                Ok(())
                            };
                            let case =
                                format!("{event_type}/{state_key:?} by {sender:?} at {sender_level} in {join_rule:?}");
                            assert_decision(&actual, expected.as_ref().map(|_| ()).map_err(String::as_str), &case);
                            cases += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(cases, 3 * 6 * 6 * 4 * 4);
    }

    /// A room whose power levels event anyone may send, with alice at `mine`.
    fn pl_room_base(mine: i64) -> PowerLevels {
        let mut pl = PowerLevels::default();
        pl.events.insert(POWER_LEVELS.into(), 0);
        pl.users.insert(ALICE.into(), mine);
        pl
    }

    fn send_pl(old: &PowerLevels, new: &PowerLevels) -> Decision {
        may_send_state(
            room(JoinRule::Invite, old),
            &alice(),
            Some(Join),
            POWER_LEVELS,
            "",
            Some(new),
        )
    }

    const LEVEL_VALUES: [Option<i64>; 4] = [None, Some(0), Some(50), Some(100)];

    #[test]
    fn power_levels_table_for_top_level_keys() {
        type Field = fn(&mut PowerLevels) -> &mut i64;
        let fields: [(&str, Field); 7] = [
            ("ban", |p| &mut p.ban),
            ("kick", |p| &mut p.kick),
            ("invite", |p| &mut p.invite),
            ("redact", |p| &mut p.redact),
            ("state_default", |p| &mut p.state_default),
            ("events_default", |p| &mut p.events_default),
            ("users_default", |p| &mut p.users_default),
        ];
        let mut cases = 0;
        for (name, field) in fields {
            for mine in [0, 50, 100] {
                for old_value in [0, 50, 100] {
                    for new_value in [0, 50, 100] {
                        let mut old = pl_room_base(mine);
                        *field(&mut old) = old_value;
                        let mut new = old.clone();
                        *field(&mut new) = new_value;
                        let expected = if old_value == new_value {
                            Ok(())
                        } else if old_value > mine {
                            Err(format!(
                                "the current value {old_value} is above your power level {mine}"
                            ))
                        } else if new_value > mine {
                            Err(format!("the new value {new_value} is above your power level {mine}"))
                        } else {
                            Ok(())
                        };
                        let case = format!("{name}: {old_value} -> {new_value} at {mine}");
                        let actual = send_pl(&old, &new);
                        assert_decision(&actual, expected.as_ref().map(|_| ()).map_err(String::as_str), &case);
                        if let Decision::Denied(why) = &actual {
                            assert!(why.contains(&format!("'{name}'")), "{case}: {why}");
                        }
                        cases += 1;
                    }
                }
            }
        }
        assert_eq!(cases, 7 * 3 * 3 * 3);
    }

    #[test]
    fn power_levels_table_for_event_entries() {
        let mut cases = 0;
        for mine in [0, 50, 100] {
            for old_value in LEVEL_VALUES {
                for new_value in LEVEL_VALUES {
                    let mut old = pl_room_base(mine);
                    let mut new = old.clone();
                    if let Some(v) = old_value {
                        old.events.insert("m.room.name".into(), v);
                    }
                    if let Some(v) = new_value {
                        new.events.insert("m.room.name".into(), v);
                    }
                    let too_high = |v: Option<i64>| v.is_some_and(|v| v > mine);
                    let expected = if old_value != new_value && (too_high(old_value) || too_high(new_value)) {
                        Err("the level for m.room.name events")
                    } else {
                        Ok(())
                    };
                    let case = format!("events m.room.name: {old_value:?} -> {new_value:?} at {mine}");
                    assert_decision(&send_pl(&old, &new), expected, &case);
                    cases += 1;
                }
            }
        }
        assert_eq!(cases, 3 * 4 * 4);
    }

    #[test]
    fn power_levels_table_for_another_users_entry() {
        let mut cases = 0;
        for mine in [0, 50, 100] {
            for old_value in LEVEL_VALUES {
                for new_value in LEVEL_VALUES {
                    let mut old = pl_room_base(mine);
                    let mut new = old.clone();
                    if let Some(v) = old_value {
                        old.users.insert(BOB.into(), v);
                    }
                    if let Some(v) = new_value {
                        new.users.insert(BOB.into(), v);
                    }
                    let above = |v: Option<i64>| v.is_some_and(|v| v > mine);
                    let expected = if old_value == new_value {
                        Ok(())
                    } else if above(old_value) {
                        Err(format!(
                            "the current value {} is above your power level {mine}",
                            old_value.unwrap()
                        ))
                    } else if above(new_value) {
                        Err(format!(
                            "the new value {} is above your power level {mine}",
                            new_value.unwrap()
                        ))
                    } else if old_value.is_some_and(|v| v >= mine) {
                        Err(format!("is not below your power level {mine}"))
                    } else {
                        Ok(())
                    };
                    let case = format!("users {BOB}: {old_value:?} -> {new_value:?} at {mine}");
                    let actual = send_pl(&old, &new);
                    assert_decision(&actual, expected.as_ref().map(|_| ()).map_err(String::as_str), &case);
                    if let Decision::Denied(why) = &actual {
                        assert!(why.contains(BOB), "{case}: {why}");
                    }
                    cases += 1;
                }
            }
        }
        assert_eq!(cases, 3 * 4 * 4);
    }

    #[test]
    fn power_levels_table_for_the_senders_own_entry() {
        for mine in [0, 50, 100] {
            for new_value in LEVEL_VALUES {
                let old = pl_room_base(mine);
                let mut new = old.clone();
                match new_value {
                    Some(v) => new.users.insert(ALICE.into(), v),
                    None => new.users.remove(ALICE),
                };
                let expected = if new_value.is_some_and(|v| v > mine) {
                    Err("the new value")
                } else {
                    Ok(())
                };
                let case = format!("own entry: {mine} -> {new_value:?}");
                assert_decision(&send_pl(&old, &new), expected, &case);
            }
        }
    }

    // -- named rows: join ------------------------------------------------------

    #[test]
    fn banned_user_cannot_join_public_room() {
        let pl = PowerLevels::default();
        let why = denied(may_join(room(JoinRule::Public, &pl), &alice(), Some(Ban)));
        assert_eq!(why, "@alice:example.org is banned from the room.");
    }

    #[test]
    fn joined_user_joining_again_is_allowed_even_in_invite_only_room() {
        let pl = PowerLevels::default();
        assert!(may_join(room(JoinRule::Invite, &pl), &alice(), Some(Join)).is_allowed());
    }

    #[test]
    fn anyone_who_is_not_banned_may_join_a_public_room() {
        let pl = PowerLevels::default();
        for current in [None, Some(Leave), Some(Invite), Some(Knock)] {
            assert!(
                may_join(room(JoinRule::Public, &pl), &alice(), current).is_allowed(),
                "{current:?}"
            );
        }
    }

    #[test]
    fn uninvited_user_cannot_join_invite_only_room() {
        let pl = PowerLevels::default();
        let why = denied(may_join(room(JoinRule::Invite, &pl), &alice(), None));
        assert!(why.starts_with("You are not invited to this room"), "{why}");
        assert!(why.contains("join rule is invite"), "{why}");
    }

    #[test]
    fn invited_user_may_join_invite_only_room() {
        let pl = PowerLevels::default();
        assert!(may_join(room(JoinRule::Invite, &pl), &alice(), Some(Invite)).is_allowed());
    }

    #[test]
    fn knocking_alone_does_not_let_a_user_into_a_knock_room() {
        let pl = PowerLevels::default();
        let why = denied(may_join(room(JoinRule::Knock, &pl), &alice(), Some(Knock)));
        assert!(why.contains("knock has not been accepted"), "{why}");
    }

    #[test]
    fn restricted_room_without_the_allow_path_needs_an_invite() {
        let pl = PowerLevels::default();
        let why = denied(may_join(room(JoinRule::Restricted, &pl), &alice(), Some(Leave)));
        assert!(why.contains("join rule is restricted"), "{why}");
        assert!(why.contains("membership of a room the rule allows"), "{why}");
        assert!(may_join(room(JoinRule::KnockRestricted, &pl), &alice(), Some(Invite)).is_allowed());
    }

    // -- named rows: invite ----------------------------------------------------

    #[test]
    fn reinviting_an_invited_user_is_allowed() {
        let pl = PowerLevels::default();
        assert!(may_invite(room(JoinRule::Invite, &pl), &alice(), Some(Join), &bob(), Some(Invite)).is_allowed());
    }

    #[test]
    fn inviting_a_knocking_user_is_allowed() {
        let pl = PowerLevels::default();
        assert!(may_invite(room(JoinRule::Knock, &pl), &alice(), Some(Join), &bob(), Some(Knock)).is_allowed());
    }

    #[test]
    fn inviting_a_joined_user_is_denied() {
        let pl = PowerLevels::default();
        let why = denied(may_invite(
            room(JoinRule::Invite, &pl),
            &alice(),
            Some(Join),
            &bob(),
            Some(Join),
        ));
        assert_eq!(why, "@bob:example.org is already in the room.");
    }

    #[test]
    fn inviting_a_banned_user_is_denied() {
        let pl = PowerLevels::default();
        let why = denied(may_invite(
            room(JoinRule::Invite, &pl),
            &alice(),
            Some(Join),
            &bob(),
            Some(Ban),
        ));
        assert!(why.starts_with("@bob:example.org is banned from the room"), "{why}");
    }

    #[test]
    fn inviting_yourself_is_denied() {
        let pl = PowerLevels::default();
        let why = denied(may_invite(
            room(JoinRule::Invite, &pl),
            &alice(),
            Some(Join),
            &alice(),
            Some(Join),
        ));
        assert!(why.starts_with("You cannot invite yourself"), "{why}");
    }

    #[test]
    fn user_outside_the_room_cannot_invite() {
        let pl = PowerLevels::default();
        let why = denied(may_invite(
            room(JoinRule::Public, &pl),
            &alice(),
            Some(Leave),
            &bob(),
            None,
        ));
        assert_eq!(
            why,
            "You are not in the room (you have left it), so you cannot invite anyone."
        );
    }

    #[test]
    fn invite_below_the_invite_level_names_both_levels() {
        let pl = PowerLevels {
            invite: 50,
            ..PowerLevels::default()
        };
        let why = denied(may_invite(
            room(JoinRule::Invite, &pl),
            &alice(),
            Some(Join),
            &bob(),
            None,
        ));
        assert_eq!(why, "Your power level 0 is below the 50 needed to invite users.");
    }

    // -- named rows: leave -----------------------------------------------------

    #[test]
    fn invited_user_may_reject_the_invite_by_leaving() {
        assert!(may_leave(Some(Invite)).is_allowed());
    }

    #[test]
    fn joined_user_may_leave() {
        assert!(may_leave(Some(Join)).is_allowed());
    }

    #[test]
    fn user_who_left_cannot_leave_again() {
        assert_eq!(denied(may_leave(Some(Leave))), "You have already left the room.");
    }

    #[test]
    fn banned_user_cannot_leave() {
        assert!(denied(may_leave(Some(Ban))).contains("banned"));
    }

    #[test]
    fn user_who_was_never_in_the_room_cannot_leave_it() {
        assert!(denied(may_leave(None)).contains("never been in"));
    }

    // -- named rows: kick ------------------------------------------------------

    #[test]
    fn kick_requires_a_level_above_the_target() {
        let pl = power_levels(Levels {
            sender: 50,
            target: 50,
            invite: 0,
            kick: 50,
            ban: 50,
        });
        let why = denied(may_kick(
            room(JoinRule::Invite, &pl),
            &alice(),
            Some(Join),
            &bob(),
            Some(Join),
        ));
        assert_eq!(
            why,
            "Your power level 50 is not above @bob:example.org's 50, so you cannot kick them."
        );
    }

    #[test]
    fn kick_requires_the_kick_level() {
        let pl = PowerLevels::default();
        let why = denied(may_kick(
            room(JoinRule::Invite, &pl),
            &alice(),
            Some(Join),
            &bob(),
            Some(Join),
        ));
        assert_eq!(why, "Your power level 0 is below the 50 needed to kick users.");
    }

    #[test]
    fn moderator_may_kick_a_joined_user() {
        let pl = power_levels(Levels {
            sender: 50,
            target: 0,
            invite: 0,
            kick: 50,
            ban: 50,
        });
        assert!(may_kick(room(JoinRule::Public, &pl), &alice(), Some(Join), &bob(), Some(Join)).is_allowed());
    }

    #[test]
    fn kicking_an_invited_user_revokes_the_invite() {
        let pl = power_levels(Levels {
            sender: 50,
            target: 0,
            invite: 0,
            kick: 50,
            ban: 50,
        });
        assert!(may_kick(room(JoinRule::Invite, &pl), &alice(), Some(Join), &bob(), Some(Invite)).is_allowed());
    }

    #[test]
    fn kicking_yourself_is_denied_and_points_to_leaving() {
        let pl = power_levels(Levels {
            sender: 100,
            target: 100,
            invite: 0,
            kick: 50,
            ban: 50,
        });
        let why = denied(may_kick(
            room(JoinRule::Invite, &pl),
            &alice(),
            Some(Join),
            &alice(),
            Some(Join),
        ));
        assert!(why.starts_with("You cannot kick yourself"), "{why}");
        assert!(why.contains("leave the room instead"), "{why}");
    }

    #[test]
    fn kicking_someone_who_already_left_is_denied() {
        let pl = power_levels(Levels {
            sender: 100,
            target: 0,
            invite: 0,
            kick: 50,
            ban: 50,
        });
        let why = denied(may_kick(
            room(JoinRule::Invite, &pl),
            &alice(),
            Some(Join),
            &bob(),
            Some(Leave),
        ));
        assert_eq!(
            why,
            "@bob:example.org has already left the room, so they cannot be kicked."
        );
    }

    #[test]
    fn kicking_someone_who_never_joined_is_denied() {
        let pl = power_levels(Levels {
            sender: 100,
            target: 0,
            invite: 0,
            kick: 50,
            ban: 50,
        });
        let why = denied(may_kick(
            room(JoinRule::Invite, &pl),
            &alice(),
            Some(Join),
            &bob(),
            None,
        ));
        assert!(why.contains("has never been in the room"), "{why}");
    }

    #[test]
    fn kicking_a_banned_user_is_denied() {
        let pl = power_levels(Levels {
            sender: 100,
            target: 0,
            invite: 0,
            kick: 50,
            ban: 50,
        });
        let why = denied(may_kick(
            room(JoinRule::Invite, &pl),
            &alice(),
            Some(Join),
            &bob(),
            Some(Ban),
        ));
        assert!(
            why.contains("is banned from the room") && why.contains("unban"),
            "{why}"
        );
    }

    // -- named rows: ban -------------------------------------------------------

    #[test]
    fn moderator_may_ban_a_user_who_never_joined() {
        let pl = power_levels(Levels {
            sender: 50,
            target: 0,
            invite: 0,
            kick: 50,
            ban: 50,
        });
        assert!(may_ban(room(JoinRule::Public, &pl), &alice(), Some(Join), &bob(), None).is_allowed());
    }

    #[test]
    fn banning_an_already_banned_user_is_allowed() {
        let pl = power_levels(Levels {
            sender: 50,
            target: 0,
            invite: 0,
            kick: 50,
            ban: 50,
        });
        assert!(may_ban(room(JoinRule::Public, &pl), &alice(), Some(Join), &bob(), Some(Ban)).is_allowed());
    }

    #[test]
    fn banning_yourself_is_denied() {
        let pl = power_levels(Levels {
            sender: 100,
            target: 100,
            invite: 0,
            kick: 50,
            ban: 50,
        });
        let why = denied(may_ban(
            room(JoinRule::Public, &pl),
            &alice(),
            Some(Join),
            &alice(),
            Some(Join),
        ));
        assert!(why.starts_with("You cannot ban yourself"), "{why}");
    }

    #[test]
    fn ban_requires_the_ban_level() {
        let pl = PowerLevels::default();
        let why = denied(may_ban(
            room(JoinRule::Public, &pl),
            &alice(),
            Some(Join),
            &bob(),
            Some(Join),
        ));
        assert_eq!(why, "Your power level 0 is below the 50 needed to ban users.");
    }

    #[test]
    fn ban_requires_a_level_above_the_target() {
        let pl = power_levels(Levels {
            sender: 50,
            target: 100,
            invite: 0,
            kick: 50,
            ban: 50,
        });
        let why = denied(may_ban(
            room(JoinRule::Public, &pl),
            &alice(),
            Some(Join),
            &bob(),
            Some(Leave),
        ));
        assert_eq!(
            why,
            "Your power level 50 is not above @bob:example.org's 100, so you cannot ban them."
        );
    }

    // -- named rows: unban -----------------------------------------------------

    #[test]
    fn moderator_may_unban_a_banned_user() {
        let pl = power_levels(Levels {
            sender: 50,
            target: 0,
            invite: 0,
            kick: 50,
            ban: 50,
        });
        assert!(may_unban(room(JoinRule::Public, &pl), &alice(), Some(Join), &bob(), Some(Ban)).is_allowed());
    }

    #[test]
    fn unbanning_a_user_who_is_not_banned_is_denied() {
        let pl = power_levels(Levels {
            sender: 50,
            target: 0,
            invite: 0,
            kick: 50,
            ban: 50,
        });
        let why = denied(may_unban(
            room(JoinRule::Public, &pl),
            &alice(),
            Some(Join),
            &bob(),
            Some(Leave),
        ));
        assert_eq!(
            why,
            "@bob:example.org is not banned from the room (their membership is leave)."
        );
    }

    #[test]
    fn unban_also_requires_the_kick_level() {
        let pl = power_levels(Levels {
            sender: 50,
            target: 0,
            invite: 0,
            kick: 100,
            ban: 0,
        });
        let why = denied(may_unban(
            room(JoinRule::Public, &pl),
            &alice(),
            Some(Join),
            &bob(),
            Some(Ban),
        ));
        assert_eq!(
            why,
            "Your power level 50 is below the 100 needed to kick users, which unbanning also requires."
        );
    }

    #[test]
    fn unban_requires_the_ban_level() {
        let pl = power_levels(Levels {
            sender: 50,
            target: 0,
            invite: 0,
            kick: 0,
            ban: 100,
        });
        let why = denied(may_unban(
            room(JoinRule::Public, &pl),
            &alice(),
            Some(Join),
            &bob(),
            Some(Ban),
        ));
        assert_eq!(why, "Your power level 50 is below the 100 needed to unban users.");
    }

    #[test]
    fn banned_user_cannot_unban_themselves() {
        let pl = power_levels(Levels {
            sender: 100,
            target: 100,
            invite: 0,
            kick: 50,
            ban: 50,
        });
        let why = denied(may_unban(
            room(JoinRule::Public, &pl),
            &alice(),
            Some(Ban),
            &alice(),
            Some(Ban),
        ));
        assert!(why.starts_with("You cannot unban yourself"), "{why}");
    }

    // -- named rows: other state -----------------------------------------------

    #[test]
    fn state_key_naming_another_user_is_denied_even_for_admins() {
        let pl = power_levels(Levels {
            sender: 100,
            target: 0,
            invite: 0,
            kick: 50,
            ban: 50,
        });
        let why = denied(may_send_state(
            room(JoinRule::Public, &pl),
            &alice(),
            Some(Join),
            "org.example.status",
            BOB,
            None,
        ));
        assert!(why.contains("\"@bob:example.org\" starts with '@'"), "{why}");
    }

    #[test]
    fn state_key_naming_yourself_is_allowed() {
        let pl = power_levels(Levels {
            sender: 50,
            target: 0,
            invite: 0,
            kick: 50,
            ban: 50,
        });
        let d = may_send_state(
            room(JoinRule::Public, &pl),
            &alice(),
            Some(Join),
            "org.example.status",
            ALICE,
            None,
        );
        assert!(d.is_allowed(), "{d:?}");
    }

    #[test]
    fn sending_state_below_its_level_is_denied() {
        let pl = PowerLevels::default();
        let why = denied(may_send_state(
            room(JoinRule::Public, &pl),
            &alice(),
            Some(Join),
            "m.room.name",
            "",
            None,
        ));
        assert_eq!(
            why,
            "Your power level 0 is below the 50 needed to send m.room.name state events."
        );
    }

    #[test]
    fn user_outside_the_room_cannot_send_state() {
        let pl = power_levels(Levels {
            sender: 100,
            target: 0,
            invite: 0,
            kick: 50,
            ban: 50,
        });
        let why = denied(may_send_state(
            room(JoinRule::Public, &pl),
            &alice(),
            Some(Invite),
            "m.room.name",
            "",
            None,
        ));
        assert!(
            why.starts_with("You are not in the room (you are invited but have not joined)"),
            "{why}"
        );
    }

    #[test]
    fn power_levels_event_without_content_is_denied() {
        let pl = pl_room_base(100);
        let why = denied(may_send_state(
            room(JoinRule::Public, &pl),
            &alice(),
            Some(Join),
            POWER_LEVELS,
            "",
            None,
        ));
        assert!(why.contains("content is missing"), "{why}");
    }

    #[test]
    fn unchanged_power_levels_are_allowed() {
        let pl = pl_room_base(0);
        assert!(send_pl(&pl, &pl.clone()).is_allowed());
    }

    #[test]
    fn raising_a_level_above_your_own_is_denied() {
        let old = pl_room_base(50);
        let new = PowerLevels {
            ban: 100,
            ..old.clone()
        };
        let why = denied(send_pl(&old, &new));
        assert_eq!(
            why,
            "You cannot change the 'ban' level from 50 to 100: the new value 100 is above your power level 50."
        );
    }

    #[test]
    fn promoting_a_user_to_your_own_level_is_allowed() {
        let old = pl_room_base(50);
        let mut new = old.clone();
        new.users.insert(BOB.into(), 50);
        assert!(send_pl(&old, &new).is_allowed());
    }

    #[test]
    fn promoting_yourself_is_denied() {
        let old = pl_room_base(50);
        let mut new = old.clone();
        new.users.insert(ALICE.into(), 100);
        let why = denied(send_pl(&old, &new));
        assert!(why.contains("@alice:example.org's power level from 50 to 100"), "{why}");
    }

    #[test]
    fn demoting_a_peer_is_denied() {
        let mut old = pl_room_base(50);
        old.users.insert(BOB.into(), 50);
        let mut new = old.clone();
        new.users.insert(BOB.into(), 0);
        let why = denied(send_pl(&old, &new));
        assert_eq!(
            why,
            "You cannot change @bob:example.org's power level from 50 to 0: their current level 50 is not below your \
             power level 50."
        );
    }

    #[test]
    fn removing_a_peers_entry_is_denied() {
        let mut old = pl_room_base(50);
        old.users.insert(BOB.into(), 50);
        let mut new = old.clone();
        new.users.remove(BOB);
        let why = denied(send_pl(&old, &new));
        assert!(why.contains("from 50 to unset"), "{why}");
    }

    #[test]
    fn demoting_yourself_is_allowed() {
        let old = pl_room_base(100);
        let mut new = old.clone();
        new.users.insert(ALICE.into(), 0);
        assert!(send_pl(&old, &new).is_allowed());
    }

    #[test]
    fn changing_an_event_level_above_your_own_is_denied() {
        let mut old = pl_room_base(50);
        old.events.insert("m.room.tombstone".into(), 100);
        let mut new = old.clone();
        new.events.insert("m.room.tombstone".into(), 0);
        let why = denied(send_pl(&old, &new));
        assert!(
            why.contains("the level for m.room.tombstone events from 100 to 0"),
            "{why}"
        );
        assert!(why.contains("current value 100 is above your power level 50"), "{why}");
    }

    #[test]
    fn power_levels_change_needs_the_power_levels_state_level_first() {
        let old = PowerLevels {
            users: BTreeMap::from([(ALICE.into(), 50)]),
            ..PowerLevels::default()
        };
        let new = PowerLevels {
            events_default: 10,
            ..old.clone()
        };
        let mut with_pl_level = old.clone();
        with_pl_level.events.insert(POWER_LEVELS.into(), 100);
        let why = denied(send_pl(&with_pl_level, &new));
        assert_eq!(
            why,
            "Your power level 50 is below the 100 needed to send m.room.power_levels state events."
        );
        assert!(send_pl(&old, &new).is_allowed());
    }

    // -- named rows: reading -----------------------------------------------------

    #[test]
    fn joined_member_reads_the_current_state() {
        assert_eq!(may_read_state(Some(Join)), ReadAccess::Current);
    }

    #[test]
    fn former_member_reads_the_state_as_of_leaving() {
        assert_eq!(may_read_state(Some(Leave)), ReadAccess::AsOfLeave);
        assert_eq!(may_read_state(Some(Ban)), ReadAccess::AsOfLeave);
    }

    #[test]
    fn invited_user_cannot_read_state() {
        assert_eq!(may_read_state(Some(Invite)), ReadAccess::Denied);
        assert_eq!(may_read_state(None), ReadAccess::Denied);
    }

    // -- messages and history --------------------------------------------------

    #[test]
    fn send_message_table_covers_membership_and_levels() {
        // (sender membership, sender level, events_default, events[m.room.message], expected)
        type Row = (Option<Membership>, i64, i64, Option<i64>, Result<(), &'static str>);
        let rows: [Row; 10] = [
            (Some(Join), 0, 0, None, Ok(())),
            (
                Some(Join),
                0,
                50,
                None,
                Err("Your power level 0 is below the 50 needed"),
            ),
            (Some(Join), 50, 50, None, Ok(())),
            (
                Some(Join),
                0,
                0,
                Some(10),
                Err("below the 10 needed to send m.room.message"),
            ),
            (Some(Join), 100, 100, Some(0), Ok(())),
            (None, 100, 0, None, Err("you have never joined it")),
            (Some(Invite), 100, 0, None, Err("you are invited but have not joined")),
            (Some(Leave), 100, 0, None, Err("you have left it")),
            (Some(Ban), 100, 0, None, Err("you are banned from it")),
            (Some(Knock), 100, 0, None, Err("you have knocked")),
        ];
        for (membership, level, events_default, message_level, expected) in rows {
            let mut pl = PowerLevels {
                events_default,
                users: BTreeMap::from([(ALICE.to_string(), level)]),
                ..PowerLevels::default()
            };
            if let Some(l) = message_level {
                pl.events.insert("m.room.message".into(), l);
            }
            let actual = may_send_message(room(JoinRule::Invite, &pl), &alice(), membership, "m.room.message");
            let case = format!("{membership:?} at {level}, events_default {events_default}, message {message_level:?}");
            assert_decision(&actual, expected, &case);
        }
    }

    #[test]
    fn history_window_table_covers_each_visibility_and_membership_history() {
        use HistoryVisibility::{Invited, Joined, Shared, WorldReadable};
        let all = |upto| Some(Window { after: 0, upto });
        let from = |after, upto| Some(Window { after, upto });
        // (visibility, the user's membership events as (pos, membership), expected window)
        type Row = (HistoryVisibility, Vec<(u64, Membership)>, Option<Window>);
        let rows: Vec<Row> = vec![
            (WorldReadable, vec![], all(None)),
            (WorldReadable, vec![(5, Leave)], all(None)),
            (Shared, vec![], None),
            (Shared, vec![(5, Join)], all(None)),
            (Shared, vec![(3, Invite), (5, Join)], all(None)),
            (Joined, vec![(3, Invite), (5, Join)], from(4, None)),
            (Invited, vec![(3, Invite), (5, Join)], from(2, None)),
            (Invited, vec![(5, Join)], from(4, None)),
            (Joined, vec![(5, Join), (7, Join)], from(4, None)),
            (Shared, vec![(3, Invite)], None),
            (Joined, vec![(3, Invite)], None),
            (Invited, vec![(3, Invite)], from(2, None)),
            (Shared, vec![(5, Join), (9, Leave)], all(Some(9))),
            (Joined, vec![(5, Join), (9, Ban)], from(4, Some(9))),
            (Invited, vec![(3, Invite), (5, Join), (9, Leave)], from(2, Some(9))),
            (
                Shared,
                vec![(5, Join), (9, Leave), (12, Invite), (14, Leave)],
                all(Some(9)),
            ),
            (Joined, vec![(5, Join), (9, Leave), (12, Join)], from(11, None)),
            (Shared, vec![(3, Invite), (4, Leave)], None),
            (Shared, vec![(3, Knock)], None),
            (Invited, vec![(3, Knock)], None),
        ];
        for (visibility, history, expected) in rows {
            assert_eq!(
                history_window(visibility, &history),
                expected,
                "{visibility:?} with history {history:?}"
            );
        }
    }

    #[test]
    fn history_visibility_defaults_to_shared_and_a_window_bounds_both_ends() {
        assert_eq!(HistoryVisibility::parse(None), HistoryVisibility::Shared);
        assert_eq!(HistoryVisibility::parse(Some("bogus")), HistoryVisibility::Shared);
        assert_eq!(HistoryVisibility::parse(Some("joined")), HistoryVisibility::Joined);
        let w = Window {
            after: 4,
            upto: Some(9),
        };
        assert!(!w.contains(4) && w.contains(5) && w.contains(9) && !w.contains(10));
        assert!(Window { after: 0, upto: None }.contains(u64::MAX));
    }

    #[test]
    fn visible_windows_judge_each_event_by_the_setting_in_force_before_it() {
        use HistoryVisibility::{Joined, Shared, WorldReadable};
        let w = |after, upto| Window { after, upto };
        // (settings as (pos, setting), the user's membership history, expected windows)
        type Row = (Vec<(u64, HistoryVisibility)>, Vec<(u64, Membership)>, Vec<Window>);
        let rows: Vec<Row> = vec![
            // Never changed: shared for a member, nothing for a stranger.
            (vec![], vec![(5, Join)], vec![w(0, None)]),
            (vec![], vec![], vec![]),
            // Shared until 10, then joined: a member who joined at 20 sees up to 10 and from 20.
            (vec![(10, Joined)], vec![(20, Join)], vec![w(0, Some(10)), w(19, None)]),
            // The creator joined at 2 and keeps seeing everything.
            (vec![(10, Joined)], vec![(2, Join)], vec![w(0, None)]),
            // Joined, then shared again at 30: the member who joined at 20 sees from 20 on.
            (
                vec![(10, Joined), (30, Shared)],
                vec![(20, Join)],
                vec![w(0, Some(10)), w(19, None)],
            ),
            // A stranger sees only world-readable stretches.
            (vec![(10, WorldReadable), (30, Joined)], vec![], vec![w(10, Some(30))]),
            // A former member: up to the leave.
            (
                vec![(10, Joined)],
                vec![(20, Join), (40, Leave)],
                vec![w(0, Some(10)), w(19, Some(40))],
            ),
        ];
        for (settings, history, expected) in rows {
            assert_eq!(
                visible_windows(&settings, &history),
                expected,
                "settings {settings:?}, history {history:?}"
            );
        }
    }
}
