//! Naming rules that turn spec identifiers into Rust identifiers.
//!
//! Operation names: a spec `operationId` wins (in snake_case). The seed has
//! none, so otherwise the name is the HTTP method followed by every path
//! segment, with `{param}` segments written as their parameter name:
//! `POST /rooms/{roomId}/join` becomes `post_rooms_room_id_join`.

const RUST_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern", "false", "fn",
    "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self", "static",
    "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while", "abstract", "become", "box", "do",
    "final", "macro", "override", "priv", "typeof", "unsized", "virtual", "yield", "try",
];

/// Splits an identifier into lowercase words at case changes and non-alphanumerics.
fn words(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        let boundary = c.is_ascii_uppercase()
            && !cur.is_empty()
            && (chars[i - 1].is_ascii_lowercase()
                || chars[i - 1].is_ascii_digit()
                || chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase()));
        if boundary {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `roomId` → `room_id`; keywords get a raw-identifier prefix.
pub fn snake(s: &str) -> String {
    let joined = words(s).join("_");
    let joined = if joined.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{joined}")
    } else {
        joined
    };
    if RUST_KEYWORDS.contains(&joined.as_str()) {
        format!("r#{joined}")
    } else {
        joined
    }
}

/// `private_chat` → `PrivateChat`, `m.login.dummy` → `MLoginDummy`.
pub fn pascal(s: &str) -> String {
    let out: String = words(s)
        .iter()
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) || out.is_empty() {
        format!("V{out}")
    } else {
        out
    }
}

/// The operation's method name, by the rule in this module's docs.
pub fn operation_name(operation_id: Option<&str>, method: &str, path: &str) -> String {
    if let Some(id) = operation_id {
        return snake(id);
    }
    let mut parts = vec![method.to_ascii_lowercase()];
    for seg in path.split('/').filter(|s| !s.trim().is_empty()) {
        let seg = seg.trim().trim_start_matches('{').trim_end_matches('}');
        parts.push(snake(seg).trim_start_matches("r#").to_string());
    }
    parts.join("_")
}

/// The response-enum variant for a status code: its canonical reason phrase.
pub fn status_variant(status: u16) -> Option<&'static str> {
    Some(match status {
        200 => "Ok",
        201 => "Created",
        202 => "Accepted",
        204 => "NoContent",
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        413 => "PayloadTooLarge",
        415 => "UnsupportedMediaType",
        429 => "TooManyRequests",
        500 => "InternalServerError",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        504 => "GatewayTimeout",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_documented_rule() {
        assert_eq!(snake("roomId"), "room_id");
        assert_eq!(snake("type"), "r#type");
        assert_eq!(pascal("m.login.dummy"), "MLoginDummy");
        assert_eq!(
            operation_name(None, "post", "/rooms/{roomId}/invite "),
            "post_rooms_room_id_invite"
        );
        assert_eq!(operation_name(Some("createRoom"), "post", "/createRoom"), "create_room");
    }
}
