//! Third-party invites: inviting an email address through an identity
//! server, and turning the invite into a membership once the identity server
//! says (`/3pid/onbind`) which user the address now belongs to.
//!
//! The identity server is asked before anything is written, so a failure
//! there writes nothing. Whatever is written goes through the gate: the
//! `m.room.third_party_invite` state event, and the member invite whose
//! signed token the gate checks against it (`membership::third_party`).

use super::error::{ServiceError, ServiceResult};
use super::membership::{loaded_membership, refuse, Action};
use super::third_party_identity::IdentityClient;
use super::Service;
use crate::generated::models;
use crate::ids::{RoomId, UserId};
use crate::membership::auth::{authorize, ProposedEvent};
use crate::membership::state::Membership;
use crate::membership::third_party::THIRD_PARTY_INVITE;
use crate::store::{Plan, RoomWrite};
use serde_json::{json, Map, Value};

/// A third-party address to invite, and how to ask about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThirdPartyAddress {
    pub id_server: String,
    pub id_access_token: String,
    pub medium: String,
    pub address: String,
}

/// The two forms of `/invite`'s body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InviteForm {
    User(String),
    ThirdParty(ThirdPartyAddress),
}

/// Which form an invite body is in: exactly one must be complete.
pub fn invite_form(body: &models::PostRoomsRoomIdInviteBody) -> ServiceResult<InviteForm> {
    let third_party = [
        ("id_server", &body.id_server),
        ("id_access_token", &body.id_access_token),
        ("medium", &body.medium),
        ("address", &body.address),
    ];
    let any_third_party = third_party.iter().any(|(_, v)| v.is_some());
    match (&body.user_id, any_third_party) {
        (Some(_), true) => Err(ServiceError::new(
            400,
            "M_BAD_JSON",
            "An invite names either user_id or a third-party address (id_server, id_access_token, medium, address), not both",
        )),
        (Some(user), false) => Ok(InviteForm::User(user.clone())),
        (None, false) => Err(ServiceError::new(400, "M_MISSING_PARAM", "Missing user_id")),
        (None, true) => {
            if let Some((name, _)) = third_party.iter().find(|(_, v)| v.is_none()) {
                return Err(ServiceError::new(
                    400,
                    "M_MISSING_PARAM",
                    format!("Missing {name}: a third-party invite needs id_server, id_access_token, medium and address"),
                ));
            }
            let field = |v: &Option<String>| v.clone().unwrap_or_default();
            Ok(InviteForm::ThirdParty(ThirdPartyAddress {
                id_server: field(&body.id_server),
                id_access_token: field(&body.id_access_token),
                medium: field(&body.medium),
                address: field(&body.address),
            }))
        }
    }
}

/// The identity server's answers as errors: a user ID it returns that is not one.
fn bad_mxid(server: &str, mxid: &str) -> ServiceError {
    ServiceError::new(
        502,
        "M_UNKNOWN",
        format!("The identity server {server} returned {mxid:?}, which is not a user ID"),
    )
}

impl Service {
    /// The client for identity servers.
    fn identity(&self) -> &IdentityClient {
        &self.identity
    }

    /// Invites whoever holds `to`: the bound user directly, or else an
    /// invite stored at the identity server plus `m.room.third_party_invite`.
    pub async fn invite_by_third_party(
        &self,
        room: &RoomId,
        sender: &UserId,
        to: ThirdPartyAddress,
    ) -> ServiceResult<()> {
        self.require_room(room).await?;
        // Asked before the identity server is, so that a stranger cannot
        // make us store invites there; the gate still judges the write.
        if !matches!(self.store.membership(room, sender).await?, Some((Membership::Join, _))) {
            return Err(ServiceError::forbidden(format!(
                "{sender} is not in room {room}, so cannot invite anyone"
            )));
        }
        self.limits.third_party_invite.check(sender.as_str())?;
        let session = self.identity().session(&to.id_server, &to.id_access_token);
        if let Some(mxid) = session.lookup(&to.medium, &to.address).await? {
            let target = UserId::parse(&mxid).map_err(|_| bad_mxid(&to.id_server, &mxid))?;
            return self
                .change_membership(room, sender, &target, Action::Invite, None)
                .await;
        }
        let mut request = json!({
            "medium": to.medium,
            "address": to.address,
            "room_id": room.as_str(),
            "sender": sender.as_str(),
            "sender_display_name": sender.localpart(),
        });
        if let Some(name) = self.room_name(room).await? {
            request["room_name"] = Value::String(name);
        }
        let stored = session.store_invite(request).await?;
        self.set_state(room, sender, THIRD_PARTY_INVITE, &stored.token, stored.content)
            .await
            .map(|_| ())
    }

    async fn room_name(&self, room: &RoomId) -> ServiceResult<Option<String>> {
        let event = self.store.state_event(room, "m.room.name", "").await?;
        Ok(event.and_then(|e| e.content.get("name").and_then(Value::as_str).map(str::to_string)))
    }

    /// `/3pid/onbind`: each waiting invite becomes a member invite for the
    /// bound user. One refused invite does not stop the others; the answer
    /// names every refusal.
    pub async fn on_third_party_bind(&self, bind: models::ThirdPartyBind) -> ServiceResult<()> {
        let mxid = UserId::parse(&bind.mxid).map_err(|e| ServiceError::invalid_param(format!("mxid: {e}")))?;
        self.require_local(&mxid, "User")?;
        let mut refused = Vec::new();
        for invite in bind.invites.unwrap_or_default() {
            let room = invite.room_id.clone();
            match self.exchange_third_party_invite(&mxid, invite).await {
                Ok(()) => {}
                Err(e) if matches!(e.status, 400 | 403 | 404) => refused.push(format!("{room}: {}", e.message)),
                Err(e) => return Err(e),
            }
        }
        if refused.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::forbidden(refused.join("; ")))
        }
    }

    /// One signed invite: an `m.room.member` invite for `mxid`, sent by the
    /// original inviter, which the gate allows only if the signature checks out.
    async fn exchange_third_party_invite(
        &self,
        mxid: &UserId,
        invite: models::ThirdPartyBindInvitesItem,
    ) -> ServiceResult<()> {
        let room = RoomId::parse(&invite.room_id).map_err(|e| ServiceError::invalid_param(format!("room_id: {e}")))?;
        let sender = UserId::parse(&invite.sender).map_err(|e| ServiceError::invalid_param(format!("sender: {e}")))?;
        self.require_room(&room).await?;
        // A bound invite is still an invite: invite blocking applies to it too.
        self.require_invites_allowed(mxid).await?;
        let signed = invite.signed;
        let whom = mxid.clone();
        let who = sender.clone();
        let plan: Plan = Box::new(move |auth| {
            // A retried call for an invite already done changes nothing.
            if matches!(
                loaded_membership(auth, &whom)?,
                Some(Membership::Invite | Membership::Join)
            ) {
                return Ok(Vec::new());
            }
            let token = signed.get("token").and_then(Value::as_str).unwrap_or_default();
            let display_name = auth
                .third_party_invite(token)
                .map(|p| p.display_name.clone())
                .unwrap_or_default();
            let mut content = Map::new();
            content.insert("membership".into(), json!("invite"));
            content.insert(
                "third_party_invite".into(),
                json!({"display_name": display_name, "signed": Value::Object(signed)}),
            );
            let proposed = ProposedEvent {
                sender: who,
                event_type: "m.room.member".into(),
                state_key: Some(whom.to_string()),
                content,
            };
            Ok(vec![authorize(auth, proposed).map_err(refuse)?])
        });
        self.store
            .write_room(RoomWrite {
                room,
                create: None,
                users: vec![sender, mxid.clone()],
                txn: None,
                plan,
            })
            .await?;
        Ok(())
    }

    /// `/openid/request_token`: a token proving to a third party that the caller is `user`.
    pub fn request_openid_token(&self, caller: &UserId, user: &UserId) -> ServiceResult<String> {
        if caller != user {
            return Err(ServiceError::forbidden(format!(
                "{caller} cannot request OpenID tokens for {user}"
            )));
        }
        self.openid.issue(user)
    }

    /// `/openid/userinfo`: whom a token was issued to.
    pub fn openid_user(&self, token: &str) -> ServiceResult<UserId> {
        self.openid.user_of(token)
    }
}
