//! Membership changes: propose one `m.room.member` event, let the gate judge
//! it against the room as it is when the write runs, and acknowledge once it
//! (or the state that made it unnecessary) is durable.

use super::error::{ServiceError, ServiceResult};
use super::ratelimit::RateLimits;
use super::Service;
use crate::ids::{RoomAliasId, RoomId, RoomOrAlias, UserId};
use crate::membership::auth::{authorize, AuthState, Authorized, ProposedEvent};
use crate::membership::auth_state::join_rule_of;
use crate::membership::restricted::{self, AUTHORISER_KEY};
use crate::membership::rules::{self, Decision, RoomView};
use crate::membership::state::{JoinRule, Membership, PowerLevels};
use crate::store::{Event, Plan, Refusal, RoomWrite, RoomWritten, StoreError};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

/// How many of a restricted room's members with invite power a join loads
/// as possible authorisers: enough that one leaving meanwhile does not
/// matter, few enough that the write stays a handful of point reads.
const AUTHORISER_CANDIDATES: usize = 5;

/// What a join needs besides the room's own state, read before the write:
/// the rooms the joiner is in (for `allow`), and the members who might
/// vouch for a restricted join, best first. The gate judges both again
/// against the state the write sees.
///
/// Only a restricted join rule asks for them, so they are read only when the
/// rule read before the write is restricted: the scan of the joiner's rooms
/// is a blocking-pool hop, and it cost about a fifth of the server's CPU per
/// membership op in the benchmark's mix of public joins. A rule that turns
/// restricted in between makes the plan refuse with [`StaleJoinFacts`], and
/// the join is planned again with the facts read.
#[derive(Debug, Clone, Default)]
pub(super) struct JoinFacts {
    pub rooms_of_joiner: Option<BTreeSet<RoomId>>,
    pub candidates: Vec<UserId>,
}

/// The plan of a join found the room restricted, but its facts were read
/// when it was not: plan it again with them.
#[derive(Debug)]
pub(super) struct StaleJoinFacts;

impl std::fmt::Display for StaleJoinFacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the join rule became restricted after the join's facts were read")
    }
}

impl std::error::Error for StaleJoinFacts {}

impl JoinFacts {
    /// Loads the joiner's rooms into `auth` and, for a join that needs one
    /// (restricted rule, joiner neither joined nor invited), names the
    /// authoriser in `content`: the best candidate still joined with invite power.
    pub(super) fn apply(
        self,
        auth: &mut AuthState,
        joiner: &UserId,
        content: &mut Map<String, Value>,
    ) -> Result<(), Refusal> {
        let current = loaded_membership(auth, joiner)?;
        let restricted_rule = auth.join_rule().is_restricted();
        match self.rooms_of_joiner {
            Some(rooms) => auth.load_rooms_of(joiner.clone(), rooms),
            None if restricted_rule => return Err(Box::new(StaleJoinFacts)),
            None => {}
        }
        if !restricted_rule || matches!(current, Some(Membership::Join | Membership::Invite)) {
            return Ok(());
        }
        let mut loaded = Vec::with_capacity(self.candidates.len());
        for c in &self.candidates {
            loaded.push((c, loaded_membership(auth, c)?));
        }
        let levels = auth.power_levels();
        let view = RoomView {
            join_rule: auth.join_rule(),
            power_levels: &levels,
        };
        if let Some(chosen) = restricted::choose_authoriser(view, auth.room().server_name(), loaded) {
            content.insert(AUTHORISER_KEY.into(), json!(chosen.as_str()));
        }
        Ok(())
    }
}

/// A membership change one user asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Join,
    Invite,
    Leave,
    Kick,
    Ban,
    Unban,
    Knock,
}

impl Action {
    /// The action's name, as metrics label it.
    pub fn name(self) -> &'static str {
        match self {
            Action::Join => "join",
            Action::Invite => "invite",
            Action::Leave => "leave",
            Action::Kick => "kick",
            Action::Ban => "ban",
            Action::Unban => "unban",
            Action::Knock => "knock",
        }
    }

    /// The membership the target has afterwards.
    fn resulting(self) -> Membership {
        match self {
            Action::Join => Membership::Join,
            Action::Invite => Membership::Invite,
            Action::Leave | Action::Kick | Action::Unban => Membership::Leave,
            Action::Ban => Membership::Ban,
            Action::Knock => Membership::Knock,
        }
    }

    /// What the endpoint itself insists on, beyond the gate: a leave of a
    /// banned user is an unban to the gate, which `/kick` must not do, and a
    /// leave of someone not banned a kick, which `/unban` must not do.
    fn endpoint_check(self, target: &UserId, current: Option<Membership>) -> Decision {
        match self {
            Action::Kick if current == Some(Membership::Ban) => rules::kick_target(target, current),
            Action::Unban => rules::unban_target(target, current),
            _ => Decision::Allowed,
        }
    }
}

/// Charges a membership change that will be written to the limits it
/// counts against, as Synapse does: joins to the joiner; invites to the
/// issuer, the room and the invitee, all checked before any is charged;
/// kicks, bans and unbans to the sender's moderation budget; leaves to none.
/// A knock asks to join, so it counts as a join, as in Synapse.
fn charge(limits: &RateLimits, action: Action, sender: &UserId, target: &UserId, room: &RoomId) -> ServiceResult<()> {
    match action {
        Action::Leave => Ok(()),
        Action::Join | Action::Knock => limits.join.check(sender.as_str()),
        Action::Invite => {
            limits.invite.peek(sender.as_str())?;
            limits.invite_per_room.peek(room.as_str())?;
            limits.invite_per_invitee.peek(target.as_str())?;
            limits.invite.check(sender.as_str())?;
            limits.invite_per_room.check(room.as_str())?;
            limits.invite_per_invitee.check(target.as_str())
        }
        Action::Kick | Action::Ban | Action::Unban => limits.moderation.check(sender.as_str()),
    }
}

/// A refusal carrying the service error the client is told.
pub(super) fn refuse(e: impl Into<ServiceError>) -> Refusal {
    Box::new(e.into())
}

/// The membership of `user` as loaded for the plan (a missing one is a bug).
pub(super) fn loaded_membership(auth: &AuthState, user: &UserId) -> Result<Option<Membership>, Refusal> {
    auth.membership(user).map_err(|e| refuse(ServiceError::internal(e)))
}

/// Judges `events` in order, as one write.
pub(super) fn authorize_all(auth: &mut AuthState, events: Vec<ProposedEvent>) -> Result<Vec<Authorized>, Refusal> {
    events.into_iter().map(|e| authorize(auth, e).map_err(refuse)).collect()
}

/// A plan that writes `events`, judged in order.
pub(super) fn plan_all(events: Vec<ProposedEvent>) -> Plan {
    Box::new(move |auth| authorize_all(auth, events))
}

impl Service {
    /// 404 unless the room exists here; rooms elsewhere get a federation message.
    pub(super) async fn require_room(&self, room: &RoomId) -> ServiceResult<()> {
        if self.store.room_exists(room).await? {
            return Ok(());
        }
        if room.server_name() != self.server_name {
            return Err(ServiceError::not_found(format!(
                "Room {room} is on server {}; this server does not support federation",
                room.server_name()
            )));
        }
        Err(ServiceError::not_found(format!("Room {room} does not exist")))
    }

    /// Resolves `/join/{roomIdOrAlias}`'s parameter to a room id.
    pub async fn resolve_room(&self, target: &RoomOrAlias) -> ServiceResult<RoomId> {
        match target {
            RoomOrAlias::Room(room) => Ok(room.clone()),
            RoomOrAlias::Alias(alias) => self.resolve_alias_here(alias).await,
        }
    }

    /// Looks an alias up in our directory; aliases of other servers need federation.
    pub(super) async fn resolve_alias_here(&self, alias: &RoomAliasId) -> ServiceResult<RoomId> {
        if alias.server_name() != self.server_name {
            return Err(ServiceError::not_found(format!(
                "Room alias {alias} is on server {}; this server does not support federation",
                alias.server_name()
            )));
        }
        self.store
            .resolve_alias(alias)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("Room alias {alias} does not exist")))
    }

    /// Joins `user` to `room`; joining again changes nothing and writes nothing.
    pub async fn join(&self, room: &RoomId, user: &UserId, reason: Option<String>) -> ServiceResult<()> {
        self.change_membership(room, user, user, Action::Join, reason).await
    }

    /// Applies one membership change by `sender` to `target`.
    pub async fn change_membership(
        &self,
        room: &RoomId,
        sender: &UserId,
        target: &UserId,
        action: Action,
        reason: Option<String>,
    ) -> ServiceResult<()> {
        self.require_room(room).await?;
        if action != Action::Join && action != Action::Leave && sender != target {
            self.require_local(target, "User")?;
            if !self.store.user_exists(target).await? {
                return Err(ServiceError::not_found(format!(
                    "User {target} does not exist on this server"
                )));
            }
        }
        if action == Action::Invite {
            self.require_invites_allowed(target).await?;
        }
        let written = match self
            .write_change(room, sender, target, action, reason.clone(), false)
            .await?
        {
            Some(written) => written,
            // The rule turned restricted meanwhile: planned again with the
            // facts read, the join cannot find them stale a second time.
            None => self
                .write_change(room, sender, target, action, reason, true)
                .await?
                .ok_or_else(|| ServiceError::internal("a join planned with its facts found them stale"))?,
        };
        if let RoomWritten::Written(events) = &written {
            self.metrics.membership.changed(action.name(), events.len() as u64);
        }
        Ok(())
    }

    /// Plans and writes one membership change; `None` if it was a join
    /// planned without the facts a restricted rule needs (see [`JoinFacts`]),
    /// which `facts_needed` reads whatever the rule.
    async fn write_change(
        &self,
        room: &RoomId,
        sender: &UserId,
        target: &UserId,
        action: Action,
        reason: Option<String>,
        facts_needed: bool,
    ) -> ServiceResult<Option<RoomWritten>> {
        let mut content = Map::new();
        content.insert("membership".into(), json!(action.resulting().as_str()));
        if matches!(action, Action::Join | Action::Knock) {
            content.insert("displayname".into(), json!(target.localpart()));
        }
        let has_reason = reason.is_some();
        if let Some(reason) = reason {
            content.insert("reason".into(), Value::String(reason));
        }
        let join_facts = match action {
            Action::Join => Some(self.join_facts(room, target, facts_needed).await?),
            _ => None,
        };
        let mut proposed = ProposedEvent {
            sender: sender.clone(),
            event_type: "m.room.member".into(),
            state_key: Some(target.to_string()),
            content,
        };
        let limits = self.limits.clone();
        let (who, whom) = (sender.clone(), target.clone());
        let mut users = vec![sender.clone()];
        if target != sender {
            users.push(target.clone());
        }
        if let Some(facts) = &join_facts {
            users.extend(
                facts
                    .candidates
                    .iter()
                    .filter(|c| !users.contains(c))
                    .cloned()
                    .collect::<Vec<_>>(),
            );
        }
        let plan: Plan = Box::new(move |auth| {
            let current = loaded_membership(auth, &whom)?;
            if let Decision::Denied(why) = action.endpoint_check(&whom, current) {
                return Err(refuse(ServiceError::forbidden(why)));
            }
            if let Some(facts) = join_facts {
                facts.apply(auth, &whom, &mut proposed.content)?;
            }
            let authorized = authorize(auth, proposed).map_err(refuse)?;
            // Idempotent: re-joining, re-inviting, re-banning or re-knocking writes no event and is not charged.
            let unchanged = current == Some(action.resulting())
                && matches!(action, Action::Join | Action::Invite | Action::Ban | Action::Knock)
                && !has_reason;
            if unchanged {
                return Ok(Vec::new());
            }
            charge(&limits, action, &who, &whom, auth.room()).map_err(refuse)?;
            Ok(vec![authorized])
        });
        let write = RoomWrite {
            room: room.clone(),
            create: None,
            users,
            txn: None,
            plan,
        };
        match self.store.write_room(write).await {
            Err(StoreError::Refused(why)) if why.is::<StaleJoinFacts>() => Ok(None),
            written => Ok(Some(written?)),
        }
    }

    /// The facts a join of `joiner` to `room` needs (see [`JoinFacts`]):
    /// none unless the rule is restricted now or `needed` says to read them.
    pub(super) async fn join_facts(&self, room: &RoomId, joiner: &UserId, needed: bool) -> ServiceResult<JoinFacts> {
        let rule = self
            .store
            .state_event(room, "m.room.join_rules", "")
            .await?
            .and_then(|e| e.content.as_object().and_then(join_rule_of));
        if !needed && !rule.is_some_and(JoinRule::is_restricted) {
            return Ok(JoinFacts::default());
        }
        Ok(JoinFacts {
            rooms_of_joiner: Some(self.joined_rooms(joiner).await?.into_iter().collect()),
            candidates: self.authoriser_candidates(room).await?,
        })
    }

    /// The joined local members of `room` with invite power, highest level
    /// first (then by user id), at most [`AUTHORISER_CANDIDATES`].
    async fn authoriser_candidates(&self, room: &RoomId) -> ServiceResult<Vec<UserId>> {
        let levels: PowerLevels = match self.store.state_event(room, "m.room.power_levels", "").await? {
            Some(e) => serde_json::from_value(e.content).unwrap_or_default(),
            None => PowerLevels::default(),
        };
        let mut able: Vec<UserId> = self
            .store
            .members(room)
            .await?
            .into_iter()
            .filter(|(u, m)| *m == Membership::Join && u.server_name() == self.server_name)
            .filter(|(u, _)| levels.user_level(u) >= levels.invite)
            .map(|(u, _)| u)
            .collect();
        able.sort_by(|a, b| levels.user_level(b).cmp(&levels.user_level(a)).then_with(|| a.cmp(b)));
        able.truncate(AUTHORISER_CANDIDATES);
        Ok(able)
    }

    /// Counts the member events of a write that is not one membership
    /// action (createRoom's creator join and invites), by the membership set.
    pub(super) fn count_member_events(&self, events: &[Event]) {
        for event in events.iter().filter(|e| e.event_type == "m.room.member") {
            let action = match event.content.get("membership").and_then(Value::as_str) {
                Some("join") => Action::Join,
                Some("invite") => Action::Invite,
                _ => continue,
            };
            self.metrics.membership.changed(action.name(), 1);
        }
    }
}
