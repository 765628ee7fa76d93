//! The size limits every stored event obeys, so that whatever was accepted
//! can always be served back.
//!
//! The Matrix spec caps an event at 65,536 bytes of JSON and its type, state
//! key, sender and room id at 255 bytes each. Nesting has no spec limit, but
//! JSON parsers do (serde_json stops at 128 levels, and every response wraps
//! an event's content several levels deeper), so content may nest at most
//! [`MAX_CONTENT_DEPTH`] levels: a client parsing `/sync` with the same
//! parser still has room for the envelope.
//!
//! An event type or state key may not hold U+0000: both are keys of the
//! store's indexes, and PostgreSQL `text` cannot hold that character, so
//! refusing it on every backend keeps them answering alike. Content may
//! hold it (stored as JSON, it is escaped).

use serde_json::{Map, Value};

/// The largest event, as serialized in the client format, in bytes.
pub const MAX_EVENT_BYTES: usize = 65_536;
/// The longest event type, state key, sender or room id, in bytes.
pub const MAX_ID_BYTES: usize = 255;
/// How deep content may nest (the content object itself is level 1). The
/// deepest response (`/sync` → rooms → join → room → timeline → events →
/// event → content) adds 8 levels, so 100 stays well below 128.
pub const MAX_CONTENT_DEPTH: usize = 100;
/// Room events carry an event id of this many bytes (`$` + 24 characters).
pub const EVENT_ID_BYTES: usize = 25;

/// Why an event breaks a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitError {
    /// Too large (bytes or nesting): answered with 413 `M_TOO_LARGE`.
    TooLarge(String),
    /// Holds what no store can key (U+0000): answered with 400 `M_BAD_JSON`.
    Invalid(String),
}

/// How deeply `value` nests: a scalar is 0, `{}` or `[]` is 1.
///
/// Iterative, so that a hostile value cannot overflow the stack here.
pub fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack: Vec<(&Value, usize)> = vec![(value, 0)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Object(map) => {
                deepest = deepest.max(d + 1);
                stack.extend(map.values().map(|child| (child, d + 1)));
            }
            Value::Array(items) => {
                deepest = deepest.max(d + 1);
                stack.extend(items.iter().map(|child| (child, d + 1)));
            }
            _ => {}
        }
    }
    deepest
}

fn check_id(what: &str, s: &str) -> Result<(), LimitError> {
    if s.contains('\0') {
        return Err(LimitError::Invalid(format!("The {what} may not contain U+0000.")));
    }
    if s.len() > MAX_ID_BYTES {
        return Err(LimitError::TooLarge(format!(
            "The {what} is {} bytes long; at most {MAX_ID_BYTES} are allowed.",
            s.len()
        )));
    }
    Ok(())
}

/// The client-format envelope of an event, for measuring its size.
#[derive(serde::Serialize)]
struct Envelope<'a> {
    event_id: &'a str,
    room_id: &'a str,
    sender: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_key: Option<&'a str>,
    content: &'a Map<String, Value>,
    origin_server_ts: u64,
}

/// Counts what would be written, without keeping it.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Checks an event against every limit before it may be stored.
pub fn check_event(
    room_id: &str,
    sender: &str,
    event_type: &str,
    state_key: Option<&str>,
    content: &Map<String, Value>,
) -> Result<(), LimitError> {
    check_id("event type", event_type)?;
    if let Some(key) = state_key {
        check_id("state key", key)?;
    }
    check_id("sender", sender)?;
    check_id("room id", room_id)?;
    // The content object is one level; its values count from there.
    let nesting = 1 + content.values().map(depth).max().unwrap_or(0);
    if nesting > MAX_CONTENT_DEPTH {
        return Err(LimitError::TooLarge(format!(
            "The event content nests {nesting} levels deep; at most {MAX_CONTENT_DEPTH} are allowed."
        )));
    }
    // Measured with the longest id and timestamp the store can assign, so
    // that the stored event is never larger than what was checked.
    let placeholder_id = "$".repeat(EVENT_ID_BYTES);
    let envelope = Envelope {
        event_id: &placeholder_id,
        room_id,
        sender,
        event_type,
        state_key,
        content,
        origin_server_ts: u64::MAX,
    };
    let mut counted = ByteCount(0);
    let size = match serde_json::to_writer(&mut counted, &envelope) {
        Ok(()) => counted.0,
        Err(_) => usize::MAX,
    };
    if size > MAX_EVENT_BYTES {
        return Err(LimitError::TooLarge(format!(
            "The event would be {size} bytes as stored; at most {MAX_EVENT_BYTES} are allowed."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(levels: usize) -> Value {
        let mut v = json!(1);
        for _ in 0..levels {
            v = json!({ "a": v });
        }
        v
    }

    #[test]
    fn depth_counts_objects_and_arrays_and_not_scalars() {
        assert_eq!(depth(&json!(1)), 0);
        assert_eq!(depth(&json!({})), 1);
        assert_eq!(depth(&json!([[], {"a": [1]}])), 3);
        assert_eq!(depth(&nested(500)), 500);
    }

    #[test]
    fn content_at_the_depth_limit_passes_and_one_level_more_fails() {
        let content = |levels: usize| nested(levels).as_object().cloned().unwrap();
        check_event("!r:l", "@a:l", "m.x", None, &content(MAX_CONTENT_DEPTH)).unwrap();
        let err = check_event("!r:l", "@a:l", "m.x", None, &content(MAX_CONTENT_DEPTH + 1)).unwrap_err();
        assert!(
            matches!(err, LimitError::TooLarge(ref m) if m.contains("nests")),
            "{err:?}"
        );
    }

    #[test]
    fn event_size_counts_the_whole_envelope() {
        let mut content = Map::new();
        content.insert("body".into(), json!(""));
        let base = serde_json::to_vec(&Envelope {
            event_id: &"$".repeat(EVENT_ID_BYTES),
            room_id: "!r:l",
            sender: "@a:l",
            event_type: "m.x",
            state_key: None,
            content: &content,
            origin_server_ts: u64::MAX,
        })
        .unwrap()
        .len();
        content.insert("body".into(), json!("x".repeat(MAX_EVENT_BYTES - base)));
        check_event("!r:l", "@a:l", "m.x", None, &content).unwrap();
        content.insert("body".into(), json!("x".repeat(MAX_EVENT_BYTES - base + 1)));
        assert!(check_event("!r:l", "@a:l", "m.x", None, &content).is_err());
    }

    #[test]
    fn types_and_state_keys_longer_than_255_bytes_fail() {
        let c = Map::new();
        check_event("!r:l", "@a:l", &"t".repeat(255), Some(&"k".repeat(255)), &c).unwrap();
        assert!(check_event("!r:l", "@a:l", &"t".repeat(256), None, &c).is_err());
        assert!(check_event("!r:l", "@a:l", "m.x", Some(&"k".repeat(256)), &c).is_err());
    }
}
