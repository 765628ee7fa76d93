//! A room's history as `/messages` reads it forward between two tokens:
//! the ground truth after a restart.

use crate::http::{enc, parse_token, token, Account, Conn, Req, V3};
use crate::model::M;
use serde_json::Value;

const PAGE: usize = 1000;

/// The parts of an event the checks look at.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub kind: String,
    pub state_key: Option<String>,
    /// `content.membership` of member events.
    pub membership: Option<M>,
    /// `content.body` of messages.
    pub body: Option<String>,
}

fn event_of(raw: &Value) -> Option<Event> {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    Some(Event {
        id: s(raw.get("event_id"))?,
        kind: s(raw.get("type"))?,
        state_key: s(raw.get("state_key")),
        membership: raw
            .pointer("/content/membership")
            .and_then(Value::as_str)
            .and_then(M::parse),
        body: s(raw.pointer("/content/body")),
    })
}

/// Events of `room` with from < position <= to (to: the newest), oldest first.
pub async fn read(
    conn: &mut Conn,
    account: &Account,
    room: &str,
    from: u64,
    to: Option<u64>,
) -> Result<Vec<Event>, String> {
    let mut events = Vec::new();
    let mut from = from;
    loop {
        let mut path = format!(
            "{V3}/rooms/{}/messages?dir=f&from={}&limit={PAGE}",
            enc(room),
            token(from)
        );
        if let Some(to) = to {
            path.push_str(&format!("&to={}", token(to)));
        }
        let resp = conn.call(&Req::get(path, &account.token)).await?;
        let chunk = resp
            .body
            .get("chunk")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for raw in &chunk {
            events.push(
                event_of(raw)
                    .ok_or_else(|| format!("/messages of {room} returned an event without id or type: {raw}"))?,
            );
        }
        let end = resp.str_field("end").as_deref().and_then(parse_token);
        match end {
            Some(end) if chunk.len() == PAGE && end > from => from = end,
            _ => return Ok(events),
        }
    }
}
