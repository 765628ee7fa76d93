//! What an operator does to accounts and rooms: create, reset, deactivate,
//! list, inspect. The admin command line calls these on a stopped server's
//! data folder; the admin API's gate ([`Service::require_admin`]) is here too.
//!
//! Deactivation follows Synapse's `DeactivateAccountHandler`: the tokens go
//! first (with the flag, in one write, so no login can slip in after), then
//! the user leaves every room they are joined to, invited to or knocking
//! on, each leave a real `m.room.member` event through the same gate as a
//! client's `/leave`.

use super::error::{ServiceError, ServiceResult};
use super::membership::Action;
use super::registration::check_username;
use super::Service;
use crate::ids::{RoomId, RoomOrAlias, UserId};
use crate::membership::state::Membership;
use crate::store::{AccountFlags, AccountSummary, Event};

/// What deactivating an account did.
#[derive(Debug, Clone, PartialEq)]
pub struct Deactivated {
    pub user: UserId,
    /// The rooms the user left.
    pub left: Vec<RoomId>,
    /// The rooms a leave was refused in, and why (the account is deactivated all the same).
    pub failed: Vec<(RoomId, ServiceError)>,
}

/// One room as `room list` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomOverview {
    pub room: RoomId,
    pub name: Option<String>,
    pub canonical_alias: Option<String>,
    pub aliases: Vec<String>,
    pub joined: usize,
    pub invited: usize,
    pub banned: usize,
}

/// A room's current state and members, for `room show`.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomDetails {
    pub overview: RoomOverview,
    pub state: Vec<Event>,
    pub members: Vec<(UserId, Membership)>,
}

fn string_field(event: Option<Event>, field: &str) -> Option<String> {
    event.and_then(|e| e.content.get(field).and_then(|v| v.as_str()).map(str::to_owned))
}

impl Service {
    /// `NAME` as a user on this server: a localpart (lowercased, as
    /// registration does) or a full user id.
    pub fn local_user(&self, name: &str) -> ServiceResult<UserId> {
        let user = if name.starts_with('@') {
            UserId::parse(name).map_err(|e| ServiceError::invalid_param(format!("{name:?}: {e}")))?
        } else {
            UserId::new(&name.to_lowercase(), &self.server_name)
                .map_err(|e| ServiceError::invalid_param(format!("{name:?}: {e}")))?
        };
        self.require_local(&user, "User")?;
        Ok(user)
    }

    async fn existing_user(&self, name: &str) -> ServiceResult<UserId> {
        let user = self.local_user(name)?;
        if !self.store.user_exists(&user).await? {
            return Err(ServiceError::not_found(format!(
                "There is no user {user} on this server"
            )));
        }
        Ok(user)
    }

    /// Creates an account under registration's username rules, whether or
    /// not registration is open.
    pub async fn create_account(&self, name: &str, password: &str, admin: bool) -> ServiceResult<UserId> {
        let user = self.local_user(name)?;
        check_username(user.localpart()).map_err(|why| ServiceError::new(400, "M_INVALID_USERNAME", why))?;
        let hash = self.passwords.hash(password.to_string()).await?;
        let flags = AccountFlags {
            admin,
            deactivated: false,
        };
        if !self.store.create_account(&user, &hash, flags).await? {
            return Err(ServiceError::new(
                400,
                "M_USER_IN_USE",
                format!("The user {user} already exists"),
            ));
        }
        Ok(user)
    }

    /// Sets a new password; with `logout` (Synapse's default for its admin
    /// API) every session of the user ends in the same write.
    pub async fn reset_password(&self, name: &str, password: &str, logout: bool) -> ServiceResult<UserId> {
        let user = self.existing_user(name).await?;
        let hash = self.passwords.hash(password.to_string()).await?;
        if !self.store.set_password_hash(&user, &hash, logout).await? {
            return Err(ServiceError::not_found(format!(
                "There is no user {user} on this server"
            )));
        }
        Ok(user)
    }

    /// Deactivates an account: revokes every token, refuses every later
    /// login, and leaves every room through the authorization gate. Running
    /// it again retries the leaves that failed.
    pub async fn deactivate_account(&self, name: &str) -> ServiceResult<Deactivated> {
        let user = self.existing_user(name).await?;
        self.store.deactivate(&user).await?;
        let mut done = Deactivated {
            user: user.clone(),
            left: Vec::new(),
            failed: Vec::new(),
        };
        for (room, (membership, _)) in self.store.rooms_of(&user).await? {
            if !matches!(membership, Membership::Join | Membership::Invite | Membership::Knock) {
                continue;
            }
            match self.change_membership(&room, &user, &user, Action::Leave, None).await {
                Ok(()) => done.left.push(room),
                Err(e) => done.failed.push((room, e)),
            }
        }
        Ok(done)
    }

    /// Every account with its flags.
    pub async fn account_list(&self) -> ServiceResult<Vec<AccountSummary>> {
        Ok(self.store.accounts().await?)
    }

    /// The caller may use the admin API only if their account is marked admin.
    pub async fn require_admin(&self, user: &UserId) -> ServiceResult<()> {
        match self.store.account_flags(user).await? {
            Some(flags) if flags.admin && !flags.deactivated => Ok(()),
            _ => Err(ServiceError::forbidden(format!("{user} is not a server admin"))),
        }
    }

    async fn overview(&self, room: &RoomId) -> ServiceResult<(RoomOverview, Vec<(UserId, Membership)>)> {
        let members = self.store.members(room).await?;
        let count = |m: Membership| members.iter().filter(|(_, x)| *x == m).count();
        let overview = RoomOverview {
            room: room.clone(),
            name: string_field(self.store.state_event(room, "m.room.name", "").await?, "name"),
            canonical_alias: string_field(
                self.store.state_event(room, "m.room.canonical_alias", "").await?,
                "alias",
            ),
            aliases: self
                .store
                .room_aliases(room)
                .await?
                .iter()
                .map(|a| a.to_string())
                .collect(),
            joined: count(Membership::Join),
            invited: count(Membership::Invite),
            banned: count(Membership::Ban),
        };
        Ok((overview, members))
    }

    /// Every room, with its name, aliases and member counts.
    pub async fn room_list(&self) -> ServiceResult<Vec<RoomOverview>> {
        let mut out = Vec::new();
        for room in self.store.rooms().await? {
            out.push(self.overview(&room).await?.0);
        }
        Ok(out)
    }

    /// One room (by id or alias): its current state and every member.
    pub async fn room_details(&self, room: &str) -> ServiceResult<RoomDetails> {
        let target = RoomOrAlias::parse(room).map_err(|e| ServiceError::invalid_param(format!("{room:?}: {e}")))?;
        let room = self.resolve_room(&target).await?;
        self.require_room(&room).await?;
        let (overview, members) = self.overview(&room).await?;
        Ok(RoomDetails {
            overview,
            state: self.store.current_state(&room).await?,
            members,
        })
    }
}
