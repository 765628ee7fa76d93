//! What the torture believes: rooms, accounts, memberships, and the log of
//! every change the server acknowledged during a cycle, against which the
//! state after the restart is judged.

use crate::http::{enc, Account, Req, V3};
use serde_json::json;

/// A user's membership in a room, `Never` before their first member event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum M {
    Never,
    Invite,
    Join,
    Leave,
    Ban,
}

impl M {
    pub fn parse(raw: &str) -> Option<M> {
        match raw {
            "invite" => Some(M::Invite),
            "join" => Some(M::Join),
            "leave" => Some(M::Leave),
            "ban" => Some(M::Ban),
            _ => None,
        }
    }
}

/// A membership change and who asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Join,
    Leave,
    Invite,
    Kick,
    Ban,
    Unban,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::Join,
        Action::Leave,
        Action::Invite,
        Action::Kick,
        Action::Ban,
        Action::Unban,
    ];

    pub fn result(self) -> M {
        match self {
            Action::Join => M::Join,
            Action::Invite => M::Invite,
            Action::Leave | Action::Kick | Action::Unban => M::Leave,
            Action::Ban => M::Ban,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Action::Join => "join",
            Action::Leave => "leave",
            Action::Invite => "invite",
            Action::Kick => "kick",
            Action::Ban => "ban",
            Action::Unban => "unban",
        }
    }

    /// The server answers a repeat of these 200 without writing: the shape of
    /// the lost-acknowledgement bug, so only these are sent twice.
    pub fn repeatable(self) -> bool {
        matches!(self, Action::Join | Action::Invite | Action::Ban)
    }

    /// Whether the change is allowed from `from` AND changes it. Changes that
    /// write nothing are never chosen, so every acknowledged change is exactly
    /// one member event in the room's history.
    pub fn applies(self, from: M, public_room: bool) -> bool {
        match self {
            Action::Join => matches!(from, M::Invite) || (public_room && matches!(from, M::Never | M::Leave)),
            Action::Leave | Action::Kick => matches!(from, M::Invite | M::Join),
            Action::Invite => matches!(from, M::Never | M::Leave),
            Action::Ban => from != M::Ban,
            Action::Unban => from == M::Ban,
        }
    }

    /// The request: the target's own token for join and leave, the room owner's otherwise.
    pub fn request(self, room: &Room, target: &Account, owner: &Account) -> Req {
        let path = format!("{V3}/rooms/{}/{}", enc(&room.id), self.name());
        match self {
            Action::Join | Action::Leave => Req::post(path, Some(&target.token), json!({})),
            _ => Req::post(path, Some(&owner.token), json!({ "user_id": target.user_id })),
        }
    }
}

/// A room the torture made.
#[derive(Debug, Clone)]
pub struct Room {
    pub id: String,
    pub public: bool,
}

/// A user whose memberships the torture drives, with what it believes they are.
#[derive(Debug, Clone)]
pub struct Member {
    pub account: Account,
    /// Per room, in `World::rooms` order.
    pub states: Vec<M>,
}

/// One acknowledged membership change.
#[derive(Debug, Clone, Copy)]
pub struct AckedChange {
    pub action: Action,
    /// The acknowledgement that arrived first was the one for the repeat.
    pub by_retry: bool,
}

/// Every change to one (room, user) in one cycle.
#[derive(Debug, Clone)]
pub struct PairLog {
    pub room: usize,
    pub user: String,
    pub start: M,
    pub acked: Vec<AckedChange>,
    /// A change sent without an answer; it may or may not have happened. It
    /// is always the last one: a task stops touching a pair after one.
    pub in_doubt: Option<M>,
}

impl PairLog {
    pub fn new(room: usize, user: &str, start: M) -> PairLog {
        PairLog {
            room,
            user: user.to_string(),
            start,
            acked: Vec::new(),
            in_doubt: None,
        }
    }

    /// The membership if every acknowledged change held.
    pub fn current(&self) -> M {
        self.acked.last().map_or(self.start, |a| a.action.result())
    }
}

/// One message send of a cycle.
#[derive(Debug, Clone)]
pub struct MsgLog {
    pub room: usize,
    /// Unique in the run; also the transaction id.
    pub body: String,
    /// The event id of the acknowledgement, if one came.
    pub event_id: Option<String>,
    pub by_retry: bool,
    /// Sent, no answer: it may exist or not, but at most once.
    pub in_doubt: bool,
}

/// The rooms and accounts that live for the whole run, shared by every task.
pub struct World {
    /// Created every room, so may invite, kick, ban and unban; never leaves.
    pub owner: Account,
    /// Joined nowhere, so its `/sync` without `since` is only the position.
    pub checker: Account,
    /// Two public rooms, then one invite-only room.
    pub rooms: Vec<Room>,
    /// Joined to every room; they send the messages.
    pub senders: Vec<Account>,
}
