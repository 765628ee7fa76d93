//! Reading and writing room state: `/state`, `/members`, `joined_members`, `joined_rooms`.

use super::error::{ServiceError, ServiceResult};
use super::membership::authorize_all;
use super::messages::parse_token;
use super::Service;
use crate::ids::{RoomId, UserId};
use crate::membership::auth::ProposedEvent;
use crate::membership::restricted;
use crate::membership::rules::{self, ReadAccess};
use crate::membership::state::Membership;
use crate::store::{Event, Plan, RoomWrite, RoomWritten};
use serde_json::{Map, Value};

/// `/members`' `membership` and `not_membership`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemberFilter<'a> {
    pub membership: Option<&'a str>,
    pub not_membership: Option<&'a str>,
}

impl MemberFilter<'_> {
    /// Whether a member with `membership` stays in the list. The two
    /// parameters combine with OR, as the spec says ("either the membership
    /// is the same as `membership` or is not the same as `not_membership`");
    /// Synapse combines them with AND.
    pub fn keeps(&self, membership: Option<&str>) -> bool {
        let is = self.membership.map(|m| membership == Some(m));
        let is_not = self.not_membership.map(|m| membership != Some(m));
        match (is, is_not) {
            (None, None) => true,
            (Some(a), None) | (None, Some(a)) => a,
            (Some(a), Some(b)) => a || b,
        }
    }
}

/// Which state a user may read.
enum StateView {
    /// The current state (joined members).
    Current,
    /// The state right after this position (former members: when they left).
    At(u64),
}

impl Service {
    /// Which state `user` may read in `room`, or 403.
    async fn state_view(&self, room: &RoomId, user: &UserId) -> ServiceResult<StateView> {
        self.require_room(room).await?;
        self.require_not_forgotten(room, user).await?;
        let entry = self.store.membership(room, user).await?;
        match rules::may_read_state(entry.map(|(m, _)| m)) {
            ReadAccess::Current => Ok(StateView::Current),
            ReadAccess::AsOfLeave => Ok(StateView::At(entry.map_or(0, |(_, pos)| pos))),
            ReadAccess::Denied => Err(ServiceError::forbidden(format!(
                "You are not in room {room} and never were, so you cannot read its state"
            ))),
        }
    }

    /// The state `user` may see: current for members, as of leaving for former members.
    pub async fn visible_state(&self, room: &RoomId, user: &UserId) -> ServiceResult<Vec<Event>> {
        Ok(match self.state_view(room, user).await? {
            StateView::Current => self.store.current_state(room).await?,
            StateView::At(pos) => self.store.state_at(room, pos).await?,
        })
    }

    /// One state event's content, by one lookup.
    pub async fn state_content(
        &self,
        room: &RoomId,
        user: &UserId,
        event_type: &str,
        state_key: &str,
    ) -> ServiceResult<Value> {
        let event = match self.state_view(room, user).await? {
            StateView::Current => self.store.state_event(room, event_type, state_key).await?,
            StateView::At(pos) => self.store.state_event_at(room, event_type, state_key, pos).await?,
        };
        event.map(|e| e.content).ok_or_else(|| {
            ServiceError::not_found(format!("Room {room} has no state event ({event_type}, {state_key:?})"))
        })
    }

    /// Member events as of `at` (a sync token; default: as late as the user
    /// may see), filtered by membership as `/members` allows.
    pub async fn member_events(
        &self,
        room: &RoomId,
        user: &UserId,
        at: Option<&str>,
        filter: MemberFilter<'_>,
    ) -> ServiceResult<Vec<Event>> {
        let at = at.map(|t| parse_token(t, "at", self.store.durable_pos())).transpose()?;
        let state = match (self.state_view(room, user).await?, at) {
            (StateView::Current, None) => self.store.current_state(room).await?,
            (StateView::Current, Some(at)) => self.store.state_at(room, at).await?,
            (StateView::At(left), at) => self.store.state_at(room, at.map_or(left, |a| a.min(left))).await?,
        };
        Ok(state
            .into_iter()
            .filter(|e| e.event_type == "m.room.member")
            .filter(|e| filter.keeps(e.content.get("membership").and_then(Value::as_str)))
            .collect())
    }

    /// `/joined_members`: only for users joined now (403 for anyone else,
    /// former members too, who could otherwise watch who comes and goes).
    pub async fn joined_member_events(&self, room: &RoomId, user: &UserId) -> ServiceResult<Vec<Event>> {
        self.require_room(room).await?;
        if self.store.membership(room, user).await?.map(|(m, _)| m) != Some(Membership::Join) {
            return Err(ServiceError::forbidden(format!(
                "You are not joined to room {room}, so you cannot list its joined members"
            )));
        }
        let joined = MemberFilter {
            membership: Some("join"),
            not_membership: None,
        };
        self.member_events(room, user, None, joined).await
    }

    /// Rooms `user` is joined to.
    pub async fn joined_rooms(&self, user: &UserId) -> ServiceResult<Vec<RoomId>> {
        Ok(self
            .store
            .rooms_of(user)
            .await?
            .into_iter()
            .filter(|(_, (m, _))| *m == Membership::Join)
            .map(|(r, _)| r)
            .collect())
    }

    /// Sends a state event; the gate judges it like any other, member events included.
    pub async fn set_state(
        &self,
        room: &RoomId,
        sender: &UserId,
        event_type: &str,
        state_key: &str,
        content: Map<String, Value>,
    ) -> ServiceResult<String> {
        self.require_room(room).await?;
        let mut users = vec![sender.clone()];
        // A member event of one's own may be a restricted join: the gate then
        // needs the sender's other rooms and the authoriser it names.
        let mut rooms_of_sender = None;
        if event_type == "m.room.member" {
            if let Ok(target) = UserId::parse(state_key) {
                if content.get("membership").and_then(Value::as_str) == Some("invite") {
                    self.require_invites_allowed(&target).await?;
                }
                if target != *sender {
                    users.push(target);
                } else {
                    rooms_of_sender = Some(self.joined_rooms(sender).await?.into_iter().collect());
                }
            }
            if let Ok(Some(authoriser)) = restricted::authoriser_of(&content) {
                if !users.contains(&authoriser) {
                    users.push(authoriser);
                }
            }
        }
        let proposed = ProposedEvent {
            sender: sender.clone(),
            event_type: event_type.to_string(),
            state_key: Some(state_key.to_string()),
            content,
        };
        let joiner = sender.clone();
        let plan: Plan = Box::new(move |auth| {
            if let Some(rooms) = rooms_of_sender {
                auth.load_rooms_of(joiner, rooms);
            }
            authorize_all(auth, vec![proposed])
        });
        let written = self
            .store
            .write_room(RoomWrite {
                room: room.clone(),
                create: None,
                users,
                txn: None,
                plan,
            })
            .await?;
        match written {
            RoomWritten::Written(events) if !events.is_empty() => Ok(events[0].event_id.clone()),
            other => Err(ServiceError::internal(format!("a state write answered {other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::MemberFilter;

    fn filter<'a>(membership: Option<&'a str>, not_membership: Option<&'a str>) -> MemberFilter<'a> {
        MemberFilter {
            membership,
            not_membership,
        }
    }

    #[test]
    fn membership_and_not_membership_combine_with_or_as_the_spec_says() {
        let both = filter(Some("join"), Some("leave"));
        assert!(both.keeps(Some("join")));
        assert!(both.keeps(Some("invite")), "not leave, so kept");
        assert!(!both.keeps(Some("leave")));
        // Contradicting pair: AND (Synapse) would keep nobody; OR keeps everyone but nothing is excluded twice.
        let odd = filter(Some("leave"), Some("leave"));
        assert!(odd.keeps(Some("leave")) && odd.keeps(Some("join")));
    }

    #[test]
    fn a_single_filter_applies_alone() {
        assert!(filter(Some("join"), None).keeps(Some("join")));
        assert!(!filter(Some("join"), None).keeps(Some("leave")));
        assert!(!filter(None, Some("join")).keeps(Some("join")));
        assert!(filter(None, Some("join")).keeps(Some("ban")));
        assert!(filter(None, None).keeps(None));
    }
}
