//! Forgetting a room: a user who is out of a room removes it from their
//! views (`/sync`, `/messages`, `/state`, `/members`), until a new
//! membership of theirs in it (an invite, a join) makes it theirs again.

use super::error::{ServiceError, ServiceResult};
use super::Service;
use crate::ids::{RoomId, UserId};
use crate::membership::state::Membership;

/// Why a membership cannot be forgotten yet; `None` when it can (or there
/// is none: forgetting a room one was never in is a no-op that succeeds,
/// as in Synapse).
fn still_in(membership: Option<Membership>) -> Option<&'static str> {
    match membership {
        Some(Membership::Join) => Some("joined to"),
        Some(Membership::Invite) => Some("invited to"),
        Some(Membership::Knock) => Some("knocking on"),
        Some(Membership::Leave | Membership::Ban) | None => None,
    }
}

impl Service {
    /// `POST /rooms/{roomId}/forget`. The store checks the membership and
    /// writes the mark in one step, so a join racing the forget cannot be
    /// forgotten; a refused forget wrote nothing.
    pub async fn forget_room(&self, user: &UserId, room: &RoomId) -> ServiceResult<()> {
        self.require_room(room).await?;
        let found = self.store.forget_room(user, room).await?;
        match still_in(found) {
            None => Ok(()),
            Some(how) => Err(ServiceError::new(
                400,
                "M_UNKNOWN",
                format!("You are still {how} room {room}; leave it before forgetting it"),
            )),
        }
    }

    /// 403 if `user` forgot `room` (at their current membership).
    pub(super) async fn require_not_forgotten(&self, room: &RoomId, user: &UserId) -> ServiceResult<()> {
        if self.store.forgotten(user, room).await? {
            return Err(ServiceError::forbidden(format!(
                "You forgot room {room}; it is no longer visible to you"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_user_out_of_the_room_may_forget_it() {
        assert_eq!(still_in(Some(Membership::Join)), Some("joined to"));
        assert_eq!(still_in(Some(Membership::Invite)), Some("invited to"));
        assert_eq!(still_in(Some(Membership::Knock)), Some("knocking on"));
        assert_eq!(still_in(Some(Membership::Leave)), None);
        assert_eq!(still_in(Some(Membership::Ban)), None);
        assert_eq!(still_in(None), None);
    }
}
