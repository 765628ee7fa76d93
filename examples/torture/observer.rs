//! Long-polling `/sync` clients that remember every answer: which events each
//! token range held, so that after the restart the same ranges can be read
//! again, and which events they received, so that nothing is missing.

use crate::http::{enc, parse_token, token, Account, Conn, Req, V3};
use crate::load::Ctx;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// Big enough that a cycle's events never make a timeline `limited`; when one
/// is anyway, the gap is read through `/messages`, as a client would.
const TIMELINE_FILTER: &str = r#"{"room":{"timeline":{"limit":1000}}}"#;
/// A long poll, short enough that a cycle holds several of them.
const POLL_TIMEOUT_MS: u64 = 1000;

/// One `/sync` answer: the events of each room in (since, next].
#[derive(Debug, Clone)]
pub struct Window {
    pub since: u64,
    pub next: u64,
    /// Room id → event ids in the order the timeline gave them.
    pub rooms: BTreeMap<String, Vec<String>>,
}

/// A sync client that never leaves its rooms.
#[derive(Clone)]
pub struct Observer {
    pub account: Account,
    /// Where the next sync resumes.
    pub token: u64,
    /// `token` when the current cycle began.
    pub first_since: u64,
    /// The cycle's answers before the kill, in order; consecutive ones share a token.
    pub windows: Vec<Window>,
    /// The answer of the sync resumed after the restart.
    pub resumed: Option<Window>,
    /// (room, event id) shown in an answer that could not be completed before the kill.
    pub seen_elsewhere: Vec<(String, String)>,
}

impl Observer {
    pub fn new(account: Account, token: u64) -> Observer {
        Observer {
            account,
            token,
            first_since: token,
            windows: Vec::new(),
            resumed: None,
            seen_elsewhere: Vec::new(),
        }
    }

    /// Keeps an answer and moves the token on.
    pub fn record(&mut self, window: Window) {
        self.token = window.next;
        self.windows.push(window);
    }

    pub fn begin_cycle(&mut self) {
        self.first_since = self.token;
        self.windows.clear();
        self.resumed = None;
        self.seen_elsewhere.clear();
    }

    /// The highest position a token of this cycle's answers named.
    pub fn shown_max(&self) -> u64 {
        self.windows.iter().map(|w| w.next).max().unwrap_or(self.first_since)
    }

    /// Every (room, event id) any answer of this cycle showed.
    pub fn seen(&self) -> impl Iterator<Item = (&str, &str)> {
        self.windows
            .iter()
            .chain(self.resumed.iter())
            .flat_map(|w| {
                w.rooms
                    .iter()
                    .flat_map(|(r, ids)| ids.iter().map(move |i| (r.as_str(), i.as_str())))
            })
            .chain(self.seen_elsewhere.iter().map(|(r, i)| (r.as_str(), i.as_str())))
    }

    /// The event ids of `room` this cycle's complete answers delivered.
    pub fn received(&self, room: &str) -> HashSet<&str> {
        self.windows
            .iter()
            .chain(self.resumed.iter())
            .filter_map(|w| w.rooms.get(room))
            .flatten()
            .map(String::as_str)
            .collect()
    }
}

/// Why a poll produced no window.
pub enum PollError {
    /// The sync answered but the gap of a limited timeline could not be read;
    /// what it did show is kept.
    Incomplete(Vec<(String, String)>),
    Failed(String),
}

impl PollError {
    pub fn describe(&self) -> String {
        match self {
            PollError::Incomplete(_) => "the gap of a limited timeline could not be read".into(),
            PollError::Failed(e) => e.clone(),
        }
    }
}

/// `/sync` from `since`, with the gaps of limited timelines filled in.
pub async fn poll(conn: &mut Conn, account: &Account, since: u64, timeout_ms: u64) -> Result<Window, PollError> {
    let path = format!(
        "{V3}/sync?since={}&timeout={timeout_ms}&filter={}",
        token(since),
        enc(TIMELINE_FILTER)
    );
    let resp = conn
        .call(&Req::get(path, &account.token))
        .await
        .map_err(PollError::Failed)?;
    let (mut window, gaps) = parse_sync(since, &resp.body).map_err(PollError::Failed)?;
    for (room, prev_batch) in gaps {
        match range(conn, account, &room, since, Some(prev_batch)).await {
            Ok(mut older) => {
                let ids = window.rooms.entry(room).or_default();
                older.append(ids);
                *ids = older;
            }
            Err(_) => {
                let shown = window
                    .rooms
                    .into_iter()
                    .flat_map(|(r, ids)| ids.into_iter().map(move |i| (r.clone(), i)))
                    .collect();
                return Err(PollError::Incomplete(shown));
            }
        }
    }
    Ok(window)
}

/// The window of a sync answer, and (room, prev_batch) of each limited timeline.
fn parse_sync(since: u64, body: &Value) -> Result<(Window, Vec<(String, u64)>), String> {
    let next = body
        .get("next_batch")
        .and_then(Value::as_str)
        .and_then(parse_token)
        .ok_or_else(|| format!("sync answer without a next_batch token: {body}"))?;
    let mut window = Window {
        since,
        next,
        rooms: BTreeMap::new(),
    };
    let mut gaps = Vec::new();
    let joined = body.pointer("/rooms/join").and_then(Value::as_object);
    for (room, entry) in joined.into_iter().flatten() {
        let timeline = entry.get("timeline").cloned().unwrap_or(Value::Null);
        let ids: Vec<String> = timeline
            .get("events")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| e.get("event_id").and_then(Value::as_str).map(str::to_string))
            .collect();
        if timeline.get("limited").and_then(Value::as_bool) == Some(true) {
            let prev = timeline
                .get("prev_batch")
                .and_then(Value::as_str)
                .and_then(parse_token)
                .ok_or_else(|| format!("limited timeline of {room} without a prev_batch token"))?;
            gaps.push((room.clone(), prev));
        }
        window.rooms.insert(room.clone(), ids);
    }
    Ok((window, gaps))
}

/// Event ids of `room` in (from, to], oldest first, every page of them.
pub async fn range(
    conn: &mut Conn,
    account: &Account,
    room: &str,
    from: u64,
    to: Option<u64>,
) -> Result<Vec<String>, String> {
    Ok(crate::history::read(conn, account, room, from, to)
        .await?
        .into_iter()
        .map(|e| e.id)
        .collect())
}

/// Long-polls until the kill and hands the observer back with its answers.
pub async fn watch(ctx: Arc<Ctx>, mut obs: Observer) -> Observer {
    let mut conn = ctx.conn();
    while !ctx.process.is_killed() {
        match poll(&mut conn, &obs.account, obs.token, POLL_TIMEOUT_MS).await {
            Ok(window) => obs.record(window),
            Err(PollError::Incomplete(shown)) => {
                obs.seen_elsewhere.extend(shown);
                if !ctx.process.is_killed() {
                    ctx.problem(format!(
                        "{}: could not read the gap of a limited timeline",
                        obs.account.user_id
                    ));
                }
                break;
            }
            Err(PollError::Failed(e)) => {
                if !ctx.process.is_killed() {
                    ctx.problem(format!("{}: sync failed without a kill: {e}", obs.account.user_id));
                }
                break;
            }
        }
    }
    obs
}

/// The first sync after the restart, from the last token the observer was given.
pub async fn resume(conn: &mut Conn, obs: &mut Observer) -> Result<(), String> {
    match poll(conn, &obs.account, obs.token, 0).await {
        Ok(window) => {
            obs.token = window.next;
            obs.resumed = Some(window);
            Ok(())
        }
        Err(e) => Err(e.describe()),
    }
}

/// The position a client is shown by a sync without `since` and without
/// events (the account must be joined nowhere, or this is expensive).
pub async fn position(conn: &mut Conn, account: &Account) -> Result<u64, String> {
    let filter = enc(r#"{"room":{"timeline":{"limit":0}}}"#);
    let resp = conn
        .call(&Req::get(format!("{V3}/sync?filter={filter}"), &account.token))
        .await?;
    resp.str_field("next_batch")
        .as_deref()
        .and_then(parse_token)
        .ok_or_else(|| format!("sync answer without a next_batch token: {}", resp.body))
}
