//! The export format: JSON Lines, one typed record per line, and how a
//! snapshot of the key layout becomes one.
//!
//! The first line is a [`Record::Header`] naming the format and its version,
//! the last a [`Record::End`] counting every line, so a truncated file is
//! refused on import. In between: accounts, tokens, then each room with its
//! aliases and its events in stream order, then transaction ids and filters.
//! Only what is not derived is exported; the membership indexes, current
//! state and state history are rebuilt from the events on import, through
//! [`super::indexes`], the code the writer uses.
//!
//! Every tag of [`super::keys`] is accounted for: `U`, `G`, `Y` → account;
//! `T` → token (`D` is rebuilt from it); `R` → room; `A` → alias (`B` is
//! rebuilt); `E` and `K` → event (`M`, `N`, `S`, `H` are rebuilt); `X` → txn; `F` →
//! filter; `Z` → the header's `stream_end`; `V` → the header's `layout`;
//! `C` → account data (`Q` is rebuilt); `O` → forgotten.

use super::codec::{corrupt, decode_str, decode_u64};
use super::event_log;
use super::keys::{self, Tag, SEP};
use super::{AccountFlags, ExportSummary, StoreError};
use ::sled::{IVec, Tree};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::Write;

/// How many events of a room are read at once.
const EVENTS_PER_PAGE: usize = 1024;

/// The format name in the header.
pub const FORMAT: &str = "matrix-membership-export";

/// The version of the format this code writes and reads.
pub const VERSION: u32 = 1;

/// One line of an export file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Record {
    /// First line: what the file is.
    Header {
        format: String,
        version: u32,
        /// The key layout the data came from.
        layout: String,
        /// The highest stream position written.
        stream_end: u64,
    },
    /// A registered user.
    Account {
        user_id: String,
        /// The argon2 hash; empty for an account without a password.
        password_hash: String,
        admin: bool,
        deactivated: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        displayname: Option<String>,
    },
    /// An access token, by its SHA-256 hash (hex): the token itself is never stored.
    Token {
        token_hash: String,
        user_id: String,
        device_id: String,
    },
    /// A room and its metadata (`{creator}`).
    Room { room_id: String, meta: Value },
    /// An alias pointing at a room.
    Alias { alias: String, room_id: String },
    /// A room event at its stream position.
    Event {
        room_id: String,
        stream_pos: u64,
        event_id: String,
        sender: String,
        #[serde(rename = "type")]
        event_type: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state_key: Option<String>,
        content: Value,
        origin_server_ts: u64,
    },
    /// A transaction id and the event it produced.
    Txn {
        user_id: String,
        room_id: String,
        txn_id: String,
        stream_pos: u64,
        event_id: String,
    },
    /// A stored sync filter.
    Filter {
        user_id: String,
        filter_id: String,
        filter: Value,
    },
    /// A piece of a user's account data, global (`room_id` absent) or for a room.
    AccountData {
        user_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room_id: Option<String>,
        #[serde(rename = "type")]
        event_type: String,
        content: Value,
        /// The position of its newest change.
        stream_pos: u64,
    },
    /// A room a user forgot, at the member event they forgot it at.
    Forgotten {
        user_id: String,
        room_id: String,
        stream_pos: u64,
    },
    /// Last line: how many lines the file holds, this one included.
    End { records: u64 },
}

impl From<super::Event> for Record {
    fn from(e: super::Event) -> Record {
        Record::Event {
            room_id: e.room_id,
            stream_pos: e.stream_pos,
            event_id: e.event_id,
            sender: e.sender,
            event_type: e.event_type,
            state_key: e.state_key,
            content: e.content,
            origin_server_ts: e.origin_server_ts,
        }
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads [`hex`] of exactly 32 bytes.
pub fn unhex32(text: &str) -> Result<[u8; 32], String> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return Err(format!("expected 64 hex digits, found {} characters", bytes.len()));
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let pair = std::str::from_utf8(pair).map_err(|e| e.to_string())?;
        out[i] = u8::from_str_radix(pair, 16).map_err(|_| format!("{pair:?} is not hex"))?;
    }
    Ok(out)
}

/// Writes records as JSON lines and counts them (both backends export through it).
pub struct Lines<W: Write> {
    pub out: W,
    pub count: u64,
}

impl<W: Write> Lines<W> {
    pub fn put(&mut self, record: &Record) -> Result<(), StoreError> {
        let io = |e: std::io::Error| StoreError::Io(format!("writing the export failed: {e}"));
        serde_json::to_writer(&mut self.out, record)
            .map_err(|e| StoreError::Io(format!("writing the export failed: {e}")))?;
        self.out.write_all(b"\n").map_err(io)?;
        self.count += 1;
        Ok(())
    }
}

fn scan(tree: &Tree, prefix: &[u8]) -> impl Iterator<Item = Result<(IVec, IVec), StoreError>> {
    tree.scan_prefix(prefix).map(|e| e.map_err(StoreError::from))
}

/// The parts of a key after its tag, split at the separator.
fn parts(key: &[u8]) -> Vec<&[u8]> {
    key[1..].split(|&b| b == SEP).collect()
}

fn text(bytes: &[u8]) -> Result<String, StoreError> {
    decode_str(bytes).map(str::to_owned)
}

fn json(bytes: &[u8], what: &str) -> Result<Value, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(format!("undecodable {what}: {e}")))
}

/// Writes everything `tree` holds, as it is now, to `out`. The caller makes
/// sure nothing writes to the tree meanwhile (the writer thread runs this).
pub fn write_snapshot(tree: &Tree, out: impl Write) -> Result<ExportSummary, StoreError> {
    let mut lines = Lines { out, count: 0 };
    let stream_end = match tree.get(keys::stream_end())? {
        Some(v) => decode_u64(&v)?,
        None => 0,
    };
    let layout = match tree.get(keys::key(Tag::LayoutVersion, &[]))? {
        Some(v) => text(&v)?,
        None => text(keys::LAYOUT_VERSION)?,
    };
    lines.put(&Record::Header {
        format: FORMAT.into(),
        version: VERSION,
        layout,
        stream_end,
    })?;
    accounts(tree, &mut lines)?;
    for entry in scan(tree, &[Tag::TokenUserDevice as u8]) {
        let (k, v) = entry?;
        let owner: Vec<&[u8]> = v.split(|&b| b == SEP).collect();
        let [user, device] = owner[..] else {
            return Err(corrupt("token entry without a device"));
        };
        lines.put(&Record::Token {
            token_hash: hex(&k[1..]),
            user_id: text(user)?,
            device_id: text(device)?,
        })?;
    }
    for entry in scan(tree, &[Tag::RoomMeta as u8]) {
        let (k, v) = entry?;
        room(tree, &text(&k[1..])?, &v, &mut lines)?;
    }
    for entry in scan(tree, &[Tag::UserRoomTxn as u8]) {
        let (k, v) = entry?;
        let p = parts(&k);
        let [user, room, txn] = p[..] else {
            return Err(corrupt("transaction key without three parts"));
        };
        lines.put(&Record::Txn {
            user_id: text(user)?,
            room_id: text(room)?,
            txn_id: text(txn)?,
            stream_pos: decode_u64(&v)?,
            event_id: text(&v[8..])?,
        })?;
    }
    for entry in scan(tree, &[Tag::UserFilter as u8]) {
        let (k, v) = entry?;
        let p = parts(&k);
        let [user, id] = p[..] else {
            return Err(corrupt("filter key without two parts"));
        };
        lines.put(&Record::Filter {
            user_id: text(user)?,
            filter_id: text(id)?,
            filter: json(&v, "filter")?,
        })?;
    }
    user_data(tree, &mut lines)?;
    let records = lines.count + 1;
    lines.put(&Record::End { records })?;
    lines
        .out
        .flush()
        .map_err(|e| StoreError::Io(format!("writing the export failed: {e}")))?;
    Ok(ExportSummary {
        records,
        stream_position: stream_end,
    })
}

/// Account data (`C`; `Q` is rebuilt from it) and forgotten rooms (`O`).
fn user_data<W: Write>(tree: &Tree, lines: &mut Lines<W>) -> Result<(), StoreError> {
    for entry in scan(tree, &[Tag::UserRoomAccountData as u8]) {
        let (k, v) = entry?;
        let p = parts(&k);
        let [user, room, event_type] = p[..] else {
            return Err(corrupt("account data key without three parts"));
        };
        let (stream_pos, content) = super::account_data::decode_entry(&v)?;
        lines.put(&Record::AccountData {
            user_id: text(user)?,
            room_id: (!room.is_empty()).then(|| text(room)).transpose()?,
            event_type: text(event_type)?,
            content,
            stream_pos,
        })?;
    }
    for entry in scan(tree, &[Tag::UserRoomForgotten as u8]) {
        let (k, v) = entry?;
        let p = parts(&k);
        let [user, room] = p[..] else {
            return Err(corrupt("forgotten-room key without two parts"));
        };
        lines.put(&Record::Forgotten {
            user_id: text(user)?,
            room_id: text(room)?,
            stream_pos: decode_u64(&v)?,
        })?;
    }
    Ok(())
}

fn accounts<W: Write>(tree: &Tree, lines: &mut Lines<W>) -> Result<(), StoreError> {
    for entry in scan(tree, &[Tag::UserPassword as u8]) {
        let (k, v) = entry?;
        let user = &k[1..];
        let flags: AccountFlags = match tree.get(keys::key(Tag::UserFlags, &[user]))? {
            Some(f) => serde_json::from_slice(&f).map_err(|e| corrupt(format!("undecodable account flags: {e}")))?,
            None => AccountFlags::default(),
        };
        let displayname = tree
            .get(keys::key(Tag::UserDisplayname, &[user]))?
            .map(|d| text(&d))
            .transpose()?;
        lines.put(&Record::Account {
            user_id: text(user)?,
            password_hash: text(&v)?,
            admin: flags.admin,
            deactivated: flags.deactivated,
            displayname,
        })?;
    }
    Ok(())
}

fn room<W: Write>(tree: &Tree, room_id: &str, meta: &[u8], lines: &mut Lines<W>) -> Result<(), StoreError> {
    lines.put(&Record::Room {
        room_id: room_id.to_owned(),
        meta: json(meta, "room metadata")?,
    })?;
    let alias_prefix = keys::prefix(Tag::RoomAlias, &[room_id.as_bytes()]);
    for entry in scan(tree, &alias_prefix) {
        let (k, _) = entry?;
        lines.put(&Record::Alias {
            alias: text(&k[alias_prefix.len()..])?,
            room_id: room_id.to_owned(),
        })?;
    }
    // A page at a time, in position order, whether single or in chunks.
    let mut after = 0;
    loop {
        let page = event_log::events_between(tree, room_id, (after, u64::MAX), EVENTS_PER_PAGE, false)?;
        let Some(last) = page.last().map(|e| e.stream_pos) else {
            return Ok(());
        };
        for e in page {
            lines.put(&Record::from(e))?;
        }
        after = last;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hashes_round_trip_through_hex() {
        let hash = [0xAB; 32];
        assert_eq!(unhex32(&hex(&hash)).unwrap(), hash);
        assert!(unhex32("ab").is_err());
        assert!(unhex32(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn a_record_is_one_line_tagged_with_its_kind() {
        let line = serde_json::to_string(&Record::Alias {
            alias: "#a:l".into(),
            room_id: "!r:l".into(),
        })
        .unwrap();
        assert_eq!(line, r##"{"kind":"alias","alias":"#a:l","room_id":"!r:l"}"##);
        assert!(serde_json::from_str::<Record>(r##"{"kind":"alias","alias":"#a:l","room_id":"!r:l","x":1}"##).is_err());
    }
}
