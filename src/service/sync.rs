//! `/sync` (v3 shape) and the v1 `/initialSync`: what a client needs to show
//! the user's rooms, built from the event log by stream position.
//!
//! A sync token is a stream position ("s" + position, see
//! `messages::token`): everything at or below it was delivered. Positions
//! persist, so tokens stay valid across restarts. The work per request is
//! proportional to the user's rooms (`rooms_of`), not to all rooms.

use super::error::{ServiceError, ServiceResult};
use super::messages::{limit_of, parse_token, token};
use super::{json_object, Service};
use crate::generated::models;
use crate::ids::{RoomId, UserId};
use crate::membership::rules::Window;
use crate::membership::state::Membership;
use crate::store::Event;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Timeline events per room when the filter does not say.
pub const DEFAULT_TIMELINE_LIMIT: usize = 10;
/// The longest a sync waits, whatever `timeout` asks.
const MAX_TIMEOUT: Duration = Duration::from_secs(600);
/// State types an invitee or knocker sees (stripped) before joining.
const INVITE_STATE_TYPES: &[&str] = &[
    "m.room.create",
    "m.room.join_rules",
    "m.room.name",
    "m.room.canonical_alias",
    "m.room.avatar",
    "m.room.encryption",
    "m.room.topic",
];

/// A `/sync` request, parsed.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub since: Option<u64>,
    pub timeout: Duration,
    pub timeline_limit: usize,
    pub full_state: bool,
    /// The filter's `room.include_leave`: rooms the user left are shown
    /// on an initial sync too (never forgotten ones).
    pub include_leave: bool,
}

/// A stored event in the client format.
pub fn client_event(e: Event) -> models::ClientEvent {
    let content = json_object(e.content);
    models::ClientEvent {
        event_id: e.event_id,
        r#type: e.event_type,
        sender: e.sender,
        origin_server_ts: e.origin_server_ts as i64,
        content,
        room_id: e.room_id,
        state_key: e.state_key,
        unsigned: None,
    }
}

fn stripped(e: Event) -> models::StrippedStateEvent {
    models::StrippedStateEvent {
        r#type: e.event_type,
        state_key: e.state_key.unwrap_or_default(),
        sender: e.sender,
        content: json_object(e.content),
    }
}

fn empty_list() -> models::EventList {
    models::EventList { events: Vec::new() }
}

/// `room.timeline.limit` of a filter, if it sets one.
fn timeline_limit_of(filter: &Value) -> ServiceResult<Option<usize>> {
    match filter.pointer("/room/timeline/limit") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(|l| limit_of(Some(l), DEFAULT_TIMELINE_LIMIT).map(Some))
            .unwrap_or_else(|| {
                Err(ServiceError::new(
                    400,
                    "M_BAD_JSON",
                    "room.timeline.limit must be an integer",
                ))
            }),
    }
}

impl Service {
    /// Parses `/sync`'s parameters; `filter` is inline JSON or a stored filter id.
    pub async fn sync_request(
        &self,
        user: &UserId,
        since: Option<&str>,
        timeout: Option<i64>,
        filter: Option<&str>,
        full_state: Option<bool>,
    ) -> ServiceResult<SyncRequest> {
        let since = since
            .map(|s| parse_token(s, "since", self.store.durable_pos()))
            .transpose()?;
        let timeout = match timeout {
            Some(t) if t < 0 => return Err(ServiceError::invalid_param("timeout must not be negative")),
            Some(t) => Duration::from_millis(t as u64).min(MAX_TIMEOUT),
            None => Duration::ZERO,
        };
        let filter = match filter.map(str::trim) {
            None | Some("") => None,
            Some(inline) if inline.starts_with('{') => Some(
                serde_json::from_str::<Value>(inline)
                    .map_err(|e| ServiceError::new(400, "M_BAD_JSON", format!("filter is not valid JSON: {e}")))?,
            ),
            Some(id) => Some(
                self.store
                    .filter(user, id)
                    .await?
                    .ok_or_else(|| ServiceError::invalid_param(format!("{user} has no filter with ID {id:?}")))?,
            ),
        };
        let timeline_limit = match &filter {
            Some(f) => timeline_limit_of(f)?.unwrap_or(DEFAULT_TIMELINE_LIMIT),
            None => DEFAULT_TIMELINE_LIMIT,
        };
        let include_leave = filter
            .as_ref()
            .and_then(|f| f.pointer("/room/include_leave"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(SyncRequest {
            since,
            timeout,
            timeline_limit,
            full_state: full_state.unwrap_or(false),
            include_leave,
        })
    }

    /// Answers a sync: at once when there is something new (or no `since`),
    /// otherwise as soon as a write brings something, or at the timeout.
    pub async fn sync(&self, user: &UserId, req: &SyncRequest) -> ServiceResult<models::SyncResponse> {
        // Subscribe before reading, so a write that becomes durable between
        // the read and the wait still wakes us.
        let mut changes = self.store.subscribe();
        let deadline = tokio::time::Instant::now() + req.timeout;
        loop {
            let now = self.store.durable_pos();
            let mut rooms = self.sync_rooms(user, req, now).await?;
            let account = self.sync_account_data(user, req.since, now).await?;
            self.add_room_account_data(&mut rooms, user, account.rooms, now).await?;
            if !rooms.invite.is_empty() && self.invites_blocked(user).await? {
                // The spec: pending invites of a user who blocks invites are not served.
                rooms.invite.clear();
            }
            let nothing = rooms.join.is_empty()
                && rooms.invite.is_empty()
                && rooms.leave.is_empty()
                && rooms.knock.is_empty()
                && account.global.is_empty();
            let closing = self.closing.load(std::sync::atomic::Ordering::Acquire);
            if req.since.is_none() || req.full_state || !nothing || closing || tokio::time::Instant::now() >= deadline {
                return Ok(models::SyncResponse {
                    next_batch: token(now),
                    rooms,
                    presence: empty_list(),
                    account_data: models::EventList { events: account.global },
                    to_device: empty_list(),
                    device_lists: models::DeviceLists {
                        changed: Some(Vec::new()),
                        left: Some(Vec::new()),
                    },
                    device_one_time_keys_count: BTreeMap::new(),
                });
            }
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return Err(ServiceError::internal("the event stream closed"));
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// The rooms section of a sync as of stream position `now`.
    async fn sync_rooms(&self, user: &UserId, req: &SyncRequest, now: u64) -> ServiceResult<models::SyncRooms> {
        let since = req.since.map(|s| s.min(now));
        let mut join = BTreeMap::new();
        let mut invite = BTreeMap::new();
        let mut leave = BTreeMap::new();
        let mut knock = BTreeMap::new();
        for (room, (membership, mpos)) in self.store.rooms_of(user).await? {
            // A change after `now` shows up in the next sync, whose `since` is `now`.
            if mpos > now {
                continue;
            }
            let changed = since.is_none_or(|s| mpos > s);
            match membership {
                Membership::Join => {
                    if let Some(entry) = self.joined_room(&room, user, since, mpos, now, req).await? {
                        join.insert(room.to_string(), entry);
                    }
                }
                Membership::Invite if changed => {
                    invite.insert(room.to_string(), self.invited_room(&room, user).await?);
                }
                Membership::Knock if changed => {
                    knock.insert(room.to_string(), self.knocked_room(&room, user).await?);
                }
                Membership::Leave | Membership::Ban
                    if changed
                        && (since.is_some() || req.include_leave)
                        && !self.store.forgotten(user, &room).await? =>
                {
                    let since = since.unwrap_or(0);
                    leave.insert(room.to_string(), self.left_room(&room, user, since, mpos, req).await?);
                }
                _ => {}
            }
        }
        Ok(models::SyncRooms {
            join,
            invite,
            leave,
            knock,
        })
    }

    /// The newest events inside `windows` and in (after, upto], whether
    /// older visible ones were left out, the prev_batch token, and the
    /// position of the first event.
    async fn timeline(
        &self,
        room: &RoomId,
        windows: &[Window],
        (after, upto): (u64, u64),
        limit: usize,
    ) -> ServiceResult<(models::Timeline, Option<u64>)> {
        let events = self.visible_events(room, windows, after, upto, limit, true).await?;
        let first = events.first().map(|e| e.stream_pos);
        let limited = match first {
            Some(f) => !self
                .visible_events(room, windows, after, f - 1, 1, true)
                .await?
                .is_empty(),
            None => {
                limit == 0
                    && !self
                        .visible_events(room, windows, after, upto, 1, true)
                        .await?
                        .is_empty()
            }
        };
        let timeline = models::Timeline {
            prev_batch: Some(token(first.map_or(upto, |f| f - 1))),
            limited,
            events: events.into_iter().map(client_event).collect(),
        };
        Ok((timeline, first))
    }

    async fn joined_room(
        &self,
        room: &RoomId,
        user: &UserId,
        since: Option<u64>,
        mpos: u64,
        now: u64,
        req: &SyncRequest,
    ) -> ServiceResult<Option<models::JoinedRoom>> {
        let newly_joined = since.is_none_or(|s| mpos > s);
        // Joined since before `since`: everything after it is visible, no need to read the past.
        let (windows, after) = if newly_joined {
            let mut windows = self.history_windows_of(room, user, now).await?;
            if windows.is_empty() {
                windows.push(Window {
                    after: mpos.saturating_sub(1),
                    upto: None,
                });
            }
            (windows, 0)
        } else {
            let after = since.unwrap_or(0);
            (vec![Window { after, upto: None }], after)
        };
        let (timeline, first) = self.timeline(room, &windows, (after, now), req.timeline_limit).await?;
        if !newly_joined && !req.full_state && timeline.events.is_empty() {
            return Ok(None);
        }
        let first = first.unwrap_or(now + 1);
        let state: Vec<Event> = if newly_joined || req.full_state {
            self.store
                .current_state(room)
                .await?
                .into_iter()
                .filter(|e| e.stream_pos < first && e.stream_pos <= now)
                .collect()
        } else if timeline.limited {
            // The state changes that fell into the gap between `since` and the timeline.
            self.store
                .current_state(room)
                .await?
                .into_iter()
                .filter(|e| e.stream_pos > after && e.stream_pos < first)
                .collect()
        } else {
            Vec::new()
        };
        Ok(Some(models::JoinedRoom {
            state: models::StateEvents {
                events: state.into_iter().map(client_event).collect(),
            },
            timeline,
            ephemeral: empty_list(),
            account_data: empty_list(),
            unread_notifications: models::UnreadNotifications {
                highlight_count: Some(0),
                notification_count: Some(0),
            },
        }))
    }

    /// The stripped state an invitee or knocker sees.
    async fn stripped_room_state(&self, room: &RoomId) -> ServiceResult<Vec<models::StrippedStateEvent>> {
        let mut events = Vec::new();
        for event_type in INVITE_STATE_TYPES {
            if let Some(e) = self.store.state_event(room, event_type, "").await? {
                events.push(stripped(e));
            }
        }
        Ok(events)
    }

    /// A knocked room: the stripped state and the user's own knock.
    async fn knocked_room(&self, room: &RoomId, user: &UserId) -> ServiceResult<models::KnockedRoom> {
        let mut events = self.stripped_room_state(room).await?;
        if let Some(own) = self.store.state_event(room, "m.room.member", user.as_str()).await? {
            events.push(stripped(own));
        }
        Ok(models::KnockedRoom {
            knock_state: models::KnockState { events },
        })
    }

    async fn invited_room(&self, room: &RoomId, user: &UserId) -> ServiceResult<models::InvitedRoom> {
        let mut events = self.stripped_room_state(room).await?;
        if let Some(invite) = self.store.state_event(room, "m.room.member", user.as_str()).await? {
            if invite.sender != user.as_str() {
                if let Some(inviter) = self.store.state_event(room, "m.room.member", &invite.sender).await? {
                    events.push(stripped(inviter));
                }
            }
            events.push(stripped(invite));
        }
        Ok(models::InvitedRoom {
            invite_state: models::InviteState { events },
        })
    }

    async fn left_room(
        &self,
        room: &RoomId,
        user: &UserId,
        since: u64,
        mpos: u64,
        req: &SyncRequest,
    ) -> ServiceResult<models::LeftRoom> {
        let windows = self.history_windows_of(room, user, mpos).await?;
        let (mut timeline, _) = self.timeline(room, &windows, (since, mpos), req.timeline_limit).await?;
        // The membership change itself is always delivered, so the client learns it is out.
        if let Some(own) = self.store.state_event(room, "m.room.member", user.as_str()).await? {
            if !timeline.events.iter().any(|e| e.event_id == own.event_id) {
                timeline.events.push(client_event(own));
            }
        }
        Ok(models::LeftRoom {
            state: models::StateEvents { events: Vec::new() },
            timeline,
            account_data: empty_list(),
        })
    }
}

/// The account data a sync delivers: global, and per room by room id.
struct SyncAccountData {
    global: Vec<models::JsonObject>,
    rooms: BTreeMap<String, Vec<models::JsonObject>>,
}

/// An account data entry as `/sync` shows it.
fn account_data_event(event_type: String, content: Value) -> models::JsonObject {
    let mut event = models::JsonObject::new();
    event.insert("type".into(), Value::String(event_type));
    event.insert("content".into(), content);
    event
}

impl Service {
    /// Account data changed in (since, now]; all of it on an initial sync.
    async fn sync_account_data(&self, user: &UserId, since: Option<u64>, now: u64) -> ServiceResult<SyncAccountData> {
        let mut out = SyncAccountData {
            global: Vec::new(),
            rooms: BTreeMap::new(),
        };
        for entry in self.store.account_data_changes(user, since.unwrap_or(0), now).await? {
            let event = account_data_event(entry.event_type, entry.content);
            match entry.room {
                None => out.global.push(event),
                Some(room) => out.rooms.entry(room.to_string()).or_default().push(event),
            }
        }
        Ok(out)
    }

    /// Puts each room's account data into its joined-room entry, adding an
    /// entry (with an empty timeline) for a joined room that had no other
    /// change; rooms the user is not joined to get none.
    async fn add_room_account_data(
        &self,
        rooms: &mut models::SyncRooms,
        user: &UserId,
        changes: BTreeMap<String, Vec<models::JsonObject>>,
        now: u64,
    ) -> ServiceResult<()> {
        for (room_id, events) in changes {
            if let Some(entry) = rooms.join.get_mut(&room_id) {
                entry.account_data = models::EventList { events };
                continue;
            }
            let Ok(room) = RoomId::parse(&room_id) else { continue };
            let joined = self
                .store
                .membership(&room, user)
                .await?
                .is_some_and(|(m, pos)| m == Membership::Join && pos <= now);
            if joined {
                rooms.join.insert(
                    room_id,
                    models::JoinedRoom {
                        state: models::StateEvents { events: Vec::new() },
                        timeline: models::Timeline {
                            prev_batch: Some(token(now)),
                            limited: false,
                            events: Vec::new(),
                        },
                        ephemeral: empty_list(),
                        account_data: models::EventList { events },
                        unread_notifications: models::UnreadNotifications {
                            highlight_count: Some(0),
                            notification_count: Some(0),
                        },
                    },
                );
            }
        }
        Ok(())
    }
}

impl Service {
    /// The v1 `/initialSync`: every joined room with its state and newest
    /// `limit` messages, every pending invite with the invite event (unless
    /// the user blocks invites, as for `/sync`), and the global account data.
    pub async fn initial_sync(&self, user: &UserId, limit: usize) -> ServiceResult<models::InitialSyncOk> {
        let now = self.store.durable_pos();
        let invites_blocked = self.invites_blocked(user).await?;
        let mut rooms = Vec::new();
        for (room, (membership, mpos)) in self.store.rooms_of(user).await? {
            if mpos > now {
                continue;
            }
            match membership {
                Membership::Join => rooms.push(self.room_snapshot(&room, user, membership, limit, now).await?),
                Membership::Invite if !invites_blocked => rooms.push(self.invite_snapshot(&room, user, now).await?),
                _ => {}
            }
        }
        let account = self.sync_account_data(user, None, now).await?;
        Ok(models::InitialSyncOk {
            end: token(now),
            presence: Vec::new(),
            account_data: Some(account.global),
            rooms,
        })
    }

    /// `/rooms/{roomId}/initialSync`: the snapshot of one room.
    pub async fn room_initial_sync(&self, room: &RoomId, user: &UserId) -> ServiceResult<models::RoomInitialSync> {
        self.require_room(room).await?;
        self.require_not_forgotten(room, user).await?;
        let now = self.store.durable_pos();
        match self.store.membership(room, user).await?.map(|(m, _)| m) {
            Some(Membership::Invite) => self.invite_snapshot(room, user, now).await,
            Some(m @ (Membership::Join | Membership::Leave | Membership::Ban)) => {
                self.room_snapshot(room, user, m, DEFAULT_TIMELINE_LIMIT, now).await
            }
            _ => Err(ServiceError::forbidden(format!(
                "You are not in room {room} and never were, so you cannot see it"
            ))),
        }
    }

    async fn room_visibility(&self, room: &RoomId) -> ServiceResult<String> {
        let public = self
            .store
            .state_event(room, "m.room.join_rules", "")
            .await?
            .is_some_and(|e| e.content.get("join_rule").and_then(Value::as_str) == Some("public"));
        Ok(if public { "public" } else { "private" }.to_string())
    }

    async fn room_snapshot(
        &self,
        room: &RoomId,
        user: &UserId,
        membership: Membership,
        limit: usize,
        now: u64,
    ) -> ServiceResult<models::RoomInitialSync> {
        let state = self.visible_state(room, user).await?;
        let windows = self.history_windows_of(room, user, now).await?;
        let upto = windows.last().and_then(|w| w.upto).unwrap_or(now).min(now);
        let events = self.visible_events(room, &windows, 0, upto, limit, true).await?;
        let start = token(events.first().map_or(upto, |e| e.stream_pos - 1));
        Ok(models::RoomInitialSync {
            room_id: room.to_string(),
            membership: membership.as_str().to_string(),
            state: Some(state.into_iter().map(client_event).collect()),
            messages: Some(models::PaginationChunk {
                chunk: events.into_iter().map(client_event).collect(),
                start,
                end: Some(token(upto)),
            }),
            visibility: Some(self.room_visibility(room).await?),
            invite: None,
            inviter: None,
            account_data: Some(Vec::new()),
        })
    }

    async fn invite_snapshot(&self, room: &RoomId, user: &UserId, now: u64) -> ServiceResult<models::RoomInitialSync> {
        let invite = self
            .store
            .state_event(room, "m.room.member", user.as_str())
            .await?
            .ok_or_else(|| ServiceError::internal(format!("the invite of {user} to {room} is missing")))?;
        let inviter = invite.sender.clone();
        let invite = client_event(invite);
        Ok(models::RoomInitialSync {
            room_id: room.to_string(),
            membership: Membership::Invite.as_str().to_string(),
            state: Some(vec![invite.clone()]),
            messages: Some(models::PaginationChunk {
                chunk: Vec::new(),
                start: token(now),
                end: Some(token(now)),
            }),
            visibility: Some(self.room_visibility(room).await?),
            invite: Some(invite),
            inviter: Some(inviter),
            account_data: Some(Vec::new()),
        })
    }
}

impl Service {
    /// How many syncs are waiting for a change right now (for tests and metrics).
    pub fn waiting_syncs(&self) -> usize {
        // The service holds no receiver of its own: every one is a waiting sync.
        self.store.subscriber_count()
    }

    /// Makes every waiting sync answer now, and later ones not wait: called
    /// when the server starts shutting down, so long polls do not hold it up.
    pub fn end_waiting_syncs(&self) {
        self.closing.store(true, std::sync::atomic::Ordering::Release);
        self.store.wake_subscribers();
    }
}
